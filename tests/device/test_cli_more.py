"""More of the sgpy command line on sandbox devices: ``list --hosts`` (lsscsi -H), ``tur --count``
(sg_turs -n), ``opcodes --opcode`` (sg_opcodes -o), ``logs --all`` (sg_logs -a) and ``info``
(smartctl -i): their output, their JSON keys and their exit status."""

import json
import re
import shutil
import subprocess

import pytest

from sgpy.cli import EXIT_OK, EXIT_USAGE, main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == EXIT_OK, err
    return json.loads(out)


# -- list --hosts -------------------------------------------------------------------


def lsscsi_hosts(*options):
    """``lsscsi -H``: host number -> the words after it (the driver, then what the options add)."""
    text = subprocess.run(["lsscsi", "-H", *options], check=True, capture_output=True, text=True).stdout
    return {int(m.group(1)): m.group(2).split() for m in re.finditer(r"^\[(\d+)\]\s*(.*)$", text, re.M)}


@pytest.mark.skipif(shutil.which("lsscsi") is None, reason="lsscsi is not installed (scripts/setup installs it)")
@pytest.mark.scsi_debug(add_host=2, num_tgts=1)
def test_list_hosts_agrees_with_lsscsi_h(capsys, sg_devices):
    doc = run_json(capsys, "list", "--hosts")
    hosts = {h["host"]: h for h in doc["hosts"]}
    theirs = lsscsi_hosts()
    assert len(theirs) == 2 and set(hosts) == set(theirs)
    for number, words in theirs.items():
        h = hosts[number]
        assert set(h) == {"host", "name", "driver", "transport", "transport_address", "state", "can_queue",
                          "cmd_per_lun", "sg_tablesize", "devices"}
        assert words == [h["driver"]] == ["scsi_debug"]
        assert h["name"] == f"host{number}" and h["transport"] == "pseudo" and h["state"] == "running"
        assert h["devices"] == sum(1 for d in run_json(capsys, "list")["devices"] if d["host"] == number) == 1
    verbose = subprocess.run(["lsscsi", "-H", "--long"], check=True, capture_output=True, text=True).stdout
    for number, h in hosts.items():
        assert f"cmd_per_lun={h['cmd_per_lun']}" in verbose and f"sg_tablesize={h['sg_tablesize']}" in verbose
    code, out, _ = run(capsys, "list", "--hosts")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["HOST", "NAME", "DRIVER", "TRANSPORT", "ADDRESS", "DEVICES"]
    assert [line.split() for line in lines[1:]] == [[str(n), f"host{n}", "scsi_debug", "pseudo", "-", "1"]
                                                    for n in sorted(theirs)]
    code, out, _ = run(capsys, "list", "-H", "--long")
    assert code == EXIT_OK
    assert out.splitlines()[0].split()[6:] == ["STATE", "CAN_QUEUE", "CMD_PER_LUN", "SG_TABLESIZE"]
    n = min(hosts)
    assert out.splitlines()[1].split()[6:] == ["running", str(hosts[n]["can_queue"]), str(hosts[n]["cmd_per_lun"]),
                                               str(hosts[n]["sg_tablesize"])]


def test_list_hosts_refuses_what_it_does_not_take(capsys, sg_devices):
    code, out, err = run(capsys, "list", "--hosts", "--json", "--bogus")
    assert code == EXIT_USAGE and json.loads(out)["error"]["type"] == "UsageError"
