"""A SCSI target conformance suite, written in sgpy's own language.

Point it at any device sgpy can open, an sg node or an ``iscsi://`` URL::

    sgpy conform /dev/sg1                       # read-only checks
    sgpy conform iscsi://host/iqn.../1 --allow-data-loss --json out.json
    pytest --pyargs sgpy.conformance --sgpy-target /dev/sg1 --junitxml out.xml

Each check is a pytest test that names the clause of the T10 standard it
checks (SPC-5, SBC-4, SAM-6 section) and whether the standard *requires*
the behaviour ("shall") or *recommends* it ("should").  A check the device
says it does not support (REPORT SUPPORTED OPERATION CODES, the VPD pages
it lists, INQUIRY bits) is skipped with that reason; a check that would
change data is skipped unless ``--allow-data-loss`` is given (and then
restores what it wrote over), one that cannot be undone unless
``--allow-irreversible``.  Before anything is written the target's identity
is printed.

The outcome of every check is one of ``pass``, ``fail``,
``skipped-unsupported`` and ``skipped-by-safety``; :func:`run` prints a table
per family, writes JSON when asked, and returns 0 when no "shall" check
failed (a failed "should" is reported, not fatal), 1 when one did, 2 for a
usage error and 4 when the target cannot be opened.

Users add their own checks beside these with the same fixtures: a test
module in their suite gets them from the ``sgpy.conformance.plugin`` pytest
plugin (``pytest_plugins = ["sgpy.conformance.plugin"]``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any, Dict, List, Optional, Sequence

__all__ = ["run", "FAMILIES", "OUTCOMES", "main"]

#: Outcomes of one check, in the order the summary table shows them.
OUTCOMES = ("pass", "fail", "skipped-unsupported", "skipped-by-safety")

#: The families the suite's checks belong to, in report order.
FAMILIES = (
    "TEST UNIT READY", "INQUIRY", "VPD", "REPORT LUNS", "READ CAPACITY", "PROTECTION", "READ", "WRITE", "VERIFY",
    "WRITE SAME", "UNMAP", "GET LBA STATUS", "COMPARE AND WRITE", "ORWRITE", "WRITE AND VERIFY", "SYNCHRONIZE CACHE",
    "PRE-FETCH", "READ DEFECT DATA", "MODE SENSE", "REPORT SUPPORTED OPCODES", "INVALID FIELDS",
    "RESIDUALS", "PREVENT ALLOW", "START STOP UNIT", "SANITIZE", "SENSE", "PERSISTENT RESERVE", "ZBC",
)


def run(target: str, *, select: Optional[str] = None, allow_data_loss: bool = False,
        allow_irreversible: bool = False, json_path: Optional[str] = None, junit_path: Optional[str] = None,
        out: Optional[IO[str]] = None, extra_args: Sequence[str] = (), table: bool = True,
        progress: Optional[IO[str]] = None, second_initiator: Optional[str] = None) -> int:
    """Run the suite against ``target``; print the summary; return the exit status (see the module doc).

    ``out`` gets the table (when ``table``) and, with ``json_path="-"``, the
    JSON document; ``progress`` gets pytest's own progress and tracebacks
    (default: this process's standard output).  ``second_initiator``: the
    initiator name of the second iSCSI session of the two-initiator checks
    (``--sgpy-second-initiator``; default sgpy's own name with ``.second``).
    """
    import contextlib

    import pytest

    from sgpy.conformance import plugin

    w = out if out is not None else sys.stdout
    recorder = plugin.Recorder()
    args = ["-q", "-p", "no:cacheprovider", "--pyargs", "sgpy.conformance", "--sgpy-target", target,
            "--no-header", "-rN", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if select:
        args += ["-k", select]
    if allow_data_loss:
        args.append("--allow-data-loss")
    if allow_irreversible:
        args.append("--allow-irreversible")
    if junit_path:
        args += ["--junitxml", junit_path]
    if second_initiator:
        args += ["--sgpy-second-initiator", second_initiator]
    args += list(extra_args)
    with contextlib.redirect_stdout(progress if progress is not None else sys.stdout):
        code = pytest.main(args, plugins=[recorder])
    if recorder.open_error is not None:
        w.write(f"sgpy conform: {recorder.open_error}\n")
        return 4
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return 2
    results = recorder.results
    if table:
        w.write(summary_table(results))
    if json_path:
        doc = {"target": target, "identity": recorder.identity, "results": results,
               "counts": counts(results)}
        text = json.dumps(doc, indent=1, sort_keys=True)
        if json_path == "-":
            w.write(text + "\n")
        else:
            with open(json_path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    if not results:
        w.write("sgpy conform: no check was selected\n")
        return 2
    return 1 if any(r["outcome"] == "fail" and r["level"] == "shall" for r in results) else 0


def counts(results: List[Dict[str, Any]]) -> Dict[str, Dict[str, int]]:
    """``{family: {outcome: n}}`` over ``results``."""
    out: Dict[str, Dict[str, int]] = {}
    for r in results:
        fam = out.setdefault(r["family"], {o: 0 for o in OUTCOMES})
        fam[r["outcome"]] += 1
    return out


def summary_table(results: List[Dict[str, Any]]) -> str:
    """The per-family table and one line per failure (with its decoded sense)."""
    c = counts(results)
    order = [f for f in FAMILIES if f in c] + sorted(f for f in c if f not in FAMILIES)
    width = max([len("family")] + [len(f) for f in order])
    head = f"{'family':<{width}}  " + "  ".join(f"{o:>{len(o)}}" for o in OUTCOMES)
    lines = [head, "-" * len(head)]
    total = {o: 0 for o in OUTCOMES}
    for fam in order:
        row = c[fam]
        lines.append(f"{fam:<{width}}  " + "  ".join(f"{row[o]:>{len(o)}}" for o in OUTCOMES))
        for o in OUTCOMES:
            total[o] += row[o]
    lines.append("-" * len(head))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{total[o]:>{len(o)}}" for o in OUTCOMES))
    fails = [r for r in results if r["outcome"] == "fail"]
    if fails:
        lines.append("")
        lines.append("failures:")
        for r in fails:
            lines.append(f"  {r['name']} [{r['clause']}, {r['level']}]: {r['reason']}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m sgpy.conformance TARGET [options]`` (the same as ``sgpy conform``)."""
    import argparse

    p = argparse.ArgumentParser(prog="sgpy conform", description="Run sgpy's SCSI conformance suite on TARGET.")
    p.add_argument("target", help="an sg node (/dev/sgN) or an iscsi:// URL")
    p.add_argument("--select", "-k", default=None, metavar="PATTERN", help="only checks matching (pytest -k)")
    p.add_argument("--allow-data-loss", action="store_true", help="run checks that write (restoring what they can)")
    p.add_argument("--allow-irreversible", action="store_true", help="run checks that cannot be undone")
    p.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON (- for stdout)")
    p.add_argument("--junit", default=None, metavar="FILE", help="write JUnit XML")
    args = p.parse_args(argv)
    if not args.target.lower().startswith("iscsi://") and not os.path.exists(args.target):
        print(f"sgpy conform: {args.target} does not exist", file=sys.stderr)
        return 4
    return run(args.target, select=args.select, allow_data_loss=args.allow_data_loss,
               allow_irreversible=args.allow_irreversible, json_path=args.json, junit_path=args.junit)
