"""Completion classification: success, recovered success, or which exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpy import errors
from sgpy.constants import SenseKey
from sgpy.errors import TaskFailed
from sgpy.status import Completion, classify, raise_for


def sense(key: int, asc: int = 0, ascq: int = 0, sks: bytes = b"\0\0\0") -> bytes:
    """Fixed-format sense, SPC-5 table 55."""
    return bytes([0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0]) + sks


class FakeCommand:
    def __repr__(self) -> str:
        return "Read16(lba=4294967295, transfer_length=1)"


@pytest.mark.parametrize(
    ("status", "host", "driver", "sense_bytes", "error_cls"),
    [
        # success
        (0x00, 0, 0, b"", None),
        (0x04, 0, 0, b"", None),  # CONDITION MET
        (0x00, 0, 0x08, b"", None),  # DRIVER_SENSE alone
        (0x01, 0, 0, b"", None),  # reserved bit 0 ignored
        # check conditions, one per sense key
        (0x02, 0, 0x08, sense(0x0), errors.NoSense),
        (0x02, 0, 0x08, sense(0x2, 0x04, 0x01), errors.NotReady),
        (0x02, 0, 0x08, sense(0x3, 0x11), errors.MediumError),
        (0x02, 0, 0x08, sense(0x4, 0x44), errors.HardwareError),
        (0x02, 0, 0x08, sense(0x5, 0x24), errors.IllegalRequest),
        (0x02, 0, 0x08, sense(0x6, 0x29), errors.UnitAttention),
        (0x02, 0, 0x08, sense(0x7, 0x27), errors.DataProtect),
        (0x02, 0, 0x08, sense(0x8), errors.BlankCheck),
        (0x02, 0, 0x08, sense(0x9), errors.VendorSpecific),
        (0x02, 0, 0x08, sense(0xA), errors.CopyAborted),
        (0x02, 0, 0x08, sense(0xB, 0x47), errors.AbortedCommand),
        (0x02, 0, 0x08, sense(0xC), errors.CheckCondition),
        (0x02, 0, 0x08, sense(0xD), errors.VolumeOverflow),
        (0x02, 0, 0x08, sense(0xE, 0x1D), errors.Miscompare),
        (0x02, 0, 0x08, sense(0xF), errors.Completed),
        (0x22, 0, 0x08, sense(0x5, 0x20), errors.IllegalRequest),  # COMMAND TERMINATED (obsolete)
        (0x02, 0, 0x00, b"", errors.CheckCondition),  # no sense at all
        (0x02, 0, 0x08, b"\x7f\x00\x05", errors.CheckCondition),  # undecodable sense
        # other statuses
        (0x08, 0, 0, b"", errors.Busy),
        (0x18, 0, 0, b"", errors.ReservationConflict),
        (0x28, 0, 0, b"", errors.TaskSetFull),
        (0x30, 0, 0, b"", errors.AcaActive),
        (0x40, 0, 0, b"", errors.TaskAborted),
        (0x3E, 0, 0, b"", errors.StatusError),
        # host byte
        (0x00, 0x03, 0, b"", errors.CommandTimeout),
        (0x00, 0x01, 0, b"", errors.DeviceGone),
        (0x00, 0x04, 0, b"", errors.DeviceGone),
        (0x00, 0x07, 0, b"", errors.HostError),
        (0x02, 0x07, 0x08, sense(0x5, 0x24), errors.HostError),  # host wins over status
        (0x00, 0x55, 0, b"", errors.HostError),  # unknown DID
        # driver byte
        (0x00, 0, 0x06, b"", errors.CommandTimeout),
        (0x00, 0, 0x04, b"", errors.DriverError),
        (0x00, 0, 0x24, b"", errors.DriverError),  # with a suggest bit
        (0x00, 0, 0x18, b"", None),  # DRIVER_SENSE + suggest bit
    ],
)
def test_classify(status: int, host: int, driver: int, sense_bytes: bytes, error_cls) -> None:
    c = classify(status=status, host_status=host, driver_status=driver, sense=sense_bytes, resid=3)
    if error_cls is None:
        assert c.ok and c.error is None
        return
    assert not c.ok
    assert type(c.error) is error_cls
    assert isinstance(c.error, TaskFailed)
    e = c.error
    assert (e.status, e.host_status, e.driver_status, e.resid) == (status, host, driver, 3)
    assert e.sense_bytes == sense_bytes
    assert str(e) and repr(e)


def test_all_zero_is_the_shared_success() -> None:
    c = classify(status=0, host_status=0, driver_status=0)
    assert c is classify(status=0, host_status=0, driver_status=0, sense=b"")
    assert c == Completion(ok=True)


def test_recovered_error_is_success_with_sense() -> None:
    c = classify(status=0x02, host_status=0, driver_status=0x08, sense=sense(1, 0x17, 0x01))
    assert c.ok and c.recovered and c.error is None
    assert c.sense is not None and c.sense.sense_key is SenseKey.RECOVERED_ERROR


def test_good_with_sense_keeps_it() -> None:
    c = classify(status=0, host_status=0, driver_status=0x08, sense=sense(1, 0, 0x1D))
    assert c.ok and not c.recovered and c.sense.ascq == 0x1D


def test_check_condition_without_sense() -> None:
    c = classify(status=0x02, host_status=0, driver_status=0)
    assert type(c.error) is errors.CheckCondition
    assert c.error.sense is None and c.sense is None
    assert str(c.error) == "CHECK CONDITION without sense data"


def test_message_names_sense_and_command() -> None:
    c = classify(status=0x02, host_status=0, driver_status=0x08, sense=sense(5, 0x24, 0, b"\xcf\x00\x02"),
                 command=FakeCommand())
    assert str(c.error) == (
        "ILLEGAL REQUEST \u2014 Invalid field in CDB (24h/00h), field pointer: CDB byte 2 bit 7 "
        "\u2014 Read16(lba=4294967295, transfer_length=1)"
    )
    assert c.error.sense is c.sense
    assert c.error.asc == 0x24 and c.error.ascq == 0 and c.error.sense_key is SenseKey.ILLEGAL_REQUEST


def test_command_taken_from_io() -> None:
    class Io:
        command = FakeCommand()

    io = Io()
    c = classify(status=0x18, host_status=0, driver_status=0, io=io)
    assert c.error.io is io and c.error.command is io.command
    assert str(c.error).endswith("\u2014 Read16(lba=4294967295, transfer_length=1)")


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (dict(status=0, host_status=3, driver_status=0), "command timed out (DID_TIME_OUT)"),
        (dict(status=0, host_status=0, driver_status=6), "command timed out (DRIVER_TIMEOUT)"),
        (dict(status=0, host_status=1, driver_status=0), "device gone (DID_NO_CONNECT)"),
        (dict(status=0, host_status=7, driver_status=0), "host status DID_ERROR (0x07)"),
        (dict(status=0, host_status=0x55, driver_status=0), "host status DID_0x55 (0x55)"),
        (dict(status=0, host_status=0, driver_status=4), "driver status DRIVER_ERROR (0x04)"),
        (dict(status=0x18, host_status=0, driver_status=0), "RESERVATION CONFLICT (status 0x18)"),
        (dict(status=0x28, host_status=0, driver_status=0), "TASK SET FULL (status 0x28)"),
    ],
)
def test_messages(kwargs: dict, text: str) -> None:
    assert str(classify(**kwargs).error) == text


def test_raise_for() -> None:
    assert raise_for(status=0, host_status=0, driver_status=0).ok
    with pytest.raises(errors.MediumError) as info:
        raise_for(status=2, host_status=0, driver_status=8, sense=sense(3, 0x11))
    assert info.value.matches(0x11) and info.value.matches(0x11, 0) and not info.value.matches(0x11, 1)
    with pytest.raises(errors.Busy):
        classify(status=8, host_status=0, driver_status=0).raise_for_error()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0x20),
    st.integers(0, 255),
    st.binary(max_size=64),
    st.integers(-10, 1 << 20),
)
def test_classify_total(status: int, host: int, driver: int, sense_bytes: bytes, resid: int) -> None:
    c = classify(status=status, host_status=host, driver_status=driver, sense=sense_bytes, resid=resid,
                 command=FakeCommand())
    assert c.ok == (c.error is None)
    if c.error is not None:
        assert str(c.error).endswith("transfer_length=1)")
        repr(c.error)
