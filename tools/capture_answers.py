#!/usr/bin/env python3
"""Capture real device answers from scsi_debug as test data for the parsers.

Run on the host: for each configuration below it boots the sandbox
(``python -m sgpy.sandbox``) with those scsi_debug parameters and re-runs
this script inside the guest with ``--guest``, which sends a fixed list of
commands through the ``SG_IO`` ioctl to ``/dev/sg0`` and prints one JSON
record per command.  The records are written to
``tests/unit/data/scsi_debug/<configuration>.json``.

The guest side builds its CDBs by hand (byte values from the SPC-5, SBC-4
and ZBC-2 CDB tables) and uses only the standard library, so the captured
data does not depend on the code it is used to test.

Usage::

    python tools/capture_answers.py              # every configuration
    python tools/capture_answers.py zbc dsense   # some of them
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "unit" / "data" / "scsi_debug"

#: configuration name -> scsi_debug module parameters
CONFIGS: Dict[str, str] = {
    "default": "delay=0 dev_size_mb=64 num_tgts=1",
    "dsense": "delay=0 dev_size_mb=16 num_tgts=1 dsense=1",
    "lbp_4k": "delay=0 dev_size_mb=64 num_tgts=1 sector_size=4096 physblk_exp=0 lbpu=1 lbpws=1 lbprz=1",
    "physblk": "delay=0 dev_size_mb=32 num_tgts=1 physblk_exp=3 lowest_aligned=7",
    "zbc": "delay=0 dev_size_mb=128 num_tgts=1 zbc=managed zone_size_mb=4 zone_nr_conv=2",
    "luns": "delay=0 dev_size_mb=8 num_tgts=1 max_luns=4 no_lun_0=0",
    "medium_error": "delay=0 dev_size_mb=16 num_tgts=1 opts=2 medium_error_start=100 medium_error_count=4",
}


def _be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


#: (name, CDB, allocation length).  Every command reads data from the device.
COMMANDS: List[Tuple[str, bytes, int]] = [
    # INQUIRY, SPC-5 table 146: 12h, EVPD, page code, allocation length (2), control
    ("inquiry", bytes([0x12, 0, 0]) + _be(96, 2) + b"\0", 96),
    ("inquiry_36", bytes([0x12, 0, 0]) + _be(36, 2) + b"\0", 36),
    *[
        (f"vpd_{page:02x}", bytes([0x12, 1, page]) + _be(512, 2) + b"\0", 512)
        for page in (0x00, 0x80, 0x83, 0x86, 0x87, 0x88, 0x89, 0x8A, 0xB0, 0xB1, 0xB2, 0xB6)
    ],
    ("vpd_83_short", bytes([0x12, 1, 0x83]) + _be(8, 2) + b"\0", 8),
    # READ CAPACITY(10), SBC-4 table 68; READ CAPACITY(16), SBC-4 table 70 (9Eh/10h)
    ("read_capacity_10", bytes([0x25]) + bytes(9), 8),
    ("read_capacity_16", bytes([0x9E, 0x10]) + bytes(8) + _be(32, 4) + b"\0\0", 32),
    # REPORT LUNS, SPC-5 table 283: select report 0, allocation length (4)
    ("report_luns", bytes([0xA0, 0, 0]) + bytes(3) + _be(4096, 4) + b"\0\0", 4096),
    ("report_luns_16", bytes([0xA0, 0, 0]) + bytes(3) + _be(16, 4) + b"\0\0", 16),
    # MODE SENSE(6), SPC-5 table 168: DBD=0, PC=0 current, page 3Fh all
    ("mode_sense_6", bytes([0x1A, 0, 0x3F, 0, 255, 0]), 255),
    # MODE SENSE(10), SPC-5 table 169: LLBAA, all pages and subpages (3Fh/FFh)
    ("mode_sense_10", bytes([0x5A, 0x10, 0x3F, 0xFF, 0, 0, 0]) + _be(4096, 2) + b"\0", 4096),
    ("mode_sense_10_caching", bytes([0x5A, 0, 0x08, 0, 0, 0, 0]) + _be(512, 2) + b"\0", 512),
    ("mode_sense_10_control", bytes([0x5A, 0, 0x0A, 0, 0, 0, 0]) + _be(512, 2) + b"\0", 512),
    ("mode_sense_6_short", bytes([0x1A, 0, 0x3F, 0, 16, 0]), 16),
    # LOG SENSE, SPC-5 table 153: PC=01b (cumulative) << 6 | page, subpage, allocation length (2)
    *[
        (f"log_{page:02x}_{sub:02x}", bytes([0x4D, 0, 0x40 | page, sub, 0, 0, 0]) + _be(1024, 2) + b"\0", 1024)
        for page, sub in ((0x00, 0x00), (0x00, 0xFF), (0x0D, 0x00), (0x0E, 0x00), (0x2F, 0x00), (0x15, 0x00))
    ],
    # REPORT SUPPORTED OPERATION CODES, SPC-5 table 310: A3h/0Ch, RCTD, options, opcode, SA, alloc (4)
    ("opcodes_all", bytes([0xA3, 0x0C, 0x80, 0, 0, 0]) + _be(8192, 4) + b"\0\0", 8192),
    ("opcodes_all_short", bytes([0xA3, 0x0C, 0x00, 0, 0, 0]) + _be(64, 4) + b"\0\0", 64),
    ("opcodes_read10", bytes([0xA3, 0x0C, 0x81, 0x28, 0, 0]) + _be(64, 4) + b"\0\0", 64),
    # REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, SPC-5 table 329: A3h/0Dh, REPD
    ("tmf", bytes([0xA3, 0x0D, 0x80, 0, 0, 0]) + _be(16, 4) + b"\0\0", 16),
    # REPORT TARGET PORT GROUPS, SPC-5 table 317: A3h/0Ah, allocation length (4)
    ("rtpg", bytes([0xA3, 0x0A, 0, 0, 0, 0]) + _be(1024, 4) + b"\0\0", 1024),
    ("rtpg_extended", bytes([0xA3, 0x2A, 0, 0, 0, 0]) + _be(1024, 4) + b"\0\0", 1024),
    # GET LBA STATUS, SBC-4 table 45: 9Eh/12h, LBA (8), allocation length (4)
    ("get_lba_status", bytes([0x9E, 0x12]) + _be(0, 8) + _be(64, 4) + b"\0\0", 64),
    # REPORT ZONES, ZBC-2 table 33: 95h/00h, zone start LBA (8), allocation length (4), options
    ("report_zones", bytes([0x95, 0x00]) + _be(0, 8) + _be(64 + 64 * 8, 4) + b"\0\0", 64 + 64 * 8),
    # REQUEST SENSE, SPC-5 table 194
    ("request_sense", bytes([0x03, 0, 0, 0, 252, 0]), 252),
    # PERSISTENT RESERVE IN, SPC-5 table 173: READ KEYS
    ("pr_read_keys", bytes([0x5E, 0x00]) + bytes(5) + _be(256, 2) + b"\0", 256),
    # Failures, for their sense data:
    # READ(10) past the end of the medium -> ILLEGAL REQUEST, LBA out of range
    ("read10_past_end", bytes([0x28, 0]) + _be(0xFFFFFFF0, 4) + b"\0" + _be(1, 2) + b"\0", 4096),
    # READ(10) of the medium_error configuration's bad blocks
    ("read10_lba100", bytes([0x28, 0]) + _be(100, 4) + b"\0" + _be(1, 2) + b"\0", 4096),
    # an unassigned operation code -> ILLEGAL REQUEST, invalid command operation code
    ("bad_opcode", bytes([0xFF, 0, 0, 0, 0, 0]), 0),
    # INQUIRY with a reserved bit set in byte 1 -> invalid field in CDB, with a field pointer
    ("inquiry_bad_field", bytes([0x12, 0x02, 0]) + _be(96, 2) + b"\0", 96),
]

SG_IO = 0x2285
SG_DXFER_NONE = -1
SG_DXFER_FROM_DEV = -3


class SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` from <scsi/sg.h>."""

    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


def sg_io(fd: int, cdb: bytes, length: int) -> dict:
    """Send one CDB through SG_IO and return the completion as a JSON-able dict."""
    data = ctypes.create_string_buffer(max(length, 1))
    sense = ctypes.create_string_buffer(252)
    cmd = ctypes.create_string_buffer(cdb, len(cdb))
    hdr = SgIoHdr()
    hdr.interface_id = ord("S")
    hdr.dxfer_direction = SG_DXFER_FROM_DEV if length else SG_DXFER_NONE
    hdr.cmd_len = len(cdb)
    hdr.mx_sb_len = 252
    hdr.dxfer_len = length
    hdr.dxferp = ctypes.cast(data, ctypes.c_void_p) if length else None
    hdr.cmdp = ctypes.cast(cmd, ctypes.c_void_p)
    hdr.sbp = ctypes.cast(sense, ctypes.c_void_p)
    hdr.timeout = 20000
    fcntl.ioctl(fd, SG_IO, hdr)
    got = max(0, length - hdr.resid)
    return {
        "cdb": cdb.hex(),
        "allocation_length": length,
        "status": hdr.status,
        "host_status": hdr.host_status,
        "driver_status": hdr.driver_status,
        "resid": hdr.resid,
        "data": data.raw[:got].hex(),
        "sense": sense.raw[: hdr.sb_len_wr].hex(),
    }


def guest(device: str) -> int:
    """Inside the sandbox: run every command and print the records as JSON."""
    fd = os.open(device, os.O_RDWR)
    records = {}
    try:
        for name, cdb, length in COMMANDS:
            records[name] = sg_io(fd, cdb, length)
    finally:
        os.close(fd)
    json.dump(records, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def capture(name: str, params: str) -> Optional[dict]:
    """Boot the sandbox with ``params`` and collect the guest's records."""
    proc = subprocess.run(
        [sys.executable, "-m", "sgpy.sandbox", "--scsi-debug", params, "--timeout", "120", "--",
         sys.executable, str(Path(__file__).resolve()), "--guest", "/dev/sg0"],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(f"{name}: sandbox exited {proc.returncode}\n{proc.stderr.decode(errors='replace')}\n")
        return None
    text = proc.stdout.decode()
    return {"scsi_debug": params, "answers": json.loads(text[text.index("{"):])}


def main(argv: List[str]) -> int:
    if argv[:1] == ["--guest"]:
        return guest(argv[1] if len(argv) > 1 else "/dev/sg0")
    names = argv or list(CONFIGS)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        result = capture(name, CONFIGS[name])
        if result is None:
            failed += 1
            continue
        path = OUT_DIR / f"{name}.json"
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)} ({len(result['answers'])} answers)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
