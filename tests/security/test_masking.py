"""Masking holds: each line of a multi-line value, and base64, hex and URL forms, wherever output is recorded."""

from __future__ import annotations

import base64
import io
import logging

import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from queue_core.logging import configure_logging
from queue_core.masking import MASK, Masker, masking
from tests.support.secret_forms import LINE_CHARS, encodings, inside_base64, leak_forms, lines_of

TOKEN = "tok_9f8e7d6c5b4a"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "}\n"
    "-----END PRIVATE KEY-----\n"
)
B64 = base64.b64encode(TOKEN.encode()).decode()
URL_B64 = base64.urlsafe_b64encode(b"\xfb\xff" + TOKEN.encode()).decode()  # '-' and '_' in it


@pytest.mark.parametrize(("text", "masked"), [
    (f"token={TOKEN}", f"token={MASK}"),
    (f"b64={B64}", f"b64={MASK}"),
    (f"b64={B64.rstrip('=')}!", f"b64={MASK}!"),
    (f"url-safe={base64.urlsafe_b64encode(TOKEN.encode()).decode()}", f"url-safe={MASK}"),
    (f"hex={TOKEN.encode().hex()} HEX={TOKEN.encode().hex().upper()}", f"hex={MASK} HEX={MASK}"),
    ("q=tok_9f8e7d6c5b4a%21", f"q={MASK}%21"),
    ("nothing secret here", "nothing secret here"),
])  # fmt: skip
def test_a_value_and_each_of_its_encodings_are_masked(text: str, masked: str):
    assert Masker([TOKEN]).mask(text) == masked


@pytest.mark.parametrize("line", [
    "-----BEGIN PRIVATE KEY-----",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "-----END PRIVATE KEY-----",
])  # fmt: skip
def test_each_line_of_a_multi_line_value_is_masked_on_its_own(line: str):
    masker = Masker([PEM])
    assert masker.mask(f"stdout: {line}") == f"stdout: {MASK}"
    assert masker.mask(f"  {line}  ") == f"  {MASK}  "
    for form in encodings(line):
        assert masker.mask(f"[{form}]") == f"[{MASK}]"


def test_lines_shorter_than_the_minimum_are_not_masked_on_their_own():
    masker = Masker([PEM])
    assert len("}") < LINE_CHARS and len("-----") < LINE_CHARS
    assert masker.mask("}") == "}"
    assert masker.mask("----- section -----") == "----- section -----"
    assert masker.mask(PEM) == MASK  # the whole value still is


@pytest.mark.parametrize("before", [b"", b"x", b"xy", b"xyz", b"wxyz"])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_a_value_inside_a_longer_base64_text_is_masked_at_each_alignment(before: bytes, urlsafe: bool):
    text, determined = inside_base64(TOKEN.encode(), before * 7, b"-after-", urlsafe)
    masked = Masker([TOKEN]).mask(text)
    assert MASK in masked and determined not in masked


def test_a_secret_whose_characters_include_the_mask_cannot_reappear_around_a_mask():
    assert TOKEN not in Masker(["a*"]).mask("aa* and a**")
    assert "a*" not in Masker(["a*"]).mask("aa* and a**")


def test_every_line_of_a_multi_line_value_is_masked_in_structlog_and_stdlib_lines(capsys: pytest.CaptureFixture[str]):
    configure_logging()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    stdlib = logging.getLogger("test.masking.multiline")
    stdlib.addHandler(handler)
    try:
        with masking([PEM]):
            structlog.get_logger("test").warning("bad key", key=PEM, first=PEM.splitlines()[1])
            stdlib.warning("key line %s", PEM.splitlines()[2])
    finally:
        stdlib.removeHandler(handler)
    recorded = capsys.readouterr().err + stream.getvalue()
    for line in lines_of(PEM):
        assert line not in recorded
    assert "key line ***" in stream.getvalue()


_VALUES = st.text(min_size=1, max_size=80).filter(lambda v: v.strip("*") != "")
_SURROUNDING = st.text(max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_VALUES, min_size=1, max_size=3), before=_SURROUNDING, after=_SURROUNDING, data=st.data())
@example(values=["ab\ncdefgh\n}"], before="", after="", data=None)
@example(values=[" ", "= ="], before="", after="", data=None)  # overlapping occurrences: both masked
def test_no_masked_text_holds_any_value_or_any_of_its_encodings(
    values: list[str], before: str, after: str, data: st.DataObject | None
):
    # A form made only of the mask's character (a line "******") cannot be told from a mask: not asked.
    forms = sorted(form for value in values for form in leak_forms(value) if form.strip(MASK[0]))
    shown = data.draw(st.sampled_from(forms)) if data is not None else " = ".join(values)
    masked = Masker(values).mask(before + shown + after)
    assert not [form for form in forms if form in masked]


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(min_size=LINE_CHARS, max_size=60).map(lambda b: b.hex()[: len(b)]),
    before=st.binary(max_size=9),
    after=st.binary(max_size=9),
    urlsafe=st.booleans(),
)
def test_no_base64_text_around_a_value_keeps_the_characters_that_encode_it(
    value: str, before: bytes, after: bytes, urlsafe: bool
):
    text, determined = inside_base64(value.encode(), before, after, urlsafe)
    assert determined not in Masker([value]).mask(text)
