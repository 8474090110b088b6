"""Verify handlers and validators, on IO-shaped values (no device needed)."""

import pytest

from sgpy import command, handler
from sgpy.constants import HostStatus, ScsiStatus, SenseKey
from sgpy.errors import CommandTimeout, IllegalRequest, MediumError, ReservationConflict, VerifyFailed
from sgpy.sense import decode


class Done:
    """The attributes a handler reads from a finished IO."""

    def __init__(self, error=None, data=b""):
        self.error = error
        self.data = data
        self.command = command.Read10(lba=1, transfer_length=1)


def check_condition(key, asc, ascq, cls):
    raw = bytes([0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0])
    return cls(sense=decode(raw), status=2, sense_bytes=raw)


ILLEGAL_LBA = check_condition(0x5, 0x21, 0x00, IllegalRequest)
UNRECOVERED = check_condition(0x3, 0x11, 0x00, MediumError)


def test_success_raises_the_failure_and_passes_success():
    assert handler.success(Done()) is None
    with pytest.raises(IllegalRequest):
        handler.success(Done(ILLEGAL_LBA))


def test_might_fail_accepts_both():
    assert handler.might_fail(Done()) is None
    assert handler.might_fail(Done(ILLEGAL_LBA)) is None


def test_bare_must_fail():
    assert handler.must_fail(Done(ILLEGAL_LBA)) is None
    with pytest.raises(VerifyFailed, match="expected to fail \\(any failure\\), but it succeeded"):
        handler.must_fail(Done())


@pytest.mark.parametrize(
    "expectation, error, ok",
    [
        (dict(sense_key=SenseKey.ILLEGAL_REQUEST), ILLEGAL_LBA, True),
        (dict(sense_key=SenseKey.ILLEGAL_REQUEST, asc=0x21, ascq=0x00), ILLEGAL_LBA, True),
        (dict(sense_key=SenseKey.MEDIUM_ERROR), ILLEGAL_LBA, False),
        (dict(asc=0x11), UNRECOVERED, True),
        (dict(asc=0x11, ascq=0x01), UNRECOVERED, False),
        (dict(status=ScsiStatus.CHECK_CONDITION), UNRECOVERED, True),
        (dict(status=ScsiStatus.RESERVATION_CONFLICT), ReservationConflict(status=0x18), True),
        (dict(status=ScsiStatus.RESERVATION_CONFLICT), UNRECOVERED, False),
        (dict(host_status=HostStatus.DID_TIME_OUT), CommandTimeout(host_status=3), True),
        (dict(host_status=HostStatus.DID_TIME_OUT), UNRECOVERED, False),
        (dict(exception=MediumError), UNRECOVERED, True),
        (dict(exception=MediumError), ILLEGAL_LBA, False),
        (dict(sense_key=SenseKey.MEDIUM_ERROR), CommandTimeout(host_status=3), False),
    ],
)
def test_parameterised_must_fail(expectation, error, ok):
    check = handler.must_fail(**expectation)
    if ok:
        assert check(Done(error)) is None
    else:
        with pytest.raises(VerifyFailed) as info:
            check(Done(error))
        assert info.value.__cause__ is error
    with pytest.raises(VerifyFailed, match="but it succeeded"):
        check(Done())


def test_must_fail_repr_names_the_expectation():
    assert repr(handler.must_fail(sense_key=SenseKey.MEDIUM_ERROR, asc=0x11)) == \
        "must_fail(sense_key=MEDIUM_ERROR, asc=0x11)"


def test_expect_data_names_the_first_differing_byte():
    check = handler.expect_data(b"abcdef")
    assert check(Done(data=b"abcdef")) is None
    with pytest.raises(VerifyFailed, match="at byte 3 \\(6 bytes read, 6 expected\\)"):
        check(Done(data=b"abcXef"))
    with pytest.raises(VerifyFailed, match="at byte 3 \\(3 bytes read"):
        check(Done(data=b"abc"))


def test_expect_length_and_expect():
    assert handler.expect_length(3)(Done(data=b"abc")) is None
    with pytest.raises(VerifyFailed, match="2 bytes moved, 3 expected"):
        handler.expect_length(3)(Done(data=b"ab"))
    with pytest.raises(VerifyFailed, match="not all zero"):
        handler.expect(lambda io: not any(io.data), "not all zero")(Done(data=b"\x01"))


def test_verify_failures_name_the_command():
    with pytest.raises(VerifyFailed) as info:
        handler.must_fail(Done())
    assert str(info.value).endswith("— Read10(rdprotect=0, dpo=False, fua=False, rarc=False, fua_nv=False, "
                                    "lba=1, group_number=0, transfer_length=1, control=0)")
