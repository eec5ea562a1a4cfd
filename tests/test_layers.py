"""The import layers of src/proxt2i, enforced (docs/architecture.md states the same table).

A module may import only from its own package or from a package of a strictly lower rank, and never
another package's private (single-underscore) names. Imports inside functions count like top-level ones.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "proxt2i"

# Top-level module or package of proxt2i -> rank, lowest first. The one copy of the table.
RANKS = {
    "errors": 0,  # every layer raises UsageError
    "scale": 13, "atomic": 1, "shipped": 1, "config": 1, "extras": 1, "text_split": 1, "devices": 1,
    "imaging": 2,  # writes through atomic
    "schedule": 3,
    "parameterization": 4,
    "samplers": 5,
    "models": 6, "toy": 6, "faces": 6,  # faces: the real pretrained face readers (dlib), over imaging
    "data": 7,
    "evaluation": 8,
    "rewards": 9,
    "pipeline": 10,
    "training": 11,
    "rl": 12, "curate": 12,
    "bench": 13,
    "serve": 14,  # the HTTP server: over the pipeline, below the command that starts it
    "cli": 15,
}
# The package root's __init__.py and __main__.py may import anything.
EXEMPT = {("__init__",), ("__main__",)}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_parts(rel_path: Path) -> tuple:
    """src/proxt2i-relative file path -> module parts, e.g. models/text.py -> ("models", "text")."""
    parts = rel_path.with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts


def _targets(node: ast.AST, package: tuple) -> list:
    """(top-level proxt2i name, imported names) pairs of one import node; [] for outside imports."""
    if isinstance(node, ast.Import):
        out = []
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "proxt2i" and len(parts) > 1:
                out.append((parts[1], []))
        return out
    if node.level:
        base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        if node.level - 1 > len(package):
            return []
        resolved = base + tuple(node.module.split(".") if node.module else ())
    else:
        parts = (node.module or "").split(".")
        if parts[0] != "proxt2i":
            return []
        resolved = tuple(parts[1:])
    names = [alias.name for alias in node.names]
    if not resolved:  # `from .. import shipped`: each name is a top-level module, or root metadata (__version__)
        return [(name, []) for name in names if not name.startswith("__")]
    return [(resolved[0], names)]


def check_source(rel_path: Path, source: str) -> list:
    """Violations of one file (path relative to src/proxt2i) as "file:line ..." strings."""
    module = _module_parts(rel_path)
    if module in EXEMPT:
        return []
    own = module[0]
    where = f"src/proxt2i/{rel_path.as_posix()}"
    if own not in RANKS:
        return [f"{where}:1 is in no layer: add {own!r} to RANKS in tests/test_layers.py"]
    is_package = rel_path.name == "__init__.py"
    package = module if is_package else module[:-1]
    tree = ast.parse(source, filename=where)
    violations, foreign_names = [], set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for target, names in _targets(node, package):
            if target == own:
                continue
            if target not in RANKS:
                violations.append(f"{where}:{node.lineno} imports {target} (in no layer)")
                continue
            if RANKS[target] >= RANKS[own]:
                violations.append(
                    f"{where}:{node.lineno} imports {target} (rank {RANKS[own]} -> rank {RANKS[target]})"
                )
            for name in names:
                if _is_private(name):
                    violations.append(f"{where}:{node.lineno} imports private {target}.{name}")
            for alias in node.names:
                foreign_names.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id in foreign_names):
            violations.append(f"{where}:{node.lineno} uses private {node.value.id}.{node.attr}")
    return violations


def find_violations(root: Path = SRC) -> list:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        out += check_source(rel, path.read_text(encoding="utf-8"))
    return out


def test_imports_follow_the_layers():
    violations = find_violations()
    assert not violations, "imports against the layers (docs/architecture.md):\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "rel_path, source, expected",
    [
        ("models/text.py", "def f():\n    from ..evaluation.nets import TextTower\n",
         "src/proxt2i/models/text.py:2 imports evaluation (rank 6 -> rank 8)"),
        ("curate/scorers.py", "from ..models.hf import _hf_call\n",
         "src/proxt2i/curate/scorers.py:1 imports private models._hf_call"),
        ("shipped.py", "from .atomic import atomic_write_text\n", "src/proxt2i/shipped.py:1 imports atomic (rank 1 -> rank 1)"),
        ("rl/grpo.py", "from .. import training\nx = training._seed\n",
         "src/proxt2i/rl/grpo.py:2 uses private training._seed"),
        ("rl/grpo.py", "from ..curate import pick\n", "src/proxt2i/rl/grpo.py:1 imports curate (rank 12 -> rank 12)"),
        ("rl/grpo.py", "import proxt2i.cli\n", "src/proxt2i/rl/grpo.py:1 imports cli (rank 12 -> rank 15)"),
        ("newpkg/a.py", "x = 1\n", "src/proxt2i/newpkg/a.py:1 is in no layer: add 'newpkg' to RANKS in tests/test_layers.py"),
    ],
)
def test_checker_reports_a_violation(rel_path, source, expected):
    assert expected in check_source(Path(rel_path), source)


@pytest.mark.parametrize(
    "rel_path, source",
    [
        ("data/indexed.py", "from .readers import _decode\n"),  # same package: private is fine
        ("rl/grpo.py", "from ..training.run import ema_update\nfrom .. import schedule\n"),
        ("__main__.py", "from .cli import main\n"),
        ("cli/info.py", "from .. import __version__\n"),
        ("shipped.py", "from .errors import UsageError\n"),
        ("models/text.py", "import torch\nfrom torch import _C\n"),
    ],
)
def test_checker_allows_downward_and_same_package_imports(rel_path, source):
    assert check_source(Path(rel_path), source) == []
