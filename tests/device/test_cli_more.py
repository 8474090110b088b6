"""More of the sgpy command line on sandbox devices: ``list --hosts`` (lsscsi -H), ``tur --count``
(sg_turs -n), ``opcodes --opcode`` (sg_opcodes -o), ``logs --all`` (sg_logs -a) and ``info``
(smartctl -i): their output, their JSON keys and their exit status."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from sgpy.cli import EXIT_OK, EXIT_USAGE

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run, run_json  # noqa: E402


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


# -- tur --count ----------------------------------------------------------------------


TUR_KEYS = {"device", "count", "sent", "ready", "ready_count", "not_ready_count", "interrupted", "seconds",
            "mean_ms", "min_ms", "max_ms", "commands_per_second", "failures"}


def test_tur_count_sends_n_and_times_them(capsys, sg_device):
    doc = run_json(capsys, "tur", sg_device, "--count", 200)
    assert set(doc) == TUR_KEYS
    assert doc["device"] == sg_device and doc["count"] == doc["sent"] == doc["ready_count"] == 200
    assert doc["ready"] is True and doc["not_ready_count"] == 0 and doc["failures"] == []
    assert doc["interrupted"] is False
    assert 0 < doc["min_ms"] <= doc["mean_ms"] <= doc["max_ms"] < 1000 * doc["seconds"]
    assert doc["mean_ms"] * 200 <= doc["seconds"] * 1000 * 1.01  # the per-command times fit in the total
    assert doc["commands_per_second"] == pytest.approx(200 / doc["seconds"], rel=0.01)
    code, out, _ = run(capsys, "tur", sg_device, "-n", 3)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"{sg_device}: 3 TEST UNIT READY: 3 ready, 0 not ready"
    assert [line.split()[0] for line in lines[1:]] == ["total", "per", "rate"]


def test_tur_count_is_counted_by_the_log_of_commands(capsys, sg_device):
    code, _, err = run(capsys, "tur", sg_device, "--count", 7, "-v")
    assert code == EXIT_OK
    assert len([line for line in err.splitlines() if "TestUnitReady" in line]) == 7


@pytest.fixture
def stopped(sg_device):
    """The device stopped with START STOP UNIT (scsi_debug then answers TEST UNIT READY with NOT READY,
    initializing command required: 04h/02h); started again afterwards."""
    from sgpy import command, safety
    from sgpy.channel import Channel

    with Channel.from_path(sg_device, policy=safety.READ_ONLY) as ch:
        ch.execute(command.StartStopUnit(start=0))
    try:
        yield sg_device
    finally:
        with Channel.from_path(sg_device, policy=safety.READ_ONLY) as ch:
            ch.execute(command.StartStopUnit(start=1))


def test_tur_count_on_a_stopped_unit_counts_not_ready_and_exits_3(capsys, stopped):
    from sgpy.cli import EXIT_DEVICE_ERROR

    code, out, err = run(capsys, "tur", stopped, "--count", 5, "--json")
    assert code == EXIT_DEVICE_ERROR, err
    doc = json.loads(out)
    assert doc["sent"] == doc["not_ready_count"] == 5 and doc["ready_count"] == 0 and doc["ready"] is False
    [failure] = doc["failures"]
    assert failure["count"] == 5 and failure["type"] == "NotReady"
    assert (failure["sense"]["asc"], failure["sense"]["ascq"]) == (0x04, 0x02)
    code, out, _ = run(capsys, "tur", stopped, "--count", 2)
    assert code == EXIT_DEVICE_ERROR
    assert out.splitlines()[0] == f"{stopped}: 2 TEST UNIT READY: 0 ready, 2 not ready"
    assert out.splitlines()[-1].startswith("  not ready 2x: NOT READY")


@pytest.mark.parametrize("bad", ["0", "-1", "100000001", "many", "1.5", ""])
def test_tur_count_refuses_a_bad_count_before_opening(capsys, bad):
    code, out, err = run(capsys, "tur", "/dev/nonexistent-sg", "--count", bad, "--json")
    assert code == EXIT_USAGE, err
    assert json.loads(out)["error"]["type"] == "UsageError" and "--count" in err


def test_tur_count_ctrl_c_shows_what_was_measured_and_exits_130(sg_device):
    import os
    import signal
    import sys
    import time

    from sgpy.cli import EXIT_INTERRUPTED

    proc = subprocess.Popen([sys.executable, "-m", "sgpy", "tur", sg_device, "--count", "100000000", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Ctrl-C once the commands run: the child has the device open (a busy machine may take seconds to start it)
    deadline = time.monotonic() + 60

    def has_device_open() -> bool:
        try:  # the child opens and closes files as it starts: an fd listed may be gone when read
            return any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == sg_device
                       for fd in os.listdir(f"/proc/{proc.pid}/fd"))
        except FileNotFoundError:
            return False

    while not has_device_open():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and "interrupted" in err
    assert 0 < doc["sent"] == doc["ready_count"] < 100000000 and doc["ready"] is True


# -- opcodes --opcode -------------------------------------------------------------------

ONE_KEYS = {"device", "opcode", "service_action", "reporting_options", "name", "risk", "supported", "support",
            "support_code", "cdb_length", "cdb_usage", "mlu", "cdlp", "timeouts", "truncated"}


def sg_opcodes_usage(dev, *options):
    """The "Usage data" bytes sg_opcodes -o prints, or None when it prints none."""
    text = subprocess.run(["sg_opcodes", *options, dev], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Usage data: ([0-9a-f ]+)", text)
    return None if m is None else m.group(1).split()


needs_sg_opcodes = pytest.mark.skipif(shutil.which("sg_opcodes") is None, reason="sg3_utils is not installed")


@needs_sg_opcodes
@pytest.mark.parametrize("op, sa, name", [(0x28, None, "Read10"), (0x12, None, "Inquiry"),
                                          (0x9E, 0x10, "ReadCapacity16"), (0x2A, None, "Write10")])
def test_opcodes_one_command_agrees_with_sg_opcodes_o(capsys, sg_device, op, sa, name):
    argv = ["opcodes", sg_device, "--opcode", hex(op)] + ([] if sa is None else ["--service-action", hex(sa)])
    doc = run_json(capsys, *argv)
    assert set(doc) == ONE_KEYS
    assert (doc["opcode"], doc["service_action"], doc["name"]) == (op, sa, name)
    assert doc["reporting_options"] == (1 if sa is None else 2)
    assert doc["supported"] is True and doc["support"] == "supported" and doc["support_code"] == 3
    theirs = sg_opcodes_usage(sg_device, "-o", hex(op), *([] if sa is None else ["-s", hex(sa)]))
    assert bytes.fromhex(doc["cdb_usage"]).hex(" ").split() == theirs
    assert doc["cdb_length"] == len(theirs) and bytes.fromhex(doc["cdb_usage"])[0] == op
    assert doc["risk"] == ("data-changing" if op == 0x2A else "read")
    code, out, _ = run(capsys, *argv)
    assert code == EXIT_OK
    lines = out.splitlines()
    which = f"opcode {op:02X}h" + ("" if sa is None else f", service action {sa:04X}h")
    assert lines[0] == f"{sg_device}: {name} ({which}): supported"
    assert any(re.fullmatch(r"  CDB usage\s+" + " ".join(theirs), line) for line in lines)
    assert sum(line.startswith("    byte ") for line in lines) == len(theirs) - 1


@needs_sg_opcodes
def test_opcodes_one_command_hex_is_sg_opcodes_h(capsys, sg_device):
    code, out, _ = run(capsys, "opcodes", sg_device, "-o", "0x9e", "-s", "0x10", "--hex")
    assert code == EXIT_OK
    ours = [b for line in out.splitlines() for b in line.split()[1:17] if re.fullmatch(r"[0-9a-f]{2}", b)]
    text = subprocess.run(["sg_opcodes", "-o", "0x9e", "-s", "0x10", "-H", sg_device], check=True,
                          capture_output=True, text=True).stdout
    theirs = [b for line in text.splitlines() for b in line.split()[1:]]
    assert ours == theirs and ours[:4] == ["00", "03", "00", "10"]


def test_opcodes_one_command_not_supported(capsys, sg_device):
    doc = run_json(capsys, "opcodes", sg_device, "--opcode", "0x02")
    assert doc["supported"] is False and doc["support"] == "not_supported" and doc["support_code"] == 1
    assert doc["cdb_usage"] is None and doc["cdb_length"] is None
    code, out, _ = run(capsys, "opcodes", sg_device, "--opcode", "2")
    assert code == EXIT_OK and out.splitlines()[0].endswith("(opcode 02h): not supported")


def test_opcodes_one_command_refused_is_a_device_error(capsys, sg_device):
    from sgpy.cli import EXIT_DEVICE_ERROR

    # READ(10) has no service actions: REPORTING OPTIONS 010b about it is an invalid field (SPC-5 6.35.2)
    code, out, err = run(capsys, "opcodes", sg_device, "--opcode", "0x28", "--service-action", "3", "--json")
    assert code == EXIT_DEVICE_ERROR
    assert json.loads(out)["error"]["type"] == "IllegalRequest"
    # READ CAPACITY(16) has: 001b about its opcode alone is refused, and the message says what to give
    code, _, err = run(capsys, "opcodes", sg_device, "--opcode", "0x9e")
    assert code == EXIT_DEVICE_ERROR and "give --service-action" in err


@pytest.mark.parametrize("argv", [["--opcode", "256"], ["--opcode", "-1"], ["--opcode", "x"],
                                  ["--opcode", "0x9e", "--service-action", "0x10000"],
                                  ["--service-action", "0x10"]])
def test_opcodes_one_command_refuses_bad_arguments_before_opening(capsys, argv):
    code, out, err = run(capsys, "opcodes", "/dev/nonexistent-sg", *argv, "--json")
    assert code == EXIT_USAGE, err
    assert json.loads(out)["error"]["type"] == "UsageError"


# -- logs --all --------------------------------------------------------------------------


def sg_logs_pages(dev):
    """The (page, subpage) pairs ``sg_logs -p 0,0xff`` lists, without 00h and the lists of subpages (xxh/FFh)."""
    text = subprocess.run(["sg_logs", "-p", "0,0xff", dev], check=True, capture_output=True, text=True).stdout
    pairs = [(int(p, 16), int(s or "0", 16)) for p, s in re.findall(r"^\s+0x([0-9a-f]{2})(?:,0x([0-9a-f]{2}))?",
                                                                       text, re.M)]
    return [(p, s) for p, s in pairs if p != 0 and s != 0xFF]


@pytest.mark.skipif(shutil.which("sg_logs") is None, reason="sg3_utils is not installed")
def test_logs_all_reads_every_page_the_device_lists(capsys, sg_device):
    doc = run_json(capsys, "logs", sg_device, "--all")
    assert set(doc) == {"device", "subpages", "supported", "pages"}
    theirs = sg_logs_pages(sg_device)
    assert doc["subpages"] is True and len(theirs) >= 3
    assert [(p["page"], p["subpage"]) for p in doc["supported"]] == theirs
    assert [(p["page"], p["subpage"]) for p in doc["pages"]] == theirs
    for p in doc["pages"]:
        assert set(p) == {"page", "subpage", "name", "data", "error"} and p["error"] is None
        # each page as 'sgpy logs DEV PAGE --subpage N' gives it alone
        one = run_json(capsys, "logs", sg_device, hex(p["page"]), "--subpage", p["subpage"])
        assert one["data"] == p["data"] and one["name"] == p["name"]
    by_page = {(p["page"], p["subpage"]): p for p in doc["pages"]}
    assert by_page[(0x0D, 0)]["name"] == "Temperature page" and by_page[(0x0D, 0)]["data"]["temperature"] == 38
    assert by_page[(0x2F, 0)]["data"]["asc"] == 0
    code, out, _ = run(capsys, "logs", sg_device, "-a")
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{sg_device}: {len(theirs)} log page(s)"
    assert "Temperature page (page 0Dh)" in out.splitlines() and "Log page 0Dh/01h (page 0Dh, subpage 01h)" in out


def test_logs_all_reports_a_page_that_fails_and_goes_on(capsys, sg_device, scsi_debug):
    from sgpy.cli import EXIT_DEVICE_ERROR

    scsi_debug.set(opts=4, every_nth=2)  # drop every second command: the list is read, then a page is not
    try:
        code, out, err = run(capsys, "logs", sg_device, "--all", "--timeout", "1", "--json")
    finally:
        scsi_debug.set(every_nth=0)
        scsi_debug.set(opts=0)
    assert code == EXIT_DEVICE_ERROR, err
    doc = json.loads(out)
    failed = [p for p in doc["pages"] if p["error"] is not None]
    read = [p for p in doc["pages"] if p["error"] is None]
    assert failed and read and len(doc["pages"]) == len(doc["supported"])
    assert all(p["error"]["type"] == "CommandTimeout" and p["data"] is None and p["name"] is None for p in failed)
    assert all(p["data"]["page_code"] == p["page"] for p in read)
    scsi_debug.set(opts=4, every_nth=2)
    try:
        code, out, err = run(capsys, "logs", sg_device, "--all", "--timeout", "1")
    finally:
        scsi_debug.set(every_nth=0)
        scsi_debug.set(opts=0)
    assert code == EXIT_DEVICE_ERROR, err
    lines = out.splitlines()
    assert re.fullmatch(rf"{sg_device}: {len(doc['supported'])} log page\(s\), [1-9]\d* not read", lines[0])
    not_read = [line for line in lines if ": not read: " in line]
    assert not_read and all(re.match(r"Log page [0-9A-F]{2}h(/[0-9A-F]{2}h)? \(page ", line) for line in not_read)


@pytest.mark.parametrize("argv", [["temp", "--all"], ["--all", "--subpage", "1"], ["--all", "--hex"],
                                  ["--all", "--raw"]])
def test_logs_all_refuses_a_page_or_the_bytes(capsys, sg_device, argv):
    code, _, err = run(capsys, "logs", sg_device, *argv)
    assert code == EXIT_USAGE, err


# -- info ---------------------------------------------------------------------------------

INFO_KEYS = {"device", "vendor", "product", "revision", "serial", "device_type", "device_type_name", "scsi_version",
             "version_code", "capacity_bytes", "blocks", "logical_block_size", "physical_block_size", "lbpme",
             "lbprz", "provisioning", "protect", "protection_type", "rotation_rate", "rotation_rpm",
             "non_rotating", "form_factor", "wwn", "transport", "protocol", "write_protect", "vpd_pages"}


def smartctl_i(node):
    """``smartctl -i -j``: its JSON answer."""
    done = subprocess.run(["smartctl", "-i", "-j", node], capture_output=True, text=True)
    return json.loads(done.stdout)


def rows_of(out):
    return {k: v.strip() for k, v in (line.strip().split("  ", 1) for line in out.splitlines()[1:])}


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="smartmontools is not installed")
def test_info_agrees_with_smartctl_i(capsys, sg_device):
    import sgpy

    dev = sgpy.find(sg_device)
    doc = run_json(capsys, "info", sg_device)
    assert set(doc) == INFO_KEYS
    theirs = smartctl_i(dev.device_node)
    assert (doc["vendor"], doc["product"], doc["revision"], doc["serial"]) == \
        (theirs["scsi_vendor"], theirs["scsi_product"], theirs["scsi_revision"], theirs["serial_number"])
    assert doc["scsi_version"] == theirs["scsi_version"] == "SPC-5"
    assert (doc["capacity_bytes"], doc["blocks"], doc["logical_block_size"]) == \
        (theirs["user_capacity"]["bytes"], theirs["user_capacity"]["blocks"], theirs["logical_block_size"])
    assert doc["device_type"] == theirs["device_type"]["scsi_value"] and doc["device_type_name"] == "disk"
    assert doc["wwn"] == "naa." + theirs["logical_unit_id"][2:]
    assert theirs["rotation_rate"] == 0 and doc["non_rotating"] is True and doc["rotation_rate"] == 1
    assert theirs["form_factor"]["scsi_value"] == 5 and doc["form_factor"] == "less than 1.8 inch"
    assert theirs["scsi_lb_provisioning"]["name"] == "fully provisioned" and doc["provisioning"] == "full"
    assert theirs["scsi_transport_protocol"]["name"].startswith("SAS") and doc["protocol"] == "SAS"
    # and what sysfs says of it, as 'sgpy list' shows it
    assert (doc["transport"], doc["wwn"], doc["serial"], doc["capacity_bytes"]) == \
        (dev.transport, dev.wwn, dev.serial, dev.size_bytes) == ("pseudo", dev.wwn, dev.serial, dev.size_bytes)
    assert doc["write_protect"] is False and doc["protection_type"] == 0 and doc["lbpme"] is False
    code, out, _ = run(capsys, "info", sg_device)
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{sg_device}: Linux scsi_debug {doc['revision']}"
    rows = rows_of(out)
    assert list(rows) == ["vendor", "product", "revision", "serial number", "device type", "SCSI version",
                          "capacity", "logical block size", "physical block size", "provisioning", "protection",
                          "rotation rate", "form factor", "WWN", "transport", "protocol", "write protect"]
    assert rows["capacity"] == f"{doc['capacity_bytes']} bytes (67.1MB, 64.0 MiB)"
    assert rows["rotation rate"] == "non-rotating (solid state)" and rows["write protect"] == "no"
    assert rows["provisioning"] == "full (LBPME=0 LBPRZ=0)" and rows["protection"] == "none"


@pytest.mark.scsi_debug(lbpu=1, lbpws=1, lbprz=1, sector_size=4096, physblk_exp=1, dif=1, dix=0, wp=1, num_tgts=1)
def test_info_shows_thin_provisioning_protection_and_write_protect(capsys, sg_device):
    doc = run_json(capsys, "info", sg_device)
    assert (doc["logical_block_size"], doc["physical_block_size"]) == (4096, 8192)
    # scsi_debug's VPD page B2h says PROVISIONING TYPE 000b ("not reported or fully provisioned"): with
    # LBPME set it is not fully provisioned, so the type is not reported
    assert doc["lbpme"] is True and doc["lbprz"] is True and doc["provisioning"] == "not reported"
    assert doc["protect"] is True and doc["protection_type"] == 1
    assert doc["write_protect"] is True
    rows = rows_of(run(capsys, "info", sg_device)[1])
    assert rows["provisioning"] == "not reported (LBPME=1 LBPRZ=1)" and rows["protection"] == "type 1"
    assert rows["write protect"] == "yes" and rows["physical block size"] == "8192 bytes"


def test_info_of_no_device_is_status_4(capsys):
    from sgpy.cli import EXIT_NO_DEVICE

    code, out, err = run(capsys, "info", "/dev/nonexistent-sg", "--json")
    assert code == EXIT_NO_DEVICE and json.loads(out)["error"]["type"] == "NoSuchDevice"
