"""``sgpy health`` on scsi_debug: its log pages (00h, 0Dh, 2Fh), the verdict, the exit status bitmask,
and self-tests through SEND DIAGNOSTIC.

scsi_debug reports the temperature (38 °C, reference 65 °C) and informational
exceptions; with the TEST bit of its informational exceptions control mode
page set, the latter reports FAILURE PREDICTION THRESHOLD EXCEEDED (FALSE),
5Dh/FFh: a failing device, on demand.
"""

import json
import os
import sys

import pytest

from sgpy import health, modes
from sgpy.channel import Channel
from sgpy.cli import EXIT_NO_DEVICE, EXIT_OK
from sgpy.safety import ALLOW_DATA_LOSS

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402


@pytest.fixture
def failing(sg_device):
    """The device with the TEST bit set (it predicts a failure), cleared afterwards."""
    with Channel.from_path(sg_device, policy=ALLOW_DATA_LOSS) as ch:
        modes.read_modify_write(ch, [modes.setting(0x1C, 0, "test", 1)])
    yield sg_device
    with Channel.from_path(sg_device, policy=ALLOW_DATA_LOSS) as ch:
        modes.read_modify_write(ch, [modes.setting(0x1C, 0, "test", 0)])


def test_a_healthy_device(capsys, sg_device):
    code, out, err = run(capsys, "health", sg_device)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == f"{sg_device}: Linux scsi_debug {lines[0].split()[3][:-1]}, serial {lines[0].split()[-1]}"
    rows = {line[2:28].strip(): line[28:] for line in lines[1:]}
    assert rows["health"] == "OK"
    assert rows["informational exceptions"].startswith("no failure predicted (ASC 00h, ASCQ 00h)")
    assert rows["temperature"] == "38 °C (reference 65 °C)"
    assert rows["self-test results"] == "absent" and rows["start-stop cycle counter"] == "absent"
    code, out, err = run(capsys, "health", sg_device, "--json")
    doc = json.loads(out)
    assert (code, doc["exit_status"], doc["verdict"], doc["findings"]) == (0, 0, "OK", [])
    assert doc["supported_pages"][:1] == [0] and {0x0D, 0x2F} <= set(doc["supported_pages"])
    assert doc["pages"]["temperature"] == {"temperature_c": 38, "reference_temperature_c": 65}
    assert doc["identity"]["model"] == "scsi_debug" and doc["errors"] == {}
    assert set(doc["absent"]) == {name for name, page in doc["pages"].items() if page is None}


def test_a_device_predicting_its_failure_exits_with_bit_3(capsys, failing):
    code, out, err = run(capsys, "health", failing)
    assert code == int(health.Finding.FAILURE_PREDICTED) == 8, err
    assert "health                    FAILING (failure_predicted)" in out
    assert "FAILURE PREDICTED: Failure prediction threshold exceeded (false) (5Dh/FFh)" in out
    code, out, _ = run(capsys, "health", failing, "--json")
    doc = json.loads(out)
    assert (code, doc["exit_status"], doc["verdict"], doc["findings"]) == (8, 8, "FAILING", ["failure_predicted"])
    assert (doc["pages"]["informational_exceptions"]["asc"], doc["pages"]["informational_exceptions"]["ascq"]) \
        == (0x5D, 0xFF)
    # a script tests the bits; the low three are the ordinary exit status
    assert code & 7 == EXIT_OK and code & int(health.Finding.FAILURE_PREDICTED)


def test_the_library_reads_the_same(sg_device):
    with Channel.from_path(sg_device) as ch:
        got = health.read_health(ch)
    assert got.verdict == "OK" and got.findings == 0 and got.log_sense_supported
    assert got.pages["temperature"].temperature == 38 and "self_tests" in got.absent


@pytest.mark.parametrize("kind", ["short", "long", "abort", "foreground-short", "default"])
def test_self_tests_are_sent_without_a_flag(capsys, sg_device, kind):
    code, out, err = run(capsys, "health", sg_device, "--self-test", kind)
    assert code == EXIT_OK, err
    assert out.startswith(f"{sg_device}: ")
    code, out, err = run(capsys, "health", sg_device, "--self-test", kind, "--json")
    doc = json.loads(out)["self_test"]
    assert doc["kind"] == kind and doc["self_test_code"] == health.SELF_TEST_CODES[kind]


def test_a_long_self_test_says_how_long_the_device_expects(capsys, sg_device):
    with Channel.from_path(sg_device) as ch:
        seconds = modes.sense(ch, 0x0A).page(0x0A).extended_self_test_completion_time
    code, out, _ = run(capsys, "health", sg_device, "--self-test", "long", "--json")
    assert json.loads(out)["self_test"]["expected_seconds"] == seconds
    code, out, _ = run(capsys, "health", sg_device, "--self-test", "long")
    assert f"about {seconds // 60} min {seconds % 60} s" in out and "started" in out


def test_no_such_device(capsys):
    code, out, err = run(capsys, "health", "/dev/sg-none")
    assert code == EXIT_NO_DEVICE and "no such device" in err
