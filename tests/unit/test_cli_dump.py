"""--hex and --raw (the response's bytes), the hex strings beside large integers, and the error
objects' type names, on a channel that answers from canned bytes: no device needed."""

import json
import struct

import pytest

from sgpy import cli
from sgpy.cli import EXIT_OK, EXIT_USAGE, JSON_EXACT_LIMIT, main, with_hex
from sgpy.results import parse_result

INQUIRY = bytes([0, 0, 7, 2, 31, 0, 0x10, 0x0A]) + b"Linux   scsi_debug      0191"
SERIAL = bytes([0, 0x80, 0, 4]) + b"2000"
LUNS = struct.pack(">II", 8, 0) + bytes(8)
CAPACITY_HUGE = struct.pack(">QI", 2**60 - 1, 512) + bytes(20)  # READ CAPACITY(16): last LBA 2**60-1
MODE_CACHING = bytes([0, 0x1A, 0, 0, 0, 0, 0, 0]) + bytes([0x08, 0x12, 0x04]) + bytes(17)
LOG_SUPPORTED = bytes([0, 0, 0, 3, 0x00, 0x0D, 0x2F])
OPCODES = struct.pack(">I", 8) + bytes([0x12, 0, 0, 0, 0, 0, 0, 6])


class FakeIo:
    """What the verbs read of an IO: its command, data, result, error and header."""

    def __init__(self, command, data):
        self.command = command
        self.data = data
        self.error = None
        self.hdr = None

    @property
    def result(self):
        return parse_result(self.command, self.data)


class FakeChannel:
    """A channel whose every command is answered with canned bytes (by command name)."""

    path = "/dev/sg9"

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, cmd, **options):
        self.sent.append(cmd)
        name = cmd.name + ("/vpd" if cmd.name == "Inquiry" and cmd.cdb[1] & 1 else "")
        return FakeIo(cmd, self.answers[name])


@pytest.fixture
def channel(monkeypatch):
    ch = FakeChannel({"Inquiry": INQUIRY, "Inquiry/vpd": SERIAL, "ReportLuns": LUNS,
                      "ReadCapacity16": CAPACITY_HUGE, "ModeSense10": MODE_CACHING, "LogSense": LOG_SUPPORTED,
                      "ReportSupportedOperationCodes": OPCODES})
    monkeypatch.setattr(cli, "_open", lambda args, **options: ch)
    return ch


# verb arguments -> the bytes the device answered
DUMPS = [
    (["inq"], INQUIRY),
    (["inq", "--vpd", "serial"], SERIAL),
    (["vpd", "sn"], SERIAL),
    (["readcap"], CAPACITY_HUGE),
    (["luns"], LUNS),
    (["modes", "caching"], MODE_CACHING),
    (["logs"], LOG_SUPPORTED),
    (["opcodes"], OPCODES),
]


def hexdump_lines(data):
    """The lines sg3_utils' -H style gives: offset, 16 bytes in two groups of eight, the ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {chunk[:8].hex(' '):<23}  {chunk[8:].hex(' '):<23}  {text}")
    return lines


@pytest.mark.parametrize("argv, data", DUMPS, ids=[" ".join(a) for a, _ in DUMPS])
def test_hex_is_a_hexdump_of_the_response(capsys, channel, argv, data):
    code = main([argv[0], "/dev/sg9", *argv[1:], "--hex"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert out.splitlines() == hexdump_lines(data)


@pytest.mark.parametrize("argv, data", DUMPS, ids=[" ".join(a) for a, _ in DUMPS])
def test_raw_writes_the_response_bytes(capsysbinary, channel, argv, data):
    code = main([argv[0], "/dev/sg9", *argv[1:], "--raw"])
    assert code == EXIT_OK
    assert capsysbinary.readouterr().out == data


def test_the_hexdump_layout():
    class Lines:
        def __init__(self):
            self.text = []

        def line(self, text=""):
            self.text.append(text)

    out = Lines()
    cli._hexdump(out, b"Linux   scsi_debug\x00\x7f", indent="")  # type: ignore[arg-type]
    assert out.text == ["0000  4c 69 6e 75 78 20 20 20  73 63 73 69 5f 64 65 62  Linux   scsi_deb",
                        "0010  75 67 00 7f" + " " * 39 + "ug.."]


def test_opcodes_dump_sends_only_report_supported_operation_codes(capsys, channel):
    assert main(["opcodes", "/dev/sg9", "--hex"]) == EXIT_OK
    assert [c.name for c in channel.sent] == ["ReportSupportedOperationCodes"]


@pytest.mark.parametrize("verb", ["inq", "vpd", "readcap", "luns", "modes", "logs", "opcodes"])
@pytest.mark.parametrize("flags", [["--hex", "--raw"], ["--hex", "--json"], ["--json", "--raw"]])
def test_hex_raw_and_json_exclude_each_other(capsys, verb, flags):
    code = main([verb, "/dev/sg9", *flags])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE and "not allowed with argument" in captured.err
    if "--json" in flags:
        doc = json.loads(captured.out)["error"]
        assert doc["exit_code"] == EXIT_USAGE and doc["type"] == "UsageError"
        assert "not allowed with argument" in doc["message"]
    else:
        assert captured.out == ""


@pytest.mark.parametrize("verb", ["list", "tur", "sense", "raw", "read", "write", "bench", "conform", "health"])
def test_verbs_without_one_response_have_no_hex_or_raw(capsys, verb):
    assert main([verb, "--hex"]) == EXIT_USAGE
    capsys.readouterr()


def test_large_integers_are_also_given_in_hex(capsys, channel):
    assert main(["readcap", "/dev/sg9", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["last_lba"] == 2**60 - 1 and doc["last_lba_hex"] == hex(2**60 - 1)
    assert doc["blocks"] == 2**60 and doc["blocks_hex"] == "0x1000000000000000"
    assert doc["capacity_bytes_hex"] == hex(2**69)
    assert "block_size_hex" not in doc and "lowest_aligned_lba_hex" not in doc  # small: left alone
    keys = list(doc)
    assert keys.index("last_lba_hex") == keys.index("last_lba") + 1  # beside the number


@pytest.mark.parametrize("value, expected", [
    ({"n": JSON_EXACT_LIMIT - 1}, {"n": JSON_EXACT_LIMIT - 1}),
    ({"n": JSON_EXACT_LIMIT}, {"n": JSON_EXACT_LIMIT, "n_hex": "0x20000000000000"}),
    ({"n": -JSON_EXACT_LIMIT}, {"n": -JSON_EXACT_LIMIT, "n_hex": "-0x20000000000000"}),
    ({"n": 2**64 - 1}, {"n": 2**64 - 1, "n_hex": "0xffffffffffffffff"}),
    ({"flag": True, "x": 1.5e300, "s": "123"}, {"flag": True, "x": 1.5e300, "s": "123"}),
    ({"a": [{"lba": 2**60}], "b": {"c": 2**53}}, {"a": [{"lba": 2**60, "lba_hex": hex(2**60)}],
                                                  "b": {"c": 2**53, "c_hex": hex(2**53)}}),
    ({"ids": [2**60]}, {"ids": [2**60]}),
    ({"n": 2**60, "n_hex": "given"}, {"n": 2**60, "n_hex": "given"}),
])
def test_with_hex(value, expected):
    assert with_hex(value) == expected


@pytest.mark.parametrize("exc, name", [
    (cli._NoDevice("x"), "NoSuchDevice"), (cli._NoPermission("x"), "PermissionError"),
    (cli._Refused("x", cli.safety.Risk.DATA_CHANGING), "UnsafeCommand"), (cli._Failure("x"), "Failure"),
    (cli.UsageError("x"), "UsageError"), (FileNotFoundError("x"), "FileNotFoundError"),
])
def test_error_objects_never_name_a_private_class(exc, name):
    doc = cli._error_doc(1, "x", exc)["error"]
    assert doc["type"] == name and not doc["type"].startswith("_")


def test_a_private_class_outside_the_cli_gives_its_public_base():
    class _Hidden(KeyError):
        pass

    assert cli._error_doc(1, "x", _Hidden())["error"]["type"] == "KeyError"


def test_the_error_object_of_a_missing_device_names_a_public_type(capsys, tmp_path):
    assert main(["inq", str(tmp_path / "nothing"), "--json"]) == 4
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "NoSuchDevice"
