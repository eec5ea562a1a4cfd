"""Optional dependencies: a missing one is one line naming the extra to install."""

import json

import pytest

from proxt2i.errors import UsageError
from proxt2i.extras import optional, require


def test_require_returns_the_module_or_names_the_extra():
    assert require("json", "hf", "reading") is json
    with pytest.raises(UsageError) as err:
        require("proxt2i_no_such_package.sub", "hf", "the diffusers samplers")
    assert str(err.value) == "the diffusers samplers needs the optional dependency proxt2i_no_such_package: pip install 'proxt2i[hf]'"


def test_optional_is_none_when_missing():
    assert optional("json") is json and optional("proxt2i_no_such_package") is None
