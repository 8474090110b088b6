"""The command value: a frozen CDB plus its handler chain, and the registry.

Every command class is a frozen, slotted attrs class whose CDB fields are
declared with :func:`sgpy._fields.field` and compiled once by
:func:`command` into a struct plan (see :mod:`sgpy._fields`).  An instance
validates and packs itself when it is built, so ``cmd.cdb`` is a slot read.

Equality, hashing and ``repr`` cover the CDB fields only.  Three things ride
along without being part of the value:

* ``handlers`` — the handler chain, a plain list called in order with each
  finished IO (``cmd.add_handler(fn)`` appends);
* ``verify_handler`` — a callable that judges a completion, or None;
* ``data`` — the data-out payload of commands that send data.

The chain is shared, not copied, by every command derived from this one
(``for_block_size``, ``with_allocation_length``, ``attr.evolve``), and
nothing about one execution is stored on the command, so submitting the
same object twice (``channel.execute_many([cmd, cmd])``) runs the chain for
both executions.

``repr`` uses the class name — ``Read10(rdprotect=0, ..., control=0)`` —
rather than the lower-case ``read10(...)`` of the original sgpy README, so
that what is printed is what one types.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Generic, List, Optional, Tuple, Type, TypeVar, Union

import attr

from sgpy._fields import FieldSpec, Layout, compile_layout, field_spec
from sgpy.constants import Direction
from sgpy.errors import DecodeError, EncodeError

__all__ = [
    "nbytes",
    "block_size_for",
    "Command",
    "RawCommand",
    "ReservedBitsWarning",
    "command",
    "decode",
    "all_commands",
    "DataBuffer",
]

#: What ``data=`` accepts: any object exporting the buffer protocol.
DataBuffer = Union[bytes, bytearray, memoryview]

Handler = Callable[[Any], Any]
C = TypeVar("C", bound="Command[Any]")
#: The type of a command's parsed answer (``io.result``): a value from
#: :mod:`sgpy.responses`, or None for commands whose answer is not parsed.
R = TypeVar("R", covariant=True)

_setattr = object.__setattr__

# Largest CDB SPC allows: a variable-length CDB of 8 + 252 bytes (SPC-5 4.2.5).
MAX_CDB_LENGTH = 260


class ReservedBitsWarning(UserWarning):
    """Decoded CDB bytes had reserved (or obsolete) bits set."""


def _chain(handlers: Any) -> List[Handler]:
    """Keep a handler list as the same object; turn other iterables into a list."""
    if type(handlers) is list:
        return handlers
    if handlers is None:
        return []
    return list(handlers)


def nbytes(data: Any) -> int:
    """Length in bytes of a bytes-like payload."""
    if type(data) is bytes or type(data) is bytearray:
        return len(data)
    return memoryview(data).nbytes


def _check_data(owner: str, data: Any) -> None:
    """Refuse payloads that are not bytes-like, with a message that says what to pass."""
    if isinstance(data, str):
        raise TypeError(f"{owner}: data must be bytes-like, not str: pass bytes (e.g. {data[:8]!r}.encode())")
    if type(data) is bytes or type(data) is bytearray or type(data) is memoryview:
        return
    try:
        memoryview(data)
    except TypeError:
        raise TypeError(f"{owner}: data must be a bytes-like object, got {type(data).__name__}") from None


def block_size_for(owner: str, block_size: Optional[int]) -> int:
    """Validate a block size handed in by the caller; EncodeError when it is missing."""
    if block_size is None:
        raise EncodeError(f"{owner}: the transfer depends on the logical block size; pass block_size")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise EncodeError(f"{owner}: block_size must be a positive int, got {block_size!r}")
    return block_size


# init=False: every concrete class gets its own __init__ from @command.
@attr.s(frozen=True, slots=True, eq=False, repr=False, init=False)
class Command(Generic[R]):
    """Base of every command: CDB encoding, transfer description and handler chain.

    Class attributes describe the command: ``opcode``, ``service_action``
    (None when the command has none), ``cdb_length``, ``direction``,
    ``needs_block_size``, ``changes_data`` and ``irreversible`` (for a
    safety policy), ``name`` (the class name) and ``standard`` (the T10
    standard whose table the layout follows, e.g. ``"SBC-4"``).  A few commands compute ``direction`` or ``needs_block_size``
    from their fields (VERIFY's BYTCHK, WRITE SAME(16)'s NDOB, ATA
    PASS-THROUGH's T_DIR/T_LENGTH).
    """

    handlers: List[Handler] = attr.ib(factory=list, kw_only=True, eq=False, repr=False)
    verify_handler: Optional[Handler] = attr.ib(default=None, kw_only=True, eq=False, repr=False)
    _cdb: Optional[bytes] = attr.ib(init=False, eq=False, repr=False)
    _reserved: Tuple[Tuple[int, int], ...] = attr.ib(default=(), init=False, eq=False, repr=False)

    opcode: ClassVar[int]
    service_action: ClassVar[Optional[int]] = None
    cdb_length: ClassVar[int]
    name: ClassVar[str] = "Command"
    standard: ClassVar[str] = ""
    direction: ClassVar[Direction] = Direction.NONE
    needs_block_size: ClassVar[bool] = False
    changes_data: ClassVar[bool] = False
    irreversible: ClassVar[bool] = False
    data: ClassVar[Optional[DataBuffer]] = None
    _layout: ClassVar[Layout]
    # The layout's encoder, bound as a method: ``self._encode()`` packs the CDB.
    _encode: ClassVar[Callable[["Command"], Optional[bytes]]]
    # Where the service action sits, for families that have one.
    _sa_spec: ClassVar[Optional[FieldSpec]] = None
    # Other constant parts (e.g. the ADDITIONAL CDB LENGTH of 32-byte CDBs).
    _extra_consts: ClassVar[Tuple[Tuple[FieldSpec, int], ...]] = ()

    if TYPE_CHECKING:  # pragma: no cover
        # Each class's real __init__ is made by @command from its declared
        # fields (keyword-only); type checkers see this signature instead.
        def __init__(self, **fields: Any) -> None: ...

        # Field values are read as attributes.
        def __getattr__(self, name: str) -> Any: ...

    def __attrs_post_init__(self) -> None:
        if self.handlers.__class__ is not list:
            _setattr(self, "handlers", _chain(self.handlers))
        _setattr(self, "_cdb", self._encode())

    # -- the CDB ----------------------------------------------------------

    @property
    def cdb(self) -> bytes:
        """The CDB bytes (reserved bits zero), packed once when the command was built."""
        cdb = self._cdb
        if cdb is None:
            raise EncodeError(self._unresolved_message())
        return cdb

    def _unresolved_message(self) -> str:
        return f"{self.name}: a field is not set yet; call for_block_size(block_size) to resolve it"

    @property
    def reserved_bits(self) -> Tuple[Tuple[int, int], ...]:
        """(byte, bit) of reserved bits that were set in the bytes this command was decoded from."""
        return self._reserved

    @classmethod
    def layout(cls) -> Layout:
        """The compiled wire layout: fields in wire order, constants, struct format."""
        return cls._layout

    @classmethod
    def from_bytes(cls: Type[C], cdb: Union[bytes, bytearray, memoryview], *, strict: bool = False) -> C:
        """Decode ``cdb`` as this command class.

        Wrong length, or a different operation code / service action /
        constant, raises DecodeError.  Reserved bits that are set are kept in
        ``reserved_bits`` and reported with a ReservedBitsWarning, or raise
        DecodeError when ``strict``.
        """
        return _decode_as(cls, cdb if type(cdb) is bytes else bytes(cdb), strict)  # type: ignore[return-value]

    # -- transfer ---------------------------------------------------------

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """How many data bytes move (0 for commands without data)."""
        return 0

    def for_block_size(self: C, block_size: int) -> C:
        """A command whose transfer is fully determined for ``block_size`` (self if nothing to do)."""
        block_size_for(self.name, block_size)
        return self

    # -- handlers ---------------------------------------------------------

    def add_handler(self: C, handler: Handler) -> C:
        """Append ``handler`` to the chain (called in order with each finished IO); returns self."""
        if not callable(handler):
            raise TypeError(f"{self.name}: handler must be callable, got {type(handler).__name__}")
        self.handlers.append(handler)
        return self

    # -- representation -----------------------------------------------------

    def __repr__(self) -> str:
        parts = [f"{spec.name}={getattr(self, spec.name)!r}" for spec in self._layout.fields]
        data = self.data
        if data is not None:
            parts.append(f"data=<{nbytes(data)} bytes>")
        return f"{self.name}({', '.join(parts)})"


# -- declaring classes ---------------------------------------------------------

_OPCODE_SPEC = FieldSpec(byte=0, bit=7, width=8, name="operation_code")

# opcode -> class, for commands without a service action.
_BY_OPCODE: Dict[int, Any] = {}
# opcode -> (where the service action is, {service action: class}).
_BY_SERVICE_ACTION: Dict[int, Tuple[FieldSpec, Dict[int, Any]]] = {}
_ALL: List[Any] = []


def base(cls: Any) -> Any:
    """Make an intermediate (abstract) command class: attrs, no layout, not registered."""
    return attr.s(frozen=True, slots=True, eq=False, repr=False, kw_only=True)(cls)


def command(cls: Any) -> Any:
    """Class decorator: make a frozen attrs command, compile its layout, register it.

    The class body gives ``opcode``, ``cdb_length``, optionally
    ``service_action`` (placed where the family's ``_sa_spec`` says), and its
    fields.  The operation code, service action and any ``_extra_consts``
    become constant parts of the layout, so they are fixed by the class.
    """
    cls = attr.s(frozen=True, slots=True, eq=True, repr=False, kw_only=True)(cls)
    fields: List[FieldSpec] = []
    extras: List[Tuple[str, Any, bool]] = []
    for attribute in attr.fields(cls):
        spec = field_spec(attribute)
        if spec is not None:
            fields.append(attr.evolve(spec, name=attribute.name))
        elif attribute.default is not attr.NOTHING or attribute.init:
            default = attribute.default
            if isinstance(default, attr.Factory):  # type: ignore[arg-type]
                extras.append((attribute.name, default.factory, True))  # type: ignore[union-attr]
            else:
                extras.append((attribute.name, None if default is attr.NOTHING else default, False))
    consts: List[Tuple[FieldSpec, int]] = [(_OPCODE_SPEC, cls.opcode)]
    if cls.service_action is not None:
        if cls._sa_spec is None:
            raise TypeError(f"{cls.__name__}: service_action given but the family has no _sa_spec")
        consts.append((cls._sa_spec, cls.service_action))
    consts.extend(cls._extra_consts)
    cls._layout = compile_layout(cls.__name__, cls.cdb_length, fields, consts, extras, cache_attribute="_cdb")
    cls._encode = cls._layout.encode
    cls.name = cls.__name__
    _register(cls)
    return cls


def _register(cls: Any) -> None:
    opcode = cls.opcode
    if cls.service_action is None:
        if opcode in _BY_OPCODE or opcode in _BY_SERVICE_ACTION:
            raise TypeError(f"{cls.__name__}: operation code {opcode:#04x} already registered")
        _BY_OPCODE[opcode] = cls
    else:
        if opcode in _BY_OPCODE:
            raise TypeError(f"{cls.__name__}: operation code {opcode:#04x} already registered without SA")
        spec, table = _BY_SERVICE_ACTION.setdefault(opcode, (cls._sa_spec, {}))
        if spec != cls._sa_spec or cls.service_action in table:
            raise TypeError(f"{cls.__name__}: service action {cls.service_action:#x} clashes")
        table[cls.service_action] = cls
    _ALL.append(cls)


def all_commands() -> Tuple[Any, ...]:
    """Every registered command class, ordered by operation code then service action.

    RawCommand is not included: it stands for everything else.
    """
    return tuple(sorted(_ALL, key=lambda c: (c.opcode, c.service_action or 0)))


def lookup(opcode: int, service_action: Optional[int] = None) -> Any:
    """The class registered for an operation code (and service action), or None."""
    cls = _BY_OPCODE.get(opcode)
    if cls is not None:
        return cls
    family = _BY_SERVICE_ACTION.get(opcode)
    if family is None or service_action is None:
        return None
    return family[1].get(service_action)


def _group_length(cdb: bytes) -> Optional[int]:
    """CDB length implied by the operation code's group (SPC-5 4.2.5.1), or None."""
    group = cdb[0] >> 5
    if group == 0:
        return 6
    if group in (1, 2):
        return 10
    if group == 4:
        return 16
    if group == 5:
        return 12
    if cdb[0] == 0x7F and len(cdb) >= 8:
        return 8 + cdb[7]  # variable-length CDB: ADDITIONAL CDB LENGTH (SPC-5 4.2.5.3)
    return None


def _decode_as(cls: Any, raw: bytes, strict: bool) -> "Command":
    """Decode ``raw`` (bytes) as ``cls``: the shared body of from_bytes and decode."""
    layout = cls._layout
    if len(raw) != layout.length:
        raise DecodeError(f"{cls.name}: CDB must be {layout.length} bytes, got {len(raw)}")
    whole = int.from_bytes(raw, "big")
    if whole & layout.const_mask != layout.const_bits:
        raise DecodeError(f"{cls.name}: bytes {raw.hex()} do not carry this command's operation code / constants")
    obj = layout.decode(cls, raw)  # also stores raw as the CDB
    if whole & layout.reserved_mask:
        positions = layout.reserved_positions(raw)
        where = ", ".join(f"byte {b} bit {i}" for b, i in positions)
        message = f"{cls.name}: reserved bits set in CDB {raw.hex()}: {where}"
        if strict:
            raise DecodeError(message)
        warnings.warn(message, ReservedBitsWarning, stacklevel=3)
        _setattr(obj, "_reserved", positions)
        _setattr(obj, "_cdb", layout.encode(obj))
    return obj  # type: ignore[no-any-return]


def decode(cdb: Union[bytes, bytearray, memoryview], *, strict: bool = False) -> "Command":
    """Decode CDB bytes into the matching command, or a RawCommand for unknown ones.

    The class is found through the operation code (and, for families that
    share one, the service action).  A length that does not match the
    command — or, for unknown commands, the operation code's group — raises
    DecodeError.  Reserved bits that are set are reported (see
    :meth:`Command.from_bytes`); ``strict=True`` makes that a DecodeError.
    A RawCommand from ``decode`` has direction NONE and length 0: the bytes
    alone do not say how data moves.
    """
    raw = cdb if type(cdb) is bytes else bytes(cdb)
    if not raw:
        raise DecodeError("empty CDB")
    opcode = raw[0]
    cls = _BY_OPCODE.get(opcode)
    if cls is None:
        family = _BY_SERVICE_ACTION.get(opcode)
        if family is not None:
            spec, table = family
            if len(raw) > spec.last_byte:
                cls = table.get(spec.extract(raw))
    if cls is not None:
        return _decode_as(cls, raw, strict)
    expected = _group_length(raw)
    if expected is not None and len(raw) != expected:
        raise DecodeError(f"CDB with operation code {opcode:#04x} must be {expected} bytes, got {len(raw)}")
    if len(raw) > MAX_CDB_LENGTH:
        raise DecodeError(f"CDB of {len(raw)} bytes is longer than {MAX_CDB_LENGTH}")
    return RawCommand(cdb=raw)


# -- RawCommand ----------------------------------------------------------------------


def _raw_cdb(value: Any) -> bytes:
    if isinstance(value, str):
        raise TypeError("RawCommand: cdb must be bytes, not str: pass bytes (e.g. bytes.fromhex(...))")
    return bytes(value)


@attr.s(frozen=True, slots=True, eq=True, repr=False, kw_only=True)
class RawCommand(Command[Any]):
    """Any CDB given as bytes, with its direction and transfer length.

    ``RawCommand(cdb=b"...", direction=Direction.FROM_DEVICE, length=512)``;
    for data-out pass ``data=`` (``length`` then defaults to its size).
    Nothing in the bytes is checked beyond 1..260 bytes, so malformed CDBs
    can be sent on purpose.  Vendor-specific operation codes (C0h-FFh,
    SPC-5 table 39 group 6 and 7) count as irreversible; a known operation
    code inherits the class's classification; any other data-out counts as
    changing data.
    """

    cdb: bytes = attr.ib(converter=_raw_cdb)  # type: ignore[assignment]
    direction: Direction = attr.ib(default=Direction.NONE, converter=Direction)  # type: ignore[assignment,misc]
    length: Optional[int] = attr.ib(default=None)
    data: Optional[DataBuffer] = attr.ib(default=None, eq=False)  # type: ignore[assignment,misc]

    name: ClassVar[str] = "RawCommand"

    def __attrs_post_init__(self) -> None:
        if self.handlers.__class__ is not list:
            _setattr(self, "handlers", _chain(self.handlers))
        if not 1 <= len(self.cdb) <= MAX_CDB_LENGTH:
            raise EncodeError(f"RawCommand: cdb must be 1..{MAX_CDB_LENGTH} bytes, got {len(self.cdb)}")
        _setattr(self, "_cdb", self.cdb)
        data = self.data
        length = self.length
        if data is not None:
            _check_data("RawCommand", data)
            if self.direction is not Direction.TO_DEVICE:
                raise EncodeError("RawCommand: data is only sent with direction=Direction.TO_DEVICE")
            size = nbytes(data)
            if length is None:
                _setattr(self, "length", size)
            elif length != size:
                raise EncodeError(f"RawCommand: length={length} disagrees with len(data)={size}")
        elif length is None:
            _setattr(self, "length", 0)
        elif isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise EncodeError(f"RawCommand: length must be an int >= 0, got {length!r}")

    @classmethod
    def from_bytes(  # type: ignore[override]
        cls, cdb: Union[bytes, bytearray, memoryview], *, strict: bool = False
    ) -> "RawCommand":
        """Wrap any CDB bytes (direction NONE, length 0); ``strict`` has nothing to check."""
        return cls(cdb=cdb)

    @property
    def opcode(self) -> int:  # type: ignore[override]
        """The first CDB byte."""
        return self.cdb[0]

    def _known(self) -> List[Any]:
        opcode = self.cdb[0]
        known = [c for c in _ALL if c.opcode == opcode]
        return known

    @property
    def irreversible(self) -> bool:  # type: ignore[override]
        """True for vendor-specific operation codes and for those of irreversible commands."""
        return self.cdb[0] >= 0xC0 or any(c.irreversible for c in self._known())

    @property
    def changes_data(self) -> bool:  # type: ignore[override]
        """Conservative: data-out, vendor-specific, or an operation code that changes data."""
        known = self._known()
        if known:
            return any(c.changes_data for c in known)
        return self.irreversible or self.direction is Direction.TO_DEVICE

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """The ``length`` given (0 when none)."""
        return self.length or 0

    def __repr__(self) -> str:
        extra = f", data=<{nbytes(self.data)} bytes>" if self.data is not None else ""
        return f"RawCommand(cdb={self.cdb.hex()!r}, direction={self.direction.name}, length={self.length}{extra})"


# -- transfer families -------------------------------------------------------------


class NoData(Command[None]):
    """Commands that move no data."""

    __slots__ = ()


class AllocationIn(Command[R]):
    """Data-in commands sized by an ALLOCATION LENGTH field named ``allocation_length``."""

    __slots__ = ()
    direction: ClassVar[Direction] = Direction.FROM_DEVICE

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """The allocation length: the most the device may return."""
        return self.allocation_length  # type: ignore[attr-defined,no-any-return]

    def with_allocation_length(self: C, allocation_length: int) -> C:
        """The same command asking for ``allocation_length`` bytes (same handler chain)."""
        return attr.evolve(self, allocation_length=allocation_length)  # type: ignore[call-arg]


@base
class DataOut(Command[R]):
    """Commands that send data; ``data=`` takes any bytes-like object (``str`` is refused)."""

    data: Optional[DataBuffer] = attr.ib(default=None, eq=False)  # type: ignore[assignment,misc]

    direction: ClassVar[Direction] = Direction.TO_DEVICE

    def __attrs_post_init__(self) -> None:
        if self.handlers.__class__ is not list:
            _setattr(self, "handlers", _chain(self.handlers))
        data = self.data
        if data is not None:
            _check_data(self.name, data)
        self._resolve()
        _setattr(self, "_cdb", self._encode())

    def _resolve(self) -> None:
        """Fill fields that follow from the data without the block size."""


class ParameterOut(DataOut[R]):
    """Data-out commands sized by a PARAMETER LIST LENGTH field.

    When ``data`` is given and the length is not, the length is taken from
    the data; when both are given they must agree.
    """

    __slots__ = ()
    _length_field: ClassVar[str] = "parameter_list_length"

    def _resolve(self) -> None:
        name = self._length_field
        given = getattr(self, name)
        data = self.data
        if data is None:
            if given is None:
                _setattr(self, name, 0)
            return
        size = nbytes(data)
        if given is None:
            _setattr(self, name, size)
        elif given != size:
            raise EncodeError(f"{self.name}: {name}={given!r} disagrees with len(data)={size}")

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """The parameter list length."""
        return getattr(self, self._length_field)  # type: ignore[no-any-return]


class BlockIn(Command[None]):
    """Data-in commands that move ``transfer_length`` logical blocks."""

    __slots__ = ()
    direction: ClassVar[Direction] = Direction.FROM_DEVICE
    needs_block_size: ClassVar[bool] = True
    _blocks_field: ClassVar[str] = "transfer_length"
    # What a TRANSFER LENGTH of zero means, in blocks (256 for READ(6)/WRITE(6), SBC-4 5.17).
    _zero_blocks: ClassVar[int] = 0

    def blocks(self) -> int:
        """Number of logical blocks transferred (READ(6)'s 0 counts as 256)."""
        n = getattr(self, self._blocks_field)
        return n if n else self._zero_blocks

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """``blocks() × block_size``; EncodeError when block_size is missing."""
        return self.blocks() * block_size_for(self.name, block_size)


class BlockOut(DataOut[None]):
    """Data-out commands that write ``transfer_length`` logical blocks of ``data``.

    ``transfer_length`` may be left out when ``data`` is given; it is then
    resolved by :meth:`for_block_size` from ``len(data)``.
    """

    __slots__ = ()
    needs_block_size: ClassVar[bool] = True
    _blocks_field: ClassVar[str] = "transfer_length"
    _zero_blocks: ClassVar[int] = 0
    # Data blocks per counted block (2 for COMPARE AND WRITE: verify + write data).
    _data_factor: ClassVar[int] = 1

    def _unresolved_message(self) -> str:
        return (
            f"{self.name}: {self._blocks_field} is not set; it follows from len(data) and the "
            "logical block size: call for_block_size(block_size)"
        )

    def blocks(self) -> Optional[int]:
        """Number of logical blocks counted by the CDB (None until resolved)."""
        n = getattr(self, self._blocks_field)
        if n is None:
            return None
        return n if n else self._zero_blocks

    def transfer_bytes(self, block_size: Optional[int] = None) -> int:
        """Bytes sent: blocks × block_size (× 2 for COMPARE AND WRITE), or len(data) before resolution."""
        blocks = self.blocks()
        if blocks is None:
            data = self.data
            if data is None:
                raise EncodeError(self._unresolved_message())
            size = nbytes(data)
            if block_size is not None:
                self._blocks_for(size, block_size_for(self.name, block_size))
            return size
        return blocks * self._data_factor * block_size_for(self.name, block_size)

    def _blocks_for(self, size: int, block_size: int) -> int:
        unit = block_size * self._data_factor
        blocks, rest = divmod(size, unit)
        if rest:
            raise EncodeError(
                f"{self.name}: len(data)={size} is not a multiple of "
                f"{'%d x ' % self._data_factor if self._data_factor > 1 else ''}the block size {block_size}"
            )
        return blocks

    def for_block_size(self: C, block_size: int) -> C:
        """Resolve the block count from ``data`` or check that data and count agree."""
        bs = block_size_for(self.name, block_size)
        data = self.data
        count = self.blocks()  # type: ignore[attr-defined]
        name = self._blocks_field  # type: ignore[attr-defined]
        if data is None:
            if count is None:
                raise EncodeError(f"{self.name}: give {name} or data")
            return self
        size = nbytes(data)
        blocks = self._blocks_for(size, bs)  # type: ignore[attr-defined]
        if count is not None:
            if blocks != count:
                raise EncodeError(
                    f"{self.name}: len(data)={size} is {blocks} blocks of {bs} bytes but {name} says {count} blocks"
                )
            return self
        zero = self._zero_blocks  # type: ignore[attr-defined]
        if zero and blocks == zero:
            value = 0
        elif blocks == 0 and zero:
            raise EncodeError(f"{self.name}: cannot write 0 blocks ({name} 0 means {zero})")
        else:
            value = blocks
        spec = next(s for s in self._layout.fields if s.name == name)
        if value > spec.max_value:
            raise EncodeError(
                f"{self.name}: len(data)={size} is {blocks} blocks of {bs} bytes; {name} allows "
                f"at most {zero or spec.max_value} blocks"
            )
        return attr.evolve(self, **{name: value})  # type: ignore[arg-type]
