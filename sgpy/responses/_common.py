"""Shared helpers for the response parsers.

Fixed-layout structures declare each field with :func:`bits`, giving the
byte offset (as numbered in the T10 table), the lowest bit and the width;
:func:`decode_layout` and :func:`encode_layout` read and write every such
field of a class through a plan compiled once per class.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import attr

from sgpy.constants import PeripheralDeviceType
from sgpy.errors import EncodeError, MalformedResponse

T = TypeVar("T")

_LAYOUT_KEY = "sgpy_layout"


def bits(byte: int, lsb: int = 0, width: int = 8, *, flag: bool = False) -> Any:
    """Declare a field at ``byte`` (T10 numbering), bits ``lsb .. lsb+width-1``.

    A field wider than what is left of its first byte continues into the
    following bytes, big-endian (``bits(8, 0, 32)`` is a 4-byte number at
    bytes 8-11; ``bits(14, 0, 14)`` is the low 6 bits of byte 14 and all of
    byte 15).  ``flag=True`` makes a one-bit field a ``bool``.
    """
    default: Any = False if flag else 0
    return attr.ib(default=default, metadata={_LAYOUT_KEY: (byte, lsb, width, flag)})


_PLANS: Dict[type, Tuple[Tuple[str, int, int, int, int, bool], ...]] = {}


def _plan(cls: type) -> Tuple[Tuple[str, int, int, int, int, bool], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        items = []
        for f in attr.fields(cls):
            spec = f.metadata.get(_LAYOUT_KEY)
            if spec is None:
                continue
            byte, lsb, width, flag = spec
            nbytes = (lsb + width + 7) // 8
            items.append((f.name, byte, nbytes, lsb, (1 << width) - 1, flag))
        plan = tuple(items)
        _PLANS[cls] = plan
    return plan


def layout_size(cls: type) -> int:
    """Bytes needed to hold every declared field of ``cls``."""
    return max((byte + nbytes for _, byte, nbytes, _, _, _ in _plan(cls)), default=0)


def decode_layout(cls: type, buf: bytes) -> Dict[str, Any]:
    """Read every :func:`bits` field of ``cls`` from ``buf``; bytes past the end read as 0."""
    out: Dict[str, Any] = {}
    n = len(buf)
    for name, byte, nbytes, lsb, mask, flag in _plan(cls):
        if byte + nbytes <= n:
            value = (int.from_bytes(buf[byte : byte + nbytes], "big") >> lsb) & mask
        else:
            value = (int.from_bytes(bytes(buf[byte : byte + nbytes]).ljust(nbytes, b"\0"), "big") >> lsb) & mask
        out[name] = bool(value) if flag else value
    return out


def encode_layout(obj: Any, body: bytearray) -> None:
    """Write every :func:`bits` field of ``obj`` into ``body`` in place.

    A value that does not fit its field raises :class:`EncodeError`, and so
    does a non-zero value that would land past the end of ``body``.
    """
    cls = type(obj)
    size = len(body)
    work = bytearray(body)
    extent = layout_size(cls)
    if extent > size:
        work.extend(bytes(extent - size))
    for name, byte, nbytes, lsb, mask, flag in _plan(cls):
        value = getattr(obj, name)
        if isinstance(value, bool) or flag:
            value = int(bool(value))
        if not isinstance(value, int) or value < 0 or value > mask:
            raise EncodeError(f"{cls.__name__}.{name}: {value!r} does not fit 0..{mask}")
        current = int.from_bytes(work[byte : byte + nbytes], "big")
        current = (current & ~(mask << lsb)) | (value << lsb)
        work[byte : byte + nbytes] = current.to_bytes(nbytes, "big")
    if any(work[size:]):
        raise EncodeError(f"{cls.__name__}: a field is set that lies past the end of the {size}-byte page")
    body[:] = work[:size]


def be(buf: bytes, start: int, length: int) -> int:
    """Big-endian unsigned integer at ``buf[start:start+length]``; missing bytes read as 0."""
    chunk = buf[start : start + length]
    if len(chunk) < length:
        chunk = bytes(chunk).ljust(length, b"\0")
    return int.from_bytes(chunk, "big")


def ascii_field(buf: bytes, start: int, length: int) -> str:
    """An ASCII text field, trailing spaces and NULs removed (undecodable bytes replaced)."""
    return bytes(buf[start : start + length]).decode("ascii", "replace").rstrip(" \0")


def pdt(value: int) -> int:
    """Peripheral device type as :class:`PeripheralDeviceType` when known, else the int."""
    try:
        return PeripheralDeviceType(value)
    except ValueError:
        return value


def enum_or_int(enum_cls: Callable[[int], T], value: int) -> Any:
    """``enum_cls(value)`` when the value is named, else the plain int."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


def need(buf: bytes, size: int, what: str) -> None:
    """Raise :class:`MalformedResponse` unless ``buf`` holds the ``size``-byte header."""
    if len(buf) < size:
        raise MalformedResponse(f"{what}: {len(buf)} bytes, the header needs {size}")


def length_header(buf: bytes, start: int, size: int, extra: int) -> Optional[int]:
    """``extra`` plus the big-endian length field at ``buf[start:start+size]``; None if absent.

    This is the ``required_length`` of most answers: the length field counts
    the bytes after itself (or after a fixed header), and ``extra`` adds the
    bytes it does not count.
    """
    if len(buf) < start + size:
        return None
    return extra + int.from_bytes(buf[start : start + size], "big")


def read_header(buf: bytes, start: int, size: int, extra: int, what: str) -> Tuple[bytes, int]:
    """``buf`` as bytes and the total length its header asks for (as :func:`length_header`).

    Raises :class:`MalformedResponse` when ``buf`` is too short to hold the
    length field.
    """
    buf = bytes(buf)
    need(buf, start + size, what)
    return buf, extra + int.from_bytes(buf[start : start + size], "big")


def descriptors(
    data: bytes, start: int, truncated: bool, header: int, size: Callable[[bytes, int], int], what: str, limit: str
) -> Iterator[Tuple[int, int]]:
    """``(first, end)`` of each descriptor in ``data[start:]``, one after the other.

    ``header`` bytes of a descriptor must be present for ``size(data, first)``
    to give its whole size.  A descriptor that runs past the end of ``data``
    ends the walk when the answer was ``truncated`` (cut short by the
    allocation length) and raises :class:`MalformedResponse` otherwise.
    """
    pos = start
    while pos < len(data):
        end = pos + size(data, pos) if pos + header <= len(data) else None
        if end is None or end > len(data):
            if truncated:
                return
            raise MalformedResponse(f"{what} at byte {pos} runs past the {limit}")
        yield pos, end
        pos = end


__all__: List[str] = []
