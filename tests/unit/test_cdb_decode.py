"""decode(): the registry, round trips, unknown commands, lengths and reserved bits."""

from __future__ import annotations

import warnings
from typing import Any, Dict

import attr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpy import command as c
from sgpy._fields import field_spec
from sgpy.cdb.base import ReservedBitsWarning
from sgpy.constants import Direction
from sgpy.errors import DecodeError

ALL = c.all_commands()


def field_values(cls: type) -> st.SearchStrategy[Dict[str, Any]]:
    """Random valid values for every CDB field of ``cls``."""
    strategies = {}
    for attribute in attr.fields(cls):
        spec = field_spec(attribute)
        if spec is None:
            continue
        strategies[attribute.name] = st.booleans() if spec.is_flag else st.integers(0, spec.max_value)
    return st.fixed_dictionaries(strategies)


@pytest.mark.parametrize("cls", ALL, ids=[cls.name for cls in ALL])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type, data: st.DataObject) -> None:
    cmd = cls(**data.draw(field_values(cls)))
    decoded = c.decode(cmd.cdb, strict=True)
    assert type(decoded) is cls
    assert decoded == cmd
    assert hash(decoded) == hash(cmd)
    assert decoded.cdb == cmd.cdb
    assert repr(decoded) == repr(cmd)


@pytest.mark.parametrize("cls", ALL, ids=[cls.name for cls in ALL])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_any_bytes_with_the_right_header_decode(cls: type, data: st.DataObject) -> None:
    """Random bytes carrying the class's constants decode; reserved bits are cleared on re-encoding."""
    layout = cls.layout()
    noise = data.draw(st.integers(0, (1 << 8 * layout.length) - 1))
    value = (noise & ~layout.const_mask) | layout.const_bits
    raw = value.to_bytes(layout.length, "big")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReservedBitsWarning)
        cmd = c.decode(raw)
    assert type(cmd) is cls
    assert cmd.cdb == (value & ~layout.reserved_mask).to_bytes(layout.length, "big")
    assert bool(cmd.reserved_bits) == bool(value & layout.reserved_mask)


def test_registry_finds_every_class_by_opcode_and_service_action() -> None:
    for cls in ALL:
        assert c.lookup(cls.opcode, cls.service_action) is cls


def test_all_commands_is_sorted_and_complete() -> None:
    keys = [(cls.opcode, cls.service_action or 0) for cls in ALL]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert c.RawCommand not in ALL
    assert len(ALL) >= 79


@pytest.mark.parametrize(
    "raw",
    [
        "02 00 00 00 00 00",  # unassigned group-0 opcode
        "c1 00 11 22",  # vendor specific: any length
        "a3 1f 00 00 00 00 00 00 00 00 00 00",  # MAINTENANCE IN with an unknown service action
        "9e 1f 00 00 00 00 00 00 00 00 00 00 00 00 00 00",  # SERVICE ACTION IN(16), unknown SA
        "7f 00 00 00 00 00 00 18 ff f0" + " 00" * 22,  # variable-length, unknown SA
    ],
)
def test_unknown_commands_become_raw(raw: str) -> None:
    cmd = c.decode(bytes.fromhex(raw))
    assert isinstance(cmd, c.RawCommand)
    assert cmd.cdb == bytes.fromhex(raw)
    assert cmd.direction is Direction.NONE
    assert cmd.transfer_bytes() == 0


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty"),
        ("28 00 00 00 00 00 00 00 01", "Read10: CDB must be 10 bytes, got 9"),
        ("12 00 00 00 60 00 00", "Inquiry: CDB must be 6 bytes, got 7"),
        ("02 00 00 00 00", "must be 6 bytes, got 5"),  # group 0 is 6 bytes
        ("20 00 00 00 00 00", "must be 10 bytes, got 6"),  # group 1 is 10 bytes
        ("80 00 00 00 00 00 00 00 00 00 00 00", "must be 16 bytes, got 12"),
        ("7f 00 00 00 00 00 00 18 00 09" + " 00" * 21, "Read32: CDB must be 32 bytes, got 31"),
        ("7f 00 00 00 00 00 00 10 00 09" + " 00" * 22, "constants"),  # ADDITIONAL CDB LENGTH not 18h
    ],
)
def test_bad_lengths_raise(raw: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        c.decode(bytes.fromhex(raw))


def test_from_bytes_refuses_another_command() -> None:
    with pytest.raises(DecodeError, match="Read10"):
        c.Read10.from_bytes(c.Write10(lba=0, transfer_length=1).cdb)


def test_reserved_bits_are_reported_then_cleared() -> None:
    raw = bytes.fromhex("28 01 00 00 00 00 c0 00 01 00")  # byte 1 bit 0, byte 6 bits 7-6
    with pytest.warns(ReservedBitsWarning, match="byte 1 bit 0, byte 6 bit 7, byte 6 bit 6"):
        cmd = c.decode(raw)
    assert cmd == c.Read10(lba=0, transfer_length=1)
    assert cmd.reserved_bits == ((1, 0), (6, 7), (6, 6))
    assert cmd.cdb == bytes.fromhex("28 00 00 00 00 00 00 00 01 00")


def test_reserved_bits_raise_when_strict() -> None:
    with pytest.raises(DecodeError, match="reserved bits"):
        c.decode(bytes.fromhex("12 02 00 00 60 00"), strict=True)  # CMDDT (obsolete)


def test_decode_accepts_any_bytes_like() -> None:
    raw = bytes.fromhex("12 01 80 00 fc 00")
    expected = c.Inquiry(evpd=True, page_code=0x80, allocation_length=0xFC)
    assert c.decode(bytearray(raw)) == expected
    assert c.decode(memoryview(raw)) == expected


def test_decoded_data_out_has_no_data_and_a_transfer_from_the_cdb() -> None:
    cmd = c.decode(c.ModeSelect10(pf=True, data=bytes(28)).cdb)
    assert cmd.data is None
    assert cmd.transfer_bytes() == 28
    write = c.decode(c.Write10(lba=0, transfer_length=4).cdb)
    assert write.data is None
    assert write.transfer_bytes(512) == 2048


def test_decoded_commands_have_their_own_empty_chains() -> None:
    raw = c.TestUnitReady().cdb
    first, second = c.decode(raw), c.decode(raw)
    assert first.handlers == [] and first.handlers is not second.handlers
    assert first.verify_handler is None


def test_from_bytes_keeps_the_input_when_it_is_canonical() -> None:
    raw = bytes.fromhex("28 00 00 00 00 10 00 00 08 00")
    assert c.Read10.from_bytes(raw).cdb == raw
