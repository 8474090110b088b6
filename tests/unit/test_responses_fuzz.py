"""Any bytes into any parser: a value or MalformedResponse, and printable results."""

from __future__ import annotations

import functools

import attr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgpy import responses
from sgpy.errors import MalformedResponse
from sgpy.responses import parse_log_page, parse_mode_parameters, parse_vpd
from sgpy.sense import decode

PARSERS = [
    *(pytest.param(cls.from_bytes, id=cls.__name__) for cls in responses.RESPONSE_CLASSES),
    pytest.param(parse_vpd, id="parse_vpd"),
    pytest.param(parse_log_page, id="parse_log_page"),
    pytest.param(functools.partial(parse_mode_parameters, ten=False), id="mode6"),
    pytest.param(functools.partial(parse_mode_parameters, ten=True), id="mode10"),
    pytest.param(responses.parse_mode_page, id="parse_mode_page"),
    pytest.param(decode, id="sense.decode"),
]


def _touch(value) -> None:
    """str() and repr() of the value and of everything inside it."""
    str(value)
    repr(value)
    if attr.has(type(value)):
        for f in attr.fields(type(value)):
            _touch(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            _touch(item)


# Byte strings that look like answers: a small length header, so that the
# parsers get past it, followed by random content.
def _shaped() -> st.SearchStrategy[bytes]:
    small = st.integers(0, 80)
    return st.one_of(
        st.binary(max_size=120),
        st.builds(lambda n, b: bytes(3) + bytes([n]) + b, small, st.binary(max_size=96)),
        st.builds(lambda c, n, b: bytes([0, c, 0, n]) + b, st.integers(0, 255), small, st.binary(max_size=96)),
        st.builds(lambda c, s, n, b: bytes([c, s, 0, n]) + b, st.integers(0, 255), st.integers(0, 255), small,
                  st.binary(max_size=96)),
        st.builds(lambda n, b: bytes([n]) + b, small, st.binary(max_size=96)),
        st.builds(lambda n, b: bytes([0, n]) + b, small, st.binary(max_size=96)),
    )


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buf=_shaped())
def test_any_bytes(parse, buf: bytes) -> None:
    try:
        value = parse(buf)
    except MalformedResponse as exc:
        assert str(exc)
        return
    _touch(value)


@pytest.mark.parametrize("cls", responses.RESPONSE_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(buf=_shaped())
def test_required_length_agrees(cls, buf: bytes) -> None:
    try:
        value = cls.from_bytes(buf)
    except MalformedResponse:
        return
    required = cls.required_length(buf)
    if value is None:
        return
    if required is not None and value.wanted_length is not None:
        assert required == value.wanted_length
    if value.wanted_length is not None:
        assert value.truncated == (len(buf) < value.wanted_length)


@pytest.mark.parametrize("cls", responses.RESPONSE_CLASSES, ids=lambda c: c.__name__)
def test_interface(cls) -> None:
    assert attr.has(cls)
    names = {f.name for f in attr.fields(cls)}
    assert {"truncated", "wanted_length"} <= names
    assert callable(cls.from_bytes) and callable(cls.required_length)
