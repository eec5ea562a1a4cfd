"""The shipped models' fixed generations match the recorded fingerprints (docs/experiments/output_hashes.py).

A restructuring must leave every image bit for bit as it was. Float results can differ across CPU kinds and
library builds, so this is a slow check for the machine the record was taken on: `pytest -m slow`."""

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fixed_generations_match_the_record():
    script = runpy.run_path(str(ROOT / "docs" / "experiments" / "output_hashes.py"))
    record = json.loads((ROOT / "docs" / "experiments" / "output_hashes.before.json").read_text())
    assert json.loads(json.dumps(script["main"]())) == record
