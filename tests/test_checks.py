"""The validation kit specs are made of: each check returns what it accepts, or refuses naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from queue_core.errors import InvalidInput
from queue_core.specs import checks

UUID = "00000000-0000-4000-8000-000000000000"
TEXT_LIMIT = "must be a string of at most 10000 characters"
REFUSALS: list[tuple[Any, tuple[Any, ...], str, str]] = [
    (checks.mapping, ([], "config"), "config", "must be an object"),
    (checks.no_unknown, ({"a": 1, "b": 2}, {"a"}, "config"), "config.b", "unknown field"),
    (checks.no_unknown, ({"b": 2}, {"a"}, ""), "b", "unknown field"),
    (checks.non_empty_list, ([], "steps"), "steps", "must be a non-empty list"),
    (checks.text, ("x" * 10_001, "description"), "description", TEXT_LIMIT),
    (checks.text, (None, "description"), "description", TEXT_LIMIT),
    (checks.non_empty_string, ("", "cluster.instanceType", 128), "cluster.instanceType", "must be a non-empty string"),
    (checks.number, (float("nan"), "config.timeout"), "config.timeout", "must be a number, not nan"),
    (checks.number, (True, "config.timeout"), "config.timeout", "must be a number, not True"),
    (checks.whole_number, (0, "n", 1, 256), "n", "must be a whole number from 1 to 256, not 0"),
    (checks.whole_number, (2.0, "n", 1, 256), "n", "must be a whole number from 1 to 256, not 2.0"),
    (checks.whole_number, (0, "v", 1, None, "version number"), "v", "must be a version number from 1, not 0"),
    (checks.boolean, ("yes", "explain"), "explain", "must be true or false"),
    (checks.choice, ("some", ("all", "none"), "catchup"), "catchup", "'some' is not one of all, none"),
    (checks.choice, ("X", ("A", "B"), "type", "job type"), "type", "unknown job type 'X'; use one of A, B"),
    (checks.choice, ("x" * 200, ("A",), "t"), "t", "the value is not one of A"),
    (checks.name, ("a b",), "name", "'a b' is not a valid name (letters, digits, '_', '.', '-'; at most 128)"),
    (checks.name, (UUID,), "name", f"{UUID!r} looks like a UUID; a name must not"),
    (checks.relative_path, ("../x", "p"), "p", "'../x' leaves the workspace (path_outside_workspace)"),
    (checks.unicode_text, ({"k": ["ok", "\udcff"]}, "env"), "env.k[1]", "is not valid Unicode text (a lone surrogate)"),
    (checks.region, ("EU", "region"), "region", "is not a region name such as eu-west-1"),
    (checks.endpoint_url, ("http://u:p@h", "url"), "url", "is not an http(s):// URL without a credential in it"),
]


@pytest.mark.parametrize(("check", "args", "field", "detail"), REFUSALS)
def test_a_refusal_names_the_field_and_says_what_is_wrong(check: Any, args: tuple[Any, ...], field: str, detail: str):
    with pytest.raises(InvalidInput) as refused:
        check(*args)
    error = refused.value
    assert (error.field, error.detail, str(error)) == (field, detail, f"{field}: {detail}")


def test_what_a_check_accepts_it_returns_normalized():
    assert checks.text(None, "d", optional=True) == ""
    assert checks.number(3, "t") == 3.0 and isinstance(checks.number(3, "t"), float)
    assert checks.choice("ERRORIFEXISTS", ("overwrite", "errorIfExists"), "m", fold_case=True) == "errorIfExists"
    assert checks.relative_path("", "p", allow_empty=True) == ""
    assert checks.whole_number(256, "n", 1, 256) == 256
    assert checks.inside("", "name") == "name" and checks.inside("config", "type") == "config.type"
