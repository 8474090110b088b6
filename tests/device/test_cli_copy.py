"""``sgpy copy SRC DST`` (sg_dd if=DEV of=DEV2) on two scsi_debug disks with a store each.

``add_host=2 per_host_store=1 num_tgts=1`` gives two disks whose media are
apart (without ``per_host_store`` scsi_debug's disks share one store, and a
copy from one to the other would be a copy onto itself).  Each test writes
its own pattern (every block: its LBA and a tag) on disk A, copies, and
reads disk B back.
"""

import io
import json
import os
import signal
import struct
import sys

import pytest

from sgpy import command
from sgpy.channel import Channel
from sgpy.cli import EXIT_INTERRUPTED, EXIT_NO_DEVICE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from sgpy.errors import UnitAttention
from sgpy.handler import might_fail
from sgpy.safety import Policy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402

TWO_DISKS = dict(add_host=2, per_host_store=1, num_tgts=1)
pytestmark = pytest.mark.scsi_debug(**TWO_DISKS)
BLOCK = 512


def pattern(lba, count, tag):
    return b"".join(struct.pack(">QQ", lba + i, tag) * (BLOCK // 16) for i in range(count))


def channel(path):
    ch = Channel.from_path(path, policy=Policy(allow_data_loss=True), block_size=BLOCK)
    for _ in range(5):
        if not isinstance(ch.execute(command.TestUnitReady(), verify_handler=might_fail).error, UnitAttention):
            break
    return ch


def write(path, lba, data):
    with channel(path) as ch:
        for off in range(0, len(data), 64 * BLOCK):
            piece = data[off:off + 64 * BLOCK]
            ch.execute(command.Write16(lba=lba + off // BLOCK, transfer_length=len(piece) // BLOCK, data=piece))


def read(path, lba, count):
    out = b""
    with channel(path) as ch:
        for first in range(lba, lba + count, 64):
            n = min(64, lba + count - first)
            out += ch.execute(command.Read16(lba=first, transfer_length=n)).data
    return out


@pytest.fixture
def disks(sg_devices):
    a, b = sg_devices[:2]
    return a, b


def test_a_range_copied_to_the_other_disk_reads_back_the_same(capsys, disks):
    a, b = disks
    write(a, 1000, pattern(1000, 700, tag=1))
    write(b, 3990, bytes(720 * BLOCK))  # zeros around the destination: nothing beyond it may change
    code, out, err = run(capsys, "copy", a, b, "--lba", 1000, "--count", 700, "--dst-lba", 4000,
                         "--chunk", "16k", "--qd", 3, "--allow-data-loss")
    assert code == EXIT_OK, err
    assert out.startswith(f"{a} -> {b}: copied 700 block(s) from LBA 1000 to LBA 4000 (358400 bytes) in ")
    assert read(b, 4000, 700) == pattern(1000, 700, tag=1)
    assert read(b, 3990, 10) == bytes(10 * BLOCK) and read(b, 4700, 10) == bytes(10 * BLOCK)
    assert read(a, 1000, 700) == pattern(1000, 700, tag=1)  # the source is only read


def test_json_and_verify_and_the_default_destination_lba(capsys, disks):
    a, b = disks
    write(a, 0, pattern(0, 300, tag=2))
    code, out, err = run(capsys, "copy", a, b, "--count", 300, "--verify", "--allow-data-loss", "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert set(doc) == {"source", "destination", "lba", "dst_lba", "count", "copied", "block_size", "bytes",
                        "verified", "interrupted", "seconds"}
    assert (doc["source"], doc["destination"], doc["lba"], doc["dst_lba"], doc["count"], doc["copied"]) == \
        (a, b, 0, 0, 300, 300)
    assert (doc["block_size"], doc["bytes"], doc["verified"], doc["interrupted"]) == (BLOCK, 300 * BLOCK, True, False)
    assert read(b, 0, 300) == pattern(0, 300, tag=2)


def test_one_block_and_chunks_that_do_not_divide_the_count(capsys, disks):
    a, b = disks
    write(a, 77, pattern(77, 13, tag=3))
    for count, chunk in ((1, "512"), (13, "2560")):  # 13 blocks in commands of 5
        code, out, err = run(capsys, "copy", a, b, "--lba", 77, "--count", count, "--dst-lba", 10,
                             "--chunk", chunk, "--qd", 1, "--allow-data-loss", "--verify")
        assert code == EXIT_OK, err
        assert read(b, 10, count) == pattern(77, count, tag=3)


def test_the_same_disk_copies_a_range_that_does_not_overlap_and_refuses_one_that_does(capsys, disks):
    a, _ = disks
    write(a, 2000, pattern(2000, 100, tag=4))
    write(a, 2050, pattern(2050, 100, tag=4))
    before = read(a, 1900, 400)
    # overlapping, by the same node or by another name of the same unit (its block device)
    block = "/dev/" + os.listdir(f"/sys/class/scsi_generic/{os.path.basename(a)}/device/block")[0]
    for dst in (a, block):
        for dst_lba in (2050, 1950, 2000):
            code, out, err = run(capsys, "copy", a, dst, "--lba", 2000, "--count", 100, "--dst-lba", dst_lba,
                                 "--allow-data-loss")
            assert code == EXIT_USAGE, err
            assert "are the same logical unit and the ranges overlap" in err
            code, out, err = run(capsys, "copy", a, dst, "--lba", 2000, "--count", 100, "--dst-lba", dst_lba,
                                 "--allow-data-loss", "--json")
            assert code == EXIT_USAGE and json.loads(out)["error"]["exit_code"] == EXIT_USAGE
    assert read(a, 1900, 400) == before
    code, out, err = run(capsys, "copy", a, a, "--lba", 2000, "--count", 100, "--dst-lba", 2100,
                         "--allow-data-loss")  # adjacent: no block in common
    assert code == EXIT_OK, err
    assert read(a, 2100, 100) == pattern(2000, 100, tag=4)


def test_ranges_beyond_either_medium_are_refused_before_anything_is_written(capsys, disks, scsi_debug):
    a, b = disks
    blocks = int(scsi_debug.params.get("dev_size_mb", 8)) * 1024 * 1024 // BLOCK
    write(b, blocks - 5, bytes(5 * BLOCK))
    for argv, words in [
        (["--lba", blocks, "--count", 1], f"--lba {blocks} is beyond the end of {a}"),
        (["--lba", blocks - 3, "--count", 5], f"goes beyond the end of {a}"),
        (["--lba", 0, "--dst-lba", blocks, "--count", 1], f"--dst-lba {blocks} is beyond the end of {b}"),
        (["--lba", 0, "--dst-lba", blocks - 3, "--count", 5], f"goes beyond the end of {b}"),
    ]:
        code, out, err = run(capsys, "copy", a, b, *argv, "--allow-data-loss")
        assert code == EXIT_USAGE and words in err, err
    assert read(b, blocks - 5, 5) == bytes(5 * BLOCK)


@pytest.mark.parametrize("argv, code, words", [
    (["{a}", "{b}", "--count", "1"], EXIT_REFUSED, "pass --allow-data-loss"),
    (["{a}", "{b}", "--count", "0", "--allow-data-loss"], EXIT_USAGE, "must be at least 1"),
    (["{a}", "{b}", "--count", "1", "--qd", "0", "--allow-data-loss"], EXIT_USAGE, "--qd"),
    (["{a}", "{b}", "--count", "1", "--dst-lba", "-1", "--allow-data-loss"], EXIT_USAGE, "must not be negative"),
    (["{a}", "{b}", "--count", "1", "--chunk", "0", "--allow-data-loss"], EXIT_USAGE, "at least 1 byte"),
    (["{a}", "{b}", "--allow-data-loss"], EXIT_USAGE, "required: --count"),
    (["{a}", "--count", "1", "--allow-data-loss"], EXIT_USAGE, "required: DEST"),
    (["{a}", "/dev/sg-none", "--count", "1", "--allow-data-loss"], EXIT_NO_DEVICE, "no such device"),
    (["/dev/sg-none", "{b}", "--count", "1", "--allow-data-loss"], EXIT_NO_DEVICE, "no such device"),
])
def test_bad_arguments(capsys, disks, argv, code, words):
    a, b = disks
    argv = [x.format(a=a, b=b) for x in argv]
    got, out, err = run(capsys, "copy", *argv)
    assert got == code and words in err and "Traceback" not in err, err
    got, out, err = run(capsys, "copy", *argv, "--json")
    assert got == code and json.loads(out)["error"]["exit_code"] == code


def test_ctrl_c_says_how_far_the_copy_got_and_exits_130(capsys, disks, monkeypatch):
    from sgpy import cli

    a, b = disks
    write(a, 0, pattern(0, 2000, tag=5))
    write(b, 0, bytes(2000 * BLOCK))
    real = cli._copy_progress
    seen = []

    def ctrl_c(out, done, *rest):
        seen.append(done)
        os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C, once the first write is done
        return real(out, done, *rest)

    monkeypatch.setattr(cli, "_copy_progress", ctrl_c)
    code, out, err = run(capsys, "copy", a, b, "--count", 2000, "--chunk", "4k", "--qd", 4, "--allow-data-loss",
                         "--json")
    assert code == EXIT_INTERRUPTED, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["verified"] is False
    assert seen and 8 <= doc["copied"] < 2000 and doc["copied"] % 8 == 0
    assert f"sgpy copy: interrupted after {doc['copied']} of 2000 block(s): LBAs 0 to {doc['copied'] - 1}" in err
    assert err.rstrip().endswith("sgpy copy: interrupted")
    assert read(b, 0, doc["copied"]) == pattern(0, doc["copied"], tag=5)  # what it says it copied, it copied
    # without --json: the same line, and no summary on stdout
    seen.clear()
    code, out, err = run(capsys, "copy", a, b, "--count", 2000, "--chunk", "4k", "--allow-data-loss")
    assert code == EXIT_INTERRUPTED and out == "" and "interrupted after" in err


def test_a_read_error_stops_the_copy_with_status_3_and_says_how_far_it_got(capsys, disks, scsi_debug):
    # opts=2 (SDEBUG_OPT_MEDIUM_ERR): reads of LBAs medium_error_start (4660) to +medium_error_count (10)
    # answer MEDIUM ERROR, UNRECOVERED READ ERROR (scsi_debug.c, check_device_access_params / resp_read_dt0)
    a, b = disks
    write(a, 4600, pattern(4600, 100, tag=6))
    write(b, 0, bytes(100 * BLOCK))
    scsi_debug.set(opts=2)
    code, out, err = run(capsys, "copy", a, b, "--lba", 4600, "--count", 100, "--dst-lba", 0, "--chunk", "5k",
                         "--qd", 2, "--allow-data-loss", "--json")
    assert code == 3, err
    assert json.loads(out)["error"]["sense"]["sense_key"] == "MEDIUM_ERROR"
    assert "Read16 failed: MEDIUM ERROR" in err
    # LBA 4660 is in the seventh command of ten blocks: the six before were written, in order
    assert "sgpy copy: 60 of 100 block(s) were copied (LBAs 4600 to 4659 onto 0 on)" in err
    scsi_debug.set(opts=0)
    assert read(b, 0, 60) == pattern(4600, 60, tag=6)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_goes_to_a_terminal_only(disks):
    a, b = disks
    out, err = io.StringIO(), Terminal()
    code = main(["copy", a, b, "--count", "300", "--chunk", "4k", "--allow-data-loss"], stdout=out, stderr=err)
    assert code == EXIT_OK, err.getvalue()
    live = err.getvalue()
    assert live.startswith("\r  ") and live.endswith("\n") and " of 300 block(s) (" in live and "MB/s" in live
    assert out.getvalue().startswith(f"{a} -> {b}: copied 300 block(s)")
    out, err = io.StringIO(), io.StringIO()
    assert main(["copy", a, b, "--count", "300", "--allow-data-loss"], stdout=out, stderr=err) == EXIT_OK
    assert err.getvalue() == ""


@pytest.mark.scsi_debug(add_host=1, per_host_store=0, num_tgts=2)
def test_verify_finds_what_two_units_sharing_one_medium_did_to_each_other(capsys, sg_devices):
    """Two scsi_debug disks on one host share one store, under two names: the overlap check cannot see
    it, the copy reads blocks a write already changed, and --verify reports the first that differs."""
    a, b = sg_devices[:2]
    write(a, 0, pattern(0, 150, tag=8))
    # 100 blocks from LBA 0 onto LBA 50 of the same medium, ten blocks a command, all ten reads queued
    # before the first write (scsi_debug with delay=0 runs each command as it is submitted)
    code, out, err = run(capsys, "copy", a, b, "--count", 100, "--dst-lba", 50, "--chunk", "5k", "--qd", 10,
                         "--verify", "--allow-data-loss")
    assert code == 1, err
    assert f"--verify: block 50 of the range differs: {a} LBA 50, {b} LBA 100" in err
    assert read(a, 50, 10) == pattern(0, 10, tag=8) and read(b, 100, 10) == pattern(50, 10, tag=8)
