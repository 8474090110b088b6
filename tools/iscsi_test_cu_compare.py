"""libiscsi's ``iscsi-test-cu`` and sgpy's conformance suite, side by side on one target.

``record URL`` runs both suites (``iscsi-test-cu --test SCSI`` and
``sgpy conform URL --json``) against the same iSCSI LUN, read-only and then
allowing data loss, and writes their verdicts, the commands and the versions
to ``tests/data/conformance/iscsi-test-cu-tgtd.json``.  Only the
SCSI families of ``iscsi-test-cu`` run (``--test SCSI``); its iSCSI protocol
families (command and data sequence numbers, task management, residuals at
the PDU level) have no counterpart in sgpy.

``docs`` writes the comparison between the markers ``.. iscsi-test-cu-start``
and ``.. iscsi-test-cu-end`` of docs/conformance.rst: pass/fail/skip counts per
family for both suites, and every pair of tests that check the same behaviour
(:data:`PAIRS`) on which they reach different verdicts.  ``docs --check``
exits 1 when the page is stale (tests/unit/test_iscsi_test_cu_compare.py runs
it); ``table`` prints the comparison.

An ``iscsi-test-cu`` test passes, fails or is skipped: it is skipped when it
printed a ``[SKIPPED]`` line (libiscsi reports a skip as a passing assertion
with that text, so the log is the only place it shows) and had no failed
assertion.  sgpy's ``skipped-unsupported`` and ``skipped-by-safety`` both
count as skip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "conformance.rst")
DATA = os.path.join(ROOT, "tests", "data", "conformance", "iscsi-test-cu-tgtd.json")
MARKER = "iscsi-test-cu"

#: The runs recorded, in the order the page shows them: (name, allows data loss).
RUNS: Tuple[Tuple[str, bool], ...] = (("read-only", False), ("data-loss", True))

#: Verdicts, as both suites' outcomes are reduced to them.
VERDICTS = ("pass", "fail", "skip")

#: sgpy's outcome -> verdict.
SGPY_VERDICT = {"pass": "pass", "fail": "fail", "skipped-unsupported": "skip", "skipped-by-safety": "skip"}

#: ``iscsi-test-cu`` suite (the middle part of SCSI.Suite.Test) -> the family it counts under: one of
#: sgpy's families where sgpy has checks of those commands, a name of its own where it has none.
SUITE_FAMILY: Dict[str, str] = {
    "CompareAndWrite": "COMPARE AND WRITE",
    "ExtendedCopy": "EXTENDED COPY",
    "GetLBAStatus": "GET LBA STATUS",
    "Inquiry": "INQUIRY",
    "Mandatory": "MANDATORY COMMANDS",
    "ModeSense6": "MODE SENSE",
    "MultipathIO": "MULTIPATH",
    "NoMedia": "NO MEDIUM",
    "OrWrite": "ORWRITE",
    "Prefetch10": "PRE-FETCH",
    "Prefetch16": "PRE-FETCH",
    "PreventAllow": "PREVENT ALLOW",
    "PrinReadKeys": "PERSISTENT RESERVE",
    "PrinReportCapabilities": "PERSISTENT RESERVE",
    "PrinServiceactionRange": "PERSISTENT RESERVE",
    "ProutClear": "PERSISTENT RESERVE",
    "ProutPreempt": "PERSISTENT RESERVE",
    "ProutRegister": "PERSISTENT RESERVE",
    "ProutReserve": "PERSISTENT RESERVE",
    "Read6": "READ",
    "Read10": "READ",
    "Read12": "READ",
    "Read16": "READ",
    "ReadCapacity10": "READ CAPACITY",
    "ReadCapacity16": "READ CAPACITY",
    "ReadDefectData10": "READ DEFECT DATA",
    "ReadDefectData12": "READ DEFECT DATA",
    "ReadOnly": "READ ONLY",
    "ReceiveCopyResults": "EXTENDED COPY",
    "ReportSupportedOpcodes": "REPORT SUPPORTED OPCODES",
    "Reserve6": "RESERVE RELEASE",
    "Sanitize": "SANITIZE",
    "StartStopUnit": "START STOP UNIT",
    "TestUnitReady": "TEST UNIT READY",
    "Unmap": "UNMAP",
    "Verify10": "VERIFY",
    "Verify12": "VERIFY",
    "Verify16": "VERIFY",
    "Write10": "WRITE",
    "Write12": "WRITE",
    "Write16": "WRITE",
    "WriteAtomic16": "WRITE ATOMIC",
    "WriteSame10": "WRITE SAME",
    "WriteSame16": "WRITE SAME",
    "WriteVerify10": "WRITE AND VERIFY",
    "WriteVerify12": "WRITE AND VERIFY",
    "WriteVerify16": "WRITE AND VERIFY",
}

#: Tests that belong to another family than their suite's, as sgpy sorts the same checks.
TEST_FAMILY: Dict[str, str] = {
    "SCSI.Inquiry.BlockLimits": "VPD",
    "SCSI.Inquiry.MandatoryVPDSBC": "VPD",
    "SCSI.Inquiry.SupportedVPD": "VPD",
    "SCSI.ModeSense6.Control-D_SENSE": "SENSE",
    "SCSI.ModeSense6.Residuals": "RESIDUALS",
}


class Pair(NamedTuple):
    """An ``iscsi-test-cu`` test and an sgpy check that judge the same behaviour of the target."""

    libiscsi: str
    sgpy: str
    behaviour: str


#: The pairs compared verdict by verdict.  Where one side checks more than the other (more LBAs,
#: more transfer lengths) the pair is listed when the behaviour both judge is the same.  The
#: persistent reservation tests of iscsi-test-cu name the type as sgpy's check ids do, less the dash
#: (AccessWERO: ``[WE-RO]``).
PAIRS: Tuple[Pair, ...] = (
    Pair("SCSI.TestUnitReady.Simple", "test_test_unit_ready_succeeds_on_a_ready_unit",
         "TEST UNIT READY on a ready unit ends GOOD"),
    Pair("SCSI.Inquiry.Standard", "test_standard_inquiry_has_the_mandatory_fields",
         "standard INQUIRY data: 36 bytes or more, RESPONSE DATA FORMAT 2"),
    Pair("SCSI.Inquiry.Standard", "test_standard_inquiry_strings_are_printable_ascii",
         "vendor, product and revision are ASCII"),
    Pair("SCSI.Inquiry.AllocLength", "test_inquiry_allocation_length_bounds_the_transfer",
         "a short ALLOCATION LENGTH is not an error and bounds the transfer"),
    Pair("SCSI.Inquiry.EVPD", "test_inquiry_page_code_without_evpd_is_refused",
         "PAGE CODE not zero with EVPD zero: INVALID FIELD IN CDB"),
    Pair("SCSI.Inquiry.SupportedVPD", "test_every_listed_vpd_page_answers_with_its_own_page_code",
         "every VPD page listed on page 00h can be read"),
    Pair("SCSI.Inquiry.MandatoryVPDSBC", "test_device_identification_page_is_listed_and_parses",
         "the Device Identification page (83h) can be read"),
    Pair("SCSI.ModeSense6.AllPages", "test_mode_sense_6_all_pages_parses",
         "MODE SENSE(6) of all pages answers a well-formed header"),
    Pair("SCSI.ModeSense6.Control-D_SENSE", "test_d_sense_selects_descriptor_format",
         "the sense format follows D_SENSE of the Control mode page"),
    Pair("SCSI.ReadCapacity16.Simple", "test_read_capacity_10_and_16_agree",
         "READ CAPACITY(16) ends GOOD"),
    Pair("SCSI.Read6.Simple", "test_read_the_first_and_the_last_block[Read6]",
         "READ(6) at the first and the last LBA"),
    Pair("SCSI.Read10.Simple", "test_read_the_first_and_the_last_block[Read10]",
         "READ(10) at the first and the last LBA"),
    Pair("SCSI.Read12.Simple", "test_read_the_first_and_the_last_block[Read12]",
         "READ(12) at the first and the last LBA"),
    Pair("SCSI.Read16.Simple", "test_read_the_first_and_the_last_block[Read16]",
         "READ(16) at the first and the last LBA"),
    Pair("SCSI.Read6.BeyondEol", "test_read_beyond_the_last_lba_is_refused[Read6]",
         "READ(6) past the last LBA: LOGICAL BLOCK ADDRESS OUT OF RANGE"),
    Pair("SCSI.Read10.BeyondEol", "test_read_beyond_the_last_lba_is_refused[Read10]",
         "READ(10) past the last LBA: LOGICAL BLOCK ADDRESS OUT OF RANGE"),
    Pair("SCSI.Read12.BeyondEol", "test_read_beyond_the_last_lba_is_refused[Read12]",
         "READ(12) past the last LBA: LOGICAL BLOCK ADDRESS OUT OF RANGE"),
    Pair("SCSI.Read16.BeyondEol", "test_read_beyond_the_last_lba_is_refused[Read16]",
         "READ(16) past the last LBA: LOGICAL BLOCK ADDRESS OUT OF RANGE"),
    Pair("SCSI.Read16.BeyondEol", "test_read_16_at_the_largest_lba_is_refused",
         "READ(16) at LBA 2^64-1 (the sum wraps): out of range"),
    Pair("SCSI.Read10.ZeroBlocks", "test_read_10_of_zero_blocks_transfers_nothing",
         "READ(10) of zero blocks at LBA 0 ends GOOD"),
    Pair("SCSI.Read10.ZeroBlocks", "test_read_10_of_zero_blocks_past_the_end_is_refused",
         "READ(10) of zero blocks at capacity + 1: out of range"),
    Pair("SCSI.Write10.Simple", "test_written_blocks_read_back[Write10]",
         "WRITE(10) to the last blocks ends GOOD"),
    Pair("SCSI.Write12.Simple", "test_written_blocks_read_back[Write12]",
         "WRITE(12) to the last blocks ends GOOD"),
    Pair("SCSI.Write16.Simple", "test_written_blocks_read_back[Write16]",
         "WRITE(16) to the last blocks ends GOOD"),
    Pair("SCSI.Write16.BeyondEol", "test_write_beyond_the_last_lba_is_refused_and_changes_nothing",
         "WRITE(16) past the last LBA: out of range"),
    Pair("SCSI.Verify16.BeyondEol", "test_verify_16_without_bytchk_succeeds_in_range_and_fails_past_it",
         "VERIFY(16) past the last LBA: out of range (libiscsi: BYTCHK 1; sgpy: BYTCHK 0)"),
    Pair("SCSI.GetLBAStatus.Simple", "test_get_lba_status_describes_the_starting_lba",
         "GET LBA STATUS of an LBA on the medium ends GOOD"),
    Pair("SCSI.GetLBAStatus.BeyondEol", "test_get_lba_status_past_the_end_is_refused",
         "GET LBA STATUS past the last LBA, 2^63 included: out of range"),
    Pair("SCSI.WriteSame16.Simple", "test_write_same_16_repeats_the_block",
         "WRITE SAME(16) of blocks on the medium ends GOOD"),
    Pair("SCSI.CompareAndWrite.Simple", "test_compare_and_write_writes_when_the_data_matches",
         "COMPARE AND WRITE with matching data writes"),
    Pair("SCSI.CompareAndWrite.Miscompare", "test_compare_and_write_miscompare_writes_nothing",
         "COMPARE AND WRITE with other data: MISCOMPARE, nothing written"),
    Pair("SCSI.WriteVerify16.Simple", "test_write_and_verify_16_writes_what_reads_back",
         "WRITE AND VERIFY(16) of blocks on the medium ends GOOD"),
    Pair("SCSI.StartStopUnit.NoLoej", "test_start_unit_on_a_started_unit_succeeds",
         "START STOP UNIT with LOEJ 0, START 1 ends GOOD"),
    Pair("SCSI.Prefetch10.Simple", "test_pre_fetch_10_in_range_succeeds",
         "PRE-FETCH(10) of blocks on the medium succeeds"),
    Pair("SCSI.Prefetch10.BeyondEol", "test_pre_fetch_10_past_the_end_is_refused",
         "PRE-FETCH(10) past the last LBA: out of range"),
    Pair("SCSI.Prefetch16.Simple", "test_pre_fetch_16_in_range_succeeds",
         "PRE-FETCH(16) of blocks on the medium succeeds"),
    Pair("SCSI.Prefetch16.BeyondEol", "test_pre_fetch_16_past_the_end_is_refused",
         "PRE-FETCH(16) past the last LBA: out of range"),
    Pair("SCSI.ReadDefectData10.Simple", "test_read_defect_data_10_header_is_well_formed",
         "READ DEFECT DATA(10) with no list asked for ends GOOD"),
    Pair("SCSI.ReadDefectData12.Simple", "test_read_defect_data_12_header_is_well_formed",
         "READ DEFECT DATA(12) with no list asked for ends GOOD"),
    Pair("SCSI.ReportSupportedOpcodes.Simple", "test_report_supported_opcodes_lists_itself_and_inquiry",
         "REPORT SUPPORTED OPERATION CODES, all commands, ends GOOD"),
    Pair("SCSI.Sanitize.Overwrite", "test_sanitize_overwrite",
         "SANITIZE OVERWRITE"),
    Pair("SCSI.Sanitize.BlockErase", "test_sanitize_block_erase",
         "SANITIZE BLOCK ERASE"),
    Pair("SCSI.Sanitize.CryptoErase", "test_sanitize_cryptographic_erase",
         "SANITIZE CRYPTOGRAPHIC ERASE"),
    Pair("SCSI.OrWrite.Verify", "test_orwrite_16_ors_the_data_into_the_blocks",
         "ORWRITE(16) leaves the OR of the old and the new data"),
    Pair("SCSI.OrWrite.BeyondEol", "test_orwrite_16_past_the_end_is_refused",
         "ORWRITE(16) past the last LBA, 2^63 included: out of range"),
    Pair("SCSI.PrinReadKeys.Simple", "test_pr_in_read_keys_is_well_formed",
         "READ KEYS: ADDITIONAL LENGTH accounts for the data"),
    Pair("SCSI.PrinReadKeys.Truncate", "test_pr_read_keys_allocation_length_cuts_the_list_not_its_length",
         "READ KEYS with ALLOCATION LENGTH 8: GOOD, ADDITIONAL LENGTH still counts the keys"),
    Pair("SCSI.PrinReportCapabilities.Simple", "test_pr_in_report_capabilities_is_well_formed",
         "REPORT CAPABILITIES: LENGTH 8, no reserved type mask bit"),
    Pair("SCSI.PrinServiceactionRange.Range", "test_pr_in_service_actions_are_answered_as_reported",
         "PERSISTENT RESERVE IN service actions: the supported ones answer, the others are refused"),
    Pair("SCSI.ProutRegister.Simple", "test_pr_register_and_unregister",
         "REGISTER then READ KEYS lists the key; unregistering removes it"),
    Pair("SCSI.ProutRegister.Simple", "test_pr_register_with_the_wrong_key_is_a_reservation_conflict",
         "REGISTER with another key than the registered one: RESERVATION CONFLICT"),
    Pair("SCSI.ProutClear.Simple", "test_pr_clear_removes_every_registration_and_the_reservation",
         "CLEAR removes the registrations and the reservation, PRGENERATION + 1"),
    Pair("SCSI.ProutPreempt.RemoveRegistration", "test_pr_preempt_removes_a_registration",
         "PREEMPT of another initiator's key removes its registration"),
) + tuple(
    Pair("SCSI.ProutReserve.Simple", f"test_pr_reserve_and_release[{kind}]",
         f"RESERVE {kind}, READ RESERVATION reports it, RELEASE ends it")
    for kind in ("WE", "EA", "WE-RO", "EA-RO", "WE-AR", "EA-AR")
) + tuple(
    Pair(f"SCSI.ProutReserve.Access{kind.replace('-', '')}",
         f"test_pr_reservation_holds_off_the_other_initiator[{kind}]",
         f"reads and writes of a second initiator while the first holds {kind}")
    for kind in ("WE", "EA", "WE-RO", "EA-RO", "WE-AR", "EA-AR")
) + tuple(
    Pair(f"SCSI.ProutReserve.Ownership{kind.replace('-', '')}", f"test_pr_unregistering_the_holder[{kind}]",
         f"the {kind} holder unregisters: the reservation goes (stays for all registrants)")
    for kind in ("WE", "EA", "WE-RO", "EA-RO", "WE-AR", "EA-AR")
)


# -- iscsi-test-cu's output ----------------------------------------------------------------------------

_SUITE = re.compile(r"^Suite: (\S+)")
_TEST = re.compile(r"^  Test: (\S+) \.\.\.")
_FAILED = re.compile(r"^\s*FAILED\b")
_ASSERTION = re.compile(r"^\s+\d+\. (\S+:\d+)\s+-\s+(.*)$")
#: Where libiscsi's next log line was glued onto this one (it prints without a newline first).
_GLUED = re.compile(r"\s{4,}")


def parse_cu_output(text: str, family: str = "SCSI") -> Dict[str, Dict[str, str]]:
    """``{"SCSI.Suite.Test": {"verdict": ..., "detail": ...}}`` from the output of ``iscsi-test-cu
    --test FAMILY`` in CUnit's verbose mode (its default); CUnit names suites and tests without the
    family, so ``family`` is put in front.

    A test fails when CUnit prints ``FAILED`` for it; it is skipped when it printed a line holding
    ``[SKIPPED]`` (or ``[SKIPPING]``) and did not fail; otherwise it passed.  ``detail`` is the first
    ``[FAILED]`` line the test printed, else the first failed assertion, for a failure; the first
    skip line for a skip."""
    results: Dict[str, Dict[str, str]] = {}
    suite = ""
    current: Optional[str] = None
    skip_line = ""
    failed = False
    message = ""
    assertion = ""

    def close() -> None:
        """Record the test that was running."""
        if current is None:
            return
        if failed:
            results[current] = {"verdict": "fail", "detail": message or assertion}
        elif skip_line:
            results[current] = {"verdict": "skip", "detail": skip_line}
        else:
            results[current] = {"verdict": "pass", "detail": ""}

    for line in text.splitlines():
        m = _SUITE.match(line)
        if m:
            close()
            current, skip_line, failed, message, assertion = None, "", False, "", ""
            suite = m.group(1)
            continue
        m = _TEST.match(line)
        if m:
            close()
            skip_line, failed, message, assertion = "", False, "", ""
            current = f"{family}.{suite}.{m.group(1)}"
            line = line[m.end():]
        if current is None:
            continue
        if line.startswith("Run Summary"):
            close()
            current = None
            continue
        stripped = _GLUED.split(line.strip())[0]
        if ("[SKIPPED]" in line or "[SKIPPING]" in line) and not skip_line:
            skip_line = stripped
        if "[FAILED]" in line and not message:
            message = stripped
        if _FAILED.match(line):
            failed = True
        f = _ASSERTION.match(line)
        if f and failed and not assertion:
            assertion = f"{f.group(1)}: {_GLUED.split(f.group(2).strip())[0]}"
    close()
    return results


def cu_family(test: str) -> str:
    """The family an ``iscsi-test-cu`` test (``SCSI.Suite.Test``) counts under."""
    if test in TEST_FAMILY:
        return TEST_FAMILY[test]
    suite = test.split(".")[1]
    return SUITE_FAMILY.get(suite, suite.upper())


# -- the comparison --------------------------------------------------------------------------------


def family_counts(run: Dict[str, Any], order: Sequence[str] = ()) -> List[Tuple[str, Dict[str, int],
                                                                          Optional[Dict[str, int]]]]:
    """``(family, iscsi-test-cu counts, sgpy counts or None)`` per family of one recorded run.

    Families both suites have come first, in ``order`` (sgpy's report order, as recorded), then the
    families only one of them has, by name.  sgpy's counts are None for a family it has no check in;
    libiscsi's are all zero for one it has no test in."""
    cu: Dict[str, Dict[str, int]] = {}
    for test, r in run["iscsi-test-cu"].items():
        fam = cu.setdefault(cu_family(test), {v: 0 for v in VERDICTS})
        fam[r["verdict"]] += 1
    sg: Dict[str, Dict[str, int]] = {}
    for r in run["sgpy"].values():
        fam = sg.setdefault(r["family"], {v: 0 for v in VERDICTS})
        fam[SGPY_VERDICT[r["outcome"]]] += 1
    both = [f for f in order if f in cu and f in sg] + sorted(f for f in cu if f in sg and f not in order)
    rest = sorted((set(cu) | set(sg)) - set(both))
    return [(f, cu.get(f, {v: 0 for v in VERDICTS}), sg.get(f)) for f in both + rest]


class Difference(NamedTuple):
    """A pair on which the two suites' verdicts differ.

    ``kind`` is ``disagree`` when one passed and the other failed, ``one skipped`` when only one of
    them judged the behaviour at all."""

    run: str
    pair: Pair
    libiscsi: str
    sgpy: str
    kind: str


def differences(doc: Dict[str, Any]) -> List[Difference]:
    """Every pair of :data:`PAIRS` whose two verdicts differ, in any recorded run.

    A pair one side did not run at all (the test or check is missing from the record) is not a
    difference: the record lacks it."""
    out: List[Difference] = []
    for name, _ in RUNS:
        run = doc["runs"][name]
        for pair in PAIRS:
            a = run["iscsi-test-cu"].get(pair.libiscsi)
            b = run["sgpy"].get(pair.sgpy)
            if a is None or b is None:
                continue
            va, vb = a["verdict"], SGPY_VERDICT[b["outcome"]]
            if va != vb:
                kind = "disagree" if {va, vb} == {"pass", "fail"} else "one skipped"
                out.append(Difference(name, pair, va, vb, kind))
    return out


def _counts_cell(c: Optional[Dict[str, int]]) -> str:
    """``pass/fail/skip`` or ``-``."""
    if c is None:
        return "-"
    return "/".join(str(c[v]) for v in VERDICTS)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A reStructuredText simple table."""
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    line = "  ".join("=" * w for w in widths)

    def fmt(r: Sequence[str]) -> str:
        """One row, padded."""
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([line, fmt(header), line] + [fmt(r) for r in rows] + [line])


def render(doc: Dict[str, Any]) -> str:
    """The text between the page's markers: the commands and versions, the counts per family for
    each run, and the pairs whose verdicts differ."""
    versions = doc["versions"]
    parts = [
        "Recorded with " + ", ".join(f"{k} {versions[k]}" for k in sorted(versions))
        + f", against {doc['target']} (``tests/data/conformance/iscsi-test-cu-tgtd.json``).",
        "Counts are pass/fail/skip; ``-``: sgpy has no check in that family.",
    ]
    for name, _ in RUNS:
        run = doc["runs"][name]
        counts = family_counts(run, doc["family_order"])
        rows = [(fam, _counts_cell(a), _counts_cell(b)) for fam, a, b in counts]
        total_a = {v: sum(a[v] for _, a, _ in counts) for v in VERDICTS}
        total_b = {v: sum(b[v] for _, _, b in counts if b is not None) for v in VERDICTS}
        rows.append(("total", _counts_cell(total_a), _counts_cell(total_b)))
        cmds = "\n".join(f"    {c}" for c in run["commands"])
        parts.append(f"The {name} run:\n\n.. not-run: needs a tgtd of your own\n\n::\n\n{cmds}")
        parts.append(_table(rows, (f"family ({name})", "iscsi-test-cu", "sgpy")))
    diffs = differences(doc)
    if diffs:
        rows2 = [(d.run, d.kind, f"``{d.pair.libiscsi}``", d.libiscsi, f"``{d.pair.sgpy}``", d.sgpy,
                  d.pair.behaviour) for d in diffs]
        parts.append("Where the verdicts on the same behaviour differ (``disagree``: one passed, the other "
                     "failed; ``one skipped``: only one of them judged it):")
        parts.append(_table(rows2, ("run", "kind", "iscsi-test-cu", "verdict", "sgpy", "verdict", "behaviour")))
    else:
        parts.append("The verdicts on the same behaviour agree on every pair.")
    return "\n\n".join(parts)


def splice(text: str, body: str) -> str:
    """``text`` with the part between the ``.. iscsi-test-cu-start`` / ``-end`` markers replaced."""
    start, end = f".. {MARKER}-start", f".. {MARKER}-end"
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n\n" + body + "\n\n" + text[b:]


def load(path: str = DATA) -> Dict[str, Any]:
    """The recorded comparison."""
    with open(path, encoding="utf-8") as f:
        doc: Dict[str, Any] = json.load(f)
    return doc


# -- recording -------------------------------------------------------------------------------------


def _version(package: str) -> str:
    """The installed Debian package's version, or ``?``."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "?"


def _sgpy_version() -> str:
    """sgpy's commit (``git describe``), or ``?``."""
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"commit {r.stdout.strip()}" if r.returncode == 0 else "?"


def run_cu(url: str, data_loss: bool, log: str) -> Tuple[str, Dict[str, Dict[str, str]]]:
    """Run ``iscsi-test-cu --test SCSI`` (with ``--dataloss`` when ``data_loss``) on ``url``; return
    the command and the verdicts.  The full output goes to ``log``."""
    cmd = ["iscsi-test-cu", "--test", "SCSI", "--Verbose-scsi"] + (["--dataloss"] if data_loss else []) + [url]
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=3600)
    with open(log, encoding="utf-8", errors="replace") as f:
        return " ".join(cmd), parse_cu_output(f.read())


def run_sgpy(url: str, data_loss: bool, json_path: str) -> Tuple[str, Dict[str, Dict[str, str]]]:
    """Run ``python -m sgpy conform URL --json`` (with ``--allow-data-loss`` when ``data_loss``), keep
    its JSON in ``json_path``; return the command and ``{check: {family, outcome, reason}}``."""
    cmd = [sys.executable, "-m", "sgpy", "conform", url, "--json"] + (["--allow-data-loss"] if data_loss else [])
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with open(json_path, "w", encoding="utf-8") as f:
        f.write(r.stdout)
    results = json.loads(r.stdout)["results"]
    shown = ["python", "-m", "sgpy"] + cmd[3:]
    return " ".join(shown), {r["name"]: {"family": r["family"], "outcome": r["outcome"], "reason": r["reason"]}
                             for r in results}


def record(url: str, target: str, out: str, logdir: str) -> Dict[str, Any]:
    """Run both suites in both runs on ``url``; write and return the record."""
    runs: Dict[str, Any] = {}
    for name, data_loss in RUNS:
        sg_cmd, sg = run_sgpy(url, data_loss, os.path.join(logdir, f"sgpy-{name}.json"))
        cu_cmd, cu = run_cu(url, data_loss, os.path.join(logdir, f"iscsi-test-cu-{name}.log"))
        runs[name] = {"commands": [cu_cmd, sg_cmd], "iscsi-test-cu": cu, "sgpy": sg}
    from sgpy.conformance import FAMILIES

    doc: Dict[str, Any] = {
        "family_order": list(FAMILIES),
        "target": target,
        "url": url,
        "versions": {"libiscsi-bin": _version("libiscsi-bin"), "tgt": _version("tgt"), "sgpy": _sgpy_version()},
        "runs": runs,
    }
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def main(argv: Optional[Iterable[str]] = None) -> int:
    """``record URL``, ``docs [--check]`` or ``table``; see the module docstring."""
    p = argparse.ArgumentParser(description="iscsi-test-cu and sgpy conform, side by side")
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("record", help="run both suites on URL and record the verdicts")
    r.add_argument("url")
    r.add_argument("--target", default="tgtd with a file-backed 16 MiB LUN on loopback",
                   help="what URL is, in words, for the page")
    r.add_argument("--out", default=DATA)
    r.add_argument("--logs", default=None, help="keep the full logs here (default: a temporary directory)")
    d = sub.add_parser("docs", help="write the comparison into docs/conformance.rst")
    d.add_argument("--check", action="store_true", help="exit 1 when the page is stale instead")
    d.add_argument("--data", default=DATA)
    t = sub.add_parser("table", help="print the comparison")
    t.add_argument("--data", default=DATA)
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.what == "record":
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            record(args.url, args.target, args.out, args.logs)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                record(args.url, args.target, args.out, tmp)
        return 0
    body = render(load(args.data))
    if args.what == "table":
        print(body)
        return 0
    with open(PAGE, encoding="utf-8") as f:
        text = f.read()
    new = splice(text, body)
    if args.check:
        if new != text:
            print(f"{PAGE} is stale: run python tools/iscsi_test_cu_compare.py docs", file=sys.stderr)
            return 1
        return 0
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
