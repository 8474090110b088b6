"""Named SCSI and Linux SCSI-midlayer codes.

Pure data: nothing here does I/O or imports the engine.  Every value is
cited to the T10 standard or the kernel header that defines it.
"""

from __future__ import annotations

import enum

__all__ = [
    "Direction",
    "SenseKey",
    "ScsiStatus",
    "HostStatus",
    "DriverStatus",
    "PeripheralDeviceType",
    "ProtocolIdentifier",
    "PersistentReservationType",
    "DEFAULT_TIMEOUT_MS",
]

#: Default per-command timeout handed to sg, in milliseconds (the seed's
#: ``Input(timeout=60000, ...)``).
DEFAULT_TIMEOUT_MS = 60000


class Direction(enum.IntEnum):
    """Which way a command's data moves, seen from the initiator.

    The engine maps these to the kernel's ``SG_DXFER_*`` values (taken from
    ``<scsi/sg.h>`` through cffi); these are sgpy's own names, not the ABI.
    """

    NONE = 0
    TO_DEVICE = 1
    FROM_DEVICE = 2


class SenseKey(enum.IntEnum):
    """Sense keys, SPC-5 table 52 ("Sense key descriptions")."""

    NO_SENSE = 0x0
    RECOVERED_ERROR = 0x1
    NOT_READY = 0x2
    MEDIUM_ERROR = 0x3
    HARDWARE_ERROR = 0x4
    ILLEGAL_REQUEST = 0x5
    UNIT_ATTENTION = 0x6
    DATA_PROTECT = 0x7
    BLANK_CHECK = 0x8
    VENDOR_SPECIFIC = 0x9
    COPY_ABORTED = 0xA
    ABORTED_COMMAND = 0xB
    RESERVED_C = 0xC
    VOLUME_OVERFLOW = 0xD
    MISCOMPARE = 0xE
    COMPLETED = 0xF

    @property
    def text(self) -> str:
        """The key as T10 spells it, e.g. ``"ILLEGAL REQUEST"``."""
        if self is SenseKey.RESERVED_C:
            return "RESERVED (0Ch)"
        return self.name.replace("_", " ")


class ScsiStatus(enum.IntEnum):
    """SCSI status codes, SAM-5 table 30 ("Status codes")."""

    GOOD = 0x00
    CHECK_CONDITION = 0x02
    CONDITION_MET = 0x04
    BUSY = 0x08
    INTERMEDIATE = 0x10  # obsolete in SAM-4
    INTERMEDIATE_CONDITION_MET = 0x14  # obsolete in SAM-4
    RESERVATION_CONFLICT = 0x18
    COMMAND_TERMINATED = 0x22  # obsolete in SAM-4
    TASK_SET_FULL = 0x28
    ACA_ACTIVE = 0x30
    TASK_ABORTED = 0x40


class HostStatus(enum.IntEnum):
    """The Linux SCSI midlayer's host byte (``DID_*``).

    Defined in the kernel's ``include/scsi/scsi_status.h`` (``enum
    host_status``); sg reports it in ``sg_io_hdr.host_status``.  These are
    not part of ``<scsi/sg.h>``, so they are named here for decoding.
    """

    DID_OK = 0x00
    DID_NO_CONNECT = 0x01
    DID_BUS_BUSY = 0x02
    DID_TIME_OUT = 0x03
    DID_BAD_TARGET = 0x04
    DID_ABORT = 0x05
    DID_PARITY = 0x06
    DID_ERROR = 0x07
    DID_RESET = 0x08
    DID_BAD_INTR = 0x09
    DID_PASSTHROUGH = 0x0A
    DID_SOFT_ERROR = 0x0B
    DID_IMM_RETRY = 0x0C
    DID_REQUEUE = 0x0D
    DID_TRANSPORT_DISRUPTED = 0x0E
    DID_TRANSPORT_FAILFAST = 0x0F
    DID_TARGET_FAILURE = 0x10
    DID_NEXUS_FAILURE = 0x11
    DID_ALLOC_FAILURE = 0x12
    DID_MEDIUM_ERROR = 0x13
    DID_TRANSPORT_MARGINAL = 0x14


class DriverStatus(enum.IntEnum):
    """The midlayer's driver byte as sg reports it (``DRIVER_*``).

    From the kernel's ``drivers/scsi/sg.c`` / historic ``include/scsi/scsi.h``:
    only ``DRIVER_SENSE`` (sense data is present) and ``DRIVER_TIMEOUT``
    survive in current kernels; the others are kept for old ones.
    """

    DRIVER_OK = 0x00
    DRIVER_BUSY = 0x01
    DRIVER_SOFT = 0x02
    DRIVER_MEDIA = 0x03
    DRIVER_ERROR = 0x04
    DRIVER_INVALID = 0x05
    DRIVER_TIMEOUT = 0x06
    DRIVER_HARD = 0x07
    DRIVER_SENSE = 0x08


class PeripheralDeviceType(enum.IntEnum):
    """Peripheral device types, SPC-5 table 141."""

    DISK = 0x00
    TAPE = 0x01
    PRINTER = 0x02
    PROCESSOR = 0x03
    WORM = 0x04
    CD_DVD = 0x05
    SCANNER = 0x06
    OPTICAL = 0x07
    MEDIUM_CHANGER = 0x08
    COMMUNICATIONS = 0x09
    STORAGE_ARRAY = 0x0C
    ENCLOSURE = 0x0D
    RBC = 0x0E
    OCRW = 0x0F
    BRIDGE = 0x10
    OSD = 0x11
    ADC = 0x12
    SECURITY_MANAGER = 0x13
    ZBC = 0x14
    WELL_KNOWN_LU = 0x1E
    UNKNOWN = 0x1F


class ProtocolIdentifier(enum.IntEnum):
    """SCSI transport protocols, SPC-5 table 477 ("Protocol identifier values")."""

    FCP = 0x0
    SPI = 0x1
    SSA = 0x2
    SBP = 0x3
    SRP = 0x4
    ISCSI = 0x5
    SAS = 0x6
    ADT = 0x7
    ATA = 0x8
    UAS = 0x9
    SOP = 0xA
    PCIE = 0xB
    NONE = 0xF


class PersistentReservationType(enum.IntEnum):
    """Persistent reservation types, SPC-5 table 200 (the TYPE field)."""

    WRITE_EXCLUSIVE = 0x1
    EXCLUSIVE_ACCESS = 0x3
    WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 0x5
    EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 0x6
    WRITE_EXCLUSIVE_ALL_REGISTRANTS = 0x7
    EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 0x8


from sgpy._opcodes import opcode_name  # noqa: E402

__all__ += ["opcode_name"]
