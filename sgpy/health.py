"""A SCSI device's health from its log pages, as ``smartctl -H -A -l selftest`` reports it for SCSI devices.

:func:`read_health` asks LOG SENSE for the supported pages (00h) and then
reads those of them that say something about health:

=====  ==================================================================
2Fh    informational exceptions: the failure the device predicts (its
       SMART verdict, an ASC/ASCQ), and the most recent temperature
0Dh    temperature and reference (trip) temperature, °C
0Eh    start-stop cycle counter: manufacture date, start-stop and
       load-unload cycles (with their specified lifetimes)
02h    write error counters
03h    read error counters
05h    verify error counters
06h    non-medium error count
10h    self-test results: the last 20 self-tests, most recent first
15h    background scan results (SBC-4): status, power-on time, medium
       errors found
11h    solid state media (SBC-4): percentage of endurance used
=====  ==================================================================

A page the device does not list is *absent*, not a failure; a listed page
whose LOG SENSE fails is recorded with its error (``errors``).  A device
that does not implement LOG SENSE at all has every page absent.

:func:`assess` turns what was read into a verdict and findings (the bits of
the command line's exit status; pure, no I/O); :func:`self_test` starts,
or aborts, a self-test with SEND DIAGNOSTIC (SPC-5 6.42, SELF-TEST CODE of
table 219), a read-only command for :mod:`sgpy.safety` when it carries no
parameter list.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Mapping, Optional, Tuple

import attrs

from sgpy.errors import IllegalRequest, TaskFailed, UnitAttention

__all__ = [
    "HEALTH_PAGES",
    "SELF_TEST_CODES",
    "SELF_TEST_RESULTS",
    "Finding",
    "Health",
    "read_health",
    "assess",
    "self_test",
    "self_test_kind",
    "self_test_result",
    "scan_status",
]

#: The log pages :func:`read_health` reads, by the name it files them under: (page code, the page's title).
HEALTH_PAGES: Mapping[str, Tuple[int, str]] = {
    "informational_exceptions": (0x2F, "informational exceptions"),
    "temperature": (0x0D, "temperature"),
    "start_stop": (0x0E, "start-stop cycle counter"),
    "write_errors": (0x02, "write error counters"),
    "read_errors": (0x03, "read error counters"),
    "verify_errors": (0x05, "verify error counters"),
    "non_medium_errors": (0x06, "non-medium errors"),
    "self_tests": (0x10, "self-test results"),
    "background_scan": (0x15, "background scan results"),
    "solid_state_media": (0x11, "solid state media"),
}

#: SEND DIAGNOSTIC's SELF-TEST CODE (SPC-5 table 219) by the name the command line gives it; ``default``
#: is the default self-test instead (SELFTEST bit set, code 000b), whose result is the command's status.
SELF_TEST_CODES: Mapping[str, int] = {"short": 0b001, "long": 0b010, "abort": 0b100,
                                      "foreground-short": 0b101, "foreground-long": 0b110, "default": 0b000}

#: SELF-TEST CODE values by what they mean, for the self-test log.
_SELF_TEST_KINDS: Mapping[int, str] = {0: "default", 1: "background short", 2: "background extended",
                                       4: "abort", 5: "foreground short", 6: "foreground extended"}

#: SELF-TEST RESULTS (SPC-5 table 392) -> what they mean.
SELF_TEST_RESULTS: Mapping[int, str] = {
    0x0: "completed without error",
    0x1: "aborted by SEND DIAGNOSTIC",
    0x2: "aborted by another method",
    0x3: "could not complete: unknown error",
    0x4: "failed: segment unknown",
    0x5: "failed: first segment",
    0x6: "failed: second segment",
    0x7: "failed: another segment",
    0xF: "in progress",
}

#: SELF-TEST RESULTS values that are failures of the device (3h to 7h).
_FAILED = frozenset(range(3, 8))

#: BACKGROUND SCAN STATUS (SBC-4 table 284) -> what it means.
_SCAN_STATUS: Mapping[int, str] = {
    0x00: "no background scan active",
    0x01: "background medium scan active",
    0x02: "background pre-scan active",
    0x03: "halted: fatal error",
    0x04: "halted: vendor-specific pattern of errors",
    0x05: "halted: medium formatted without a P-list",
    0x06: "halted: vendor-specific cause",
    0x07: "halted: temperature out of range",
    0x08: "waiting for the background medium scan interval timer",
}


class Finding(enum.IntFlag):
    """What :func:`assess` found: the bits 3 to 6 of ``sgpy health``'s exit status.

    Bits 0 to 2 are left to the command line's ordinary exit status (0, or
    1 to 6), so ``status & 7`` is that and ``status >> 3`` these findings.
    """

    #: The device predicts its failure: informational exceptions report an ASC (5Dh: failure
    #: prediction threshold exceeded...), or a solid state device used all of its endurance.
    FAILURE_PREDICTED = 1 << 3
    #: The temperature is at or above the reference temperature, the highest the device runs at
    #: without degrading.
    TEMPERATURE = 1 << 4
    #: Uncorrected errors were counted (read, write or verify error counters), or the background
    #: scan found medium errors.
    MEDIUM_ERRORS = 1 << 5
    #: The self-test log holds a failed self-test not followed by a passed extended one.
    SELF_TEST_FAILED = 1 << 6

    @property
    def label(self) -> str:
        """The finding's name in JSON: ``failure_predicted``, ``temperature``..."""
        return (self.name or "").lower()


@attrs.frozen
class Health:
    """What :func:`read_health` read: ``supported_pages`` (the page codes of log page 00h; empty
    when LOG SENSE is not implemented), ``pages`` (the decoded page of each name of
    :data:`HEALTH_PAGES` that was read), ``absent`` (the names of those the device does not list),
    ``errors`` (the names of listed pages whose LOG SENSE failed, with the failure), and the
    :func:`assess` of it all: ``verdict`` and ``findings``."""

    supported_pages: Tuple[int, ...]
    pages: Mapping[str, Any]
    absent: Tuple[str, ...]
    errors: Mapping[str, TaskFailed]
    verdict: str
    findings: Finding
    log_sense_supported: bool = True


def _uncorrected(page: Any) -> int:
    """TOTAL UNCORRECTED ERRORS of an error counter page (0 when not reported)."""
    return int(getattr(page, "total_uncorrected", None) or 0)


def _failed_self_tests(page: Any) -> List[Any]:
    """The failed self-tests not followed by a passed extended one (the log is most recent first)."""
    failed = []
    for r in getattr(page, "results", ()):
        if r.self_test_results == 0 and r.self_test_code in (2, 6):
            break  # a passed extended self-test: older failures are history (smartctl's rule)
        if r.self_test_results in _FAILED:
            failed.append(r)
    return failed


def assess(pages: Mapping[str, Any]) -> Tuple[str, Finding]:
    """The verdict and the findings for decoded pages (names as in :data:`HEALTH_PAGES`).

    Verdicts: ``FAILING`` (the device predicts its failure), ``WARNING``
    (another finding), ``OK`` (no finding, and the device reports failure
    prediction: page 2Fh was read), ``UNKNOWN`` (no finding, but no page 2Fh:
    the device does not say whether it predicts a failure).
    """
    found = Finding(0)
    ie = pages.get("informational_exceptions")
    if ie is not None and ie.asc:
        found |= Finding.FAILURE_PREDICTED
    ssd = pages.get("solid_state_media")
    if ssd is not None and (ssd.percentage_used_endurance_indicator or 0) >= 100:
        found |= Finding.FAILURE_PREDICTED
    temp = pages.get("temperature")
    if temp is not None and temp.temperature is not None and temp.reference_temperature is not None \
            and temp.temperature >= temp.reference_temperature:
        found |= Finding.TEMPERATURE
    if any(_uncorrected(pages.get(name)) for name in ("write_errors", "read_errors", "verify_errors")):
        found |= Finding.MEDIUM_ERRORS
    scan = pages.get("background_scan")
    if scan is not None and scan.medium_scan_results:
        found |= Finding.MEDIUM_ERRORS
    if pages.get("self_tests") is not None and _failed_self_tests(pages["self_tests"]):
        found |= Finding.SELF_TEST_FAILED
    if found & Finding.FAILURE_PREDICTED:
        verdict = "FAILING"
    elif found:
        verdict = "WARNING"
    elif ie is not None:
        verdict = "OK"
    else:
        verdict = "UNKNOWN"
    return verdict, found


def _log_sense(channel: Any, page: int) -> Any:
    """LOG SENSE of ``page`` (cumulative values), once more after a UNIT ATTENTION."""
    from sgpy import command

    cmd = command.LogSense(page_code=page, subpage_code=0, pc=1)
    try:
        return channel.execute(cmd).result
    except UnitAttention:
        return channel.execute(cmd).result


def read_health(channel: Any) -> Health:
    """Read the health pages the device supports (see the module's table) and assess them.

    The supported pages come first (LOG SENSE page 00h).  A device that
    answers it with INVALID COMMAND OPERATION CODE or INVALID FIELD IN CDB
    (no LOG SENSE, or no page 00h) has every page absent; any other failure
    of that command raises its :class:`~sgpy.errors.TaskFailed`.
    """
    try:
        supported = tuple(_log_sense(channel, 0x00).pages)
        log_sense = True
    except IllegalRequest as exc:
        if not (exc.matches(0x20) or exc.matches(0x24)):
            raise
        supported, log_sense = (), False
    pages: Dict[str, Any] = {}
    errors: Dict[str, TaskFailed] = {}
    absent: List[str] = []
    for name, (code, _) in HEALTH_PAGES.items():
        if code not in supported:
            absent.append(name)
            continue
        try:
            pages[name] = _log_sense(channel, code)
        except TaskFailed as exc:
            errors[name] = exc
    verdict, found = assess(pages)
    return Health(supported_pages=supported, pages=pages, absent=tuple(absent), errors=errors, verdict=verdict,
                  findings=found, log_sense_supported=log_sense)


def self_test(channel: Any, kind: str) -> Any:
    """Start a self-test (``short``, ``long``: background; ``foreground-short``, ``foreground-long``),
    abort the background one (``abort``), or run the default self-test (``default``) with SEND
    DIAGNOSTIC; the command's IO.

    A background self-test runs on while the device serves commands; its
    result appears in the self-test results log page (10h), ``in progress``
    until then.  A foreground one holds the device until it ends (SPC-5
    5.14.3): the command completes only then.  The default self-test (the
    SELFTEST bit, which every device that has SEND DIAGNOSTIC implements)
    leaves no log entry: the command's status is its result, a failure
    raising the device's :class:`~sgpy.errors.TaskFailed`.
    """
    from sgpy import command

    code = SELF_TEST_CODES.get(kind)
    if code is None:
        raise ValueError(f"self-test {kind!r}: one of {', '.join(SELF_TEST_CODES)}")
    cmd = command.SendDiagnostic(selftest=1) if kind == "default" else command.SendDiagnostic(self_test_code=code)
    try:
        return channel.execute(cmd)
    except UnitAttention:
        return channel.execute(cmd)


def self_test_kind(code: int) -> str:
    """A SELF-TEST CODE in words (``background short``...)."""
    return _SELF_TEST_KINDS.get(code, f"code {code}")


def self_test_result(code: int) -> str:
    """A SELF-TEST RESULTS value in words."""
    return SELF_TEST_RESULTS.get(code, f"result {code:X}h")


def scan_status(code: Optional[int]) -> Optional[str]:
    """A BACKGROUND SCAN STATUS in words (None stays None)."""
    if code is None:
        return None
    return _SCAN_STATUS.get(code, f"status {code:02X}h")
