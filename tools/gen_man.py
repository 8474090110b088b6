"""Write the man page sgpy(1), ``docs/man/sgpy.1``, from ``docs/cli.rst``.

Sphinx's ``man`` builder renders ``docs/cli.rst`` (``man_pages`` in
``docs/conf.py``); the result is kept in the repository so that building
and installing sgpy needs no Sphinx (``setup.py`` installs it as
``share/man/man1/sgpy.1``).  Run after changing ``docs/cli.rst``::

    python tools/gen_man.py          # write docs/man/sgpy.1
    python tools/gen_man.py --check  # exit 1 if docs/man/sgpy.1 says other words than the docs

``tests/packaging/test_man_page.py`` runs the check.  The comparison is of
the words (:func:`words`), so that another Sphinx or docutils version, which
formats the same text a little differently, does not count as a change.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MAN_PAGE = DOCS / "man" / "sgpy.1"


def build(out_dir: Path) -> Path:
    """Render the man page into ``out_dir`` with this Python's Sphinx; return its path."""
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "man", "-d", str(out_dir / ".doctrees"),
                           str(DOCS), str(out_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gen_man: sphinx failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    page = out_dir / "sgpy.1"
    if not page.exists():
        raise SystemExit(f"gen_man: sphinx wrote no sgpy.1 in {out_dir} (man_pages in docs/conf.py?)")
    return page


def words(roff: str) -> List[str]:
    """The words a reader sees in a roff page: no comments, macros' names, escapes, table layouts or date."""
    lines = roff.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(".TH "))
    except StopIteration:
        start = -1
    out: List[str] = []
    in_layout = False
    for line in lines[start + 1:]:
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith(".TS"):
            in_layout = True  # tbl: options and column layout up to the line ending in "."
            continue
        if in_layout:
            in_layout = not line.rstrip().endswith(".")
            continue
        if line.startswith((".", "'")):
            line = line[1:].lstrip()
            line = line.split(None, 1)[1] if " " in line else ""  # the request's arguments only
        line = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", " ", line)  # font changes
        line = re.sub(r"\\\(..|\\\[[^\]]*\]|\\.", " ", line)  # special characters and other escapes
        line = re.sub(r"^T[{}]|T[{}]$", " ", line)  # tbl's text blocks
        out.extend(w.lower() for w in re.findall(r"[A-Za-z0-9]+", line))
    return out


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/man/sgpy.1 is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sgpy-man-") as tmp:
        fresh = build(Path(tmp)).read_text(encoding="utf-8")
    if args.check:
        current = MAN_PAGE.read_text(encoding="utf-8") if MAN_PAGE.exists() else ""
        if words(current) != words(fresh):
            print(f"{MAN_PAGE} is stale: run python tools/gen_man.py", file=sys.stderr)
            return 1
        return 0
    MAN_PAGE.parent.mkdir(parents=True, exist_ok=True)
    MAN_PAGE.write_text(fresh, encoding="utf-8")
    print(f"wrote {MAN_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
