"""The ``sgpy`` command line: list devices, query them, send raw CDBs, benchmark.

Verbs follow sg3_utils, lsscsi, sdparm, smartctl and fio: ``list``, ``inq``,
``vpd``, ``info``, ``readcap``, ``luns``, ``zones`` (REPORT ZONES, sg_rep_zones),
``tur``, ``sense``, ``opcodes``, ``modes`` (with ``--set`` and ``--defaults``,
MODE SELECT), ``control`` (sdparm --command), ``logs``, ``health``, ``raw``,
``read``, ``write``, ``copy`` (device to device), ``bench`` and ``conform``.
Every verb takes ``--json``; the keys of each answer are documented in
``docs/cli.rst``, given with their types in :data:`JSON_SCHEMA_PATH`, and
do not change.  The verbs
that show one response also take ``--hex`` and ``--raw`` (its bytes, as
sg3_utils' ``-H`` and ``-r``).

Exit status (:data:`EXIT_CODES`): 0 success, 1 another failure (a local
file, an answer that cannot be parsed), 2 usage error, 3 the device
reported an error (the decoded sense goes to stderr), 4 no such device,
5 permission denied, 6 refused by the safety policy (the command would
change data: ``--allow-data-loss``; or destroy it: ``--allow-irreversible``),
130 interrupted.  ``health`` keeps these in bits 0-2 of its exit
status and adds its findings in bits 3-6 (:class:`sgpy.health.Finding`).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import errno
import itertools
import json
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from types import MappingProxyType
from typing import (
    IO,
    Any,
    BinaryIO,
    Callable,
    ContextManager,
    Dict,
    Iterator,
    List,
    Mapping,
    NoReturn,
    Optional,
    Sequence,
    Tuple,
)

import attrs

from sgpy import safety
from sgpy import sense as _sense
from sgpy.constants import Direction, PeripheralDeviceType, ScsiStatus, opcode_name
from sgpy.errors import (
    EncodeError,
    IllegalRequest,
    MalformedResponse,
    NotAnSgDevice,
    SgError,
    TaskFailed,
    TransferTooLarge,
    UnitAttention,
    UnsafeCommand,
)

__all__ = [
    "main",
    "build_parser",
    "jsonable",
    "with_hex",
    "page_by_name",
    "PAGE_NAMES",
    "JSON_EXACT_LIMIT",
    "JSON_SCHEMA_PATH",
    "parse_size",
    "si_size",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_DEVICE_ERROR",
    "EXIT_NO_DEVICE",
    "EXIT_PERMISSION",
    "EXIT_REFUSED",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "CONTROL_ACTIONS",
    "COPY_QD",
    "ZONE_REPORTING_OPTIONS",
    "ZONES_MAXLEN",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DEVICE_ERROR = 3
EXIT_NO_DEVICE = 4
EXIT_PERMISSION = 5
EXIT_REFUSED = 6
EXIT_INTERRUPTED = 130

#: Exit status -> what it means.
EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "another failure (local file, unparsable answer)",
    EXIT_USAGE: "usage error",
    EXIT_DEVICE_ERROR: "the device reported an error",
    EXIT_NO_DEVICE: "no such device",
    EXIT_PERMISSION: "permission denied",
    EXIT_REFUSED: "refused by the safety policy",
    EXIT_INTERRUPTED: "interrupted",
}

# -- failures the verbs raise --------------------------------------------------


class UsageError(Exception):
    """A bad argument value (exit status 2)."""


class _NoDevice(Exception):
    """The device does not exist or is not an sg device (exit status 4)."""


class _NoPermission(Exception):
    """The device exists but may not be opened (exit status 5)."""


class _Refused(Exception):
    """The safety policy refused the command (exit status 6)."""

    def __init__(self, message: str, risk: safety.Risk) -> None:
        super().__init__(message)
        self.risk = risk


class _DeviceError(Exception):
    """A command failed on the device (exit status 3); ``error`` is the TaskFailed."""

    def __init__(self, device: str, error: TaskFailed) -> None:
        super().__init__(str(error))
        self.device = device
        self.error = error


# -- JSON ----------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: attrs values become objects of their fields,
    enums their names, bytes lower-case hex, UUIDs strings, tuples lists."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if attrs.has(type(value)):
        return {f.name: jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


#: Integers from this magnitude on lose precision as JSON numbers in many readers (JavaScript's
#: Number, any parser that makes doubles of them): :func:`with_hex` gives them in hex as well.
JSON_EXACT_LIMIT = 2**53


#: The schema of every verb's ``--json`` answer, shipped with the package (docs/cli.rst, "JSON schema"): a
#: subset of JSON Schema draft 2020-12, ``variants`` holding one schema per verb or option that changes the keys.
JSON_SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli_schema.json")


def with_hex(value: Any) -> Any:
    """``value`` (JSON types) with, beside every object member ``KEY`` whose value is an integer of
    magnitude :data:`JSON_EXACT_LIMIT` or more, a member ``KEY_hex`` holding it as a hex string.

    LBAs, capacities in blocks or bytes, NAA identifiers and 64-bit counters
    can be that large; a reader that keeps JSON numbers as doubles rounds
    them, and the hex string lets it have the exact value.  Smaller integers
    are left alone, so the keys of an answer only grow where a number needs
    it.  Members of lists are looked into, lists of bare integers are not.
    """
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for key, item in value.items():
            out[key] = with_hex(item)
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= JSON_EXACT_LIMIT \
                    and f"{key}_hex" not in value:
                out[f"{key}_hex"] = hex(item)
        return out
    if isinstance(value, list):
        return [with_hex(item) for item in value]
    return value


def _sense_json(sense: Any) -> Optional[Dict[str, Any]]:
    """The JSON object of decoded sense data (None stays None): its fields, plus what a reader of the
    JSON could not work out alone (the sense key's code, the T10 text, each part's kind and text)."""
    if sense is None:
        return None
    out = jsonable(sense)
    out["sense_key_code"] = int(sense.sense_key)
    out["description"] = sense.description
    out["deferred"] = sense.deferred
    out["text"] = str(sense)
    if sense.sense_key_specific is not None:
        out["sense_key_specific"]["kind"] = type(sense.sense_key_specific).__name__
        out["sense_key_specific"]["text"] = str(sense.sense_key_specific)
    for d, obj in zip(out["descriptors"], sense.descriptors):
        d["kind"] = type(obj).__name__
        d["text"] = str(obj)
    return out


# -- output --------------------------------------------------------------------


class _Out:
    """Where a verb writes: JSON, aligned text, a hexdump or raw bytes on stdout, diagnostics on stderr.

    ``hex`` and ``raw`` (``--hex``, ``--raw``) ask for the response's bytes
    instead of its decoding; the verbs that have one response pass it to
    :meth:`dump`.
    """

    def __init__(self, as_json: bool, stdout: IO[str], stderr: IO[str], *, hex: bool = False,
                 raw: bool = False) -> None:
        self.json = as_json
        self.hex = hex
        self.raw = raw
        self.stdout = stdout
        self.stderr = stderr

    @property
    def dumping(self) -> bool:
        """Whether the response's bytes are wanted rather than its decoding (``--hex`` or ``--raw``)."""
        return self.hex or self.raw

    def dump(self, data: bytes) -> None:
        """``data`` as ``--hex`` (a hexdump: offset, 16 bytes, their ASCII) or ``--raw`` (the bytes) wants it."""
        if self.raw:
            self.stdout.flush()
            sink = getattr(self.stdout, "buffer", None)
            if sink is None:
                raise _Failure("--raw writes bytes: standard output takes only text here")
            sink.write(bytes(data))
            sink.flush()
        else:
            _hexdump(self, bytes(data), indent="")

    def emit(self, obj: Any) -> None:
        """``obj`` as indented JSON, with the hex strings of :func:`with_hex` beside its large integers."""
        self.stdout.write(json.dumps(with_hex(obj), indent=2) + "\n")

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> None:
        cells = [list(header)] + [[str(c) for c in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for r in cells:
            self.line((indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip())

    def fields(self, rows: Sequence[Tuple[str, Any]], indent: str = "  ") -> None:
        if not rows:
            return
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            self.line(f"{indent}{k.ljust(width)}  {v}")


def _words(name: str) -> str:
    """``ReadWriteErrorRecoveryPage`` -> ``Read write error recovery page``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).lower().split()
    words = [w.upper() if w in ("vpd", "lba", "ata", "lun", "lu") else w for w in words]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _show(value: Any) -> str:
    """A field value for people."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, (bytes, bytearray)):
        if not value:
            return "-"
        text = bytes(value[:32]).hex(" ")
        return text + (f" ... ({len(value)} bytes)" if len(value) > 32 else "")
    if value is None:
        return "-"
    return str(value)


def _render(out: _Out, obj: Any, indent: str = "  ", skip: Sequence[str] = ()) -> None:
    """Every field of an attrs value, aligned; nested values and lists indented."""
    rows: List[Tuple[str, Any]] = []
    nested: List[Tuple[str, Any]] = []
    for f in attrs.fields(type(obj)):
        if f.name in skip or f.name in ("raw", "truncated", "wanted_length"):
            continue
        v = getattr(obj, f.name)
        if attrs.has(type(v)) or (isinstance(v, tuple) and v and attrs.has(type(v[0]))):
            nested.append((f.name, v))
        elif isinstance(v, tuple):
            rows.append((f.name.replace("_", " "), ", ".join(_show(x) for x in v) or "-"))
        else:
            rows.append((f.name.replace("_", " "), _show(v)))
    out.fields(rows, indent)
    for name, v in nested:
        items = v if isinstance(v, tuple) else (v,)
        for i, item in enumerate(items):
            title = name.replace("_", " ") + (f" [{i}]" if isinstance(v, tuple) else "")
            described = str(item) if type(item).__str__ is not object.__str__ else _words(type(item).__name__)
            out.line(f"{indent}{title}: {described}")
            _render(out, item, indent + "  ")


def _hexdump(out: _Out, data: bytes, indent: str = "  ") -> None:
    """``data`` as sg3_utils' ``-H`` shows it: per line the offset, 16 bytes in hex (two groups of
    eight), and those bytes as ASCII (``.`` for what is not printable)."""
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.line(f"{indent}{off:04x}  {chunk[:8].hex(' '):<23}  {chunk[8:].hex(' '):<23}  {text}")


def _type_name(code: int) -> str:
    """A peripheral device type's name in lower case (``disk``), or ``type_XXh`` for a code sgpy does not name."""
    try:
        return PeripheralDeviceType(code).name.lower()
    except ValueError:
        return f"type_{code:02x}h"


# -- arguments -----------------------------------------------------------------

#: The longest ``--timeout``, in milliseconds: ``sg_io_hdr.timeout`` is a
#: 32-bit unsigned count of milliseconds (include/uapi/scsi/sg.h).
TIMEOUT_MAX_MS = 0xFFFFFFFF

#: The longest ``bench --seconds``: 365 days.
BENCH_SECONDS_MAX = 365 * 24 * 3600

#: The most commands ``bench --count`` runs (the jobs count them in 64-bit signed integers).
BENCH_COUNT_MAX = 2**63 - 1

#: The highest ``bench --rate-iops``: one command per nanosecond (the rate limit's clock).
BENCH_RATE_MAX = 10**9

#: ``bench --rw`` patterns that write, and those that mix reads and writes (fio's names).
_BENCH_WRITES = ("write", "randwrite", "rw", "randrw")
_BENCH_MIXED = ("rw", "randrw")


def parse_size(text: str) -> int:
    """``512``, ``4k``, ``64K``, ``1m``, ``2MiB``... in bytes (k and m are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgKMG]?)(?:i?[bB])?\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512, 4k, 1m)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def _int(text: str) -> int:
    """An argparse type: a non-negative integer, decimal or ``0x`` hex (SCSI people write both)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (decimal, or 0x.. for hex)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive(text: str) -> int:
    """An argparse type: an integer of at least 1 (a count or a depth of 0 means nothing)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _size(text: str) -> int:
    """A size of at least one byte (``--bs``, ``--chunk``): zero bytes per command moves nothing."""
    value = parse_size(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte: {text!r}")
    return value


def _int_range(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer (decimal or 0x..) from ``low`` to ``high``, ``what`` naming the range."""

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {what} is {low} to {high}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def _decimal_seconds(text: str) -> Decimal:
    """``text`` as a finite number of seconds more than 0 (exact: no binary rounding)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds: {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _seconds(text: str) -> float:
    """``bench --seconds``: more than 0, at most :data:`BENCH_SECONDS_MAX`."""
    value = _decimal_seconds(text)
    if value > BENCH_SECONDS_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range: a run lasts at most {BENCH_SECONDS_MAX} "
                                         "seconds (365 days)")
    seconds = float(value)
    if not seconds > 0:  # 1e-999 is more than 0 as a Decimal, not as a float
        raise argparse.ArgumentTypeError(f"too short to measure: {text!r}")
    return seconds


def _timeout(text: str) -> int:
    """``--timeout S`` in whole milliseconds (rounded up), 1 to :data:`TIMEOUT_MAX_MS`.

    The kernel takes a command's timeout as a 32-bit count of milliseconds
    (``sg_io_hdr.timeout``); anything beyond cannot be passed on.
    """
    value = _decimal_seconds(text)
    most = Decimal(TIMEOUT_MAX_MS).scaleb(-3)
    if value > most:  # compared before any arithmetic: 1e999999999 overflows a Decimal context
        raise argparse.ArgumentTypeError(f"{text} is out of range: a command timeout is at most "
                                         f"{most} seconds (2**32-1 ms)")
    # At least 1 ms: a timeout of 0 would mean the block layer's default instead.
    return max(1, int(value.scaleb(3).to_integral_value(rounding=ROUND_CEILING)))


def _subpage(text: str) -> int:
    """An argparse type: a subpage code, 0 to FFh (one byte of the CDB)."""
    value = _int(text)
    if value > 0xFF:
        raise argparse.ArgumentTypeError(f"a subpage code is 0..0xff, not {text}")
    return value


def _hex_bytes(parts: Sequence[str], what: str) -> bytes:
    """Bytes from hex text: separated by spaces, colons, commas or dashes or not at all, each group
    with or without a ``0x`` prefix (``70 00 05``, ``0x70,0x0,0x5``, ``70:00:05``, ``700005``)."""
    groups = [g for g in re.split(r"[\s:,-]+", " ".join(parts)) if g]
    groups = [g[2:] if g.lower().startswith("0x") else g for g in groups]
    if len(groups) > 1:  # separated groups: "0" and "5" are whole bytes (as in 0x0, 0x5)
        groups = [g.zfill(2) if len(g) == 1 else g for g in groups]
    text = "".join(groups)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"{what} must be hexadecimal bytes (e.g. '12 00 00 00 24 00'), got {' '.join(parts)!r}") \
            from None


# -- page names ------------------------------------------------------------------

#: VPD, mode and log pages by name: ``(page, subpage, acronym, long names...)``.
#: The acronyms are those of sg3_utils (sg_vpd and sg_inq for VPD pages,
#: sdparm for mode pages, sg_logs for log pages); a few shorter aliases that
#: these tools do not define but that cannot be mistaken for another page of
#: the same kind follow the long names.  :data:`PAGE_NAMES` is built from it.
_PAGE_TABLE: Mapping[str, Tuple[Tuple[Any, ...], ...]] = MappingProxyType({
    "vpd": (
        (0x00, 0, "sv", "supported", "supported-vpd-pages"),
        (0x80, 0, "sn", "serial", "unit-serial-number"),
        (0x81, 0, "iod", "implemented-operating-definition"),
        (0x82, 0, "aod", "ascii-operating-definition"),
        (0x83, 0, "di", "device-identification", "identification"),
        (0x84, 0, "sii", "software-interface-identification"),
        (0x85, 0, "mna", "management-network-addresses"),
        (0x86, 0, "ei", "extended-inquiry", "extended-inquiry-data"),
        (0x87, 0, "mpp", "mode-page-policy"),
        (0x88, 0, "sp", "scsi-ports"),
        (0x89, 0, "ai", "ata-information", "ata"),
        (0x8A, 0, "pc", "power-condition"),
        (0x8B, 0, "dc", "device-constituents"),
        (0x8C, 0, "cfa", "cfa-profile-information"),
        (0x8D, 0, "psm", "power-consumption"),
        (0x8F, 0, "tpc", "third-party-copy"),
        (0x90, 0, "pslu", "protocol-specific-lu-information"),
        (0x91, 0, "pspo", "protocol-specific-port-information"),
        (0x92, 0, "sfs", "scsi-feature-sets"),
        (0xB0, 0, "bl", "block-limits"),
        (0xB1, 0, "bdc", "block-device-characteristics"),
        (0xB2, 0, "lbpv", "logical-block-provisioning"),
        (0xB3, 0, "ref", "referrals"),
        (0xB4, 0, "sbl", "supported-block-lengths"),
        (0xB5, 0, "bdce", "block-device-characteristics-extension"),
        (0xB6, 0, "zbdch", "zoned-block-device-characteristics", "zbdc"),
        (0xB7, 0, "ble", "block-limits-extension"),
        (0xB8, 0, "fp", "format-presets"),
        (0xB9, 0, "cpr", "concurrent-positioning-ranges"),
    ),
    "mode": (
        (0x01, 0, "rw", "read-write-error-recovery", "rw-error-recovery"),
        (0x02, 0, "dr", "disconnect-reconnect"),
        (0x03, 0, "fo", "format"),
        (0x04, 0, "rd", "rigid-disk"),
        (0x07, 0, "ve", "verify-error-recovery"),
        (0x08, 0, "ca", "caching"),
        (0x0A, 0, "co", "control"),
        (0x0A, 0x01, "coe", "control-extension"),
        (0x0A, 0x02, "atag", "application-tag"),
        (0x0A, 0x03, "cdla", "command-duration-limit-a"),
        (0x0A, 0x04, "cdlb", "command-duration-limit-b"),
        (0x0A, 0xF1, "pat", "sat-pata-control"),
        (0x0A, 0xF2, "afc", "sat-ata-feature-control"),
        (0x18, 0, "pl", "protocol-specific-lu"),
        (0x19, 0, "pp", "protocol-specific-port"),
        (0x1A, 0, "po", "power-condition", "pc"),
        (0x1A, 0x01, "ps", "power-consumption"),
        (0x1A, 0xF1, "apo", "sat-ata-power-condition"),
        (0x1C, 0, "ie", "informational-exceptions", "informational-exceptions-control", "iec"),
        (0x1C, 0x01, "bc", "background-control"),
        (0x1C, 0x02, "lbp", "logical-block-provisioning"),
        (0x3F, 0, "all", "all-pages"),
    ),
    "log": (
        (0x00, 0, "sp", "supported", "supported-pages"),
        (0x00, 0xFF, "ssp", "supported-subpages", "supported-pages-and-subpages"),
        (0x01, 0, "bou", "buffer-over-under-run"),
        (0x02, 0, "we", "write-errors", "write-error-counters"),
        (0x03, 0, "re", "read-errors", "read-error-counters"),
        (0x04, 0, "rre", "read-reverse-errors", "read-reverse-error-counters"),
        (0x05, 0, "ve", "verify-errors", "verify-error-counters"),
        (0x06, 0, "nm", "non-medium", "non-medium-errors"),
        (0x07, 0, "lne", "last-n-errors"),
        (0x08, 0, "fs", "format-status"),
        (0x0B, 0, "lnd", "last-n-deferred-errors"),
        (0x0B, 0x01, "lnic", "last-n-inquiry-data-changed"),
        (0x0B, 0x02, "lnmc", "last-n-mode-page-data-changed"),
        (0x0C, 0, "lbp", "logical-block-provisioning"),
        (0x0D, 0, "temp", "temperature"),
        (0x0D, 0x01, "enr", "environmental-reporting"),
        (0x0D, 0x02, "enl", "environmental-limits"),
        (0x0E, 0, "sscc", "start-stop", "start-stop-cycle-counter", "ss"),
        (0x0E, 0x01, "util", "utilization"),
        (0x0F, 0, "ac", "application-client"),
        (0x10, 0, "str", "self-test", "self-test-results", "st"),
        (0x11, 0, "ssm", "solid-state-media", "ssd"),
        (0x14, 0x01, "zbds", "zoned-block-device-statistics"),
        (0x15, 0, "bsr", "background-scan", "background-scan-results", "bs"),
        (0x15, 0x01, "pd", "pending-defects"),
        (0x15, 0x02, "bop", "background-operation"),
        (0x15, 0x03, "lps", "lps-misalignment"),
        (0x16, 0, "aptr", "ata-pass-through-results"),
        (0x17, 0, "nvc", "non-volatile-cache"),
        (0x18, 0, "psp", "protocol-specific-port"),
        (0x19, 0, "gsp", "general-statistics", "general-statistics-and-performance"),
        (0x19, 0x20, "cms", "cache-memory-statistics"),
        (0x19, 0x21, "cdl", "command-duration-limits-statistics"),
        (0x1A, 0, "pct", "power-condition-transitions"),
        (0x2F, 0, "ie", "informational-exceptions"),
    ),
})


def _build_page_names() -> Mapping[str, Mapping[str, Tuple[int, int]]]:
    """:data:`PAGE_NAMES` from :data:`_PAGE_TABLE`; a name given twice for one kind is a bug here."""
    kinds: Dict[str, Mapping[str, Tuple[int, int]]] = {}
    for kind, rows in _PAGE_TABLE.items():
        names: Dict[str, Tuple[int, int]] = {}
        for page, subpage, *words in rows:
            for word in words:
                if word in names:
                    raise AssertionError(f"{kind} page name {word!r} is given twice")
                names[word] = (page, subpage)
        kinds[kind] = MappingProxyType(names)
    return MappingProxyType(kinds)


#: Page names: kind (``"vpd"``, ``"mode"``, ``"log"``) -> name (lower case,
#: words joined by ``-``) -> ``(page code, subpage code)``.
PAGE_NAMES: Mapping[str, Mapping[str, Tuple[int, int]]] = _build_page_names()

#: ``--vpd`` page acronyms (sg_vpd's) -> page code.
VPD_NAMES: Mapping[str, int] = MappingProxyType({rows[2]: rows[0] for rows in _PAGE_TABLE["vpd"]})

#: The highest page code of each kind: VPD pages have 8 bits, mode and log pages 6.
_PAGE_MAX = MappingProxyType({"vpd": 0xFF, "mode": 0x3F, "log": 0x3F})


def _known_pages(kind: str) -> str:
    """The names of ``kind``'s pages for a message: ``sn/serial/unit-serial-number=80h, ...``."""
    parts = []
    for page, subpage, *words in _PAGE_TABLE[kind]:
        code = f"{page:02X}h" + (f"/{subpage:02X}h" if subpage else "")
        parts.append("/".join(words) + "=" + code)
    return ", ".join(parts)


def page_by_name(kind: str, text: str) -> Tuple[int, Optional[int]]:
    """``(page, subpage)`` of a page given as a number (decimal or 0x hex) or a name of :data:`PAGE_NAMES`.

    Names are case-insensitive, and ``_`` or a space may stand for ``-``.
    A number gives no subpage (None: ``--subpage`` decides); a name gives
    its page's.  Anything else raises ``argparse.ArgumentTypeError``,
    naming the known pages, so that the parser reports a usage error.
    """
    word = re.sub(r"[\s_]+", "-", text.strip().lower())
    named = PAGE_NAMES[kind].get(word)
    if named is not None:
        return named
    if not re.fullmatch(r"\d+|0x[0-9a-f]+", word):
        raise argparse.ArgumentTypeError(f"unknown {kind} page {text!r}: give a page code (decimal or 0x..) "
                                         f"or one of {_known_pages(kind)}")
    value = int(word, 0)
    if value > _PAGE_MAX[kind]:
        raise argparse.ArgumentTypeError(f"a {kind} page code is 0..0x{_PAGE_MAX[kind]:x}, not {text}")
    return value, None


def _page_type(kind: str) -> Callable[[str], Tuple[int, Optional[int]]]:
    """An argparse type for a ``kind`` page (see :func:`page_by_name`)."""

    def parse(text: str) -> Tuple[int, Optional[int]]:
        return page_by_name(kind, text)

    parse.__name__ = f"{kind} page"
    return parse


def _page_and_subpage(named: Optional[Tuple[int, Optional[int]]], subpage: Optional[int], default: int,
                      kind: str) -> Tuple[int, int]:
    """The page and subpage to ask for: PAGE (a code or a name, or ``default``) and ``--subpage``.

    A name that carries a subpage and a ``--subpage`` that says otherwise
    contradict each other: a usage error rather than a guess.
    """
    page, named_sub = named if named is not None else (default, None)
    if named_sub is not None and subpage is not None and subpage != named_sub:
        raise UsageError(f"{kind} page {page:02X}h/{named_sub:02X}h was named, but --subpage says {subpage:02X}h")
    return page, named_sub if named_sub is not None else (subpage or 0)


# -- devices and channels ------------------------------------------------------


def _resolve(name: str) -> str:
    """The sg node for ``name`` (sg/sd/st/sr node, H:C:T:L...), or ``name`` itself."""
    from sgpy import devices

    if name[:8].lower() == "iscsi://":
        return name  # a remote LUN: Channel.from_url logs in
    try:
        path = devices.find(name).path
    except FileNotFoundError:
        pass
    else:
        try:
            if os.stat(name).st_rdev == os.stat(path).st_rdev:
                return name  # an sg node already (perhaps another name for it): keep the one given
        except OSError:
            pass
        return path
    if os.path.exists(name):
        return name  # not in sysfs: let the channel say what it is
    raise _NoDevice(f"{name}: no such device (see 'sgpy list')")


#: Errors of open(2) that mean "there is no device there" (exit status 4):
#: no such file, a directory, a path through a file, a node without a driver.
_NO_DEVICE_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENXIO, errno.ENODEV})


def _open(args: argparse.Namespace, **options: Any) -> Any:
    """A channel on the verb's DEVICE, with its --timeout; maps opening failures to exit codes."""
    from sgpy.channel import Channel

    path = _resolve(args.device)
    if getattr(args, "timeout", None) is not None:
        options["timeout"] = args.timeout  # already in milliseconds (_timeout)
    if path[:8].lower() == "iscsi://":
        return _open_iscsi(path, options)
    try:
        return Channel.from_path(path, **options)
    except PermissionError as exc:
        raise _NoPermission(exc.strerror or str(exc)) from None
    except NotAnSgDevice as exc:
        raise _NoDevice(exc.strerror or str(exc)) from None
    except OSError as exc:
        if exc.errno in _NO_DEVICE_ERRNOS:
            reason = os.strerror(exc.errno).lower() if exc.errno is not None else "cannot be opened"
            raise _NoDevice(f"{path}: {reason}, not a device node (sg, bsg or block device; see 'sgpy list')") \
                from None
        raise
    except (ValueError, TypeError) as exc:  # an option the channel refuses (e.g. the timeout)
        raise UsageError(str(exc)) from None


def _open_iscsi(url: str, options: Dict[str, Any]) -> Any:
    """An iSCSI channel; a failed login becomes permission denied, anything else no such device."""
    from sgpy import iscsi

    try:
        return iscsi.IscsiChannel.from_url(url, **options)
    except (iscsi.AuthenticationFailed, iscsi.AuthorizationFailed) as exc:
        raise _NoPermission(str(exc)) from None
    except (iscsi.IscsiConnectError, iscsi.LoginFailed, iscsi.NoSuchLun, iscsi.IscsiUrlError) as exc:
        raise _NoDevice(str(exc)) from None


def _execute(ch: Any, cmd: Any, **options: Any) -> Any:
    """Execute ``cmd`` (or a list of commands) synchronously, once more after a UNIT ATTENTION.

    A unit attention (power on, reset, parameters changed...) is reported
    once, to the first command after the event, whatever it is; the command
    itself was not executed (SAM-5 5.14), so it is simply sent again.
    """
    run = ch.execute_many if isinstance(cmd, list) else ch.execute
    try:
        return run(cmd, **options)
    except UnitAttention:
        return run(cmd, **options)


class _Failure(Exception):
    """Another failure (exit status 1) with a message of its own."""


def _out_of_kernel_memory(path: str, exc: BaseException) -> Optional[_Failure]:
    """The failure to report when the kernel could not allocate a command's buffers (ENOMEM), else None.

    Nothing reached the device: it is not a device error (status 3) but a
    local one, and a smaller transfer is the way out.
    """
    from sgpy import errors

    memory_error = getattr(errors, "KernelMemoryError", None)
    if (memory_error is not None and isinstance(exc, memory_error)) or \
            (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
        return _Failure(f"{path}: the kernel could not allocate the buffers of the command; nothing was sent: "
                        "use a smaller transfer (--in, --chunk, --bs)")
    return None


def _run(ch: Any, cmd: Any, *, retry: bool = True) -> Any:
    """Execute ``cmd`` (or a list) synchronously; a failure becomes exit status 3 (1 when the kernel lacked memory)."""
    try:
        return _execute(ch, cmd) if retry else ch.execute(cmd)
    except (TaskFailed, OSError) as exc:
        failure = _out_of_kernel_memory(ch.path, exc)
        if failure is not None:
            raise failure from None
        if isinstance(exc, TaskFailed):
            raise _DeviceError(ch.path, exc) from None
        raise


def _policy(args: argparse.Namespace) -> safety.Policy:
    """The safety policy the verb's ``--allow-data-loss`` and ``--allow-irreversible`` flags ask for."""
    return safety.Policy(allow_data_loss=bool(getattr(args, "allow_data_loss", False)),
                         allow_irreversible=bool(getattr(args, "allow_irreversible", False)))


def _check(args: argparse.Namespace, cmd: Any) -> safety.Risk:
    """Classify ``cmd``; refuse it (exit 6) unless the flags allow it.  Nothing is sent."""
    try:
        return _policy(args).check(cmd, where="sgpy", remedy=(
            "pass --allow-irreversible to send it" if safety.classify(cmd) is safety.Risk.IRREVERSIBLE
            else "pass --allow-data-loss to send it"))
    except UnsafeCommand as exc:
        raise _Refused(str(exc), exc.risk) from None  # type: ignore[attr-defined]


# -- verbs -----------------------------------------------------------------------


def si_size(n: int) -> str:
    """``n`` bytes to three significant figures in SI units, as ``lsscsi -s`` prints sizes:
    ``67.1MB``, ``4.00TB``, ``512B`` (powers of 1000, the figures cut, not rounded)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i, rest = 0, 0
    while n >= 1000 and i < len(units) - 1:
        n, rest = divmod(n, 1000)
        i += 1
    if i == 0 or n >= 100:
        return f"{n}{units[i]}"
    digits = 2 if n < 10 else 1  # decimals that make three figures
    return f"{n}.{rest:03d}"[: len(str(n)) + 1 + digits] + units[i]


def _dash(value: Any) -> str:
    """A table cell: the value, or "-" for none (lsscsi's way)."""
    return "-" if value is None or value == "" else str(value)


def _cmd_list(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy list``: the sg devices from sysfs (lsscsi -g -s --wwn -i -t); nothing is sent, so no
    permission on them is needed.  ``--long`` adds the state, the block size, the queue depth, the
    host's driver and the target port's name."""
    from sgpy import devices

    if args.hosts:
        return _list_hosts(args, out)
    found = devices.devices()
    if out.json:
        out.emit({"devices": [d.to_dict() for d in found]})
        return EXIT_OK
    if not found:
        out.note("no sg devices (is the sg driver loaded?)")
        return EXIT_OK

    header = ["SG", "H:C:T:L", "TYPE", "VENDOR", "MODEL", "REV", "DEVICE", "SIZE", "TRANSPORT", "WWN", "SERIAL"]
    if args.long:
        header += ["STATE", "BLOCK", "QD", "DRIVER", "PORT"]
    rows = []
    for d in found:
        row = [d.path, d.hctl, d.type_name, _dash(d.vendor), _dash(d.model), _dash(d.revision), _dash(d.device_node),
               "-" if d.size_bytes is None else si_size(d.size_bytes), _dash(d.transport), _dash(d.wwn),
               _dash(d.serial)]
        if args.long:
            row += [_dash(d.state), _dash(d.logical_block_size), _dash(d.queue_depth), _dash(d.host_driver),
                    _dash(d.transport_address)]
        rows.append(row + ["rw" if d.accessible else "-"])
    out.table(header + ["ACCESS"], rows)
    return EXIT_OK


def _list_hosts(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy list --hosts``: the SCSI hosts from /sys/class/scsi_host (lsscsi -H, with -t's transport);
    nothing is opened but sysfs attributes.  ``--long`` adds the state and the queueing limits
    (lsscsi -H --long)."""
    from sgpy import devices

    found = devices.hosts()
    if out.json:
        out.emit({"hosts": [h.to_dict() for h in found]})
        return EXIT_OK
    if not found:
        out.note("no SCSI hosts")
        return EXIT_OK

    header = ["HOST", "NAME", "DRIVER", "TRANSPORT", "ADDRESS", "DEVICES"]
    if args.long:
        header += ["STATE", "CAN_QUEUE", "CMD_PER_LUN", "SG_TABLESIZE"]
    rows = []
    for h in found:
        row = [h.host, h.name, _dash(h.driver), _dash(h.transport), _dash(h.transport_address), h.devices]
        if args.long:
            row += [_dash(h.state), _dash(h.can_queue), _dash(h.cmd_per_lun), _dash(h.sg_tablesize)]
        rows.append(row)
    out.table(header, rows)
    return EXIT_OK


def _vpd_name(code: int, result: Any) -> str:
    """The name of VPD page ``code`` for people, from the class sgpy decoded it into."""
    name = type(result).__name__
    if name == "RawVpdPage":
        return f"VPD page {code:02X}h"
    return _words(name)


def _cmd_inq(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy inq`` (standard INQUIRY data, or ``--vpd PAGE``) and ``sgpy vpd`` (a VPD page, default 00h)."""
    from sgpy import command

    vpd: Optional[int] = None if args.vpd is None else args.vpd[0]
    with _open(args, policy=safety.READ_ONLY) as ch:
        if vpd is None:
            io = _run(ch, command.Inquiry())
        else:
            io = _run(ch, command.Inquiry(evpd=True, page_code=vpd, allocation_length=252))
        data = io.data
        if out.dumping:
            out.dump(data)
            return EXIT_OK
        r = io.result
    if out.json:
        fields = jsonable(r)
        if type(r).__name__ == "DeviceIdentification":
            fields["wwn"] = r.wwn  # a property: the logical unit's name as lsscsi and sysfs give it
        out.emit({"device": ch.path, "page": vpd,
                  "page_name": None if vpd is None else _vpd_name(vpd, r),
                  "data": fields, "raw": data.hex()})
        return EXIT_OK
    if vpd is None:
        out.line(f"{ch.path}: {r.vendor} {r.product} {r.revision}".rstrip())
        flags = [f.name for f in attrs.fields(type(r)) if f.type in (bool, "bool", "Optional[bool]")
                 and getattr(r, f.name)
                 and f.name != "truncated"]
        out.fields([
            ("vendor", r.vendor),
            ("product", r.product),
            ("revision", r.revision),
            ("peripheral type", f"{_type_name(r.peripheral_device_type)} ({int(r.peripheral_device_type):02X}h)"),
            ("peripheral qualifier", r.peripheral_qualifier),
            ("version", f"{r.version:02X}h"),
            ("response data format", r.response_data_format),
            ("removable", _show(r.rmb)),
            ("flags", " ".join(flags) or "-"),
            ("TPGS", r.tpgs),
            ("version descriptors", " ".join(f"{v:04X}h" for v in r.version_descriptors) or "-"),
        ])
        return EXIT_OK
    out.line(f"{ch.path}: {_vpd_name(vpd, r)} (VPD page {vpd:02X}h)")
    name = type(r).__name__
    if name == "SupportedVpdPages":
        for code in r.pages:
            known = {v: k for k, v in VPD_NAMES.items()}.get(code, "")
            out.line(f"  {code:02X}h  {known}".rstrip())
    elif name == "DeviceIdentification":
        out.line(f"  WWN: {r.wwn or '-'}")
        for d in r.designators:
            assoc = d.association.name.lower().replace("_", " ")
            out.line(f"  {assoc}: {d}")
            extra = [("designator type", _show(d.designator_type)), ("code set", _show(d.code_set))]
            if d.protocol_identifier is not None:
                extra.append(("protocol", _show(d.protocol_identifier)))
            out.fields(extra, "      ")
    elif name == "RawVpdPage":
        _hexdump(out, r.data)
    else:
        _render(out, r)
    return EXIT_OK


def _optional(ch: Any, cmd: Any) -> Any:
    """The decoded answer to ``cmd``, or None when the device refuses it or the answer does not parse:
    for what ``info`` shows as unknown rather than as an error."""
    try:
        return _execute(ch, cmd).result
    except (TaskFailed, MalformedResponse):
        return None


def _transport_of(path: str) -> Optional[str]:
    """The kind of transport behind ``path`` (an sg node: as ``sgpy list`` finds it in sysfs; an
    iSCSI URL: ``iscsi``), or None where it cannot be told."""
    from sgpy import devices

    if path[:8].lower() == "iscsi://":
        return "iscsi"
    try:
        return devices.find(path).transport
    except (FileNotFoundError, OSError):
        return None


def _cmd_info(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy info``: what ``smartctl -i`` shows of a SCSI device, in one verb: INQUIRY (identity,
    device type, version, PROTECT), the VPD pages it lists of 80h (serial), 83h (WWN, protocol),
    B1h (rotation, form factor) and B2h (provisioning), READ CAPACITY (size, block sizes, LBPME,
    protection) and the MODE SENSE header (write protect).  Only INQUIRY must succeed: anything else
    the device lacks or refuses is unknown (null), not an error."""
    from sgpy import command, modes

    with _open(args, policy=safety.READ_ONLY) as ch:
        inq = _run(ch, command.Inquiry()).result
        listed = _optional(ch, command.Inquiry(evpd=True, page_code=0x00, allocation_length=252))
        pages = set(listed.pages) if listed is not None else set()

        def vpd(code: int) -> Any:
            if code not in pages:
                return None
            return _optional(ch, command.Inquiry(evpd=True, page_code=code, allocation_length=252))

        serial_page, ident, bdc, lbp = vpd(0x80), vpd(0x83), vpd(0xB1), vpd(0xB2)
        try:
            cap: Optional[Dict[str, Any]] = _read_capacity(ch)
        except (_DeviceError, TaskFailed, MalformedResponse):
            cap = None
        try:
            write_protect: Optional[bool] = modes.sense(ch, 0x3F).write_protect  # MODE SENSE header (SBC-4 6.5.1)
        except (TaskFailed, MalformedResponse):
            write_protect = None
    serial = getattr(serial_page, "serial", None)
    serial = serial.strip(" \0") or None if isinstance(serial, str) else None
    # the target port's protocol identifier (SPC-5 7.7.6.1: PIV set), by its name in SPC-5 table 477
    protocols = sorted({str(jsonable(d.protocol_identifier)) for d in getattr(ident, "designators", ())
                        if d.protocol_identifier is not None})
    rate = getattr(bdc, "medium_rotation_rate", None)
    provisioning = getattr(lbp, "provisioning", None)
    if provisioning == "full" and cap is not None and cap["lbpme"]:
        # PROVISIONING TYPE 000b is "not reported or fully provisioned" (SBC-4 6.6.6); with LBPME set the
        # logical unit is resource or thin provisioned (SBC-4 4.7), so the page does not say which
        provisioning = "not reported"
    doc: Dict[str, Any] = {
        "device": ch.path, "vendor": inq.vendor, "product": inq.product, "revision": inq.revision,
        "serial": serial, "device_type": int(inq.peripheral_device_type),
        "device_type_name": _type_name(inq.peripheral_device_type), "scsi_version": inq.standard,
        "version_code": inq.version,
        "capacity_bytes": None if cap is None else cap["capacity_bytes"],
        "blocks": None if cap is None else cap["blocks"],
        "logical_block_size": None if cap is None else cap["block_size"],
        "physical_block_size": None if cap is None else cap["physical_block_size"],
        "lbpme": None if cap is None else cap["lbpme"], "lbprz": None if cap is None else cap["lbprz"],
        "provisioning": provisioning,
        "protect": inq.protect, "protection_type": None if cap is None else cap["protection_type"],
        "rotation_rate": rate, "rotation_rpm": getattr(bdc, "rotation_rate_rpm", None),
        "non_rotating": getattr(bdc, "non_rotating", None), "form_factor": getattr(bdc, "form_factor", None),
        "wwn": getattr(ident, "wwn", None), "transport": _transport_of(ch.path),
        "protocol": protocols[0] if len(protocols) == 1 else ("/".join(protocols) or None),
        "write_protect": write_protect, "vpd_pages": sorted(pages),
    }
    if out.json:
        out.emit(doc)
        return EXIT_OK
    unknown = "unknown"

    def known(value: Any, text: Optional[str] = None) -> str:
        return unknown if value is None else (text if text is not None else _show(value))

    size = doc["capacity_bytes"]
    if doc["non_rotating"]:
        rotation = "non-rotating (solid state)"
    elif doc["rotation_rpm"] is not None:
        rotation = f"{doc['rotation_rpm']} rpm"
    else:
        rotation = "not reported" if rate == 0 else unknown
    if doc["lbpme"] is None:
        thin = known(doc["provisioning"])
    else:
        thin = f"{doc['provisioning'] or unknown} (LBPME={int(doc['lbpme'])} LBPRZ={int(doc['lbprz'])})"
    if doc["protection_type"] is not None:
        protection = f"type {doc['protection_type']}" if doc["protection_type"] else "none"
    else:
        protection = "unknown" + (" (PROTECT=1)" if inq.protect else "")
    out.line(f"{ch.path}: {inq.vendor} {inq.product} {inq.revision}".rstrip())
    out.fields([
        ("vendor", inq.vendor), ("product", inq.product), ("revision", inq.revision),
        ("serial number", known(serial)),
        ("device type", f"{doc['device_type_name']} ({doc['device_type']:02X}h)"),
        ("SCSI version", doc["scsi_version"] or f"none claimed ({(inq.version or 0):02X}h)"),
        ("capacity", known(size, None if size is None else f"{size} bytes ({si_size(size)}, {_human_bytes(size)})")),
        ("logical block size", known(doc["logical_block_size"], f"{doc['logical_block_size']} bytes")),
        ("physical block size", known(doc["physical_block_size"], f"{doc['physical_block_size']} bytes")),
        ("provisioning", thin), ("protection", protection), ("rotation rate", rotation),
        ("form factor", doc["form_factor"] or ("not reported" if bdc is not None else unknown)),
        ("WWN", known(doc["wwn"])), ("transport", known(doc["transport"])), ("protocol", known(doc["protocol"])),
        ("write protect", known(write_protect)),
    ])
    return EXIT_OK


def _consume_unit_attention(ch: Any, tries: int = 5) -> None:
    """Send TEST UNIT READY until no UNIT ATTENTION is pending (a new session reports one first)."""
    from sgpy import command
    from sgpy.handler import might_fail

    for _ in range(tries):
        io = ch.execute(command.TestUnitReady(), verify_handler=might_fail)
        if not isinstance(io.error, UnitAttention):
            return


def _read_capacity(ch: Any) -> Dict[str, Any]:
    """READ CAPACITY(16), or (10) when the device refuses (16): the fields ``readcap --json`` gives."""
    return _read_capacity_io(ch)[0]


def _read_capacity_io(ch: Any) -> Tuple[Dict[str, Any], bytes]:
    """READ CAPACITY(16), or (10) when the device refuses (16): its fields, and the bytes it answered."""
    from sgpy import command
    from sgpy.handler import might_fail

    io = ch.execute(command.ReadCapacity16(), verify_handler=might_fail)
    if isinstance(io.error, UnitAttention):
        io = ch.execute(command.ReadCapacity16(), verify_handler=might_fail)
    if io.error is None:
        r = io.result
        return {"device": ch.path, "last_lba": r.returned_lba, "blocks": r.number_of_blocks,
                "block_size": r.block_length, "capacity_bytes": r.capacity_bytes,
                "physical_block_size": r.physical_block_length, "lowest_aligned_lba": r.lowest_aligned_lba,
                "protection_type": r.protection_type, "lbpme": r.lbpme, "lbprz": r.lbprz}, io.data
    if not isinstance(io.error, IllegalRequest):
        raise _DeviceError(ch.path, io.error)
    io = _run(ch, command.ReadCapacity10())
    r = io.result
    return {"device": ch.path, "last_lba": r.returned_lba, "blocks": r.number_of_blocks,
            "block_size": r.block_length, "capacity_bytes": r.capacity_bytes, "physical_block_size": None,
            "lowest_aligned_lba": None, "protection_type": None, "lbpme": None, "lbprz": None}, io.data


def _human_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that fits (``64.0 MiB``), for the human output."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _cmd_readcap(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy readcap``: READ CAPACITY(16), or (10), decoded or as the bytes the device answered."""
    with _open(args, policy=safety.READ_ONLY) as ch:
        cap, data = _read_capacity_io(ch)
    if out.dumping:
        out.dump(data)
        return EXIT_OK
    if out.json:
        out.emit(cap)
        return EXIT_OK
    out.line(f"{ch.path}: {cap['blocks']} blocks of {cap['block_size']} bytes = {_human_bytes(cap['capacity_bytes'])}")
    rows = [("last LBA", cap["last_lba"]), ("blocks", cap["blocks"]), ("block size", f"{cap['block_size']} bytes"),
            ("capacity", f"{cap['capacity_bytes']} bytes ({_human_bytes(cap['capacity_bytes'])}, "
                         f"{cap['capacity_bytes'] / 1e9:.2f} GB)")]
    if cap["physical_block_size"] is not None:
        rows += [("physical block size", f"{cap['physical_block_size']} bytes"),
                 ("lowest aligned LBA", cap["lowest_aligned_lba"]),
                 ("protection", f"type {cap['protection_type']}" if cap["protection_type"] else "none"),
                 ("thin provisioning", f"LBPME={int(cap['lbpme'])} LBPRZ={int(cap['lbprz'])}")]
    out.fields(rows)
    return EXIT_OK


def _cmd_luns(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy luns``: REPORT LUNS, each LUN with the integer Linux uses and its addressing levels."""
    from sgpy import command

    with _open(args, policy=safety.READ_ONLY) as ch:
        io = _run(ch, command.ReportLuns(select_report=args.select))
    if out.dumping:
        out.dump(io.data)
        return EXIT_OK
    r = io.result
    luns = [{"lun": lun.linux, "raw": lun.raw.hex(), "levels": jsonable(lun.levels)} for lun in r.luns]
    if out.json:
        out.emit({"device": ch.path, "select_report": args.select, "luns": luns})
        return EXIT_OK
    out.line(f"{ch.path}: {len(luns)} LUN(s)")
    out.table(["LUN", "8-BYTE LUN", "ADDRESSING"],
              [[lun.linux, lun.raw.hex(), ", ".join(_show(lv.method) for lv in lun.levels) or "-"] for lun in r.luns],
              indent="  ")
    return EXIT_OK


#: The REPORTING OPTIONS of REPORT ZONES (ZBC-2 5.4) ``zones --report`` takes by name, with their codes and
#: meanings: which zones the device lists.
ZONE_REPORTING_OPTIONS: Mapping[str, Tuple[int, str]] = MappingProxyType({
    "all": (0x00, "every zone"),
    "empty": (0x01, "zone condition EMPTY"),
    "imp_open": (0x02, "zone condition IMPLICITLY OPENED"),
    "exp_open": (0x03, "zone condition EXPLICITLY OPENED"),
    "closed": (0x04, "zone condition CLOSED"),
    "full": (0x05, "zone condition FULL"),
    "read_only": (0x06, "zone condition READ ONLY"),
    "offline": (0x07, "zone condition OFFLINE"),
    "inactive": (0x08, "zone condition INACTIVE (ZBC-2)"),
    "reset": (0x10, "RWP RECOMMENDED set (a reset of the write pointer is recommended)"),
    "non_seq": (0x11, "NON_SEQ set (non-sequential write resources active)"),
    "non_gap": (0x3E, "every zone but GAP zones (ZBC-2)"),
    "not_wp": (0x3F, "zone condition NOT WRITE POINTER"),
})

#: The allocation length of each REPORT ZONES ``zones`` sends unless ``--maxlen`` says: sg_rep_zones'
#: default (8192 bytes: a 64-byte header and 127 zone descriptors of 64 bytes).
ZONES_MAXLEN = 8192


def _reporting_option(text: str) -> int:
    """An argparse type: REPORTING OPTIONS as a number (0 to 3Fh, a 6-bit field) or a name of
    :data:`ZONE_REPORTING_OPTIONS` (``-`` may stand for ``_``)."""
    named = ZONE_REPORTING_OPTIONS.get(text.lower().replace("-", "_"))
    if named is not None:
        return named[0]
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown reporting option {text!r}: a number 0 to 0x3f or one of "
            + ", ".join(f"{k}={v[0]:02X}h" for k, v in ZONE_REPORTING_OPTIONS.items())) from None
    if not 0 <= value <= 0x3F:
        raise argparse.ArgumentTypeError(f"{text} is out of range: REPORTING OPTIONS is 0 to 0x3f")
    return value


def _zone_json(zone: Any) -> Dict[str, Any]:
    """One zone descriptor (ZBC-2 table 6) as ``zones --json`` gives it: names and codes of its type and condition."""
    return {"zone_start_lba": zone.zone_start_lba, "zone_length": zone.zone_length,
            "write_pointer_lba": zone.write_pointer_lba, "zone_type": _show(zone.zone_type),
            "zone_type_code": int(zone.zone_type), "zone_condition": _show(zone.zone_condition),
            "zone_condition_code": int(zone.zone_condition), "non_seq": zone.non_seq, "reset": zone.reset}


def _cmd_zones(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy zones`` (sg_rep_zones): REPORT ZONES (ZBC-2 5.4), the zone list of a zoned device.

    Each command asks for at most ``--maxlen`` bytes (and no more than
    ``--num`` zones need).  When the device has more matching zones than
    one answer carries (its ZONE LIST LENGTH counts them all), the next
    command starts at the end of the last zone received, until every zone,
    ``--num`` zones or the maximum LBA is reached.  With ``--partial`` the
    device counts only the zones that fit (ZBC-2 5.4, PARTIAL), so one command is
    sent; ``--hex`` and ``--raw`` show the first answer's bytes alone.
    """
    from sgpy import command

    num = args.num or None  # 0, as sg_rep_zones' --num=0: every zone
    start, answers = args.start, 0
    zones: List[Any] = []
    first: Optional[Tuple[Any, bytes]] = None
    with _open(args, policy=safety.READ_ONLY) as ch:
        while True:
            want = args.maxlen if num is None else min(args.maxlen, 64 + 64 * (num - len(zones)))
            cmd = command.ReportZones(zone_start_lba=start, allocation_length=want, partial=int(args.partial),
                                      reporting_options=args.report)
            try:
                io = _execute(ch, cmd)
            except IllegalRequest as exc:
                if answers == 0 and exc.matches(0x20):  # INVALID COMMAND OPERATION CODE (20h/00h, SPC-5 table F.1)
                    out.note(f"sgpy zones: {ch.path} is not a zoned block device: it does not know REPORT ZONES "
                             "(ZBC-2; a host-managed or host-aware disk answers it)")
                raise _DeviceError(ch.path, exc) from None
            except TaskFailed as exc:
                raise _DeviceError(ch.path, exc) from None
            answers += 1
            r = io.result
            if first is None:
                first = (r, io.data)
            zones.extend(r.zones)
            if out.dumping or args.partial or not r.zones or len(r.zones) * 64 >= r.zone_list_length \
                    or (num is not None and len(zones) >= num):
                break
            last = r.zones[-1]
            following = last.zone_start_lba + last.zone_length
            if following <= start or r.maximum_lba is None or following > r.maximum_lba:
                break  # no progress, or past the last LBA: what the device said is all there is
            start = following
    assert first is not None  # the loop ends after one answer at least
    head, data = first
    if out.dumping:
        out.dump(data)
        return EXIT_OK
    zones = zones[:num]
    names = {v[0]: k for k, v in ZONE_REPORTING_OPTIONS.items()}
    doc = {"device": ch.path, "start_lba": args.start, "reporting_options": args.report,
           "reporting_options_name": names.get(args.report), "partial": args.partial,
           "maximum_lba": head.maximum_lba, "same": head.same, "same_meaning": head.same_meaning,
           "zone_list_length": head.zone_list_length, "commands": answers,
           "zones": [_zone_json(z) for z in zones]}
    if out.json:
        out.emit(doc)
        return EXIT_OK
    which = names.get(args.report, f"reporting options {args.report:02X}h")
    out.line(f"{ch.path}: {len(zones)} zone(s) from LBA {args.start} ({which}; {answers} REPORT ZONES)")
    out.fields([("maximum LBA", _dash(head.maximum_lba if head.maximum_lba is None
                                       else f"{head.maximum_lba} (0x{head.maximum_lba:x})")),
                ("same", _dash(head.same if head.same is None else f"{head.same}: {head.same_meaning or 'reserved'}"))])
    if zones:
        out.table(["START LBA", "LENGTH", "WRITE POINTER", "TYPE", "CONDITION", "FLAGS"],
                  [[z.zone_start_lba, z.zone_length,
                    # NOT WRITE POINTER: a conventional or gap zone has no write pointer (ZBC-2 table 8)
                    "-" if z.zone_condition == 0 else z.write_pointer_lba,
                    _show(z.zone_type) if isinstance(z.zone_type, enum.Enum) else f"type {z.zone_type:x}h",
                    _show(z.zone_condition) if isinstance(z.zone_condition, enum.Enum)
                    else f"condition {z.zone_condition:x}h",
                    ",".join(f for f, on in (("non_seq", z.non_seq), ("reset", z.reset)) if on) or "-"]
                   for z in zones], indent="  ")
    return EXIT_OK


def _cmd_tur(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy tur``: TEST UNIT READY; a device that is not ready is a device error (status 3)."""
    from sgpy import command

    if args.count is not None:
        return _tur_repeat(args, out)
    with _open(args, policy=safety.READ_ONLY) as ch:
        _run(ch, command.TestUnitReady())
    if out.json:
        out.emit({"device": ch.path, "ready": True})
    else:
        out.line(f"{ch.path}: ready")
    return EXIT_OK


#: The most commands ``tur --count`` sends: a hundred million (about a day at scsi_debug's speed).
TUR_COUNT_MAX = 100_000_000


def _tur_repeat(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy tur DEV --count N`` (sg_turs -n N -t): N TEST UNIT READY one after the other, counted and timed.

    A command that fails (NOT READY, a UNIT ATTENTION, any other sense) is
    counted as not ready, with its reason, and the next one is sent: the
    run is a measurement, not stopped by the first failure.  The exit status
    is 3 when any was not ready (sg_turs -n counts them but exits 0; a
    script here learns it from the status).  Ctrl-C stops the run: what was
    measured until then is shown, and the status is 130.
    """
    from sgpy import command
    from sgpy.handler import might_fail

    ready = 0
    reasons: Dict[str, Dict[str, Any]] = {}
    times: List[float] = []
    interrupted = False
    with _open(args, policy=safety.READ_ONLY) as ch:
        start = time.perf_counter()
        try:
            for _ in range(args.count):
                t0 = time.perf_counter()
                io = ch.execute(command.TestUnitReady(), verify_handler=might_fail)
                times.append(time.perf_counter() - t0)
                if io.error is None:
                    ready += 1
                    continue
                failure = _failure_json(io.error)
                seen = reasons.setdefault(_failure_text(io.error), dict(failure, count=0))
                seen["count"] += 1
        except KeyboardInterrupt:
            interrupted = True
        seconds = time.perf_counter() - start
    sent = len(times)
    not_ready = sent - ready
    doc = {"device": ch.path, "count": args.count, "sent": sent, "ready": sent > 0 and not_ready == 0,
           "ready_count": ready, "not_ready_count": not_ready, "interrupted": interrupted,
           "seconds": round(seconds, 6),
           "mean_ms": round(sum(times) / sent * 1e3, 4) if sent else None,
           "min_ms": round(min(times) * 1e3, 4) if sent else None,
           "max_ms": round(max(times) * 1e3, 4) if sent else None,
           "commands_per_second": round(sent / seconds, 1) if sent and seconds > 0 else None,
           "failures": list(reasons.values())}
    code = EXIT_INTERRUPTED if interrupted else EXIT_DEVICE_ERROR if not_ready else EXIT_OK
    if interrupted:
        out.note(f"sgpy tur: interrupted after {sent} of {args.count} command(s): what was measured follows")
    if out.json:
        out.emit(doc)
        return code
    cut = " (interrupted)" if interrupted else ""
    out.line(f"{ch.path}: {sent} TEST UNIT READY{cut}: {ready} ready, {not_ready} not ready")
    if sent:
        out.fields([("total", f"{seconds:.6f} s"),
                    ("per command", f"{doc['mean_ms']:.4f} ms (min {doc['min_ms']:.4f}, max {doc['max_ms']:.4f})"),
                    ("rate", f"{doc['commands_per_second']:.0f} commands/s")])
    for text, seen in reasons.items():
        out.line(f"  not ready {seen['count']}x: {text}")
    return code


def _sense_lines(sense: Any) -> List[Tuple[str, Any]]:
    """The rows of the human decoding of sense data: format, key, ASC/ASCQ, then what is present."""
    rows: List[Tuple[str, Any]] = [
        ("format", ("descriptor" if sense.descriptor_format else "fixed")
         + (", deferred" if sense.deferred else ", current") + f" ({sense.response_code:02X}h)"),
        ("sense key", f"{sense.sense_key.text} ({int(sense.sense_key):X}h)"),
        ("additional sense", f"{sense.description} (ASC {_sense.hex_or_dash(sense.asc)}, "
                             f"ASCQ {_sense.hex_or_dash(sense.ascq)})"),
    ]
    if sense.information is not None:
        rows.append(("information", f"0x{sense.information:x} ({sense.information})"))
    if sense.command_specific_information:
        rows.append(("command-specific", f"0x{sense.command_specific_information:x}"))
    if sense.sense_key_specific is not None:
        rows.append(("sense-key specific", str(sense.sense_key_specific)))
    if sense.fru_code:
        rows.append(("FRU code", f"{sense.fru_code:02X}h"))
    flags = [n for n, on in (("filemark", sense.filemark), ("EOM", sense.eom), ("ILI", sense.ili),
                             ("SDAT_OVFL", sense.sdat_ovfl)) if on]
    if flags:
        rows.append(("flags", " ".join(flags)))
    for i, d in enumerate(sense.descriptors):
        rows.append((f"descriptor {i}", str(d)))
    if sense.truncated:
        rows.append(("note", "sense data truncated"))
    return rows


def _read_input(name: str, *, binary: bool) -> bytes:
    """The bytes of FILE, or of standard input for ``-`` (at most 64 KiB: sense data is short)."""
    limit = 65536
    try:
        if name == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(name, "rb") as f:
                data = f.read(limit + 1)
    except OSError as exc:
        raise _NoDevice(f"{name}: {exc.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{name}: more than {limit} bytes: not sense data")
    return data


def _cmd_sense(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy sense``: decode sense bytes given as hex (arguments, stdin, a file) or binary; no device."""
    from sgpy import sense as sense_mod

    if args.binary is not None:
        if args.hex or args.file is not None:
            raise UsageError("give the sense bytes one way: HEX arguments, -, --file or --binary")
        raw = _read_input(args.binary, binary=True)
    elif args.file is not None or args.hex == ["-"]:
        if args.file is not None and args.hex:
            raise UsageError("give the sense bytes one way: HEX arguments, -, --file or --binary")
        raw = _hex_bytes([_read_input(args.file or "-", binary=False).decode(errors="replace")], "SENSE")
    else:
        raw = _hex_bytes(args.hex, "SENSE")
    if not raw:
        raise UsageError("no sense bytes given (HEX arguments, - for standard input, --file FILE or --binary FILE)")
    try:
        sense = sense_mod.decode(raw)
    except MalformedResponse as exc:
        raise UsageError(f"not sense data: {exc}") from None
    if out.json:
        out.emit({"sense": _sense_json(sense), "raw": raw.hex()})
        return EXIT_OK
    if sense is None:
        out.line("no sense data (empty, or response code 00h)")
        return EXIT_OK
    out.line(str(sense))
    out.fields(_sense_lines(sense))
    return EXIT_OK


def _command_name(opcode: int, sa: Optional[int], device_type: Optional[int]) -> str:
    """The name of a supported command: sgpy's class where it has one, else the T10 name."""
    from sgpy import command

    cls = command.lookup(opcode, sa)
    if cls is not None:
        return str(cls.name)
    name = opcode_name(opcode, device_type)
    return name if sa is None else f"{name}, service action {sa:02X}h"


def _risk_of(opcode: int, sa: Optional[int]) -> safety.Risk:
    """The safety class of a supported command (what sgpy would refuse without a flag)."""
    from sgpy import command

    cls = command.lookup(opcode, sa)
    if cls is not None:
        return safety.classify(cls)
    return safety.opcode_risk(opcode) or safety.Risk.READ


def _cmd_opcodes(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy opcodes``: REPORT SUPPORTED OPERATION CODES, each command named (INQUIRY's peripheral
    device type picks the name where the T10 table has one per type) and with its safety class."""
    from sgpy import command

    if args.opcode is not None:
        return _opcodes_one(args, out)
    if args.service_action is not None:
        raise UsageError("--service-action goes with --opcode OP (the command it belongs to)")
    with _open(args, policy=safety.READ_ONLY) as ch:
        if out.dumping:  # the answer of REPORT SUPPORTED OPERATION CODES alone: no INQUIRY for the names
            out.dump(_run(ch, command.ReportSupportedOperationCodes(reporting_options=0,
                                                                    allocation_length=8192)).data)
            return EXIT_OK
        ptype = _run(ch, command.Inquiry()).result.peripheral_device_type
        r = _run(ch, command.ReportSupportedOperationCodes(reporting_options=0, allocation_length=8192)).result
    rows = [{"opcode": c.opcode, "service_action": c.service_action, "cdb_length": c.cdb_length,
             "name": _command_name(c.opcode, c.service_action, int(ptype)),
             "risk": _risk_of(c.opcode, c.service_action).label} for c in r.commands]
    if out.json:
        out.emit({"device": ch.path, "commands": rows})
        return EXIT_OK
    out.line(f"{ch.path}: {len(rows)} supported command(s)")
    out.table(["OP", "SA", "CDB", "RISK", "NAME"],
              [[f"{c['opcode']:02X}", "-" if c["service_action"] is None else f"{c['service_action']:02X}",
                c["cdb_length"], c["risk"], c["name"]] for c in rows], indent="  ")
    return EXIT_OK


def _opcodes_one(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy opcodes DEV --opcode OP [--service-action SA]`` (sg_opcodes -o OP [-s SA]): REPORT SUPPORTED
    OPERATION CODES about one command (REPORTING OPTIONS 001b, or 010b with a service action; SPC-5
    6.35.2): whether the device supports it, the CDB usage map, the command's safety class."""
    from sgpy import command
    from sgpy.responses.opcodes import MLU_TEXT, CommandSupport

    op, sa = args.opcode, args.service_action
    rsoc = command.ReportSupportedOperationCodes.one_command(op, sa)  # no RCTD, as sg_opcodes -o without -T
    with _open(args, policy=safety.READ_ONLY) as ch:
        try:
            io = _execute(ch, rsoc)
        except IllegalRequest as exc:
            if sa is None and exc.matches(0x24):  # INVALID FIELD IN CDB: perhaps a command with service actions
                out.note(f"sgpy opcodes: {ch.path} refused the question about opcode {op:02X}h alone: if the "
                         "command has service actions, give --service-action SA")
            raise _DeviceError(ch.path, exc) from None
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
        if out.dumping:
            out.dump(io.data)
            return EXIT_OK
        ptype = _run(ch, command.Inquiry()).result.peripheral_device_type
    r = io.result
    try:
        support = CommandSupport(r.support).name.lower()
    except ValueError:
        support = f"reserved ({int(r.support)})"
    usage = r.cdb_usage or b""
    timeouts = None if r.timeouts is None else {
        "command_specific": r.timeouts.command_specific,
        "nominal_seconds": r.timeouts.nominal_command_processing_timeout,
        "recommended_seconds": r.timeouts.recommended_command_timeout}
    doc = {"device": ch.path, "opcode": op, "service_action": sa, "reporting_options": rsoc.reporting_options,
           "name": _command_name(op, sa, int(ptype)), "risk": _risk_of(op, sa).label,
           "supported": r.supported, "support": support, "support_code": int(r.support),
           "cdb_length": len(usage) if r.supported else None, "cdb_usage": usage.hex() if r.supported else None,
           "mlu": r.mlu, "cdlp": r.cdlp, "timeouts": timeouts, "truncated": r.truncated}
    if out.json:
        out.emit(doc)
        return EXIT_OK
    which = f"opcode {op:02X}h" + ("" if sa is None else f", service action {sa:04X}h")
    out.line(f"{ch.path}: {doc['name']} ({which}): {'supported' if r.supported else 'not supported'}")
    rows: List[Tuple[str, Any]] = [("support", f"{support.replace('_', ' ')} ({int(r.support):03b}b)"),
                                   ("risk", doc["risk"])]
    if r.supported:
        rows += [("CDB length", f"{len(usage)} bytes"), ("CDB usage", usage.hex(" ") or "-"),
                 ("multiple LUs", MLU_TEXT.get(r.mlu, str(r.mlu))),
                 ("duration limits", {0: "none", 1: "mode page 0Ah/03h", 2: "mode page 0Ah/04h"}.get(r.cdlp,
                                                                                                  "reserved"))]
    if timeouts is not None:
        rows += [("nominal timeout", f"{timeouts['nominal_seconds']} s" if timeouts["nominal_seconds"] else "-"),
                 ("recommended timeout",
                  f"{timeouts['recommended_seconds']} s" if timeouts["recommended_seconds"] else "-")]
    out.fields(rows)
    if r.supported:
        for i, bits in enumerate(r.usage_bits(), start=1):
            out.line(f"    byte {i:<2}  {usage[i]:08b}" + ("  (reserved: not looked at)" if not bits else ""))
    return EXIT_OK


_PC = {"current": 0, "changeable": 1, "default": 2, "saved": 3}


def _page_json(page: Any) -> Dict[str, Any]:
    """The JSON object of one mode page: codes, name and fields (``raw`` left out: the page is in ``data``)."""
    fields = jsonable(page)
    fields.pop("raw", None)
    return {"page_code": page.page_code, "subpage_code": page.subpage_code, "name": _mode_page_name(page),
            "fields": fields}


def _mode_page_name(page: Any) -> str:
    """The name of a mode page for people, from the class sgpy decoded it into."""
    name = type(page).__name__
    if name == "ModePage":
        sub = f"/{page.subpage_code:02X}h" if page.spf else ""
        return f"Mode page {page.page_code:02X}h{sub}"
    return _words(name)


def _cmd_modes(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy modes``: MODE SENSE(10), or (6) where (10) is not implemented, of PAGE (a code or a name).

    With PAGE and no ``--pc``, the page's current, changeable, default and
    saved values side by side (one MODE SENSE each); with ``--set``, the
    read-modify-write of :func:`sgpy.modes.read_modify_write`.
    """
    from sgpy import command

    if args.defaults:
        return _modes_defaults(args, out)
    if args.set:
        return _modes_set(args, out)
    if args.save:
        raise UsageError("--save saves what --set changes (or --defaults): give --set PAGE.FIELD=VALUE or "
                         "--defaults")
    # 3Fh: every page (SPC-5 6.14)
    page, subpage = _page_and_subpage(args.page, args.subpage, 0x3F, "mode")
    if args.page is not None and args.pc is None and page != 0x3F and not out.dumping:
        return _modes_side_by_side(args, out, page, subpage)
    pc = args.pc or "current"
    with _open(args, policy=safety.READ_ONLY) as ch:
        cmd10 = command.ModeSense10(page_code=page, subpage_code=subpage, pc=_PC[pc])
        try:
            io = _execute(ch, cmd10)
        except IllegalRequest as exc:
            if not exc.matches(0x20):  # INVALID COMMAND OPERATION CODE: fall back to MODE SENSE(6)
                raise _DeviceError(ch.path, exc) from None
            io = _run(ch, command.ModeSense6(page_code=page, subpage_code=subpage, pc=_PC[pc]))
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
    if out.dumping:
        out.dump(io.data)
        return EXIT_OK
    r = io.result
    doc = {"device": ch.path, "page": page, "subpage": subpage, "pc": pc, "medium_type": r.medium_type,
           "device_specific_parameter": r.device_specific_parameter, "write_protect": r.write_protect,
           "block_descriptors": jsonable(r.block_descriptors), "pages": [_page_json(p) for p in r.pages]}
    if out.json:
        out.emit(doc)
        return EXIT_OK
    out.line(f"{ch.path}: mode parameters ({pc} values)")
    out.fields([("medium type", f"{r.medium_type:02X}h"), ("write protect", _show(r.write_protect)),
                ("block descriptors", len(r.block_descriptors))])
    for bd in r.block_descriptors:
        out.line(f"  block descriptor: {bd.number_of_blocks} blocks of {bd.block_length} bytes")
    for p in r.pages:
        sub = f", subpage {p.subpage_code:02X}h" if p.spf else ""
        out.line(f"  {_mode_page_name(p)} (page {p.page_code:02X}h{sub})")
        if type(p).__name__ == "ModePage":
            out.line(f"    {_show(p.data)}")
        else:
            _render(out, p, "    ", skip=("ps",))
    return EXIT_OK


def _failure_json(exc: TaskFailed) -> Dict[str, Any]:
    """A device's refusal as a JSON object: its class, message and decoded sense."""
    return {"type": _error_type(exc), "message": exc.message, "sense": _sense_json(exc.sense)}


def _failure_text(exc: TaskFailed) -> str:
    """A device's refusal in one line: the sense key and the additional sense, or the message."""
    return str(exc.sense) if exc.sense is not None else exc.message


def _changeable_text(mask: Any, width: int, flag: bool) -> str:
    """A field's changeable value for people: yes/no, or its mask when only some bits may change."""
    if mask is None:
        return "-"
    if flag or int(mask) in (0, (1 << width) - 1):
        return "yes" if mask else "no"
    return f"0x{int(mask):x}"


def _modes_side_by_side(args: argparse.Namespace, out: _Out, page: int, subpage: int) -> int:
    """``sgpy modes DEV PAGE``: one MODE SENSE per page control, the values side by side (sdparm --all)."""
    from sgpy import modes

    with _open(args, policy=safety.READ_ONLY) as ch:
        try:
            got = modes.page_controls(ch, page, subpage)
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
    r = got.current
    pages = {name: got.page(name) for name in _PC}
    cur = pages["current"]
    if out.json:
        doc = {"device": ch.path, "page": page, "subpage": subpage, "pc": "current", "medium_type": r.medium_type,
               "device_specific_parameter": r.device_specific_parameter, "write_protect": r.write_protect,
               "block_descriptors": jsonable(r.block_descriptors), "pages": [_page_json(p) for p in r.pages],
               "controls": {name: None if p is None else _page_json(p)["fields"] for name, p in pages.items()},
               "errors": {name: _failure_json(refusal) for name, refusal in got.errors.items()}}
        out.emit(doc)
        return EXIT_OK
    if cur is None:
        raise _Failure(f"{ch.path}: MODE SENSE answered without {_page_label(page, subpage)}")
    sub = f", subpage {subpage:02X}h" if cur.spf else ""
    out.line(f"{ch.path}: {_mode_page_name(cur)} (page {page:02X}h{sub})")
    header = ["FIELD", "CURRENT", "CHANGEABLE", "DEFAULT", "SAVED"]
    if type(cur).__name__ == "ModePage":
        out.table(header, [["data"] + [_show(p.data) if p is not None else "-" for p in pages.values()]], "  ")
    else:
        widths = modes.settable_fields(page, subpage)
        rows = []
        for name, (width, flag) in widths.items():
            row = [name]
            for control, p in pages.items():
                value = getattr(p, name, None) if p is not None else None
                row.append(_changeable_text(value, width, flag) if control == "changeable" else _show(value))
            rows.append(row)
        out.table(header, rows, "  ")
    for name, refusal in got.errors.items():
        out.line(f"  {name} values: not supported ({_failure_text(refusal)})")
    return EXIT_OK


def _page_label(page: int, subpage: int) -> str:
    """``mode page 08h`` or ``mode page 0Ah/01h``."""
    return f"mode page {page:02X}h" + (f"/{subpage:02X}h" if subpage else "")


def _parse_settings(args: argparse.Namespace) -> List[Any]:
    """``--set PAGE.FIELD=VALUE`` (or ``FIELD=VALUE`` after PAGE) as checked :class:`sgpy.modes.Setting` values."""
    from sgpy import modes

    out = []
    for text in args.set:
        left, eq, value = text.partition("=")
        if not eq or not left.strip() or not value.strip():
            raise UsageError(f"--set {text!r}: give PAGE.FIELD=VALUE (e.g. caching.wce=0, ca.WCE=1)")
        name, dot, field = left.rpartition(".")
        if dot:
            try:
                page, subpage = _page_and_subpage(page_by_name("mode", name), args.subpage, 0, "mode")
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"--set {text!r}: {exc}") from None
        elif args.page is not None:
            page, subpage = _page_and_subpage(args.page, args.subpage, 0, "mode")
        else:
            raise UsageError(f"--set {text!r}: which page? give PAGE.FIELD=VALUE (e.g. caching.wce=0)")
        if page == 0x3F:
            raise UsageError(f"--set {text!r}: name one page, not all of them")
        try:
            out.append(modes.setting(page, subpage, field, value))
        except modes.ModeSettingError as exc:
            raise UsageError(f"--set {text!r}: {exc}") from None
    return out


def _modes_set(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy modes DEV --set PAGE.FIELD=VALUE [--save]``: check every setting, refuse without
    --allow-data-loss before anything is opened, then read, check the changeable values, MODE SELECT,
    read back and show each field's old and new value."""
    from sgpy import command, modes

    if args.pc is not None:
        raise UsageError("--pc chooses the values to read; --set changes the current ones (and --save the "
                         "saved ones)")
    if out.dumping:
        raise UsageError("--hex and --raw show what MODE SENSE answers; with --set use --json")
    settings = _parse_settings(args)
    _check(args, command.ModeSelect10(pf=1, sp=int(args.save), data=bytes(8)))
    with _open(args, policy=_policy(args)) as ch:
        try:
            change = modes.read_modify_write(ch, settings, save=args.save)
        except modes.ModeSettingError as exc:
            raise UsageError(f"{ch.path}: {exc}; nothing was sent") from None
        except TaskFailed as exc:
            failure = _out_of_kernel_memory(ch.path, exc)
            if failure is not None:
                raise failure from None
            raise _DeviceError(ch.path, exc) from None
    return _mode_change_report(out, ch.path, change)


def _mode_change_report(out: _Out, path: str, change: Any, extra: Optional[Dict[str, Any]] = None) -> int:
    """Show a :class:`sgpy.modes.ModeChange` (``--set``, ``--defaults``): each field's old and new value, or
    the JSON with ``extra`` keys; exit status 1 when a field does not read back as requested."""
    from sgpy.responses import mode_page_class

    def page_name(c: Any) -> str:
        cls = mode_page_class(c.page_code, c.subpage_code)
        return _words(cls.__name__) if cls is not None else _page_label(c.page_code, c.subpage_code)

    name = "ModeSelect10" if change.ten else "ModeSelect6"
    missed = [c for c in change.changes if not c.took]
    if out.json:
        out.emit({"device": path, **(extra or {}), "command": name, "saved": change.saved,
                  "changes": [{"page": c.page_code, "subpage": c.subpage_code, "page_name": page_name(c),
                               "field": c.field, "old": c.old, "requested": c.requested, "new": c.new,
                               "took": c.took} for c in change.changes],
                  "sent": [b.hex() for b in change.sent]})
    else:
        out.line(f"{path}: {name}" + (", saved" if change.saved else "") + f" ({len(change.sent)} page(s))")
        out.table(["PAGE", "FIELD", "OLD", "", "NEW"],
                  [[page_name(c), c.field, _show(c.old), "→", _show(c.new)] for c in change.changes], "  ")
    for c in missed:
        out.note(f"sgpy modes: {path}: the device accepted MODE SELECT, but {c.field} reads back "
                 f"{_show(c.new)}, not {_show(c.requested)}")
    return EXIT_FAILURE if missed else EXIT_OK


def _modes_defaults(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy modes DEV PAGE --defaults [--save]`` (sdparm --defaults): every changeable field of PAGE to its
    default value (MODE SENSE, page control default) in one MODE SELECT, read back; refused without
    --allow-data-loss before anything is opened."""
    from sgpy import command, modes

    if args.set:
        raise UsageError("--defaults sets every changeable field of the page; --set sets the ones named: give one")
    if args.pc is not None:
        raise UsageError("--pc chooses the values to read; --defaults changes the current ones (and --save the "
                         "saved ones)")
    if out.dumping:
        raise UsageError("--hex and --raw show what MODE SENSE answers; with --defaults use --json")
    if args.page is None:
        raise UsageError("--defaults needs the PAGE whose fields go back to their defaults (e.g. ca)")
    page, subpage = _page_and_subpage(args.page, args.subpage, 0, "mode")
    if page == 0x3F:
        raise UsageError("--defaults: name one page, not all of them")
    if not modes.settable_fields(page, subpage):
        raise UsageError(f"--defaults: {_page_label(page, subpage)} is not decoded by sgpy, so its fields "
                         "cannot be set one by one")
    _check(args, command.ModeSelect10(pf=1, sp=int(args.save), data=bytes(8)))
    with _open(args, policy=_policy(args)) as ch:
        try:
            change = modes.restore_defaults(ch, page, subpage, save=args.save)
        except modes.ModeSettingError as exc:
            raise UsageError(f"{ch.path}: {exc}; nothing was sent") from None
        except TaskFailed as exc:
            failure = _out_of_kernel_memory(ch.path, exc)
            if failure is not None:
                raise failure from None
            raise _DeviceError(ch.path, exc) from None
    changed = sum(1 for c in change.changes if c.new is None or int(c.old) != int(c.new))
    code = _mode_change_report(out, ch.path, change, {"page": page, "subpage": subpage, "defaults": True,
                                                      "changed": changed})
    if not out.json:
        out.line(f"  {changed} of {len(change.changes)} changeable field(s) changed")
    return code


# -- control (sdparm --command) ----------------------------------------------------------

#: START STOP UNIT's POWER CONDITION codes (SBC-4 5.27, table 90) that ``control`` names; with one of
#: them the device ignores START and LOEJ.
_POWER_CONDITIONS: Mapping[str, int] = MappingProxyType({"active": 0x1, "idle": 0x2, "standby": 0x3})

#: action -> what ``sgpy control`` sends and says (sdparm --command, sg_start, sg_prevent, sg_sync).
CONTROL_ACTIONS: Mapping[str, str] = MappingProxyType({
    "start": "START STOP UNIT, START=1: the unit becomes ready (spins up)",
    "stop": "START STOP UNIT, START=0: the unit stops (spins down) and is not ready until a start",
    "load": "START STOP UNIT, START=1 LOEJ=1: load the medium, then start",
    "eject": "START STOP UNIT, START=0 LOEJ=1: stop, then eject the medium",
    "active": "START STOP UNIT, POWER CONDITION 1h (ACTIVE)",
    "idle": "START STOP UNIT, POWER CONDITION 2h (IDLE)",
    "standby": "START STOP UNIT, POWER CONDITION 3h (STANDBY)",
    "sync": "SYNCHRONIZE CACHE(10) of every block: cached writes reach the medium",
    "lock": "PREVENT ALLOW MEDIUM REMOVAL, PREVENT=01b: the medium may not be removed",
    "unlock": "PREVENT ALLOW MEDIUM REMOVAL, PREVENT=00b: the medium may be removed",
    "ready": "TEST UNIT READY (exit status 3 when not ready)",
    "capacity": "READ CAPACITY(16), or (10): blocks and block size",
})

#: Actions that take the unit out of service for every user of it (a mounted filesystem's writes fail
#: until a start): asked for with --allow-data-loss although they change no stored data.
_OUT_OF_SERVICE = frozenset({"stop", "eject"})

#: What the human output says an action did.
_CONTROL_DONE: Mapping[str, str] = MappingProxyType({
    "start": "started", "stop": "stopped", "load": "medium loaded and started", "eject": "stopped and medium "
    "ejected", "active": "power condition active", "idle": "power condition idle", "standby": "power condition "
    "standby", "sync": "cache synchronized", "lock": "medium removal prevented", "unlock": "medium removal allowed",
    "ready": "ready"})


def _control_command(action: str, immed: bool) -> Any:
    """The command of a ``control`` action other than ``capacity`` (SBC-4 5.27 START STOP UNIT, 5.32
    SYNCHRONIZE CACHE(10); SPC-5 6.17 PREVENT ALLOW MEDIUM REMOVAL; 6.47 TEST UNIT READY)."""
    from sgpy import command

    if action in ("start", "stop", "load", "eject"):
        return command.StartStopUnit(immed=int(immed), start=int(action in ("start", "load")),
                                     loej=int(action in ("load", "eject")))
    if action in _POWER_CONDITIONS:
        return command.StartStopUnit(immed=int(immed), power_condition=_POWER_CONDITIONS[action])
    if action == "sync":
        # LBA 0 and NUMBER OF LOGICAL BLOCKS 0: from the first block to the last (SBC-4 5.32)
        return command.SynchronizeCache10(immed=int(immed), lba=0, number_of_logical_blocks=0)
    if action in ("lock", "unlock"):
        return command.PreventAllowMediumRemoval(prevent=int(action == "lock"))
    return command.TestUnitReady()


def _cmd_control(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy control DEV ACTION`` (sdparm --command=ACTION): one command by name, through the safety policy.

    ``stop`` and ``eject`` are refused without --allow-data-loss before the
    device is opened: they change no stored data (the policy classes START
    STOP UNIT as a read) but leave the unit not ready for every other user
    of it until a ``start``.
    """
    action = args.action
    if args.immed and action not in ("start", "stop", "load", "eject", "sync", *_POWER_CONDITIONS):
        raise UsageError(f"--immed is a field of START STOP UNIT and SYNCHRONIZE CACHE; {action} has none")
    if action in _OUT_OF_SERVICE and not (args.allow_data_loss or args.allow_irreversible):
        raise _Refused(f"control {action} takes {args.device} out of service for every user of it (a mounted "
                       "filesystem's writes fail) until 'sgpy control DEV start'; sgpy refuses it: pass "
                       "--allow-data-loss to send it", safety.Risk.DATA_CHANGING)
    if action == "capacity":
        with _open(args, policy=safety.READ_ONLY) as ch:
            cap = _read_capacity(ch)
        doc: Dict[str, Any] = {"device": ch.path, "action": action, "command": "ReadCapacity16"
                               if cap["physical_block_size"] is not None else "ReadCapacity10", "cdb": None,
                               "immed": False, "capacity": {k: v for k, v in cap.items() if k != "device"}}
        if out.json:
            out.emit(doc)
        else:
            out.line(f"{ch.path}: {cap['blocks']} blocks of {cap['block_size']} bytes = "
                     f"{_human_bytes(cap['capacity_bytes'])}")
        return EXIT_OK
    cmd = _control_command(action, args.immed)
    _check(args, cmd)
    with _open(args, policy=_policy(args)) as ch:
        # TEST UNIT READY reports a unit attention as it finds it (as 'sgpy tur'); the others are sent again
        _run(ch, cmd, retry=action != "ready")
    doc = {"device": ch.path, "action": action, "command": cmd.name, "cdb": bytes(cmd.cdb).hex(),
           "immed": bool(args.immed)}
    if action == "ready":
        doc["ready"] = True
    if out.json:
        out.emit(doc)
    else:
        out.line(f"{ch.path}: {_CONTROL_DONE[action]}" + (" (IMMED: the command returned at once)" if args.immed
                                                          else "") + f" [{cmd.name} {bytes(cmd.cdb).hex(' ')}]")
    return EXIT_OK


# -- health ----------------------------------------------------------------------


def _health_page_json(name: str, page: Any) -> Dict[str, Any]:
    """One health page as ``sgpy health --json`` gives it (docs/cli.rst lists the keys)."""
    from sgpy import health

    if name == "informational_exceptions":
        return {"asc": page.asc, "ascq": page.ascq, "description": page.description,
                "most_recent_temperature_c": page.most_recent_temperature}
    if name == "temperature":
        return {"temperature_c": page.temperature, "reference_temperature_c": page.reference_temperature}
    if name == "start_stop":
        return {k: getattr(page, k) for k in ("manufacture_year", "manufacture_week", "accounting_year",
                                              "accounting_week", "specified_cycle_count",
                                              "accumulated_start_stop_cycles", "specified_load_unload_count",
                                              "accumulated_load_unload_cycles")}
    if name in ("write_errors", "read_errors", "verify_errors"):
        return {k: getattr(page, k) for k in ("corrected_without_delay", "corrected_with_delay",
                                              "total_rewrites_or_rereads", "total_corrected",
                                              "correction_algorithm_invocations", "bytes_processed",
                                              "total_uncorrected")}
    if name == "non_medium_errors":
        return {"count": page.non_medium_error_count}
    if name == "self_tests":
        return {"results": [{"parameter_code": r.parameter_code, "kind": health.self_test_kind(r.self_test_code),
                             "self_test_code": r.self_test_code, "result": health.self_test_result(r.self_test_results),
                             "result_code": r.self_test_results, "self_test_number": r.self_test_number,
                             "power_on_hours": r.accumulated_power_on_hours, "first_failure_lba": r.first_failure_lba,
                             "sense_key": r.sense_key, "asc": r.asc, "ascq": r.ascq,
                             "description": r.description if r.asc or r.ascq else None} for r in page.results]}
    if name == "background_scan":
        return {"status": health.scan_status(page.background_scan_status),
                "status_code": page.background_scan_status,
                "power_on_minutes": page.accumulated_power_on_minutes,
                "scans_performed": page.number_of_background_scans_performed,
                "medium_scans_performed": page.number_of_background_medium_scans_performed,
                "progress_percent": None if page.progress_percent is None else round(page.progress_percent, 2),
                "medium_errors": [{"lba": m.lba, "sense_key": m.sense_key, "asc": m.asc, "ascq": m.ascq,
                                   "reassign_status": m.reassign_status,
                                   "power_on_minutes": m.accumulated_power_on_minutes}
                                  for m in page.medium_scan_results]}
    if name == "solid_state_media":
        return {"percentage_used_endurance_indicator": page.percentage_used_endurance_indicator}
    return jsonable(page)


def _count(value: Optional[int], of: Optional[int] = None) -> str:
    """A counter for people: ``12``, ``12 of 50000``, ``-``."""
    if value is None:
        return "-"
    return f"{value} of {of}" if of else str(value)


def _health_page_text(name: str, page: Any) -> List[str]:
    """One health page for people: its summary line, then any lines of detail."""
    from sgpy import health

    if name == "informational_exceptions":
        temp = "" if page.most_recent_temperature is None else f"; most recent temperature " \
                                                                f"{page.most_recent_temperature} °C"
        if not page.asc:
            return [f"no failure predicted (ASC {_sense.hex_or_dash(page.asc)}, ASCQ "
                    f"{_sense.hex_or_dash(page.ascq)}){temp}"]
        return [f"FAILURE PREDICTED: {page.description} ({page.asc:02X}h/{page.ascq:02X}h){temp}"]
    if name == "temperature":
        ref = "" if page.reference_temperature is None else f" (reference {page.reference_temperature} °C)"
        return [("unknown" if page.temperature is None else f"{page.temperature} °C") + ref]
    if name == "start_stop":
        made = f", made in week {page.manufacture_week} of {page.manufacture_year}" \
            if page.manufacture_year else ""
        return [f"{_count(page.accumulated_start_stop_cycles, page.specified_cycle_count)} start-stop cycles, "
                f"{_count(page.accumulated_load_unload_cycles, page.specified_load_unload_count)} load-unload "
                f"cycles{made}"]
    if name in ("write_errors", "read_errors", "verify_errors"):
        done = "" if page.bytes_processed is None else f", {si_size(page.bytes_processed)} processed"
        return [f"{_count(page.total_uncorrected)} uncorrected, {_count(page.total_corrected)} corrected{done}"]
    if name == "non_medium_errors":
        return [_count(page.non_medium_error_count)]
    if name == "self_tests":
        if not page.results:
            return ["none in the log"]
        lines = [f"{len(page.results)} in the log, most recent first"]
        rows = [["#", "KIND", "RESULT", "POWER-ON HOURS", "FIRST FAILURE LBA", "SENSE"]]
        for r in page.results:
            sense = "-" if not (r.sense_key or r.asc or r.ascq) else \
                f"{r.sense_key:X}h {r.asc:02X}h/{r.ascq:02X}h {r.description}"
            rows.append([str(r.parameter_code), health.self_test_kind(r.self_test_code),
                         health.self_test_result(r.self_test_results), str(r.accumulated_power_on_hours),
                         "-" if r.first_failure_lba is None else str(r.first_failure_lba), sense])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        return lines
    if name == "background_scan":
        hours = "" if page.accumulated_power_on_minutes is None else \
            f", power-on time {page.accumulated_power_on_minutes // 60} h {page.accumulated_power_on_minutes % 60} min"
        progress = "" if page.progress_percent is None else f", {page.progress_percent:.1f}% done"
        return [f"{health.scan_status(page.background_scan_status) or '-'}{progress}, "
                f"{_count(page.number_of_background_scans_performed)} scans{hours}, "
                f"{len(page.medium_scan_results)} medium error(s) found"]
    if name == "solid_state_media":
        used = page.percentage_used_endurance_indicator
        return ["-" if used is None else f"{used}% of its endurance used"]
    return [str(page)]


def _cmd_health(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy health``: the device's health from its log pages (smartctl -H -A -l selftest for SCSI);
    ``--self-test`` starts (or aborts) a self-test instead.

    The exit status is a bitmask (docs/cli.rst): bits 0-2 the ordinary exit
    status (3 when a page the device lists could not be read), bits 3-6 the
    findings of :func:`sgpy.health.assess`.
    """
    from sgpy import health

    if args.self_test is not None:
        return _health_self_test(args, out)
    with _open(args, policy=safety.READ_ONLY) as ch:
        identity = _identity(ch)
        try:
            got = health.read_health(ch)
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
    code = int(got.findings) | (EXIT_DEVICE_ERROR if got.errors else EXIT_OK)
    findings = [f.label for f in health.Finding if f in got.findings]
    if out.json:
        out.emit({"device": ch.path, "identity": identity, "verdict": got.verdict, "exit_status": code,
                  "findings": findings, "log_sense_supported": got.log_sense_supported,
                  "supported_pages": list(got.supported_pages),
                  "pages": {name: _health_page_json(name, got.pages[name]) if name in got.pages else None
                            for name in health.HEALTH_PAGES},
                  "absent": list(got.absent),
                  "errors": {name: _failure_json(exc) for name, exc in got.errors.items()}})
        return code
    who = " ".join(v for v in (identity["vendor"], identity["model"], identity["revision"]) if v)
    serial = f", serial {identity['serial']}" if identity["serial"] else ""
    out.line(f"{ch.path}: {who}{serial}".rstrip())
    rows: List[Tuple[str, Any]] = [("health", got.verdict + (f" ({', '.join(findings)})" if findings else ""))]
    details: Dict[str, List[str]] = {}
    for name, (page, title) in health.HEALTH_PAGES.items():
        if name in got.pages:
            lines = _health_page_text(name, got.pages[name])
            rows.append((title, lines[0]))
            details[title] = lines[1:]
        elif name in got.errors:
            rows.append((title, f"not read: {_failure_text(got.errors[name])}"))
        else:
            rows.append((title, "absent" if got.log_sense_supported else "absent (no LOG SENSE)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.line(f"  {key.ljust(width)}  {value}")
        for extra in details.get(key, []):
            out.line(f"    {extra}")
    return code


def _health_self_test(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy health DEV --self-test KIND``: SEND DIAGNOSTIC with the self-test code, behind the safety
    tier the policy gives it; then when to look for the result."""
    from sgpy import command, health, modes

    code = health.SELF_TEST_CODES[args.self_test]
    _check(args, command.SendDiagnostic(selftest=1) if args.self_test == "default"
           else command.SendDiagnostic(self_test_code=code))
    with _open(args, policy=_policy(args)) as ch:
        expected: Optional[int] = None
        if args.self_test in ("long", "foreground-long"):
            try:  # the control mode page gives the extended self-test's duration in seconds (SPC-5 7.5.10)
                control = modes.sense(ch, 0x0A).page(0x0A)
                expected = getattr(control, "extended_self_test_completion_time", None) or None
            except TaskFailed:
                expected = None
        try:
            health.self_test(ch, args.self_test)
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
    kind = health.self_test_kind(code)
    if out.json:
        out.emit({"device": ch.path, "self_test": {"kind": args.self_test, "self_test_code": code, "name": kind,
                                                   "expected_seconds": expected}})
        return EXIT_OK
    if args.self_test == "abort":
        out.line(f"{ch.path}: the background self-test was aborted")
        return EXIT_OK
    if args.self_test == "default":
        out.line(f"{ch.path}: the default self-test passed")
        return EXIT_OK
    when = "" if expected is None else f" (the device expects about {expected // 60} min {expected % 60} s)"
    if args.self_test.startswith("foreground"):
        out.line(f"{ch.path}: {kind} self-test done{when}; 'sgpy health {args.device}' shows its result")
    else:
        out.line(f"{ch.path}: {kind} self-test started{when}; 'sgpy health {args.device}' shows its result "
                 "once done")
    return EXIT_OK


def _log_name(r: Any) -> str:
    """The name of a log page for people, from the class sgpy decoded it into."""
    name = type(r).__name__
    if name == "LogPage":
        sub = f"/{r.subpage_code:02X}h" if r.spf else ""
        return f"Log page {r.page_code:02X}h{sub}"
    return _words(name)


def _cmd_logs(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy logs``: LOG SENSE (cumulative values) of PAGE (a code or a name; default the supported pages)."""
    from sgpy import command

    if args.all:
        return _logs_all(args, out)
    # 00h: supported pages (SPC-5 7.3.18)
    page, subpage = _page_and_subpage(args.page, args.subpage, 0x00, "log")
    with _open(args, policy=safety.READ_ONLY) as ch:
        io = _run(ch, command.LogSense(page_code=page, subpage_code=subpage, pc=1))
    if out.dumping:
        out.dump(io.data)
        return EXIT_OK
    r = io.result
    if out.json:
        out.emit({"device": ch.path, "page": page, "subpage": subpage, "name": _log_name(r), "data": jsonable(r)})
        return EXIT_OK
    _log_page_text(out, r, f"{ch.path}: ")
    return EXIT_OK


def _log_page_text(out: _Out, r: Any, prefix: str = "") -> None:
    """One decoded log page for people: its name and codes, then its fields and parameters."""
    sub = f", subpage {r.subpage_code:02X}h" if r.spf else ""
    out.line(f"{prefix}{_log_name(r)} (page {r.page_code:02X}h{sub})")
    name = type(r).__name__
    if name == "SupportedLogPages":
        out.line("  " + " ".join(f"{p:02X}h" for p in r.pages))
        return
    if name == "SupportedLogSubpages":
        out.line("  " + " ".join(f"{p:02X}h/{s:02X}h" for p, s in r.pages))
        return
    typed = [f for f in attrs.fields(type(r)) if f.name not in {g.name for g in attrs.fields(_log_base())}]
    if typed:
        out.fields([(f.name.replace("_", " "), _show(getattr(r, f.name))) for f in typed
                    if not (isinstance(getattr(r, f.name), tuple) and getattr(r, f.name)
                            and attrs.has(type(getattr(r, f.name)[0])))])
    out.table(["PARAMETER", "VALUE"], [[f"{p.parameter_code:04X}h", _show(p.value)] for p in r.parameters],
              indent="  ")


def _logs_all(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy logs DEV --all`` (sg_logs -a, with -A's subpages): the list of supported pages and subpages
    (00h/FFh, SPC-5 7.3.19; 00h where the device refuses that), then every page in it, decoded.

    A page that cannot be read (the device refuses it, or its answer does
    not parse) is reported in its place and the others are still read; the
    exit status is then 3.  The lists of subpages (xxh/FFh) are not read
    again: the first list holds them all.
    """
    from sgpy import command

    if args.page is not None or args.subpage is not None:
        raise UsageError("--all reads every page the device lists: give no PAGE and no --subpage")
    if out.dumping:
        raise UsageError("--hex and --raw show one page's bytes; with --all use --json")
    with _open(args, policy=safety.READ_ONLY) as ch:
        try:
            listing = _execute(ch, command.LogSense(page_code=0x00, subpage_code=0xFF, pc=1)).result
            wanted = [(p, sp) for p, sp in listing.pages if p != 0x00 and sp != 0xFF]
            with_subpages = True
        except IllegalRequest:  # a device without subpages (SPC-3 and before): the list of page codes
            listing = _run(ch, command.LogSense(page_code=0x00, subpage_code=0x00, pc=1)).result
            wanted = [(p, 0) for p in listing.pages if p != 0x00]
            with_subpages = False
        except TaskFailed as exc:
            raise _DeviceError(ch.path, exc) from None
        got: List[Tuple[int, int, Any, Optional[BaseException]]] = []
        for page, subpage in wanted:
            try:
                got.append((page, subpage, _execute(ch, command.LogSense(page_code=page, subpage_code=subpage,
                                                                         pc=1)).result, None))
            except (TaskFailed, MalformedResponse) as exc:
                got.append((page, subpage, None, exc))
    failed = sum(1 for *_, err in got if err is not None)
    code = EXIT_DEVICE_ERROR if failed else EXIT_OK
    if out.json:
        out.emit({"device": ch.path, "subpages": with_subpages,
                  "supported": [{"page": p, "subpage": sp} for p, sp in wanted],
                  "pages": [{"page": p, "subpage": sp, "name": None if r is None else _log_name(r),
                             "data": None if r is None else jsonable(r),
                             "error": None if err is None else _log_error_json(err)}
                            for p, sp, r, err in got]})
        return code
    out.line(f"{ch.path}: {len(wanted)} log page(s)" + (f", {failed} not read" if failed else ""))
    for page, subpage, r, err in got:
        out.line()
        if err is None:
            _log_page_text(out, r)
        else:
            label = f"Log page {page:02X}h" + (f"/{subpage:02X}h" if subpage else "")
            sub = f", subpage {subpage:02X}h" if subpage else ""
            why = _failure_text(err) if isinstance(err, TaskFailed) else f"the answer does not parse: {err}"
            out.line(f"{label} (page {page:02X}h{sub}): not read: {why}")
    return code


def _log_error_json(exc: BaseException) -> Dict[str, Any]:
    """Why one page of ``logs --all`` was not read: the device's refusal, or an answer that does not parse."""
    if isinstance(exc, TaskFailed):
        return _failure_json(exc)
    return {"type": _error_type(exc), "message": str(exc), "sense": None}


def _log_base() -> Any:
    """The generic log page class, whose fields every log page has (the typed ones add theirs)."""
    from sgpy.responses import LogPage

    return LogPage


def _cmd_raw(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy raw``: check the CDB's length and the policy before anything is read or opened, then send it.

    With ``--out`` the policy is asked first about a data-out command with
    this CDB, so a refusal comes before a byte of FILE is read; FILE is
    then read up to the channel's transfer limit and no further (a larger
    one, or an endless one such as /dev/zero, is a usage error), and the
    command with its real data is checked again.
    """
    from sgpy import command

    cdb = _hex_bytes(args.cdb, "CDB")
    _check_cdb_length(cdb, _cdb_lengths(None, args.device), args.device)
    data: Optional[bytes] = None
    if args.out is not None:
        risk = _check(args, command.RawCommand(cdb=cdb, direction=Direction.TO_DEVICE, length=1))
    elif args.in_ is not None:
        cmd = command.RawCommand(cdb=cdb, direction=Direction.FROM_DEVICE, length=args.in_)
        risk = _check(args, cmd)
    else:
        cmd = command.RawCommand(cdb=cdb)
        risk = _check(args, cmd)
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(_input(args.out)) if args.out is not None else None
        ch = stack.enter_context(_open(args, policy=_policy(args)))
        _check_cdb_length(cdb, _cdb_lengths(ch, ch.path), ch.path)
        if src is not None:
            data = _read_bounded(src, args.out, ch.max_transfer, ch.path)
            cmd = command.RawCommand(cdb=cdb, direction=Direction.TO_DEVICE, data=data)
            risk = _check(args, cmd)
        io = _run(ch, cmd, retry=False)
    hdr = io.hdr
    got = io.data if args.in_ is not None else b""
    known = command.lookup(cdb[0], None)
    doc = {"device": ch.path, "cdb": cdb.hex(), "name": _command_name(cdb[0], None, None) if known is None
           else known.name, "risk": risk.label, "direction": cmd.direction.name.lower(),
           "status": hdr.status if hdr else 0, "resid": hdr.resid if hdr else 0,
           "duration_ms": hdr.duration if hdr else None, "sent": len(data) if data is not None else 0,
           "received": len(got), "data": got.hex() if args.in_ is not None else None}
    if out.json:
        out.emit(doc)
        return EXIT_OK
    status = ScsiStatus(doc["status"]).name if doc["status"] in set(ScsiStatus) else f"{doc['status']:02X}h"
    out.line(f"{ch.path}: {cdb.hex(' ')} ({doc['name']}, {risk.label}): status {status}")
    if data is not None:
        out.line(f"  sent {len(data)} bytes")
    if args.in_ is not None:
        out.line(f"  received {len(got)} bytes")
        _hexdump(out, got)
    return EXIT_OK


#: The longest CDB libiscsi sends (no additional header segment: RFC 7143 10.3.5).
_ISCSI_CDB_MAX = 16


def _cdb_lengths(ch: Any, where: str) -> Tuple[int, int]:
    """The CDB lengths (shortest, longest) the transport of ``ch`` carries, or of ``where`` before it is open.

    A channel says it itself (``cdb_lengths``); before one is open, or from
    a channel that does not say, sg's bounds: at least 6 bytes (sg.c refuses
    less with EMSGSIZE) and at most a submission slot's ``CDB_MAX`` bytes;
    iSCSI takes at most 16.
    """
    from sgpy import _binding
    from sgpy.channel import Channel

    lengths = getattr(ch if ch is not None else Channel, "cdb_lengths", None)
    low, high = lengths if lengths is not None else (6, _binding.CDB_MAX)
    if where[:8].lower() == "iscsi://" or getattr(ch, "kind", None) == "iscsi":
        high = min(high, _ISCSI_CDB_MAX)
    return int(low), int(high)


def _check_cdb_length(cdb: bytes, lengths: Tuple[int, int], where: str) -> None:
    """Refuse (usage error) a CDB whose length the transport cannot carry: nothing is sent."""
    low, high = lengths
    if not low <= len(cdb) <= high:
        raise UsageError(f"the CDB has {len(cdb)} byte(s); {where} takes CDBs of {low} to {high} bytes")


def _input(path: str) -> ContextManager[BinaryIO]:
    """FILE opened for reading (``-``: stdin, left open afterwards); nothing is read yet."""
    if path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    return open(path, "rb")


def _regular_size(f: BinaryIO) -> Optional[int]:
    """The size of ``f`` when it is a regular file; None for a pipe, a terminal, a device."""
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _read_up_to(f: BinaryIO, n: int) -> bytearray:
    """Up to ``n`` bytes of ``f``: fewer only at its end (a pipe may hand them over in pieces)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            break
        got += k
    view.release()
    del buf[got:]
    return buf


def _read_bounded(f: BinaryIO, name: str, limit: int, device: str) -> bytes:
    """All of ``f`` when it holds at most ``limit`` bytes (one command's data); a usage error otherwise.

    A regular file's size is known without reading it; anything else is
    read up to ``limit`` + 1 bytes and no further, so /dev/zero costs no
    more memory than the largest command.
    """
    size = _regular_size(f)
    if size is not None and size > limit:
        raise UsageError(f"{name} has {size} bytes; {device} takes at most {limit} in one command")
    data = _read_up_to(f, limit + 1)
    if len(data) > limit:
        raise UsageError(f"{name} has more than {limit} bytes; {device} takes at most {limit} in one command")
    return bytes(data)


#: Bytes of data ``read`` and ``write`` keep in flight at most (and so in memory).
_INFLIGHT_BYTES = 64 << 20
#: Commands ``read`` and ``write`` keep in flight at most.
_INFLIGHT_COMMANDS = 8


def _block_size_of(ch: Any, cap: Dict[str, Any]) -> int:
    """The block size READ CAPACITY reported; one of 0 is an answer nothing can be done with."""
    bs = int(cap["block_size"])
    if bs < 1:
        raise MalformedResponse(f"{ch.path}: READ CAPACITY reports a logical block length of {bs} bytes")
    return bs


def _check_range(lba: int, count: int, cap: Dict[str, Any], what: str = "") -> None:
    """Refuse (usage error) ``count`` blocks from ``lba`` that do not all lie on the medium."""
    blocks = int(cap["blocks"])
    if lba >= blocks:
        raise UsageError(f"--lba {lba} is beyond the end of {cap['device']}: its LBAs are 0 to {blocks - 1}")
    if lba + count > blocks:
        raise UsageError(f"{what or f'--count {count}'} from LBA {lba} goes beyond the end of {cap['device']}: "
                         f"{blocks - lba} block(s) fit from there (LBAs 0 to {blocks - 1})")


def _per_command(ch: Any, chunk: int, bs: int) -> Tuple[int, int]:
    """Blocks per command (``--chunk``, at most what the kernel always maps in one request, at least one block)
    and how many commands go in flight at once (so that at most :data:`_INFLIGHT_BYTES` are)."""
    per = max(1, min(ch.assured_transfer, chunk) // bs)
    return per, max(1, min(_INFLIGHT_COMMANDS, _INFLIGHT_BYTES // (per * bs)))


def _chunks(lba: int, count: int, per: int) -> Iterator[Tuple[int, int]]:
    """``(first LBA, blocks)`` of each command covering ``count`` blocks from ``lba``, made as they are needed."""
    end = lba + count
    for first in range(lba, end, per):
        yield first, min(per, end - first)


def _cmd_read(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy read``: the range is checked against the medium first, then read a few commands at a time."""
    from sgpy import command

    if args.output == "-" and out.json:
        raise UsageError("--json writes to stdout: give the data another place with -o FILE")
    start = time.perf_counter()
    with _open(args, policy=safety.READ_ONLY) as ch:
        cap = _read_capacity(ch)
        bs = ch.block_size = _block_size_of(ch, cap)
        _check_range(args.lba, args.count, cap)
        per, depth = _per_command(ch, args.chunk, bs)
        sink = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
        total = 0
        try:
            chunks = _chunks(args.lba, args.count, per)
            while True:  # a few commands in flight, written in order
                batch = [command.Read16(lba=first, transfer_length=n) for first, n in itertools.islice(chunks, depth)]
                if not batch:
                    break
                for io in _run(ch, batch):
                    sink.write(io.data_buf)
                    total += len(io.data_buf)
        finally:
            if sink is not sys.stdout.buffer:
                sink.close()
            else:
                sink.flush()
    seconds = time.perf_counter() - start
    doc = {"device": ch.path, "lba": args.lba, "count": args.count, "block_size": bs, "bytes": total,
           "output": args.output, "seconds": round(seconds, 6)}
    if out.json:
        out.emit(doc)
    elif args.output != "-":
        out.line(f"{ch.path}: read {args.count} block(s) from LBA {args.lba} ({total} bytes) into {args.output} "
                 f"in {seconds:.3f} s")
    return EXIT_OK


def _cmd_write(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy write``: refuse without --allow-data-loss before reading anything, then copy as the input comes.

    A regular file is checked whole (its size against the block size, the
    range against the medium) before anything is sent.  A pipe or a device
    (stdin, /dev/zero) has no size: it is written as it arrives, a few
    commands at a time, up to ``--count`` blocks or to its end; an input
    that ends short of ``--count`` or in the middle of a block, or goes on
    past the end of the medium, stops the copy with a usage error that says
    how many blocks were written.
    """
    from sgpy import command

    _check(args, command.Write16)
    start = time.perf_counter()
    with _input(args.input) as src, _open(args, policy=_policy(args)) as ch:
        cap = _read_capacity(ch)
        bs = ch.block_size = _block_size_of(ch, cap)
        size = _regular_size(src)
        count: Optional[int] = args.count
        if count is not None:
            _check_range(args.lba, count, cap)
            if size is not None and size < count * bs:
                raise UsageError(f"{args.input} has {size} bytes; {count} block(s) need {count * bs}")
        elif size is not None:
            if size % bs:
                raise UsageError(f"{args.input} has {size} bytes, not a multiple of the block size {bs}; "
                                 "give --count to write a part of it")
            count = size // bs
            if count == 0:
                raise UsageError(f"{args.input} is empty: nothing to write")
            _check_range(args.lba, count, cap, what=f"{args.input} ({count} block(s))")
        else:
            _check_range(args.lba, 1, cap)
        written = _write_from(ch, src, args, bs, count, int(cap["blocks"]) - args.lba)
    seconds = time.perf_counter() - start
    doc = {"device": ch.path, "lba": args.lba, "count": written, "block_size": bs, "bytes": written * bs,
           "input": args.input, "seconds": round(seconds, 6)}
    if out.json:
        out.emit(doc)
    else:
        out.line(f"{ch.path}: wrote {written} block(s) at LBA {args.lba} ({written * bs} bytes) from {args.input} "
                 f"in {seconds:.3f} s")
    return EXIT_OK


def _write_from(ch: Any, src: BinaryIO, args: argparse.Namespace, bs: int, count: Optional[int], room: int) -> int:
    """Copy ``count`` blocks of ``src`` (None: up to its end, at most ``room``) from ``--lba``; the blocks written.

    Only the commands in flight hold data: each batch is read, sent and
    completed before the next is read.
    """
    from sgpy import command

    per, depth = _per_command(ch, args.chunk, bs)
    want = count if count is not None else room
    written = 0
    ended: Optional[int] = None  # bytes of a last, short read
    while written < want and ended is None:
        batch: List[Any] = []
        queued = written
        while len(batch) < depth and queued < want:
            n = min(per, want - queued)
            buf = _read_up_to(src, n * bs)
            full = len(buf) // bs
            if full:
                batch.append(command.Write16(lba=args.lba + queued, transfer_length=full,
                                             data=memoryview(buf)[: full * bs]))
                queued += full
            if len(buf) < n * bs:
                ended = len(buf) - full * bs
                break
        if batch:
            _run(ch, batch)
        written = queued
    done = f"{written} block(s) were written from LBA {args.lba}"
    if ended:
        raise UsageError(f"{args.input} ends in the middle of a block ({ended} of {bs} bytes): {done}")
    if written < want and count is not None:
        raise UsageError(f"{args.input} ended after {written * bs} bytes; {count} block(s) need {count * bs}: {done}")
    if written == 0:
        raise UsageError(f"{args.input} is empty: nothing to write")
    if count is None and written == room and _read_up_to(src, 1):
        raise UsageError(f"{args.input} goes on past the end of {ch.path} ({room} block(s) from LBA {args.lba}): "
                         f"{done}; give --count to write a part of it")
    return written


# -- copy (sg_dd if=DEV of=DEV2) -----------------------------------------------------------

#: Commands ``copy`` keeps in flight unless ``--qd`` says otherwise (reads and writes together).
COPY_QD = 8


def _lu_name(ch: Any) -> Optional[str]:
    """The logical unit's name from VPD page 83h (``naa.…``, ``eui.…``...), or None when the device gives none."""
    from sgpy import command
    from sgpy.handler import might_fail

    try:
        io = ch.execute(command.Inquiry(evpd=True, page_code=0x83, allocation_length=1024), verify_handler=might_fail)
    except (SgError, OSError, MalformedResponse):
        return None
    wwn = getattr(io.result, "wwn", None) if io.error is None else None
    return wwn if isinstance(wwn, str) and wwn else None


def _same_unit(src: Any, dst: Any) -> bool:
    """Whether two open channels reach the same logical unit: the same node (or the same device number), the
    same iSCSI URL, or the same name in VPD page 83h.  Two units that share their medium without saying so
    (scsi_debug's disks without ``per_host_store``) cannot be told apart."""
    if src.path == dst.path:
        return True
    try:
        if os.stat(src.path).st_rdev == os.stat(dst.path).st_rdev:
            return True
    except (OSError, ValueError):
        pass
    a, b = _lu_name(src), _lu_name(dst)
    return a is not None and a == b


def _copy_progress(out: _Out, done: int, count: int, bs: int, start: float) -> None:
    """A live line on a terminal (stderr): blocks copied so far, the share of the whole and the rate."""
    if not out.stderr.isatty():
        return
    seconds = max(time.perf_counter() - start, 1e-9)
    out.stderr.write(f"\r  {done} of {count} block(s) ({100 * done // count}%), "
                     f"{done * bs / seconds / 1e6:.1f} MB/s ")
    out.stderr.flush()


def _copy_blocks(src: Any, dst: Any, args: argparse.Namespace, out: _Out, bs: int, per: int, depth: int,
                 done: List[int]) -> None:
    """Copy ``--count`` blocks from ``--lba`` of ``src`` to ``--dst-lba`` of ``dst``, ``per`` blocks a command.

    A bounded pipeline: at most ``depth`` commands in flight, reads and
    writes together, so at most ``depth`` × ``per`` blocks in memory.  Reads
    are queued on ``src`` as far as the depth allows; each read, once done
    (in order), becomes a WRITE(16) on ``dst`` whose data is the read's own
    buffer (no copy); a write's completion frees its place for the next
    read.  ``done[0]`` counts the blocks from the start of the range whose
    write has completed (writes are collected in order), so that an
    interruption can say how far the copy got.
    """
    from collections import deque

    from sgpy import command

    chunks = _chunks(0, args.count, per)
    reads: Any = deque()  # (offset, blocks, io) in range order
    writes: Any = deque()
    more = True
    start = time.perf_counter()
    last = 0.0
    while True:
        while more and len(reads) + len(writes) < depth:
            nxt = next(chunks, None)
            if nxt is None:
                more = False
                break
            off, n = nxt
            reads.append((off, n, src.execute(command.Read16(lba=args.lba + off, transfer_length=n), async_=True)))
        if not reads and not writes:
            break
        if reads:
            off, n, io = reads.popleft()
            _wait_io(src, io)
            if io.hdr is not None and io.hdr.resid:
                raise _Failure(f"{src.path}: READ(16) of LBA {args.lba + off} moved {n * bs - io.hdr.resid} of "
                               f"{n * bs} bytes; {done[0]} block(s) were copied")
            writes.append((off, n, dst.execute(command.Write16(lba=args.dst_lba + off, transfer_length=n,
                                                                data=io.data_buf[: n * bs]), async_=True)))
            del io
        # writes are collected in order: those already done, and the oldest whenever the pipeline is
        # full or nothing is left to read
        while writes and (writes[0][2].returned or len(reads) + len(writes) >= depth or not (reads or more)):
            off, n, io = writes.popleft()
            _wait_io(dst, io)
            done[0] = off + n
            now = time.perf_counter()
            if now - last >= 0.5:
                last = now
                _copy_progress(out, done[0], args.count, bs, start)


def _wait_io(ch: Any, io: Any) -> None:
    """Wait for one IO of a pipeline; its failure becomes exit status 3 (1 when the kernel lacked memory)."""
    try:
        io.wait()
    except (TaskFailed, OSError) as exc:
        failure = _out_of_kernel_memory(ch.path, exc)
        if failure is not None:
            raise failure from None
        if isinstance(exc, TaskFailed):
            raise _DeviceError(ch.path, exc) from None
        raise


def _copy_verify(src: Any, dst: Any, args: argparse.Namespace, bs: int, per: int, depth: int) -> None:
    """Read both ranges back, a few commands at a time, and compare: the first LBA that differs is a failure."""
    from sgpy import command

    chunks = _chunks(0, args.count, per)
    while True:
        batch = list(itertools.islice(chunks, max(1, depth // 2)))
        if not batch:
            return
        a = _run(src, [command.Read16(lba=args.lba + off, transfer_length=n) for off, n in batch])
        b = _run(dst, [command.Read16(lba=args.dst_lba + off, transfer_length=n) for off, n in batch])
        for (off, n), x, y in zip(batch, a, b):
            if x.data_buf[: n * bs] != y.data_buf[: n * bs]:
                first = next(i for i in range(n) if x.data_buf[i * bs:(i + 1) * bs] != y.data_buf[i * bs:(i + 1) * bs])
                raise _Failure(f"--verify: block {off + first} of the range differs: {src.path} LBA "
                               f"{args.lba + off + first}, {dst.path} LBA {args.dst_lba + off + first}")


def _cmd_copy(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy copy SRC DST --lba L --count N [--dst-lba M]`` (sg_dd if=SRC of=DST): device to device.

    Refused without --allow-data-loss before anything is opened.  Both
    capacities are read and the block sizes compared, the ranges checked
    against both media and, on the same logical unit, against each other
    (an overlap is refused), all before the first write.
    """
    from sgpy import command

    if args.dst_lba is None:
        args.dst_lba = args.lba
    _check(args, command.Write16)
    dst_args = argparse.Namespace(**{**vars(args), "device": args.destination})
    start = time.perf_counter()
    done = [0]
    interrupted = False
    with _open(args, policy=safety.READ_ONLY) as src, _open(dst_args, policy=_policy(args)) as dst:
        for ch in (src, dst):
            _consume_unit_attention(ch)
        src_cap, dst_cap = _read_capacity(src), _read_capacity(dst)
        bs = _block_size_of(src, src_cap)
        if _block_size_of(dst, dst_cap) != bs:
            raise UsageError(f"the block sizes differ: {src.path} has {bs} bytes, {dst.path} "
                             f"{dst_cap['block_size']}; copy moves whole blocks between devices of one block size")
        src.block_size = dst.block_size = bs
        _check_range(args.lba, args.count, src_cap)
        try:
            _check_range(args.dst_lba, args.count, dst_cap)
        except UsageError as exc:
            raise UsageError(str(exc).replace("--lba", "--dst-lba", 1)) from None
        if args.lba < args.dst_lba + args.count and args.dst_lba < args.lba + args.count and _same_unit(src, dst):
            raise UsageError(f"{src.path} and {dst.path} are the same logical unit and the ranges overlap (LBAs "
                             f"{args.lba} to {args.lba + args.count - 1} onto {args.dst_lba} to "
                             f"{args.dst_lba + args.count - 1}): a read could see a block already overwritten; "
                             "copy in two steps through a range that does not overlap")
        per = max(1, min(src.assured_transfer, dst.assured_transfer, args.chunk) // bs)
        try:
            _copy_blocks(src, dst, args, out, bs, per, args.qd, done)
        except KeyboardInterrupt:
            interrupted = True
        except (_DeviceError, _Failure):
            out.note(f"sgpy copy: {done[0]} of {args.count} block(s) were copied (LBAs {args.lba} to "
                     f"{args.lba + done[0] - 1} onto {args.dst_lba} on); blocks after those may be partly written"
                     if done[0] else f"sgpy copy: no block was copied; {dst.path} may be partly written from LBA "
                     f"{args.dst_lba}")
            raise
        if out.stderr.isatty():
            out.stderr.write("\n")
        if not interrupted and args.verify:
            _copy_verify(src, dst, args, bs, per, args.qd)
    seconds = time.perf_counter() - start
    doc = {"source": src.path, "destination": dst.path, "lba": args.lba, "dst_lba": args.dst_lba,
           "count": args.count, "copied": done[0], "block_size": bs, "bytes": done[0] * bs,
           "verified": bool(args.verify) and not interrupted, "interrupted": interrupted,
           "seconds": round(seconds, 6)}
    if out.json:
        out.emit(doc)
    elif not interrupted:
        out.line(f"{src.path} -> {dst.path}: copied {done[0]} block(s) from LBA {args.lba} to LBA {args.dst_lba} "
                 f"({done[0] * bs} bytes) in {seconds:.3f} s" + (", verified" if args.verify else ""))
    if interrupted:
        out.note(f"sgpy copy: interrupted after {done[0]} of {args.count} block(s): LBAs {args.lba} to "
                 f"{args.lba + done[0] - 1} of {src.path} are on {dst.path} from LBA {args.dst_lba}; blocks after "
                 "those may be partly written" if done[0] else
                 f"sgpy copy: interrupted before the first block was copied; {dst.path} may be partly written "
                 f"from LBA {args.dst_lba}")
        raise KeyboardInterrupt
    return EXIT_OK


# -- bench -------------------------------------------------------------------------

#: Seed of the first job's random LBAs (each channel's job adds its index), so runs repeat.
_BENCH_SEED = 0x5C5


def _spread(total: int, parts: int) -> List[int]:
    """``total`` split over ``parts`` as evenly as it goes, the first ones taking the remainder."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _bench_ranges(blocks: int, per: int, jobs: int, sequential: bool) -> List[Tuple[int, int]]:
    """The ``lba_range`` of each job.

    Random jobs all cover the whole medium.  Sequential jobs each walk their
    own slice of it (a multiple of the command's ``per`` blocks), so that
    several channels together still read or write every block once per pass
    instead of all repeating the same stream; a medium too small to give
    every job a slice is shared whole.
    """
    span = blocks // per * per
    share = span // jobs // per * per
    if not sequential or share < per:
        return [(0, span)] * jobs
    return [(i * share, span if i == jobs - 1 else (i + 1) * share) for i in range(jobs)]


def _merge_latency(parts: Sequence[Any]) -> Any:
    """One :class:`sgpy.job.Latency` for several jobs: their histograms added bucket by bucket.

    Every job's histogram has the same bucket layout (``bucket_bounds``), so
    the sum is exact and :meth:`~sgpy.job.Latency.percentile` reads it as it
    reads a single job's.
    """
    from sgpy.job import Latency

    done = [p for p in parts if p is not None and p.count]
    if not done:
        return Latency(count=0, min_ns=0, mean_ns=0.0, max_ns=0, histogram=())
    buckets: Dict[Tuple[int, int], int] = {}
    for p in done:
        for low, high, n in p.histogram:
            buckets[(low, high)] = buckets.get((low, high), 0) + n
    count = sum(p.count for p in done)
    return Latency(count=count, min_ns=min(p.min_ns for p in done),
                   mean_ns=sum(p.mean_ns * p.count for p in done) / count, max_ns=max(p.max_ns for p in done),
                   histogram=tuple((low, high, n) for (low, high), n in sorted(buckets.items())))


def _bench_done(elapsed: float, done: int, seconds: Optional[float], count: Optional[int],
                rate: float) -> Tuple[float, Optional[float]]:
    """How far a run is, as a fraction from 0 to 1, and its ETA in seconds (None while unknown).

    A run ends at ``seconds`` or after ``count`` commands, whichever comes
    first (fio's runtime and number_ios): the fraction is the larger of
    the two, and the ETA the sooner (the count's from the recent ``rate``).
    """
    parts: List[Tuple[float, Optional[float]]] = []
    if seconds:
        parts.append((elapsed / seconds, max(0.0, seconds - elapsed)))
    if count:
        left = max(0, count - done)
        parts.append((done / count, left / rate if rate > 0 else None))
    if not parts:
        return 0.0, None
    frac = min(1.0, max(p for p, _ in parts))
    etas = [e for _, e in parts if e is not None]
    return frac, (min(etas) if etas else None)


def _eta_text(seconds: Optional[float]) -> str:
    """An ETA as fio shows it: ``0:42``, ``1:02:03``; ``-:--`` while unknown."""
    if seconds is None:
        return "-:--"
    s = int(seconds + 0.999)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _bench_progress(out: _Out, reactor: Any, jobs: Sequence[Any], bs: int, *, show: bool = False,
                    seconds: Optional[float] = None, count: Optional[int] = None) -> None:
    """Wait for ``jobs``; with ``show``, a live line on stderr meanwhile: percent done, ETA, and IOPS
    and MB/s of the last half second (fio's status line).

    The jobs run in C on the reactor's epoll; waiting with a timeout hands
    control back twice a second to read their counters (``job.stats``).
    """
    if not show:
        reactor.wait(jobs)
        return
    err = out.stderr
    started = last_t = time.monotonic()
    last_n = 0
    while not reactor.wait(jobs, timeout=0.5):
        now = time.monotonic()
        n = sum(job.stats.commands for job in jobs)
        rate = (n - last_n) / (now - last_t) if now > last_t else 0.0
        frac, eta = _bench_done(now - started, n, seconds, count, rate)
        err.write(f"\r  {frac * 100:5.1f}% done  ETA {_eta_text(eta):>7}  {rate:10.0f} IOPS  "
                  f"{rate * bs / 1e6:9.1f} MB/s ")
        err.flush()
        last_n, last_t = n, now
    _clear_progress(out, show)


def _clear_progress(out: _Out, show: bool) -> None:
    """Blank the live line (see :func:`_bench_progress`)."""
    if show:
        out.stderr.write("\r" + " " * 72 + "\r")
        out.stderr.flush()


def _identity(ch: Any) -> Dict[str, Optional[str]]:
    """The device's ``vendor``, ``model``, ``revision`` (standard INQUIRY) and ``serial`` (VPD page 80h),
    each None where the device does not answer: a benchmark result should say what it measured.

    Neither command is a reason to fail the run: a device without the
    serial number page, or one that refuses INQUIRY, is still measured.
    """
    from sgpy import command
    from sgpy.handler import might_fail

    ident: Dict[str, Optional[str]] = {"vendor": None, "model": None, "revision": None, "serial": None}
    try:
        io = ch.execute(command.Inquiry(), verify_handler=might_fail)
        if io.error is None and io.result is not None:
            r = io.result
            ident.update(vendor=r.vendor.strip() or None, model=r.product.strip() or None,
                         revision=r.revision.strip() or None)
        io = ch.execute(command.Inquiry(evpd=True, page_code=0x80, allocation_length=252), verify_handler=might_fail)
        serial = getattr(io.result, "serial", None) if io.error is None else None
        if isinstance(serial, str) and serial.strip():
            ident["serial"] = serial.strip()
    except (SgError, OSError, MalformedResponse):
        pass  # what could not be read stays None
    return ident


def _utc_now() -> str:
    """The time now in UTC, ISO 8601 to the millisecond: ``2026-11-27T10:32:05.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stop_jobs(out: _Out, reactor: Any, jobs: Sequence[Any], show: bool = False) -> None:
    """After a Ctrl-C: send no more commands, and wait for those in flight, so that the jobs' counters
    are final and hold every command that completed (a second Ctrl-C ends the wait, and the run)."""
    for job in jobs:
        job.cancel()
    reactor.wait(jobs)
    _clear_progress(out, show)


def _bench_span(args: argparse.Namespace, block: int, blocks: int, per: int) -> Tuple[int, int]:
    """``--offset`` and ``--size`` (bytes) as the LBAs ``[first, stop)`` the run covers, checked against
    the block size and the capacity before anything is sent (fio's offset= and size=)."""
    capacity = blocks * block
    offset = args.offset or 0
    for name, value in (("--offset", offset), ("--size", args.size)):
        if value is not None and value % block:
            raise UsageError(f"{name} {value} is not a multiple of the block size {block}")
    if offset >= capacity:
        raise UsageError(f"--offset {offset} is at or past the end of the device ({capacity} bytes)")
    size = capacity - offset if args.size is None else args.size
    if args.size is not None and offset + size > capacity:
        raise UsageError(f"--offset {offset} --size {size} goes past the end of the device ({capacity} bytes, "
                         f"{capacity - offset} from the offset)")
    first, stop = offset // block, (offset + size) // block
    if stop - first < per:
        raise UsageError(f"--size {size} is smaller than one command's --bs {per * block}")
    return first, stop


def _bench(args: argparse.Namespace, out: _Out, path: str) -> Dict[str, Any]:
    """Run the benchmark on ``path``: one asynchronous job per channel, all on one reactor.

    Each job sends READ(16) or WRITE(16) of ``--bs`` bytes for
    ``--seconds`` with its share of ``--qd`` in flight; the submit/complete
    loop and the latency histogram are in sgpy's C extension, so the numbers
    measure the device and the kernel rather than Python.  The first failed
    command ends every job and becomes exit status 3.  Ctrl-C once the jobs
    run stops them and gives what they completed, with ``interrupted`` true
    (as fio does); before, it ends the command.
    """
    from sgpy import command
    from sgpy.errors import TransferTooLarge
    from sgpy.job import JobError
    from sgpy.reactor import Reactor

    writing = args.rw in _BENCH_WRITES
    mixed = args.rw in _BENCH_MIXED
    reactor = Reactor()
    try:
        channels = []
        for _ in range(args.channels):
            try:
                channels.append(_open(args, reactor=reactor, policy=_policy(args)))
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                raise UsageError(f"--channels {args.channels}: this process may not open that many files "
                                 f"({exc.strerror}; see ulimit -n)") from None
        if channels[0].sync_only:
            raise UsageError(f"{path} takes synchronous SG_IO only; bench needs an sg node (see 'sgpy list') "
                             "or an iSCSI URL")
        cap = _read_capacity(channels[0])
        identity = _identity(channels[0])
        for ch in channels[1:]:
            _consume_unit_attention(ch)  # each iSCSI session (I_T nexus) has its own (SAM-5 5.14)
        block = cap["block_size"]
        if args.bs % block:
            raise UsageError(f"--bs {args.bs} is not a multiple of the block size {block}")
        per = args.bs // block
        if per > cap["blocks"]:
            raise UsageError(f"--bs {args.bs} is larger than the device ({cap['capacity_bytes']} bytes)")
        first, stop = _bench_span(args, block, cap["blocks"], per)
        write: Any = None
        if mixed:
            cmd: Any = command.Read16(lba=0, transfer_length=per)
            write = command.Write16(lba=0, transfer_length=per, data=bytes(args.bs))
        elif writing:
            cmd = command.Write16(lba=0, transfer_length=per, data=bytes(args.bs))
        else:
            cmd = command.Read16(lba=0, transfer_length=per)
        # A mixed run's --verify checks its reads and stamps its writes with the same tag, so that
        # every block it writes still verifies (see docs/jobs.rst).
        stamp = args.verify if mixed and args.verify is not None else args.stamp
        sequential = not args.rw.startswith("rand")
        depths = [(ch, qd) for ch, qd in zip(channels, _spread(args.qd, len(channels))) if qd]
        ranges = [(first + a, first + b) for a, b in _bench_ranges(stop - first, per, len(depths), sequential)]
        seconds = args.seconds if args.seconds is not None or args.count is not None else 5.0
        counts = _spread(args.count, len(depths)) if args.count is not None else [None] * len(depths)
        rates = _spread(args.rate_iops, len(depths)) if args.rate_iops is not None else [None] * len(depths)
        jobs: List[Any] = []
        started = _utc_now()
        for i, ((ch, qd), lba_range, count, rate) in enumerate(zip(depths, ranges, counts, rates)):
            ch.block_size = block
            if count == 0:
                continue
            try:
                jobs.append(ch.run(cmd, async_=True, seconds=seconds, count=count, queue_depth=qd,
                                   lba="sequential" if sequential else "random", lba_range=lba_range,
                                   seed=_BENCH_SEED + i, stamp=stamp, verify=args.verify, write=write,
                                   read_percent=args.rwmixread if mixed else None, rate_iops=rate))
            except (JobError, TransferTooLarge) as exc:
                raise UsageError(str(exc)) from None

        def stop_all(job: Any) -> None:
            if job.exception is not None:  # one failure ends the run: no point measuring on
                for other in jobs:
                    other.cancel()

        for job in jobs:
            job.add_done_callback(stop_all)
        interrupted = False
        show = bool(getattr(args, "progress", False)) or out.stderr.isatty()
        try:
            _bench_progress(out, reactor, jobs, args.bs, show=show, seconds=seconds, count=args.count)
        except KeyboardInterrupt:
            interrupted = True
            _stop_jobs(out, reactor, jobs, show)
        for job in jobs:
            failure = _out_of_kernel_memory(path, job.exception) if job.exception is not None else None
            if failure is not None:
                raise failure
            if isinstance(job.exception, TaskFailed):
                raise _DeviceError(path, job.exception)
            if job.exception is not None:
                raise job.exception
        stats = [job.stats for job in jobs]
    finally:
        reactor.close()
    return _bench_doc(args, path, stats, jobs[0].engine if jobs else "", identity=identity, started=started,
                      interrupted=interrupted, span=(first * block, (stop - first) * block))


def _bench_part(stats: Sequence[Any], elapsed: float) -> Dict[str, Any]:
    """The counters of one direction (``read`` or ``write``) of a run, summed over its jobs."""
    n = sum(s.commands for s in stats)
    nbytes = sum(s.bytes for s in stats)
    lat = _merge_latency([s.latency for s in stats])

    def ms(ns: float) -> float:
        return round(ns / 1e6, 4)

    return {
        "ios": n, "bytes": nbytes, "errors": sum(s.errors for s in stats),
        "recovered": sum(s.recovered for s in stats), "short_transfers": sum(s.short_transfers for s in stats),
        "iops": round(n / elapsed, 1) if elapsed else 0.0,
        "mb_per_s": round(nbytes / elapsed / 1e6, 3) if elapsed else 0.0,
        "latency_ms": {"min": ms(lat.min_ns), "mean": ms(lat.mean_ns), "p50": ms(lat.percentile(50)),
                       "p90": ms(lat.percentile(90)), "p99": ms(lat.percentile(99)),
                       "p999": ms(lat.percentile(99.9)), "max": ms(lat.max_ns)},
    }


def _bench_doc(args: argparse.Namespace, path: str, stats: Sequence[Any], job_engine: str, *,
               identity: Optional[Dict[str, Optional[str]]] = None, started: Optional[str] = None,
               interrupted: bool = False, span: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
    """The JSON answer of bench from the jobs' :class:`~sgpy.job.JobStats` (their sums; the longest time).

    ``job_engine`` is the jobs' :attr:`sgpy.job.Job.engine`: ``"c"`` on sg nodes, ``"io"`` on iSCSI.
    ``identity`` (vendor, model, revision, serial), the sgpy version and the
    start time ``started`` (ISO 8601, UTC) say what was measured, with what,
    and when, so that results kept in files can be compared; ``interrupted``
    says the run was cut short by Ctrl-C.  ``span`` is the ``(offset, size)``
    in bytes the run covered.  ``read`` and ``write`` hold the counters of
    each direction apart (fio's read and write sections): a mixed run's
    jobs count them apart, any other run is all one or the other.
    """
    from sgpy import __version__

    elapsed = max((s.seconds for s in stats), default=0.0)
    rw = args.rw
    mixed = rw in _BENCH_MIXED
    reads = [s.read for s in stats if s.read is not None] if mixed else ([] if rw in _BENCH_WRITES else list(stats))
    writes = [s.write for s in stats if s.write is not None] if mixed else (list(stats) if rw in _BENCH_WRITES else [])
    total = _bench_part(stats, elapsed)
    offset, size = span if span is not None else (0, None)
    return {
        "device": path, "identity": dict(identity) if identity is not None else
        {"vendor": None, "model": None, "revision": None, "serial": None},
        "sgpy_version": __version__, "timestamp": started if started is not None else _utc_now(),
        "interrupted": interrupted, "rw": rw, "bs": args.bs, "qd": args.qd, "channels": args.channels,
        "rwmixread": getattr(args, "rwmixread", None) if mixed else None,
        "rate_iops": getattr(args, "rate_iops", None), "offset": offset, "size": size,
        "engine": "job", "job_engine": job_engine, "seconds": round(elapsed, 6),
        **total,
        "read": _bench_part(reads, elapsed), "write": _bench_part(writes, elapsed),
    }


def _cmd_bench(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy bench``: refuse writes without --allow-data-loss before opening anything, run, report."""
    from sgpy import command

    if args.rw in _BENCH_WRITES:
        _check(args, command.Write16)
        if args.verify is not None and args.rw not in _BENCH_MIXED:
            raise UsageError("--verify checks reads; with --rw write or randwrite use --stamp")
    elif args.stamp is not None:
        raise UsageError("--stamp marks writes; with --rw read or randread use --verify")
    if args.rwmixread is not None and args.rw not in _BENCH_MIXED:
        raise UsageError(f"--rwmixread goes with --rw randrw or rw (a mix of reads and writes), not {args.rw}")
    if args.rw in _BENCH_MIXED and args.rwmixread is None:
        args.rwmixread = 50  # fio's default
    if args.rate_iops is not None and args.rate_iops < args.channels:
        raise UsageError(f"--rate-iops {args.rate_iops} is less than --channels {args.channels}: each channel "
                         "sends at least one command per second")
    if args.channels > args.qd:
        raise UsageError(f"--channels {args.channels} is more than --qd {args.qd}: each channel needs at least "
                         "one command in flight")
    path = _resolve(args.device)
    result = _bench(args, out, path)
    code = EXIT_INTERRUPTED if result["interrupted"] else EXIT_OK
    if code == EXIT_INTERRUPTED:
        out.note("sgpy bench: interrupted: the statistics of the commands completed so far follow")
    if out.json:
        out.emit(result)
        return code
    lat = result["latency_ms"]
    cut = " (interrupted)" if result["interrupted"] else ""
    extra = f" rwmixread={args.rwmixread}" if args.rw in _BENCH_MIXED else ""
    if args.rate_iops is not None:
        extra += f" rate_iops={args.rate_iops}"
    if args.offset is not None or args.size is not None:
        extra += f" offset={result['offset']} size={result['size']}"
    out.line(f"{path}: {args.rw}{extra} bs={args.bs} qd={args.qd} channels={args.channels} for "
             f"{result['seconds']:.2f} s{cut}")
    out.fields([("IOs", result["ios"]), ("IOPS", f"{result['iops']:.0f}"), ("MB/s", f"{result['mb_per_s']:.1f}"),
                ("latency", _latency_text(lat))])
    if args.rw in _BENCH_MIXED:
        for name in ("read", "write"):
            part = result[name]
            out.line(f"  {name}")
            out.fields([("IOs", part["ios"]), ("IOPS", f"{part['iops']:.0f}"), ("MB/s", f"{part['mb_per_s']:.1f}"),
                        ("latency", _latency_text(part["latency_ms"]))], indent="    ")
    return code


def _latency_text(lat: Dict[str, float]) -> str:
    """A bench summary's latency line from its JSON ``latency_ms``."""
    return (f"p50 {lat['p50']:.3f} ms   p99 {lat['p99']:.3f} ms   p99.9 {lat['p999']:.3f} ms   "
            f"max {lat['max']:.3f} ms")


# -- the parser --------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so :func:`main` returns the status.

    A usage error keeps its message and the program name of the (sub)parser
    that found it, so that :func:`main` can also give it as the JSON error
    object that ``--json`` promises for every exit status 2 to 6.
    """

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self._print_message(f"{self.prog}: error: {message}\n", sys.stderr)
        raise _ParserExit(EXIT_USAGE, message)


class _ParserExit(Exception):
    """argparse is done: ``status`` to return, and ``message`` when it was a usage error."""

    def __init__(self, status: int, message: Optional[str] = None) -> None:
        super().__init__(status)
        self.status = status
        self.message = message


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options of ``argv`` (not after a ``--``).

    Used when argparse refuses the command line, so there is no namespace to
    ask: the error object must still go to stdout for a caller that asked
    for JSON.
    """
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sgpy`` command."""
    from sgpy import __version__
    from sgpy.health import SELF_TEST_CODES as health_codes

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the answer as JSON (keys: see docs/cli.rst)")
    # The verbs with one response to show: --json, --hex or --raw, one of them (sg3_utils' -H and -r).
    dumpable = argparse.ArgumentParser(add_help=False)
    shows = dumpable.add_mutually_exclusive_group()
    shows.add_argument("--json", action="store_true", help="print the answer as JSON (keys: see docs/cli.rst)")
    shows.add_argument("--hex", dest="dump_hex", action="store_true",
                       help="print the response's bytes as a hexdump (offset, 16 bytes, ASCII) instead of "
                            "decoding them")
    shows.add_argument("--raw", dest="dump_raw", action="store_true",
                       help="write the response's bytes, binary, to stdout")
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("device", metavar="DEVICE",
                        help="/dev/sgN, or /dev/sdX, /dev/stN, /dev/srN, H:C:T:L (mapped to its sg node)")
    device.add_argument("--timeout", type=_timeout, default=None, metavar="S",
                        help="command timeout in seconds (default 60; at most 4294967.295)")
    device.add_argument("-v", "--verbose", action="count", default=0,
                        help="print each command sent on standard error (sg3_utils' -v): -v its CDB, status, "
                             "sense, bytes moved and duration; -vv also its fields and the sense bytes "
                             "(bench's commands run in C and are not shown)")
    risky = argparse.ArgumentParser(add_help=False)
    risky.add_argument("--allow-data-loss", action="store_true",
                       help="allow commands that change data on the device (WRITE, UNMAP, MODE SELECT...)")
    risky.add_argument("--allow-irreversible", action="store_true",
                       help="also allow commands that can destroy the medium or the device (FORMAT UNIT, "
                            "SANITIZE, WRITE BUFFER, ATA PASS-THROUGH, vendor-specific C0h-FFh)")

    parser = _Parser(prog="sgpy", description="Send SCSI commands to Linux devices through the sg driver.",
                     epilog="Exit status: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()) + ".")
    parser.add_argument("--version", action="version", version=f"sgpy {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    def verb(name: str, func: Callable[[argparse.Namespace, _Out], int], help: str,
             parents: Sequence[argparse.ArgumentParser], dumps: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = verbs.add_parser(
            name, help=help, description=help,
            parents=[dumpable if dumps else common, *parents])  # type: ignore[list-item]
        p.set_defaults(func=func)
        return p

    p = verb("list", _cmd_list, "list sg devices with size, transport, WWN and serial, or with --hosts the SCSI "
             "hosts (from sysfs; no command is sent)", [])
    p.add_argument("--long", "-l", action="store_true",
                   help="more columns: state, logical block size, queue depth, host driver, target port")
    p.add_argument("--hosts", "-H", action="store_true",
                   help="list the SCSI hosts instead (lsscsi -H): driver, transport, sg devices behind each")
    vpd_help = ("VPD page code (0x83) or name (sg_vpd's, or a long name such as serial): "
                + ", ".join(f"{k}={v:02X}h" for k, v in VPD_NAMES.items()))
    p = verb("inq", _cmd_inq, "INQUIRY: standard data, or a VPD page", [device], dumps=True)
    p.add_argument("--vpd", type=_page_type("vpd"), metavar="PAGE", help=vpd_help)
    p = verb("vpd", _cmd_inq, "INQUIRY: a VPD page (default 00h, the supported pages)", [device], dumps=True)
    p.add_argument("vpd", nargs="?", type=_page_type("vpd"), default=(0x00, None), metavar="PAGE", help=vpd_help)
    verb("info", _cmd_info, "identity, capacity and features in one verb (smartctl -i): INQUIRY, VPD pages, "
         "READ CAPACITY, MODE SENSE; what the device lacks is unknown", [device])
    verb("readcap", _cmd_readcap, "READ CAPACITY: blocks, block size, capacity", [device], dumps=True)
    p = verb("luns", _cmd_luns, "REPORT LUNS", [device], dumps=True)
    p.add_argument("--select", type=_int_range(0, 0xFF, "SELECT REPORT"), default=0, metavar="N",
                   help="SELECT REPORT field (default 0)")
    p = verb("zones", _cmd_zones, "REPORT ZONES (sg_rep_zones): the zones of a zoned device, their type, "
             "condition, start, length and write pointer", [device], dumps=True)
    p.add_argument("--start", "-s", type=_int_range(0, 2**64 - 1, "ZONE START LBA"), default=0, metavar="LBA",
                   help="list the zones from the one holding LBA on (ZONE START LBA; default 0)")
    p.add_argument("--report", "-o", type=_reporting_option, default=0, metavar="OPT",
                   help="which zones (REPORTING OPTIONS, default 0: all): a number, or "
                        + ", ".join(f"{k}={v[0]:02X}h" for k, v in ZONE_REPORTING_OPTIONS.items()))
    p.add_argument("--partial", "-p", action="store_true",
                   help="set PARTIAL: the device counts only the zones that fit the answer (one command is sent)")
    p.add_argument("--num", "-n", type=_int, default=0, metavar="N",
                   help="at most N zones (default 0: every zone)")
    p.add_argument("--maxlen", "-m", type=_int_range(64, 0xFFFFFFFF, "--maxlen"), default=ZONES_MAXLEN,
                   metavar="LEN", help=f"allocation length of each command (default {ZONES_MAXLEN}, 127 zones); "
                   "more zones take more commands")
    p = verb("tur", _cmd_tur, "TEST UNIT READY (exit status 3 when not ready)", [device])
    p.add_argument("--count", "-n", type=_int_range(1, TUR_COUNT_MAX, "--count"), default=None, metavar="N",
                   help="send it N times, count the ready and not ready answers and time them (sg_turs -n N -t); "
                        "exit status 3 when any was not ready")
    p = verb("sense", _cmd_sense, "decode sense data given in hex (no device needed)", [])
    p.add_argument("hex", nargs="*", metavar="HEX",
                   help="sense bytes, e.g. 70 00 05 00 00 00 00 0a ..., 0x70,0x00,... or 70:00:...; - reads hex "
                   "text from standard input")
    p.add_argument("--file", default=None, metavar="FILE", help="read hex text from FILE (sg_decode_sense --file)")
    p.add_argument("--binary", default=None, metavar="FILE",
                   help="read the raw sense bytes from FILE ('-' for standard input; sg_decode_sense --binary)")
    p = verb("opcodes", _cmd_opcodes, "REPORT SUPPORTED OPERATION CODES, with each command's risk; or one "
             "command's support and CDB usage map (--opcode)", [device], dumps=True)
    p.add_argument("--opcode", "-o", type=_int_range(0, 0xFF, "an operation code"), default=None, metavar="OP",
                   help="ask about this command alone (sg_opcodes -o): supported or not, the CDB usage map")
    p.add_argument("--service-action", "-s", type=_int_range(0, 0xFFFF, "a service action"), default=None,
                   metavar="SA", help="with --opcode: the command's service action (sg_opcodes -s)")
    p = verb("modes", _cmd_modes, "MODE SENSE: every mode page, or one with its current, changeable, default "
             "and saved values; --set changes fields (MODE SELECT)", [device, risky], dumps=True)
    p.add_argument("page", nargs="?", type=_page_type("mode"), metavar="PAGE",
                   help="page code (default 0x3f: all pages) or name (sdparm's, e.g. ca, or caching): "
                        + ", ".join(f"{words[0]}={page:02X}h" + (f"/{sub:02X}h" if sub else "")
                                    for page, sub, *words in _PAGE_TABLE["mode"]))
    p.add_argument("--subpage", type=_subpage, default=None, metavar="N", help="subpage code (default 0)")
    p.add_argument("--pc", choices=sorted(_PC), default=None,
                   help="page control: only these values (default: with PAGE all four side by side, else current)")
    p.add_argument("--set", action="append", default=[], metavar="PAGE.FIELD=VALUE",
                   help="change a field (repeatable): PAGE as above, FIELD as the page's JSON names it (wce, "
                        "d_sense, mrie...), VALUE a number or yes/no; checked against the changeable values, "
                        "sent with MODE SELECT, read back; needs --allow-data-loss")
    p.add_argument("--defaults", action="store_true",
                   help="set every changeable field of PAGE to its default value (sdparm --defaults), in one MODE "
                        "SELECT, read back; needs --allow-data-loss")
    p.add_argument("--save", action="store_true",
                   help="with --set or --defaults: also save the pages (MODE SELECT's SP bit)")
    p = verb("control", _cmd_control, "send one command by name (sdparm --command): start, stop, load, eject, "
             "active, idle, standby (START STOP UNIT), sync (SYNCHRONIZE CACHE), lock, unlock (PREVENT ALLOW "
             "MEDIUM REMOVAL), ready (TEST UNIT READY), capacity (READ CAPACITY); stop and eject need "
             "--allow-data-loss", [device, risky])
    p.add_argument("action", choices=list(CONTROL_ACTIONS), metavar="ACTION",
                   help="; ".join(f"{k}: {v}" for k, v in CONTROL_ACTIONS.items()))
    p.add_argument("--immed", action="store_true",
                   help="set IMMED (start, stop, load, eject, active, idle, standby, sync): the device answers "
                        "before the action is done")
    p = verb("logs", _cmd_logs, "LOG SENSE: a log page (default: the list of supported pages)", [device],
             dumps=True)
    p.add_argument("page", nargs="?", type=_page_type("log"), metavar="PAGE",
                   help="page code (default 0x00) or name (sg_logs', e.g. temp, or temperature): "
                        + ", ".join(f"{words[0]}={page:02X}h" + (f"/{sub:02X}h" if sub else "")
                                    for page, sub, *words in _PAGE_TABLE["log"]))
    p.add_argument("--subpage", type=_subpage, default=None, metavar="N", help="subpage code (default 0)")
    p.add_argument("--all", "-a", action="store_true",
                   help="every page (and subpage) the device lists, decoded (sg_logs -a, -A); a page that "
                        "cannot be read is reported and the others still shown (exit status 3)")
    p = verb("health", _cmd_health, "the device's health from its log pages (smartctl -H -A -l selftest): "
             "failure prediction, temperature, error counters, self-tests; exit status: a bitmask", [device, risky])
    p.add_argument("--self-test", choices=list(health_codes), default=None, metavar="KIND",
                   help="start a self-test instead (SEND DIAGNOSTIC): short or long (background), "
                        "foreground-short, foreground-long, default (its status is its result), or abort the "
                        "running one")
    p = verb("raw", _cmd_raw, "send a CDB given in hex (classified by the safety policy)", [device, risky])
    p.add_argument("cdb", nargs="+", metavar="CDBHEX", help="CDB bytes, e.g. 12 00 00 00 24 00")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--in", dest="in_", type=_int, metavar="N", help="read N bytes from the device")
    way.add_argument("--out", metavar="FILE", help="send FILE's bytes to the device ('-' for stdin)")
    p = verb("read", _cmd_read, "read an LBA range into a file", [device])
    p.add_argument("--lba", type=_int, default=0, help="first LBA (default 0)")
    p.add_argument("--count", type=_positive, required=True, metavar="N", help="number of blocks")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where the data goes ('-' for stdout)")
    p.add_argument("--chunk", type=_size, default=1 << 20, metavar="SIZE",
                   help="bytes per command (default 1m)")
    p = verb("write", _cmd_write, "write a file to an LBA range (needs --allow-data-loss)", [device, risky])
    p.add_argument("--lba", type=_int, default=0, help="first LBA (default 0)")
    p.add_argument("--count", type=_positive, default=None, metavar="N",
                   help="number of blocks (default: the whole file)")
    p.add_argument("-i", "--input", required=True, metavar="FILE", help="the data ('-' for stdin)")
    p.add_argument("--chunk", type=_size, default=1 << 20, metavar="SIZE",
                   help="bytes per command (default 1m)")
    p = verb("copy", _cmd_copy, "copy an LBA range from one device to another (sg_dd if=DEV of=DEV2; needs "
             "--allow-data-loss)", [device, risky])
    p.add_argument("destination", metavar="DEST", help="the device written to (as DEVICE)")
    p.add_argument("--lba", type=_int, default=0, help="first LBA read from DEVICE (default 0)")
    p.add_argument("--count", type=_positive, required=True, metavar="N", help="number of blocks")
    p.add_argument("--dst-lba", type=_int, default=None, metavar="LBA",
                   help="first LBA written on DEST (default: --lba)")
    p.add_argument("--chunk", type=_size, default=1 << 20, metavar="SIZE", help="bytes per command (default 1m)")
    p.add_argument("--qd", type=_int_range(1, 256, "--qd"), default=COPY_QD, metavar="N",
                   help=f"commands in flight, reads and writes together (default {COPY_QD})")
    p.add_argument("--verify", action="store_true", help="read both ranges back and compare them")
    p = verb("bench", _cmd_bench, "measure IOPS, MB/s and latency (writes need --allow-data-loss)", [device, risky])
    p.add_argument("--qd", type=_positive, default=32, metavar="N", help="commands in flight (default 32)")
    p.add_argument("--bs", type=_size, default=4096, metavar="SIZE", help="bytes per command (default 4k)")
    p.add_argument("--seconds", type=_seconds, default=None, metavar="S",
                   help="duration (default 5, or none with --count; at most 365 days)")
    p.add_argument("--count", type=_int_range(1, BENCH_COUNT_MAX, "--count"), default=None, metavar="N",
                   help="commands in all (split among the channels); ends the run first if --seconds is longer")
    p.add_argument("--rw", choices=["randread", "randwrite", "read", "write", "randrw", "rw"], default="randread",
                   help="access pattern (default randread); randrw and rw mix reads and writes")
    p.add_argument("--rwmixread", type=_int_range(0, 100, "--rwmixread"), default=None, metavar="PCT",
                   help="randrw and rw: percent of the commands that read (default 50)")
    p.add_argument("--rate-iops", type=_int_range(1, BENCH_RATE_MAX, "--rate-iops"), default=None, metavar="N",
                   help="send at most N commands per second (all channels together)")
    p.add_argument("--offset", type=parse_size, default=None, metavar="SIZE",
                   help="start this many bytes into the device (a multiple of the block size; default 0)")
    p.add_argument("--size", type=_size, default=None, metavar="SIZE",
                   help="cover only this many bytes from --offset (default: to the end)")
    p.add_argument("--progress", action="store_true",
                   help="show percent done and ETA on stderr even when it is not a terminal")
    tags = p.add_mutually_exclusive_group()
    tags.add_argument("--stamp", type=_int, default=None, metavar="TAG",
                      help="writes: start every block with its LBA and TAG (for a later --verify)")
    tags.add_argument("--verify", type=_int, default=None, metavar="TAG",
                      help="reads: check every block holds its LBA and TAG (exit status 3 on a mismatch); "
                           "randrw and rw also stamp their writes with TAG")
    p.add_argument("--channels", type=_positive, default=1, metavar="N",
                   help="channels, one job each, sharing the queue depth (default 1)")
    p = verb("conform", _cmd_conform, "run the SCSI conformance suite on DEVICE (an sg node or iscsi:// URL); "
             "exit status 1 when a check the standard requires (\"shall\") fails", [risky])
    p.add_argument("device", metavar="DEVICE", help="/dev/sgN or iscsi://host/iqn/lun")
    p.add_argument("--select", "-k", default=None, metavar="PATTERN",
                   help="only the checks whose names match (pytest -k syntax: 'read or write')")
    p.add_argument("--junit", default=None, metavar="FILE", help="also write JUnit XML to FILE")
    p.add_argument("--second-initiator", default=None, metavar="IQN",
                   help="the initiator name of the second iSCSI session the two-initiator checks (persistent "
                        "reservations) open (default: sgpy's own with .second)")
    _discover_verb(verb("discover", _cmd_discover, "list the targets an iSCSI portal offers, and their LUNs with "
                        "their URLs (iscsiadm -m discovery, iscsi-ls)", []))
    p = verb("completion", _cmd_completion, "print the shell completion script for bash or zsh (docs/cli.rst)", [])
    p.add_argument("shell", choices=["bash", "zsh"], help="the shell")
    return parser


def _cmd_conform(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy conform``: sgpy.conformance on one target (docs/conformance.rst)."""
    from sgpy import conformance

    if not str(args.device).lower().startswith("iscsi://") and not os.path.exists(args.device):
        raise _NoDevice(f"{args.device}: no such device")
    if args.json:
        doc_path = os.path.join(tempfile.mkdtemp(prefix="sgpy-conform-"), "results.json")
        try:
            code = conformance.run(args.device, select=args.select, allow_data_loss=args.allow_data_loss,
                                   allow_irreversible=args.allow_irreversible, json_path=doc_path,
                                   second_initiator=args.second_initiator,
                                   junit_path=args.junit, out=out.stderr, table=False, progress=out.stderr)
            if code not in (2, 4) and os.path.exists(doc_path):
                with open(doc_path, encoding="utf-8") as f:
                    out.stdout.write(f.read())
        finally:
            shutil.rmtree(os.path.dirname(doc_path), ignore_errors=True)
    else:
        code = conformance.run(args.device, select=args.select, allow_data_loss=args.allow_data_loss,
                               allow_irreversible=args.allow_irreversible, junit_path=args.junit,
                               second_initiator=args.second_initiator,
                               out=out.stdout, progress=out.stderr)
    if code == 4:
        raise _NoDevice(f"{args.device}: cannot be opened")
    if code == 2:
        raise UsageError("no check matched --select" if args.select else "the suite could not run")
    return code


# -- discover and completion ----------------------------------------------------------

#: Seconds each session of ``sgpy discover`` may take unless ``--timeout`` says otherwise: shorter than the
#: library's login_timeout, since a person waits at the terminal.
DISCOVER_TIMEOUT = 15.0


def _discover_verb(p: argparse.ArgumentParser) -> None:
    """The arguments of ``sgpy discover``."""
    p.add_argument("device", metavar="HOST[:PORT]",
                   help="the portal: a host name or address, and the port (default 3260); [fe80::1]:3260 for "
                        "IPv6; or iscsi://[user%%password@]HOST[:PORT]")
    p.add_argument("--targets-only", action="store_true",
                   help="list the targets alone (the discovery session only; no login to each target)")
    p.add_argument("--initiator-name", default=None, metavar="IQN",
                   help="the initiator's iSCSI name (default iqn.2024-01.org.sgpy:<hostname>)")
    p.add_argument("--user", default=None, metavar="USER", help="CHAP user name (the target checks the initiator)")
    p.add_argument("--password", default=None, metavar="SECRET",
                   help="CHAP secret of --user (visible to other users in the process list: prefer "
                        "the environment variable SGPY_CHAP_PASSWORD)")
    p.add_argument("--target-user", default=None, metavar="USER",
                   help="mutual CHAP: the user name the target answers with (needs --user)")
    p.add_argument("--target-password", default=None, metavar="SECRET",
                   help="mutual CHAP: the target's secret (or SGPY_CHAP_TARGET_PASSWORD)")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="S",
                   help=f"seconds each session (the discovery, then each target's) may take "
                        f"(default {DISCOVER_TIMEOUT:g})")


def _cmd_discover(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy discover``: SendTargets at a portal, then REPORT LUNS and INQUIRY per target (sgpy.iscsi.discover)."""
    from sgpy import iscsi

    login = {"initiator_name": args.initiator_name, "user": args.user, "target_user": args.target_user,
             "password": args.password if args.password is not None else os.environ.get("SGPY_CHAP_PASSWORD"),
             "target_password": args.target_password if args.target_password is not None
             else os.environ.get("SGPY_CHAP_TARGET_PASSWORD")}
    if login["target_user"] is not None and login["user"] is None:
        raise UsageError("--target-user (mutual CHAP) needs --user and its secret too")
    if login["user"] is None:
        login["password"] = None
    if login["target_user"] is None:
        login["target_password"] = None
    try:
        portal = iscsi.parse_portal(args.device)
        targets = iscsi.discover(args.device, luns=not args.targets_only,
                                 timeout=args.timeout or DISCOVER_TIMEOUT, **login)
    except iscsi.IscsiUrlError as exc:
        raise UsageError(str(exc)) from None
    except (iscsi.AuthenticationFailed, iscsi.AuthorizationFailed) as exc:
        raise _NoPermission(str(exc)) from None
    except iscsi.IscsiError as exc:  # refused, unreachable, not iSCSI, no answer, login refused
        raise _NoDevice(str(exc)) from None
    except ValueError as exc:  # a login option LoginOptions refuses (mutual CHAP without --user...)
        raise UsageError(str(exc)) from None
    if out.json:
        out.emit({"portal": str(portal), "targets": [{
            "name": t.name,
            "portals": [{"host": a.host, "port": a.port, "tpgt": a.tpgt} for a in t.addresses],
            "luns": None if args.targets_only or t.error is not None else [{
                "lun": u.lun, "url": u.url, "type": u.device_type, "type_name": u.device_type_name,
                "vendor": u.vendor, "product": u.product} for u in t.luns],
            "error": t.error} for t in targets]})
        return EXIT_OK
    out.line(f"{portal}: {len(targets)} target(s)")
    for t in targets:
        where = ", ".join(str(a) + (f",{a.tpgt}" if a.tpgt is not None else "") for a in t.addresses) or "-"
        out.line(f"  {t.name}  (portal {where})")
        if t.error is not None:
            out.line(f"    cannot list its LUNs: {t.error}")
        elif not args.targets_only:
            out.table(["LUN", "TYPE", "VENDOR", "PRODUCT", "URL"],
                      [[u.lun, u.device_type_name or "-", u.vendor or "-", u.product or "-", u.url] for u in t.luns],
                      indent="    ")
    return EXIT_OK


def _cmd_completion(args: argparse.Namespace, out: _Out) -> int:
    """``sgpy completion bash|zsh``: the completion script, generated from this parser (sgpy.completion)."""
    from sgpy import completion

    text = completion.script(args.shell, build_parser(), PAGE_NAMES)
    if out.json:
        out.emit({"shell": args.shell, "script": text})
    else:
        out.stdout.write(text)
    return EXIT_OK


# -- main ------------------------------------------------------------------------------


#: The ``type`` the error object gives for the command line's own failures (their classes are private).
_ERROR_TYPES: Mapping[type, str] = MappingProxyType({
    _NoDevice: "NoSuchDevice", _NoPermission: "PermissionError", _Refused: "UnsafeCommand",
    _DeviceError: "TaskFailed", _Failure: "Failure",
})


def _error_type(exc: BaseException) -> str:
    """The ``type`` of the error object: the exception's class, or the nearest public one it derives from.

    A private class (its name starts with ``_``) is nothing a caller can
    look up or catch: the command line's own have names of their own
    (:data:`_ERROR_TYPES`), others give their nearest public base class.
    """
    for cls in type(exc).__mro__:
        if cls in _ERROR_TYPES:
            return _ERROR_TYPES[cls]
        if not cls.__name__.startswith("_"):
            return cls.__name__
    return "Exception"


def _error_doc(code: int, message: str, exc: Optional[BaseException] = None, device: Optional[str] = None,
               risk: Optional[safety.Risk] = None) -> Dict[str, Any]:
    """The ``{"error": {...}}`` object ``--json`` prints for a failure (exit status 1 to 6; docs/cli.rst)."""
    doc: Dict[str, Any] = {"exit_code": code, "type": _error_type(exc) if exc is not None else None,
                           "message": message, "device": device}
    if isinstance(exc, TaskFailed):
        cmd = exc.command
        doc.update({"command": getattr(cmd, "name", None), "status": exc.status, "host_status": exc.host_status,
                    "driver_status": exc.driver_status, "sense": _sense_json(exc.sense),
                    "sense_bytes": exc.sense_bytes.hex()})
    if risk is not None:
        doc["risk"] = risk.label
    return {"error": doc}


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[IO[str]] = None,
         stderr: Optional[IO[str]] = None) -> int:
    """Run the ``sgpy`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr  # argparse prints help and errors there
    try:
        try:
            args = parser.parse_args(argv)
        except _ParserExit as exc:
            if exc.message is not None and _wants_json(argv):
                _Out(True, stdout, stderr).emit(_error_doc(exc.status, exc.message, UsageError(exc.message)))
            return exc.status
    finally:
        sys.stdout, sys.stderr = saved
    if not args.verb:
        parser.print_usage(stderr)
        stderr.write("sgpy: error: a VERB is required (sgpy --help lists them)\n")
        return EXIT_USAGE
    out = _Out(args.json, stdout, stderr, hex=bool(getattr(args, "dump_hex", False)),
               raw=bool(getattr(args, "dump_raw", False)))
    prefix = f"sgpy {args.verb}"
    code, message, doc = EXIT_OK, "", None
    with _command_log(getattr(args, "verbose", 0), stderr):
        code, message, doc = _run_verb(args, out, prefix)
    if not message:
        return code
    stderr.write(message + "\n")
    if out.json and doc is not None:
        out.emit(doc)
    return code


class _CommandLog(logging.Handler):
    """``-v``: each record of the logger ``sgpy.command`` (one per finished command) as a line on stderr."""

    def __init__(self, stream: IO[str], verbosity: int) -> None:
        super().__init__(logging.DEBUG)
        self.stream = stream
        self.verbosity = verbosity

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = [f"sgpy: {record.getMessage()}"]
            io = getattr(record, "sgpy_io", None)
            if self.verbosity >= 2 and io is not None:
                lines.append(f"    {io.command!r}")
                hdr = io.hdr
                if hdr is not None and hdr.sense:
                    lines.append(f"    sense bytes: {hdr.sense.hex(' ')}")
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _command_log(verbosity: int, stream: IO[str]) -> Iterator[None]:
    """While a verb runs with ``-v``: the engine's per-command records (sgpy.io.LOG) go to ``stream``."""
    if not verbosity:
        yield
        return
    log = logging.getLogger("sgpy.command")
    handler = _CommandLog(stream, verbosity)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _run_verb(args: argparse.Namespace, out: _Out, prefix: str) -> Tuple[int, str, Any]:
    """Run the verb: ``(exit status, message for stderr or "", JSON error document or None)``."""
    code, message, doc = EXIT_OK, "", None
    try:
        return int(args.func(args, out)), "", None
    except UsageError as exc:
        code, message = EXIT_USAGE, f"{prefix}: error: {exc}"
        doc = _error_doc(code, str(exc), exc)
    except _NoDevice as exc:
        code, message = EXIT_NO_DEVICE, f"{prefix}: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None))
    except _NoPermission as exc:
        code, message = EXIT_PERMISSION, f"{prefix}: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None))
    except _Refused as exc:
        code, message = EXIT_REFUSED, f"{prefix}: refused: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None), exc.risk)
    except _DeviceError as exc:
        err = exc.error
        cmd = getattr(err.command, "name", "the command")
        if cmd == "RawCommand":
            cmd = f"CDB {bytes(getattr(err.command, 'cdb', b'')).hex(' ')}"
        lines = [f"{prefix}: {exc.device}: {cmd} failed: {err.message}"]
        if err.sense is not None:
            width = max(len(k) for k, _ in _sense_lines(err.sense))
            lines += [f"  {k.ljust(width)}  {v}" for k, v in _sense_lines(err.sense)]
        if err.sense_bytes:
            lines.append(f"  sense bytes: {err.sense_bytes.hex(' ')}")
        code, message = EXIT_DEVICE_ERROR, "\n".join(lines)
        doc = _error_doc(code, err.message, err, exc.device)
    except (EncodeError, TransferTooLarge) as exc:
        # A value the command cannot carry (a field's range, a CDB length the
        # transport refuses, a transfer above the limit): it came from the
        # arguments, and nothing was sent.
        code, message = EXIT_USAGE, f"{prefix}: error: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None))
    except TaskFailed as exc:  # a failure outside _run (e.g. while learning the block size)
        code, message = EXIT_DEVICE_ERROR, f"{prefix}: {exc}"
        doc = _error_doc(code, exc.message, exc, getattr(args, "device", None))
    except _Failure as exc:
        code, message = EXIT_FAILURE, f"{prefix}: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None))
    except KeyboardInterrupt:
        code, message = EXIT_INTERRUPTED, f"{prefix}: interrupted"
    except BrokenPipeError:
        return EXIT_FAILURE, "", None  # the reader went away: nothing more to say
    except (OSError, SgError, ValueError) as exc:
        code, message = EXIT_FAILURE, f"{prefix}: {exc}"
        doc = _error_doc(code, str(exc), exc, getattr(args, "device", None))
    return code, message, doc

