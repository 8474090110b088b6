"""The sgpy command line without a device: arguments, sense decoding, exit codes, JSON."""

import enum
import io
import json
import os
import uuid

import attrs
import pytest

from sgpy import cli, devices
from sgpy.cli import (
    EXIT_CODES,
    EXIT_NO_DEVICE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    jsonable,
    main,
    parse_size,
)

ILLEGAL_FIELD = "70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 c0 00 02"
DESCRIPTOR_LBA = "72 03 11 00 00 00 00 0c 00 0a 80 00 00 00 00 00 00 00 12 34"


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "text, size",
    [("512", 512), ("4k", 4096), ("4K", 4096), ("64KiB", 65536), ("1m", 1 << 20), ("2MB", 2 << 20),
     ("1g", 1 << 30), (" 8k ", 8192)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "k", "4x", "-1", "1.5k", "4kk"])
def test_parse_size_refuses(text):
    with pytest.raises(Exception, match="not a size"):
        parse_size(text)


def test_exit_codes_are_distinct_and_documented():
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 8
    assert {0, 2, 3, 4, 5} <= set(EXIT_CODES)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["inq"],                                   # DEVICE missing
        ["inq", "/dev/sg0", "--vpd", "0x100"],     # page code out of range
        ["inq", "/dev/sg0", "--vpd", "nope"],
        ["modes", "/dev/sg0", "0x40"],
        ["logs", "/dev/sg0", "--subpage", "256"],
        ["bench", "/dev/sg0", "--qd", "0"],
        ["bench", "/dev/sg0", "--bs", "huge"],
        ["bench", "/dev/sg0", "--seconds", "0"],
        ["bench", "/dev/sg0", "--rw", "trim"],
        ["read", "/dev/sg0", "--count", "1"],     # -o missing
        ["raw", "/dev/sg0", "12", "--in", "8", "--out", "f"],
        ["sense"],
        ["sense", "zz"],
        ["inq", "/dev/sg0", "--timeout", "-1"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert "usage:" in err or "error:" in err
    assert out == ""


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--json"], "unrecognized arguments: --json"),
        (["frobnicate", "--json"], "invalid choice: 'frobnicate'"),
        (["inq", "--json"], "required: DEVICE"),
        (["inq", "/dev/sg0", "--json", "--vpd", "0x100"], "0..0xff"),
        (["luns", "/dev/sg0", "--select", "x", "--json"], "not a number: 'x'"),
        (["bench", "/dev/sg0", "--qd", "0", "--json"], "must be at least 1"),
        (["bench", "/dev/sg0", "--rw", "trim", "--json"], "invalid choice: 'trim'"),
        (["raw", "--json", "/dev/sg0", "12", "--in", "8", "--out", "f"], "not allowed with argument"),
        (["sense", "--json", "--file", "a", "--binary", "b"], "one way"),
        (["inq", "/dev/sg0", "--timeout", "-1", "--json"], "--timeout"),
    ],
)
def test_usage_errors_argparse_finds_give_the_json_error_object(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == EXIT_USAGE and doc["type"] == "UsageError"
    assert words in doc["message"] and words in err
    assert set(doc) >= {"exit_code", "type", "message", "device"}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["inq", "/dev/sg-none", "--timeout", "1e12"], "at most 4294967.295 seconds"),
        (["inq", "/dev/sg-none", "--timeout", "4294967.296"], "at most 4294967.295 seconds"),
        (["inq", "/dev/sg-none", "--timeout", "1e999999999"], "at most 4294967.295 seconds"),
        (["inq", "/dev/sg-none", "--timeout", "inf"], "finite"),
        (["tur", "/dev/sg-none", "--timeout=-inf"], "finite"),
        (["readcap", "/dev/sg-none", "--timeout", "nan"], "finite"),
        (["luns", "/dev/sg-none", "--timeout", "-0.5"], "more than 0"),
        (["opcodes", "/dev/sg-none", "--timeout", "0"], "more than 0"),
        (["bench", "/dev/sg-none", "--bs", "0"], "at least 1 byte"),
        (["bench", "/dev/sg-none", "--seconds", "inf"], "finite"),
        (["bench", "/dev/sg-none", "--seconds", "1e300"], "at most 31536000 seconds"),
        (["bench", "/dev/sg-none", "--seconds", "1e-999"], "too short"),
        (["bench", "/dev/sg-none", "--count", str(2**63)], "out of range"),
        (["read", "/dev/sg-none", "--count", "1", "-o", os.devnull, "--chunk", "0"], "at least 1 byte"),
        (["write", "/dev/sg-none", "-i", os.devnull, "--chunk", "0", "--allow-data-loss"], "at least 1 byte"),
    ],
)
def test_numbers_no_command_can_use_are_usage_errors_before_any_device_is_opened(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE, err
    assert words in err and "Traceback" not in err and out == ""
    assert len(err.strip().splitlines()[-1]) < 200


def test_timeout_is_passed_in_whole_milliseconds_rounded_up():
    assert cli._timeout("60") == 60000
    assert cli._timeout("0.0001") == 1  # never 0: that would be the block layer's default
    assert cli._timeout("1e-999999999") == 1
    assert cli._timeout("4294967.295") == cli.TIMEOUT_MAX_MS == 2**32 - 1
    assert cli._timeout("1.0005") == 1001


def test_json_after_a_double_dash_is_not_the_option(capsys):
    code, out, err = run(capsys, "sense", "--", "--json")
    assert code == EXIT_USAGE and out == "" and "hexadecimal" in err


def test_help_and_version_exit_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == EXIT_OK and "bench" in out and "Exit status" in out
    code, out, _ = run(capsys, "--version")
    assert code == EXIT_OK and out.startswith("sgpy ")
    for verb in ("list", "inq", "readcap", "luns", "tur", "sense", "opcodes", "modes", "logs", "raw", "read",
                 "write", "bench"):
        code, out, _ = run(capsys, verb, "--help")
        assert code == EXIT_OK and "--json" in out, verb


@pytest.mark.parametrize(
    "hexargs, first_line, rows",
    [
        (ILLEGAL_FIELD.split(), "ILLEGAL REQUEST — Invalid field in CDB (24h/00h), field pointer: CDB byte 2",
         ["fixed, current (70h)", "ILLEGAL REQUEST (5h)", "Invalid field in CDB (ASC 24h, ASCQ 00h)",
          "field pointer: CDB byte 2"]),
        ([ILLEGAL_FIELD.replace(" ", "")], "ILLEGAL REQUEST — Invalid field in CDB", []),
        ([ILLEGAL_FIELD.replace(" ", ":")], "ILLEGAL REQUEST — Invalid field in CDB", []),
        (["700006000000000a000000002900000000000000"],
         "UNIT ATTENTION — Power on, reset, or bus device reset occurred", ["UNIT ATTENTION (6h)"]),
        (DESCRIPTOR_LBA.split(), "MEDIUM ERROR — Unrecovered read error (11h/00h), information: 0x1234",
         ["descriptor, current (72h)", "information", "0x1234 (4660)"]),
    ],
)
def test_sense_decodes_without_a_device(capsys, hexargs, first_line, rows):
    code, out, err = run(capsys, "sense", *hexargs)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith(first_line)
    for row in rows:
        assert row in out


def test_sense_json_keys(capsys):
    code, out, _ = run(capsys, "sense", "--json", *ILLEGAL_FIELD.split())
    assert code == EXIT_OK
    doc = json.loads(out)
    assert set(doc) == {"sense", "raw"}
    s = doc["sense"]
    for key in ("response_code", "sense_key", "sense_key_code", "asc", "ascq", "description", "deferred", "text",
                "information", "sense_key_specific", "descriptors", "truncated"):
        assert key in s, key
    assert (s["sense_key"], s["sense_key_code"], s["asc"], s["ascq"]) == ("ILLEGAL_REQUEST", 5, 0x24, 0)
    assert s["sense_key_specific"]["kind"] == "FieldPointer" and s["sense_key_specific"]["field_pointer"] == 2
    assert doc["raw"] == ILLEGAL_FIELD.replace(" ", "")


def test_sense_with_no_sense_and_with_bytes_that_are_not_sense(capsys):
    code, out, _ = run(capsys, "sense", "00")
    assert code == EXIT_OK and "no sense data" in out
    code, out, _ = run(capsys, "sense", "--json", "00 00")
    assert code == EXIT_OK and json.loads(out) == {"sense": None, "raw": "0000"}
    code, out, err = run(capsys, "sense", "41 00 00")
    assert code == EXIT_USAGE and "not sense data" in err


@pytest.mark.parametrize(
    "argv, word",
    [
        (["raw", "/dev/sg-none", "2a 00 00 00 00 00 00 00 01 00", "--out", os.devnull], "--allow-data-loss"),
        (["raw", "/dev/sg-none", "04 00 00 00 00 00"], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "04 00 00 00 00 00", "--allow-data-loss"], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "c0 00 00 00 00 00 00 00 00 00", "--in", "4", "--allow-data-loss"],
         "--allow-irreversible"),
        (["raw", "/dev/sg-none", "48 02 00 00 00 00 00 00 00 00"], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "3b 05 00 00 00 00 00 00 10 00", "--out", os.devnull], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "85 08 0e 00 00 00 01 00 00 00 00 00 00 40 ec 00", "--in", "512"],
         "--allow-irreversible"),
        (["raw", "/dev/sg-none", "42 00 00 00 00 00 00 00 18 00", "--out", os.devnull], "--allow-data-loss"),
        (["write", "/dev/sg-none", "-i", os.devnull], "--allow-data-loss"),
        (["bench", "/dev/sg-none", "--rw", "randwrite"], "--allow-data-loss"),
        (["bench", "/dev/sg-none", "--rw", "write"], "--allow-data-loss"),
    ],
)
def test_the_safety_policy_refuses_before_any_device_is_opened(capsys, argv, word):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_REFUSED, err
    assert "refused" in err and word in err


def test_refusal_in_json(capsys):
    code, out, err = run(capsys, "raw", "--json", "/dev/sg-none", "c0 00 00 00 00 00")
    assert code == EXIT_REFUSED
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == EXIT_REFUSED and doc["risk"] == "irreversible"
    assert set(doc) >= {"exit_code", "type", "message", "device"}


@pytest.mark.parametrize(
    "argv",
    [
        ["inq", "/dev/sg-none"],
        ["readcap", "sg-none"],
        ["luns", "9:9:9:9"],
        ["tur", "/nonexistent/sdz"],
        ["opcodes", "/dev/sg-none"],
        ["modes", "/dev/sg-none"],
        ["logs", "/dev/sg-none"],
        ["raw", "/dev/sg-none", "12 00 00 00 24 00", "--in", "36"],
        ["read", "/dev/sg-none", "--count", "1", "-o", os.devnull],
        ["write", "/dev/sg-none", "-i", os.devnull, "--allow-data-loss"],
        ["bench", "/dev/sg-none", "--seconds", "0.1"],
    ],
)
def test_no_such_device_exits_4(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == EXIT_NO_DEVICE, err
    assert "no such device" in err and out == ""


def test_no_such_device_in_json(capsys):
    code, out, _ = run(capsys, "inq", "--json", "/dev/sg-none")
    assert code == EXIT_NO_DEVICE
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == EXIT_NO_DEVICE and doc["device"] == "/dev/sg-none"


def test_a_file_that_is_not_a_device_is_no_such_device(capsys, tmp_path):
    f = tmp_path / "plain"
    f.write_bytes(b"")
    code, _, err = run(capsys, "inq", str(f))
    assert code == EXIT_NO_DEVICE and "not a device node" in err


@pytest.mark.parametrize("cdb", ["12", "12 00 00 00 24", "00" * 33, "00" * 260, "00" * 261])
def test_raw_refuses_a_cdb_length_sg_does_not_carry_before_opening_anything(capsys, cdb):
    code, out, err = run(capsys, "raw", "--json", "/dev/sg-none", cdb)
    assert code == EXIT_USAGE, err
    n = len(bytes.fromhex(cdb))
    assert f"the CDB has {n} byte(s); /dev/sg-none takes CDBs of 6 to " in err
    doc = json.loads(out)["error"]
    assert doc["exit_code"] == EXIT_USAGE and "6 to" in doc["message"]


def test_raw_takes_the_cdb_lengths_the_channel_states(monkeypatch):
    from sgpy.channel import Channel

    monkeypatch.setattr(Channel, "cdb_lengths", (6, 20), raising=False)
    assert cli._cdb_lengths(None, "/dev/sg0") == (6, 20)
    assert cli._cdb_lengths(None, "iscsi://host/iqn.2003-01.org.example:disk/0") == (6, 16)


def test_a_field_value_out_of_range_is_a_usage_error(capsys):
    code, out, err = run(capsys, "luns", "--json", "/dev/sg-none", "--select", "256")
    assert code == EXIT_USAGE and "0 to 255" in err
    assert json.loads(out)["error"]["exit_code"] == EXIT_USAGE


def test_a_directory_is_no_such_device(capsys, tmp_path):
    for argv in (["inq", str(tmp_path)], ["raw", str(tmp_path), "12 00 00 00 24 00", "--in", "36"],
                 ["read", str(tmp_path), "--count", "1", "-o", os.devnull]):
        code, out, err = run(capsys, *argv, "--json")
        assert code == EXIT_NO_DEVICE, err
        assert "is a directory" in err and "Traceback" not in err
        assert json.loads(out)["error"]["exit_code"] == EXIT_NO_DEVICE


def _fake_sysfs(tmp_path):
    sysfs = tmp_path / "sys"
    dev = tmp_path / "dev"
    dev.mkdir()
    for name, hctl, node in (("sg0", "0:0:0:0", "sda"), ("sg1", "0:0:1:0", None)):
        lu = sysfs / "devices" / hctl
        lu.mkdir(parents=True)
        for attr, value in (("type", "0"), ("vendor", "Linux"), ("model", "scsi_debug"), ("rev", "0191")):
            (lu / attr).write_text(value + "\n")
        if node:
            (lu / "block" / node).mkdir(parents=True)
        sg = lu / "scsi_generic" / name
        sg.mkdir(parents=True)
        os.symlink(f"../../../{hctl}", sg / "device")
        (sysfs / "class" / "scsi_generic").mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(sg, sysfs / "class" / "scsi_generic"), sysfs / "class" / "scsi_generic" / name)
        (dev / name).write_bytes(b"")
    return str(sysfs), str(dev)


def test_list_reads_sysfs(capsys, tmp_path, monkeypatch):
    sysfs, dev = _fake_sysfs(tmp_path)
    lu = os.path.join(sysfs, "devices", "0:0:0:0")
    os.makedirs(os.path.join(lu, "block", "sda", "queue"), exist_ok=True)
    with open(os.path.join(lu, "block", "sda", "size"), "w") as f:
        f.write("131072\n")
    with open(os.path.join(lu, "block", "sda", "queue", "logical_block_size"), "w") as f:
        f.write("512\n")
    with open(os.path.join(lu, "wwid"), "w") as f:
        f.write("naa.33333330000007d0\n")
    with open(os.path.join(lu, "vpd_pg80"), "wb") as f:
        f.write(b"\x00\x80\x00\x042000")
    monkeypatch.setattr(devices, "SYSFS", sysfs)
    monkeypatch.setattr(devices, "DEV", dev)
    code, out, _ = run(capsys, "list")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["SG", "H:C:T:L", "TYPE", "VENDOR", "MODEL", "REV", "DEVICE", "SIZE", "TRANSPORT",
                                "WWN", "SERIAL", "ACCESS"]
    assert lines[1].split() == [f"{dev}/sg0", "0:0:0:0", "disk", "Linux", "scsi_debug", "0191", f"{dev}/sda",
                                "67.1MB", "-", "naa.33333330000007d0", "2000", "rw"]
    assert lines[2].split()[6:11] == ["-"] * 5
    # the columns line up
    assert len({line.index("0:0:") for line in lines[1:]}) == 1
    assert len({line.index("ACCESS" if i == 0 else "rw") for i, line in enumerate(lines)}) == 1
    code, out, _ = run(capsys, "list", "--long")
    lines = out.splitlines()
    assert lines[0].split()[11:] == ["STATE", "BLOCK", "QD", "DRIVER", "PORT", "ACCESS"]
    assert lines[1].split()[11:] == ["-", "512", "-", "-", "-", "rw"]
    code, out, _ = run(capsys, "list", "--json")
    doc = json.loads(out)
    assert list(doc) == ["devices"] and [d["name"] for d in doc["devices"]] == ["sg0", "sg1"]
    assert list(doc["devices"][0]) == [
        "path", "name", "hctl", "host", "channel", "target", "lun", "type", "type_name", "vendor", "model", "revision",
        "device_node", "accessible", "state", "size_bytes", "logical_block_size", "serial", "wwn", "transport",
        "transport_address", "host_driver", "queue_depth"]
    first, second = doc["devices"]
    assert (first["size_bytes"], first["serial"], first["wwn"]) == (67108864, "2000", "naa.33333330000007d0")
    assert (second["size_bytes"], second["serial"], second["wwn"]) == (None, None, None)
    code, out, _ = run(capsys, "list", "--long", "--json")
    assert json.loads(out) == doc  # --long adds columns to the table; the JSON has every key already


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (999, "999B"), (1000, "1.00kB"), (1999999, "1.99MB"), (67108864, "67.1MB"), (123456789, "123MB"),
    (4 * 10**12, "4.00TB"), (10**12 - 1, "999GB"), (2**64, "18.4EB"), (10**27, "1000YB")])
def test_sizes_are_given_as_lsscsi_gives_them(n, text):
    from sgpy.cli import si_size

    assert si_size(n) == text


def test_list_without_sg_devices(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "SYSFS", str(tmp_path))
    code, out, err = run(capsys, "list")
    assert code == EXIT_OK and out == "" and "no sg devices" in err
    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == {"devices": []}


class Color(enum.IntEnum):
    RED = 1


@attrs.frozen
class Inner:
    raw: bytes
    color: Color


@attrs.frozen
class Outer:
    n: int
    flag: bool
    inner: Inner
    items: tuple
    ident: uuid.UUID
    nothing: object = None


def test_jsonable():
    u = uuid.UUID(int=5)
    value = Outer(7, True, Inner(b"\x01\xff", Color.RED), (Inner(b"", Color.RED), 3), u)
    assert jsonable(value) == {
        "n": 7, "flag": True, "inner": {"raw": "01ff", "color": "RED"},
        "items": [{"raw": "", "color": "RED"}, 3], "ident": str(u), "nothing": None,
    }
    assert json.dumps(jsonable(value))


def test_words():
    assert cli._words("ReadWriteErrorRecoveryPage") == "Read write error recovery page"
    assert cli._words("SupportedVpdPages") == "Supported VPD pages"
    assert cli._words("DeviceIdentification") == "Device identification"


def test_the_kernel_out_of_memory_is_a_local_failure_not_a_device_error():
    import errno

    from sgpy import errors

    failure = cli._out_of_kernel_memory("/dev/sg0", OSError(errno.ENOMEM, "SG_IO: Cannot allocate memory"))
    assert failure is not None and "smaller transfer" in str(failure) and "/dev/sg0" in str(failure)
    assert cli._out_of_kernel_memory("/dev/sg0", OSError(errno.EIO, "SG_IO")) is None
    if hasattr(errors, "KernelMemoryError"):
        assert cli._out_of_kernel_memory("/dev/sg0", errors.KernelMemoryError("no memory")) is not None


# -- sense from anywhere (as sg_decode_sense: arguments, stdin, --file, --binary) ---------------------

_SENSE_24 = "70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00"


@pytest.mark.parametrize("spelling", [
    _SENSE_24,
    _SENSE_24.replace(" ", ""),
    _SENSE_24.replace(" ", ":"),
    _SENSE_24.replace(" ", "-"),
    ",".join("0x" + b.lstrip("0").lower() if b != "00" else "0x0" for b in _SENSE_24.split()),
    " ".join("0x" + b for b in _SENSE_24.split()),
])
def test_sense_accepts_the_usual_spellings_of_hex_bytes(capsys, spelling):
    code, out, err = run(capsys, "sense", spelling)
    assert code == EXIT_OK, err
    assert out.startswith("ILLEGAL REQUEST — Invalid field in CDB (24h/00h)")


def test_sense_reads_hex_from_standard_input(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(_SENSE_24.replace(" 00 00 00 00 24", "\n00 00 00 00 24")
                                                                   .encode())))
    code, out, err = run(capsys, "sense", "-")
    assert code == EXIT_OK, err
    assert "(24h/00h)" in out.splitlines()[0]


def test_sense_reads_a_hex_file_and_a_binary_file(capsys, tmp_path):
    text = tmp_path / "sense.txt"
    text.write_text("# from a log\n" .replace("# from a log\n", "") + _SENSE_24 + "\n")
    code, out, err = run(capsys, "sense", "--file", str(text))
    assert code == EXIT_OK, err
    assert "(24h/00h)" in out
    binary = tmp_path / "sense.bin"
    binary.write_bytes(bytes.fromhex(_SENSE_24))
    code, out, err = run(capsys, "sense", "--binary", str(binary))
    assert code == EXIT_OK, err
    assert "(24h/00h)" in out


@pytest.mark.parametrize("argv, words", [
    ([], "no sense bytes given"),
    (["-"], "no sense bytes given"),
    (["--file", "{empty}"], "no sense bytes given"),
    (["--binary", "{empty}"], "no sense bytes given"),
    (["70", "--binary", "{empty}"], "one way"),
    (["zz"], "hexadecimal"),
])
def test_sense_without_bytes_fails_loudly(capsys, monkeypatch, tmp_path, argv, words):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    argv = [a.format(empty=empty) for a in argv]
    code, out, err = run(capsys, "sense", *argv)
    assert code == 2 and words in err, err
    code, out, err = run(capsys, "sense", *argv, "--json")
    assert code == 2 and words in json.loads(out)["error"]["message"]
