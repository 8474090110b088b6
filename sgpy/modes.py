"""Mode pages side by side, and changed safely: the read-modify-write of ``sdparm --set`` (SPC-5 6.11, 6.14, 7.5).

Two halves, kept apart so that the encoding can be tested without a device:

* pure functions: :func:`setting` checks a ``PAGE.FIELD=VALUE`` request
  against the page's decoder (:mod:`sgpy.responses.mode`: the field names
  are the attribute names of its classes, ``wce`` of
  :class:`~sgpy.responses.CachingPage`...); :func:`plan` turns the current
  and changeable values of the device and the requests into the MODE SELECT
  parameter lists, one per page, refusing a field the changeable values do
  not allow (:class:`FieldNotChangeable`, naming the field and its mask);
  :func:`select_command` makes the command that sends one;
  :func:`default_settings` turns a page's current, changeable and default
  values into the settings that bring it back to its defaults;
* I/O on a channel: :func:`sense` (MODE SENSE(10), or (6) where (10) is not
  implemented), :func:`page_controls` (one MODE SENSE per page control:
  current, changeable, default, saved), :func:`read_modify_write`,
  which reads, checks, sends MODE SELECT and reads back, and
  :func:`restore_defaults` (``sdparm --defaults``), which does the same with
  every changeable field of a page set to its default value.

Each parameter list is built the way SPC-5 asks (6.11, 7.5.5): the page in
its own format (page_0 or sub_page) with every byte it was read with, its
PS bit cleared, the MODE DATA LENGTH zero, and no block descriptor (BLOCK
DESCRIPTOR LENGTH zero: the device keeps its number of blocks and block
length, SPC-5 7.5.5 and SBC-4 6.5.2).  The device-specific parameter is
zero for a direct-access device (its WP and DPOFUA bits are reserved in
MODE SELECT, SBC-4 table 212) and keeps its other bits, WP cleared, for the
others.  One page goes per MODE SELECT: SPC-5 allows several, but some
devices (scsi_debug among them) take only the first.  MODE SELECT is
data-changing for :mod:`sgpy.safety`: the channel's policy must allow it.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import attr
import attrs

from sgpy.errors import IllegalRequest, TaskFailed, UnitAttention

__all__ = [
    "PAGE_CONTROLS",
    "ModeSettingError",
    "UnknownModeField",
    "BadModeValue",
    "FieldNotChangeable",
    "ModePageNotSupported",
    "Setting",
    "FieldChange",
    "ModeChange",
    "PageControls",
    "settable_fields",
    "setting",
    "changeable_mask",
    "plan",
    "select_command",
    "sense",
    "page_controls",
    "read_modify_write",
    "default_settings",
    "restore_defaults",
]

#: The page controls of MODE SENSE (SPC-5 table 452), by the name the command line uses.
PAGE_CONTROLS: Mapping[str, int] = {"current": 0, "changeable": 1, "default": 2, "saved": 3}

#: Peripheral device types whose device-specific parameter is SBC-4's (WP, DPOFUA): disk, WORM, optical, RBC, ZBC.
_SBC_TYPES = frozenset({0x00, 0x04, 0x07, 0x0E, 0x14})

Value = Union[int, bool]


class ModeSettingError(ValueError):
    """A requested mode setting that cannot be made; nothing was sent for it.

    ``page_code``, ``subpage_code`` and ``field`` say which (``field`` may be None).
    """

    def __init__(self, message: str, page_code: int, subpage_code: int, field: Optional[str]) -> None:
        super().__init__(message)
        self.page_code = page_code
        self.subpage_code = subpage_code
        self.field = field


class UnknownModeField(ModeSettingError):
    """The page has no field of that name (or sgpy decodes no field of the page)."""


class BadModeValue(ModeSettingError):
    """The value does not fit the field (a flag takes 0 or 1, an N-bit number 0 to 2**N-1)."""


class FieldNotChangeable(ModeSettingError):
    """The device's changeable values do not allow the change; ``mask`` is the field's changeable value."""

    def __init__(self, message: str, page_code: int, subpage_code: int, field: Optional[str], mask: int) -> None:
        super().__init__(message, page_code, subpage_code, field)
        self.mask = mask


class ModePageNotSupported(ModeSettingError):
    """The device did not return the page (MODE SENSE answered without it)."""


def _page_label(page_code: int, subpage_code: int) -> str:
    """``page 08h`` or ``page 0Ah/01h``, for messages."""
    return f"page {page_code:02X}h" + (f"/{subpage_code:02X}h" if subpage_code else "")


def settable_fields(page_code: int, subpage_code: int = 0) -> Dict[str, Tuple[int, bool]]:
    """The fields of a mode page that :func:`setting` takes: name -> (width in bits, is a flag).

    They are the numbers and flags of the page's class in
    :mod:`sgpy.responses.mode`; a page sgpy does not decode has none.
    """
    from sgpy.responses import mode_page_class
    from sgpy.responses._common import layout_numbers

    cls = mode_page_class(page_code, subpage_code)
    if cls is None:
        return {}
    return {name: spec for name, spec in layout_numbers(cls).items() if name != "ps"}


_TRUE = {"1", "yes", "true", "on", "y"}
_FALSE = {"0", "no", "false", "off", "n"}


@attrs.frozen
class Setting:
    """One requested change: ``field`` of mode page ``page_code``/``subpage_code`` to ``value``."""

    page_code: int
    subpage_code: int
    field: str
    value: Value

    def __str__(self) -> str:
        return f"{_page_label(self.page_code, self.subpage_code)} {self.field}={_text(self.value)}"


def setting(page_code: int, subpage_code: int, field: str, value: Union[str, int, bool]) -> Setting:
    """A checked :class:`Setting`: the field exists in the page's decoder and ``value`` fits it.

    ``field`` is case-insensitive and ``-`` may stand for ``_`` (``WCE``,
    ``d-sense``).  ``value`` may be text: a number (decimal or ``0x`` hex),
    or for a flag also ``yes``/``no``, ``true``/``false``, ``on``/``off``.
    Raises :class:`UnknownModeField` or :class:`BadModeValue`.
    """
    fields = settable_fields(page_code, subpage_code)
    name = field.strip().lower().replace("-", "_")
    where = _page_label(page_code, subpage_code)
    if name not in fields:
        known = ", ".join(fields) if fields else "none: sgpy does not decode this page"
        raise UnknownModeField(f"mode {where} has no field {field!r} (its fields: {known})", page_code,
                               subpage_code, field)
    width, flag = fields[name]
    number: Optional[int]
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        text = value.strip().lower()
        if flag and text in _TRUE | _FALSE:
            number = int(text in _TRUE)
        else:
            try:
                number = int(text, 0)
            except ValueError:
                number = None
    top = (1 << width) - 1
    if number is None or not 0 <= number <= top:
        what = "a flag: 0 or 1 (yes/no, on/off)" if flag else f"a {width}-bit number: 0 to {top} (0x{top:x})"
        raise BadModeValue(f"mode {where} field {name}: {value!r} does not fit; it is {what}", page_code,
                           subpage_code, name)
    return Setting(page_code, subpage_code, name, bool(number) if flag else number)


def _text(value: Any) -> str:
    """A field value for messages: flags as 0/1, numbers in decimal."""
    if isinstance(value, bool):
        return str(int(value))
    return "-" if value is None else str(value)


def changeable_mask(changeable_page: Any, field: str) -> int:
    """The field's value in the changeable values (MODE SENSE with PC 01b) as a bit mask: a one in
    every bit the device lets MODE SELECT change (SPC-5 6.14.3); 0 when the page does not hold it."""
    value = getattr(changeable_page, field, None)
    return int(value) if value is not None else 0


def _select_header(current: Any, device_type: Optional[int]) -> Dict[str, Any]:
    """The header of a MODE SELECT parameter list made from the MODE SENSE answer ``current``."""
    dsp = int(current.device_specific_parameter)
    dsp = 0 if device_type in _SBC_TYPES else dsp & 0x7F
    return {"ten": current.ten, "medium_type": int(current.medium_type), "device_specific_parameter": dsp,
            "longlba": False, "block_descriptors": ()}


def plan(current: Any, changeable: Any, settings: Sequence[Setting], *,
         device_type: Optional[int] = None) -> Tuple[Any, ...]:
    """The MODE SELECT parameter lists (:class:`~sgpy.responses.ModeParameters`) that make ``settings``.

    ``current`` and ``changeable`` are the MODE SENSE answers (PC 00b and
    01b) holding the pages the settings name; ``device_type`` is the
    peripheral device type (INQUIRY), which decides the device-specific
    parameter (see the module's text).  One parameter list per page, in
    the order the pages are first named; a page's settings apply in order.
    Raises :class:`ModePageNotSupported` when a page is missing from
    ``current``, :class:`FieldNotChangeable` when a change touches a bit the
    changeable values hold as zero (setting a field to the value it has is
    always allowed), and :class:`UnknownModeField` for a page sgpy does not
    decode.
    """
    from sgpy.responses import ModeParameters, TypedModePage

    order: List[Tuple[int, int]] = []
    pages: Dict[Tuple[int, int], Any] = {}
    for s in settings:
        key = (s.page_code, s.subpage_code)
        where = _page_label(*key)
        if key not in pages:
            page = current.page(*key)
            if page is None:
                raise ModePageNotSupported(f"the device returned no mode {where}", *key, s.field)
            if not isinstance(page, TypedModePage):
                raise UnknownModeField(f"mode {where} is not decoded by sgpy: it has no field {s.field!r}", *key,
                                       s.field)
            pages[key] = page
            order.append(key)
        page = pages[key]
        old = getattr(page, s.field)
        if old is None:
            raise ModePageNotSupported(f"mode {where} is too short to hold {s.field} (the device's page has "
                                       f"{len(page.raw)} bytes)", *key, s.field)
        mask = changeable_mask(changeable.page(*key) if changeable is not None else None, s.field)
        if (int(old) ^ int(s.value)) & ~mask:
            width = settable_fields(*key)[s.field][0]
            raise FieldNotChangeable(
                f"mode {where} field {s.field} is not changeable on this device: its changeable value "
                f"(MODE SENSE, page control changeable) is 0x{mask:0{max(1, (width + 3) // 4)}x}"
                f"{' (not changeable at all)' if mask == 0 else ''}, so {_text(old)} cannot become "
                f"{_text(s.value)}", *key, s.field, mask)
        pages[key] = attr.evolve(page, **{s.field: s.value})
    header = _select_header(current, device_type)
    return tuple(ModeParameters(pages=(pages[key],), **header) for key in order)


def select_command(parameters: Any, *, save: bool = False) -> Any:
    """MODE SELECT(10) for a parameter list with the 8-byte header, (6) for the 4-byte one: PF set
    (the pages are in the standard's format), SP set when ``save`` (the device also saves them)."""
    from sgpy import command

    cls = command.ModeSelect10 if parameters.ten else command.ModeSelect6
    return cls(pf=1, sp=int(save), data=parameters.to_bytes())


# -- on a channel ------------------------------------------------------------------------------------------------


def _execute(channel: Any, cmd: Any) -> Any:
    """Execute ``cmd``; once more after a UNIT ATTENTION (a MODE SELECT makes devices report MODE
    PARAMETERS CHANGED; the command that met it was not executed, SAM-5 5.14)."""
    try:
        return channel.execute(cmd)
    except UnitAttention:
        return channel.execute(cmd)


def sense(channel: Any, page_code: int, subpage_code: int = 0, pc: int = 0, *, ten: Optional[bool] = None) -> Any:
    """MODE SENSE of one page (or 3Fh: all) with page control ``pc``: the decoded
    :class:`~sgpy.responses.ModeParameters` (``.ten`` says which command answered).

    ``ten`` None tries MODE SENSE(10) and falls back to (6) when the device
    does not implement it (INVALID COMMAND OPERATION CODE); True or False
    sends only that one.  A device's error raises its
    :class:`~sgpy.errors.TaskFailed`.
    """
    from sgpy import command

    if ten is not False:
        try:
            return _execute(channel, command.ModeSense10(page_code=page_code, subpage_code=subpage_code,
                                                         pc=pc)).result
        except IllegalRequest as exc:
            if ten is True or not exc.matches(0x20):
                raise
    return _execute(channel, command.ModeSense6(page_code=page_code, subpage_code=subpage_code, pc=pc)).result


@attrs.frozen
class PageControls:
    """One mode page as each page control gives it: ``current``, ``changeable``, ``default`` and
    ``saved`` (:class:`~sgpy.responses.ModeParameters`, each None when the device refused that page
    control: ``errors`` then holds its :class:`~sgpy.errors.TaskFailed`, by the same name)."""

    page_code: int
    subpage_code: int
    current: Any = None
    changeable: Any = None
    default: Any = None
    saved: Any = None
    errors: Mapping[str, TaskFailed] = attrs.field(factory=dict)

    def page(self, control: str) -> Any:
        """The page as page control ``control`` (``"current"``...) gives it, or None."""
        params = getattr(self, control)
        return params.page(self.page_code, self.subpage_code) if params is not None else None


def page_controls(channel: Any, page_code: int, subpage_code: int = 0) -> PageControls:
    """One MODE SENSE per page control for the page; a refused one (a device that saves nothing
    answers PC 11b with SAVING PARAMETERS NOT SUPPORTED) is recorded, not raised.

    The current values are read first, with MODE SENSE(10) or (6), and the
    other three with the same command; a refusal of the current values is
    raised.
    """
    current = sense(channel, page_code, subpage_code, PAGE_CONTROLS["current"])
    found: Dict[str, Any] = {"current": current}
    errors: Dict[str, TaskFailed] = {}
    for name in ("changeable", "default", "saved"):
        try:
            found[name] = sense(channel, page_code, subpage_code, PAGE_CONTROLS[name], ten=current.ten)
        except TaskFailed as exc:
            found[name] = None
            errors[name] = exc
    return PageControls(page_code, subpage_code, errors=errors, **found)


@attrs.frozen
class FieldChange:
    """What :func:`read_modify_write` did to one field: ``old`` (before), ``requested`` and ``new``
    (read back after MODE SELECT; it equals ``requested`` when the device took the change)."""

    page_code: int
    subpage_code: int
    field: str
    old: Value
    requested: Value
    new: Optional[Value]

    @property
    def took(self) -> bool:
        """Whether the value read back is the one requested."""
        return self.new is not None and int(self.new) == int(self.requested)


@attrs.frozen
class ModeChange:
    """The result of :func:`read_modify_write`: each field's change, whether the pages were saved,
    and the parameter lists sent (one per page, as MODE SELECT(10) when ``ten``, else (6))."""

    changes: Tuple[FieldChange, ...]
    saved: bool
    ten: bool
    sent: Tuple[bytes, ...]


def read_modify_write(channel: Any, settings: Iterable[Setting], *, save: bool = False) -> ModeChange:
    """Change mode page fields on a device as ``sdparm --set`` (``--save``) does, checking each change first.

    For the pages the settings name: MODE SENSE current and changeable
    values (one command each; (10), or (6) where the device lacks (10)),
    :func:`plan` (nothing is sent when a field is unknown, missing or not
    changeable), then MODE SELECT of the same size for each page, with SP
    set when ``save``, then MODE SENSE again to read back the new values.
    The channel's policy must allow data-changing commands (MODE SELECT is
    one).  A field named twice takes the last value given.  Raises
    :class:`ModeSettingError` before anything is sent, or the device's
    :class:`~sgpy.errors.TaskFailed`.
    """
    from sgpy import command

    last: Dict[Tuple[int, int, str], Setting] = {}
    for s in settings:  # a field named twice takes its last value, in the place it was first named
        last[(s.page_code, s.subpage_code, s.field)] = s
    settings = list(last.values())
    if not settings:
        raise ValueError("read_modify_write: no setting given")
    inquiry = _execute(channel, command.Inquiry()).result
    device_type = int(inquiry.peripheral_device_type) if inquiry is not None else None
    keys: List[Tuple[int, int]] = []
    for s in settings:
        if (s.page_code, s.subpage_code) not in keys:
            keys.append((s.page_code, s.subpage_code))
    lists: List[Any] = []
    before: Dict[Tuple[int, int], Any] = {}
    for key in keys:
        current = sense(channel, *key, PAGE_CONTROLS["current"])
        changeable = sense(channel, *key, PAGE_CONTROLS["changeable"], ten=current.ten)
        mine = [s for s in settings if (s.page_code, s.subpage_code) == key]
        (params,) = plan(current, changeable, mine, device_type=device_type)
        lists.append(params)
        before[key] = current.page(*key)
    for params in lists:  # every page is checked before the first MODE SELECT goes out
        _execute(channel, select_command(params, save=save))
    changes: List[FieldChange] = []
    ten = bool(lists[0].ten)
    for key in keys:
        after = sense(channel, *key, PAGE_CONTROLS["current"], ten=ten).page(*key)
        for s in settings:
            if (s.page_code, s.subpage_code) == key:
                new = getattr(after, s.field, None) if after is not None else None
                changes.append(FieldChange(s.page_code, s.subpage_code, s.field, getattr(before[key], s.field),
                                           s.value, new))
    return ModeChange(changes=tuple(changes), saved=save, ten=ten, sent=tuple(p.to_bytes() for p in lists))


def default_settings(current_page: Any, changeable_page: Any, default_page: Any) -> List[Setting]:
    """The settings that give every changeable field of a page its default value (``sdparm --defaults``).

    ``current_page``, ``changeable_page`` and ``default_page`` are the same
    page as MODE SENSE gives it with page control 00b, 01b and 10b (SPC-5
    table 452: the default values are "the values the device server uses
    after a power on or reset when no values were saved").  One setting per
    field sgpy decodes whose changeable value is not zero, in the page's
    order, including fields already at their default (so that the MODE
    SELECT holds them all, and ``--save`` saves them all).  Only the bits
    the changeable value marks take the default; the others keep their
    current value (a MODE SELECT that changes a bit the changeable values
    hold as zero is refused with INVALID FIELD IN PARAMETER LIST, SPC-5
    6.11), so :func:`plan` never refuses the result.  A field
    missing from one of the three (a short page) is left out.  Raises
    :class:`UnknownModeField` for a page sgpy does not decode.
    """
    from sgpy.responses import TypedModePage

    code, sub = int(current_page.page_code), int(current_page.subpage_code)
    if not isinstance(current_page, TypedModePage):
        raise UnknownModeField(f"mode {_page_label(code, sub)} is not decoded by sgpy: its default values cannot "
                               "be set field by field", code, sub, None)
    out: List[Setting] = []
    for name, (_width, flag) in settable_fields(code, sub).items():
        mask = changeable_mask(changeable_page, name)
        old = getattr(current_page, name, None)
        default = getattr(default_page, name, None) if default_page is not None else None
        if not mask or old is None or default is None:
            continue
        value = (int(old) & ~mask) | (int(default) & mask)
        out.append(Setting(code, sub, name, bool(value) if flag else value))
    return out


def restore_defaults(channel: Any, page_code: int, subpage_code: int = 0, *, save: bool = False) -> ModeChange:
    """Give every changeable field of one mode page its default value, as ``sdparm --defaults --page=P`` does.

    MODE SENSE of the page's current, changeable and default values (the
    default ones with the command that answered the current ones), then
    :func:`default_settings`, then :func:`read_modify_write` with them: one
    MODE SELECT for the page (SP set when ``save``) and the page read back.
    The :class:`ModeChange` lists every changeable field; those whose
    ``old`` and ``new`` differ are the ones that changed.  Raises
    :class:`ModePageNotSupported` when the device does not return the page,
    :class:`UnknownModeField` for a page sgpy does not decode,
    :class:`ModeSettingError` when no field of the page is changeable
    (nothing is sent then), or the device's :class:`~sgpy.errors.TaskFailed`
    (a device that refuses page control 10b among them).
    """
    where = _page_label(page_code, subpage_code)
    current = sense(channel, page_code, subpage_code, PAGE_CONTROLS["current"])
    page = current.page(page_code, subpage_code)
    if page is None:
        raise ModePageNotSupported(f"the device returned no mode {where}", page_code, subpage_code, None)
    changeable = sense(channel, page_code, subpage_code, PAGE_CONTROLS["changeable"], ten=current.ten)
    default = sense(channel, page_code, subpage_code, PAGE_CONTROLS["default"], ten=current.ten)
    settings = default_settings(page, changeable.page(page_code, subpage_code),
                                default.page(page_code, subpage_code))
    if not settings:
        raise ModeSettingError(f"mode {where} has no field this device lets MODE SELECT change (its changeable "
                               "values are all zero): there is no default to restore", page_code, subpage_code,
                               None)
    return read_modify_write(channel, settings, save=save)
