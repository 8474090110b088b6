"""Standard INQUIRY data (SPC-5 6.7.2, table 148)."""

from __future__ import annotations

from typing import Optional, Tuple

import attr
import attrs

from sgpy.responses._common import ascii_field, be, bits, decode_layout, length_header, pdt, read_header

__all__ = ["StandardInquiryData"]


@attrs.frozen
class StandardInquiryData:
    """Standard INQUIRY data with every field named.

    ``vendor``, ``product`` and ``revision`` are the T10 vendor
    identification, product identification and product revision level as
    trimmed strings.  ``version_descriptors`` lists the non-zero version
    descriptors (bytes 58-73).  The SPI-only bits (``addr16``, ``wbus16``,
    ``sync``, ``clocking``, ``qas``, ``ius``) are decoded as well.  When the
    answer was cut short (``truncated``), fields past its end read as zero.
    """

    peripheral_qualifier: int = bits(0, 5, 3)
    peripheral_device_type: int = bits(0, 0, 5)
    rmb: bool = bits(1, 7, 1, flag=True)
    lu_cong: bool = bits(1, 6, 1, flag=True)
    version: int = bits(2)
    normaca: bool = bits(3, 5, 1, flag=True)
    hisup: bool = bits(3, 4, 1, flag=True)
    response_data_format: int = bits(3, 0, 4)
    additional_length: int = bits(4)
    sccs: bool = bits(5, 7, 1, flag=True)
    acc: bool = bits(5, 6, 1, flag=True)
    tpgs: int = bits(5, 4, 2)
    threepc: bool = bits(5, 3, 1, flag=True)
    protect: bool = bits(5, 0, 1, flag=True)
    encserv: bool = bits(6, 6, 1, flag=True)
    vs1: bool = bits(6, 5, 1, flag=True)
    multip: bool = bits(6, 4, 1, flag=True)
    addr16: bool = bits(6, 0, 1, flag=True)
    wbus16: bool = bits(7, 5, 1, flag=True)
    sync: bool = bits(7, 4, 1, flag=True)
    cmdque: bool = bits(7, 1, 1, flag=True)
    vs2: bool = bits(7, 0, 1, flag=True)
    clocking: int = bits(56, 2, 2)
    qas: bool = bits(56, 1, 1, flag=True)
    ius: bool = bits(56, 0, 1, flag=True)
    vendor: str = ""
    product: str = ""
    revision: str = ""
    vendor_specific: bytes = attr.ib(default=b"", repr=False)
    version_descriptors: Tuple[int, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """ADDITIONAL LENGTH + 5, or None when byte 4 is missing."""
        return length_header(buf, 4, 1, 5)

    @classmethod
    def from_bytes(cls, buf: bytes) -> "StandardInquiryData":
        """Parse standard INQUIRY data; at least the 5-byte header is needed."""
        buf, wanted = read_header(buf, 4, 1, 5, "standard INQUIRY data")
        data = buf[:wanted]
        fields = decode_layout(cls, data)
        fields["peripheral_device_type"] = pdt(fields["peripheral_device_type"])
        descriptors = tuple(v for v in (be(data, off, 2) for off in range(58, 74, 2)) if v)
        return cls(
            **fields,
            vendor=ascii_field(data, 8, 8),
            product=ascii_field(data, 16, 16),
            revision=ascii_field(data, 32, 4),
            vendor_specific=data[36:56],
            version_descriptors=descriptors,
            truncated=len(buf) < wanted,
            wanted_length=wanted,
        )

    def __str__(self) -> str:
        return f"{self.vendor} {self.product} {self.revision}".strip()
