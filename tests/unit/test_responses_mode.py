"""MODE SENSE data and the MODE SELECT parameter list built back from it."""

from __future__ import annotations

import attr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpy.errors import EncodeError, MalformedResponse
from sgpy.responses import (
    CachingPage,
    ControlExtensionPage,
    ControlPage,
    DisconnectReconnectPage,
    InformationalExceptionsControlPage,
    LongBlockDescriptor,
    ModePage,
    ModeParameters,
    PowerConditionPage,
    ReadWriteErrorRecoveryPage,
    ShortBlockDescriptor,
    parse_mode_page,
    parse_mode_parameters,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# Pages as a disk returns them (PS set where savable).
RW_RECOVERY = h("81 0a c0 0b 00 00 00 00 05 00 ff ff")
DISCONNECT = h("02 0e 00 00 0000 0000 0000 0080 00 00 0000")
CACHING = h("88 12 14 00 ffff 0000 ffff ffff 80 14 0000 00 000000")
CONTROL = h("8a 0a 06 10 00 00 0000 0000 0258")
CONTROL_EXT = h("ca 01 001c 07 05 fc") + bytes(25)
POWER = h("9a 26 00 0f 00000032 00000064 00000096 000000c8 000000fa") + bytes(15) + h("54")
IEC = h("9c 0a 88 06 00000064 00000001")
VENDOR = h("80 06 01 02 03 04 05 06")
SUBPAGE_RAW = h("c8 05 0004 01020304")


def mode6(*pages: bytes, medium: int = 0, dsp: int = 0x10, descriptors: bytes = b"") -> bytes:
    """MODE SENSE(6) data, SPC-5 table 450."""
    body = bytes([medium, dsp, len(descriptors)]) + descriptors + b"".join(pages)
    return bytes([len(body)]) + body


def mode10(*pages: bytes, longlba: bool = False, descriptors: bytes = b"") -> bytes:
    """MODE SENSE(10) data, SPC-5 table 451."""
    body = bytes([0, 0x90, int(longlba), 0]) + len(descriptors).to_bytes(2, "big") + descriptors + b"".join(pages)
    return len(body).to_bytes(2, "big") + body


def select_form(buf: bytes, ten: bool) -> bytes:
    """What MODE SELECT must get: mode data length zeroed, PS bits cleared."""
    out = bytearray(buf)
    hdr = 8 if ten else 4
    out[0] = 0
    if ten:
        out[1] = 0
        bdl = int.from_bytes(buf[6:8], "big")
    else:
        bdl = buf[3]
    pos = hdr + bdl
    while pos < len(out):
        out[pos] &= 0x7F
        spf = out[pos] & 0x40
        pos += (4 + int.from_bytes(out[pos + 2 : pos + 4], "big")) if spf else (2 + out[pos + 1])
    return bytes(out)


ROUND_TRIPS = [
    pytest.param(mode6(CACHING), False, id="caching"),
    pytest.param(mode6(RW_RECOVERY, DISCONNECT, CACHING, CONTROL, CONTROL_EXT, POWER, IEC, VENDOR, SUBPAGE_RAW,
                       descriptors=h("00001000 00 000200")), False, id="all-6"),
    pytest.param(mode10(CACHING, CONTROL, descriptors=h("00001000 00 000200")), True, id="short-10"),
    pytest.param(mode10(CONTROL_EXT, longlba=True, descriptors=h("0000000100000000 00000000 00001000")), True,
                 id="long-lba"),
    pytest.param(mode10(), True, id="empty"),
    # a caching page longer than today's standard: the extra bytes survive
    pytest.param(mode6(h("88 14 04 00") + bytes(16) + h("abcd")), False, id="long-page"),
    # a control page shorter than today's standard
    pytest.param(mode6(h("0a 06 02 00 00 00 00 00")), False, id="short-page"),
]


@pytest.mark.parametrize(("buf", "ten"), ROUND_TRIPS)
def test_round_trip(buf: bytes, ten: bool) -> None:
    m = parse_mode_parameters(buf, ten=ten)
    assert not m.truncated and m.wanted_length == len(buf)
    assert m.to_bytes() == select_form(buf, ten)
    again = bytearray(m.to_bytes())
    if ten:
        again[0:2] = (len(again) - 2).to_bytes(2, "big")
    else:
        again[0] = len(again) - 1
    assert [p.to_bytes() for p in parse_mode_parameters(bytes(again), ten=ten).pages] == [
        p.to_bytes() for p in m.pages]


def test_pages_are_typed() -> None:
    m = parse_mode_parameters(
        mode6(RW_RECOVERY, DISCONNECT, CACHING, CONTROL, CONTROL_EXT, POWER, IEC, VENDOR, SUBPAGE_RAW), ten=False)
    assert [type(p) for p in m.pages] == [
        ReadWriteErrorRecoveryPage, DisconnectReconnectPage, CachingPage, ControlPage, ControlExtensionPage,
        PowerConditionPage, InformationalExceptionsControlPage, ModePage, ModePage]
    rw, dr, cache, ctl, ext, power, iec, vendor, sub = m.pages
    assert rw.ps and rw.awre and rw.arre and rw.read_retry_count == 0x0B and rw.write_retry_count == 5
    assert rw.recovery_time_limit == 0xFFFF
    assert dr.maximum_burst_size == 0x80 and not dr.ps
    assert cache.wce and cache.disc and not cache.rcd and cache.fsw and cache.number_of_cache_segments == 0x14
    assert cache.disable_prefetch_transfer_length == 0xFFFF and cache.maximum_prefetch_ceiling == 0xFFFF
    assert ctl.d_sense and ctl.gltsd and ctl.qerr == 0 and ctl.queue_algorithm_modifier == 1
    assert ctl.extended_self_test_completion_time == 600
    assert (ext.page_code, ext.subpage_code, ext.spf) == (0x0A, 0x01, True)
    assert ext.dlc is False and ext.tcmos and ext.scsip and ext.ialuae
    assert ext.initial_command_priority == 5 and ext.maximum_sense_data_length == 252
    assert power.idle_a and power.standby_z and power.idle_a_condition_timer == 50
    assert power.standby_y_condition_timer == 250 and power.ccf_idle == 1 and power.ccf_standby == 1
    assert iec.perf and iec.dexcpt and iec.mrie == 6 and iec.interval_timer == 100 and iec.report_count == 1
    assert (vendor.page_code, vendor.ps, vendor.data) == (0x00, True, h("01 02 03 04 05 06"))
    assert (sub.page_code, sub.subpage_code, sub.spf, sub.data) == (0x08, 0x05, True, h("01020304"))
    assert m.page(0x08) is cache and m.page(0x0A, 0x01) is ext and m.page(0x3F) is None


def test_header_fields() -> None:
    m = parse_mode_parameters(mode6(descriptors=h("00001000 00 000200"), medium=0x05, dsp=0x90), ten=False)
    assert m.medium_type == 5 and m.write_protect and m.dpofua
    assert m.block_descriptors == (ShortBlockDescriptor(number_of_blocks=0x1000, block_length=512),)
    assert m.block_descriptors[0].density_code == 0 and m.block_descriptors[0].general_number_of_blocks == 0x1000
    m10 = parse_mode_parameters(mode10(longlba=True, descriptors=h("0000000100000000 00000000 00001000")), ten=True)
    assert m10.longlba and m10.block_descriptors == (LongBlockDescriptor(1 << 32, 4096),)


def test_change_a_setting() -> None:
    m = parse_mode_parameters(mode6(CACHING, CONTROL), ten=False)
    cache = m.page(0x08)
    changed = m.replace_page(attr.evolve(cache, wce=False, rcd=True))
    out = changed.to_bytes()
    # caching page starts at byte 4; byte 2 of the page holds WCE (bit 2) and RCD (bit 0)
    assert out[4] == 0x08 and out[6] == 0x11
    assert out[4 + len(CACHING):] == select_form(mode6(CACHING, CONTROL), False)[4 + len(CACHING):]


def test_build_page_from_scratch() -> None:
    page = CachingPage(wce=True)
    assert page.to_bytes() == h("08 12 04") + bytes(17)
    assert ControlExtensionPage(maximum_sense_data_length=64).to_bytes() == h("4a 01 001c 00 00 40") + bytes(25)
    m = ModeParameters(pages=(page,))
    assert m.to_bytes() == h("00 00 00 00") + page.to_bytes()
    assert ModeParameters(ten=True, pages=(page,)).to_bytes()[:8] == bytes(8)


def test_replace_page_appends() -> None:
    m = ModeParameters().replace_page(ControlPage(d_sense=True))
    assert m.page(0x0A).d_sense


@pytest.mark.parametrize(
    "build",
    [
        lambda: CachingPage(write_retention_priority=16).to_bytes(),
        lambda: CachingPage(cache_segment_size=-1).to_bytes(),
        lambda: ModeParameters(longlba=True).to_bytes(),
        lambda: ModeParameters(medium_type=300).to_bytes(),
        lambda: ModePage(page_code=1, data=bytes(300)).to_bytes(),
        # the short control page cannot hold BUSY TIMEOUT PERIOD
        lambda: attr.evolve(parse_mode_page(h("0a 06 02 00 00 00 00 00")), busy_timeout_period=5).to_bytes(),
    ],
)
def test_encode_errors(build) -> None:
    with pytest.raises(EncodeError):
        build()


def test_truncated_keeps_complete_pages() -> None:
    buf = mode6(CACHING, CONTROL)
    m = parse_mode_parameters(buf[: 4 + len(CACHING) + 5], ten=False)
    assert m.truncated and m.wanted_length == len(buf)
    assert [type(p) for p in m.pages] == [CachingPage]
    assert ModeParameters.required_length(buf[:1]) == len(buf)
    assert ModeParameters.required_length(b"") is None
    assert ModeParameters.required_length(mode10(CACHING)[:2], ten=True) == len(mode10(CACHING))
    assert ModeParameters.required_length(b"\0", ten=True) is None


@pytest.mark.parametrize(
    ("buf", "ten"),
    [
        (h("03 00 00"), False),  # header cut
        (h("0003 00 00 00 00 0000"), True),  # mode data length shorter than the header
        (h("0b 00 00 07") + bytes(8), False),  # block descriptor length not a multiple of 8
        (h("07 00 00 10") + bytes(4), False),  # block descriptors past the data
        (h("05 00 00 00 08 12"), False),  # page runs past the data
        (h("04 00 00 00 48"), False),  # sub_page header cut
    ],
)
def test_malformed(buf: bytes, ten: bool) -> None:
    with pytest.raises(MalformedResponse):
        parse_mode_parameters(buf, ten=ten)


_page_code = st.integers(0, 0x3E)


@st.composite
def _page(draw) -> bytes:
    code = draw(_page_code)
    ps = draw(st.booleans())
    if draw(st.booleans()):
        body = draw(st.binary(max_size=40))
        return bytes([(0x80 if ps else 0) | 0x40 | code, draw(st.integers(0, 0xFE))]) + \
            len(body).to_bytes(2, "big") + body
    body = draw(st.binary(max_size=40))
    return bytes([(0x80 if ps else 0) | code, len(body)]) + body


@settings(max_examples=200, deadline=None)
@given(st.lists(_page(), max_size=5), st.booleans(), st.lists(st.binary(min_size=8, max_size=8), max_size=2))
def test_round_trip_property(pages, ten: bool, descriptors) -> None:
    blocks = b"".join(d[:4] + b"\0" + d[5:] for d in descriptors)  # byte 4 is reserved
    buf = mode10(*pages, descriptors=blocks) if ten else mode6(*pages, descriptors=blocks)
    if not ten and len(buf) > 256:
        return
    m = parse_mode_parameters(buf, ten=ten)
    assert m.to_bytes() == select_form(buf, ten)


def test_short_page_fields_past_its_end_are_none_and_survive_select() -> None:
    # An older device's caching page stops at byte 11 (PAGE LENGTH 0Ah):
    # the fields after it were not reported, so they are None, and building
    # MODE SELECT data from the page keeps its bytes as they were.
    short = h("88 0a 04 00 ffff 0000 ffff 0102")
    page = parse_mode_page(short)
    assert isinstance(page, CachingPage)
    assert page.wce and page.maximum_prefetch_ceiling == 0x0102
    assert page.fsw is None and page.number_of_cache_segments is None and page.cache_segment_size is None
    assert page.to_bytes() == bytes([0x08]) + short[1:]
    assert attr.evolve(page, wce=False).to_bytes()[2] == 0x00
