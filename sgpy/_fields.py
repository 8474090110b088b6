"""Declarative CDB fields and the one codec that serves every command class.

A command class declares its fields in wire order with :func:`field`, giving
the byte and bit of each field's most significant bit and its width, exactly
as the T10 tables draw them (the field name sits in the top-left cell of its
span).  :func:`compile_layout` turns those declarations, plus the constant
parts of the CDB (operation code, service action, additional CDB length),
into a :class:`Layout`: a ``struct`` format and two small functions generated
once per class — one that validates and packs an instance, one that unpacks
bytes straight into a new instance.  Nothing walks the fields by reflection
on the hot path; the generic code runs once, at import time.

Value rules, enforced by the compiled encoder:

* a one-bit field holds a ``bool``; ``0`` and ``1`` are accepted and stored
  as ``False`` / ``True``;
* a wider field holds an ``int`` in ``0 .. 2**width - 1``; objects with
  ``__index__`` (``IntEnum`` members, numpy integers) are stored as plain
  ``int``; a ``bool`` is *refused* for a multi-bit field, because
  ``transfer_length=True`` is nearly always a slip for a flag;
* anything else raises :class:`sgpy.errors.EncodeError` naming the command,
  the field and the allowed range.

Reserved bits are whatever no field or constant covers: they are encoded as
zero and, on decoding, collected in :attr:`Layout.reserved_mask` so the caller
can report them.
"""

from __future__ import annotations

import operator
import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import attr

from sgpy.errors import EncodeError

__all__ = ["FieldSpec", "Layout", "field", "compile_layout", "REQUIRED", "field_spec"]

#: Key under which a field's :class:`FieldSpec` is kept in the attrs metadata.
_META = "sgpy.field"

#: Pass as ``default=`` to make a field a required keyword argument.
REQUIRED: Any = attr.NOTHING

_AUTO = object()

# struct codes for the big-endian pieces a packed unit is split into.
_CODE = {1: "B", 2: "H", 4: "I", 8: "Q"}


@attr.s(frozen=True, slots=True)
class FieldSpec:
    """Where one field lives in a CDB.

    ``byte`` and ``bit`` locate the field's most significant bit (bit 7 is
    the leftmost bit of a byte, as in every T10 table); ``width`` is its
    size in bits, so a field may run on across byte boundaries (READ(6)'s
    21-bit LOGICAL BLOCK ADDRESS starts at byte 1 bit 4).
    """

    byte: int = attr.ib()
    bit: int = attr.ib()
    width: int = attr.ib()
    doc: str = attr.ib(default="")
    nullable: bool = attr.ib(default=False)
    name: str = attr.ib(default="")

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.bit <= 7) or self.byte < 0 or not (1 <= self.width <= 64):
            raise ValueError(f"bad field position byte={self.byte} bit={self.bit} width={self.width}")

    @property
    def start(self) -> int:
        """Index of the field's most significant bit, counting from the CDB's first bit."""
        return self.byte * 8 + (7 - self.bit)

    @property
    def end(self) -> int:
        """Index one past the field's least significant bit."""
        return self.start + self.width

    @property
    def last_byte(self) -> int:
        """The byte holding the field's least significant bit."""
        return (self.end - 1) // 8

    @property
    def max_value(self) -> int:
        """Largest value the field holds."""
        return (1 << self.width) - 1

    @property
    def is_flag(self) -> bool:
        """True for one-bit fields, which hold a ``bool``."""
        return self.width == 1

    def mask_in(self, length: int) -> int:
        """The field's bits as a mask over a ``length``-byte big-endian integer."""
        return self.max_value << (8 * length - self.end)

    def present_in(self, buf: bytes) -> bool:
        """True when every byte the field touches is inside ``buf``."""
        return self.last_byte < len(buf)

    def read(self, buf: bytes) -> Optional[int]:
        """The field's value in ``buf``, or None when ``buf`` ends before the field does.

        A field cut by the end of the bytes has no value: reading the bytes
        that are there as the high part of the number (or padding them with
        zeros) would give a different, plausible-looking number.
        """
        if self.last_byte >= len(buf):
            return None
        chunk = int.from_bytes(buf[self.byte : self.last_byte + 1], "big")
        return (chunk >> (8 * (self.last_byte + 1) - self.end)) & self.max_value

    def extract(self, buf: bytes) -> int:
        """Read the field's value out of ``buf`` (used for service-action dispatch).

        Raises ``ValueError`` when ``buf`` ends before the field does, rather
        than returning a number made from part of it.
        """
        value = self.read(buf)
        if value is None:
            raise ValueError(f"field at {self.describe()} is not within the {len(buf)} bytes given")
        return value

    def describe(self) -> str:
        """Position in T10 words: ``"byte 1 bits 7-5"``, ``"bytes 2-5"``..."""
        lsb_bit = 7 - ((self.end - 1) % 8)
        if self.byte == self.last_byte:
            if self.width == 1:
                return f"byte {self.byte} bit {self.bit}"
            if self.width == 8:
                return f"byte {self.byte}"
            return f"byte {self.byte} bits {self.bit}-{lsb_bit}"
        if self.bit == 7 and lsb_bit == 0:
            return f"bytes {self.byte}-{self.last_byte}"
        return f"byte {self.byte} bit {self.bit} to byte {self.last_byte} bit {lsb_bit}"

    def kind(self) -> str:
        """``"bool"`` or ``"int (N bits)"``, for error messages and docs."""
        return "bool" if self.is_flag else f"int ({self.width} bits)"

    def check(self, value: Any, owner: str) -> Any:
        """Validate and normalize one value; raise EncodeError naming ``owner`` and the field.

        Returns the value to store (``None`` only for nullable fields).
        """
        if value is None:
            if self.nullable:
                return None
            self._fail(owner, value, "is required")
        if self.is_flag:
            if value is True or value is False:
                return value
            if type(value) is not bool and isinstance(value, int) and value in (0, 1):
                return bool(value)
            self._fail(owner, value, "is a one-bit flag: pass True or False (or 0/1)")
        if isinstance(value, bool):
            self._fail(owner, value, f"is a {self.width}-bit number in 0..{self.max_value}, not a flag: pass an int")
        try:
            number = operator.index(value)
        except TypeError:
            self._fail(owner, value, f"must be an int in 0..{self.max_value}")
        if number < 0 or number > self.max_value:
            self._fail(owner, value, f"must be in 0..{self.max_value} ({self.width} bits)")
        return int(number)

    def _fail(self, owner: str, value: Any, what: str) -> None:
        shown = f"{type(value).__name__} {value!r}" if not isinstance(value, int) else repr(value)
        err = EncodeError(f"{owner}: field {self.name!r} {what}, got {shown}")
        err.command = owner  # type: ignore[attr-defined]
        err.field = self.name  # type: ignore[attr-defined]
        err.value = value  # type: ignore[attr-defined]
        err.allowed = (0, self.max_value)  # type: ignore[attr-defined]
        raise err


def field(
    byte: int,
    bit: int = 7,
    width: int = 8,
    *,
    default: Any = _AUTO,
    doc: str = "",
) -> Any:
    """Declare one CDB field of a command class (an ``attr.ib`` carrying its position).

    ``byte``/``bit`` give the field's most significant bit, ``width`` its size
    in bits: ``field(1, 4, 1)`` is a flag at byte 1 bit 4, ``field(2, width=32)``
    is bytes 2-5, ``field(1, 7, 3)`` is byte 1 bits 7-5.  One-bit fields default
    to ``False``, wider ones to ``0``.  ``default=None`` makes a field that the
    command may resolve later (a transfer length taken from the data);
    ``default=REQUIRED`` makes it a required keyword.
    """
    spec = FieldSpec(byte=byte, bit=bit, width=width, doc=doc, nullable=default is None)
    if default is _AUTO:
        default = False if width == 1 else 0
    return attr.ib(default=default, kw_only=True, metadata={_META: spec})


def field_spec(attribute: "attr.Attribute[Any]") -> Optional[FieldSpec]:
    """The :class:`FieldSpec` declared for an attrs attribute, or None."""
    spec = attribute.metadata.get(_META)
    return spec if isinstance(spec, FieldSpec) else None


@attr.s(frozen=True, slots=True, repr=False)
class Layout:
    """A command class's compiled wire layout.

    ``fields`` are in wire order; ``consts`` are the fixed parts with their
    values; ``reserved_mask`` covers every bit neither touches (as a mask over
    the CDB read as one big-endian integer); ``encode(obj)`` validates and
    packs an instance (``None`` when a nullable field is still unset);
    ``decode(cls, cdb)`` builds an instance from bytes of the right length.
    """

    length: int = attr.ib()
    fields: Tuple[FieldSpec, ...] = attr.ib()
    consts: Tuple[Tuple[FieldSpec, int], ...] = attr.ib()
    reserved_mask: int = attr.ib()
    const_mask: int = attr.ib()
    const_bits: int = attr.ib()
    struct_format: str = attr.ib()
    encode: Callable[[Any], Optional[bytes]] = attr.ib()
    decode: Callable[[type, bytes], Any] = attr.ib()

    def __repr__(self) -> str:
        return f"Layout(length={self.length}, fields={[f.name for f in self.fields]}, format={self.struct_format!r})"

    def reserved_positions(self, cdb: bytes) -> Tuple[Tuple[int, int], ...]:
        """(byte, bit) of every reserved bit set in ``cdb``, in wire order."""
        value = int.from_bytes(cdb, "big") & self.reserved_mask
        out = []
        total = 8 * self.length
        while value:
            low = value & -value
            index = total - low.bit_length()  # from the CDB's first bit
            out.append((index // 8, 7 - index % 8))
            value ^= low
        return tuple(sorted(out, key=lambda position: (position[0], -position[1])))


def _pieces(n: int) -> List[int]:
    """Split an ``n``-byte unit into struct-sized big-endian pieces (8/4/2/1)."""
    out = []
    while n:
        size = 8 if n >= 8 else 4 if n >= 4 else 2 if n >= 2 else 1
        out.append(size)
        n -= size
    return out


def _units(
    specs: Sequence[Tuple[FieldSpec, Optional[int], Optional[int]]],
) -> List[Tuple[int, int, List[Tuple[FieldSpec, Optional[int], Optional[int]]]]]:
    """Group members (spec, field index or None, const value or None) into byte-connected units."""
    ordered = sorted(specs, key=lambda m: m[0].start)
    units: List[Tuple[int, int, List[Tuple[FieldSpec, Optional[int], Optional[int]]]]] = []
    for member in ordered:
        spec = member[0]
        if units and spec.byte <= units[-1][1]:
            first, last, members = units[-1]
            members.append(member)
            units[-1] = (first, max(last, spec.last_byte), members)
        else:
            units.append((spec.byte, spec.last_byte, [member]))
    return units


def compile_layout(
    owner: str,
    length: int,
    fields: Iterable[FieldSpec],
    consts: Iterable[Tuple[FieldSpec, int]],
    extras: Iterable[Tuple[str, Any, bool]] = (),
    cache_attribute: Optional[str] = None,
) -> Layout:
    """Compile one command class's layout into a struct plan and two generated functions.

    ``fields`` carry their attribute names; ``consts`` are (position, value)
    pairs; ``extras`` are the other init attributes the decoder must fill
    with their defaults, as (name, default, default_is_factory);
    ``cache_attribute``, when given, receives the decoded bytes.  Overlapping
    or out-of-range declarations raise ``ValueError`` at import time.
    """
    fields = tuple(sorted(fields, key=lambda s: s.start))
    consts = tuple(consts)
    members: List[Tuple[FieldSpec, Optional[int], Optional[int]]] = [
        (spec, i, None) for i, spec in enumerate(fields)
    ] + [(spec, None, value) for spec, value in consts]

    covered = 0
    for spec, _, value in members:
        if spec.end > 8 * length:
            raise ValueError(f"{owner}: {spec.name or 'constant'} runs past byte {length - 1}")
        mask = spec.mask_in(length)
        if covered & mask:
            raise ValueError(f"{owner}: {spec.name or 'constant'} overlaps another field")
        if value is not None and not (0 <= value <= spec.max_value):
            raise ValueError(f"{owner}: constant {value} does not fit {spec.describe()}")
        covered |= mask
    reserved_mask = ((1 << 8 * length) - 1) & ~covered
    const_mask = 0
    const_bits = 0
    for spec, value in consts:
        const_mask |= spec.mask_in(length)
        const_bits |= value << (8 * length - spec.end)

    fmt = [">"]
    pack_pre: List[str] = []
    pack_args: List[str] = []
    unpack_names: List[str] = []
    unpack_pre: List[str] = []
    field_exprs: Dict[int, str] = {}
    position = 0
    piece_no = 0
    for unit_no, (first, last, unit_members) in enumerate(_units(members)):
        if first > position:
            fmt.append(f"{first - position}x")
        size = last - first + 1
        unit_end = 8 * (last + 1)
        terms: List[str] = []
        constant = 0
        for spec, index, value in unit_members:
            shift = unit_end - spec.end
            if value is not None:
                constant |= value << shift
            else:
                terms.append(f"(v{index} << {shift})" if shift else f"v{index}")
        if constant:
            terms.append(hex(constant))
        expression = " | ".join(terms) or "0"
        pieces = _pieces(size)
        names = []
        for piece in pieces:
            fmt.append(_CODE[piece])
            names.append(f"p{piece_no}")
            piece_no += 1
        unpack_names.extend(names)
        if len(pieces) == 1:
            pack_args.append(expression)
            source = names[0]
        else:
            pack_pre.append(f"u{unit_no} = {expression}")
            offset = 0
            parts = []
            for piece, name in zip(pieces, names):
                rshift = 8 * (size - offset - piece)
                mask = (1 << 8 * piece) - 1
                pack_args.append(f"(u{unit_no} >> {rshift}) & {mask:#x}" if rshift else f"u{unit_no} & {mask:#x}")
                parts.append(f"({name} << {rshift})" if rshift else name)
                offset += piece
            unpack_pre.append(f"u{unit_no} = {' | '.join(parts)}")
            source = f"u{unit_no}"
        for spec, index, _value in unit_members:
            if index is None:
                continue
            shift = unit_end - spec.end
            if spec.is_flag:
                field_exprs[index] = f"({source} & {1 << shift:#x}) != 0"
            elif shift == 0 and spec.width == 8 * size:
                field_exprs[index] = source
            elif shift == 0:
                field_exprs[index] = f"{source} & {spec.max_value:#x}"
            else:
                field_exprs[index] = f"({source} >> {shift}) & {spec.max_value:#x}"
        position = last + 1
    if position < length:
        fmt.append(f"{length - position}x")
    struct_format = "".join(fmt)
    plan = struct.Struct(struct_format)
    if plan.size != length:  # pragma: no cover - guards the compiler itself
        raise ValueError(f"{owner}: compiled format {struct_format!r} is {plan.size} bytes, not {length}")

    namespace: Dict[str, Any] = {
        "_pack": plan.pack,
        "_unpack": plan.unpack,
        "_int": int,
        "_bool": bool,
        "_new": object.__new__,
        "_osa": object.__setattr__,
    }

    # Encoder: one combined type/range test, then a single struct.pack call.
    lines = ["def encode(self, _int=_int, _bool=_bool, _pack=_pack):"]
    for i, spec in enumerate(fields):
        lines.append(f"    v{i} = self.{spec.name}")
    tests = []
    for i, spec in enumerate(fields):
        if spec.is_flag:
            tests.append(f"v{i}.__class__ is _bool")
        else:
            tests.append(f"v{i}.__class__ is _int and 0 <= v{i} <= {spec.max_value:#x}")
    lines.append(f"    if {' and '.join(tests) or 'True'}:")
    for statement in pack_pre:
        lines.append(f"        {statement}")
    lines.append(f"        return _pack({', '.join(pack_args)})")
    lines.append("    return _slow(self)")

    # Decoder: unpack, then set every attribute on a fresh instance.
    lines.append("def decode(cls, cdb):")
    if unpack_names:
        lines.append(f"    {', '.join(unpack_names)}{',' if len(unpack_names) == 1 else ''} = _unpack(cdb)")
    lines.extend(f"    {statement}" for statement in unpack_pre)
    lines.append("    self = _new(cls)")
    lines.append("    _set = _osa.__get__(self)")
    for i, spec in enumerate(fields):
        lines.append(f"    _set({spec.name!r}, {field_exprs[i]})")
    for j, (name, default, factory) in enumerate(extras):
        namespace[f"_d{j}"] = default
        lines.append(f"    _set({name!r}, _d{j}())" if factory else f"    _set({name!r}, _d{j})")
    if cache_attribute:
        lines.append(f"    _set({cache_attribute!r}, cdb)")
    lines.append("    return self")
    source = "\n".join(lines) + "\n"
    code = compile(source, f"<sgpy layout {owner}>", "exec")
    exec(code, namespace)  # noqa: S102 - source generated above from the field table

    layout = Layout(
        length=length,
        fields=fields,
        consts=consts,
        reserved_mask=reserved_mask,
        const_mask=const_mask,
        const_bits=const_bits,
        struct_format=struct_format,
        encode=namespace["encode"],
        decode=namespace["decode"],
    )

    def _slow(obj: Any) -> Optional[bytes]:
        # Off the fast path: normalize 0/1 flags and IntEnum values, report
        # bad ones, and stop (None) while a nullable field is still unset.
        complete = True
        for spec in fields:
            value = getattr(obj, spec.name)
            checked = spec.check(value, owner)
            if checked is None:
                complete = False
            elif checked is not value:
                object.__setattr__(obj, spec.name, checked)
        return layout.encode(obj) if complete else None

    namespace["_slow"] = _slow
    return layout
