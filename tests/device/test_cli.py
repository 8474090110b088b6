"""The sgpy command line on sandbox devices: every verb, its JSON keys, its exit codes."""

import ctypes
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from sgpy.cli import (
    EXIT_DEVICE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NO_DEVICE,
    EXIT_OK,
    EXIT_PERMISSION,
    EXIT_REFUSED,
    main,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run, run_json  # noqa: E402

BLOCK = 512


@pytest.fixture
def dev(sg_device):
    return sg_device


def blocks_of(scsi_debug):
    return int(scsi_debug.params.get("dev_size_mb", 64)) * 1024 * 1024 // BLOCK


def test_list(capsys, sg_devices):
    code, out, _ = run(capsys, "list")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SG", "H:C:T:L", "TYPE"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == sg_devices
    assert all(r[2] == "disk" and r[3] == "Linux" and r[4] == "scsi_debug" and r[-1] == "rw" for r in rows)
    assert all(r[6].startswith("/dev/sd") for r in rows)
    doc = run_json(capsys, "list")
    assert [d["path"] for d in doc["devices"]] == sg_devices
    d = doc["devices"][0]
    assert set(d) == {"path", "name", "hctl", "host", "channel", "target", "lun", "type", "type_name", "vendor",
                      "model", "revision", "device_node", "accessible", "state", "size_bytes", "logical_block_size",
                      "serial", "wwn", "transport", "transport_address", "host_driver", "queue_depth"}
    assert d["type_name"] == "disk" and d["accessible"] is True and d["state"] == "running"


def test_inq(capsys, dev):
    code, out, _ = run(capsys, "inq", dev)
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{dev}: Linux scsi_debug " + out.splitlines()[0].split()[-1]
    assert "peripheral type       disk (00h)" in out
    doc = run_json(capsys, "inq", dev)
    assert set(doc) == {"device", "page", "page_name", "data", "raw"}
    assert doc["page"] is None and doc["page_name"] is None and doc["device"] == dev
    assert doc["data"]["vendor"] == "Linux" and doc["data"]["product"] == "scsi_debug"
    assert doc["data"]["peripheral_device_type"] == "DISK"
    assert bytes.fromhex(doc["raw"])[8:16] == b"Linux   "


@pytest.mark.parametrize(
    "page, name, check",
    [
        ("0x83", "Device identification", lambda d: any(x["designator_type"] == "NAA" for x in d["designators"])),
        ("di", "Device identification", lambda d: len(d["designators"]) >= 2),
        ("0", "Supported VPD pages", lambda d: 0x83 in d["pages"] and 0x80 in d["pages"]),
        ("sn", "Unit serial number", lambda d: d["serial"]),
        ("0xb0", "Block limits", lambda d: d["maximum_transfer_length"] > 0),
        ("0xb1", "Block device characteristics", lambda d: "medium_rotation_rate" in d),
    ],
)
def test_inq_vpd(capsys, dev, page, name, check):
    code, out, _ = run(capsys, "inq", dev, "--vpd", page)
    assert code == EXIT_OK
    assert out.splitlines()[0].startswith(f"{dev}: {name} (VPD page ")
    doc = run_json(capsys, "inq", dev, "--vpd", page)
    assert doc["page"] == int(page, 0) if page[0].isdigit() else True
    assert doc["page_name"] == name
    assert check(doc["data"])


def test_inq_vpd_83_human(capsys, dev):
    code, out, _ = run(capsys, "inq", dev, "--vpd", "0x83")
    assert code == EXIT_OK
    assert "logical unit: NAA" in out and "target port:" in out and "designator type" in out
    import sgpy

    wwn = sgpy.find(dev).wwn
    assert out.splitlines()[1] == f"  WWN: {wwn}"
    assert run_json(capsys, "inq", dev, "--vpd", "0x83")["data"]["wwn"] == wwn


def test_a_block_device_or_address_maps_to_its_sg_node(capsys, sg_devices):
    from sgpy import devices

    for d in devices():
        doc = run_json(capsys, "inq", d.device_node)
        assert doc["device"] == d.path
        doc = run_json(capsys, "tur", d.hctl)
        assert doc == {"device": d.path, "ready": True}


def test_readcap(capsys, dev, scsi_debug):
    n = blocks_of(scsi_debug)
    code, out, _ = run(capsys, "readcap", dev)
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{dev}: {n} blocks of 512 bytes = {n * BLOCK / 2**20:.1f} MiB"
    assert f"last LBA             {n - 1}" in out
    doc = run_json(capsys, "readcap", dev)
    assert doc == {"device": dev, "last_lba": n - 1, "blocks": n, "block_size": BLOCK, "capacity_bytes": n * BLOCK,
                   "physical_block_size": BLOCK, "lowest_aligned_lba": 0, "protection_type": 0, "lbpme": False,
                   "lbprz": False}


def test_luns_and_tur(capsys, dev):
    code, out, _ = run(capsys, "luns", dev)
    assert code == EXIT_OK and "1 LUN(s)" in out and "0000000000000000" in out
    doc = run_json(capsys, "luns", dev)
    assert set(doc) == {"device", "select_report", "luns"}
    assert doc["luns"][0]["lun"] == 0 and doc["luns"][0]["raw"] == "00" * 8 and "levels" in doc["luns"][0]
    code, out, _ = run(capsys, "tur", dev)
    assert code == EXIT_OK and out == f"{dev}: ready\n"
    assert run_json(capsys, "tur", dev) == {"device": dev, "ready": True}


def test_opcodes(capsys, dev):
    code, out, _ = run(capsys, "opcodes", dev)
    assert code == EXIT_OK
    assert out.splitlines()[1].split() == ["OP", "SA", "CDB", "RISK", "NAME"]
    doc = run_json(capsys, "opcodes", dev)
    assert set(doc) == {"device", "commands"}
    rows = {(c["opcode"], c["service_action"]): c for c in doc["commands"]}
    assert set(rows[(0x12, None)]) == {"opcode", "service_action", "cdb_length", "name", "risk"}
    assert rows[(0x12, None)]["name"] == "Inquiry" and rows[(0x12, None)]["risk"] == "read"
    assert rows[(0x8A, None)]["risk"] == "data-changing"
    assert rows[(0x9E, 0x10)]["name"] == "ReadCapacity16" and rows[(0x9E, 0x10)]["cdb_length"] == 16


def test_modes(capsys, dev):
    code, out, _ = run(capsys, "modes", dev)
    assert code == EXIT_OK
    assert "Caching page (page 08h)" in out and "wce" in out and "Control page (page 0Ah)" in out
    doc = run_json(capsys, "modes", dev)
    assert set(doc) == {"device", "page", "subpage", "pc", "medium_type", "device_specific_parameter",
                        "write_protect", "block_descriptors", "pages"}
    codes = [p["page_code"] for p in doc["pages"]]
    assert 0x08 in codes and 0x0A in codes
    caching = next(p for p in doc["pages"] if p["page_code"] == 0x08)
    assert set(caching) == {"page_code", "subpage_code", "name", "fields"}
    assert caching["name"] == "Caching page" and "wce" in caching["fields"]
    one = run_json(capsys, "modes", dev, "8")
    assert [p["page_code"] for p in one["pages"]] == [8] and one["page"] == 8
    assert run_json(capsys, "modes", dev, "8", "--pc", "changeable")["pc"] == "changeable"


def test_logs(capsys, dev):
    code, out, _ = run(capsys, "logs", dev)
    assert code == EXIT_OK and "Supported log pages (page 00h)" in out and "0Dh" in out
    doc = run_json(capsys, "logs", dev)
    assert set(doc) == {"device", "page", "subpage", "name", "data"}
    assert 0x0D in doc["data"]["pages"]
    code, out, _ = run(capsys, "logs", dev, "0x0d")
    assert code == EXIT_OK and "Temperature page (page 0Dh)" in out and "temperature" in out
    temp = run_json(capsys, "logs", dev, "0x0d")
    assert temp["name"] == "Temperature page" and temp["data"]["temperature"] is not None
    assert all(set(p) == {"parameter_code", "control", "value"} for p in temp["data"]["parameters"])


# verb arguments: each shows one response, decoded, in hex or in binary
DUMPED = [["inq"], ["inq", "--vpd", "di"], ["vpd"], ["vpd", "serial"], ["readcap"], ["luns"], ["opcodes"],
          ["modes"], ["modes", "caching"], ["logs"], ["logs", "temp"]]


def unhex(text):
    """The bytes of a --hex dump: each line's offset, then the 16 bytes; the ASCII column is left out."""
    data = b""
    for line in text.splitlines():
        offset, rest = line[:4], line[6:6 + 48]
        assert int(offset, 16) == len(data), line
        data += bytes.fromhex(rest)
    return data


@pytest.mark.parametrize("argv", DUMPED, ids=[" ".join(a) for a in DUMPED])
def test_hex_and_raw_give_the_bytes_of_the_response(capsysbinary, dev, argv):
    code = main([argv[0], dev, *argv[1:], "--raw"])
    raw = capsysbinary.readouterr().out
    assert code == EXIT_OK and raw
    code = main([argv[0], dev, *argv[1:], "--hex"])
    text = capsysbinary.readouterr().out.decode()
    assert code == EXIT_OK
    assert unhex(text) == raw
    assert all(len(line) <= 6 + 48 + 2 + 16 for line in text.splitlines())
    if argv[0] in ("inq", "vpd"):  # the same bytes JSON gives as "raw"
        code = main([argv[0], dev, *argv[1:], "--json"])
        assert code == EXIT_OK
        assert bytes.fromhex(json.loads(capsysbinary.readouterr().out)["raw"]) == raw


def test_raw_inquiry_holds_the_vendor(capsysbinary, dev):
    assert main(["inq", dev, "--raw"]) == EXIT_OK
    raw = capsysbinary.readouterr().out
    assert raw[8:16] == b"Linux   " and raw[16:26] == b"scsi_debug"


@pytest.mark.parametrize("verb, name, number", [
    ("vpd", "serial", "0x80"), ("vpd", "SN", "128"), ("vpd", "di", "0x83"), ("vpd", "Block_Limits", "0xb0"),
    ("modes", "caching", "8"), ("modes", "CA", "0x08"), ("modes", "co", "0x0a"), ("modes", "rw", "1"),
    ("logs", "temperature", "0x0d"), ("logs", "temp", "13"), ("logs", "ie", "0x2f"), ("logs", "sp", "0"),
])
def test_a_page_by_name_is_the_page_by_number(capsys, dev, verb, name, number):
    by_name = run_json(capsys, verb, dev, name)
    by_number = run_json(capsys, verb, dev, number)
    assert by_name == by_number


def test_inq_vpd_by_name_and_vpd_verb_agree(capsys, dev):
    assert run_json(capsys, "inq", dev, "--vpd", "serial") == run_json(capsys, "vpd", dev, "sn")
    assert run_json(capsys, "vpd", dev)["page"] == 0  # the supported pages, as sg_vpd


def test_raw_inquiry(capsys, dev):
    code, out, _ = run(capsys, "raw", dev, "12 00 00 00 24 00", "--in", "36")
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{dev}: 12 00 00 00 24 00 (Inquiry, read): status GOOD"
    assert "Linux" in out and "received 36 bytes" in out
    doc = run_json(capsys, "raw", dev, "120000002400", "--in", "36")
    assert set(doc) == {"device", "cdb", "name", "risk", "direction", "status", "resid", "duration_ms", "sent",
                        "received", "data"}
    assert doc["risk"] == "read" and doc["direction"] == "from_device" and doc["received"] == 36
    assert bytes.fromhex(doc["data"])[8:13] == b"Linux"


def test_raw_refuses_and_allows(capsys, dev, tmp_path):
    block = tmp_path / "block"
    block.write_bytes(b"\xab" * BLOCK)
    write10 = "2a 00 00 00 00 07 00 00 01 00"  # WRITE(10) LBA 7, one block
    code, _, err = run(capsys, "raw", dev, write10, "--out", block)
    assert code == EXIT_REFUSED and "--allow-data-loss" in err
    doc = run_json(capsys, "raw", dev, write10, "--out", block, "--allow-data-loss")
    assert doc["risk"] == "data-changing" and doc["sent"] == BLOCK and doc["status"] == 0
    doc = run_json(capsys, "raw", dev, "28 00 00 00 00 07 00 00 01 00", "--in", BLOCK)
    assert bytes.fromhex(doc["data"]) == b"\xab" * BLOCK
    # irreversible: refused even with --allow-data-loss; nothing reaches the device
    code, _, err = run(capsys, "raw", dev, "04 00 00 00 00 00", "--allow-data-loss")
    assert code == EXIT_REFUSED and "--allow-irreversible" in err
    code, _, err = run(capsys, "raw", dev, "c0 00 00 00 00 00 00 00 00 00", "--allow-data-loss")
    assert code == EXIT_REFUSED and "irreversible" in err
    # allowed, a vendor-specific code reaches the device, which refuses it
    code, _, err = run(capsys, "raw", dev, "c0 00 00 00 00 00 00 00 00 00", "--allow-irreversible")
    assert code == EXIT_DEVICE_ERROR and "ILLEGAL REQUEST" in err


def test_device_error_exit_3_with_the_decoded_sense(capsys, dev, scsi_debug):
    beyond = blocks_of(scsi_debug) + 10
    code, out, err = run(capsys, "raw", dev, f"88 00 {beyond:016x} 00 00 00 01 00 00", "--in", BLOCK)
    assert code == EXIT_DEVICE_ERROR and out == ""
    assert "ILLEGAL REQUEST" in err and "Logical block address out of range" in err
    assert "ASC 21h, ASCQ 00h" in err and "sense bytes: 70" in err
    code, out, err = run(capsys, "raw", dev, f"88 00 {beyond:016x} 00 00 00 01 00 00", "--in", BLOCK, "--json")
    assert code == EXIT_DEVICE_ERROR
    doc = json.loads(out)["error"]
    assert set(doc) >= {"exit_code", "type", "message", "device", "command", "status", "host_status",
                        "driver_status", "sense", "sense_bytes"}
    assert doc["exit_code"] == EXIT_DEVICE_ERROR and doc["type"] == "IllegalRequest"
    assert doc["command"] == "RawCommand"
    assert doc["status"] == 2 and doc["sense"]["asc"] == 0x21 and doc["sense"]["sense_key"] == "ILLEGAL_REQUEST"


def test_read_and_write_an_lba_range(capsys, dev, tmp_path):
    data = os.urandom(300 * BLOCK)
    src = tmp_path / "src"
    src.write_bytes(data)
    code, _, err = run(capsys, "write", dev, "--lba", 1000, "-i", src)
    assert code == EXIT_REFUSED and "--allow-data-loss" in err
    # small chunks: several commands, several batches
    doc = run_json(capsys, "write", dev, "--lba", 1000, "-i", src, "--allow-data-loss", "--chunk", "16k")
    assert set(doc) == {"device", "lba", "count", "block_size", "bytes", "input", "seconds"}
    assert doc["count"] == 300 and doc["bytes"] == len(data) and doc["block_size"] == BLOCK
    dst = tmp_path / "dst"
    doc = run_json(capsys, "read", dev, "--lba", 1000, "--count", 300, "-o", dst, "--chunk", "8k")
    assert set(doc) == {"device", "lba", "count", "block_size", "bytes", "output", "seconds"}
    assert dst.read_bytes() == data
    code, out, _ = run(capsys, "read", dev, "--lba", 1010, "--count", 2, "-o", dst)
    assert code == EXIT_OK and "read 2 block(s) from LBA 1010" in out
    assert dst.read_bytes() == data[10 * BLOCK : 12 * BLOCK]
    part = run_json(capsys, "write", dev, "--lba", 5, "--count", 1, "-i", src, "--allow-data-loss")
    assert part["count"] == 1
    odd = tmp_path / "odd"
    odd.write_bytes(b"x" * 100)
    code, _, err = run(capsys, "write", dev, "-i", odd, "--allow-data-loss")
    assert code == 2 and "not a multiple of the block size 512" in err


def test_read_to_stdout(capsysbinary, dev):
    code = main(["read", dev, "--lba", "0", "--count", "2", "-o", "-"])
    assert code == EXIT_OK
    assert len(capsysbinary.readouterr().out) == 2 * BLOCK


@pytest.mark.parametrize(
    "argv",
    [
        ["--rw", "randread"],
        ["--rw", "read", "--qd", "4", "--bs", "64k"],
        ["--rw", "randwrite", "--allow-data-loss", "--channels", "2", "--qd", "8"],
        ["--rw", "write", "--allow-data-loss", "--bs", "8k"],
    ],
)
def test_bench_json(capsys, dev, argv):
    doc = run_json(capsys, "bench", dev, "--seconds", "0.3", *argv)
    assert set(doc) == {"device", "identity", "sgpy_version", "timestamp", "interrupted", "rw", "bs", "qd",
                        "channels", "rwmixread", "rate_iops", "offset", "size", "engine", "job_engine", "seconds",
                        "ios", "bytes", "errors", "recovered", "short_transfers", "iops", "mb_per_s", "latency_ms",
                        "read", "write"}
    mine, other = ("write", "read") if "write" in doc["rw"] else ("read", "write")
    assert doc[mine]["ios"] == doc["ios"] and doc[other]["ios"] == 0
    assert (doc["offset"], doc["size"]) == (0, 64 << 20) and doc["rwmixread"] is None
    assert doc["identity"]["vendor"] == "Linux" and doc["identity"]["model"] == "scsi_debug"
    assert doc["identity"]["serial"] and doc["identity"]["revision"]
    assert doc["interrupted"] is False and doc["timestamp"].endswith("Z")
    assert set(doc["latency_ms"]) == {"min", "mean", "p50", "p90", "p99", "p999", "max"}
    assert doc["engine"] == "job" and doc["job_engine"] == "c" and doc["errors"] == 0 and doc["short_transfers"] == 0
    assert doc["ios"] > 0 and doc["iops"] > 0 and doc["bytes"] == doc["ios"] * doc["bs"]
    lat = doc["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert 0.3 <= doc["seconds"] < 3


def test_bench_reports_what_its_jobs_counted(capsys, dev, monkeypatch):
    from sgpy.channel import Channel

    jobs = []
    real_run = Channel.run

    def run_and_keep(self, cmd, **options):
        job = real_run(self, cmd, **options)
        jobs.append(job)
        return job

    monkeypatch.setattr(Channel, "run", run_and_keep)
    doc = run_json(capsys, "bench", dev, "--rw", "read", "--seconds", "0.3", "--qd", "6", "--channels", "2")
    assert len(jobs) == 2 and all(job.returned and job.exception is None for job in jobs)
    assert [job.queue_depth for job in jobs] == [3, 3]
    assert [job.command.name for job in jobs] == ["Read16", "Read16"]
    counted = sum(job.stats.commands for job in jobs)
    assert doc["ios"] == counted > 0 and doc["errors"] == 0
    assert doc["bytes"] == counted * 4096
    assert doc["latency_ms"]["max"] == round(max(job.stats.latency.max_ns for job in jobs) / 1e6, 4)


@pytest.mark.parametrize("rw", ["write", "randwrite"])
def test_bench_writes_need_allow_data_loss(capsys, dev, rw):
    code, out, err = run(capsys, "bench", dev, "--rw", rw, "--seconds", "0.1")
    assert code == EXIT_REFUSED and out == ""
    assert "refused" in err and "--allow-data-loss" in err


def test_bench_stamps_then_verifies_and_names_a_bad_block(capsys, dev, tmp_path):
    # 64 KiB writes, in order, over the whole 64 MiB disk: 1024 commands cover it once.
    w = run_json(capsys, "bench", dev, "--rw", "write", "--bs", "64k", "--count", "1024", "--qd", "8",
                 "--stamp", "0x77", "--allow-data-loss")
    assert w["ios"] == 1024 and w["errors"] == 0
    r = run_json(capsys, "bench", dev, "--rw", "randread", "--verify", "0x77", "--seconds", "0.5", "--qd", "8")
    assert r["ios"] > 0 and r["errors"] == 0
    assert run_json(capsys, "bench", dev, "--rw", "read", "--count", "10", "--verify", "0x77")["ios"] == 10
    # A block that lost its data: the read bench stops with status 3 and names it.
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(BLOCK))
    assert run_json(capsys, "write", dev, "--lba", "4242", "-i", zeros, "--allow-data-loss")["count"] == 1
    code, out, err = run(capsys, "bench", dev, "--rw", "read", "--bs", "64k", "--count", "1024", "--qd", "4",
                         "--verify", "0x77")
    assert code == 3 and out == ""
    assert "data mismatch at LBA 4242" in err


@pytest.mark.parametrize("argv, match", [
    (["--rw", "read", "--stamp", "1"], "--stamp marks writes"),
    (["--rw", "write", "--verify", "1", "--allow-data-loss"], "--verify checks reads"),
    (["--stamp", "1", "--verify", "1"], "not allowed with argument"),
])
def test_bench_stamp_and_verify_go_with_their_direction(capsys, dev, argv, match):
    code, out, err = run(capsys, "bench", dev, "--seconds", "0.1", *argv)
    assert code == 2 and match in err


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bench_human_summary_and_live_progress_on_a_terminal(dev):
    out, err = io.StringIO(), Terminal()
    code = main(["bench", dev, "--seconds", "1.2", "--qd", "8"], stdout=out, stderr=err)
    assert code == EXIT_OK, err.getvalue()
    live = err.getvalue()
    assert "\r" in live and " IOPS " in live and " MB/s " in live
    assert re.search(r"\r +\d+\.\d% done  ETA +0:0\d ", live)  # percent done and the time left
    summary = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert summary[0] == f"{dev}: randread bs=4096 qd=8 channels=1 for " + summary[0].rsplit("for ", 1)[1]
    assert [line.split()[0] for line in summary[1:]] == ["IOs", "IOPS", "MB/s", "latency"]
    assert all(word in summary[-1] for word in ("p50", "p99", "p99.9", "max"))
    # without a terminal: no live line, unless asked for with --progress (then beside --json too)
    plain, quiet = io.StringIO(), io.StringIO()
    assert main(["bench", dev, "--seconds", "0.7"], stdout=plain, stderr=quiet) == EXIT_OK
    assert "\r" not in plain.getvalue() and "% done" not in quiet.getvalue()
    asked, told = io.StringIO(), io.StringIO()
    assert main(["bench", dev, "--count", "3000", "--qd", "4", "--rate-iops", "3000", "--progress", "--json"],
                stdout=asked, stderr=told) == EXIT_OK
    assert json.loads(asked.getvalue())["ios"] == 3000
    assert "% done" in told.getvalue() and "ETA" in told.getvalue()


def ctrl_c_once_running(monkeypatch, after=0.4):
    """Send this process a real SIGINT ``after`` seconds into bench's wait for its jobs (from a timer
    thread, as a terminal's Ctrl-C would come); returns the jobs bench started."""
    from sgpy import cli
    from sgpy.channel import Channel

    jobs = []
    real_run, real_progress = Channel.run, cli._bench_progress

    def run_and_keep(self, cmd, **options):
        job = real_run(self, cmd, **options)
        jobs.append(job)
        return job

    def progress_then_ctrl_c(*a, **kw):
        threading.Timer(after, os.kill, (os.getpid(), signal.SIGINT)).start()
        return real_progress(*a, **kw)

    monkeypatch.setattr(Channel, "run", run_and_keep)
    monkeypatch.setattr(cli, "_bench_progress", progress_then_ctrl_c)
    return jobs


def test_bench_ctrl_c_prints_what_it_has_in_json_and_exits_130(capsys, dev, monkeypatch):
    jobs = ctrl_c_once_running(monkeypatch)
    code, out, err = run(capsys, "bench", dev, "--seconds", "60", "--qd", "8", "--channels", "2", "--json")
    assert code == EXIT_INTERRUPTED, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and "interrupted" in err
    assert len(jobs) == 2 and all(job.returned and job.exception is None for job in jobs)
    counted = sum(job.stats.commands for job in jobs)
    assert doc["ios"] == counted > 0 and doc["errors"] == 0 and doc["bytes"] == counted * 4096
    assert 0.3 <= doc["seconds"] < 30  # stopped, not run out
    assert doc["identity"]["model"] == "scsi_debug"


def test_bench_ctrl_c_prints_the_summary_and_exits_130(dev, monkeypatch):
    ctrl_c_once_running(monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    code = main(["bench", dev, "--seconds", "60", "--rw", "read"], stdout=out, stderr=err)
    assert code == EXIT_INTERRUPTED, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{dev}: read bs=4096") and lines[0].endswith("(interrupted)")
    assert [line.split()[0] for line in lines[1:]] == ["IOs", "IOPS", "MB/s", "latency"]
    assert int(lines[1].split()[1]) > 0


def test_bench_block_size_must_fit(capsys, dev):
    code, _, err = run(capsys, "bench", dev, "--bs", "100", "--seconds", "0.1")
    assert code == 2 and "not a multiple of the block size" in err


def _cli():
    return [os.path.join(os.path.dirname(sys.executable), "sgpy")]


@pytest.mark.parametrize("prefix", [_cli(), [sys.executable, "-m", "sgpy"]], ids=["console-script", "python-m"])
def test_through_a_subprocess(prefix, dev, scsi_debug):
    r = subprocess.run(prefix + ["readcap", dev, "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    assert json.loads(r.stdout)["blocks"] == blocks_of(scsi_debug)
    r = subprocess.run(prefix + ["inq", "/dev/sg-none"], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_NO_DEVICE and "no such device" in r.stderr
    r = subprocess.run(prefix + ["raw", dev, "04 00 00 00 00 00"], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_REFUSED
    r = subprocess.run(prefix + ["bogus"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2


def _without_dac_override():
    """Run as root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: file modes apply again.

    (A non-root user cannot run this venv's interpreter, which lives under
    /root; dropping the two capabilities from the bounding set before exec
    gives the same EACCES on a mode-000 node.)
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_permission_denied_exits_5(dev):
    node = "/dev/sgpy-test-noperm"
    os.mknod(node, 0o020000, os.stat(dev).st_rdev)  # a character node for the same sg device
    try:
        os.chmod(node, 0)
        r = subprocess.run([sys.executable, "-m", "sgpy", "inq", node, "--json"], capture_output=True, text=True,
                           preexec_fn=_without_dac_override, timeout=60)
        assert r.returncode == EXIT_PERMISSION, r.stderr
        assert "permission denied" in r.stderr
        assert json.loads(r.stdout)["error"]["exit_code"] == EXIT_PERMISSION
        r = subprocess.run([sys.executable, "-m", "sgpy", "list", "--json"], capture_output=True, text=True,
                           preexec_fn=_without_dac_override, timeout=60)
        assert r.returncode == EXIT_OK
    finally:
        os.unlink(node)


@pytest.mark.parametrize("argv, words", [
    (["inq", "{dev}", "--timeout", "1e12"], "at most 4294967.295 seconds"),
    (["inq", "{dev}", "--timeout", "inf"], "finite"),
    (["tur", "{dev}", "--timeout", "4294968"], "at most 4294967.295 seconds"),
    (["bench", "{dev}", "--bs", "0", "--seconds", "0.1"], "at least 1 byte"),
    (["bench", "{dev}", "--seconds", "inf"], "finite"),
    (["bench", "{dev}", "--seconds", "1e300"], "at most 31536000 seconds"),
])
def test_numbers_that_overflowed_are_usage_errors(capsys, dev, argv, words):
    # These raised OverflowError / ZeroDivisionError once they reached a real device.
    code, out, err = run(capsys, *[a.format(dev=dev) for a in argv], "--json")
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert json.loads(out)["error"]["exit_code"] == 2


def test_a_timeout_under_a_millisecond_still_times_nothing_out(capsys, dev):
    assert run_json(capsys, "tur", dev, "--timeout", "0.0001") == {"device": dev, "ready": True}


@pytest.mark.parametrize("argv, words", [
    (["raw", "{dev}", "12 00 00 00 24", "--in", "36"], "the CDB has 5 byte(s); {dev} takes CDBs of 6 to"),
    (["raw", "{dev}", "12"], "the CDB has 1 byte(s)"),
    (["raw", "{dev}", "00" * 33], "the CDB has 33 byte(s)"),
    (["raw", "{dev}", "00" * 260], "the CDB has 260 byte(s)"),
    (["raw", "{dev}", "12 00 00 00 24 00", "--in", str(1 << 40)], "accepts at most"),
    (["luns", "{dev}", "--select", "256"], "0 to 255"),
])
def test_values_out_of_range_exit_2_not_1(capsys, dev, argv, words):
    code, out, err = run(capsys, *[a.format(dev=dev) for a in argv], "--json")
    assert code == 2, err
    assert words.format(dev=dev) in err and "Traceback" not in err
    assert json.loads(out)["error"]["exit_code"] == 2


def test_raw_sends_a_16_byte_cdb(capsys, dev):
    # READ CAPACITY(16): the longest CDB of the common commands goes through
    doc = run_json(capsys, "raw", dev, "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00", "--in", "32")
    assert doc["status"] == 0 and doc["received"] == 32


#: Address space for a CLI run in the tests below: far less than the guest's memory, so
#: that a CLI which tried to hold its whole input or every command at once fails there
#: (MemoryError) instead of taking the sandbox down with it.
_CLI_MEMORY = 512 << 20


def _limited():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (_CLI_MEMORY, _CLI_MEMORY))


def run_limited(*argv, stdin=subprocess.DEVNULL, input=None, timeout=120):
    """The CLI in a subprocess with a bounded address space: (exit status, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "sgpy", *[str(a) for a in argv]], capture_output=True,
                       stdin=None if input is not None else stdin, input=input, preexec_fn=_limited,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


@pytest.mark.parametrize("argv, code, words", [
    (["read", "{dev}", "--count", 100_000_000_000, "-o", os.devnull], 2, "goes beyond the end of {dev}"),
    (["read", "{dev}", "--lba", "{blocks}", "--count", 1, "-o", os.devnull], 2, "--lba {blocks} is beyond the end"),
    (["read", "{dev}", "--lba", 2**64, "--count", 1, "-o", os.devnull], 2, "is beyond the end of {dev}"),
    (["read", "{dev}", "--lba", "{last}", "--count", 2, "-o", os.devnull], 2, "1 block(s) fit from there"),
    (["write", "{dev}", "-i", "/dev/zero", "--count", 100_000_000_000, "--allow-data-loss"], 2,
     "goes beyond the end of {dev}"),
    (["write", "{dev}", "-i", "/dev/zero", "--lba", "{last}", "--count", 2, "--allow-data-loss"], 2,
     "1 block(s) fit from there"),
    # refused before a byte of the endless input is read
    (["raw", "{dev}", "2a 00 00 00 00 07 00 00 01 00", "--out", "/dev/zero"], 6, "--allow-data-loss"),
    (["raw", "{dev}", "3b 05 00 00 00 00 00 00 10 00", "--out", "/dev/zero", "--allow-data-loss"], 6,
     "--allow-irreversible"),
    # allowed: read up to the transfer limit, and no further
    (["raw", "{dev}", "2a 00 00 00 00 07 00 00 01 00", "--out", "/dev/zero", "--allow-data-loss"], 2,
     "has more than"),
    (["write", "{dev}", "-i", "/dev/zero"], 6, "--allow-data-loss"),
])
def test_arguments_cannot_make_the_cli_run_out_of_memory(dev, scsi_debug, argv, code, words):
    n = blocks_of(scsi_debug)
    fill = {"dev": dev, "blocks": n, "last": n - 1}
    got, out, err = run_limited(*[a.format(**fill) if isinstance(a, str) else a for a in argv], "--json")
    assert got == code, err
    assert words.format(**fill) in err and "Traceback" not in err and "MemoryError" not in err
    assert json.loads(out)["error"]["exit_code"] == code


@pytest.mark.scsi_debug(virtual_gb=4096, num_tgts=1)
def test_read_streams_its_commands(dev):
    # 2**33 blocks of 512 bytes, one command each: as a list they would take far more than the
    # memory allowed; streamed, the first batch is read and its write to /dev/full fails at once.
    got, out, err = run_limited("read", dev, "--count", 2**33, "--chunk", 512, "-o", "/dev/full")
    assert got == 1, err
    assert "No space left on device" in err and "Traceback" not in err and "MemoryError" not in err


def test_write_streams_an_endless_input_for_count_blocks(capsys, dev, tmp_path):
    got, out, err = run_limited("write", dev, "--lba", 2000, "--count", 4096, "-i", "/dev/zero",
                                "--chunk", "64k", "--allow-data-loss", "--json")
    assert got == 0, err
    assert json.loads(out)["count"] == 4096
    dst = tmp_path / "back"
    assert run_json(capsys, "read", dev, "--lba", 2000, "--count", 4096, "-o", dst)["bytes"] == 4096 * BLOCK
    assert dst.read_bytes() == bytes(4096 * BLOCK)


def test_write_from_a_pipe(capsys, dev, tmp_path):
    data = os.urandom(3 * BLOCK)
    got, out, err = run_limited("write", dev, "--lba", 700, "-i", "-", "--allow-data-loss", "--json", input=data)
    assert got == 0, err
    assert json.loads(out)["count"] == 3
    dst = tmp_path / "back"
    run_json(capsys, "read", dev, "--lba", 700, "--count", 3, "-o", dst)
    assert dst.read_bytes() == data
    # a pipe ending in the middle of a block: the whole blocks before it are written, and said so
    got, out, err = run_limited("write", dev, "--lba", 800, "-i", "-", "--allow-data-loss", input=data + b"x" * 100)
    assert got == 2 and "ends in the middle of a block (100 of 512 bytes): 3 block(s) were written" in err
    # shorter than --count
    got, out, err = run_limited("write", dev, "--lba", 800, "--count", 5, "-i", "-", "--allow-data-loss", input=data)
    assert got == 2 and f"ended after {3 * BLOCK} bytes; 5 block(s) need {5 * BLOCK}" in err
    got, out, err = run_limited("write", dev, "-i", "-", "--allow-data-loss", input=b"")
    assert got == 2 and "is empty: nothing to write" in err


def test_write_of_an_endless_input_without_count_stops_at_the_end_of_the_device(dev, scsi_debug):
    n = blocks_of(scsi_debug)
    got, out, err = run_limited("write", dev, "--lba", n - 100, "-i", "/dev/zero", "--allow-data-loss")
    assert got == 2, err
    assert f"goes on past the end of {dev} (100 block(s) from LBA {n - 100}): 100 block(s) were written" in err


#: Every verb with arguments it must refuse: (argv, exit status, words of the message).
#: ``{dev}`` is the sandbox disk, ``{dir}`` a directory, ``{blocks}`` its number of blocks.
BAD_ARGUMENTS = [
    (["list", "extra"], 2, "unrecognized arguments: extra"),
    (["conform"], 2, "required: DEVICE"),
    (["conform", "{dir}/none"], 4, "no such device"),
    (["conform", "{dev}", "--select", "no_check_is_named_this"], 2, "no check matched --select"),
    (["inq"], 2, "required: DEVICE"),
    (["inq", "{dir}"], 4, "is a directory"),
    (["inq", "/dev/zero"], 4, "not an sg or bsg device"),
    (["inq", "{dev}", "--vpd", "0x100"], 2, "0..0xff"),
    (["inq", "{dev}", "--timeout", "1e12"], 2, "at most 4294967.295 seconds"),
    (["inq", "{dev}", "--timeout", "nan"], 2, "finite"),
    (["inq", "{dev}", "--timeout=-5"], 2, "more than 0"),
    (["readcap", "{dir}"], 4, "is a directory"),
    (["readcap", "{dev}", "--timeout", "inf"], 2, "finite"),
    (["luns", "{dev}", "--select", "256"], 2, "0 to 255"),
    (["luns", "{dev}", "--select", "x"], 2, "not a number"),
    (["zones", "{dir}"], 4, "is a directory"),
    (["zones", "{dev}", "--report", "0x40"], 2, "REPORTING OPTIONS is 0 to 0x3f"),
    (["zones", "{dev}", "--report", "opened"], 2, "unknown reporting option 'opened'"),
    (["zones", "{dev}", "--start=-1"], 2, "must not be negative"),
    (["zones", "{dev}", "--maxlen", "32"], 2, "--maxlen is 64 to 4294967295"),
    (["tur", "/dev/sg-none"], 4, "no such device"),
    (["tur", "{dev}", "--timeout", "4294967.296"], 2, "at most 4294967.295 seconds"),
    (["sense", "zz"], 2, "hexadecimal"),
    (["sense", "41 00 00"], 2, "not sense data"),
    (["opcodes", "{dir}"], 4, "is a directory"),
    (["modes", "{dev}", "0x40"], 2, "0..0x3f"),
    (["modes", "{dev}", "--subpage", "256"], 2, "0..0xff"),
    (["modes", "{dev}", "--pc", "future"], 2, "invalid choice"),
    (["modes", "{dev}", "--set", "ca.ic=1", "--allow-data-loss"], 2, "field ic is not changeable"),
    (["health", "{dev}", "--self-test", "medium"], 2, "invalid choice"),
    (["health", "/dev/sg-none"], 4, "no such device"),
    (["health", "{dir}"], 4, "is a directory"),
    (["control", "{dev}", "stop"], 6, "--allow-data-loss"),
    (["control", "{dev}", "sync", "--timeout", "0"], 2, "more than 0"),
    (["control", "{dev}", "unlock", "--immed"], 2, "unlock has none"),
    (["control", "{dev}", "spin-up"], 2, "invalid choice: 'spin-up'"),
    (["control", "{dir}", "start"], 4, "is a directory"),
    (["copy", "{dev}", "{dev}", "--count", "1"], 6, "--allow-data-loss"),
    (["copy", "{dev}", "{dev}", "--count", "1", "--allow-data-loss"], 2, "the ranges overlap"),
    (["copy", "{dev}", "{dir}", "--count", "1", "--allow-data-loss"], 4, "is a directory"),
    (["copy", "{dev}", "{dev}", "--count", "100000000000", "--allow-data-loss"], 2, "goes beyond the end"),
    (["modes", "{dev}", "--set", "ca.wce=0"], 6, "--allow-data-loss"),
    (["modes", "{dev}", "--set", "ca.wce=3", "--allow-data-loss"], 2, "a flag: 0 or 1"),
    (["logs", "{dev}", "99999"], 2, "0..0x3f"),
    (["raw", "{dev}", "12 00 00 00 24"], 2, "the CDB has 5 byte(s)"),
    (["raw", "{dev}", "00" * 33], 2, "the CDB has 33 byte(s)"),
    (["raw", "{dev}", "zz"], 2, "hexadecimal"),
    (["raw", "{dev}", "12 00 00 00 24 00", "--in", "-1"], 2, "must not be negative"),
    (["raw", "{dev}", "12 00 00 00 24 00", "--in", str(1 << 40)], 2, "accepts at most"),
    (["raw", "{dir}", "12 00 00 00 24 00", "--in", "36"], 4, "is a directory"),
    (["raw", "{dev}", "2a 00 00 00 00 07 00 00 01 00", "--out", "/dev/zero"], 6, "--allow-data-loss"),
    (["raw", "{dev}", "12 00 00 00 24 00", "--out", "/nonexistent", "--allow-data-loss"], 1,
     "No such file or directory"),
    (["read", "{dev}", "--count", "0", "-o", os.devnull], 2, "must be at least 1"),
    (["read", "{dev}", "--count", "100000000000", "-o", os.devnull], 2, "goes beyond the end"),
    (["read", "{dev}", "--lba", "{blocks}", "--count", "1", "-o", os.devnull], 2, "is beyond the end"),
    (["read", "{dev}", "--count", "1", "-o", os.devnull, "--chunk", "0"], 2, "at least 1 byte"),
    (["read", "{dev}", "--count", "1", "-o", "{dir}"], 1, "Is a directory"),
    (["read", "{dir}", "--count", "1", "-o", os.devnull], 4, "is a directory"),
    (["write", "{dev}", "-i", "/dev/zero"], 6, "--allow-data-loss"),
    (["write", "{dev}", "-i", "/dev/zero", "--count", "100000000000", "--allow-data-loss"], 2,
     "goes beyond the end"),
    (["write", "{dev}", "-i", "{dir}", "--allow-data-loss"], 1, "Is a directory"),
    (["write", "{dev}", "--lba", "{blocks}", "-i", "/dev/zero", "--count", "1", "--allow-data-loss"], 2,
     "is beyond the end"),
    (["bench", "{dev}", "--bs", "0"], 2, "at least 1 byte"),
    (["bench", "{dev}", "--bs", "100", "--seconds", "0.1"], 2, "not a multiple of the block size"),
    (["bench", "{dev}", "--bs", "1g", "--seconds", "0.1"], 2, "larger than the device"),
    (["bench", "{dev}", "--seconds", "inf"], 2, "finite"),
    (["bench", "{dev}", "--seconds", "1e300"], 2, "at most 31536000 seconds"),
    (["bench", "{dev}", "--qd", "100000", "--seconds", "0.1"], 2, "queue_depth 100000"),
    (["bench", "{dev}", "--qd", "2", "--channels", "3", "--seconds", "0.1"], 2, "more than --qd 2"),
    (["bench", "{dev}", "--count", str(2**63)], 2, "out of range"),
    (["bench", "{dev}", "--rw", "read", "--verify", str(2**64), "--count", "1"], 2, "2**64-1"),
    (["bench", "{dev}", "--rw", "write"], 6, "--allow-data-loss"),
    (["frobnicate", "{dev}"], 2, "invalid choice"),
    (["vpd", "{dev}", "nope"], 2, "unknown vpd page 'nope'"),
    (["vpd", "{dev}", "0x100"], 2, "0..0xff"),
    (["vpd", "{dir}"], 4, "is a directory"),
    (["logs", "{dev}", "caching"], 2, "temp/temperature=0Dh"),
    (["modes", "{dev}", "coe", "--subpage", "2"], 2, "--subpage says 02h"),
    (["inq", "{dev}", "--hex", "--raw"], 2, "not allowed with argument"),
    (["readcap", "{dev}", "--raw", "--json"], 2, "not allowed with argument"),
    (["discover"], 2, "required: HOST[:PORT]"),
    (["discover", "a/b"], 2, "not a portal: 'a/b'"),
    (["completion", "fish"], 2, "invalid choice: 'fish'"),
    (["tur", "{dev}", "-v", "--timeout", "0"], 2, "more than 0"),
    (["tur", "{dev}", "--count", "0"], 2, "--count is 1 to 100000000"),
    (["tur", "{dir}", "--count", "2"], 4, "is a directory"),
    (["opcodes", "{dev}", "--opcode", "0x100"], 2, "an operation code is 0 to 255"),
    (["opcodes", "{dev}", "--service-action", "1"], 2, "goes with --opcode"),
    (["logs", "{dev}", "temp", "--all"], 2, "give no PAGE"),
    (["list", "--hosts", "extra"], 2, "unrecognized arguments"),
    (["info"], 2, "required: DEVICE"),
    (["info", "{dir}"], 4, "is a directory"),
    (["info", "{dev}", "--timeout", "-1"], 2, "more than 0"),
]


@pytest.mark.parametrize("argv, code, words", BAD_ARGUMENTS, ids=[" ".join(a[:4])[:60] for a, _, _ in BAD_ARGUMENTS])
def test_every_verb_refuses_bad_arguments_with_its_exit_status_and_one_clear_line(capsys, dev, scsi_debug, tmp_path,
                                                                                 argv, code, words):
    fill = {"dev": dev, "dir": str(tmp_path), "blocks": blocks_of(scsi_debug)}
    argv = [a.format(**fill) for a in argv]
    got, out, err = run(capsys, *argv)
    assert got == code, err
    assert words in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("sgpy"), err
    got, out, err = run(capsys, *argv, "--json")
    assert got == code, err
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == code and words in doc["message"]


def test_every_verb_is_in_the_table_of_bad_arguments():
    from sgpy.cli import build_parser

    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    assert set(verbs) <= {argv[0] for argv, _, _ in BAD_ARGUMENTS}


def test_conform_prints_the_table_or_the_json_and_exits_1_on_a_shall_failure(capsys, dev):
    """sgpy conform on scsi_debug: the INQUIRY family, where scsi_debug fails one "shall"
    (docs/conformance.rst explains it)."""
    code, out, err = run(capsys, "conform", dev, "--select", "inquiry")
    assert code == 1, err
    assert "INQUIRY" in out and "test_inquiry_page_code_without_evpd_is_refused [SPC-5 6.7.1, shall]" in out
    code, out, err = run(capsys, "conform", dev, "--select", "inquiry", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["identity"]["product"].strip() == "scsi_debug"
    outcomes = {r["name"]: r["outcome"] for r in doc["results"]}
    assert outcomes["test_inquiry_page_code_without_evpd_is_refused"] == "fail"
    assert outcomes["test_standard_inquiry_has_the_mandatory_fields"] == "pass"
    code, out, err = run(capsys, "conform", dev, "--select", "read_capacity")
    assert code == 0, out + err


def test_verbose_prints_each_command_sent_and_leaves_logging_as_it_was(capsys, dev):
    import logging

    log = logging.getLogger("sgpy.command")
    before = (log.level, list(log.handlers))
    code, out, err = run(capsys, "tur", dev, "-v")
    assert code == EXIT_OK and out
    lines = err.splitlines()
    assert lines and all(line.startswith(f"sgpy: {dev}: TestUnitReady [00 00 00 00 00 00] -> ") for line in lines)
    assert lines[-1].startswith(f"sgpy: {dev}: TestUnitReady [00 00 00 00 00 00] -> GOOD, 0 of 0 bytes, ")
    # -vv: the command's fields and, for a failure, the sense bytes; the failure itself is reported as always.
    cdb = "88 00 00 00 01 00 00 00 00 00 00 00 00 01 00 00"  # READ(16) of LBA 2^40: out of range
    code, out, err = run(capsys, "raw", dev, *cdb.split(), "--in", 512, "-vv")
    assert code == EXIT_DEVICE_ERROR
    sent = [line for line in err.splitlines() if line.startswith(f"sgpy: {dev}: RawCommand [{cdb}]")]
    assert len(sent) == 1 and " -> CHECK CONDITION, sense: ILLEGAL REQUEST" in sent[0], err
    assert "    RawCommand(" in err
    assert re.search(r"    sense bytes: (70|72) ", err)
    assert (log.level, list(log.handlers)) == before
    code, out, err = run(capsys, "tur", dev)
    assert code == EXIT_OK and "sgpy: " not in err


# -- fio parity: mixed reads and writes, rate limit, part of the medium ------------------------------


@pytest.mark.parametrize("rw", ["randrw", "rw"])
def test_bench_mixes_reads_and_writes_and_reports_them_apart(capsys, dev, rw):
    doc = run_json(capsys, "bench", dev, "--rw", rw, "--rwmixread", "70", "--count", "2000", "--qd", "8",
                   "--channels", "2", "--allow-data-loss")
    assert doc["rw"] == rw and doc["rwmixread"] == 70 and doc["errors"] == 0
    r, w = doc["read"], doc["write"]
    assert doc["ios"] == r["ios"] + w["ios"] == 2000
    assert 0.62 < r["ios"] / 2000 < 0.78
    assert doc["bytes"] == r["bytes"] + w["bytes"] and w["bytes"] == w["ios"] * 4096
    for part in (r, w):
        lat = part["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"] <= doc["latency_ms"]["max"]
    assert min(r["latency_ms"]["min"], w["latency_ms"]["min"]) == doc["latency_ms"]["min"]
    assert run_json(capsys, "bench", dev, "--rw", rw, "--count", "100", "--allow-data-loss")["rwmixread"] == 50


def test_bench_mixed_stamped_writes_verify_afterwards(capsys, dev):
    # stamp 1 MiB, then mix verified reads and writes stamped with the same tag over it, then read it all back
    span = ["--offset", "1m", "--size", "1m"]
    assert run_json(capsys, "bench", dev, "--rw", "write", "--bs", "64k", "--count", "16", *span,
                    "--stamp", "0x99", "--allow-data-loss")["ios"] == 16
    doc = run_json(capsys, "bench", dev, "--rw", "randrw", "--count", "600", "--qd", "8", *span, "--verify", "0x99",
                   "--allow-data-loss")
    assert doc["errors"] == 0 and doc["read"]["ios"] > 200 and doc["write"]["ios"] > 200
    assert run_json(capsys, "bench", dev, "--rw", "read", "--count", "256", *span, "--verify", "0x99")["ios"] == 256
    # --stamp on a mixed run stamps its writes only: blocks it wrote verify with the new tag, the rest do not
    doc = run_json(capsys, "bench", dev, "--rw", "randrw", "--rwmixread", "0", "--count", "50", *span,
                   "--stamp", "0x9a", "--allow-data-loss")
    assert doc["write"]["ios"] == 50 and doc["read"]["ios"] == 0
    code, out, err = run(capsys, "bench", dev, "--rw", "read", "--count", "256", *span, "--verify", "0x99")
    assert code == 3 and "data mismatch" in err and "with tag 0x9a, not its own with tag 0x99" in err


def test_bench_rate_limit(capsys, dev):
    limited = run_json(capsys, "bench", dev, "--rate-iops", "200", "--seconds", "2", "--qd", "8", "--channels", "2")
    assert limited["rate_iops"] == 200
    assert 400 * 0.85 <= limited["ios"] <= 400 * 1.15, limited
    free = run_json(capsys, "bench", dev, "--seconds", "1", "--qd", "8", "--channels", "2")
    assert free["iops"] > 1.5 * limited["iops"]
    mixed = run_json(capsys, "bench", dev, "--rw", "randrw", "--rate-iops", "300", "--seconds", "1",
                     "--allow-data-loss")
    assert 300 * 0.85 <= mixed["ios"] <= 300 * 1.15 and mixed["read"]["ios"] and mixed["write"]["ios"]


@pytest.mark.parametrize("rw, qd, channels", [("write", 4, 1), ("write", 4, 2), ("randwrite", 8, 1),
                                             ("randrw", 8, 2)])
def test_bench_offset_and_size_keep_every_command_inside(capsys, dev, tmp_path, rw, qd, channels):
    first, count = 2048, 256  # [1 MiB, 1 MiB + 128 KiB)
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes((count + 64) * BLOCK))
    run_json(capsys, "write", dev, "--lba", str(first - 32), "-i", zeros, "--allow-data-loss")
    doc = run_json(capsys, "bench", dev, "--rw", rw, "--bs", "8k", "--qd", str(qd), "--count", "400",
                   "--channels", str(channels), "--offset", "1m", "--size", "128k", "--stamp", "0x5a",
                   "--allow-data-loss")
    assert (doc["offset"], doc["size"]) == (1 << 20, 128 << 10) and doc["errors"] == 0
    out = tmp_path / "back"
    run_json(capsys, "read", dev, "--lba", str(first - 32), "--count", str(count + 64), "-o", out)
    data = out.read_bytes()
    blocks = [data[i:i + BLOCK] for i in range(0, len(data), BLOCK)]
    assert all(b == bytes(BLOCK) for b in blocks[:32] + blocks[32 + count:])  # the blocks just outside
    stamped = [first - 32 + i for i, b in enumerate(blocks) if b != bytes(BLOCK)]
    assert stamped and min(stamped) >= first and max(stamped) < first + count
    for lba in stamped:
        b = blocks[lba - first + 32]
        assert b[:16] == lba.to_bytes(8, "big") + (0x5A).to_bytes(8, "big")
    if rw == "write":
        # 400 commands of 16 blocks wrap the 16 chunks (each channel's job its own half with two)
        assert stamped == list(range(first, first + count))


@pytest.mark.parametrize("argv, match", [
    (["--offset", "100"], "--offset 100 is not a multiple of the block size 512"),
    (["--size", "1000"], "--size 1000 is not a multiple of the block size 512"),
    (["--offset", "64m"], "at or past the end of the device (67108864 bytes)"),
    (["--offset", "63m", "--size", "2m"], "goes past the end of the device"),
    (["--size", "2k"], "smaller than one command's --bs 4096"),
    (["--offset", "1g"], "at or past the end"),
])
def test_bench_offset_and_size_are_checked_before_anything_is_sent(capsys, dev, argv, match):
    code, out, err = run(capsys, "bench", dev, "--seconds", "0.1", *argv)
    assert code == 2 and out == "" and match in err


def test_bench_ctrl_c_in_a_rate_limited_mixed_run_prints_both_directions(capsys, dev, monkeypatch):
    jobs = ctrl_c_once_running(monkeypatch, after=0.6)
    code, out, err = run(capsys, "bench", dev, "--rw", "randrw", "--rate-iops", "500", "--seconds", "60", "--json",
                         "--allow-data-loss")
    assert code == EXIT_INTERRUPTED, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ios"] == doc["read"]["ios"] + doc["write"]["ios"] > 0
    assert doc["ios"] <= 500 * doc["seconds"] * 1.15 + 20
    assert all(job.returned for job in jobs)


def test_bench_ctrl_c_with_progress_clears_the_live_line_then_prints_the_summary(dev, monkeypatch):
    ctrl_c_once_running(monkeypatch, after=1.2)
    out, err = io.StringIO(), io.StringIO()
    code = main(["bench", dev, "--seconds", "60", "--progress"], stdout=out, stderr=err)
    assert code == EXIT_INTERRUPTED, err.getvalue()
    live = err.getvalue()
    assert re.search(r"% done  ETA +(1:00|0:5\d) ", live)  # about 59 s of 60 left when it was stopped
    assert "\r" + " " * 72 + "\r" in live and live.rstrip().endswith("follow")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("(interrupted)") and int(lines[1].split()[1]) > 0
