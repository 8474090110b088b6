"""The response parsers' shared field decoding: a field is whole or None."""

from __future__ import annotations

from typing import Optional

import attrs
import pytest

from sgpy.responses._common import be, bits, decode_layout, layout_extents, octets, span, text, uint


@attrs.frozen
class Sample:
    """A made-up answer: a flag, a number across bytes 1-4, a name, a tail."""

    flag: Optional[bool] = bits(0, 7, 1, flag=True)
    number: Optional[int] = bits(1, 0, 32)
    split: Optional[int] = bits(5, 0, 12)  # low nibble of byte 5, all of byte 6
    name: Optional[str] = text(7, 4)
    rest: Optional[bytes] = octets(11)


FULL = bytes.fromhex("80 0001ff00 1f ff") + b"ab  " + b"\x01\x02"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, (None, None, None, None, None)),
        (3, (True, None, None, None, None)),
        (5, (True, 0x0001FF00, None, None, None)),
        (6, (True, 0x0001FF00, None, None, None)),
        (7, (True, 0x0001FF00, 0xFFF, None, None)),
        (10, (True, 0x0001FF00, 0xFFF, None, None)),
        (11, (True, 0x0001FF00, 0xFFF, "ab", None)),
        (12, (True, 0x0001FF00, 0xFFF, "ab", None)),
        (13, (True, 0x0001FF00, 0xFFF, "ab", b"\x01\x02")),
    ],
)
def test_decode_layout_prefixes(size: int, expected: tuple) -> None:
    got = decode_layout(Sample, FULL[:size], len(FULL))
    assert (got["flag"], got["number"], got["split"], got["name"], got["rest"]) == expected


def test_layout_extents() -> None:
    assert layout_extents(Sample) == {
        "flag": (0, 1), "number": (1, 5), "split": (5, 7), "name": (7, 11), "rest": (11, None),
    }


def test_uint_and_span_refuse_cut_bytes() -> None:
    assert uint(b"\x00\x01\xff", 0, 4) is None and uint(b"\x00\x01\xff\x00", 0, 4) == 0x1FF00
    assert span(b"abc", 1, 4) is None and span(b"abcd", 1, 4) == b"bcd"


def test_be_never_pads() -> None:
    assert be(b"\x00\x01\xff\x00", 0, 4) == 0x1FF00
    with pytest.raises(ValueError):
        be(b"\x00\x01\xff", 0, 4)
