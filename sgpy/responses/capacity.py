"""READ CAPACITY(10) and READ CAPACITY(16) parameter data (SBC-4 5.20, 5.21)."""

from __future__ import annotations

from typing import ClassVar, Optional, Type, TypeVar

import attrs

from sgpy.errors import MalformedResponse
from sgpy.responses._common import bits, decode_layout

__all__ = ["ReadCapacity10Data", "ReadCapacity16Data"]

C = TypeVar("C", bound="_CapacityData")


class _CapacityData:
    """What both READ CAPACITY answers share: a fixed size, the last LBA and the block length."""

    __slots__ = ()

    LENGTH: ClassVar[int]
    COMMAND: ClassVar[str]
    returned_lba: Optional[int]
    block_length: Optional[int]

    @classmethod
    def required_length(cls, buf: bytes) -> Optional[int]:
        """Always ``LENGTH``: the answer has a fixed size."""
        return cls.LENGTH

    @classmethod
    def from_bytes(cls: Type[C], buf: bytes) -> C:
        """Parse the ``LENGTH`` bytes; fewer give ``truncated``, and each field they cut is None."""
        buf = bytes(buf)
        if not buf:
            raise MalformedResponse(f"{cls.COMMAND} data is empty")
        fields = decode_layout(cls, buf[: cls.LENGTH])
        fields.update(truncated=len(buf) < cls.LENGTH, wanted_length=cls.LENGTH)
        return cls(**fields)

    @property
    def number_of_blocks(self) -> Optional[int]:
        """Logical blocks on the medium: ``returned_lba + 1`` (None when the LBA was cut off)."""
        return None if self.returned_lba is None else self.returned_lba + 1

    @property
    def capacity_bytes(self) -> Optional[int]:
        """Capacity in bytes (None when the LBA or the block length was cut off)."""
        blocks = self.number_of_blocks
        return None if blocks is None or self.block_length is None else blocks * self.block_length


@attrs.frozen
class ReadCapacity10Data(_CapacityData):
    """READ CAPACITY(10) data, SBC-4 table 69: last LBA and block length.

    A ``returned_lba`` of FFFFFFFFh means the capacity does not fit and
    READ CAPACITY(16) must be used (:attr:`needs_read_capacity_16`).  A
    field a short answer cut is None.
    """

    LENGTH: ClassVar[int] = 8
    COMMAND: ClassVar[str] = "READ CAPACITY(10)"

    returned_lba: Optional[int] = bits(0, 0, 32)
    block_length: Optional[int] = bits(4, 0, 32)
    truncated: bool = False
    wanted_length: Optional[int] = 8

    @property
    def needs_read_capacity_16(self) -> Optional[bool]:
        """True when the capacity does not fit in 32 bits (SBC-4 5.20.2); None when the LBA was cut off."""
        return None if self.returned_lba is None else self.returned_lba == 0xFFFFFFFF


@attrs.frozen
class ReadCapacity16Data(_CapacityData):
    """READ CAPACITY(16) data, SBC-4 table 71.

    ``p_type``/``prot_en`` describe protection information;
    ``logical_blocks_per_physical_block_exponent`` (LBPPBE) gives
    2**n logical blocks per physical block; ``lbpme``/``lbprz`` report
    logical block provisioning; ``lowest_aligned_lba`` is the first LBA on
    a physical block boundary.  A field a short answer cut is None.
    """

    LENGTH: ClassVar[int] = 32
    COMMAND: ClassVar[str] = "READ CAPACITY(16)"

    returned_lba: Optional[int] = bits(0, 0, 64)
    block_length: Optional[int] = bits(8, 0, 32)
    rc_basis: Optional[int] = bits(12, 4, 2)
    p_type: Optional[int] = bits(12, 1, 3)
    prot_en: Optional[bool] = bits(12, 0, 1, flag=True)
    p_i_exponent: Optional[int] = bits(13, 4, 4)
    logical_blocks_per_physical_block_exponent: Optional[int] = bits(13, 0, 4)
    lbpme: Optional[bool] = bits(14, 7, 1, flag=True)
    lbprz: Optional[bool] = bits(14, 6, 1, flag=True)
    lowest_aligned_lba: Optional[int] = bits(14, 0, 14)
    truncated: bool = False
    wanted_length: Optional[int] = 32

    @property
    def lbppbe(self) -> Optional[int]:
        """Short name of the logical blocks per physical block exponent."""
        return self.logical_blocks_per_physical_block_exponent

    @property
    def physical_block_length(self) -> Optional[int]:
        """Bytes per physical block (None when a field it needs was cut off)."""
        exponent = self.logical_blocks_per_physical_block_exponent
        return None if self.block_length is None or exponent is None else self.block_length << exponent

    @property
    def protection_type(self) -> Optional[int]:
        """Protection type 0 (none) to 3 (SBC-4 table 72: P_TYPE + 1 when PROT_EN); None if byte 12 is missing."""
        if self.prot_en is None or self.p_type is None:
            return None
        return self.p_type + 1 if self.prot_en else 0
