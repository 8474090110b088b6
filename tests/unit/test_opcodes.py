"""Operation code names: the generated table, its freshness, and opcode_name()."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Optional

import pytest

from sgpy import constants
from sgpy._opcodes import DEVICE_KEYS, OPCODE_NAMES, opcode_name
from sgpy.command import all_commands
from sgpy.constants import PeripheralDeviceType as PDT

REPO = Path(__file__).resolve().parents[2]
DATA_DIRS = [REPO.parent / "shared" / "data", Path("/work/shared/data")]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_opcodes", REPO / "tools" / "gen_opcodes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table() -> Optional[Path]:
    for folder in DATA_DIRS:
        if (folder / "opcodes.tsv").is_file():
            return folder / "opcodes.tsv"
    return None


def test_generated_file_is_up_to_date() -> None:
    table = _table()
    if table is None:
        pytest.skip("shared/data/opcodes.tsv is not beside the repository")
    expected = _generator().render(table.read_text(encoding="utf-8"))
    assert (REPO / "sgpy" / "_opcode_table.py").read_text(encoding="utf-8") == expected, "run tools/gen_opcodes.py"


def test_every_table_row_is_reachable() -> None:
    table = _table()
    if table is None:
        pytest.skip("shared/data/opcodes.tsv is not beside the repository")
    for opcode, key, name in _generator().parse(table.read_text(encoding="utf-8")):
        if key == "ALL":
            assert opcode_name(opcode) == name
        else:
            assert opcode_name(opcode, DEVICE_KEYS[key][0]) == name


@pytest.mark.parametrize(
    "opcode, device_type, name",
    [
        (0x28, None, "Read(10)"),
        (0x00, None, "Test Unit Ready"),
        (0x12, PDT.TAPE, "Inquiry"),
        (0x01, None, "Rezero Unit"),
        (0x01, PDT.TAPE, "Rewind"),
        (0x01, 1, "Rewind"),
        (0x04, None, "Format Unit"),
        (0x04, PDT.DISK, "Format Unit"),
        (0x04, PDT.ZBC, "Format Unit"),
        (0x04, PDT.TAPE, "Format medium"),
        (0x42, None, "Unmap"),
        (0x42, PDT.CD_DVD, "Read sub-channel"),
        (0x50, PDT.ZBC, "Xdwrite(10)"),  # zoned devices fall back to the disk rows
        (0x50, PDT.RBC, "Xdwrite(10)"),
        (0x50, None, "Xdwrite(10)"),
        (0xA1, None, "ATA pass-through(12)"),
        (0xA1, PDT.CD_DVD, "Blank"),
        (0xA1, PDT.DISK, "ATA pass-through(12)"),
        (0x1B, PDT.ADC, "Load unload"),
        (0x85, None, "ATA pass-through(16)"),
        (0x7F, None, "Variable length"),
        (0xC5, None, "Vendor specific (C5h)"),
        (0xFF, PDT.DISK, "Vendor specific (FFh)"),
        (0x09, None, "Unknown (09h)"),
    ],
)
def test_opcode_name(opcode: int, device_type: Optional[int], name: str) -> None:
    assert opcode_name(opcode, device_type) == name


@pytest.mark.parametrize("bad", [-1, 256, "0x28", True, 1.0])
def test_opcode_name_refuses_non_opcodes(bad: object) -> None:
    with pytest.raises(ValueError, match="0..255"):
        opcode_name(bad)  # type: ignore[arg-type]


def test_constants_re_exports_opcode_name() -> None:
    assert constants.opcode_name is opcode_name
    assert "opcode_name" in constants.__all__


def test_every_command_class_has_a_name_in_the_table() -> None:
    for cls in all_commands():
        if cls.opcode == 0x7F:
            continue  # variable-length CDBs are named by their service action
        assert cls.opcode in OPCODE_NAMES, cls.name
