"""ATA PASS-THROUGH, from SAT-4 (SCSI / ATA Translation - 4).

The ATA registers are fields under their SAT-2 names: ``features``,
``count``, ``lba_low``, ``lba_mid``, ``lba_high``, ``device``, ``command``.
In the 16-byte CDB each of the first five is 16 bits wide, the high byte
being the "previous" (48-bit) register: ``lba_low`` is SAT-4's LBA (31:24)
in byte 7 and LBA (7:0) in byte 8, and so on.  :meth:`AtaPassThrough16.lba_registers`
splits a 48-bit LBA into them and ``ata_lba`` joins them again.

How data moves comes from the CDB itself (SAT-4): T_LENGTH says where the
length is (00b none, 01b FEATURES, 10b COUNT, 11b the TPSIU), BYT_BLOK
whether it counts bytes or blocks, T_TYPE whether blocks are 512 bytes or
the device's logical sector size, T_DIR the direction.  A count of zero
moves nothing here (no ATA "0 means 256" rule is applied).
"""

from __future__ import annotations

from typing import Dict, Optional

from sgpy._fields import field
from sgpy.cdb.base import C, DataOut, block_size_for, command, nbytes
from sgpy.constants import Direction
from sgpy.errors import EncodeError

__all__ = ["AtaPassThrough12", "AtaPassThrough16"]

# T_LENGTH values (SAT-4).
_NO_DATA, _IN_FEATURES, _IN_COUNT, _IN_TPSIU = 0, 1, 2, 3


class _AtaPassThrough(DataOut):
    """Transfer logic shared by both CDB sizes."""

    __slots__ = ()
    changes_data = True
    irreversible = True
    _wide = False

    @property
    def direction(self) -> Direction:  # type: ignore[override]
        """NONE when T_LENGTH is 0, else FROM_DEVICE with T_DIR set, TO_DEVICE without."""
        if self.t_length == _NO_DATA:  # type: ignore[attr-defined]
            return Direction.NONE
        return Direction.FROM_DEVICE if self.t_dir else Direction.TO_DEVICE  # type: ignore[attr-defined]

    @property
    def needs_block_size(self) -> bool:  # type: ignore[override]
        """True when the length counts logical sectors of the device (BYT_BLOK and T_TYPE)."""
        return self.t_length in (_IN_FEATURES, _IN_COUNT) and bool(self.byt_blok and self.t_type)  # type: ignore[attr-defined]

    def _resolve(self) -> None:
        if self.data is not None and self.direction is not Direction.TO_DEVICE:
            raise EncodeError(f"{self.name}: data is only sent with t_length != 0 and t_dir=False")

    def _count(self) -> int:
        register = self.features if self.t_length == _IN_FEATURES else self.count  # type: ignore[attr-defined]
        if self._wide and not self.extend:  # type: ignore[attr-defined]
            register &= 0xFF  # EXTEND=0: only the (7:0) registers count (SAT-4)
        return register  # type: ignore[no-any-return]

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """Bytes moved, as T_LENGTH / BYT_BLOK / T_TYPE describe."""
        t_length = self.t_length  # type: ignore[attr-defined]
        if t_length == _NO_DATA:
            return 0
        if t_length == _IN_TPSIU:
            if self.data is None:
                raise EncodeError(f"{self.name}: t_length=3 (TPSIU) needs data to size the transfer")
            return nbytes(self.data)
        count = self._count()
        if not self.byt_blok:  # type: ignore[attr-defined]
            return count
        if not self.t_type:  # type: ignore[attr-defined]
            return count * 512
        return count * block_size_for(self.name, block_size)

    def for_block_size(self: C, block_size: int) -> C:
        """Check that ``data`` matches the registers' length; returns self."""
        bs = block_size_for(self.name, block_size)
        data = self.data
        if data is not None:
            size = self.transfer_bytes(bs)
            if nbytes(data) != size:
                raise EncodeError(f"{self.name}: len(data)={nbytes(data)} but the registers describe {size} bytes")
        return self


@command
class AtaPassThrough12(_AtaPassThrough):
    """ATA PASS-THROUGH(12) (A1h, SAT-4): a 28-bit ATA command."""

    opcode = 0xA1
    cdb_length = 12
    standard = "SAT-4"
    multiple_count = field(1, 7, 3, doc="SAT-3; obsolete in SAT-4")
    protocol = field(1, 4, 4)
    # byte 1 bit 0 reserved
    off_line = field(2, 7, 2)
    ck_cond = field(2, 5, 1, doc="check condition: return the ATA registers")
    t_type = field(2, 4, 1, doc="blocks are logical sectors (else 512 bytes)")
    t_dir = field(2, 3, 1, doc="from the ATA device")
    byt_blok = field(2, 2, 1, doc="length counts blocks (else bytes)")
    t_length = field(2, 1, 2, doc="where the length is: 0 none, 1 features, 2 count, 3 TPSIU")
    features = field(3)
    count = field(4)
    lba_low = field(5, doc="LBA (7:0)")
    lba_mid = field(6, doc="LBA (15:8)")
    lba_high = field(7, doc="LBA (23:16)")
    device = field(8)
    command = field(9)
    # byte 10 reserved
    control = field(11)

    @property
    def ata_lba(self) -> int:
        """The 24 LBA bits held in the LBA registers."""
        return (self.lba_high << 16) | (self.lba_mid << 8) | self.lba_low  # type: ignore[no-any-return]


@command
class AtaPassThrough16(_AtaPassThrough):
    """ATA PASS-THROUGH(16) (85h, SAT-4): a 28- or 48-bit (EXTEND) ATA command."""

    opcode = 0x85
    cdb_length = 16
    standard = "SAT-4"
    _wide = True
    multiple_count = field(1, 7, 3, doc="SAT-3; obsolete in SAT-4")
    protocol = field(1, 4, 4)
    extend = field(1, 0, 1, doc="48-bit command: the (15:8) registers count")
    off_line = field(2, 7, 2)
    ck_cond = field(2, 5, 1, doc="check condition: return the ATA registers")
    t_type = field(2, 4, 1, doc="blocks are logical sectors (else 512 bytes)")
    t_dir = field(2, 3, 1, doc="from the ATA device")
    byt_blok = field(2, 2, 1, doc="length counts blocks (else bytes)")
    t_length = field(2, 1, 2, doc="where the length is: 0 none, 1 features, 2 count, 3 TPSIU")
    features = field(3, width=16, doc="FEATURES (15:8) and (7:0)")
    count = field(5, width=16, doc="COUNT (15:8) and (7:0)")
    lba_low = field(7, width=16, doc="LBA (31:24) and LBA (7:0)")
    lba_mid = field(9, width=16, doc="LBA (39:32) and LBA (15:8)")
    lba_high = field(11, width=16, doc="LBA (47:40) and LBA (23:16)")
    device = field(13)
    command = field(14)
    control = field(15)

    @staticmethod
    def lba_registers(lba: int) -> Dict[str, int]:
        """Split a 48-bit ATA LBA into ``lba_low``/``lba_mid``/``lba_high`` keyword values."""
        if isinstance(lba, bool) or not isinstance(lba, int) or not 0 <= lba < 1 << 48:
            raise EncodeError(f"AtaPassThrough16: ATA LBA must be an int in 0..{(1 << 48) - 1}, got {lba!r}")
        return {
            "lba_low": ((lba >> 24) & 0xFF) << 8 | (lba & 0xFF),
            "lba_mid": ((lba >> 32) & 0xFF) << 8 | ((lba >> 8) & 0xFF),
            "lba_high": ((lba >> 40) & 0xFF) << 8 | ((lba >> 16) & 0xFF),
        }

    @property
    def ata_lba(self) -> int:
        """The 48-bit LBA the three registers hold (inverse of :meth:`lba_registers`)."""
        low, mid, high = self.lba_low, self.lba_mid, self.lba_high
        return (
            ((high >> 8) << 40)
            | ((mid >> 8) << 32)
            | ((low >> 8) << 24)
            | ((high & 0xFF) << 16)
            | ((mid & 0xFF) << 8)
            | (low & 0xFF)
        )
