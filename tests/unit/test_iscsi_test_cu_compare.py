"""docs/conformance.rst's side-by-side comparison with libiscsi's iscsi-test-cu matches the recorded data."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType
from typing import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "iscsi_test_cu_compare.py")


@pytest.fixture(scope="module")
def tool() -> Iterator[ModuleType]:
    """tools/iscsi_test_cu_compare.py as a module."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import iscsi_test_cu_compare
    finally:
        sys.path.pop(0)
    yield iscsi_test_cu_compare


def test_the_page_matches_the_data() -> None:
    """``docs --check``: the tables between the markers are what the recorded data gives."""
    proc = subprocess.run([sys.executable, TOOL, "docs", "--check"], stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_record_names_its_commands_and_versions(tool: ModuleType) -> None:
    """Each run says which commands produced it, and the record which versions."""
    doc = tool.load()
    assert set(doc["versions"]) == {"libiscsi-bin", "tgt", "sgpy"}
    assert all(v != "?" for v in doc["versions"].values())
    assert doc["family_order"], "sgpy's family order, so the tables do not change with sgpy's own"
    for name, data_loss in tool.RUNS:
        run = doc["runs"][name]
        cu, sg = run["commands"]
        assert cu.startswith("iscsi-test-cu --test SCSI") and ("--dataloss" in cu) == data_loss
        assert " sgpy conform " in f" {sg} " and ("--allow-data-loss" in sg) == data_loss
        assert run["iscsi-test-cu"] and run["sgpy"]
        assert all(t.startswith("SCSI.") for t in run["iscsi-test-cu"]), "only the SCSI families run"


def test_every_pair_names_tests_that_exist(tool: ModuleType) -> None:
    """The pairs name iscsi-test-cu tests that ran and sgpy checks that ran, so none is silently dropped."""
    doc = tool.load()
    run = doc["runs"]["data-loss"]
    for pair in tool.PAIRS:
        assert pair.libiscsi in run["iscsi-test-cu"], pair.libiscsi
        assert pair.sgpy in run["sgpy"], pair.sgpy


def test_every_suite_has_a_family(tool: ModuleType) -> None:
    """Every iscsi-test-cu suite recorded counts under a family named in SUITE_FAMILY."""
    doc = tool.load()
    for name, _ in tool.RUNS:
        for test in doc["runs"][name]["iscsi-test-cu"]:
            assert test.split(".")[1] in tool.SUITE_FAMILY, test


def test_every_difference_is_resolved_on_the_page(tool: ModuleType) -> None:
    """Each pair whose verdicts differ is discussed after the table: its iscsi-test-cu test is named
    in the resolutions below the generated part."""
    with open(tool.PAGE, encoding="utf-8") as f:
        text = f.read()
    after = text[text.index(f".. {tool.MARKER}-end"):]
    for d in tool.differences(tool.load()):
        assert f"``{d.pair.libiscsi}``" in after, f"{d.pair.libiscsi} vs {d.pair.sgpy}: no resolution on the page"


def test_the_output_parser(tool: ModuleType) -> None:
    """Passed, failed (with the assertion) and skipped tests, as CUnit's verbose mode prints them."""
    text = "\n".join([
        "Suite: Read10",
        "  Test: Simple ...",
        "    Send READ10 (Expecting SUCCESS) LBA:0 blocks:1",
        "passed",
        "  Test: BeyondEol ...",
        "    [FAILED] READ10 successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)",
        "FAILED",
        "    1. test_read10_beyond_eol.c:40  - CU_ASSERT_EQUAL(_r,0)",
        "Suite: Unmap",
        "  Test: Simple ...    [SKIPPED] --dataloss flag is not set. Skipping test.",
        "passed    Send PRIN/READ_KEYS",
        "  Test: VPD ...",
        "FAILED",
        "    1. test_unmap_vpd.c:61  - CU_ASSERT_EQUAL(x,1)    Send PRIN/READ_KEYS",
        "",
        "Run Summary:    Type  Total    Ran Passed Failed Inactive",
    ])
    got = tool.parse_cu_output(text)
    assert got["SCSI.Read10.Simple"] == {"verdict": "pass", "detail": ""}
    assert got["SCSI.Read10.BeyondEol"] == {"verdict": "fail", "detail": text.splitlines()[5].strip()}
    assert got["SCSI.Unmap.Simple"] == {"verdict": "skip",
                                        "detail": "[SKIPPED] --dataloss flag is not set. Skipping test."}
    assert got["SCSI.Unmap.VPD"] == {"verdict": "fail", "detail": "test_unmap_vpd.c:61: CU_ASSERT_EQUAL(x,1)"}
    assert len(got) == 4


def test_differences_and_counts(tool: ModuleType) -> None:
    """A pass against a fail is a difference; the counts add up per family."""
    pair = tool.PAIRS[0]
    run = {"commands": ["iscsi-test-cu --test SCSI u", "python -m sgpy conform u --json"],
           "iscsi-test-cu": {pair.libiscsi: {"verdict": "fail", "detail": "x"},
                             "SCSI.OrWrite.Simple": {"verdict": "skip", "detail": "y"}},
           "sgpy": {pair.sgpy: {"family": "TEST UNIT READY", "outcome": "pass", "reason": ""}}}
    doc = {"runs": {"read-only": run, "data-loss": run}}
    diffs = tool.differences(doc)
    assert [(d.run, d.libiscsi, d.sgpy, d.kind) for d in diffs] == [("read-only", "fail", "pass", "disagree"),
                                                                     ("data-loss", "fail", "pass", "disagree")]
    counts = {fam: (a, b) for fam, a, b in tool.family_counts(run)}
    assert counts["TEST UNIT READY"] == ({"pass": 0, "fail": 1, "skip": 0}, {"pass": 1, "fail": 0, "skip": 0})
    assert counts["ORWRITE"] == ({"pass": 0, "fail": 0, "skip": 1}, None)
