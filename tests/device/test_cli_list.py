"""``sgpy list`` beside lsscsi and beside the device's own answers: size, serial, WWN and transport.

Everything ``sgpy list`` shows comes from sysfs; here it is held against
what the device answers to INQUIRY and READ CAPACITY, and against lsscsi
(``-g -s -UU``, ``-sss``, ``-t``) when lsscsi is installed.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import sgpy
from sgpy import command
from sgpy.channel import Channel
from sgpy.cli import EXIT_OK, si_size

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402


def listed(capsys, *extra):
    code, out, err = run(capsys, "list", "--json", *extra)
    assert code == EXIT_OK, err
    return {d["path"]: d for d in json.loads(out)["devices"]}


def test_size_serial_and_wwn_are_what_the_device_answers(capsys, sg_devices):
    found = listed(capsys)
    assert sorted(found) == sorted(sg_devices)
    for path in sg_devices:
        d = found[path]
        with Channel.from_path(path) as ch:
            serial = ch.execute(command.Inquiry(evpd=True, page_code=0x80, allocation_length=252)).result.serial
            page83 = ch.execute(command.Inquiry(evpd=True, page_code=0x83, allocation_length=252)).result
            cap = ch.execute(command.ReadCapacity16()).result
        assert d["serial"] == serial.strip()
        assert d["wwn"] == page83.wwn and d["wwn"].startswith("naa.")  # the library agrees with the kernel's wwid
        assert d["size_bytes"] == cap.capacity_bytes and d["logical_block_size"] == cap.block_length
        assert d["transport"] == "pseudo" and d["host_driver"] == "scsi_debug"  # scsi_debug hangs off pseudo_0
        assert d["queue_depth"] >= 1 and d["state"] == "running"


def test_the_table_shows_them_with_the_size_in_lsscsi_units(capsys, sg_devices):
    code, out, _ = run(capsys, "list")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["SG", "H:C:T:L", "TYPE", "VENDOR", "MODEL", "REV", "DEVICE", "SIZE", "TRANSPORT",
                                "WWN", "SERIAL", "ACCESS"]
    for line, dev in zip(lines[1:], sgpy.devices()):
        assert line.split() == [dev.path, dev.hctl, "disk", "Linux", "scsi_debug", dev.revision, dev.device_node,
                                si_size(dev.size_bytes), "pseudo", dev.wwn, dev.serial, "rw"]
    code, out, _ = run(capsys, "list", "--long")
    lines = out.splitlines()
    assert lines[0].split()[11:] == ["STATE", "BLOCK", "QD", "DRIVER", "PORT", "ACCESS"]
    for line, dev in zip(lines[1:], sgpy.devices()):
        assert line.split()[11:] == ["running", "512", str(dev.queue_depth), "scsi_debug", "-", "rw"]


needs_lsscsi = pytest.mark.skipif(shutil.which("lsscsi") is None, reason="lsscsi is not installed (apt-get install "
                                                                         "lsscsi)")


def lsscsi(*options):
    """lsscsi's lines by H:C:T:L, each split on white space (its fields have none here)."""
    text = subprocess.run(["lsscsi", *options], check=True, capture_output=True, text=True).stdout
    return {re.match(r"\[(\S+)\]", line).group(1): line.split()[1:] for line in text.splitlines() if line}


@needs_lsscsi
def test_list_agrees_with_lsscsi_g_s_and_its_logical_unit_names(capsys, sg_devices):
    """``lsscsi -g -s -UU``: type, logical unit name (with its naa. prefix), block device, sg node and size."""
    ours = {d["hctl"]: d for d in listed(capsys).values()}
    theirs = lsscsi("-g", "-s", "-UU")
    assert set(theirs) == set(ours)
    for hctl, (ptype, name, node, sg, size) in theirs.items():
        d = ours[hctl]
        assert [d["type_name"], d["wwn"], d["device_node"], d["path"], si_size(d["size_bytes"])] == \
            [ptype, name, node, sg, size]


@needs_lsscsi
def test_list_agrees_with_lsscsi_block_counts(capsys, sg_devices):
    """``lsscsi -g -sss``: the capacity as a count of logical blocks."""
    ours = {d["hctl"]: d for d in listed(capsys).values()}
    for hctl, fields in lsscsi("-g", "-sss").items():
        d = ours[hctl]
        assert int(fields[-1]) == d["size_bytes"] // d["logical_block_size"]
        assert fields[:4] == ["disk", d["vendor"], d["model"], d["revision"]]
