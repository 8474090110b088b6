"""The exception tree and its messages."""

from __future__ import annotations

import pytest

import sgpy
from sgpy import errors
from sgpy.constants import SenseKey
from sgpy.sense import decode


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (errors.TaskFailed, (errors.SgError,)),
        (errors.CheckCondition, (errors.TaskFailed,)),
        (errors.IllegalRequest, (errors.CheckCondition,)),
        (errors.StatusError, (errors.TaskFailed,)),
        (errors.ReservationConflict, (errors.StatusError,)),
        (errors.HostError, (errors.TaskFailed,)),
        (errors.CommandTimeout, (errors.HostError,)),
        (errors.DeviceGone, (errors.HostError,)),
        (errors.DriverError, (errors.TaskFailed,)),
        (errors.EncodeError, (errors.SgError, ValueError)),
        (errors.DecodeError, (errors.SgError, ValueError)),
        (errors.MalformedResponse, (errors.SgError, ValueError)),
    ],
)
def test_tree(cls, bases) -> None:
    for base in bases:
        assert issubclass(cls, base)


@pytest.mark.parametrize("key", list(SenseKey))
def test_every_sense_key_has_a_class(key: SenseKey) -> None:
    cls = errors.check_condition_class(key)
    assert issubclass(cls, errors.CheckCondition)
    if key is not SenseKey.RESERVED_C:
        assert cls is not errors.CheckCondition
        assert cls.__name__.lower() == key.name.replace("_", "").lower()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(0x08, errors.Busy), (0x18, errors.ReservationConflict), (0x28, errors.TaskSetFull),
     (0x30, errors.AcaActive), (0x40, errors.TaskAborted), (0x19, errors.ReservationConflict),
     (0x10, errors.StatusError)],
)
def test_status_error_class(status: int, cls) -> None:
    assert errors.status_error_class(status) is cls


def test_importable_from_package_root() -> None:
    for name in ("TaskFailed", "CheckCondition", "IllegalRequest", "CommandTimeout", "MalformedResponse"):
        assert getattr(sgpy, name) is getattr(errors, name)


def test_constructor_keywords() -> None:
    e = errors.TaskFailed("boom", io=None, command=None, status=2, host_status=0, driver_status=8,
                          sense=None, sense_bytes=bytearray(b"\x70"), resid=5)
    assert (str(e), e.message, e.status, e.driver_status, e.sense_bytes, e.resid) == (
        "boom", "boom", 2, 8, b"\x70", 5)
    assert repr(e) == "TaskFailed('boom')"


def test_explicit_message_wins() -> None:
    e = errors.IllegalRequest("custom", sense=decode(bytes.fromhex("700005000000000a00000000240000000000")))
    assert str(e) == "custom"


def test_message_from_sense_and_command() -> None:
    sense = decode(bytes.fromhex("700005000000000a00000000240000cf0002"))
    e = errors.IllegalRequest(sense=sense, command="Read16(lba=4294967295, transfer_length=1)")
    assert str(e) == (
        "ILLEGAL REQUEST \u2014 Invalid field in CDB (24h/00h), field pointer: CDB byte 2 bit 7 "
        "\u2014 'Read16(lba=4294967295, transfer_length=1)'"
    )
    assert e.asc == 0x24 and e.matches(0x24, 0x00)


def test_bad_repr_does_not_break_str() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    e = errors.Busy(status=8, command=Broken())
    assert str(e) == "BUSY (status 0x08) \u2014 <Broken>"


def test_check_condition_accessors_without_sense() -> None:
    e = errors.CheckCondition()
    assert e.sense_key is None and e.asc is None and e.ascq is None and not e.matches(0x24)
    assert str(e) == "CHECK CONDITION without sense data"


def test_undecodable_sense_message() -> None:
    e = errors.CheckCondition(sense_bytes=b"\x7f\x01")
    assert str(e) == "CHECK CONDITION with undecodable sense data: 7f01"


def test_driver_and_host_names() -> None:
    assert errors.DriverError(driver_status=0x27).driver_name == "DRIVER_HARD"
    assert errors.DriverError(driver_status=0x0E).driver_name == "DRIVER_0x0e"
    assert errors.HostError(host_status=0x0E).host_name == "DID_TRANSPORT_DISRUPTED"
    assert str(errors.DeviceGone()) == "device gone"
    assert str(errors.CommandTimeout()) == "command timed out"


def test_catch_specific_asc_pattern() -> None:
    sense = decode(bytes.fromhex("700005000000000a00000000200000000000"))
    try:
        raise errors.IllegalRequest(sense=sense)
    except errors.IllegalRequest as exc:
        assert exc.matches(0x20, 0x00)
        assert "Invalid command operation code" in str(exc)
