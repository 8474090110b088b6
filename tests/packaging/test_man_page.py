"""The man page sgpy(1) that the package installs says what docs/cli.rst says.

``docs/man/sgpy.1`` is generated from ``docs/cli.rst`` by Sphinx's man
builder (``python tools/gen_man.py``) and kept in the repository, so that
building sgpy needs no Sphinx.  Here it is generated again and its words
compared with the kept copy's (:func:`gen_man.words`: another Sphinx or
docutils formats the same text a little differently, which is no change).
About 15 seconds: Sphinx reads the whole documentation.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import gen_man  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> str:
    if importlib.util.find_spec("sphinx") is None:
        message = "Sphinx is not installed (pip install -e '.[docs]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return gen_man.build(tmp_path_factory.mktemp("man")).read_text(encoding="utf-8")


def test_the_kept_man_page_is_current(fresh: str) -> None:
    kept = gen_man.MAN_PAGE.read_text(encoding="utf-8")
    assert gen_man.words(kept) == gen_man.words(fresh), \
        "docs/man/sgpy.1 does not say what docs/cli.rst says: run python tools/gen_man.py"


def test_the_man_page_is_sgpy_1_and_covers_every_verb(fresh: str) -> None:
    assert '.TH "SGPY" "1"' in fresh
    words = gen_man.words(fresh)
    assert words[:3] == ["name", "sgpy", "send"]  # NAME: sgpy - send SCSI commands...
    from sgpy.cli import build_parser
    from sgpy.completion import spec

    _, verbs = spec(build_parser())
    text = " ".join(words)
    missing = [v.name for v in verbs if f"sgpy {v.name}" not in text]
    assert missing == [], f"verbs the man page never shows as 'sgpy VERB': {missing}"


def test_words_ignore_formatting_and_date() -> None:
    a = '.\\" comment\n.TH "SGPY" "1" "Nov 27, 2026" "" "sgpy"\n.SH NAME\nsgpy \\- \\fBsend\\fP SCSI\n'
    b = '.TH "SGPY" "1" "Jan 01, 2030" "" "sgpy"\n.SH "NAME"\n.sp\nsgpy \\(em send SCSI\n'
    assert gen_man.words(a) == gen_man.words(b) == ["name", "sgpy", "send", "scsi"]
    assert gen_man.words(a) != gen_man.words(a.replace("SCSI", "ATA"))


def test_gen_man_check_exits_1_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              fresh: str) -> None:
    stale = tmp_path / "sgpy.1"
    stale.write_text(fresh.replace("discover", "uncover"), encoding="utf-8")
    monkeypatch.setattr(gen_man, "MAN_PAGE", stale)
    monkeypatch.setattr(gen_man, "build", lambda out: _write(out, fresh))
    assert gen_man.main(["--check"]) == 1
    stale.write_text(fresh, encoding="utf-8")
    assert gen_man.main(["--check"]) == 0


def _write(out: Path, text: str) -> Path:
    path = out / "sgpy.1"
    path.write_text(text, encoding="utf-8")
    return path
