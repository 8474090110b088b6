"""bench without a device: its JSON (version, timestamp, identity, interrupted), the exit status 130
after Ctrl-C, and how the jobs are stopped; the real Ctrl-C is in tests/device/test_cli.py."""

import argparse
import io
import json
import re
from datetime import datetime, timezone

import pytest

import sgpy
from sgpy import cli
from sgpy.cli import EXIT_INTERRUPTED, EXIT_OK, main
from sgpy.job import JobStats, Latency

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def args(**over):
    values = dict(rw="randread", bs=4096, qd=4, channels=1)
    values.update(over)
    return argparse.Namespace(**values)


def stats(commands, seconds):
    lat = Latency(count=commands, min_ns=100_000, mean_ns=200_000.0, max_ns=400_000,
                  histogram=((196608, 229376, commands),))
    return JobStats(commands=commands, errors=0, recovered=0, short_transfers=0, submitted=commands,
                    seconds=seconds, bytes=commands * 4096, latency=lat)


def test_the_bench_document_says_what_was_measured_with_what_and_when():
    ident = {"vendor": "Linux", "model": "scsi_debug", "revision": "0191", "serial": "2000"}
    doc = cli._bench_doc(args(), "/dev/sg9", [stats(100, 0.5), stats(50, 0.25)], "c", identity=ident,
                         started="2026-11-27T10:00:00.000Z", interrupted=True)
    assert doc["sgpy_version"] == sgpy.__version__
    assert doc["timestamp"] == "2026-11-27T10:00:00.000Z"
    assert doc["identity"] == ident and doc["identity"] is not ident
    assert doc["interrupted"] is True
    assert doc["ios"] == 150 and doc["seconds"] == 0.5 and doc["iops"] == 300.0
    doc = cli._bench_doc(args(), "/dev/sg9", [stats(1, 1.0)], "c")
    assert doc["interrupted"] is False and ISO_UTC.fullmatch(doc["timestamp"])
    assert doc["identity"] == {"vendor": None, "model": None, "revision": None, "serial": None}


def test_the_timestamp_is_iso_8601_utc():
    text = cli._utc_now()
    assert ISO_UTC.fullmatch(text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 5


def test_nothing_completed_is_still_a_document():
    doc = cli._bench_doc(args(), "/dev/sg9", [], "c", interrupted=True)
    assert doc["ios"] == 0 and doc["iops"] == 0.0 and doc["seconds"] == 0.0


@pytest.fixture
def interrupted_run(monkeypatch):
    """_bench as if Ctrl-C had come after 120 commands."""
    doc = cli._bench_doc(args(), "/dev/sg9", [stats(120, 0.4)], "c",
                         identity={"vendor": "Linux", "model": "scsi_debug", "revision": "0191", "serial": None},
                         started=cli._utc_now(), interrupted=True)
    monkeypatch.setattr(cli, "_resolve", lambda name: name)
    monkeypatch.setattr(cli, "_bench", lambda a, out, path: doc)
    return doc


def test_an_interrupted_bench_prints_what_it_has_and_exits_130(capsys, interrupted_run):
    assert main(["bench", "/dev/sg9", "--qd", "4"]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("(interrupted)")
    assert "IOs      120" in captured.out
    assert "interrupted" in captured.err


def test_an_interrupted_bench_in_json_says_so_and_exits_130(capsys, interrupted_run):
    assert main(["bench", "/dev/sg9", "--qd", "4", "--json"]) == EXIT_INTERRUPTED
    doc = json.loads(capsys.readouterr().out)
    assert doc["interrupted"] is True and doc["ios"] == 120
    assert doc["identity"]["model"] == "scsi_debug" and doc["sgpy_version"] == sgpy.__version__


class FakeJob:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class FakeReactor:
    def __init__(self):
        self.waited = []

    def wait(self, jobs, timeout=None):
        assert all(job.cancelled for job in jobs), "waits only once every job was told to stop"
        self.waited.append(list(jobs))
        return True


def test_stopping_cancels_every_job_then_waits_for_what_is_in_flight():
    jobs = [FakeJob(), FakeJob()]
    reactor = FakeReactor()
    out = cli._Out(False, io.StringIO(), io.StringIO())
    cli._stop_jobs(out, reactor, jobs)
    assert reactor.waited == [jobs] and out.stdout.getvalue() == ""


class Answers:
    """A channel answering INQUIRY and VPD page 80h from canned bytes, or failing them."""

    path = "/dev/sg9"

    def __init__(self, standard, serial):
        self.standard, self.serial = standard, serial

    def execute(self, cmd, **options):
        from sgpy.results import parse_result

        data = self.serial if cmd.cdb[1] & 1 else self.standard
        if isinstance(data, Exception):
            raise data

        class Done:
            error = None
            result = parse_result(cmd, data)

        return Done()


INQUIRY = bytes([0, 0, 7, 2, 31, 0, 0x10, 0x0A]) + b"Linux   scsi_debug      0191"


@pytest.mark.parametrize("serial, expected", [
    (bytes([0, 0x80, 0, 4]) + b"2000", "2000"),
    (bytes([0, 0x80, 0, 4]) + b"    ", None),
    (OSError(5, "Input/output error"), None),
])
def test_identity_reads_what_it_can(serial, expected):
    ident = cli._identity(Answers(INQUIRY, serial))
    assert ident == {"vendor": "Linux", "model": "scsi_debug", "revision": "0191", "serial": expected}


def test_the_json_of_an_uninterrupted_run_is_exit_0(capsys, monkeypatch):
    doc = cli._bench_doc(args(), "/dev/sg9", [stats(10, 0.1)], "c")
    monkeypatch.setattr(cli, "_resolve", lambda name: name)
    monkeypatch.setattr(cli, "_bench", lambda a, out, path: doc)
    assert main(["bench", "/dev/sg9", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["interrupted"] is False


# -- mixed runs, rate limit, offset and size, progress ---------------------------------------------


def test_a_mixed_run_reports_reads_and_writes_apart():
    read, write = stats(70, 1.0), stats(30, 1.0)
    both = JobStats(commands=100, errors=0, recovered=0, short_transfers=0, submitted=100, seconds=1.0,
                    bytes=100 * 4096, latency=read.latency, read=read, write=write)
    doc = cli._bench_doc(args(rw="randrw", rwmixread=70, rate_iops=500), "/dev/sg9", [both, both], "c",
                         span=(1 << 20, 1 << 24))
    assert doc["ios"] == 200 and doc["read"]["ios"] == 140 and doc["write"]["ios"] == 60
    assert doc["read"]["iops"] == 140.0 and doc["write"]["bytes"] == 60 * 4096
    assert doc["rwmixread"] == 70 and doc["rate_iops"] == 500
    assert (doc["offset"], doc["size"]) == (1 << 20, 1 << 24)
    assert set(doc["read"]["latency_ms"]) == {"min", "mean", "p50", "p90", "p99", "p999", "max"}


@pytest.mark.parametrize("rw, reads, writes", [("randread", 10, 0), ("write", 0, 10), ("randwrite", 0, 10)])
def test_an_unmixed_run_is_all_reads_or_all_writes(rw, reads, writes):
    doc = cli._bench_doc(args(rw=rw), "/dev/sg9", [stats(10, 1.0)], "c")
    assert (doc["read"]["ios"], doc["write"]["ios"]) == (reads, writes)
    assert doc["rwmixread"] is None and doc["rate_iops"] is None


def span_args(offset=None, size=None):
    return argparse.Namespace(offset=offset, size=size)


@pytest.mark.parametrize("offset, size, expected", [
    (None, None, (0, 2048)),
    (4096, None, (8, 2048)),
    (4096, 8192, (8, 24)),
    (0, 1 << 20, (0, 2048)),
    (1 << 20, None, None),
])
def test_offset_and_size_become_the_lbas_of_the_run(offset, size, expected):
    # 2048 blocks of 512 bytes: 1 MiB; commands of 8 blocks
    if expected is None:
        with pytest.raises(cli.UsageError, match="at or past the end"):
            cli._bench_span(span_args(offset, size), 512, 2048, 8)
    else:
        assert cli._bench_span(span_args(offset, size), 512, 2048, 8) == expected


@pytest.mark.parametrize("offset, size, match", [
    (100, None, "--offset 100 is not a multiple of the block size 512"),
    (None, 1000, "--size 1000 is not a multiple of the block size 512"),
    (512, 1 << 20, "goes past the end of the device"),
    (0, 2048, "smaller than one command's --bs 4096"),
    ((1 << 20) - 2048, None, "smaller than one command"),
])
def test_bad_offsets_and_sizes_are_usage_errors(offset, size, match):
    with pytest.raises(cli.UsageError, match=match):
        cli._bench_span(span_args(offset, size), 512, 2048, 8)


@pytest.mark.parametrize("argv, match", [
    (["--rwmixread", "101", "--rw", "randrw"], "--rwmixread is 0 to 100"),
    (["--rwmixread", "-5", "--rw", "randrw"], "must not be negative"),
    (["--rate-iops", "0"], "--rate-iops is 1 to 1000000000"),
    (["--rate-iops", "1000000001"], "out of range"),
    (["--rate-iops", "fast"], "not a number"),
    (["--offset", "1x"], "not a size"),
    (["--size", "0"], "at least 1 byte"),
    (["--rw", "readwrite"], "invalid choice"),
])
def test_bad_bench_options_are_refused_before_any_device_is_opened(capsys, argv, match):
    assert main(["bench", "/dev/nonexistent-sg", *argv]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("argv, code, match", [
    (["--rwmixread", "70"], 2, "--rwmixread goes with --rw randrw or rw"),
    (["--rw", "write", "--rwmixread", "70", "--allow-data-loss"], 2, "--rwmixread goes with"),
    (["--rw", "randrw"], 6, "--allow-data-loss"),
    (["--rw", "rw", "--rwmixread", "70"], 6, "--allow-data-loss"),
    (["--channels", "4", "--qd", "8", "--rate-iops", "3"], 2, "less than --channels 4"),
])
def test_mixed_and_rate_options_are_checked_before_any_device_is_opened(capsys, argv, code, match):
    assert main(["bench", "/dev/nonexistent-sg", *argv]) == code
    assert match in capsys.readouterr().err


def test_the_mixed_summary_shows_reads_and_writes(capsys, monkeypatch):
    read, write = stats(7, 1.0), stats(3, 1.0)
    both = JobStats(commands=10, errors=0, recovered=0, short_transfers=0, submitted=10, seconds=1.0,
                    bytes=10 * 4096, latency=read.latency, read=read, write=write)
    monkeypatch.setattr(cli, "_resolve", lambda name: name)
    monkeypatch.setattr(cli, "_bench", lambda a, out, path: cli._bench_doc(a, path, [both], "c", span=(0, 1 << 20)))
    assert main(["bench", "/dev/sg9", "--rw", "randrw", "--rwmixread", "70", "--rate-iops", "100",
                 "--allow-data-loss"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("/dev/sg9: randrw rwmixread=70 rate_iops=100 bs=4096")
    assert lines.index("  read") < lines.index("  write")
    assert lines[lines.index("  read") + 1].split() == ["IOs", "7"]
    assert lines[lines.index("  write") + 1].split() == ["IOs", "3"]


@pytest.mark.parametrize("elapsed, done, seconds, count, rate, frac, eta", [
    (1.0, 0, 4.0, None, 0.0, 0.25, 3.0),
    (1.0, 50, None, 200, 50.0, 0.25, 3.0),
    (1.0, 50, None, 200, 0.0, 0.25, None),
    (1.0, 150, 10.0, 200, 50.0, 0.75, 1.0),   # the count ends it first
    (9.0, 10, 10.0, 200, 10.0, 0.9, 1.0),     # the time ends it first
    (12.0, 10, 10.0, None, 0.0, 1.0, 0.0),
])
def test_percent_done_and_eta(elapsed, done, seconds, count, rate, frac, eta):
    got_frac, got_eta = cli._bench_done(elapsed, done, seconds, count, rate)
    assert got_frac == pytest.approx(frac) and (got_eta == pytest.approx(eta) if eta is not None else got_eta is None)


@pytest.mark.parametrize("seconds, text", [(None, "-:--"), (0.0, "0:00"), (41.2, "0:42"), (3723, "1:02:03")])
def test_eta_text(seconds, text):
    assert cli._eta_text(seconds) == text


class Ticking:
    """A reactor whose jobs finish after three half-second waits."""

    def __init__(self):
        self.waits = 0

    def wait(self, jobs, timeout=None):
        self.waits += 1
        return self.waits > 3


class Counting:
    def __init__(self):
        self.n = 0

    @property
    def stats(self):
        self.n += 100
        return stats(self.n, 1.0)


def test_the_progress_line_goes_to_stderr_and_is_cleared():
    out = cli._Out(False, io.StringIO(), io.StringIO())
    cli._bench_progress(out, Ticking(), [Counting()], 4096, show=True, seconds=10.0)
    err = out.stderr.getvalue()
    assert out.stdout.getvalue() == ""
    assert err.count("% done") == 3 and "ETA " in err and " IOPS " in err and " MB/s " in err
    assert err.endswith("\r" + " " * 72 + "\r")
    quiet = cli._Out(False, io.StringIO(), io.StringIO())
    cli._bench_progress(quiet, Ticking(), [Counting()], 4096, show=False, seconds=10.0)
    assert quiet.stderr.getvalue() == "" and quiet.stdout.getvalue() == ""
