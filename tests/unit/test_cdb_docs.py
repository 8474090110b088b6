"""The Commands page: its examples run, and its tables are generated from every class."""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from sgpy.command import all_commands

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _extension() -> ModuleType:
    pytest.importorskip("docutils")
    path = DOCS / "_ext" / "sgpy_commands.py"
    spec = importlib.util.spec_from_file_location("sgpy_commands", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_examples_on_the_commands_page_run() -> None:
    result = doctest.testfile(
        str(DOCS / "commands.rst"), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted > 10
    assert result.failed == 0


def test_the_four_tables_cover_every_command_once() -> None:
    extension = _extension()
    names = []
    for standard in ("SPC", "SBC", "ZBC", "SAT"):
        names.extend(row["name"] for row in extension.command_rows(standard))
    assert sorted(names) == sorted(cls.name for cls in all_commands())


def test_rows_describe_fields_and_directions() -> None:
    rows = {row["name"]: row for row in _extension().command_rows()}
    read10 = rows["Read10"]
    assert (read10["opcode"], read10["service_action"], read10["direction"]) == ("28h", "", "FROM_DEVICE")
    assert read10["fields"][5][:3] == ("lba", "bytes 2-5", "int (32 bits)")
    assert rows["ReadCapacity16"]["service_action"] == "10h"
    assert rows["Verify10"]["direction"].startswith("NONE without byte check")
    assert "irreversible" in rows["FormatUnit"]["notes"]


def test_sphinx_builds_the_page_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    from sphinx.cmd.build import build_main

    (tmp_path / "conf.py").write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(DOCS.parent)!r}, {str(DOCS / '_ext')!r}]\n"
        "extensions = ['sgpy_commands']\n"
        "project = 'sgpy'\n"
    )
    (tmp_path / "index.rst").write_text("sgpy\n====\n\n.. toctree::\n\n   commands\n")
    (tmp_path / "commands.rst").write_text((DOCS / "commands.rst").read_text())
    status = build_main(["-W", "-q", "-b", "html", str(tmp_path), str(tmp_path / "_build")])
    assert status == 0
    html = (tmp_path / "_build" / "commands.html").read_text()
    for cls in all_commands():
        assert f">{cls.name}<" in html


@pytest.fixture(autouse=True)
def _restore_import_state() -> Iterator[None]:
    """The Sphinx build imports the extension by name and extends sys.path: undo both."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    sys.modules.pop("sgpy_commands", None)
