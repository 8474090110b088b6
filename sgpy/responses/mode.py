"""MODE SENSE / MODE SELECT parameter data (SPC-5 7.5).

One :class:`ModeParameters` value reads a MODE SENSE(6) or (10) answer and,
through :meth:`ModeParameters.to_bytes`, builds the MODE SELECT parameter
list from it: the mode data length is zeroed and every page's PS bit is
cleared, as SPC-5 6.11 requires, and everything else is kept byte for byte.
To change a setting, replace the page with :func:`attr.evolve` (or
:meth:`ModeParameters.replace_page`) and build again.

Typed pages keep the page bytes they were read from (``raw``), so reserved,
obsolete and vendor-specific bits, and bytes a newer standard added, survive
the round trip; only the named fields are written over them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type, TypeVar, Union

import attr
import attrs

from sgpy.errors import EncodeError, MalformedResponse
from sgpy.responses._common import be, bits, decode_layout, encode_layout, layout_size, length_header, need

__all__ = [
    "ShortBlockDescriptor",
    "LongBlockDescriptor",
    "ModePage",
    "TypedModePage",
    "ReadWriteErrorRecoveryPage",
    "DisconnectReconnectPage",
    "CachingPage",
    "ControlPage",
    "ControlExtensionPage",
    "PowerConditionPage",
    "InformationalExceptionsControlPage",
    "ModeParameters",
    "parse_mode_page",
    "parse_mode_parameters",
    "mode_page_class",
]

P = TypeVar("P", bound="TypedModePage")


# ---------------------------------------------------------------------------
# Block descriptors
# ---------------------------------------------------------------------------


@attrs.frozen
class ShortBlockDescriptor:
    """Short LBA mode parameter block descriptor, SBC-4 table 213 (8 bytes).

    For direct-access devices bytes 0-3 are the NUMBER OF LOGICAL BLOCKS.
    Other device types use byte 0 as a density code (SPC-5 table 453);
    :attr:`density_code` and :attr:`general_number_of_blocks` read it so.
    """

    SIZE: ClassVar[int] = 8
    number_of_blocks: int = bits(0, 0, 32)
    block_length: int = bits(5, 0, 24)

    @property
    def density_code(self) -> int:
        """Byte 0, the density code of the general (non-SBC) layout."""
        return self.number_of_blocks >> 24

    @property
    def general_number_of_blocks(self) -> int:
        """Bytes 1-3, the number of blocks of the general (non-SBC) layout."""
        return self.number_of_blocks & 0xFFFFFF

    def to_bytes(self) -> bytes:
        """The 8 descriptor bytes."""
        out = bytearray(8)
        encode_layout(self, out)
        return bytes(out)


@attrs.frozen
class LongBlockDescriptor:
    """Long LBA mode parameter block descriptor, SBC-4 table 214 (16 bytes, LONGLBA=1)."""

    SIZE: ClassVar[int] = 16
    number_of_blocks: int = bits(0, 0, 64)
    block_length: int = bits(12, 0, 32)

    def to_bytes(self) -> bytes:
        """The 16 descriptor bytes."""
        out = bytearray(16)
        encode_layout(self, out)
        return bytes(out)


BlockDescriptor = Union[ShortBlockDescriptor, LongBlockDescriptor]


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _header(page_code: int, subpage_code: int, spf: bool, length: int) -> bytes:
    """A page header with PS cleared (SPC-5 tables 455 and 456)."""
    if spf:
        if length > 0xFFFF:
            raise EncodeError(f"mode page {page_code:02X}h/{subpage_code:02X}h: {length} bytes is too long")
        return bytes((0x40 | page_code, subpage_code)) + length.to_bytes(2, "big")
    if length > 0xFF:
        raise EncodeError(f"mode page {page_code:02X}h: {length} bytes is too long for page_0 format")
    return bytes((page_code, length))


@attrs.frozen
class ModePage:
    """A mode page sgpy does not decode, kept as its code and the bytes after its header."""

    page_code: int
    subpage_code: int = 0
    spf: bool = False
    ps: bool = False
    data: bytes = b""

    def to_bytes(self) -> bytes:
        """The page for MODE SELECT (PS cleared)."""
        return _header(self.page_code, self.subpage_code, self.spf, len(self.data)) + self.data


@attrs.frozen
class TypedModePage:
    """Base of the decoded pages.

    Field offsets are the T10 byte numbers from the start of the page.
    ``raw`` is the page as read (header included); a page built by hand has
    no ``raw`` and is laid out from zero with the standard page length.  A
    field past the end of a page shorter than the standard one (an older
    device's) is None, and ``to_bytes()`` leaves the bytes of a None
    field as they are.
    """

    PAGE_CODE: ClassVar[int] = -1
    SUBPAGE_CODE: ClassVar[int] = 0
    SPF: ClassVar[bool] = False
    PAGE_LENGTH: ClassVar[int] = 0

    ps: bool = False
    raw: bytes = attr.ib(default=b"", repr=False, eq=False)

    @property
    def page_code(self) -> int:
        """The page code."""
        return self.PAGE_CODE

    @property
    def subpage_code(self) -> int:
        """The subpage code (0 for page_0 format)."""
        return self.SUBPAGE_CODE

    @property
    def spf(self) -> bool:
        """True for the sub_page format."""
        return self.SPF

    @classmethod
    def from_page(cls: Type[P], page: bytes) -> P:
        """Decode one complete page (header included)."""
        page = bytes(page)
        return cls(ps=bool(page[0] & 0x80), raw=page, **decode_layout(cls, page))

    def to_bytes(self) -> bytes:
        """The page for MODE SELECT: PS cleared, named fields written over ``raw``."""
        hdr = 4 if self.SPF else 2
        if self.raw:
            out = bytearray(self.raw)
        else:
            out = bytearray(max(hdr + self.PAGE_LENGTH, layout_size(type(self))))
        out[:hdr] = _header(self.PAGE_CODE, self.SUBPAGE_CODE, self.SPF, len(out) - hdr)
        encode_layout(self, out)
        return bytes(out)


@attrs.frozen
class ReadWriteErrorRecoveryPage(TypedModePage):
    """Page 01h, SBC-4 6.5.10 table 245: read/write error recovery parameters."""

    PAGE_CODE: ClassVar[int] = 0x01
    PAGE_LENGTH: ClassVar[int] = 0x0A
    awre: Optional[bool] = bits(2, 7, 1, flag=True)
    arre: Optional[bool] = bits(2, 6, 1, flag=True)
    tb: Optional[bool] = bits(2, 5, 1, flag=True)
    rc: Optional[bool] = bits(2, 4, 1, flag=True)
    eer: Optional[bool] = bits(2, 3, 1, flag=True)
    per: Optional[bool] = bits(2, 2, 1, flag=True)
    dte: Optional[bool] = bits(2, 1, 1, flag=True)
    dcr: Optional[bool] = bits(2, 0, 1, flag=True)
    read_retry_count: Optional[int] = bits(3)
    lbpere: Optional[bool] = bits(7, 7, 1, flag=True)
    write_retry_count: Optional[int] = bits(8)
    recovery_time_limit: Optional[int] = bits(10, 0, 16)


@attrs.frozen
class DisconnectReconnectPage(TypedModePage):
    """Page 02h, SPC-5 7.5.9 table 448: bus/transport flow control limits."""

    PAGE_CODE: ClassVar[int] = 0x02
    PAGE_LENGTH: ClassVar[int] = 0x0E
    buffer_full_ratio: Optional[int] = bits(2)
    buffer_empty_ratio: Optional[int] = bits(3)
    bus_inactivity_limit: Optional[int] = bits(4, 0, 16)
    disconnect_time_limit: Optional[int] = bits(6, 0, 16)
    connect_time_limit: Optional[int] = bits(8, 0, 16)
    maximum_burst_size: Optional[int] = bits(10, 0, 16)
    emdp: Optional[bool] = bits(12, 7, 1, flag=True)
    fair_arbitration: Optional[int] = bits(12, 4, 3)
    dimm: Optional[bool] = bits(12, 3, 1, flag=True)
    dtdc: Optional[int] = bits(12, 0, 3)
    first_burst_size: Optional[int] = bits(14, 0, 16)


@attrs.frozen
class CachingPage(TypedModePage):
    """Page 08h, SBC-4 6.5.5 table 233: caching (``wce`` write cache, ``rcd`` read cache disable)."""

    PAGE_CODE: ClassVar[int] = 0x08
    PAGE_LENGTH: ClassVar[int] = 0x12
    ic: Optional[bool] = bits(2, 7, 1, flag=True)
    abpf: Optional[bool] = bits(2, 6, 1, flag=True)
    cap: Optional[bool] = bits(2, 5, 1, flag=True)
    disc: Optional[bool] = bits(2, 4, 1, flag=True)
    size: Optional[bool] = bits(2, 3, 1, flag=True)
    wce: Optional[bool] = bits(2, 2, 1, flag=True)
    mf: Optional[bool] = bits(2, 1, 1, flag=True)
    rcd: Optional[bool] = bits(2, 0, 1, flag=True)
    demand_read_retention_priority: Optional[int] = bits(3, 4, 4)
    write_retention_priority: Optional[int] = bits(3, 0, 4)
    disable_prefetch_transfer_length: Optional[int] = bits(4, 0, 16)
    minimum_prefetch: Optional[int] = bits(6, 0, 16)
    maximum_prefetch: Optional[int] = bits(8, 0, 16)
    maximum_prefetch_ceiling: Optional[int] = bits(10, 0, 16)
    fsw: Optional[bool] = bits(12, 7, 1, flag=True)
    lbcss: Optional[bool] = bits(12, 6, 1, flag=True)
    dra: Optional[bool] = bits(12, 5, 1, flag=True)
    sync_prog: Optional[int] = bits(12, 1, 2)
    nv_dis: Optional[bool] = bits(12, 0, 1, flag=True)
    number_of_cache_segments: Optional[int] = bits(13)
    cache_segment_size: Optional[int] = bits(14, 0, 16)


@attrs.frozen
class ControlPage(TypedModePage):
    """Page 0Ah, SPC-5 7.5.10 table 457: task set and error handling control
    (``d_sense`` selects descriptor-format sense)."""

    PAGE_CODE: ClassVar[int] = 0x0A
    PAGE_LENGTH: ClassVar[int] = 0x0A
    tst: Optional[int] = bits(2, 5, 3)
    tmf_only: Optional[bool] = bits(2, 4, 1, flag=True)
    dpicz: Optional[bool] = bits(2, 3, 1, flag=True)
    d_sense: Optional[bool] = bits(2, 2, 1, flag=True)
    gltsd: Optional[bool] = bits(2, 1, 1, flag=True)
    rlec: Optional[bool] = bits(2, 0, 1, flag=True)
    queue_algorithm_modifier: Optional[int] = bits(3, 4, 4)
    nuar: Optional[bool] = bits(3, 3, 1, flag=True)
    qerr: Optional[int] = bits(3, 1, 2)
    rac: Optional[bool] = bits(4, 6, 1, flag=True)
    ua_intlck_ctrl: Optional[int] = bits(4, 4, 2)
    swp: Optional[bool] = bits(4, 3, 1, flag=True)
    ato: Optional[bool] = bits(5, 7, 1, flag=True)
    tas: Optional[bool] = bits(5, 6, 1, flag=True)
    atmpe: Optional[bool] = bits(5, 5, 1, flag=True)
    rwwp: Optional[bool] = bits(5, 4, 1, flag=True)
    sblp: Optional[bool] = bits(5, 3, 1, flag=True)
    autoload_mode: Optional[int] = bits(5, 0, 3)
    busy_timeout_period: Optional[int] = bits(8, 0, 16)
    extended_self_test_completion_time: Optional[int] = bits(10, 0, 16)


@attrs.frozen
class ControlExtensionPage(TypedModePage):
    """Page 0Ah subpage 01h, SPC-5 7.5.11 table 461: control extension."""

    PAGE_CODE: ClassVar[int] = 0x0A
    SUBPAGE_CODE: ClassVar[int] = 0x01
    SPF: ClassVar[bool] = True
    PAGE_LENGTH: ClassVar[int] = 0x1C
    dlc: Optional[bool] = bits(4, 3, 1, flag=True)
    tcmos: Optional[bool] = bits(4, 2, 1, flag=True)
    scsip: Optional[bool] = bits(4, 1, 1, flag=True)
    ialuae: Optional[bool] = bits(4, 0, 1, flag=True)
    initial_command_priority: Optional[int] = bits(5, 0, 4)
    maximum_sense_data_length: Optional[int] = bits(6)


@attrs.frozen
class PowerConditionPage(TypedModePage):
    """Page 1Ah, SPC-5 7.5.16 table 470: power condition timers (100 ms units)."""

    PAGE_CODE: ClassVar[int] = 0x1A
    PAGE_LENGTH: ClassVar[int] = 0x26
    pm_bg_precedence: Optional[int] = bits(2, 6, 2)
    standby_y: Optional[bool] = bits(2, 0, 1, flag=True)
    idle_c: Optional[bool] = bits(3, 3, 1, flag=True)
    idle_b: Optional[bool] = bits(3, 2, 1, flag=True)
    idle_a: Optional[bool] = bits(3, 1, 1, flag=True)
    standby_z: Optional[bool] = bits(3, 0, 1, flag=True)
    idle_a_condition_timer: Optional[int] = bits(4, 0, 32)
    standby_z_condition_timer: Optional[int] = bits(8, 0, 32)
    idle_b_condition_timer: Optional[int] = bits(12, 0, 32)
    idle_c_condition_timer: Optional[int] = bits(16, 0, 32)
    standby_y_condition_timer: Optional[int] = bits(20, 0, 32)
    ccf_idle: Optional[int] = bits(39, 6, 2)
    ccf_standby: Optional[int] = bits(39, 4, 2)
    ccf_stopped: Optional[int] = bits(39, 2, 2)


@attrs.frozen
class InformationalExceptionsControlPage(TypedModePage):
    """Page 1Ch, SPC-5 7.5.14 table 466: failure prediction (SMART) reporting."""

    PAGE_CODE: ClassVar[int] = 0x1C
    PAGE_LENGTH: ClassVar[int] = 0x0A
    perf: Optional[bool] = bits(2, 7, 1, flag=True)
    ebf: Optional[bool] = bits(2, 5, 1, flag=True)
    ewasc: Optional[bool] = bits(2, 4, 1, flag=True)
    dexcpt: Optional[bool] = bits(2, 3, 1, flag=True)
    test: Optional[bool] = bits(2, 2, 1, flag=True)
    ebackerr: Optional[bool] = bits(2, 1, 1, flag=True)
    logerr: Optional[bool] = bits(2, 0, 1, flag=True)
    mrie: Optional[int] = bits(3, 0, 4)
    interval_timer: Optional[int] = bits(4, 0, 32)
    report_count: Optional[int] = bits(8, 0, 32)


AnyModePage = Union[ModePage, TypedModePage]

_PAGE_CLASSES: Dict[Tuple[int, int], Type[TypedModePage]] = {
    (cls.PAGE_CODE, cls.SUBPAGE_CODE): cls
    for cls in (
        ReadWriteErrorRecoveryPage,
        DisconnectReconnectPage,
        CachingPage,
        ControlPage,
        ControlExtensionPage,
        PowerConditionPage,
        InformationalExceptionsControlPage,
    )
}


def mode_page_class(page_code: int, subpage_code: int = 0) -> Optional[Type[TypedModePage]]:
    """The class sgpy decodes mode page ``page_code``/``subpage_code`` into, or None (a :class:`ModePage`)."""
    return _PAGE_CLASSES.get((page_code, subpage_code))


def parse_mode_page(page: bytes) -> AnyModePage:
    """Decode one complete mode page (header included) into its class or :class:`ModePage`."""
    page = bytes(page)
    if len(page) < 2:
        raise MalformedResponse("mode page header is cut off")
    spf = bool(page[0] & 0x40)
    code = page[0] & 0x3F
    subpage = page[1] if spf else 0
    hdr = 4 if spf else 2
    if len(page) < hdr:
        raise MalformedResponse("mode page header is cut off")
    cls = _PAGE_CLASSES.get((code, subpage))
    if cls is not None and cls.SPF == spf:
        return cls.from_page(page)
    return ModePage(page_code=code, subpage_code=subpage, spf=spf, ps=bool(page[0] & 0x80), data=page[hdr:])


# ---------------------------------------------------------------------------
# Mode parameter list
# ---------------------------------------------------------------------------


@attrs.frozen
class ModeParameters:
    """A mode parameter list: header, block descriptors and pages (SPC-5 7.5.5).

    ``ten`` tells which header the data has: MODE SENSE(6)/SELECT(6) use the
    4-byte header (SPC-5 table 450), the (10) commands the 8-byte one (table
    451, which alone has LONGLBA).  ``device_specific_parameter`` is kept as
    a byte; for disks :attr:`write_protect` and :attr:`dpofua` read it
    (SBC-4 table 212).  A truncated answer keeps only the complete block
    descriptors and pages.
    """

    ten: bool = False
    medium_type: int = 0
    device_specific_parameter: int = 0
    longlba: bool = False
    block_descriptors: Tuple[BlockDescriptor, ...] = ()
    pages: Tuple[AnyModePage, ...] = ()
    mode_data_length: int = 0
    truncated: bool = False
    wanted_length: Optional[int] = None

    @property
    def write_protect(self) -> bool:
        """WP bit of the device-specific parameter (direct-access devices)."""
        return bool(self.device_specific_parameter & 0x80)

    @property
    def dpofua(self) -> bool:
        """DPOFUA bit of the device-specific parameter (direct-access devices)."""
        return bool(self.device_specific_parameter & 0x10)

    @staticmethod
    def required_length(buf: bytes, *, ten: bool = False) -> Optional[int]:
        """MODE DATA LENGTH + 1 (6-byte CDB) or + 2 (10-byte CDB); None if absent."""
        return length_header(buf, 0, 2, 2) if ten else length_header(buf, 0, 1, 1)

    @classmethod
    def from_bytes(cls, buf: bytes, *, ten: bool = False) -> "ModeParameters":
        """Parse MODE SENSE(6) (``ten=False``) or MODE SENSE(10) (``ten=True``) data."""
        buf = bytes(buf)
        hdr = 8 if ten else 4
        need(buf, hdr, "mode parameter header")
        if ten:
            length, medium, dsp = be(buf, 0, 2), buf[2], buf[3]
            longlba, bdl = bool(buf[4] & 0x01), be(buf, 6, 2)
            wanted = length + 2
        else:
            length, medium, dsp, longlba, bdl = buf[0], buf[1], buf[2], False, buf[3]
            wanted = length + 1
        if wanted < hdr:
            raise MalformedResponse(f"MODE DATA LENGTH {length} is shorter than the header")
        truncated = len(buf) < wanted
        data = buf[:wanted]
        desc_cls: Type[Any] = LongBlockDescriptor if longlba else ShortBlockDescriptor
        if bdl % desc_cls.SIZE:
            raise MalformedResponse(f"BLOCK DESCRIPTOR LENGTH {bdl} is not a multiple of {desc_cls.SIZE}")
        if hdr + bdl > wanted:
            raise MalformedResponse(f"BLOCK DESCRIPTOR LENGTH {bdl} runs past the mode data length")
        descriptors = tuple(
            desc_cls(**decode_layout(desc_cls, data[p : p + desc_cls.SIZE]))
            for p in range(hdr, min(hdr + bdl, len(data)) - desc_cls.SIZE + 1, desc_cls.SIZE)
        )
        pages = []
        pos = hdr + bdl
        end = len(data)
        while pos < end:
            spf = bool(data[pos] & 0x40)
            ph = 4 if spf else 2
            if pos + ph > end:
                if truncated:
                    break
                raise MalformedResponse(f"mode page header at byte {pos} is cut off")
            plen = be(data, pos + 2, 2) if spf else data[pos + 1]
            nxt = pos + ph + plen
            if nxt > end:
                if truncated:
                    break
                raise MalformedResponse(f"mode page at byte {pos} runs past the mode data length")
            pages.append(parse_mode_page(data[pos:nxt]))
            pos = nxt
        return cls(
            ten=ten,
            medium_type=medium,
            device_specific_parameter=dsp,
            longlba=longlba,
            block_descriptors=descriptors,
            pages=tuple(pages),
            mode_data_length=length,
            truncated=truncated,
            wanted_length=wanted,
        )

    def page(self, page_code: int, subpage_code: int = 0) -> Optional[AnyModePage]:
        """The page with this code and subpage code, or None."""
        for p in self.pages:
            if p.page_code == page_code and p.subpage_code == subpage_code:
                return p
        return None

    def replace_page(self, new: AnyModePage) -> "ModeParameters":
        """A copy with the page of the same code/subpage replaced (or appended)."""
        pages = list(self.pages)
        for i, p in enumerate(pages):
            if p.page_code == new.page_code and p.subpage_code == new.subpage_code:
                pages[i] = new
                break
        else:
            pages.append(new)
        return attr.evolve(self, pages=tuple(pages))

    def to_bytes(self) -> bytes:
        """The MODE SELECT parameter list: mode data length zero, PS bits cleared."""
        descriptors = b"".join(d.to_bytes() for d in self.block_descriptors)
        pages = b"".join(p.to_bytes() for p in self.pages)
        bdl = len(descriptors)
        for name, value in (("medium_type", self.medium_type), ("device_specific_parameter",
                                                                self.device_specific_parameter)):
            if not 0 <= value <= 0xFF:
                raise EncodeError(f"ModeParameters.{name}: {value!r} does not fit 0..255")
        if self.ten:
            if bdl > 0xFFFF:
                raise EncodeError(f"block descriptors too long: {bdl} bytes")
            header = bytes((0, 0, self.medium_type, self.device_specific_parameter, int(self.longlba), 0))
            header += bdl.to_bytes(2, "big")
        else:
            if self.longlba:
                raise EncodeError("LONGLBA needs the 10-byte mode parameter header (ten=True)")
            if bdl > 0xFF:
                raise EncodeError(f"block descriptors too long for the 6-byte header: {bdl} bytes")
            header = bytes((0, self.medium_type, self.device_specific_parameter, bdl))
        return header + descriptors + pages


def parse_mode_parameters(buf: bytes, *, ten: bool) -> ModeParameters:
    """Parse MODE SENSE data: ``ten`` is True for MODE SENSE(10), False for (6)."""
    return ModeParameters.from_bytes(buf, ten=ten)
