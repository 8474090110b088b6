"""The generated ASC/ASCQ table and asc_text()."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgpy._asc import PAIRS, RANGES, asc_text

REPO = Path(__file__).resolve().parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_asc", REPO / "tools" / "gen_asc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_sizes() -> None:
    assert len(PAIRS) == 764
    assert len(RANGES) == 6


def test_generated_file_is_current() -> None:
    gen = _load_generator()
    data_dir = gen.find_data_dir()
    if data_dir is None:
        pytest.skip("reference tables (../shared/data) not present")
    expected = gen.render(*gen.read_tables(data_dir))
    assert (REPO / "sgpy" / "_asc_table.py").read_text(encoding="utf-8") == expected


def test_every_source_row_is_present() -> None:
    gen = _load_generator()
    data_dir = gen.find_data_dir()
    if data_dir is None:
        pytest.skip("reference tables (../shared/data) not present")
    pairs, ranges = gen.read_tables(data_dir)
    for asc, ascq, text in pairs:
        assert asc_text(asc, ascq) == text
    assert len(ranges) == 6


@pytest.mark.parametrize(
    ("asc", "ascq", "text"),
    [
        (0x00, 0x00, "No additional sense information"),
        (0x24, 0x00, "Invalid field in CDB"),
        (0x20, 0x00, "Invalid command operation code"),
        (0x21, 0x00, "Logical block address out of range"),
        (0x29, 0x00, "Power on, reset, or bus device reset occurred"),
        # ranges: 40h/01h-7Fh and 40h/80h-FFh
        (0x40, 0x05, "Ram failure [0x5]"),
        (0x40, 0x85, "Diagnostic failure on component [0x85]"),
        (0x40, 0x00, "Ram failure (should use 40 nn)"),
        (0x70, 0x12, "Decompression exception short algorithm id of 0x12"),
        # exact pair in the vendor-specific ASCQ area wins
        (0x5D, 0xFF, "Failure prediction threshold exceeded (false)"),
        # vendor-specific areas
        (0x80, 0x00, "Vendor specific ASC 80h, ASCQ 00h"),
        (0xFF, 0xFF, "Vendor specific ASC FFh, ASCQ FFh"),
        (0x04, 0x81, "Vendor specific ASCQ 81h of ASC 04h"),
        # unassigned
        (0x7F, 0x7F, "Unknown ASC 7Fh, ASCQ 7Fh"),
        (0x24, 0x7E, "Unknown ASC 24h, ASCQ 7Eh"),
    ],
)
def test_asc_text(asc: int, ascq: int, text: str) -> None:
    assert asc_text(asc, ascq) == text


@pytest.mark.parametrize(("asc", "ascq"), [(-1, 0), (256, 0), (0, 999), (None, 1), ("x", "y")])
def test_asc_text_never_raises_on_nonsense(asc, ascq) -> None:
    assert isinstance(asc_text(asc, ascq), str)


@given(st.integers(0, 255), st.integers(0, 255))
def test_asc_text_total(asc: int, ascq: int) -> None:
    text = asc_text(asc, ascq)
    assert text
    assert isinstance(text, str)
