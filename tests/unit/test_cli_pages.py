"""Pages by number or by name (sg3_utils' acronyms and long names): the table and the parser."""

import json

import pytest

from sgpy import cli
from sgpy.cli import EXIT_USAGE, PAGE_NAMES, main, page_by_name

# (kind, what is typed, page, subpage): the codes are those of sg_vpd, sdparm and sg_logs.
NAMED = [
    ("vpd", "sv", 0x00, 0), ("vpd", "sn", 0x80, 0), ("vpd", "serial", 0x80, 0), ("vpd", "SN", 0x80, 0),
    ("vpd", "di", 0x83, 0), ("vpd", "device-identification", 0x83, 0), ("vpd", "ei", 0x86, 0),
    ("vpd", "ai", 0x89, 0), ("vpd", "ATA", 0x89, 0), ("vpd", "ata_information", 0x89, 0), ("vpd", "pc", 0x8A, 0),
    ("vpd", "bl", 0xB0, 0), ("vpd", "Block Limits", 0xB0, 0), ("vpd", "bdc", 0xB1, 0), ("vpd", "lbpv", 0xB2, 0),
    ("vpd", "zbdch", 0xB6, 0), ("vpd", "zbdc", 0xB6, 0), ("vpd", "sp", 0x88, 0), ("vpd", "tpc", 0x8F, 0),
    ("mode", "rw", 0x01, 0), ("mode", "read-write-error-recovery", 0x01, 0), ("mode", "dr", 0x02, 0),
    ("mode", "ve", 0x07, 0), ("mode", "ca", 0x08, 0), ("mode", "Caching", 0x08, 0), ("mode", "co", 0x0A, 0),
    ("mode", "control", 0x0A, 0), ("mode", "coe", 0x0A, 0x01), ("mode", "po", 0x1A, 0), ("mode", "pc", 0x1A, 0),
    ("mode", "power_condition", 0x1A, 0), ("mode", "ps", 0x1A, 0x01), ("mode", "ie", 0x1C, 0),
    ("mode", "informational-exceptions", 0x1C, 0), ("mode", "lbp", 0x1C, 0x02), ("mode", "all", 0x3F, 0),
    ("log", "sp", 0x00, 0), ("log", "ssp", 0x00, 0xFF), ("log", "we", 0x02, 0), ("log", "re", 0x03, 0),
    ("log", "ve", 0x05, 0), ("log", "nm", 0x06, 0), ("log", "temp", 0x0D, 0), ("log", "TEMPERATURE", 0x0D, 0),
    ("log", "sscc", 0x0E, 0), ("log", "ss", 0x0E, 0), ("log", "start-stop", 0x0E, 0), ("log", "str", 0x10, 0),
    ("log", "st", 0x10, 0), ("log", "self_test", 0x10, 0), ("log", "ssm", 0x11, 0), ("log", "ssd", 0x11, 0),
    ("log", "bsr", 0x15, 0), ("log", "bs", 0x15, 0), ("log", "pd", 0x15, 0x01), ("log", "ie", 0x2F, 0),
    ("log", "util", 0x0E, 0x01), ("log", "enr", 0x0D, 0x01),
]


@pytest.mark.parametrize("kind, text, page, subpage", NAMED)
def test_a_page_by_name(kind, text, page, subpage):
    assert page_by_name(kind, text) == (page, subpage)


@pytest.mark.parametrize("kind, text, page", [
    ("vpd", "0x83", 0x83), ("vpd", "131", 0x83), ("vpd", "0XB0", 0xB0), ("vpd", "255", 0xFF),
    ("mode", "8", 0x08), ("mode", "0x3f", 0x3F), ("log", "0x0d", 0x0D), ("log", "47", 0x2F), ("log", "0", 0),
])
def test_a_page_by_number_leaves_the_subpage_to_subpage(kind, text, page):
    assert page_by_name(kind, text) == (page, None)


@pytest.mark.parametrize("kind, text, words", [
    ("vpd", "0x100", "0..0xff"), ("mode", "0x40", "0..0x3f"), ("log", "64", "0..0x3f"),
    ("vpd", "nope", "unknown vpd page 'nope'"), ("mode", "temp", "unknown mode page"),
    ("log", "caching", "unknown log page"), ("log", "-1", "unknown log page"), ("vpd", "", "unknown vpd page"),
])
def test_what_is_no_page_is_refused(kind, text, words):
    with pytest.raises(Exception, match=words):
        page_by_name(kind, text)


def test_the_table_is_frozen_and_each_name_is_lower_case_and_unique():
    for kind, names in PAGE_NAMES.items():
        with pytest.raises(TypeError):
            names["x"] = (0, 0)  # type: ignore[index]
        assert all(name == name.lower() and " " not in name for name in names)
    with pytest.raises(TypeError):
        PAGE_NAMES["other"] = {}  # type: ignore[index]
    # every row's acronym is in VPD_NAMES, and the page codes fit their kind
    assert dict(cli.VPD_NAMES)["sn"] == 0x80
    for kind, names in PAGE_NAMES.items():
        assert all(0 <= page <= cli._PAGE_MAX[kind] and 0 <= sub <= 0xFF for page, sub in names.values())


@pytest.mark.parametrize("argv", [
    ["logs", "/dev/sg0", "nope"], ["modes", "/dev/sg0", "frobnicate"], ["inq", "/dev/sg0", "--vpd", "xyz"],
    ["vpd", "/dev/sg0", "xyz"],
])
def test_an_unknown_name_is_a_usage_error_that_lists_the_known_ones(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "unknown" in err and "=" in err
    kind = {"logs": "log", "modes": "mode", "inq": "vpd", "vpd": "vpd"}[argv[0]]
    acronyms = {rows[2] for rows in cli._PAGE_TABLE[kind]}
    assert all(f"{a}/" in err or f"{a}=" in err for a in acronyms)
    code = main(argv + ["--json"])
    doc = json.loads(capsys.readouterr().out)["error"]
    assert code == EXIT_USAGE and doc["type"] == "UsageError" and "unknown" in doc["message"]


def test_a_named_subpage_and_another_subpage_contradict(capsys):
    assert main(["modes", "/dev/sg0", "coe", "--subpage", "2"]) == EXIT_USAGE
    assert "--subpage" in capsys.readouterr().err
    assert cli._page_and_subpage((0x0A, 0x01), 1, 0x3F, "mode") == (0x0A, 1)
    assert cli._page_and_subpage((0x0A, None), 2, 0x3F, "mode") == (0x0A, 2)
    assert cli._page_and_subpage(None, None, 0x3F, "mode") == (0x3F, 0)
    assert cli._page_and_subpage((0x00, 0xFF), None, 0, "log") == (0x00, 0xFF)


def test_docs_cli_lists_every_page_name_with_its_code():
    """docs/cli.rst's tables of page names say what PAGE_NAMES holds, row for row."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.rst").read_text(encoding="utf-8")
    for kind, rows in cli._PAGE_TABLE.items():
        for page, subpage, *words in rows:
            code = f"{page:02X}h" + (f"/{subpage:02X}h" if subpage else "")
            row = f"{code:<4}  ``{words[0]}``".rstrip() if kind == "vpd" else f"{code:<7}  ``{words[0]}``"
            line = next((ln for ln in text.splitlines() if ln.startswith(row + " ") or ln == row), None)
            assert line is not None, f"docs/cli.rst has no row for {kind} page {code} ({words[0]})"
            assert all(f"``{w}``" in line for w in words[1:]), line
