"""Write the tables of docs/conformance.rst from the checks and their known results.

Between the markers ``.. checks-table-start`` / ``-end`` the list of checks
(family, clause, level, what it checks) is regenerated from
sgpy/conformance/test_*.py; between ``.. results-table-start`` / ``-end`` the
outcomes on each target from tests/data/conformance/.  Run after changing a
check or recording new results; tests/unit/test_conformance_docs.py fails while
the page is stale.
"""

import ast
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "conformance.rst")
DATA = os.path.join(ROOT, "tests", "data", "conformance")
TARGETS = ("scsi_debug-default", "scsi_debug-thin", "scsi_debug-4k", "scsi_debug-protection", "scsi_debug-zoned", "tgtd")
SHORT = {"pass": "pass", "fail": "FAIL", "skipped-unsupported": "unsup.", "skipped-by-safety": "safety"}


def checks():
    """(name, family, clause, level, first docstring line) of every check, in file order."""
    out = []
    folder = os.path.join(ROOT, "sgpy", "conformance")
    for fn in sorted(os.listdir(folder)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        tree = ast.parse(open(os.path.join(folder, fn), encoding="utf-8").read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "clause":
                        ref, level, family = (a.value for a in dec.args)
                        doc = (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")
                        out.append((node.name, family, ref, level, doc))
    return out


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("=" * w for w in widths)
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line, fmt(header), line] + [fmt(r) for r in rows] + [line])


def render():
    rows = [(f"``{n}``", fam, ref, lvl, doc.replace("*", "\\*")) for n, fam, ref, lvl, doc in checks()]
    checks_text = table(rows, ("check", "family", "clause", "level", "what it checks"))
    results = {}
    for t in TARGETS:
        with open(os.path.join(DATA, f"{t}.json"), encoding="utf-8") as f:
            results[t] = json.load(f)["outcomes"]
    names = sorted({n for r in results.values() for n in r})
    rrows = [(f"``{n}``",) + tuple(SHORT[results[t].get(n, "-")] if n in results[t] else "-" for t in TARGETS)
             for n in names]
    results_text = table(rrows, ("check",) + TARGETS)
    return checks_text, results_text


def splice(text, marker, body):
    start, end = f".. {marker}-start", f".. {marker}-end"
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n\n" + body + "\n\n" + text[b:]


def main():
    checks_text, results_text = render()
    text = open(PAGE, encoding="utf-8").read()
    new = splice(splice(text, "checks-table", checks_text), "results-table", results_text)
    if "--check" in sys.argv:
        if new != text:
            print(f"{PAGE} is stale: run python tools/gen_conformance_docs.py", file=sys.stderr)
            return 1
        return 0
    open(PAGE, "w", encoding="utf-8").write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
