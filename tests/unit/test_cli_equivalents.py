"""docs/cli.rst's table of sg3_utils / lsscsi / sdparm / smartctl / fio commands and their sgpy
equivalents: it covers the common commands, names only verbs and options sgpy has, and its closing
note lists every "not yet"."""

import re
from pathlib import Path

import pytest

from sgpy.cli import build_parser

CLI_RST = Path(__file__).resolve().parents[2] / "docs" / "cli.rst"


def rows():
    text = CLI_RST.read_text(encoding="utf-8")
    section = text.split("From sg3_utils, lsscsi, sdparm, smartctl and fio\n", 1)[1].split("\nFrom Python\n", 1)[0]
    table, note = section.split("What sgpy still lacks from this table:", 1)
    cells = re.findall(r"^   \* - (.*)\n     - (.*)\n     -(.*)$", table, re.M)
    return [(a.strip(), b.strip(), c.strip()) for a, b, c in cells][1:], note


@pytest.mark.parametrize("command", [
    "lsscsi -g -s --wwn", "sg_inq DEV", "sg_vpd -p", "sg_readcap", "sg_luns", "sg_turs", "sg_decode_sense",
    "sg_opcodes", "sg_modes", "sdparm --get", "sdparm --set", "--save", "sg_logs", "smartctl -H -A -l selftest",
    "sg_raw", "sg_dd", "fio --ioengine=sg"])
def test_the_table_covers_the_common_commands(command):
    assert any(command in theirs for theirs, _, _ in rows()[0]), command


def test_every_sgpy_command_in_the_table_parses():
    parser = build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb").choices
    for theirs, ours, _ in rows()[0]:
        for cmd in re.findall(r"``(sgpy [^`]*)``", ours):
            words = cmd.split()
            assert words[1] in verbs, cmd
            options = {o for action in verbs[words[1]]._actions for o in action.option_strings}
            for word in words[2:]:
                if word.startswith("--"):
                    assert word in options, f"{cmd}: {word}"


def test_the_closing_note_lists_every_not_yet():
    table, note = rows()
    missing = [theirs for theirs, ours, _ in table if ours.startswith("not yet")]
    assert len(table) >= 30  # the table was read
    for theirs in missing:
        words = re.findall(r"``([^`]*)``", theirs)[0].split()
        options = [w.split("=")[0] for w in words[1:] if w.startswith("-")]
        probe = options[0] if words[0] == "fio" else " ".join([words[0], *options[:1]])
        assert probe in note, (theirs, probe)
