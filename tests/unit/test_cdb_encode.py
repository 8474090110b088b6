"""Encoding rules: bad values, value normalization, repr, equality, seed spellings."""

from __future__ import annotations

import copy
import enum
import pickle
from typing import Any, Callable, Dict

import pytest

from sgpy import command
from sgpy import command as c
from sgpy.errors import EncodeError

# (constructor, kwargs, command name, field name, range text, what went wrong)
BAD_VALUES = [
    (c.Read10, {"lba": 2**32, "transfer_length": 1}, "Read10", "lba", "0..4294967295", "4294967296"),
    (c.Read10, {"lba": -1, "transfer_length": 1}, "Read10", "lba", "0..4294967295", "-1"),
    (c.Read10, {"lba": "0", "transfer_length": 1}, "Read10", "lba", "0..4294967295", "str '0'"),
    (c.Read10, {"lba": 1.0, "transfer_length": 1}, "Read10", "lba", "0..4294967295", "float 1.0"),
    (c.Read10, {"lba": 0, "transfer_length": True}, "Read10", "transfer_length", "0..65535", "not a flag"),
    (c.Read10, {"lba": 0, "transfer_length": 1, "dpo": 2}, "Read10", "dpo", "True or False", "got 2"),
    (c.Read10, {"lba": 0, "transfer_length": 1, "fua": "yes"}, "Read10", "fua", "True or False", "str"),
    (c.Read10, {"lba": 0, "transfer_length": 1, "rdprotect": 8}, "Read10", "rdprotect", "0..7", "got 8"),
    (c.Read10, {"lba": 0, "transfer_length": 1, "group_number": 64}, "Read10", "group_number", "0..63", "64"),
    (c.Read6, {"lba": 2**21, "transfer_length": 1}, "Read6", "lba", "0..2097151", "2097152"),
    (c.Read6, {"lba": 0, "transfer_length": 256}, "Read6", "transfer_length", "0..255", "256"),
    (c.Read16, {"lba": 2**64, "transfer_length": 1}, "Read16", "lba", "0..18446744073709551615", ""),
    (c.Inquiry, {"page_code": 256}, "Inquiry", "page_code", "0..255", "256"),
    (c.Inquiry, {"allocation_length": 65536}, "Inquiry", "allocation_length", "0..65535", ""),
    (c.Inquiry, {"evpd": None}, "Inquiry", "evpd", "required", "None"),
    (c.ModeSense6, {"pc": 4}, "ModeSense6", "pc", "0..3", "4"),
    (c.ModeSense6, {"page_code": 0x40}, "ModeSense6", "page_code", "0..63", "64"),
    (c.ReadBuffer10, {"allocation_length": 2**24}, "ReadBuffer10", "allocation_length", "0..16777215", ""),
    (c.StartStopUnit, {"power_condition": 16}, "StartStopUnit", "power_condition", "0..15", "16"),
    (c.PersistentReserveOutReserve, {"type": 16}, "PersistentReserveOutReserve", "type", "0..15", ""),
    (c.AtaPassThrough16, {"features": 0x10000}, "AtaPassThrough16", "features", "0..65535", ""),
    (c.TestUnitReady, {"control": 256}, "TestUnitReady", "control", "0..255", "256"),
]


@pytest.mark.parametrize("cls, kwargs, name, field, allowed, got", BAD_VALUES)
def test_bad_values_name_command_field_and_range(
    cls: Callable[..., Any], kwargs: Dict[str, Any], name: str, field: str, allowed: str, got: str
) -> None:
    with pytest.raises(EncodeError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{name}: field {field!r}")
    assert allowed in message
    assert got in message
    assert isinstance(info.value, ValueError)
    assert info.value.field == field  # type: ignore[attr-defined]
    assert info.value.command == name  # type: ignore[attr-defined]


def test_missing_required_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="lba"):
        c.Read10(transfer_length=1)  # type: ignore[call-arg]


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        c.Read10(0, 1)  # type: ignore[misc]


class Power(enum.IntEnum):
    ACTIVE = 1
    STANDBY = 3


@pytest.mark.parametrize(
    "cmd, field, expected",
    [
        (c.Read10(lba=0, transfer_length=1, dpo=1), "dpo", True),
        (c.Read10(lba=0, transfer_length=1, fua=0), "fua", False),
        (c.StartStopUnit(power_condition=Power.STANDBY), "power_condition", 3),
    ],
)
def test_values_are_normalized(cmd: c.Command, field: str, expected: Any) -> None:
    value = getattr(cmd, field)
    assert value == expected
    assert type(value) is type(expected)


def test_normalized_values_compare_equal_to_plain_ones() -> None:
    assert c.Read10(lba=0, transfer_length=1, dpo=1) == c.Read10(lba=0, transfer_length=1, dpo=True)
    assert repr(c.StartStopUnit(power_condition=Power.STANDBY)).count("power_condition=3") == 1


def test_repr_names_every_field_in_wire_order() -> None:
    assert repr(c.Read10(lba=0, transfer_length=1)) == (
        "Read10(rdprotect=0, dpo=False, fua=False, rarc=False, fua_nv=False, lba=0, "
        "group_number=0, transfer_length=1, control=0)"
    )


def test_repr_shows_data_size_not_contents() -> None:
    assert repr(c.Write6(lba=0, data=b"a" * 512)) == "Write6(lba=0, transfer_length=None, control=0, data=<512 bytes>)"


def test_commands_are_frozen_and_hashable() -> None:
    cmd = c.Read10(lba=0, transfer_length=1)
    with pytest.raises(AttributeError):
        cmd.lba = 5  # type: ignore[misc]
    assert len({cmd, c.Read10(lba=0, transfer_length=1), c.Read10(lba=1, transfer_length=1)}) == 2


def test_equality_needs_the_same_class() -> None:
    assert c.Read10(lba=0, transfer_length=1) != c.Read12(lba=0, transfer_length=1)
    assert c.PersistentReserveInReadKeys() != c.PersistentReserveInReadReservation()


def test_payload_is_not_part_of_the_value() -> None:
    assert c.Write10(lba=0, transfer_length=1, data=b"a" * 512) == c.Write10(lba=0, transfer_length=1, data=b"b" * 512)


def test_class_facts() -> None:
    assert c.Read10.name == "Read10" == c.Read10(lba=0, transfer_length=1).name
    assert c.Read10.opcode == 0x28 and c.Read10.service_action is None and c.Read10.cdb_length == 10
    assert c.ReadCapacity16.opcode == 0x9E and c.ReadCapacity16.service_action == 0x10
    assert c.Read32.opcode == 0x7F and c.Read32.service_action == 0x0009


def test_seed_spellings() -> None:
    assert command.TestUnitReady().cdb == bytes(6)
    assert command.Read10(lba=0, transfer_length=1).cdb == bytes.fromhex("28000000000000000100")
    assert command.Write6(lba=0, data=b"a" * 512).data == b"a" * 512
    assert command.Reserve6().cdb == bytes.fromhex("160000000000")
    assert command.Release6().cdb == bytes.fromhex("170000000000")
    assert command.Read16(lba=0xFFFFFFFF, transfer_length=1).lba == 0xFFFFFFFF


def test_layout_is_inspectable() -> None:
    layout = c.Read10.layout()
    assert [f.name for f in layout.fields][:3] == ["rdprotect", "dpo", "fua"]
    assert layout.length == 10
    assert [spec.describe() for spec in layout.fields] == [
        "byte 1 bits 7-5",
        "byte 1 bit 4",
        "byte 1 bit 3",
        "byte 1 bit 2",
        "byte 1 bit 1",
        "bytes 2-5",
        "byte 6 bits 5-0",
        "bytes 7-8",
        "byte 9",
    ]


def _with_reserved_bits() -> c.Command:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c.decode(bytes.fromhex("28 01 00 00 00 00 00 00 01 00"))


@pytest.mark.parametrize(
    "cmd",
    [
        c.Read10(lba=1, transfer_length=2),
        c.Write6(lba=0, data=b"x" * 512),
        c.decode(c.Inquiry().cdb),
        _with_reserved_bits(),
        c.RawCommand(cdb=b"\xc0\x00", direction=2, length=4),
    ],
    ids=lambda cmd: cmd.name,
)
def test_commands_pickle_and_copy(cmd: c.Command) -> None:
    for clone in (pickle.loads(pickle.dumps(cmd)), copy.copy(cmd), copy.deepcopy(cmd)):
        assert type(clone) is type(cmd) and clone == cmd and repr(clone) == repr(cmd)
        assert clone.reserved_bits == cmd.reserved_bits
        assert clone.data == cmd.data
