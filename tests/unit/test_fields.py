"""The field-declaration helper and the layout compiler, on made-up layouts."""

from __future__ import annotations

import enum
import struct
from typing import Any, List, Tuple

import attr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpy._fields import REQUIRED, FieldSpec, compile_layout, field, field_spec
from sgpy.errors import EncodeError


class Holder:
    """A plain object to encode from and decode into."""

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)


def spec(byte: int, bit: int, width: int, name: str, nullable: bool = False) -> FieldSpec:
    return FieldSpec(byte=byte, bit=bit, width=width, name=name, nullable=nullable)


OPCODE = FieldSpec(byte=0, bit=7, width=8, name="opcode")


@pytest.mark.parametrize(
    "byte, bit, width, start, end, last_byte, text",
    [
        (1, 4, 1, 11, 12, 1, "byte 1 bit 4"),
        (1, 7, 3, 8, 11, 1, "byte 1 bits 7-5"),
        (6, 5, 6, 50, 56, 6, "byte 6 bits 5-0"),
        (2, 7, 32, 16, 48, 5, "bytes 2-5"),
        (9, 7, 8, 72, 80, 9, "byte 9"),
        (1, 4, 21, 11, 32, 3, "byte 1 bit 4 to byte 3 bit 0"),
        (2, 3, 8, 20, 28, 3, "byte 2 bit 3 to byte 3 bit 4"),
    ],
)
def test_field_positions(byte: int, bit: int, width: int, start: int, end: int, last_byte: int, text: str) -> None:
    s = FieldSpec(byte=byte, bit=bit, width=width)
    assert (s.start, s.end, s.last_byte) == (start, end, last_byte)
    assert s.describe() == text


@pytest.mark.parametrize("byte, bit, width", [(0, 8, 1), (-1, 0, 1), (0, 0, 0), (0, 7, 65)])
def test_impossible_positions_are_refused(byte: int, bit: int, width: int) -> None:
    with pytest.raises(ValueError):
        FieldSpec(byte=byte, bit=bit, width=width)


def test_field_declares_an_attrs_attribute() -> None:
    @attr.s(frozen=True, slots=True)
    class Sample:
        flag = field(1, 0, 1)
        number = field(2, width=16)
        later = field(4, default=None)
        needed = field(5, default=REQUIRED)

    flag, number, later, needed = attr.fields(Sample)
    assert flag.default is False and number.default == 0 and later.default is None
    assert needed.default is attr.NOTHING and needed.kw_only
    assert field_spec(number) == FieldSpec(byte=2, bit=7, width=16)
    assert field_spec(later).nullable  # type: ignore[union-attr]
    assert Sample(needed=1).flag is False


# (fields, consts, length, expected struct format)
LAYOUTS: List[Tuple[List[FieldSpec], List[Tuple[FieldSpec, int]], int, str]] = [
    ([spec(5, 7, 8, "control")], [(OPCODE, 0)], 6, ">B4xB"),
    ([spec(1, 4, 21, "lba"), spec(4, 7, 8, "n")], [(OPCODE, 8)], 6, ">BHBB1x"),  # 3-byte unit as H+B
    ([spec(1, 7, 40, "x")], [(OPCODE, 1)], 6, ">BIB"),  # 5 bytes: I+B
    ([spec(1, 7, 48, "x")], [(OPCODE, 1)], 8, ">BIH1x"),  # 6 bytes: I+H
    ([spec(1, 7, 56, "x")], [(OPCODE, 1)], 8, ">BIHB"),  # 7 bytes: I+H+B
    ([spec(1, 7, 64, "x"), spec(9, 7, 16, "y")], [(OPCODE, 1)], 12, ">BQH1x"),
    ([spec(2, 3, 8, "straddle")], [(OPCODE, 1)], 4, ">B1xH"),  # field across bytes 2-3
]


@pytest.mark.parametrize("fields, consts, length, fmt", LAYOUTS)
def test_struct_plans(fields: List[FieldSpec], consts: List[Tuple[FieldSpec, int]], length: int, fmt: str) -> None:
    layout = compile_layout("T", length, fields, consts)
    assert layout.struct_format == fmt
    assert struct.calcsize(fmt) == length


def test_encode_and_decode_a_bit_packed_layout() -> None:
    fields = [
        spec(1, 7, 3, "prot"),
        spec(1, 4, 1, "a"),
        spec(1, 3, 1, "b"),
        spec(2, 4, 21, "lba"),
        spec(5, 7, 8, "n"),
    ]
    sa = FieldSpec(byte=1, bit=1, width=2, name="sa")
    layout = compile_layout("T", 7, fields, [(OPCODE, 0xAB), (sa, 2)])
    obj = Holder(prot=5, a=True, b=False, lba=0x1ABCDE, n=0x7F)
    raw = layout.encode(obj)
    assert raw == bytes([0xAB, 0b1011_0010, 0x1A, 0xBC, 0xDE, 0x7F, 0x00])
    back = layout.decode(Holder, raw)
    assert (back.prot, back.a, back.b, back.lba, back.n) == (5, True, False, 0x1ABCDE, 0x7F)
    assert type(back.a) is bool and type(back.b) is bool
    # bit 2 of byte 1, bits 7-5 of byte 2 and byte 6 are reserved
    assert layout.reserved_mask == int.from_bytes(bytes([0, 0x04, 0xE0, 0, 0, 0, 0xFF]), "big")
    assert layout.const_mask == int.from_bytes(bytes([0xFF, 0x03, 0, 0, 0, 0, 0]), "big")
    assert layout.const_bits == int.from_bytes(bytes([0xAB, 0x02, 0, 0, 0, 0, 0]), "big")
    assert layout.reserved_positions(bytes([0, 4, 0x80, 0, 0, 0, 0x01])) == ((1, 2), (2, 7), (6, 0))


def test_decode_fills_other_attributes_with_defaults() -> None:
    extras = [("chain", list, True), ("hook", None, False)]
    layout = compile_layout("T", 2, [spec(1, 7, 8, "x")], [(OPCODE, 1)], extras=extras)
    first = layout.decode(Holder, b"\x01\x05")
    second = layout.decode(Holder, b"\x01\x05")
    assert first.x == 5 and first.chain == [] and first.hook is None
    assert first.chain is not second.chain


@pytest.mark.parametrize(
    "fields, message",
    [
        ([spec(1, 7, 8, "x"), spec(1, 3, 2, "y")], "overlaps"),
        ([spec(3, 7, 16, "x")], "runs past byte 3"),
        ([spec(0, 7, 1, "x")], "overlaps"),  # clashes with the opcode
    ],
)
def test_bad_declarations_fail_at_compile_time(fields: List[FieldSpec], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_layout("T", 4, fields, [(OPCODE, 1)])


def test_constant_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        compile_layout("T", 2, [], [(OPCODE, 256)])


class Color(enum.IntEnum):
    RED = 2


@pytest.mark.parametrize(
    "width, value, stored",
    [
        (1, True, True),
        (1, 1, True),
        (1, 0, False),
        (3, 7, 7),
        (3, Color.RED, 2),
        (8, 0, 0),
    ],
)
def test_check_accepts_and_normalizes(width: int, value: Any, stored: Any) -> None:
    result = spec(1, 7, width, "f").check(value, "T")
    assert result == stored and type(result) is type(stored)


@pytest.mark.parametrize(
    "width, value, words",
    [
        (1, 2, "one-bit flag"),
        (1, "x", "one-bit flag"),
        (3, 8, "must be in 0..7 (3 bits)"),
        (3, -1, "must be in 0..7"),
        (3, True, "not a flag"),
        (3, 1.5, "must be an int in 0..7, got float 1.5"),
        (3, None, "is required"),
    ],
)
def test_check_refuses(width: int, value: Any, words: str) -> None:
    with pytest.raises(EncodeError, match="^T: field 'f' ") as info:
        spec(1, 7, width, "f").check(value, "T")
    assert words in str(info.value)


def test_nullable_fields_leave_the_encoding_unfinished() -> None:
    layout = compile_layout("T", 2, [spec(1, 7, 8, "n", nullable=True)], [(OPCODE, 1)])
    assert layout.encode(Holder(n=None)) is None
    assert layout.encode(Holder(n=3)) == b"\x01\x03"


def test_slow_path_stores_normalized_values() -> None:
    layout = compile_layout("T", 2, [spec(1, 7, 1, "a"), spec(1, 6, 7, "b")], [(OPCODE, 1)])
    obj = Holder(a=1, b=Color.RED)
    assert layout.encode(obj) == b"\x01\x82"
    assert obj.a is True and type(obj.b) is int


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    seed=st.randoms(use_true_random=False),
)
def test_random_layouts_round_trip(cuts: List[int], seed: Any) -> None:
    """Fields of random widths laid end to end (with gaps) encode and decode losslessly."""
    fields = []
    position = 8  # after the opcode byte
    for i, width in enumerate(cuts):
        position += seed.randint(0, 5)  # reserved gap
        width = min(width, 64)
        fields.append(FieldSpec(byte=position // 8, bit=7 - position % 8, width=width, name=f"f{i}"))
        position += width
    length = (position + 7) // 8
    layout = compile_layout("T", length, fields, [(OPCODE, 0x5A)])
    values = {f.name: (seed.random() < 0.5) if f.is_flag else seed.randint(0, f.max_value) for f in fields}
    raw = layout.encode(Holder(**values))
    assert raw is not None and len(raw) == length and raw[0] == 0x5A
    expected = 0x5A << (8 * length - 8)
    for f in fields:
        expected |= int(values[f.name]) << (8 * length - f.end)
    assert int.from_bytes(raw, "big") == expected
    back = layout.decode(Holder, raw)
    assert {f.name: getattr(back, f.name) for f in fields} == values


# --------------------------------------------- a field cut by the end of bytes


@pytest.mark.parametrize("size", range(0, 6))
def test_read_of_a_cut_field_is_none(size: int) -> None:
    lba = FieldSpec(byte=2, bit=7, width=32, name="lba")
    buf = bytes.fromhex("aabb0001ff00")[:size]
    assert lba.read(buf) is None
    with pytest.raises(ValueError, match="bytes 2-5"):
        lba.extract(buf)


def test_read_of_a_whole_field() -> None:
    lba = FieldSpec(byte=2, bit=7, width=32, name="lba")
    assert lba.read(bytes.fromhex("aabb0001ff00")) == 0x0001FF00 == lba.extract(bytes.fromhex("aabb0001ff00cc"))
    assert lba.present_in(bytes(6)) and not lba.present_in(bytes(5))
    tail = FieldSpec(byte=1, bit=4, width=13, name="tail")  # byte 1 bit 4 to byte 2 bit 0
    assert tail.read(b"\x00\x1f") is None and tail.read(b"\x00\x1f\xff") == 0x1FFF
