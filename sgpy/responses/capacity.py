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
    returned_lba: int
    block_length: int

    @classmethod
    def required_length(cls, buf: bytes) -> Optional[int]:
        """Always ``LENGTH``: the answer has a fixed size."""
        return cls.LENGTH

    @classmethod
    def from_bytes(cls: Type[C], buf: bytes) -> C:
        """Parse the ``LENGTH`` bytes; fewer give ``truncated`` with the rest read as zero."""
        buf = bytes(buf)
        if not buf:
            raise MalformedResponse(f"{cls.COMMAND} data is empty")
        fields = decode_layout(cls, buf[: cls.LENGTH])
        fields.update(truncated=len(buf) < cls.LENGTH, wanted_length=cls.LENGTH)
        return cls(**fields)

    @property
    def number_of_blocks(self) -> int:
        """Logical blocks on the medium: ``returned_lba + 1``."""
        return self.returned_lba + 1

    @property
    def capacity_bytes(self) -> int:
        """Capacity in bytes."""
        return self.number_of_blocks * self.block_length


@attrs.frozen
class ReadCapacity10Data(_CapacityData):
    """READ CAPACITY(10) data, SBC-4 table 69: last LBA and block length.

    A ``returned_lba`` of FFFFFFFFh means the capacity does not fit and
    READ CAPACITY(16) must be used (:attr:`needs_read_capacity_16`).
    """

    LENGTH: ClassVar[int] = 8
    COMMAND: ClassVar[str] = "READ CAPACITY(10)"

    returned_lba: int = bits(0, 0, 32)
    block_length: int = bits(4, 0, 32)
    truncated: bool = False
    wanted_length: Optional[int] = 8

    @property
    def needs_read_capacity_16(self) -> bool:
        """True when the capacity does not fit in 32 bits."""
        return self.returned_lba == 0xFFFFFFFF


@attrs.frozen
class ReadCapacity16Data(_CapacityData):
    """READ CAPACITY(16) data, SBC-4 table 71.

    ``p_type``/``prot_en`` describe protection information;
    ``logical_blocks_per_physical_block_exponent`` (LBPPBE) gives
    2**n logical blocks per physical block; ``lbpme``/``lbprz`` report
    logical block provisioning; ``lowest_aligned_lba`` is the first LBA on
    a physical block boundary.
    """

    LENGTH: ClassVar[int] = 32
    COMMAND: ClassVar[str] = "READ CAPACITY(16)"

    returned_lba: int = bits(0, 0, 64)
    block_length: int = bits(8, 0, 32)
    rc_basis: int = bits(12, 4, 2)
    p_type: int = bits(12, 1, 3)
    prot_en: bool = bits(12, 0, 1, flag=True)
    p_i_exponent: int = bits(13, 4, 4)
    logical_blocks_per_physical_block_exponent: int = bits(13, 0, 4)
    lbpme: bool = bits(14, 7, 1, flag=True)
    lbprz: bool = bits(14, 6, 1, flag=True)
    lowest_aligned_lba: int = bits(14, 0, 14)
    truncated: bool = False
    wanted_length: Optional[int] = 32

    @property
    def lbppbe(self) -> int:
        """Short name of the logical blocks per physical block exponent."""
        return self.logical_blocks_per_physical_block_exponent

    @property
    def physical_block_length(self) -> int:
        """Bytes per physical block."""
        return self.block_length << self.logical_blocks_per_physical_block_exponent

    @property
    def protection_type(self) -> int:
        """Protection type 0 (none) to 3 (SBC-4 table 72: P_TYPE + 1 when PROT_EN)."""
        return self.p_type + 1 if self.prot_en else 0
