"""LOG SENSE pages (SPC-5 7.3, SBC-4 6.4).

A log page is a 4-byte header (SPC-5 table 349: DS, SPF, PAGE CODE,
SUBPAGE CODE, PAGE LENGTH) and a list of log parameters (table 350:
PARAMETER CODE, control byte, PARAMETER LENGTH, value).  Every page parses
into at least :class:`LogPage` with its :class:`LogParameter` list; the
pages named in :func:`parse_log_page` also get typed fields.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Tuple, Type, TypeVar

import attrs

from sgpy._asc import asc_text
from sgpy.errors import MalformedResponse
from sgpy.responses._common import be, length_header, need, read_header

__all__ = [
    "LogParameter",
    "LogPage",
    "SupportedLogPages",
    "SupportedLogSubpages",
    "ErrorCounterPage",
    "WriteErrorCounterPage",
    "ReadErrorCounterPage",
    "VerifyErrorCounterPage",
    "NonMediumErrorPage",
    "TemperaturePage",
    "StartStopCycleCounterPage",
    "SelfTestResult",
    "SelfTestResultsPage",
    "MediumScanResult",
    "BackgroundScanResultsPage",
    "InformationalExceptionsPage",
    "SolidStateMediaPage",
    "parse_log_page",
]

L = TypeVar("L", bound="LogPage")


@attrs.frozen
class LogParameter:
    """One log parameter (SPC-5 table 350); ``control`` is byte 2 as read."""

    parameter_code: int
    control: int
    value: bytes

    @property
    def du(self) -> bool:
        """Disable update."""
        return bool(self.control & 0x80)

    @property
    def tsd(self) -> bool:
        """Target save disable."""
        return bool(self.control & 0x20)

    @property
    def etc(self) -> bool:
        """Enable threshold comparison."""
        return bool(self.control & 0x10)

    @property
    def tmc(self) -> int:
        """Threshold met criteria."""
        return (self.control >> 2) & 0x03

    @property
    def format_and_linking(self) -> int:
        """FORMAT AND LINKING: 0 bounded counter, 1 ASCII list, 2 bounded/unbounded, 3 binary list."""
        return self.control & 0x03

    @property
    def as_int(self) -> int:
        """The value as a big-endian unsigned integer (0 when empty)."""
        return int.from_bytes(self.value, "big") if self.value else 0


@attrs.frozen
class LogPage:
    """Any log page: its codes and parameters (``ds`` is the DS bit)."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset()

    page_code: int = 0
    subpage_code: int = 0
    spf: bool = False
    ds: bool = False
    parameters: Tuple[LogParameter, ...] = ()
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """PAGE LENGTH + 4, or None when the 4-byte header is incomplete."""
        return length_header(buf, 2, 2, 4)

    def parameter(self, code: int) -> Optional[LogParameter]:
        """The first parameter with this parameter code, or None."""
        for p in self.parameters:
            if p.parameter_code == code:
                return p
        return None

    @classmethod
    def _header(cls, buf: bytes) -> Tuple[bytes, Dict[str, Any]]:
        buf, wanted = read_header(buf, 2, 2, 4, "log page")
        code = buf[0] & 0x3F
        if cls.PAGE_CODES and code not in cls.PAGE_CODES:
            raise MalformedResponse(f"{cls.__name__}: page code {code:02X}h")
        common = dict(
            page_code=code,
            subpage_code=buf[1],
            spf=bool(buf[0] & 0x40),
            ds=bool(buf[0] & 0x80),
            truncated=len(buf) < wanted,
            wanted_length=wanted,
        )
        return buf[:wanted], common

    @staticmethod
    def _parameters(page: bytes, truncated: bool) -> Tuple[LogParameter, ...]:
        out = []
        pos = 4
        end = len(page)
        while pos + 4 <= end:
            nxt = pos + 4 + page[pos + 3]
            if nxt > end:
                if truncated:
                    break
                raise MalformedResponse(f"log parameter at byte {pos} runs past the page length")
            out.append(LogParameter(be(page, pos, 2), page[pos + 2], page[pos + 4 : nxt]))
            pos = nxt
        return tuple(out)

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        """Typed fields from the parameters (none for the generic page)."""
        return {}

    @classmethod
    def from_bytes(cls: Type[L], buf: bytes) -> L:
        """Parse the page; parameters cut off by a short allocation length are dropped."""
        page, common = cls._header(buf)
        params = cls._parameters(page, common["truncated"])
        return cls(**common, parameters=params, **cls._typed(params))


@attrs.frozen
class SupportedLogPages(LogPage):
    """Page 00h, SPC-5 7.3.18: the page codes the device supports (no parameters)."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x00})
    pages: Tuple[int, ...] = ()

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SupportedLogPages":
        """Parse the list of page codes."""
        page, common = cls._header(buf)
        return cls(**common, pages=tuple(b & 0x3F for b in page[4:]))


@attrs.frozen
class SupportedLogSubpages(LogPage):
    """Subpage FFh of any page (00h/FFh lists all), SPC-5 7.3.19: (page, subpage) pairs."""

    pages: Tuple[Tuple[int, int], ...] = ()

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SupportedLogSubpages":
        """Parse the list of page/subpage code pairs."""
        page, common = cls._header(buf)
        body = page[4:]
        return cls(**common, pages=tuple((body[i] & 0x3F, body[i + 1]) for i in range(0, len(body) - 1, 2)))


def _counter(params: Tuple[LogParameter, ...], code: int) -> Optional[int]:
    for p in params:
        if p.parameter_code == code:
            return p.as_int
    return None


@attrs.frozen
class ErrorCounterPage(LogPage):
    """Error counter pages, SPC-5 7.3.4 (02h write, 03h read, 05h verify).

    Each counter is None when the device does not report it.
    """

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x02, 0x03, 0x05})
    corrected_without_delay: Optional[int] = None
    corrected_with_delay: Optional[int] = None
    total_rewrites_or_rereads: Optional[int] = None
    total_corrected: Optional[int] = None
    correction_algorithm_invocations: Optional[int] = None
    bytes_processed: Optional[int] = None
    total_uncorrected: Optional[int] = None

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        # SPC-5 table 357: parameter codes 0000h-0006h.
        names = (
            "corrected_without_delay",
            "corrected_with_delay",
            "total_rewrites_or_rereads",
            "total_corrected",
            "correction_algorithm_invocations",
            "bytes_processed",
            "total_uncorrected",
        )
        return {name: _counter(params, code) for code, name in enumerate(names)}


@attrs.frozen
class WriteErrorCounterPage(ErrorCounterPage):
    """Page 02h, write error counters."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x02})


@attrs.frozen
class ReadErrorCounterPage(ErrorCounterPage):
    """Page 03h, read error counters."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x03})


@attrs.frozen
class VerifyErrorCounterPage(ErrorCounterPage):
    """Page 05h, verify error counters."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x05})


@attrs.frozen
class NonMediumErrorPage(LogPage):
    """Page 06h, SPC-5 7.3.13: errors not tied to the medium (None when the device does not count them)."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x06})
    non_medium_error_count: Optional[int] = None

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        return {"non_medium_error_count": _counter(params, 0x0000)}


def _celsius(params: Tuple[LogParameter, ...], code: int) -> Optional[int]:
    for p in params:
        if p.parameter_code == code and len(p.value) >= 2:
            return None if p.value[1] == 0xFF else p.value[1]
    return None


@attrs.frozen
class TemperaturePage(LogPage):
    """Page 0Dh, SPC-5 7.3.21: temperature and reference temperature in °C
    (None when absent or reported as FFh, "unknown")."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x0D})
    temperature: Optional[int] = None
    reference_temperature: Optional[int] = None

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        return {"temperature": _celsius(params, 0x0000), "reference_temperature": _celsius(params, 0x0001)}


def _ascii(params: Tuple[LogParameter, ...], code: int, start: int, length: int) -> Optional[str]:
    for p in params:
        if p.parameter_code == code and len(p.value) >= start + length:
            return p.value[start : start + length].decode("ascii", "replace").strip(" \0")
    return None


@attrs.frozen
class StartStopCycleCounterPage(LogPage):
    """Page 0Eh, SPC-5 7.3.20: manufacture date and start-stop / load-unload counts.

    Dates are the ASCII year (4 characters) and week (2 characters) the
    device reports.
    """

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x0E})
    manufacture_year: Optional[str] = None
    manufacture_week: Optional[str] = None
    accounting_year: Optional[str] = None
    accounting_week: Optional[str] = None
    specified_cycle_count: Optional[int] = None
    accumulated_start_stop_cycles: Optional[int] = None
    specified_load_unload_count: Optional[int] = None
    accumulated_load_unload_cycles: Optional[int] = None

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        return {
            "manufacture_year": _ascii(params, 0x0001, 0, 4),
            "manufacture_week": _ascii(params, 0x0001, 4, 2),
            "accounting_year": _ascii(params, 0x0002, 0, 4),
            "accounting_week": _ascii(params, 0x0002, 4, 2),
            "specified_cycle_count": _counter(params, 0x0003),
            "accumulated_start_stop_cycles": _counter(params, 0x0004),
            "specified_load_unload_count": _counter(params, 0x0005),
            "accumulated_load_unload_cycles": _counter(params, 0x0006),
        }


@attrs.frozen
class SelfTestResult:
    """One self-test result log parameter, SPC-5 table 391 (parameter codes 0001h-0014h).

    ``first_failure_lba`` is None when the field is all ones (no address).
    """

    parameter_code: int
    self_test_code: int
    self_test_results: int
    self_test_number: int
    accumulated_power_on_hours: int
    first_failure_lba: Optional[int]
    sense_key: int
    asc: int
    ascq: int
    vendor_specific: int

    @property
    def description(self) -> str:
        """ASC/ASCQ text of the failure."""
        return asc_text(self.asc, self.ascq)


@attrs.frozen
class SelfTestResultsPage(LogPage):
    """Page 10h, SPC-5 7.3.17: the last 20 self-test results, most recent first.

    ``results`` leaves out the unused (all-zero) entries.
    """

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x10})
    results: Tuple[SelfTestResult, ...] = ()

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        out = []
        for p in params:
            v = p.value  # offsets below are the table's minus the 4-byte parameter header
            if not 1 <= p.parameter_code <= 0x14 or len(v) < 16 or not any(v):
                continue
            lba = be(v, 4, 8)
            out.append(
                SelfTestResult(
                    parameter_code=p.parameter_code,
                    self_test_code=v[0] >> 5,
                    self_test_results=v[0] & 0x0F,
                    self_test_number=v[1],
                    accumulated_power_on_hours=be(v, 2, 2),
                    first_failure_lba=None if lba == (1 << 64) - 1 else lba,
                    sense_key=v[12] & 0x0F,
                    asc=v[13],
                    ascq=v[14],
                    vendor_specific=v[15],
                )
            )
        return {"results": tuple(out)}


@attrs.frozen
class MediumScanResult:
    """One background medium scan parameter, SBC-4 table 285 (codes 0001h-0800h)."""

    parameter_code: int
    accumulated_power_on_minutes: int
    reassign_status: int
    sense_key: int
    asc: int
    ascq: int
    lba: int


@attrs.frozen
class BackgroundScanResultsPage(LogPage):
    """Page 15h, SBC-4 6.4.2: background scan status and the medium errors it found."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x15})
    accumulated_power_on_minutes: Optional[int] = None
    background_scan_status: Optional[int] = None
    number_of_background_scans_performed: Optional[int] = None
    background_scan_progress: Optional[int] = None
    number_of_background_medium_scans_performed: Optional[int] = None
    medium_scan_results: Tuple[MediumScanResult, ...] = ()

    @property
    def progress_percent(self) -> Optional[float]:
        """BACKGROUND SCAN PROGRESS as a percentage (the field counts in 1/65536)."""
        if self.background_scan_progress is None:
            return None
        return self.background_scan_progress * 100.0 / 65536.0

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        results: List[MediumScanResult] = []
        for p in params:
            v = p.value
            if p.parameter_code == 0 and len(v) >= 12 and not out:
                # SBC-4 table 284, offsets minus the 4-byte parameter header;
                # the first status parameter counts, as for LogPage.parameter().
                out.update(
                    accumulated_power_on_minutes=be(v, 0, 4),
                    background_scan_status=v[5],
                    number_of_background_scans_performed=be(v, 6, 2),
                    background_scan_progress=be(v, 8, 2),
                    number_of_background_medium_scans_performed=be(v, 10, 2),
                )
            elif 1 <= p.parameter_code <= 0x800 and len(v) >= 20:
                results.append(
                    MediumScanResult(
                        parameter_code=p.parameter_code,
                        accumulated_power_on_minutes=be(v, 0, 4),
                        reassign_status=v[4] >> 4,
                        sense_key=v[4] & 0x0F,
                        asc=v[5],
                        ascq=v[6],
                        lba=be(v, 12, 8),
                    )
                )
        out["medium_scan_results"] = tuple(results)
        return out


@attrs.frozen
class InformationalExceptionsPage(LogPage):
    """Page 2Fh, SPC-5 7.3.9: the current failure prediction and temperature."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x2F})
    asc: Optional[int] = None
    ascq: Optional[int] = None
    most_recent_temperature: Optional[int] = None

    @property
    def description(self) -> Optional[str]:
        """ASC/ASCQ text of the reported exception (00h/00h: none)."""
        if self.asc is None or self.ascq is None:
            return None
        return asc_text(self.asc, self.ascq)

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        for p in params:
            if p.parameter_code == 0 and len(p.value) >= 2:
                temp = p.value[2] if len(p.value) >= 3 and p.value[2] != 0xFF else None
                return {"asc": p.value[0], "ascq": p.value[1], "most_recent_temperature": temp}
        return {}


@attrs.frozen
class SolidStateMediaPage(LogPage):
    """Page 11h, SBC-4 6.4.12: solid state media.  ``percentage_used_endurance_indicator`` is the
    device's estimate of the endurance used, in percent (it may exceed 100); None when absent."""

    PAGE_CODES: ClassVar[FrozenSet[int]] = frozenset({0x11})
    percentage_used_endurance_indicator: Optional[int] = None

    @classmethod
    def _typed(cls, params: Tuple[LogParameter, ...]) -> Dict[str, Any]:
        for p in params:
            if p.parameter_code == 0x0001 and len(p.value) >= 4:  # SBC-4 table 296: byte 7 of the parameter
                return {"percentage_used_endurance_indicator": p.value[3]}
        return {}


_LOG_CLASSES: Dict[int, Type[LogPage]] = {
    0x02: WriteErrorCounterPage,
    0x03: ReadErrorCounterPage,
    0x05: VerifyErrorCounterPage,
    0x06: NonMediumErrorPage,
    0x0D: TemperaturePage,
    0x0E: StartStopCycleCounterPage,
    0x10: SelfTestResultsPage,
    0x11: SolidStateMediaPage,
    0x15: BackgroundScanResultsPage,
    0x2F: InformationalExceptionsPage,
}


def parse_log_page(buf: bytes) -> LogPage:
    """Parse any log page by its page and subpage code.

    Subpage FFh gives :class:`SupportedLogSubpages`, page 00h
    :class:`SupportedLogPages`, the pages with subpage 00h listed in this
    module their typed class, and anything else a generic :class:`LogPage`.
    """
    need(buf, 4, "log page")
    code, subpage = buf[0] & 0x3F, buf[1]
    if subpage == 0xFF:
        return SupportedLogSubpages.from_bytes(buf)
    if subpage == 0:
        if code == 0:
            return SupportedLogPages.from_bytes(buf)
        cls = _LOG_CLASSES.get(code)
        if cls is not None:
            return cls.from_bytes(buf)
    return LogPage.from_bytes(buf)
