"""sgpy health without a device: the assessment of log pages (verdict, findings, the exit status
bitmask) and the verb's output on a channel that answers LOG SENSE from canned pages."""

import json
import os
import struct
import sys

import pytest

from sgpy import cli, health
from sgpy.cli import EXIT_DEVICE_ERROR, EXIT_OK, EXIT_USAGE
from sgpy.errors import IllegalRequest
from sgpy.responses import parse_log_page
from sgpy.results import parse_result
from sgpy.sense import decode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402


def param(code, value, control=0x03):
    return struct.pack(">HBB", code, control, len(value)) + value


def page(code, *params):
    body = b"".join(params)
    return struct.pack(">BBH", code, 0, len(body)) + body


def counters(uncorrected=0, corrected=5, processed=10**12):
    return page(0x03, param(3, struct.pack(">I", corrected)), param(5, struct.pack(">Q", processed)),
                param(6, struct.pack(">I", uncorrected)))


def self_test(number, code, result, hours=100, lba=None, sk=0, asc=0, ascq=0):
    lba = (1 << 64) - 1 if lba is None else lba
    return param(number, bytes([code << 5 | result, number]) + struct.pack(">HQ", hours, lba)
                 + bytes([sk, asc, ascq, 0]), control=0x03)


PAGES = {
    0x2F: page(0x2F, param(0, bytes([0, 0, 38]))),
    0x0D: page(0x0D, param(0, bytes([0, 38])), param(1, bytes([0, 65]))),
    0x0E: page(0x0E, param(1, b"202611"), param(3, struct.pack(">I", 50000)), param(4, struct.pack(">I", 12))),
    0x02: page(0x02, param(6, struct.pack(">I", 0))),
    0x03: counters(),
    0x05: page(0x05, param(6, struct.pack(">I", 0))),
    0x06: page(0x06, param(0, struct.pack(">I", 7))),
    0x10: page(0x10, self_test(1, 1, 0, hours=120), self_test(2, 2, 5, hours=90, lba=4096, sk=3, asc=0x11)),
    0x11: page(0x11, param(1, bytes([0, 0, 0, 3]))),
    0x15: page(0x15, param(0, struct.pack(">IBBHHH", 6000, 0, 8, 3, 0, 2))),
}


def supported(*codes):
    return struct.pack(">BBH", 0, 0, len(codes) + 1) + bytes([0, *codes])


INQUIRY = bytes([0, 0, 7, 2, 31, 0, 0x10, 0x0A]) + b"SEAGATE ST4000NM0023    0004"
SERIAL = bytes([0, 0x80, 0, 8]) + b"Z1Z2Z3Z4"


class FakeIo:
    def __init__(self, command, data):
        self.command, self.data, self.error, self.hdr = command, data, None, None

    @property
    def result(self):
        return parse_result(self.command, self.data)


class FakeChannel:
    """Answers INQUIRY, VPD 80h and LOG SENSE (by page code) from canned bytes; a page code mapped
    to an exception raises it."""

    path = "/dev/sg9"

    def __init__(self, pages):
        self.pages = pages
        self.sent = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, cmd, **options):
        self.sent.append(cmd)
        if cmd.name == "Inquiry":
            return FakeIo(cmd, SERIAL if cmd.cdb[1] & 1 else INQUIRY)
        if cmd.name == "LogSense":
            answer = self.pages[cmd.cdb[2] & 0x3F]
            if isinstance(answer, Exception):
                raise answer
            return FakeIo(cmd, answer)
        if cmd.name == "SendDiagnostic":
            return FakeIo(cmd, b"")
        raise AssertionError(f"unexpected {cmd.name}")


def illegal(asc, ascq=0):
    sense = bytes([0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0])
    return IllegalRequest("ILLEGAL REQUEST", sense=decode(sense), sense_bytes=sense)


@pytest.fixture
def device(monkeypatch):
    def make(pages):
        ch = FakeChannel(pages)
        monkeypatch.setattr(cli, "_open", lambda args, **options: ch)
        return ch

    return make


def decoded(**raw):
    return {name: parse_log_page(data) for name, data in raw.items()}


@pytest.mark.parametrize("pages, verdict, findings", [
    (dict(informational_exceptions=PAGES[0x2F]), "OK", 0),
    ({}, "UNKNOWN", 0),
    (dict(temperature=PAGES[0x0D]), "UNKNOWN", 0),
    (dict(informational_exceptions=page(0x2F, param(0, bytes([0x5D, 0x10, 40])))), "FAILING",
     health.Finding.FAILURE_PREDICTED),
    (dict(solid_state_media=page(0x11, param(1, bytes([0, 0, 0, 100])))), "FAILING",
     health.Finding.FAILURE_PREDICTED),
    (dict(informational_exceptions=PAGES[0x2F], temperature=page(0x0D, param(0, bytes([0, 70])),
                                                                 param(1, bytes([0, 65])))), "WARNING",
     health.Finding.TEMPERATURE),
    (dict(read_errors=counters(uncorrected=2)), "WARNING", health.Finding.MEDIUM_ERRORS),
    (dict(background_scan=page(0x15, param(0, struct.pack(">IBBHHH", 60, 0, 1, 1, 0, 1)),
                               param(1, bytes(12) + struct.pack(">Q", 99)))), "WARNING",
     health.Finding.MEDIUM_ERRORS),
    (dict(self_tests=PAGES[0x10]), "WARNING", health.Finding.SELF_TEST_FAILED),
    # a failed self-test followed by a passed extended one is history (smartctl's rule)
    (dict(self_tests=page(0x10, self_test(1, 2, 0), self_test(2, 1, 5))), "UNKNOWN", 0),
    (dict(self_tests=page(0x10, self_test(1, 1, 0), self_test(2, 2, 7))), "WARNING",
     health.Finding.SELF_TEST_FAILED),
    (dict(self_tests=page(0x10, self_test(1, 1, 15), self_test(2, 2, 1))), "UNKNOWN", 0),  # running, aborted
])
def test_assess(pages, verdict, findings):
    got_verdict, got = health.assess(decoded(**pages))
    assert got == findings
    assert got_verdict == verdict


def test_the_findings_are_bits_3_to_6():
    assert [int(f) for f in health.Finding] == [8, 16, 32, 64]
    assert all(int(f) & 7 == 0 and int(f) < 128 for f in health.Finding)
    assert [f.label for f in health.Finding] == ["failure_predicted", "temperature", "medium_errors",
                                                 "self_test_failed"]


def test_every_page_in_the_human_output(capsys, device):
    device({0: supported(*PAGES), **PAGES})
    code, out, err = run(capsys, "health", "/dev/sg9")
    assert code == int(health.Finding.SELF_TEST_FAILED), err
    lines = out.splitlines()
    assert lines[0] == "/dev/sg9: SEAGATE ST4000NM0023 0004, serial Z1Z2Z3Z4"
    text = "\n".join(lines)
    for words in ("health                    WARNING (self_test_failed)",
                  "informational exceptions  no failure predicted (ASC 00h, ASCQ 00h); most recent temperature 38 °C",
                  "temperature               38 °C (reference 65 °C)",
                  "start-stop cycle counter  12 of 50000 start-stop cycles, - load-unload cycles, made in week 11 "
                  "of 2026",
                  "read error counters       0 uncorrected, 5 corrected, 1.00TB processed",
                  "non-medium errors         7",
                  "self-test results         2 in the log, most recent first",
                  "background scan results   waiting for the background medium scan interval timer, 0.0% done, 3 "
                  "scans, power-on time 100 h 0 min, 0 medium error(s) found",
                  "solid state media         3% of its endurance used"):
        assert words in text, words
    rows = [line.split() for line in lines if line.startswith("      ")]
    assert rows[0][:4] == ["#", "KIND", "RESULT", "POWER-ON"]
    assert "1  background short     completed without error  120" in text
    assert "2  background extended  failed: first segment    90              4096" in text
    assert "3h 11h/00h Unrecovered read error" in text


def test_json_schema(capsys, device):
    device({0: supported(*PAGES), **PAGES})
    code, out, _ = run(capsys, "health", "/dev/sg9", "--json")
    doc = json.loads(out)
    assert list(doc) == ["device", "identity", "verdict", "exit_status", "findings", "log_sense_supported",
                         "supported_pages", "pages", "absent", "errors"]
    assert doc["exit_status"] == code == 64 and doc["findings"] == ["self_test_failed"]
    assert doc["identity"] == {"vendor": "SEAGATE", "model": "ST4000NM0023", "revision": "0004", "serial": "Z1Z2Z3Z4"}
    assert list(doc["pages"]) == list(health.HEALTH_PAGES) and doc["absent"] == [] and doc["errors"] == {}
    p = doc["pages"]
    assert p["temperature"] == {"temperature_c": 38, "reference_temperature_c": 65}
    assert p["informational_exceptions"] == {"asc": 0, "ascq": 0, "description": "No additional sense information",
                                             "most_recent_temperature_c": 38}
    assert p["read_errors"]["total_uncorrected"] == 0 and p["read_errors"]["bytes_processed"] == 10**12
    assert p["non_medium_errors"] == {"count": 7}
    assert p["solid_state_media"] == {"percentage_used_endurance_indicator": 3}
    assert p["start_stop"]["accumulated_start_stop_cycles"] == 12
    first, second = p["self_tests"]["results"]
    assert first == {"parameter_code": 1, "kind": "background short", "self_test_code": 1,
                     "result": "completed without error", "result_code": 0, "self_test_number": 1,
                     "power_on_hours": 120, "first_failure_lba": None, "sense_key": 0, "asc": 0, "ascq": 0,
                     "description": None}
    assert (second["result_code"], second["first_failure_lba"], second["asc"]) == (5, 4096, 0x11)
    assert p["background_scan"] == {"status": "waiting for the background medium scan interval timer",
                                    "status_code": 8, "power_on_minutes": 6000, "scans_performed": 3,
                                    "medium_scans_performed": 2, "progress_percent": 0.0, "medium_errors": []}


def test_absent_pages_are_absent_and_a_failed_page_sets_exit_status_3(capsys, device):
    ch = device({0: supported(0x0D, 0x2F), 0x0D: illegal(0x24), 0x2F: PAGES[0x2F]})
    code, out, _ = run(capsys, "health", "/dev/sg9", "--json")
    doc = json.loads(out)
    assert code == doc["exit_status"] == EXIT_DEVICE_ERROR and doc["verdict"] == "OK"
    assert doc["pages"]["temperature"] is None and "temperature" not in doc["absent"]
    assert doc["errors"]["temperature"]["type"] == "IllegalRequest"
    assert "self_tests" in doc["absent"] and len(doc["absent"]) == 8
    assert sorted(c.cdb[2] & 0x3F for c in ch.sent if c.name == "LogSense") == [0x00, 0x0D, 0x2F]
    code, out, _ = run(capsys, "health", "/dev/sg9")
    assert "temperature               not read: ILLEGAL REQUEST" in out
    assert "self-test results         absent" in out


def test_without_log_sense_every_page_is_absent(capsys, device):
    device({0: illegal(0x20)})
    code, out, _ = run(capsys, "health", "/dev/sg9")
    assert code == EXIT_OK
    assert "health                    UNKNOWN" in out and "absent (no LOG SENSE)" in out


def test_another_failure_of_the_supported_pages_is_a_device_error(capsys, device):
    device({0: illegal(0x3A)})
    code, out, err = run(capsys, "health", "/dev/sg9", "--json")
    assert code == EXIT_DEVICE_ERROR and json.loads(out)["error"]["type"] == "IllegalRequest"


@pytest.mark.parametrize("kind, cdb", [("short", "1d2000000000"), ("long", "1d4000000000"),
                                       ("abort", "1d8000000000"), ("foreground-short", "1da000000000"),
                                       ("default", "1d0400000000"),
                                       ("foreground-long", "1dc000000000")])
def test_self_test_sends_send_diagnostic_with_its_code(capsys, device, monkeypatch, kind, cdb):
    ch = device({})
    from sgpy import modes

    monkeypatch.setattr(modes, "sense", lambda *a, **k: (_ for _ in ()).throw(illegal(0x24)))
    code, out, err = run(capsys, "health", "/dev/sg9", "--self-test", kind, "--json")
    assert code == EXIT_OK, err
    assert [c.cdb.hex() for c in ch.sent] == [cdb]
    doc = json.loads(out)["self_test"]
    assert doc["kind"] == kind and doc["self_test_code"] == int(cdb[2:4], 16) >> 5


def test_a_self_test_is_read_only_for_the_safety_policy_and_bad_kinds_are_usage_errors(capsys):
    from sgpy import command, safety

    for code in health.SELF_TEST_CODES.values():
        assert safety.classify(command.SendDiagnostic(self_test_code=code)) is safety.Risk.READ
    code, out, err = run(capsys, "health", "/dev/sg9", "--self-test", "medium")
    assert code == EXIT_USAGE and "invalid choice" in err
