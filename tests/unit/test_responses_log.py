"""LOG SENSE pages, from byte strings laid out per SPC-5 7.3 and SBC-4 6.4."""

from __future__ import annotations

import pytest

from sgpy.errors import MalformedResponse
from sgpy.responses import (
    BackgroundScanResultsPage,
    InformationalExceptionsPage,
    LogPage,
    LogParameter,
    ReadErrorCounterPage,
    SelfTestResultsPage,
    StartStopCycleCounterPage,
    SupportedLogPages,
    SupportedLogSubpages,
    TemperaturePage,
    VerifyErrorCounterPage,
    WriteErrorCounterPage,
    parse_log_page,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def param(code: int, value: bytes, control: int = 0x03) -> bytes:
    """Log parameter, SPC-5 table 350."""
    return code.to_bytes(2, "big") + bytes([control, len(value)]) + value


def page(code: int, *params: bytes, subpage: int = 0, spf: bool = False, ds: bool = False) -> bytes:
    """Log page header, SPC-5 table 349."""
    body = b"".join(params)
    return bytes([(0x80 if ds else 0) | (0x40 if spf else 0) | code, subpage]) + len(body).to_bytes(2, "big") + body


def test_supported_pages() -> None:
    p = parse_log_page(page(0x00, h("00 02 03 0d 0e 10 15 2f")))
    assert isinstance(p, SupportedLogPages)
    assert p.pages == (0x00, 0x02, 0x03, 0x0D, 0x0E, 0x10, 0x15, 0x2F)


def test_supported_subpages() -> None:
    p = parse_log_page(page(0x00, h("00 00 00 ff 0d 00 0d 01"), subpage=0xFF, spf=True))
    assert isinstance(p, SupportedLogSubpages)
    assert p.pages == ((0x00, 0x00), (0x00, 0xFF), (0x0D, 0x00), (0x0D, 0x01))
    assert p.spf and p.subpage_code == 0xFF


@pytest.mark.parametrize(("code", "cls"), [(0x02, WriteErrorCounterPage), (0x03, ReadErrorCounterPage),
                                            (0x05, VerifyErrorCounterPage)])
def test_error_counters(code: int, cls) -> None:
    buf = page(code, *(param(i, (i + 1).to_bytes(4, "big")) for i in range(6)),
               param(6, (7).to_bytes(8, "big")))
    p = parse_log_page(buf)
    assert type(p) is cls
    assert (p.corrected_without_delay, p.corrected_with_delay, p.total_rewrites_or_rereads) == (1, 2, 3)
    assert (p.total_corrected, p.correction_algorithm_invocations, p.bytes_processed, p.total_uncorrected) == (
        4, 5, 6, 7)


def test_error_counters_missing_are_none() -> None:
    p = parse_log_page(page(0x03, param(6, h("00"))))
    assert p.total_uncorrected == 0 and p.corrected_without_delay is None


def test_temperature() -> None:
    p = parse_log_page(page(0x0D, param(0, h("00 24")), param(1, h("00 41"))))
    assert isinstance(p, TemperaturePage)
    assert (p.temperature, p.reference_temperature) == (36, 65)
    assert parse_log_page(page(0x0D, param(0, h("00 ff")))).temperature is None


def test_start_stop_cycle_counter() -> None:
    p = parse_log_page(page(
        0x0E,
        param(1, b"201907"),
        param(2, b"    00"),
        param(3, (50000).to_bytes(4, "big")),
        param(4, (123).to_bytes(4, "big")),
        param(5, (600000).to_bytes(4, "big")),
        param(6, (456).to_bytes(4, "big")),
    ))
    assert isinstance(p, StartStopCycleCounterPage)
    assert (p.manufacture_year, p.manufacture_week) == ("2019", "07")
    assert (p.accounting_year, p.accounting_week) == ("", "00")
    assert (p.specified_cycle_count, p.accumulated_start_stop_cycles) == (50000, 123)
    assert (p.specified_load_unload_count, p.accumulated_load_unload_cycles) == (600000, 456)


def test_self_test_results() -> None:
    failed = h("23 05 1234 0000000000000100 03 11 00 00")  # background short, failed segment
    passed = h("20 04 1200 ffffffffffffffff 00 00 00 00")
    empty = bytes(16)
    p = parse_log_page(page(0x10, param(1, failed), param(2, passed), param(3, empty)))
    assert isinstance(p, SelfTestResultsPage)
    assert len(p.results) == 2
    first, second = p.results
    assert (first.self_test_code, first.self_test_results, first.self_test_number) == (1, 3, 5)
    assert (first.accumulated_power_on_hours, first.first_failure_lba) == (0x1234, 0x100)
    assert (first.sense_key, first.asc, first.ascq) == (3, 0x11, 0)
    assert first.description == "Unrecovered read error"
    assert second.first_failure_lba is None


def test_background_scan() -> None:
    status = h("00001000 00 02 0003 8000 0004")
    medium = h("00002000 13 11 00 0000000000 0000000000abcdef")
    p = parse_log_page(page(0x15, param(0, status), param(1, medium)))
    assert isinstance(p, BackgroundScanResultsPage)
    assert p.accumulated_power_on_minutes == 0x1000 and p.background_scan_status == 2
    assert p.number_of_background_scans_performed == 3 and p.progress_percent == 50.0
    assert p.number_of_background_medium_scans_performed == 4
    (m,) = p.medium_scan_results
    assert (m.reassign_status, m.sense_key, m.asc, m.ascq, m.lba) == (1, 3, 0x11, 0, 0xABCDEF)
    assert BackgroundScanResultsPage.from_bytes(page(0x15)).progress_percent is None


def test_informational_exceptions() -> None:
    p = parse_log_page(page(0x2F, param(0, h("5d 10 28 00"))))
    assert isinstance(p, InformationalExceptionsPage)
    assert (p.asc, p.ascq, p.most_recent_temperature) == (0x5D, 0x10, 40)
    assert p.description.startswith("Hardware impending failure")
    assert InformationalExceptionsPage.from_bytes(page(0x2F)).description is None


def test_other_pages_are_generic() -> None:
    p = parse_log_page(page(0x18, param(1, h("0102"), control=0x83), subpage=0x01, spf=True, ds=True))
    assert type(p) is LogPage
    assert (p.page_code, p.subpage_code, p.spf, p.ds) == (0x18, 0x01, True, True)
    (par,) = p.parameters
    assert par == LogParameter(1, 0x83, h("0102"))
    assert par.du and par.format_and_linking == 3 and par.as_int == 0x0102
    assert not par.tsd and not par.etc and par.tmc == 0
    assert p.parameter(1) is par and p.parameter(2) is None


def test_truncated_drops_cut_parameter() -> None:
    buf = page(0x0D, param(0, h("00 24")), param(1, h("00 41")))
    p = parse_log_page(buf[:12])
    assert p.truncated and p.wanted_length == len(buf)
    assert p.temperature == 36 and p.reference_temperature is None
    assert LogPage.required_length(buf[:4]) == len(buf) and LogPage.required_length(buf[:3]) is None


@pytest.mark.parametrize("buf", [h("0d 00 00"), h("0d 00 0006 0000 03 08 0000")])
def test_malformed(buf: bytes) -> None:
    with pytest.raises(MalformedResponse):
        parse_log_page(buf)


def test_wrong_class() -> None:
    with pytest.raises(MalformedResponse):
        TemperaturePage.from_bytes(page(0x0E))
