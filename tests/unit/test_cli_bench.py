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
