"""Block commands, from SBC-4 (SCSI Block Commands - 4).

Layouts follow the SBC-4 CDB tables.  GROUP NUMBER is the 6-bit field of
SBC-4 (bits 5-0).  A few bits SBC-4 made obsolete are kept as fields under
their SBC-3 names because older devices still act on them: FUA_NV (byte 1
bit 1 of READ/WRITE), PBDATA/LBDATA (WRITE SAME), the LOGICAL BLOCK ADDRESS
and PMI of READ CAPACITY.  The seed's ``read10(..., fua_nv=False, ...)``
shows the first of these.
"""

from __future__ import annotations

from typing import ClassVar, Optional, Tuple

from sgpy._fields import REQUIRED, FieldSpec, field
from sgpy.cdb.base import (
    AllocationIn,
    BlockIn,
    BlockOut,
    C,
    Command,
    DataOut,
    NoData,
    ParameterOut,
    base,
    block_size_for,
    command,
    nbytes,
)
from sgpy.cdb.spc import SA_BYTE1
from sgpy.constants import Direction
from sgpy.errors import EncodeError

__all__ = [
    "Read6",
    "Read10",
    "Read12",
    "Read16",
    "Read32",
    "Write6",
    "Write10",
    "Write12",
    "Write16",
    "Write32",
    "WriteAndVerify10",
    "WriteAndVerify16",
    "WriteAndVerify32",
    "Verify10",
    "Verify16",
    "Verify32",
    "ReadCapacity10",
    "ReadCapacity16",
    "SynchronizeCache10",
    "SynchronizeCache16",
    "WriteSame10",
    "WriteSame16",
    "WriteSame32",
    "Unmap",
    "CompareAndWrite",
    "Orwrite16",
    "StartStopUnit",
    "PreventAllowMediumRemoval",
    "FormatUnit",
    "GetLbaStatus",
    "SanitizeOverwrite",
    "SanitizeBlockErase",
    "SanitizeCryptographicErase",
    "SanitizeExitFailureMode",
    "ReassignBlocks",
    "ReadDefectData10",
    "ReadDefectData12",
]

# -- READ / WRITE ---------------------------------------------------------------------


@command
class Read6(BlockIn):
    """READ(6) (08h, SBC-4): read up to 256 blocks below LBA 2**21 (TRANSFER LENGTH 0 means 256)."""

    opcode = 0x08
    cdb_length = 6
    standard = "SBC-4"
    _zero_blocks = 256
    # byte 1 bits 7-5 reserved
    lba = field(1, 4, 21, default=REQUIRED)
    transfer_length = field(4, default=REQUIRED, doc="0 means 256 blocks")
    control = field(5)


@command
class Read10(BlockIn):
    """READ(10) (28h, SBC-4)."""

    opcode = 0x28
    cdb_length = 10
    standard = "SBC-4"
    rdprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    rarc = field(1, 2, 1, doc="rebuild assist recovery control")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=32, default=REQUIRED)
    group_number = field(6, 5, 6)
    transfer_length = field(7, width=16, default=REQUIRED)
    control = field(9)


@command
class Read12(BlockIn):
    """READ(12) (A8h, SBC-4)."""

    opcode = 0xA8
    cdb_length = 12
    standard = "SBC-4"
    rdprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    rarc = field(1, 2, 1, doc="rebuild assist recovery control")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=32, default=REQUIRED)
    transfer_length = field(6, width=32, default=REQUIRED)
    group_number = field(10, 5, 6)
    control = field(11)


@command
class Read16(BlockIn):
    """READ(16) (88h, SBC-4); DLD2..DLD0 select a command duration limit."""

    opcode = 0x88
    cdb_length = 16
    standard = "SBC-4"
    rdprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    rarc = field(1, 2, 1, doc="rebuild assist recovery control")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    dld2 = field(1, 0, 1, doc="duration limit descriptor bit 2")
    lba = field(2, width=64, default=REQUIRED)
    transfer_length = field(10, width=32, default=REQUIRED)
    dld1 = field(14, 7, 1, doc="duration limit descriptor bit 1")
    dld0 = field(14, 6, 1, doc="duration limit descriptor bit 0")
    group_number = field(14, 5, 6)
    control = field(15)


@command
class Write6(BlockOut):
    """WRITE(6) (0Ah, SBC-4): write up to 256 blocks below LBA 2**21 (TRANSFER LENGTH 0 means 256)."""

    opcode = 0x0A
    cdb_length = 6
    standard = "SBC-4"
    changes_data = True
    _zero_blocks = 256
    lba = field(1, 4, 21, default=REQUIRED)
    transfer_length = field(4, default=None, doc="0 means 256 blocks; from len(data) when omitted")
    control = field(5)


@command
class Write10(BlockOut):
    """WRITE(10) (2Ah, SBC-4)."""

    opcode = 0x2A
    cdb_length = 10
    standard = "SBC-4"
    changes_data = True
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=32, default=REQUIRED)
    group_number = field(6, 5, 6)
    transfer_length = field(7, width=16, default=None, doc="from len(data) when omitted")
    control = field(9)


@command
class Write12(BlockOut):
    """WRITE(12) (AAh, SBC-4)."""

    opcode = 0xAA
    cdb_length = 12
    standard = "SBC-4"
    changes_data = True
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=32, default=REQUIRED)
    transfer_length = field(6, width=32, default=None, doc="from len(data) when omitted")
    group_number = field(10, 5, 6)
    control = field(11)


@command
class Write16(BlockOut):
    """WRITE(16) (8Ah, SBC-4); DLD2..DLD0 select a command duration limit."""

    opcode = 0x8A
    cdb_length = 16
    standard = "SBC-4"
    changes_data = True
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    dld2 = field(1, 0, 1, doc="duration limit descriptor bit 2")
    lba = field(2, width=64, default=REQUIRED)
    transfer_length = field(10, width=32, default=None, doc="from len(data) when omitted")
    dld1 = field(14, 7, 1, doc="duration limit descriptor bit 1")
    dld0 = field(14, 6, 1, doc="duration limit descriptor bit 0")
    group_number = field(14, 5, 6)
    control = field(15)


# -- 32-byte variable-length CDBs (opcode 7Fh, SPC-5 4.2.5.3 / SBC-4) -------------------


class _Variable32:
    """Variable-length CDB family (SPC-5 4.2.5.3, SBC-4 32-byte CDBs).

    CONTROL sits in byte 1, ADDITIONAL CDB LENGTH (18h) in byte 7 and the
    service action in bytes 8-9; each command still declares its own fields.
    """

    __slots__ = ()
    opcode = 0x7F
    cdb_length = 32
    standard = "SBC-4"
    _sa_spec: ClassVar[Optional[FieldSpec]] = FieldSpec(byte=8, bit=7, width=16, name="service_action")
    _extra_consts: ClassVar[Tuple[Tuple[FieldSpec, int], ...]] = (
        (FieldSpec(byte=7, bit=7, width=8, name="additional_cdb_length"), 0x18),
    )


@command
class Read32(_Variable32, BlockIn):
    """READ(32) (7Fh/0009h, SBC-4): READ with protection information tags."""

    service_action = 0x0009
    control = field(1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    rdprotect = field(10, 7, 3)
    dpo = field(10, 4, 1, doc="disable page out")
    fua = field(10, 3, 1, doc="force unit access")
    rarc = field(10, 2, 1, doc="rebuild assist recovery control")
    fua_nv = field(10, 1, 1, doc="SBC-3; obsolete in SBC-4")
    # byte 11 reserved
    lba = field(12, width=64, default=REQUIRED)
    expected_initial_logical_block_reference_tag = field(20, width=32)
    expected_logical_block_application_tag = field(24, width=16)
    logical_block_application_tag_mask = field(26, width=16)
    transfer_length = field(28, width=32, default=REQUIRED)


@command
class Write32(_Variable32, BlockOut):
    """WRITE(32) (7Fh/000Bh, SBC-4): WRITE with protection information tags."""

    service_action = 0x000B
    changes_data = True
    control = field(1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    wrprotect = field(10, 7, 3)
    dpo = field(10, 4, 1, doc="disable page out")
    fua = field(10, 3, 1, doc="force unit access")
    fua_nv = field(10, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(12, width=64, default=REQUIRED)
    expected_initial_logical_block_reference_tag = field(20, width=32)
    expected_logical_block_application_tag = field(24, width=16)
    logical_block_application_tag_mask = field(26, width=16)
    transfer_length = field(28, width=32, default=None, doc="from len(data) when omitted")


# -- WRITE AND VERIFY / VERIFY ------------------------------------------------------------


@command
class WriteAndVerify10(BlockOut):
    """WRITE AND VERIFY(10) (2Eh, SBC-4): write, then verify (BYTCHK 01b compares with the data)."""

    opcode = 0x2E
    cdb_length = 10
    standard = "SBC-4"
    changes_data = True
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    bytchk = field(1, 2, 2, doc="byte check (2 bits since SBC-4)")
    lba = field(2, width=32, default=REQUIRED)
    group_number = field(6, 5, 6)
    transfer_length = field(7, width=16, default=None, doc="from len(data) when omitted")
    control = field(9)


@command
class WriteAndVerify16(BlockOut):
    """WRITE AND VERIFY(16) (8Eh, SBC-4)."""

    opcode = 0x8E
    cdb_length = 16
    standard = "SBC-4"
    changes_data = True
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    bytchk = field(1, 2, 2, doc="byte check (2 bits since SBC-4)")
    lba = field(2, width=64, default=REQUIRED)
    transfer_length = field(10, width=32, default=None, doc="from len(data) when omitted")
    group_number = field(14, 5, 6)
    control = field(15)


@command
class WriteAndVerify32(_Variable32, BlockOut):
    """WRITE AND VERIFY(32) (7Fh/000Ch, SBC-4)."""

    service_action = 0x000C
    changes_data = True
    control = field(1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    wrprotect = field(10, 7, 3)
    dpo = field(10, 4, 1, doc="disable page out")
    bytchk = field(10, 2, 2, doc="byte check (2 bits since SBC-4)")
    lba = field(12, width=64, default=REQUIRED)
    expected_initial_logical_block_reference_tag = field(20, width=32)
    expected_logical_block_application_tag = field(24, width=16)
    logical_block_application_tag_mask = field(26, width=16)
    transfer_length = field(28, width=32, default=None, doc="from len(data) when omitted")


class _Verify(DataOut):
    """VERIFY: BYTCHK 00b moves no data; 01b sends VERIFICATION LENGTH blocks to compare;
    11b sends one block compared with every block (SBC-4).  10b is reserved in SBC-4 and
    is counted like 01b."""

    __slots__ = ()

    @property
    def direction(self) -> Direction:  # type: ignore[override]
        """NONE without byte check, TO_DEVICE with it."""
        return Direction.TO_DEVICE if self.bytchk else Direction.NONE  # type: ignore[attr-defined]

    @property
    def needs_block_size(self) -> bool:  # type: ignore[override]
        """True when data is compared (BYTCHK != 0)."""
        return self.bytchk != 0  # type: ignore[attr-defined,no-any-return]

    def _resolve(self) -> None:
        if self.data is not None and not self.bytchk:  # type: ignore[attr-defined]
            raise EncodeError(f"{self.name}: data is only sent with bytchk 1 or 3")

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """0, VERIFICATION LENGTH × block_size, or one block, by BYTCHK."""
        bytchk = self.bytchk  # type: ignore[attr-defined]
        if not bytchk:
            return 0
        blocks = 1 if bytchk == 3 else self.verification_length  # type: ignore[attr-defined]
        return blocks * block_size_for(self.name, block_size)  # type: ignore[no-any-return]

    def for_block_size(self: C, block_size: int) -> C:
        """Check that ``data`` matches the bytes BYTCHK calls for; returns self."""
        size = self.transfer_bytes(block_size_for(self.name, block_size))
        data = self.data
        if data is not None and nbytes(data) != size:
            raise EncodeError(f"{self.name}: len(data)={nbytes(data)} but bytchk/verification_length need {size}")
        return self


@command
class Verify10(_Verify):
    """VERIFY(10) (2Fh, SBC-4): check blocks, optionally against sent data."""

    opcode = 0x2F
    cdb_length = 10
    standard = "SBC-4"
    vrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    bytchk = field(1, 2, 2, doc="byte check")
    lba = field(2, width=32, default=REQUIRED)
    group_number = field(6, 5, 6)
    verification_length = field(7, width=16, default=REQUIRED)
    control = field(9)


@command
class Verify16(_Verify):
    """VERIFY(16) (8Fh, SBC-4)."""

    opcode = 0x8F
    cdb_length = 16
    standard = "SBC-4"
    vrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    bytchk = field(1, 2, 2, doc="byte check")
    lba = field(2, width=64, default=REQUIRED)
    verification_length = field(10, width=32, default=REQUIRED)
    group_number = field(14, 5, 6)
    control = field(15)


@command
class Verify32(_Variable32, _Verify):
    """VERIFY(32) (7Fh/000Ah, SBC-4)."""

    service_action = 0x000A
    control = field(1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    vrprotect = field(10, 7, 3)
    dpo = field(10, 4, 1, doc="disable page out")
    bytchk = field(10, 2, 2, doc="byte check")
    lba = field(12, width=64, default=REQUIRED)
    expected_initial_logical_block_reference_tag = field(20, width=32)
    expected_logical_block_application_tag = field(24, width=16)
    logical_block_application_tag_mask = field(26, width=16)
    verification_length = field(28, width=32, default=REQUIRED)


# -- capacity, cache, medium ------------------------------------------------------------


@command
class ReadCapacity10(Command):
    """READ CAPACITY(10) (25h, SBC-4): last LBA and block length, 8 bytes of parameter data."""

    opcode = 0x25
    cdb_length = 10
    standard = "SBC-4"
    direction: ClassVar[Direction] = Direction.FROM_DEVICE
    # byte 1 bit 0 obsolete (RELADR)
    lba = field(2, width=32, doc="SBC-3; obsolete in SBC-4")
    # bytes 6-7 reserved
    pmi = field(8, 0, 1, doc="partial medium indicator (SBC-3; obsolete in SBC-4)")
    control = field(9)

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """Always 8: the READ CAPACITY(10) parameter data."""
        return 8


@base
class _ServiceActionIn16(AllocationIn):
    """SERVICE ACTION IN(16) (9Eh) family: service action in byte 1 bits 4-0."""

    opcode = 0x9E
    cdb_length = 16
    standard = "SBC-4"
    _sa_spec = SA_BYTE1


@command
class ReadCapacity16(_ServiceActionIn16):
    """READ CAPACITY(16) (9Eh/10h, SBC-4): 64-bit capacity, protection and provisioning facts."""

    service_action = 0x10
    lba = field(2, width=64, doc="SBC-3; obsolete in SBC-4")
    allocation_length = field(10, width=32, default=32)
    pmi = field(14, 0, 1, doc="partial medium indicator (SBC-3; obsolete in SBC-4)")
    control = field(15)


@command
class GetLbaStatus(_ServiceActionIn16):
    """GET LBA STATUS(16) (9Eh/12h, SBC-4): provisioning status of LBA extents."""

    service_action = 0x12
    starting_lba = field(2, width=64)
    allocation_length = field(10, width=32, default=4096)
    report_type = field(14)
    control = field(15)


@command
class SynchronizeCache10(NoData):
    """SYNCHRONIZE CACHE(10) (35h, SBC-4): flush cached blocks (0 blocks means to the end)."""

    opcode = 0x35
    cdb_length = 10
    standard = "SBC-4"
    immed = field(1, 1, 1, doc="immediate")
    lba = field(2, width=32)
    group_number = field(6, 5, 6)
    number_of_logical_blocks = field(7, width=16)
    control = field(9)


@command
class SynchronizeCache16(NoData):
    """SYNCHRONIZE CACHE(16) (91h, SBC-4)."""

    opcode = 0x91
    cdb_length = 16
    standard = "SBC-4"
    immed = field(1, 1, 1, doc="immediate")
    lba = field(2, width=64)
    number_of_logical_blocks = field(10, width=32)
    group_number = field(14, 5, 6)
    control = field(15)


# -- WRITE SAME, UNMAP, COMPARE AND WRITE -------------------------------------------------


class _WriteSame(DataOut):
    """WRITE SAME: one logical block of data written to every block (none with NDOB)."""

    __slots__ = ()
    changes_data: ClassVar[bool] = True

    @property
    def _ndob(self) -> bool:
        return bool(getattr(self, "ndob", False))

    @property
    def direction(self) -> Direction:  # type: ignore[override]
        """TO_DEVICE, or NONE with NDOB (no data-out buffer)."""
        return Direction.NONE if self._ndob else Direction.TO_DEVICE

    @property
    def needs_block_size(self) -> bool:  # type: ignore[override]
        """True unless NDOB: the one block sent is one logical block long."""
        return not self._ndob

    def _resolve(self) -> None:
        if self.data is not None and self._ndob:
            raise EncodeError(f"{self.name}: ndob means no data-out buffer, but data was given")

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """One logical block, or 0 with NDOB."""
        return 0 if self._ndob else block_size_for(self.name, block_size)

    def for_block_size(self: C, block_size: int) -> C:
        """Check that ``data`` is exactly one logical block; returns self."""
        size = self.transfer_bytes(block_size_for(self.name, block_size))
        data = self.data
        if data is not None and nbytes(data) != size:
            raise EncodeError(f"{self.name}: data must be one logical block ({size} bytes), got {nbytes(data)}")
        return self


@command
class WriteSame10(_WriteSame):
    """WRITE SAME(10) (41h, SBC-4): write one block's data to a range (UNMAP may deallocate)."""

    opcode = 0x41
    cdb_length = 10
    standard = "SBC-4"
    wrprotect = field(1, 7, 3)
    anchor = field(1, 4, 1)
    unmap = field(1, 3, 1)
    pbdata = field(1, 2, 1, doc="SBC-3; obsolete in SBC-4")
    lbdata = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=32, default=REQUIRED)
    group_number = field(6, 5, 6)
    number_of_logical_blocks = field(7, width=16, default=REQUIRED)
    control = field(9)


@command
class WriteSame16(_WriteSame):
    """WRITE SAME(16) (93h, SBC-4); NDOB writes zeros (or unmaps) without sending a block."""

    opcode = 0x93
    cdb_length = 16
    standard = "SBC-4"
    wrprotect = field(1, 7, 3)
    anchor = field(1, 4, 1)
    unmap = field(1, 3, 1)
    pbdata = field(1, 2, 1, doc="SBC-3; obsolete in SBC-4")
    lbdata = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    ndob = field(1, 0, 1, doc="no data-out buffer")
    lba = field(2, width=64, default=REQUIRED)
    number_of_logical_blocks = field(10, width=32, default=REQUIRED)
    group_number = field(14, 5, 6)
    control = field(15)


@command
class WriteSame32(_Variable32, _WriteSame):
    """WRITE SAME(32) (7Fh/000Dh, SBC-4)."""

    service_action = 0x000D
    control = field(1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    wrprotect = field(10, 7, 3)
    anchor = field(10, 4, 1)
    unmap = field(10, 3, 1)
    pbdata = field(10, 2, 1, doc="SBC-3; obsolete in SBC-4")
    lbdata = field(10, 1, 1, doc="SBC-3; obsolete in SBC-4")
    ndob = field(10, 0, 1, doc="no data-out buffer")
    lba = field(12, width=64, default=REQUIRED)
    expected_initial_logical_block_reference_tag = field(20, width=32)
    expected_logical_block_application_tag = field(24, width=16)
    logical_block_application_tag_mask = field(26, width=16)
    number_of_logical_blocks = field(28, width=32, default=REQUIRED)


@command
class Unmap(ParameterOut):
    """UNMAP (42h, SBC-4): deallocate the LBA ranges listed in ``data``."""

    opcode = 0x42
    cdb_length = 10
    standard = "SBC-4"
    changes_data = True
    anchor = field(1, 0, 1)
    # bytes 2-5 reserved
    group_number = field(6, 5, 6)
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@command
class CompareAndWrite(BlockOut):
    """COMPARE AND WRITE (89h, SBC-4): atomically compare then write.

    ``data`` holds the verify blocks followed by the write blocks, so it is
    2 × NUMBER OF LOGICAL BLOCKS × block size long.
    """

    opcode = 0x89
    cdb_length = 16
    standard = "SBC-4"
    changes_data = True
    _blocks_field = "number_of_logical_blocks"
    _data_factor = 2
    wrprotect = field(1, 7, 3)
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    fua_nv = field(1, 1, 1, doc="SBC-3; obsolete in SBC-4")
    lba = field(2, width=64, default=REQUIRED)
    # bytes 10-12 reserved
    number_of_logical_blocks = field(13, default=None, doc="from len(data) when omitted")
    group_number = field(14, 5, 6)
    control = field(15)


@command
class Orwrite16(BlockOut):
    """ORWRITE(16) (8Bh, SBC-4): OR ``data`` into the blocks (read them, OR the Data-Out Buffer in, write
    the result) as one uninterrupted operation."""

    opcode = 0x8B
    cdb_length = 16
    standard = "SBC-4"
    changes_data = True
    orprotect = field(1, 7, 3, doc="ORWRITE protection information checking")
    dpo = field(1, 4, 1, doc="disable page out")
    fua = field(1, 3, 1, doc="force unit access")
    # byte 1 bits 2-0 reserved (bit 1 was FUA_NV in SBC-3)
    lba = field(2, width=64, default=REQUIRED)
    transfer_length = field(10, width=32, default=None, doc="from len(data) when omitted")
    group_number = field(14, 5, 6)
    control = field(15)


@command
class StartStopUnit(NoData):
    """START STOP UNIT (1Bh, SBC-4): spin up/down, eject, or change power condition."""

    opcode = 0x1B
    cdb_length = 6
    standard = "SBC-4"
    immed = field(1, 0, 1, doc="immediate")
    # byte 2 reserved
    power_condition_modifier = field(3, 3, 4)
    power_condition = field(4, 7, 4)
    no_flush = field(4, 2, 1)
    loej = field(4, 1, 1, doc="load/eject")
    start = field(4, 0, 1)
    control = field(5)


@command
class PreventAllowMediumRemoval(NoData):
    """PREVENT ALLOW MEDIUM REMOVAL (1Eh, SBC-4)."""

    opcode = 0x1E
    cdb_length = 6
    standard = "SBC-4"
    # bytes 1-3 reserved
    prevent = field(4, 1, 2)
    control = field(5)


# -- formatting and defects ---------------------------------------------------------------


@command
class FormatUnit(DataOut):
    """FORMAT UNIT (04h, SBC-4): low-level format; destroys every block.

    With FMTDATA set, ``data`` is the parameter list (header, optional
    initialization pattern, defect list); its length is not in the CDB, so
    the transfer is ``len(data)``.
    """

    opcode = 0x04
    cdb_length = 6
    standard = "SBC-4"
    changes_data = True
    irreversible = True
    fmtpinfo = field(1, 7, 2, doc="format protection information")
    longlist = field(1, 5, 1)
    fmtdata = field(1, 4, 1, doc="format data: a parameter list follows")
    cmplst = field(1, 3, 1, doc="complete list")
    defect_list_format = field(1, 2, 3)
    vendor_specific = field(2)
    # byte 3 and byte 4 bits 7-2 obsolete
    ffmt = field(4, 1, 2, doc="fast format")
    control = field(5)

    @property
    def direction(self) -> Direction:  # type: ignore[override]
        """TO_DEVICE with FMTDATA, else NONE."""
        return Direction.TO_DEVICE if self.fmtdata else Direction.NONE

    def _resolve(self) -> None:
        if self.data is not None and not self.fmtdata:
            raise EncodeError(f"{self.name}: data is only sent with fmtdata=True")

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """len(data) with FMTDATA, else 0."""
        if not self.fmtdata:
            return 0
        if self.data is None:
            raise EncodeError(f"{self.name}: fmtdata is set but no data given (the CDB has no length)")
        return nbytes(self.data)


@base
class _Sanitize(NoData):
    """SANITIZE (48h, SBC-4) family: service action in byte 1 bits 4-0."""

    opcode = 0x48
    cdb_length = 10
    standard = "SBC-4"
    changes_data = True
    irreversible = True
    _sa_spec = SA_BYTE1
    immed = field(1, 7, 1, doc="immediate")
    znr = field(1, 6, 1, doc="zoned no reset")
    ause = field(1, 5, 1, doc="allow unrestricted sanitize exit")
    control = field(9)


@command
class SanitizeOverwrite(ParameterOut):
    """SANITIZE, OVERWRITE (48h/01h, SBC-4): overwrite every block with the pattern in ``data``."""

    opcode = 0x48
    cdb_length = 10
    standard = "SBC-4"
    changes_data = True
    irreversible = True
    _sa_spec = SA_BYTE1
    service_action = 0x01
    immed = field(1, 7, 1, doc="immediate")
    znr = field(1, 6, 1, doc="zoned no reset")
    ause = field(1, 5, 1, doc="allow unrestricted sanitize exit")
    # bytes 2-6 reserved
    parameter_list_length = field(7, width=16, default=None)
    control = field(9)


@command
class SanitizeBlockErase(_Sanitize):
    """SANITIZE, BLOCK ERASE (48h/02h, SBC-4)."""

    service_action = 0x02


@command
class SanitizeCryptographicErase(_Sanitize):
    """SANITIZE, CRYPTOGRAPHIC ERASE (48h/03h, SBC-4)."""

    service_action = 0x03


@command
class SanitizeExitFailureMode(_Sanitize):
    """SANITIZE, EXIT FAILURE MODE (48h/1Fh, SBC-4)."""

    service_action = 0x1F


@command
class ReassignBlocks(DataOut):
    """REASSIGN BLOCKS (07h, SBC-4): remap the LBAs listed in ``data``.

    The parameter list carries its own length, so the transfer is ``len(data)``.
    """

    opcode = 0x07
    cdb_length = 6
    standard = "SBC-4"
    changes_data = True
    longlba = field(1, 1, 1)
    longlist = field(1, 0, 1)
    # bytes 2-4 reserved
    control = field(5)

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """len(data); EncodeError when no data was given."""
        if self.data is None:
            raise EncodeError(f"{self.name}: no data given (the CDB has no length)")
        return nbytes(self.data)


@command
class ReadDefectData10(AllocationIn):
    """READ DEFECT DATA(10) (37h, SBC-4)."""

    opcode = 0x37
    cdb_length = 10
    standard = "SBC-4"
    # byte 1 reserved
    req_plist = field(2, 4, 1, doc="request primary list")
    req_glist = field(2, 3, 1, doc="request grown list")
    defect_list_format = field(2, 2, 3)
    # bytes 3-6 reserved
    allocation_length = field(7, width=16, default=4096)
    control = field(9)


@command
class ReadDefectData12(AllocationIn):
    """READ DEFECT DATA(12) (B7h, SBC-4)."""

    opcode = 0xB7
    cdb_length = 12
    standard = "SBC-4"
    req_plist = field(1, 4, 1, doc="request primary list")
    req_glist = field(1, 3, 1, doc="request grown list")
    defect_list_format = field(1, 2, 3)
    address_descriptor_index = field(2, width=32)
    allocation_length = field(6, width=32, default=4096)
    # byte 10 reserved
    control = field(11)
