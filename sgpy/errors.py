"""sgpy's exception tree.

Pure: nothing here does I/O.  ``SgError`` is the root of everything sgpy
raises on purpose; ``TaskFailed`` (the name the original sgpy README used) is
any command that failed on the device or on the way to it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "SgError",
    "EncodeError",
    "CdbLengthError",
    "DecodeError",
    "MalformedResponse",
    "TaskFailed",
    "CheckCondition",
    "NoSense",
    "RecoveredError",
    "NotReady",
    "MediumError",
    "HardwareError",
    "IllegalRequest",
    "UnitAttention",
    "DataProtect",
    "BlankCheck",
    "VendorSpecific",
    "CopyAborted",
    "AbortedCommand",
    "VolumeOverflow",
    "Miscompare",
    "Completed",
    "StatusError",
    "ReservationConflict",
    "Busy",
    "TaskSetFull",
    "AcaActive",
    "TaskAborted",
    "HostError",
    "CommandTimeout",
    "DeviceGone",
    "DriverError",
    "VerifyFailed",
    "DataMismatch",
    "ChannelClosed",
    "InheritedChannel",
    "QueueFull",
    "TransferTooLarge",
    "KernelMemoryError",
    "NotAnSgDevice",
    "UnsafeCommand",
    "SENSE_KEY_ERRORS",
    "STATUS_ERRORS",
    "check_condition_class",
    "status_error_class",
]


class SgError(Exception):
    """Root of every exception sgpy raises on purpose."""


class EncodeError(SgError, ValueError):
    """A command field value that cannot be encoded (range, sign, type)."""


class CdbLengthError(EncodeError):
    """A CDB of a length the channel's transport does not carry.

    Raised before anything is sent; the message names the length, the
    transport and the lengths it takes (``channel.cdb_lengths``).
    """


class DecodeError(SgError, ValueError):
    """CDB bytes that cannot be decoded (wrong length, reserved bits under strict)."""


class MalformedResponse(SgError, ValueError):
    """Device answer bytes that cannot be parsed: impossible lengths or codes."""


class TaskFailed(SgError):
    """A command failed on the device or on the way to it.

    Attributes carry the raw completion so a caller can look past the class:
    ``io`` (the IO object, when the engine raised it), ``command``,
    ``status``, ``host_status``, ``driver_status``, ``sense`` (decoded
    :class:`sgpy.sense.SenseData` or ``None``), ``sense_bytes``, ``resid``.

    ``message`` is the description of the failure; when it is empty, one is
    made from the fields (the decoded sense, the status name, the ``DID_*``
    name...).  When a command is known, ``str()`` is the message, an em dash
    and the command's repr, e.g. ``ILLEGAL REQUEST — Invalid field in CDB
    (24h/00h), field pointer: CDB byte 2 bit 7 — Read16(...)``.
    """

    def __init__(
        self,
        message: str = "",
        *,
        io: Any = None,
        command: Any = None,
        status: int = 0,
        host_status: int = 0,
        driver_status: int = 0,
        sense: Any = None,
        sense_bytes: bytes = b"",
        resid: int = 0,
    ) -> None:
        self.io = io
        self.command = command if command is not None else getattr(io, "command", None)
        self.status = status
        self.host_status = host_status
        self.driver_status = driver_status
        self.sense = sense
        self.sense_bytes = bytes(sense_bytes)
        self.resid = resid
        if not message:
            try:
                message = self._default_message()
            except Exception:  # a description must never stop the error itself
                message = type(self).__name__
        self.message = message
        super().__init__(message)

    def _default_message(self) -> str:
        """Describe the failure from the raw fields (used when no message is given)."""
        return (
            f"command failed: status 0x{self.status:02x}, host status 0x{self.host_status:02x}, "
            f"driver status 0x{self.driver_status:02x}"
        )

    def __str__(self) -> str:
        if self.command is None:
            return self.message
        try:
            shown = repr(self.command)
        except Exception:
            shown = f"<{type(self.command).__name__}>"
        return f"{self.message} \u2014 {shown}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class CheckCondition(TaskFailed):
    """CHECK CONDITION status; ``sense`` holds the decoded sense (or None).

    ``sense_key``, ``asc`` and ``ascq`` read through to the sense (None when
    there is none), so a specific condition is caught with, for example::

        except IllegalRequest as exc:
            if (exc.asc, exc.ascq) != (0x24, 0x00):
                raise
    """

    @property
    def sense_key(self) -> Any:
        """The :class:`~sgpy.constants.SenseKey`, or None without sense data."""
        return getattr(self.sense, "sense_key", None)

    @property
    def asc(self) -> Optional[int]:
        """The additional sense code, or None without sense data."""
        return getattr(self.sense, "asc", None)

    @property
    def ascq(self) -> Optional[int]:
        """The additional sense code qualifier, or None without sense data."""
        return getattr(self.sense, "ascq", None)

    def matches(self, asc: int, ascq: Optional[int] = None) -> bool:
        """True when the sense carries this ASC (and this ASCQ, when given)."""
        if self.sense is None or self.asc != asc:
            return False
        return ascq is None or self.ascq == ascq

    def _default_message(self) -> str:
        if self.sense is not None:
            return str(self.sense)
        if self.sense_bytes:
            return f"CHECK CONDITION with undecodable sense data: {self.sense_bytes.hex()}"
        return "CHECK CONDITION without sense data"


class NoSense(CheckCondition):
    """CHECK CONDITION with sense key NO SENSE (e.g. a filemark or ILI)."""


class RecoveredError(CheckCondition):
    """Sense key RECOVERED ERROR.  The engine treats it as success by default."""


class NotReady(CheckCondition):
    """Sense key NOT READY."""


class MediumError(CheckCondition):
    """Sense key MEDIUM ERROR; ``sense.information`` is usually the failing LBA."""


class HardwareError(CheckCondition):
    """Sense key HARDWARE ERROR."""


class IllegalRequest(CheckCondition):
    """Sense key ILLEGAL REQUEST (bad opcode, field, LBA out of range...)."""


class UnitAttention(CheckCondition):
    """Sense key UNIT ATTENTION (reset, capacity change, mode change...)."""


class DataProtect(CheckCondition):
    """Sense key DATA PROTECT (write protected, access denied)."""


class BlankCheck(CheckCondition):
    """Sense key BLANK CHECK."""


class VendorSpecific(CheckCondition):
    """Sense key VENDOR SPECIFIC."""


class CopyAborted(CheckCondition):
    """Sense key COPY ABORTED."""


class AbortedCommand(CheckCondition):
    """Sense key ABORTED COMMAND."""


class VolumeOverflow(CheckCondition):
    """Sense key VOLUME OVERFLOW."""


class Miscompare(CheckCondition):
    """Sense key MISCOMPARE (VERIFY with BYTCHK, COMPARE AND WRITE)."""


class Completed(CheckCondition):
    """Sense key COMPLETED."""


class StatusError(TaskFailed):
    """A non-GOOD SCSI status other than CHECK CONDITION."""

    def _default_message(self) -> str:
        from sgpy.constants import ScsiStatus

        code = self.status & 0x7E
        try:
            name = ScsiStatus(code).name.replace("_", " ")
        except ValueError:
            name = "unknown status"
        return f"{name} (status 0x{self.status:02x})"


class ReservationConflict(StatusError):
    """RESERVATION CONFLICT status."""


class Busy(StatusError):
    """BUSY status."""


class TaskSetFull(StatusError):
    """TASK SET FULL status."""


class AcaActive(StatusError):
    """ACA ACTIVE status."""


class TaskAborted(StatusError):
    """TASK ABORTED status."""


class HostError(TaskFailed):
    """The host adapter / transport failed the command; ``host_name`` is the ``DID_*`` name."""

    def _default_message(self) -> str:
        return f"host status {self.host_name} (0x{self.host_status:02x})"

    @property
    def host_name(self) -> str:
        from sgpy.constants import HostStatus

        try:
            return HostStatus(self.host_status).name
        except ValueError:
            return f"DID_0x{self.host_status:02x}"


class CommandTimeout(HostError):
    """The command timed out (DID_TIME_OUT, or the reactor's watchdog)."""

    def _default_message(self) -> str:
        if self.host_status:
            return f"command timed out ({self.host_name})"
        if self.driver_status & 0x0F == 0x06:
            return "command timed out (DRIVER_TIMEOUT)"
        return "command timed out"


class DeviceGone(HostError):
    """The device is gone: DID_NO_CONNECT, ENODEV, or the fd hung up."""

    def _default_message(self) -> str:
        if self.host_status:
            return f"device gone ({self.host_name})"
        return "device gone"


class DriverError(TaskFailed):
    """The midlayer's driver byte reported an error; ``driver_name`` is the ``DRIVER_*`` name."""

    @property
    def driver_name(self) -> str:
        """The ``DRIVER_*`` name of the driver byte's low nibble."""
        from sgpy.constants import DriverStatus

        try:
            return DriverStatus(self.driver_status & 0x0F).name
        except ValueError:
            return f"DRIVER_0x{self.driver_status & 0x0F:02x}"

    def _default_message(self) -> str:
        return f"driver status {self.driver_name} (0x{self.driver_status:02x})"


#: Sense key value -> the CheckCondition subclass raised for it (SPC-5 table 52).
SENSE_KEY_ERRORS: Dict[int, Type[CheckCondition]] = {
    0x0: NoSense,
    0x1: RecoveredError,
    0x2: NotReady,
    0x3: MediumError,
    0x4: HardwareError,
    0x5: IllegalRequest,
    0x6: UnitAttention,
    0x7: DataProtect,
    0x8: BlankCheck,
    0x9: VendorSpecific,
    0xA: CopyAborted,
    0xB: AbortedCommand,
    0xD: VolumeOverflow,
    0xE: Miscompare,
    0xF: Completed,
}

#: SAM status code -> the StatusError subclass raised for it (SAM-5 table 30).
STATUS_ERRORS: Dict[int, Type[StatusError]] = {
    0x08: Busy,
    0x18: ReservationConflict,
    0x28: TaskSetFull,
    0x30: AcaActive,
    0x40: TaskAborted,
}


def check_condition_class(sense_key: int) -> Type[CheckCondition]:
    """The exception class for a sense key (plain CheckCondition for the reserved Ch)."""
    return SENSE_KEY_ERRORS.get(sense_key, CheckCondition)


def status_error_class(status: int) -> Type[StatusError]:
    """The exception class for a SAM status other than GOOD/CHECK CONDITION."""
    return STATUS_ERRORS.get(status & 0x7E, StatusError)


class VerifyFailed(TaskFailed):
    """A verify handler rejected a completion (e.g. must_fail saw success)."""


class DataMismatch(TaskFailed):
    """Data read back is not what a stamped write put there (a job's ``verify=``).

    The command succeeded on the device; the data did not survive.  Every
    block a stamping job writes begins with its own LBA and the job's tag,
    8 bytes each, big-endian; ``lba`` is the block read, ``found_lba`` and
    ``found_tag`` what it held instead of ``lba`` and ``expected_tag``.
    """

    def __init__(self, message: str = "", *, lba: int = 0, found_lba: int = 0, expected_tag: int = 0,
                 found_tag: int = 0, **fields: Any) -> None:
        self.lba = lba
        self.found_lba = found_lba
        self.expected_tag = expected_tag
        self.found_tag = found_tag
        super().__init__(message, **fields)

    def _default_message(self) -> str:
        if self.found_lba == 0 and self.found_tag == 0:
            # Zeros where the stamp belongs: most likely no stamp at all
            # (a lost write, or a block never written by a stamping job).
            return (f"data mismatch at LBA {self.lba}: the block holds no stamp (its first 16 bytes are zero: "
                    f"a lost write, or a block no stamping job wrote), not its own with tag "
                    f"{self.expected_tag:#x}")
        return (f"data mismatch at LBA {self.lba}: the block holds LBA {self.found_lba}'s stamp with tag "
                f"{self.found_tag:#x}, not its own with tag {self.expected_tag:#x}")


class ChannelClosed(SgError):
    """The channel was closed; no more commands may be submitted to it."""


class InheritedChannel(ChannelClosed):
    """A channel, reactor or job used in a process that inherited it through ``fork()``.

    Its fds and epoll instance are shared with the parent, whose commands
    they carry: the child may only close them (which closes the child's
    copies and nothing else) and open the device again for itself.
    """


class QueueFull(SgError):
    """A bounded submission queue is full."""


class TransferTooLarge(SgError, ValueError):
    """A transfer exceeds what sg or the device accepts (the limit is named)."""


class KernelMemoryError(TaskFailed):
    """The kernel could not allocate the buffers of a command (ENOMEM).

    sg gathers a transfer in kernel pages it allocates per command (or the
    fd's reserve buffer); a large transfer may not find that much memory
    (drivers/scsi/sg.c, sg_build_indirect).  Nothing was sent to the device.
    Split the transfer into smaller commands.
    """


class UnsafeCommand(SgError):
    """A command that changes or destroys data, refused by a safety policy (``read_only``)."""

    def __init__(self, message: str = "", *, command: Any = None) -> None:
        super().__init__(message)
        self.command = command


class NotAnSgDevice(SgError, OSError):
    """A path that is not an sg (or usable SG_IO) device node."""

