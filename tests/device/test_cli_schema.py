"""Every device verb's ``--json`` answer against its schema (sgpy/cli_schema.json) on scsi_debug disks:
exactly the keys the schema gives (none missing, none it does not name) and their JSON types.  One module
load serves all the verbs of one disk; ``copy`` has two disks of their own."""

import json
import sys
from pathlib import Path

import pytest

from sgpy.cli import EXIT_DEVICE_ERROR, EXIT_FAILURE, EXIT_OK, main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cli_schema_check  # noqa: E402

SCHEMA = cli_schema_check.load()


def answers(capsys, tmp_path, dev):
    """``(variant, argv, exit status)`` for each device variant of the schema, run on ``dev``."""
    block = tmp_path / "block.bin"
    block.write_bytes(bytes(range(256)) * 16)
    return [
        ("list", ["list"], EXIT_OK),
        ("list --hosts", ["list", "--hosts"], EXIT_OK),
        ("inq", ["inq", dev], EXIT_OK),
        ("inq --vpd", ["inq", dev, "--vpd", "0x83"], EXIT_OK),
        ("inq --vpd", ["inq", dev, "--vpd", "bl"], EXIT_OK),
        ("vpd", ["vpd", dev], EXIT_OK),
        ("info", ["info", dev], EXIT_OK),
        ("readcap", ["readcap", dev], EXIT_OK),
        ("luns", ["luns", dev], EXIT_OK),
        ("tur", ["tur", dev], EXIT_OK),
        ("tur --count", ["tur", dev, "--count", "20"], EXIT_OK),
        ("opcodes", ["opcodes", dev], EXIT_OK),
        ("opcodes --opcode", ["opcodes", dev, "--opcode", "0x28"], EXIT_OK),
        ("opcodes --opcode", ["opcodes", dev, "--opcode", "0x9e", "--service-action", "0x10"], EXIT_OK),
        ("modes", ["modes", dev], EXIT_OK),
        ("modes", ["modes", dev, "caching", "--pc", "changeable"], EXIT_OK),
        ("modes PAGE", ["modes", dev, "caching"], EXIT_OK),
        ("modes PAGE", ["modes", dev, "ie"], EXIT_OK),
        ("modes --set", ["modes", dev, "--set", "ca.wce=0", "--allow-data-loss"], EXIT_OK),
        ("modes --defaults", ["modes", dev, "caching", "--defaults", "--allow-data-loss"], EXIT_OK),
        ("control", ["control", dev, "ready"], EXIT_OK),
        ("control", ["control", dev, "capacity"], EXIT_OK),
        ("control", ["control", dev, "sync", "--allow-data-loss"], EXIT_OK),
        ("logs", ["logs", dev], EXIT_OK),
        ("logs PAGE", ["logs", dev, "temperature"], EXIT_OK),
        ("logs --all", ["logs", dev, "--all"], EXIT_OK),
        ("health", ["health", dev], EXIT_OK),
        ("health --self-test", ["health", dev, "--self-test", "short"], EXIT_OK),
        ("raw", ["raw", dev, "12 00 00 00 24 00", "--in", "36"], EXIT_OK),
        ("raw", ["raw", dev, "00 00 00 00 00 00"], EXIT_OK),
        ("write", ["write", dev, "--lba", "100", "-i", str(block), "--allow-data-loss"], EXIT_OK),
        ("read", ["read", dev, "--lba", "100", "--count", "8", "-o", str(tmp_path / "back.bin")], EXIT_OK),
        ("bench", ["bench", dev, "--seconds", "0.2", "--qd", "4"], EXIT_OK),
        ("bench", ["bench", dev, "--rw", "randrw", "--count", "200", "--qd", "4", "--channels", "2",
                   "--allow-data-loss"], EXIT_OK),
        ("conform", ["conform", dev, "--select", "read_capacity"], EXIT_OK),
        # scsi_debug fails one "shall" of the INQUIRY family (docs/conformance.rst): the answer is the same shape
        ("conform", ["conform", dev, "--select", "inquiry"], EXIT_FAILURE),
        # a device error: the error object with the command, the status and the decoded sense
        ("error", ["raw", dev, "88 00 00 00 00 00 10 00 00 00 00 00 00 01 00 00", "--in", "512"],
         EXIT_DEVICE_ERROR),
    ]


def check_all(capsys, runs):
    failed = []
    seen = set()
    for variant, argv, status in runs:
        code = main([*argv, "--json"])
        captured = capsys.readouterr()
        if code != status:
            failed.append(f"sgpy {' '.join(argv)} --json: exit status {code}, not {status}: {captured.err}")
            continue
        try:
            cli_schema_check.check(json.loads(captured.out), variant)
        except AssertionError as exc:
            failed.append(f"sgpy {' '.join(argv)} --json: {exc}")
        seen.add(variant)
    assert failed == [], "\n".join(failed)
    return seen


@pytest.mark.scsi_debug(dev_size_mb=16)
def test_every_device_verb_answers_exactly_its_schema(capsys, tmp_path, sg_device):
    seen = check_all(capsys, answers(capsys, tmp_path, sg_device))
    # every schema is run here but discover (iSCSI: tests/iscsi/test_cli_iscsi.py), copy (two disks) and
    # zones (a zoned disk), below, and the ones needing no device (tests/unit/test_cli_schema.py)
    assert set(SCHEMA["variants"]) - seen == {"discover", "copy", "zones", "sense", "completion"}


@pytest.mark.scsi_debug(add_host=2, per_host_store=1, num_tgts=1)
def test_copy_answers_exactly_its_schema(capsys, sg_devices):
    a, b = sg_devices[:2]
    check_all(capsys, [
        ("copy", ["copy", a, b, "--lba", "10", "--count", "64", "--dst-lba", "100", "--allow-data-loss"], EXIT_OK),
        ("copy", ["copy", a, b, "--count", "32", "--verify", "--allow-data-loss"], EXIT_OK),
    ])


@pytest.mark.scsi_debug(zbc="managed", zone_size_mb=4, zone_nr_conv=1, dev_size_mb=32, num_tgts=1)
def test_zones_answers_exactly_its_schema(capsys, sg_device):
    check_all(capsys, [
        ("zones", ["zones", sg_device], EXIT_OK),
        ("zones", ["zones", sg_device, "--report", "empty", "--num", "2"], EXIT_OK),
        ("zones", ["zones", sg_device, "--maxlen", "192"], EXIT_OK),
    ])


@pytest.mark.scsi_debug(dev_size_mb=16)
def test_a_device_error_gives_every_key_of_the_error_object(capsys, sg_device):
    code = main(["raw", sg_device, "88 00 00 00 00 00 10 00 00 00 00 00 00 01 00 00", "--in", "512", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_DEVICE_ERROR
    cli_schema_check.check(doc, "error")
    # what the schema leaves optional is there for a device error; only a refusal's risk is not
    assert set(SCHEMA["$defs"]["error"]["properties"]["error"]["properties"]) - set(doc["error"]) == {"risk"}
    assert doc["error"]["sense"]["sense_key"] == "ILLEGAL_REQUEST"
