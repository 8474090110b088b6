"""Classify a finished command: success, recovered success, or which exception.

Pure: no I/O.  The engine hands :func:`classify` the fields of the kernel's
``sg_io_hdr`` (``status``, ``host_status``, ``driver_status``, ``resid`` and
the sense bytes written) and gets a :class:`Completion` back.  The exception
is built, not raised, so the engine decides when and where to raise it.

``status`` is the full SCSI status byte as ``sg_io_hdr.status`` reports it
(not ``masked_status``, which is shifted right by one); the SAM status code
is ``status & 0x7e`` (SAM-5 table 30; bits 0 and 7 are reserved/obsolete).
``driver_status`` may carry the old "suggest" bits in its high nibble; only
the low nibble (``DRIVER_*``) is looked at.
"""

from __future__ import annotations

from typing import Any, Optional, Type

import attr

from sgpy.constants import DriverStatus, HostStatus, ScsiStatus, SenseKey
from sgpy.errors import (
    CheckCondition,
    CommandTimeout,
    DeviceGone,
    DriverError,
    HostError,
    MalformedResponse,
    TaskFailed,
    check_condition_class,
    status_error_class,
)
from sgpy.sense import SenseData, decode

__all__ = ["Completion", "classify", "raise_for"]

# SAM status codes that mean the command completed successfully: GOOD,
# CONDITION MET, and the obsolete linked-command INTERMEDIATE statuses.
_SUCCESS = frozenset(
    {ScsiStatus.GOOD, ScsiStatus.CONDITION_MET, ScsiStatus.INTERMEDIATE, ScsiStatus.INTERMEDIATE_CONDITION_MET}
)
# Statuses that come with sense data: CHECK CONDITION and the obsolete
# COMMAND TERMINATED (SAM-2), which old targets use the same way.
_WITH_SENSE = frozenset({ScsiStatus.CHECK_CONDITION, ScsiStatus.COMMAND_TERMINATED})
# Host bytes meaning the device is no longer reachable.
_GONE = frozenset({HostStatus.DID_NO_CONNECT, HostStatus.DID_BAD_TARGET})


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Completion:
    """How a command ended.

    ``ok`` is True for success, including success with a recovered error
    (``recovered`` True, sense key RECOVERED ERROR: the data is good and
    ``sense`` says what the device had to do).  When ``ok`` is False,
    ``error`` holds the exception (not raised) and ``sense`` the decoded
    sense, if any.
    """

    ok: bool
    recovered: bool = False
    sense: Optional[SenseData] = None
    error: Optional[TaskFailed] = None

    def raise_for_error(self) -> None:
        """Raise ``error`` when the command failed; do nothing on success."""
        if self.error is not None:
            raise self.error


_OK = Completion(ok=True)


def _decode_quietly(sense: bytes) -> Optional[SenseData]:
    """Decode sense bytes, treating undecodable sense as absent."""
    if not sense:
        return None
    try:
        return decode(sense)
    except MalformedResponse:
        return None


def classify(
    *,
    status: int,
    host_status: int,
    driver_status: int,
    sense: bytes = b"",
    resid: int = 0,
    command: Any = None,
    io: Any = None,
) -> Completion:
    """Classify one completion (see the module docstring for the fields).

    In order: a non-zero host byte wins (DID_TIME_OUT → CommandTimeout,
    DID_NO_CONNECT/DID_BAD_TARGET → DeviceGone, others → HostError); then
    the driver byte (DRIVER_TIMEOUT → CommandTimeout, anything but
    DRIVER_OK/DRIVER_SENSE → DriverError); then the SCSI status: GOOD,
    CONDITION MET → success; CHECK CONDITION → success with
    ``recovered=True`` for RECOVERED ERROR, else the sense key's
    CheckCondition subclass (plain CheckCondition with ``sense=None`` when
    there is no decodable sense); any other status → its StatusError
    subclass.  The exception is built with ``io`` and ``command`` so its
    text ends with the command's repr.
    """
    if not (status or host_status or driver_status or sense):
        return _OK

    sense_bytes = bytes(sense)
    fields = dict(
        io=io,
        command=command,
        status=status,
        host_status=host_status,
        driver_status=driver_status,
        sense_bytes=sense_bytes,
        resid=resid,
    )

    if host_status:
        decoded = _decode_quietly(sense_bytes)
        cls: Type[TaskFailed] = HostError
        if host_status == HostStatus.DID_TIME_OUT:
            cls = CommandTimeout
        elif host_status in _GONE:
            cls = DeviceGone
        return Completion(ok=False, sense=decoded, error=cls(sense=decoded, **fields))

    driver = driver_status & 0x0F
    if driver == DriverStatus.DRIVER_TIMEOUT:
        decoded = _decode_quietly(sense_bytes)
        return Completion(ok=False, sense=decoded, error=CommandTimeout(sense=decoded, **fields))
    if driver not in (DriverStatus.DRIVER_OK, DriverStatus.DRIVER_SENSE):
        decoded = _decode_quietly(sense_bytes)
        return Completion(ok=False, sense=decoded, error=DriverError(sense=decoded, **fields))

    sam = status & 0x7E
    if sam in _SUCCESS:
        if not sense_bytes:
            return _OK
        return Completion(ok=True, sense=_decode_quietly(sense_bytes))
    if sam in _WITH_SENSE:
        decoded = _decode_quietly(sense_bytes)
        if decoded is None:
            return Completion(ok=False, error=CheckCondition(sense=None, **fields))
        if decoded.sense_key == SenseKey.RECOVERED_ERROR:
            return Completion(ok=True, recovered=True, sense=decoded)
        cls = check_condition_class(decoded.sense_key)
        return Completion(ok=False, sense=decoded, error=cls(sense=decoded, **fields))
    decoded = _decode_quietly(sense_bytes)
    return Completion(ok=False, sense=decoded, error=status_error_class(status)(sense=decoded, **fields))


def raise_for(
    *,
    status: int,
    host_status: int,
    driver_status: int,
    sense: bytes = b"",
    resid: int = 0,
    command: Any = None,
    io: Any = None,
) -> Completion:
    """:func:`classify`, then raise the error if there is one; returns the success."""
    completion = classify(
        status=status,
        host_status=host_status,
        driver_status=driver_status,
        sense=sense,
        resid=resid,
        command=command,
        io=io,
    )
    completion.raise_for_error()
    return completion
