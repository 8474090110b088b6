"""docs/conformance.rst lists every check with its clause, and the known results as recorded."""

import os
import subprocess
import sys

import pytest

from sgpy import conformance

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_page_is_current():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_conformance_docs.py"), "--check"],
                          stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_check_names_a_clause_a_level_and_a_known_family():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import gen_conformance_docs
    finally:
        sys.path.pop(0)
    rows = gen_conformance_docs.checks()
    assert len(rows) >= 30
    for name, family, ref, level, doc in rows:
        assert ref.split()[0] in ("SPC-5", "SBC-4", "SAM-6", "ZBC-2"), name
        assert level in ("shall", "should"), name
        assert family in conformance.FAMILIES, name
        assert doc, f"{name} says nothing about what it checks"


def test_the_summary_table_and_exit_rule():
    results = [
        {"name": "a", "family": "READ", "clause": "SBC-4 4.5", "level": "shall", "outcome": "pass", "reason": ""},
        {"name": "b", "family": "READ", "clause": "SBC-4 4.5", "level": "should", "outcome": "fail",
         "reason": "VerifyFailed: it succeeded"},
        {"name": "c", "family": "INQUIRY", "clause": "SPC-5 6.7", "level": "shall",
         "outcome": "skipped-by-safety", "reason": "writes"},
    ]
    text = conformance.summary_table(results)
    assert "INQUIRY" in text.splitlines()[2]  # families in the suite's order: INQUIRY before READ
    assert "  b [SBC-4 4.5, should]: VerifyFailed: it succeeded" in text
    assert conformance.counts(results)["READ"] == {"pass": 1, "fail": 1, "skipped-unsupported": 0,
                                                   "skipped-by-safety": 0}


def test_a_bad_level_is_refused():
    from sgpy.conformance.plugin import clause

    with pytest.raises(ValueError, match="shall"):
        clause("SPC-5 6.7", "must", "INQUIRY")
