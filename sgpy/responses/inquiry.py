"""Standard INQUIRY data (SPC-5 6.7.2, table 148)."""

from __future__ import annotations

from typing import Optional, Tuple

import attrs

from sgpy.responses._common import be, bits, decode_layout, length_header, octets, pdt, read_header, text

__all__ = ["StandardInquiryData"]


@attrs.frozen
class StandardInquiryData:
    """Standard INQUIRY data with every field named.

    ``vendor``, ``product`` and ``revision`` are the T10 vendor
    identification, product identification and product revision level as
    trimmed strings.  ``version_descriptors`` lists the non-zero version
    descriptors (bytes 58-73).  The SPI-only bits (``addr16``, ``wbus16``,
    ``sync``, ``clocking``, ``qas``, ``ius``) are decoded as well.  A field
    the answer does not wholly hold (it was ``truncated``, or the device's
    ADDITIONAL LENGTH stops before it) is None; a version descriptor cut in
    two is left out.
    """

    peripheral_qualifier: int = bits(0, 5, 3)
    peripheral_device_type: int = bits(0, 0, 5)
    rmb: Optional[bool] = bits(1, 7, 1, flag=True)
    lu_cong: Optional[bool] = bits(1, 6, 1, flag=True)
    version: Optional[int] = bits(2)
    normaca: Optional[bool] = bits(3, 5, 1, flag=True)
    hisup: Optional[bool] = bits(3, 4, 1, flag=True)
    response_data_format: Optional[int] = bits(3, 0, 4)
    additional_length: int = bits(4)
    sccs: Optional[bool] = bits(5, 7, 1, flag=True)
    acc: Optional[bool] = bits(5, 6, 1, flag=True)
    tpgs: Optional[int] = bits(5, 4, 2)
    threepc: Optional[bool] = bits(5, 3, 1, flag=True)
    protect: Optional[bool] = bits(5, 0, 1, flag=True)
    encserv: Optional[bool] = bits(6, 6, 1, flag=True)
    vs1: Optional[bool] = bits(6, 5, 1, flag=True)
    multip: Optional[bool] = bits(6, 4, 1, flag=True)
    addr16: Optional[bool] = bits(6, 0, 1, flag=True)
    wbus16: Optional[bool] = bits(7, 5, 1, flag=True)
    sync: Optional[bool] = bits(7, 4, 1, flag=True)
    cmdque: Optional[bool] = bits(7, 1, 1, flag=True)
    vs2: Optional[bool] = bits(7, 0, 1, flag=True)
    clocking: Optional[int] = bits(56, 2, 2)
    qas: Optional[bool] = bits(56, 1, 1, flag=True)
    ius: Optional[bool] = bits(56, 0, 1, flag=True)
    vendor: Optional[str] = text(8, 8)
    product: Optional[str] = text(16, 16)
    revision: Optional[str] = text(32, 4)
    vendor_specific: Optional[bytes] = octets(36, 20)
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
        # SPC-5 6.7.2: eight 2-byte VERSION DESCRIPTOR fields at bytes 58-73;
        # only those wholly inside the answer are read.
        ends = range(60, min(74, len(data)) + 1, 2)
        descriptors = tuple(v for v in (be(data, end - 2, 2) for end in ends) if v)
        return cls(**fields, version_descriptors=descriptors, truncated=len(buf) < wanted, wanted_length=wanted)

    @property
    def standard(self) -> Optional[str]:
        """The standard the VERSION field claims (SPC-5 6.7.2): ``SPC`` (03h) to ``SPC-5``
        (07h); None for 00h (no standard claimed), the obsolete values and the reserved ones."""
        return {0x03: "SPC", 0x04: "SPC-2", 0x05: "SPC-3", 0x06: "SPC-4", 0x07: "SPC-5"}.get(self.version or 0)

    def __str__(self) -> str:
        return " ".join(part for part in (self.vendor, self.product, self.revision) if part)
