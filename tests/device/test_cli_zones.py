"""``sgpy zones`` (REPORT ZONES, ZBC-2) on scsi_debug's host-managed zoned disk, side by side with
``sg_rep_zones``: the zone list, the header, the options, the bytes of ``--hex`` and ``--raw``, and the
refusal of a disk that is not zoned."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from sgpy.cli import EXIT_DEVICE_ERROR, EXIT_OK, EXIT_USAGE, main

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402

#: 32 MiB of 512-byte blocks in 4 MiB zones: 8 zones of 8192 blocks, the first conventional.
ZONED = pytest.mark.scsi_debug(zbc="managed", zone_size_mb=4, zone_nr_conv=1, dev_size_mb=32, num_tgts=1)
ZONE = 8192

KEYS = {"device", "start_lba", "reporting_options", "reporting_options_name", "partial", "maximum_lba", "same",
        "same_meaning", "zone_list_length", "commands", "zones"}
ZONE_KEYS = {"zone_start_lba", "zone_length", "write_pointer_lba", "zone_type", "zone_type_code", "zone_condition",
             "zone_condition_code", "non_seq", "reset"}

needs_sg_rep_zones = pytest.mark.skipif(shutil.which("sg_rep_zones") is None, reason="sg3_utils is not installed")


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert set(doc) == KEYS and all(set(z) - {"write_pointer_lba_hex"} == ZONE_KEYS for z in doc["zones"])
    return doc


def sg_rep_zones(dev, *options):
    """sg_rep_zones' decoding: (header, zones), each zone (start, length, write pointer or None, type, condition)."""
    subprocess.run(["sg_turs", dev], capture_output=True)  # sg_rep_zones gives up on a pending unit attention
    text = subprocess.run(["sg_rep_zones", *options, dev], check=True, capture_output=True, text=True).stdout
    same = int(re.search(r"Same=(\d+)", text).group(1))
    maximum = int(re.search(r"Maximum LBA: (0x[0-9a-f]+)", text).group(1), 16)
    zones = []
    for block in text.split(" Zone descriptor: ")[1:]:
        def get(name):
            return re.search(rf"{name}: (.*)", block).group(1).strip()

        wp = get("Write pointer LBA")
        zones.append((int(get("Zone start LBA"), 16), int(get("Zone Length"), 16),
                      None if wp == "-1" else int(wp, 16), get("Zone type").lower(),
                      get("Zone condition").lower()))
    return (same, maximum), zones


def ours(doc):
    """``zones --json`` as sg_rep_zones' decoding gives it (its words, -1 as no write pointer)."""
    return (doc["same"], doc["maximum_lba"]), [
        (z["zone_start_lba"], z["zone_length"],
         None if z["write_pointer_lba"] == 2**64 - 1 else z["write_pointer_lba"],
         z["zone_type"].replace("_", " "), z["zone_condition"].replace("_", " ")) for z in doc["zones"]]


def unhex(text):
    """The bytes of a --hex dump (offset, 16 bytes; the ASCII column left out)."""
    data = b""
    for line in text.splitlines():
        assert int(line[:4], 16) == len(data), line
        data += bytes.fromhex(line[6:6 + 48])
    return data


def sg_rep_zones_hex(dev, *options):
    subprocess.run(["sg_turs", dev], capture_output=True)
    text = subprocess.run(["sg_rep_zones", "-H", *options, dev], check=True, capture_output=True, text=True).stdout
    return bytes.fromhex("".join(line.split(None, 1)[1][:48] for line in text.splitlines() if line.strip()))


def change_zones(capsys, dev):
    """Zone 2 implicitly opened (a write at its write pointer), zone 3 explicitly opened (OPEN ZONE), zone 4
    full (FINISH ZONE): conditions for the reporting options to tell apart."""
    code, _, err = run(capsys, "write", dev, "--lba", 2 * ZONE, "--count", 8, "-i", "/dev/zero",
                       "--allow-data-loss")
    assert code == EXIT_OK, err
    for sa, zone in ((0x03, 3), (0x02, 4)):
        cdb = bytes([0x94, sa]) + (zone * ZONE).to_bytes(8, "big") + bytes(6)
        code, _, err = run(capsys, "raw", dev, cdb.hex(), "--allow-data-loss")
        assert code == EXIT_OK, err


@needs_sg_rep_zones
@ZONED
def test_zones_agree_with_sg_rep_zones(capsys, sg_device):
    change_zones(capsys, sg_device)
    doc = run_json(capsys, "zones", sg_device)
    assert ours(doc) == sg_rep_zones(sg_device)
    assert doc["maximum_lba"] == 8 * ZONE - 1 and doc["commands"] == 1 and doc["zone_list_length"] == 8 * 64
    assert [z["zone_start_lba"] for z in doc["zones"]] == [i * ZONE for i in range(8)]
    conditions = [z["zone_condition"] for z in doc["zones"]]
    assert conditions == ["not_write_pointer", "empty", "implicitly_opened", "explicitly_opened", "full",
                          "empty", "empty", "empty"]
    assert doc["zones"][2]["write_pointer_lba"] == 2 * ZONE + 8
    assert doc["zones"][0]["write_pointer_lba_hex"] == "0xffffffffffffffff"  # beyond 2**53: also in hex
    assert doc["zones"][0]["zone_type"] == "conventional" and doc["zones"][0]["zone_type_code"] == 1
    assert doc["same"] == 0 and doc["same_meaning"] == "zone type and length may differ from zone to zone"
    for option, name, code in (("1", "empty", 1), ("imp_open", "imp_open", 2), ("exp-open", "exp_open", 3),
                               ("full", "full", 5), ("0x3f", "not_wp", 0x3F)):
        doc = run_json(capsys, "zones", sg_device, "--report", option)
        assert (doc["reporting_options"], doc["reporting_options_name"]) == (code, name)
        assert ours(doc) == sg_rep_zones(sg_device, "-o", str(code))
        assert doc["zones"] and all(z["zone_condition_code"] == {1: 1, 2: 2, 3: 3, 5: 0xE, 0x3F: 0}[code]
                                    for z in doc["zones"])
    doc = run_json(capsys, "zones", sg_device, "--start", 2 * ZONE + 100)  # inside zone 2: from zone 2 on
    assert ours(doc) == sg_rep_zones(sg_device, "-s", str(2 * ZONE + 100))
    assert doc["zones"][0]["zone_start_lba"] == 2 * ZONE and len(doc["zones"]) == 6
    code, out, err = run(capsys, "zones", sg_device)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == f"{sg_device}: 8 zone(s) from LBA 0 (all; 1 REPORT ZONES)"
    assert lines[1].split() == ["maximum", "LBA", "65535", "(0xffff)"]
    assert lines[3].split() == ["START", "LBA", "LENGTH", "WRITE", "POINTER", "TYPE", "CONDITION", "FLAGS"]
    assert lines[4].split() == ["0", "8192", "-", "conventional", "not_write_pointer", "-"]
    assert lines[6].split() == ["16384", "8192", "16392", "sequential_write_required", "implicitly_opened", "-"]
    assert len(lines) == 4 + 8


@ZONED
def test_zones_in_pieces_num_and_partial(capsys, sg_device):
    whole = run_json(capsys, "zones", sg_device)
    # 192 bytes carry 2 zones: the 8 zones take 4 commands, each from the end of the last zone received
    pieces = run_json(capsys, "zones", sg_device, "--maxlen", 192)
    assert pieces["zones"] == whole["zones"] and pieces["commands"] == 4
    assert pieces["zone_list_length"] == 8 * 64  # the first answer's count: every zone
    # an allocation length that cuts a descriptor: the cut one is asked for again
    odd = run_json(capsys, "zones", sg_device, "--maxlen", 200)
    assert odd["zones"] == whole["zones"] and odd["commands"] == 4
    three = run_json(capsys, "zones", sg_device, "--num", 3, "--maxlen", 192)
    assert three["zones"] == whole["zones"][:3] and three["commands"] == 2
    assert run_json(capsys, "zones", sg_device, "--num", 0)["zones"] == whole["zones"]  # 0: all, as sg_rep_zones
    partial = run_json(capsys, "zones", sg_device, "--partial", "--maxlen", 192)
    assert partial["partial"] is True and partial["commands"] == 1
    assert partial["zones"] == whole["zones"][:2] and partial["zone_list_length"] == 2 * 64
    last = run_json(capsys, "zones", sg_device, "--start", 8 * ZONE - 1)
    assert [z["zone_start_lba"] for z in last["zones"]] == [7 * ZONE]
    assert run_json(capsys, "zones", sg_device, "--maxlen", 64)["zones"] == []  # the header alone
    # past the maximum LBA: LBA OUT OF RANGE (ZBC-2 5.4), a device error that is not "not zoned"
    code, out, err = run(capsys, "zones", sg_device, "--start", 8 * ZONE, "--json")
    assert code == EXIT_DEVICE_ERROR and "not a zoned" not in err
    assert json.loads(out)["error"]["sense"]["asc"] == 0x21


@ZONED
def test_zones_verbose_shows_each_command(capsys, sg_device):
    assert run(capsys, "tur", sg_device)[0] == EXIT_OK  # a pending unit attention would add a line
    code, _, err = run(capsys, "zones", sg_device, "--maxlen", 192, "-v")
    assert code == EXIT_OK
    sent = [line for line in err.splitlines() if "ReportZones [95 00" in line]
    assert len(sent) == 4, err
    assert "[95 00 00 00 00 00 00 00 40 00 00 00 00 c0 00 00]" in sent[1]  # zones 2 and 3: from LBA 4000h, 192 bytes


@needs_sg_rep_zones
@ZONED
@pytest.mark.parametrize("options", [[], ["-m", "192", "-s", "16384"], ["-m", "4096", "-o", "1"], ["-p", "-m", "256"]])
def test_zones_hex_is_sg_rep_zones_h(capsysbinary, sg_device, options):
    """The same allocation length, the same bytes: ``--hex`` is sg_rep_zones -H's dump, ``--raw`` its bytes."""
    ours_options = {"-m": "--maxlen", "-s": "--start", "-o": "--report", "-p": "--partial"}
    argv = [ours_options.get(o, o) for o in options]
    assert main(["zones", sg_device, *argv, "--raw"]) == EXIT_OK
    raw = capsysbinary.readouterr().out
    assert main(["zones", sg_device, *argv, "--hex"]) == EXIT_OK
    assert unhex(capsysbinary.readouterr().out.decode()) == raw
    assert raw == sg_rep_zones_hex(sg_device, *options)
    assert len(raw) <= int(dict(zip(options[::2], options[1::2])).get("-m", 8192)) and len(raw) % 64 == 0


def test_zones_of_a_disk_that_is_not_zoned_is_a_device_error(capsys, sg_device):
    code, out, err = run(capsys, "zones", sg_device)
    assert code == EXIT_DEVICE_ERROR and out == ""
    assert f"{sg_device} is not a zoned block device" in err and "ILLEGAL REQUEST" in err.upper()
    code, out, err = run(capsys, "zones", sg_device, "--json")
    assert code == EXIT_DEVICE_ERROR
    doc = json.loads(out)["error"]
    assert doc["type"] == "IllegalRequest" and doc["command"] == "ReportZones" and doc["exit_code"] == 3
    assert doc["sense"]["asc"] == 0x20
    code, out, err = run(capsys, "zones", sg_device, "--hex")
    assert code == EXIT_DEVICE_ERROR and out == ""


@pytest.mark.parametrize("argv, words", [
    (["--start", "-1"], "must not be negative"),
    (["--start", str(2**64)], "ZONE START LBA is 0 to"),
    (["--report", "0x40"], "REPORTING OPTIONS is 0 to 0x3f"),
    (["--report", "opened"], "unknown reporting option 'opened'"),
    (["--num", "x"], "not a number"),
    (["--maxlen", "63"], "--maxlen is 64 to"),
    (["--maxlen", str(2**32)], "--maxlen is 64 to"),
    (["--hex", "--json"], "not allowed with argument"),
])
def test_zones_refuses_bad_arguments_before_opening(capsys, argv, words):
    code, out, err = run(capsys, "zones", "/dev/nonexistent-sg", *argv, "--json")
    assert code == EXIT_USAGE, err
    assert words in json.loads(out)["error"]["message"]
