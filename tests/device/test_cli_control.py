"""``sgpy control DEV ACTION`` (sdparm --command) on scsi_debug: START STOP UNIT, SYNCHRONIZE CACHE,
PREVENT ALLOW MEDIUM REMOVAL, TEST UNIT READY and READ CAPACITY by name, with their exit statuses.

scsi_debug keeps a stopped state per device: after START STOP UNIT with
START=0, TEST UNIT READY and media access commands answer NOT READY,
LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED (02h/04h/02h) until a
START STOP UNIT with START=1 (scsi_debug.c, resp_start_stop).  It refuses a
POWER CONDITION other than 0h with INVALID FIELD IN CDB.  Every test leaves
the device started.
"""

import json
import os
import sys

import pytest

from sgpy.cli import EXIT_DEVICE_ERROR, EXIT_NO_DEVICE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402


def control(capsys, dev, *argv):
    """``sgpy control DEV ... --json``: the exit status and the JSON answer."""
    code, out, err = run(capsys, "control", dev, *argv, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


@pytest.fixture
def dev(capsys, sg_device):
    """The device, started again afterwards whatever the test did to it."""
    yield sg_device
    code, _, err = run(capsys, "control", sg_device, "start")
    assert code == EXIT_OK, err
    assert run(capsys, "tur", sg_device)[0] == EXIT_OK


def test_stop_makes_the_unit_not_ready_and_start_makes_it_ready_again(capsys, dev):
    code, doc = control(capsys, dev, "stop", "--allow-data-loss")
    assert code == EXIT_OK
    assert doc == {"device": dev, "action": "stop", "command": "StartStopUnit", "cdb": "1b0000000000",
                   "immed": False}
    code, out, err = run(capsys, "tur", dev)
    assert code == EXIT_DEVICE_ERROR
    assert "Logical unit not ready, initializing command required (ASC 04h, ASCQ 02h)" in err
    code, doc = control(capsys, dev, "ready")
    assert code == EXIT_DEVICE_ERROR
    sense = doc["error"]["sense"]
    assert (doc["error"]["type"], sense["sense_key"], sense["asc"], sense["ascq"]) == ("NotReady", "NOT_READY", 4, 2)
    code, out, err = run(capsys, "control", dev, "start")
    assert code == EXIT_OK, err
    assert out == f"{dev}: started [StartStopUnit 1b 00 00 00 01 00]\n"
    code, doc = control(capsys, dev, "ready")
    assert code == EXIT_OK and doc["ready"] is True and doc["cdb"] == "000000000000"


def test_eject_and_load_set_loej_and_immed_sets_its_bit(capsys, dev):
    code, doc = control(capsys, dev, "eject", "--allow-data-loss", "--immed")
    assert code == EXIT_OK and doc["cdb"] == "1b0100000200" and doc["immed"] is True  # IMMED, LOEJ, START=0
    assert run(capsys, "tur", dev)[0] == EXIT_DEVICE_ERROR
    code, doc = control(capsys, dev, "load")
    assert code == EXIT_OK and doc["cdb"] == "1b0000000300"  # LOEJ, START=1
    assert run(capsys, "tur", dev)[0] == EXIT_OK


@pytest.mark.parametrize("action, cdb, words", [
    ("sync", "35000000000000000000", "cache synchronized"),
    ("lock", "1e0000000100", "medium removal prevented"),
    ("unlock", "1e0000000000", "medium removal allowed"),
    ("start", "1b0000000100", "started"),
    ("ready", "000000000000", "ready"),
])
def test_the_commands_that_keep_the_unit_ready(capsys, dev, action, cdb, words):
    code, out, err = run(capsys, "control", dev, action)
    assert code == EXIT_OK, err
    assert out.startswith(f"{dev}: {words} [")
    code, doc = control(capsys, dev, action)
    assert code == EXIT_OK and doc["action"] == action and doc["cdb"] == cdb
    assert run(capsys, "tur", dev)[0] == EXIT_OK


def test_sync_with_immed(capsys, dev):
    code, doc = control(capsys, dev, "sync", "--immed")
    assert code == EXIT_OK and doc["cdb"] == "35020000000000000000" and doc["command"] == "SynchronizeCache10"


def test_capacity_is_what_readcap_says(capsys, dev):
    code, doc = control(capsys, dev, "capacity")
    assert code == EXIT_OK and doc["command"] == "ReadCapacity16" and doc["cdb"] is None
    code, out, err = run(capsys, "readcap", dev, "--json")
    cap = json.loads(out)
    del cap["device"]
    assert doc["capacity"] == cap
    code, out, err = run(capsys, "control", dev, "capacity")
    assert out == f"{dev}: {cap['blocks']} blocks of {cap['block_size']} bytes = 64.0 MiB\n"


def test_a_power_condition_the_device_refuses_is_a_device_error(capsys, dev):
    code, out, err = run(capsys, "control", dev, "idle")
    assert code == EXIT_DEVICE_ERROR
    assert "StartStopUnit failed: ILLEGAL REQUEST — Invalid field in CDB" in err and "CDB byte 4" in err
    code, doc = control(capsys, dev, "standby")
    assert code == EXIT_DEVICE_ERROR and doc["error"]["command"] == "StartStopUnit"
    assert run(capsys, "tur", dev)[0] == EXIT_OK


@pytest.mark.parametrize("argv, code, words", [
    (["stop"], EXIT_REFUSED, "pass --allow-data-loss"),
    (["eject"], EXIT_REFUSED, "out of service"),
    (["lock", "--immed"], EXIT_USAGE, "lock has none"),
    (["capacity", "--immed"], EXIT_USAGE, "capacity has none"),
    (["spin"], EXIT_USAGE, "invalid choice: 'spin'"),
    ([], EXIT_USAGE, "the following arguments are required: ACTION"),
])
def test_refusals_leave_the_unit_ready(capsys, dev, argv, code, words):
    got, out, err = run(capsys, "control", dev, *argv)
    assert got == code and words in err and "Traceback" not in err
    got, out, err = run(capsys, "control", dev, *argv, "--json")
    assert got == code and json.loads(out)["error"]["exit_code"] == code
    if code == EXIT_REFUSED:
        assert json.loads(out)["error"]["risk"] == "data-changing"
    assert run(capsys, "tur", dev)[0] == EXIT_OK


def test_no_such_device(capsys, dev):
    code, out, err = run(capsys, "control", "/dev/sg-none", "start")
    assert code == EXIT_NO_DEVICE and "no such device" in err
