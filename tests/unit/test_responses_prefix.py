"""Every prefix of a valid answer decodes to the same values or to None.

An answer cut short by the allocation length is still parsed, and must never
turn a cut field into a different number.  For every response class, a
builder makes complete, valid answers (from hypothesis, and from a seeded
generator that never writes a zero byte, so a zero-padded cut always shows);
each prefix of such an answer is parsed, and each field, and each property,
must be either exactly what the complete answer gives or None.  Lists keep
only their complete entries, so a prefix's list is a prefix of the complete
one.  Fields at fixed positions must moreover be decoded (not None) as soon
as the prefix wholly holds them.
"""

from __future__ import annotations

import functools
import random
from typing import Any, Callable, Dict, List, Optional, Tuple

import attr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgpy import responses
from sgpy.errors import MalformedResponse
from sgpy.responses._common import layout_extents


class Fill:
    """Where a builder gets its choices: hypothesis, or a seeded generator."""

    def __init__(self, draw: Optional[Callable[[Any], Any]] = None, seed: int = 0) -> None:
        self._draw = draw
        self._random = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        if self._draw is not None:
            return self._draw(st.integers(lo, hi))
        return self._random.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        if self._draw is not None:
            return self._draw(st.binary(min_size=n, max_size=n))
        return bytes(self._random.randint(1, 255) for _ in range(n))

    def byte(self) -> int:
        return self.bytes(1)[0]

    def flag(self) -> bool:
        return self.int(0, 1) == 1


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


# ------------------------------------------------------------------ builders
# Each returns one complete answer; its own length header matches its size.


def _inquiry(f: Fill) -> bytes:
    n = f.int(0, 91)
    return f.bytes(4) + bytes([n]) + f.bytes(n)


def _vpd(code: int, body: bytes, f: Fill) -> bytes:
    return bytes([f.byte(), code]) + _u(len(body), 2) + body


def _vpd_random(code: int, longest: int) -> Callable[[Fill], bytes]:
    def build(f: Fill) -> bytes:
        return _vpd(code, f.bytes(f.int(0, longest)), f)

    return build


def _designator(f: Fill) -> bytes:
    n = f.int(0, 20)
    return bytes([f.byte(), f.byte(), f.byte(), n]) + f.bytes(n)


def _device_identification(f: Fill) -> bytes:
    return _vpd(0x83, b"".join(_designator(f) for _ in range(f.int(0, 4))), f)


def _ata_information(f: Fill) -> bytes:
    return _vpd(0x89, f.bytes(568 if f.flag() else f.int(0, 70)), f)


def _logical_block_provisioning(f: Fill) -> bytes:
    head = bytearray(f.bytes(4))
    if f.flag():  # DP set: the provisioning group descriptor follows (SBC-4 6.6.6)
        head[1] |= 0x01
        return _vpd(0xB2, bytes(head) + _designator(f), f)
    head[1] &= 0xFE
    return _vpd(0xB2, bytes(head) + f.bytes(f.int(0, 8)), f)


def _raw_vpd(f: Fill) -> bytes:
    return _vpd(f.int(0xC0, 0xFF), f.bytes(f.int(0, 40)), f)


def _report_luns(f: Fill) -> bytes:
    n = f.int(0, 4)
    return _u(8 * n, 4) + f.bytes(4) + f.bytes(8 * n)


def _mode_page(f: Fill) -> bytes:
    code = [0x01, 0x02, 0x08, 0x0A, 0x1A, 0x1C, 0x0A, f.int(0x20, 0x3E)][f.int(0, 7)]
    ps = 0x80 if f.flag() else 0
    n = f.int(0, 40)
    if f.flag():  # sub_page format: 0Ah/01h is the control extension page
        subpage = 0x01 if code == 0x0A else f.byte()
        return bytes([ps | 0x40 | code, subpage]) + _u(n, 2) + f.bytes(n)
    return bytes([ps | code, n]) + f.bytes(n)


def _mode(ten: bool) -> Callable[[Fill], bytes]:
    def build(f: Fill) -> bytes:
        longlba = ten and f.flag()
        descriptors = f.bytes((16 if longlba else 8) * f.int(0, 2))
        pages = b"".join(_mode_page(f) for _ in range(f.int(0, 3)))
        if ten:
            rest = bytes([f.byte(), f.byte(), int(longlba), 0]) + _u(len(descriptors), 2) + descriptors + pages
            return _u(len(rest), 2) + rest
        rest = bytes([f.byte(), f.byte(), len(descriptors)]) + descriptors + pages
        return bytes([len(rest)]) + rest

    return build


def _log_parameter(f: Fill, codes: Tuple[int, ...], sizes: Tuple[int, ...]) -> bytes:
    code = codes[f.int(0, len(codes) - 1)] if f.flag() else f.int(0, 0xFFFF)
    n = sizes[f.int(0, len(sizes) - 1)] if f.flag() else f.int(0, 24)
    return _u(code, 2) + bytes([f.byte(), n]) + f.bytes(n)


def _log(page: Optional[int], codes: Tuple[int, ...] = (), sizes: Tuple[int, ...] = (0,)) -> Callable[[Fill], bytes]:
    def build(f: Fill) -> bytes:
        body = b"".join(_log_parameter(f, codes or (0,), sizes) for _ in range(f.int(0, 4)))
        code = f.int(0x30, 0x3E) if page is None else page
        return bytes([code | (0x80 if f.flag() else 0), 0]) + _u(len(body), 2) + body

    return build


def _supported_log_pages(f: Fill) -> bytes:
    body = f.bytes(f.int(0, 20))
    return bytes([0, 0]) + _u(len(body), 2) + body


def _supported_log_subpages(f: Fill) -> bytes:
    body = f.bytes(f.int(0, 20))
    return bytes([0x40 | f.int(0, 0x3F), 0xFF]) + _u(len(body), 2) + body


def _timeouts(f: Fill) -> bytes:
    return _u(0x0A, 2) + f.bytes(10)  # SPC-5 table 315: DESCRIPTOR LENGTH 0Ah


def _supported_operation_codes(f: Fill) -> bytes:
    body = b""
    for _ in range(f.int(0, 4)):
        ctdp = f.flag()
        flags = (f.byte() & ~0x02) | (0x02 if ctdp else 0)
        body += bytes([f.byte(), f.byte()]) + f.bytes(2) + bytes([f.byte(), flags]) + f.bytes(2)
        if ctdp:
            body += _timeouts(f)
    return _u(len(body), 4) + body


def _one_command(f: Fill) -> bytes:
    flags = f.byte()
    n = f.int(0, 16)
    return bytes([f.byte(), flags]) + _u(n, 2) + f.bytes(n) + (_timeouts(f) if flags & 0x80 else b"")


def _pr_read_keys(f: Fill) -> bytes:
    n = f.int(0, 4)
    return f.bytes(4) + _u(8 * n, 4) + f.bytes(8 * n)


def _pr_read_reservation(f: Fill) -> bytes:
    n = 16 if f.flag() else 0
    return f.bytes(4) + _u(n, 4) + f.bytes(n)


def _pr_report_capabilities(f: Fill) -> bytes:
    n = f.int(2, 12)
    return _u(n, 2) + f.bytes(n - 2)


def _pr_full_status(f: Fill) -> bytes:
    body = b""
    for _ in range(f.int(0, 3)):
        n = f.int(0, 24)
        body += f.bytes(20) + _u(n, 4) + f.bytes(n)
    return f.bytes(4) + _u(len(body), 4) + body


def _lba_status(f: Fill) -> bytes:
    n = f.int(0, 4)
    return _u(4 + 16 * n, 4) + f.bytes(4) + f.bytes(16 * n)


def _target_port_groups(f: Fill) -> bytes:
    extended = f.flag()
    body = bytes([0x10, f.byte(), f.byte(), f.byte()]) if extended else b""
    for _ in range(f.int(0, 3)):
        ports = f.int(0, 3)
        # Byte 0 bits 6-4 are reserved; kept zero so that a length-only
        # answer's first group is not read as the extended header.
        body += bytes([f.byte() & 0x8F]) + f.bytes(6) + bytes([ports]) + f.bytes(4 * ports)
    return _u(len(body), 4) + body


def _report_zones(f: Fill) -> bytes:
    n = f.int(0, 3)
    return _u(64 * n, 4) + f.bytes(60) + f.bytes(64 * n)


def _task_management(f: Fill) -> bytes:
    n = 12 if f.flag() else 0
    return f.bytes(3) + bytes([n]) + f.bytes(n)


def _fixed(size: int) -> Callable[[Fill], bytes]:
    return lambda f: f.bytes(size)


# Each response class: the parser, the builder, and the fewest bytes the
# parser needs (its length header); shorter prefixes raise MalformedResponse.
Case = Tuple[Callable[[bytes], Any], Callable[[Fill], bytes], int]
_SENSE_EXCLUDED = "RequestSenseData"

CASES: Dict[str, Case] = {
    "StandardInquiryData": (responses.StandardInquiryData.from_bytes, _inquiry, 5),
    "SupportedVpdPages": (responses.SupportedVpdPages.from_bytes, _vpd_random(0x00, 30), 4),
    "UnitSerialNumber": (responses.UnitSerialNumber.from_bytes, _vpd_random(0x80, 30), 4),
    "DeviceIdentification": (responses.DeviceIdentification.from_bytes, _device_identification, 4),
    "ExtendedInquiryData": (responses.ExtendedInquiryData.from_bytes, _vpd_random(0x86, 64), 4),
    "AtaInformation": (responses.AtaInformation.from_bytes, _ata_information, 4),
    "PowerCondition": (responses.PowerCondition.from_bytes, _vpd_random(0x8A, 20), 4),
    "BlockLimits": (responses.BlockLimits.from_bytes, _vpd_random(0xB0, 64), 4),
    "BlockDeviceCharacteristics": (responses.BlockDeviceCharacteristics.from_bytes, _vpd_random(0xB1, 64), 4),
    "LogicalBlockProvisioning": (responses.LogicalBlockProvisioning.from_bytes, _logical_block_provisioning, 4),
    "ZonedBlockDeviceCharacteristics": (
        responses.ZonedBlockDeviceCharacteristics.from_bytes, _vpd_random(0xB6, 64), 4),
    "RawVpdPage": (responses.RawVpdPage.from_bytes, _raw_vpd, 4),
    "ReadCapacity10Data": (responses.ReadCapacity10Data.from_bytes, _fixed(8), 1),
    "ReadCapacity16Data": (responses.ReadCapacity16Data.from_bytes, _fixed(32), 1),
    "ReportLunsData": (responses.ReportLunsData.from_bytes, _report_luns, 4),
    "ModeParameters": (responses.ModeParameters.from_bytes, _mode(False), 4),
    "LogPage": (responses.LogPage.from_bytes, _log(None), 4),
    "SupportedLogPages": (responses.SupportedLogPages.from_bytes, _supported_log_pages, 4),
    "SupportedLogSubpages": (responses.SupportedLogSubpages.from_bytes, _supported_log_subpages, 4),
    "WriteErrorCounterPage": (responses.WriteErrorCounterPage.from_bytes, _log(0x02, tuple(range(7)), (1, 4, 8)), 4),
    "ReadErrorCounterPage": (responses.ReadErrorCounterPage.from_bytes, _log(0x03, tuple(range(7)), (1, 4, 8)), 4),
    "VerifyErrorCounterPage": (
        responses.VerifyErrorCounterPage.from_bytes, _log(0x05, tuple(range(7)), (1, 4, 8)), 4),
    "TemperaturePage": (responses.TemperaturePage.from_bytes, _log(0x0D, (0, 1), (2,)), 4),
    "StartStopCycleCounterPage": (
        responses.StartStopCycleCounterPage.from_bytes, _log(0x0E, tuple(range(1, 7)), (4, 6)), 4),
    "SelfTestResultsPage": (responses.SelfTestResultsPage.from_bytes, _log(0x10, tuple(range(1, 0x15)), (16,)), 4),
    "BackgroundScanResultsPage": (
        responses.BackgroundScanResultsPage.from_bytes, _log(0x15, (0, 1, 2, 0x800), (12, 20, 24)), 4),
    "InformationalExceptionsPage": (
        responses.InformationalExceptionsPage.from_bytes, _log(0x2F, (0,), (2, 3, 4)), 4),
    "SupportedOperationCodes": (responses.SupportedOperationCodes.from_bytes, _supported_operation_codes, 4),
    "OneCommandSupport": (responses.OneCommandSupport.from_bytes, _one_command, 4),
    "PrReadKeys": (responses.PrReadKeys.from_bytes, _pr_read_keys, 8),
    "PrReadReservation": (responses.PrReadReservation.from_bytes, _pr_read_reservation, 8),
    "PrReportCapabilities": (responses.PrReportCapabilities.from_bytes, _pr_report_capabilities, 2),
    "PrFullStatus": (responses.PrFullStatus.from_bytes, _pr_full_status, 8),
    "LbaStatus": (responses.LbaStatus.from_bytes, _lba_status, 4),
    "TargetPortGroups": (responses.TargetPortGroups.from_bytes, _target_port_groups, 4),
    "ReportZonesData": (responses.ReportZonesData.from_bytes, _report_zones, 4),
    "SupportedTaskManagementFunctions": (
        responses.SupportedTaskManagementFunctions.from_bytes, _task_management, 4),
}

# The same classes again through the other entry points.
EXTRA_CASES: Dict[str, Case] = {
    "ModeParameters(ten)": (functools.partial(responses.parse_mode_parameters, ten=True), _mode(True), 8),
    "parse_vpd(B0h)": (responses.parse_vpd, _vpd_random(0xB0, 64), 4),
    "parse_log_page(10h)": (responses.parse_log_page, _log(0x10, tuple(range(1, 0x15)), (16,)), 4),
}

ALL_CASES = {**CASES, **EXTRA_CASES}


def test_every_response_class_has_a_case() -> None:
    names = {cls.__name__ for cls in responses.RESPONSE_CLASSES}
    # REQUEST SENSE data is sgpy.sense.SenseData, decoded by sgpy/sense.py.
    names.discard("SenseData")
    assert names == set(CASES)


# ------------------------------------------------------------------- checking

_NOT_FIELDS = frozenset({"truncated", "wanted_length", "raw"})


def _agree(part: Any, whole: Any, where: str) -> None:
    """``part`` is None, the same value as ``whole``, or (a list) a prefix of it."""
    if part is None:
        return
    if isinstance(whole, tuple):
        assert isinstance(part, tuple), where
        assert part == whole[: len(part)], f"{where}: {part!r} is not a prefix of {whole!r}"
        return
    assert type(part) is type(whole) and part == whole, f"{where}: {part!r} != {whole!r}"


def _properties(cls: type) -> List[str]:
    return sorted(
        name for klass in cls.__mro__ for name, value in vars(klass).items()
        if isinstance(value, property) and not name.startswith("_")
    )


def check_prefixes(parse: Callable[[bytes], Any], full: bytes, header: int) -> None:
    """Parse every prefix of ``full`` and hold each result against the complete one."""
    whole = parse(full)
    assert not whole.truncated and whole.wanted_length == len(full)
    cls = type(whole)
    names = [f.name for f in attr.fields(cls) if f.name not in _NOT_FIELDS]
    extents = layout_extents(cls)
    for n in range(len(full) + 1):
        prefix = full[:n]
        if n < header:
            with pytest.raises(MalformedResponse):
                parse(prefix)
            continue
        part = parse(prefix)
        assert type(part) is cls
        assert part.truncated == (n < len(full)) and part.wanted_length == whole.wanted_length
        for name in names:
            value = getattr(part, name)
            _agree(value, getattr(whole, name), f"{cls.__name__}.{name} from {n} of {full.hex()}")
            if name in extents:
                start, end = extents[name]
                if (len(full) if end is None else end) <= n:  # wholly inside the prefix: decoded
                    assert value == getattr(whole, name), f"{cls.__name__}.{name} from {n} bytes"
                    assert (value is None) == (getattr(whole, name) is None)
        for name in _properties(cls):
            _agree(getattr(part, name), getattr(whole, name), f"{cls.__name__}.{name} (property) from {n}")


@pytest.mark.parametrize("name", sorted(ALL_CASES))
@pytest.mark.parametrize("seed", range(6))
def test_prefixes_never_change_a_value(name: str, seed: int) -> None:
    parse, build, header = ALL_CASES[name]
    check_prefixes(parse, build(Fill(seed=seed * 7919 + len(name))), header)


@pytest.mark.parametrize("name", sorted(ALL_CASES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefixes_never_change_a_value_any_answer(name: str, data: st.DataObject) -> None:
    parse, build, header = ALL_CASES[name]
    check_prefixes(parse, build(Fill(draw=data.draw)), header)


def test_a_cut_number_is_none_not_zero_padded() -> None:
    # The case from the defect report: 00 01 FF once read as LBA 01FF00h.
    d = responses.ReadCapacity10Data.from_bytes(bytes.fromhex("0001ff"))
    assert d.truncated and d.returned_lba is None


def test_request_sense_cut_asc() -> None:
    # Fixed-format sense, SPC-5 4.4.3: 18 bytes, ADDITIONAL SENSE LENGTH 0Ah,
    # MEDIUM ERROR, ASC/ASCQ 11h/04h.  Twelve bytes stop before the ASC.
    full = bytes([0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x04, 0, 0, 0, 0])
    whole = responses.RequestSenseData.from_bytes(full)
    part = responses.RequestSenseData.from_bytes(full[:12])
    assert part.truncated and whole.asc == 0x11
    assert part.asc is None and part.ascq is None
    assert "stops before" in part.description and "--/--" in str(part)
    thirteen = responses.RequestSenseData.from_bytes(full[:13])
    assert thirteen.asc == 0x11 and thirteen.ascq is None
