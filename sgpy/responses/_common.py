"""Shared helpers for the response parsers.

Fixed-position fields are declared on the class: :func:`bits` for numbers
and flags (byte offset as numbered in the T10 table, lowest bit, width),
:func:`text` for ASCII fields and :func:`octets` for raw byte fields.
:func:`decode_layout` reads every such field of a class through a plan
compiled once per class, and :func:`encode_layout` writes the numbers back.

One rule holds for every field of every answer: a field is decoded only
when all of its bytes arrived.  An answer cut short by the allocation length
(or a structure shorter than the table) leaves the fields it does not wholly
hold as None.  Bytes that did arrive are never read as part of a number
whose other bytes are missing: zero-padding them, as a short read invites,
turns 00 01 FF into 01FF00h, a plausible and wrong value.  Hand-decoded
numbers go through :func:`uint` (None when cut) or, where the caller has
already checked the length, :func:`be`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar, Union

import attr

from sgpy._fields import FieldSpec
from sgpy.constants import PeripheralDeviceType
from sgpy.errors import EncodeError, MalformedResponse

T = TypeVar("T")

_LAYOUT_KEY = "sgpy_layout"


@attr.s(frozen=True, slots=True)
class _Number:
    """A number or flag at a fixed bit position (``spec`` says where)."""

    spec: FieldSpec = attr.ib()
    flag: bool = attr.ib()


@attr.s(frozen=True, slots=True)
class _Bytes:
    """A byte field from ``start`` for ``length`` bytes (None: to the end of the answer).

    ``text`` fields are ASCII, decoded with undecodable bytes replaced and
    trailing spaces and NULs removed (leading ones too with ``lstrip``).
    """

    start: int = attr.ib()
    length: Optional[int] = attr.ib()
    text: bool = attr.ib()
    lstrip: bool = attr.ib()


_Member = Union[_Number, _Bytes]


def _spec(byte: int, lsb: int, width: int) -> FieldSpec:
    """The :class:`FieldSpec` of a field given as (first byte, lowest bit, width).

    The field ends at bit ``lsb`` of the last byte it needs, counting from
    ``byte``; :class:`FieldSpec` locates it by its most significant bit.
    """
    nbytes = (lsb + width + 7) // 8
    end = 8 * (byte + nbytes) - lsb  # one past the least significant bit
    start = end - width
    return FieldSpec(byte=start // 8, bit=7 - start % 8, width=width)


def bits(byte: int, lsb: int = 0, width: int = 8, *, flag: bool = False) -> Any:
    """Declare a field at ``byte`` (T10 numbering), bits ``lsb .. lsb+width-1``.

    A field wider than what is left of its first byte continues into the
    following bytes, big-endian (``bits(8, 0, 32)`` is a 4-byte number at
    bytes 8-11; ``bits(14, 0, 14)`` is the low 6 bits of byte 14 and all of
    byte 15).  ``flag=True`` makes a one-bit field a ``bool``.  Decoded, the
    field is None unless every byte it spans is present.
    """
    default: Any = False if flag else 0
    return attr.ib(default=default, metadata={_LAYOUT_KEY: _Number(_spec(byte, lsb, width), flag)})


def text(start: int, length: Optional[int] = None, *, lstrip: bool = False) -> Any:
    """Declare an ASCII field of ``length`` bytes at ``start`` (None: to the end of the answer).

    Decoded, it is None unless all of its bytes are present: a vendor or
    serial number cut in the middle is not the device's name for itself.
    """
    return attr.ib(default="", metadata={_LAYOUT_KEY: _Bytes(start, length, True, lstrip)})


def octets(start: int, length: Optional[int] = None) -> Any:
    """Declare a raw byte field of ``length`` bytes at ``start`` (None: to the end of the answer).

    Decoded, it is None unless all of its bytes are present.
    """
    return attr.ib(default=b"", repr=False, metadata={_LAYOUT_KEY: _Bytes(start, length, False, False)})


_PLANS: Dict[type, Tuple[Tuple[str, _Member], ...]] = {}


def _plan(cls: type) -> Tuple[Tuple[str, _Member], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = tuple((f.name, f.metadata[_LAYOUT_KEY]) for f in attr.fields(cls) if _LAYOUT_KEY in f.metadata)
        _PLANS[cls] = plan
    return plan


def layout_size(cls: type) -> int:
    """Bytes needed to hold every declared number of ``cls``."""
    return max((m.spec.last_byte + 1 for _, m in _plan(cls) if isinstance(m, _Number)), default=0)


def layout_extents(cls: type) -> Dict[str, Tuple[int, Optional[int]]]:
    """Each declared field of ``cls``: (first byte, one past its last byte).

    The end is None for a field that runs to the end of the answer.  Tests
    use this to tell which fields a prefix of an answer wholly holds.
    """
    out: Dict[str, Tuple[int, Optional[int]]] = {}
    for name, m in _plan(cls):
        if isinstance(m, _Number):
            out[name] = (m.spec.byte, m.spec.last_byte + 1)
        else:
            out[name] = (m.start, None if m.length is None else m.start + m.length)
    return out


def layout_numbers(cls: type) -> Dict[str, Tuple[int, bool]]:
    """Each :func:`bits` number of ``cls``, in declaration order: ``(width in bits, is a flag)``.

    What a caller that sets fields by name needs to check a value before it
    is encoded (:mod:`sgpy.modes` takes ``PAGE.FIELD=VALUE``).
    """
    return {name: (m.spec.width, m.flag) for name, m in _plan(cls) if isinstance(m, _Number)}


def decode_layout(cls: type, data: bytes, length: Optional[int] = None) -> Dict[str, Any]:
    """Read every declared field of ``cls`` from ``data``; a field not wholly in it is None.

    ``data`` is the part of the answer that arrived, already cut at the
    answer's own length; ``length`` is that full length (default
    ``len(data)``), which fields running to the end of the answer need.
    """
    out: Dict[str, Any] = {}
    n = len(data)
    full = n if length is None else length
    for name, m in _plan(cls):
        if isinstance(m, _Number):
            value = m.spec.read(data)
            out[name] = value if value is None or not m.flag else bool(value)
            continue
        end = full if m.length is None else m.start + m.length
        if end > n or m.start > end:
            out[name] = None
            continue
        chunk = bytes(data[m.start : end])
        if m.text:
            decoded = chunk.decode("ascii", "replace").rstrip(" \0")
            out[name] = decoded.lstrip(" \0") if m.lstrip else decoded
        else:
            out[name] = chunk
    return out


def encode_layout(obj: Any, body: bytearray) -> None:
    """Write every :func:`bits` number of ``obj`` into ``body`` in place.

    A field holding None (it was not in the bytes the value was read from)
    is left as the bytes already are.  A value that does not fit its field
    raises :class:`EncodeError`, and so does a non-zero value that would land
    past the end of ``body``.
    """
    cls = type(obj)
    size = len(body)
    work = bytearray(body)
    extent = layout_size(cls)
    if extent > size:
        work.extend(bytes(extent - size))
    for name, m in _plan(cls):
        if not isinstance(m, _Number):
            continue
        value = getattr(obj, name)
        if value is None:
            continue
        spec = m.spec
        if isinstance(value, bool) or m.flag:
            value = int(bool(value))
        if not isinstance(value, int) or value < 0 or value > spec.max_value:
            raise EncodeError(f"{cls.__name__}.{name}: {value!r} does not fit 0..{spec.max_value}")
        first, last = spec.byte, spec.last_byte + 1
        shift = 8 * last - spec.end
        current = int.from_bytes(work[first:last], "big")
        current = (current & ~(spec.max_value << shift)) | (value << shift)
        work[first:last] = current.to_bytes(last - first, "big")
    if any(work[size:]):
        raise EncodeError(f"{cls.__name__}: a field is set that lies past the end of the {size}-byte page")
    body[:] = work[:size]


def uint(buf: bytes, start: int, length: int) -> Optional[int]:
    """Big-endian unsigned integer at ``buf[start:start+length]``, or None unless all of it is there."""
    if start + length > len(buf):
        return None
    return int.from_bytes(buf[start : start + length], "big")


def be(buf: bytes, start: int, length: int) -> int:
    """Big-endian unsigned integer at ``buf[start:start+length]``, whose bytes the caller checked.

    Raises ``ValueError`` when they are not all there: that is a parser bug
    (a missing length check), and a number made of the bytes present would
    be wrong.  Use :func:`uint` for a field a short answer may cut.
    """
    if start + length > len(buf):
        raise ValueError(f"bytes {start}..{start + length - 1} read from a {len(buf)}-byte buffer")
    return int.from_bytes(buf[start : start + length], "big")


def span(buf: bytes, start: int, end: int) -> Optional[bytes]:
    """``buf[start:end]`` as bytes, or None unless all of it is there."""
    return bytes(buf[start:end]) if end <= len(buf) else None


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
