"""Generate sgpy/_command_types.py: what type checkers see of the commands.

Command classes get their fields from :func:`sgpy._fields.field` at run time,
which no type checker can follow, and ``channel.cmd.<Name>`` is looked up
by name.  This script reads every command class (attrs fields, defaults,
bases) and writes a module, imported only under ``TYPE_CHECKING``, with:

* one class per command with a typed ``__init__`` (keyword-only, as at run
  time; required fields without defaults) and typed field attributes, each
  derived from its run-time base and parameterised by the type of its parsed
  answer (``io.result``);
* ``Commands``: a protocol with one method per command for ``channel.cmd``
  (returns ``Io[answer]``), and ``AsyncCommands`` for the asyncio channel's
  ``cmd`` (returns an awaitable).

Run ``python tools/gen_command_types.py`` after adding or changing a command;
tests/unit/test_typing.py fails while the file is stale.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Dict, List, Tuple

import attr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sgpy import command  # noqa: E402
from sgpy._fields import field_spec  # noqa: E402
from sgpy.cdb import base  # noqa: E402

OUT = os.path.join(ROOT, "sgpy", "_command_types.py")

#: The type of each parsed answer, as sgpy.results parses it (the names of
#: sgpy.results._PARSERS; the unit test checks the two agree).
RESULT_TYPES: Dict[str, str] = {
    "Inquiry": "Union[r.StandardInquiryData, r.VpdPage]",
    "ReadCapacity10": "r.ReadCapacity10Data",
    "ReadCapacity16": "r.ReadCapacity16Data",
    "ReportLuns": "r.ReportLunsData",
    "ModeSense6": "r.ModeParameters",
    "ModeSense10": "r.ModeParameters",
    "LogSense": "r.LogPage",
    "ReportSupportedOperationCodes": "Union[r.SupportedOperationCodes, r.OneCommandSupport]",
    "ReportSupportedTaskManagementFunctions": "r.SupportedTaskManagementFunctions",
    "ReportTargetPortGroups": "r.TargetPortGroups",
    "ReportZones": "r.ReportZonesData",
    "GetLbaStatus": "r.LbaStatus",
    "RequestSense": "r.RequestSenseData",
    "PersistentReserveInReadKeys": "r.PrReadKeys",
    "PersistentReserveInReadReservation": "r.PrReadReservation",
    "PersistentReserveInReportCapabilities": "r.PrReportCapabilities",
    "PersistentReserveInReadFullStatus": "r.PrFullStatus",
}

#: Run-time bases that are generic in the answer type (see sgpy.cdb.base).
_GENERIC_BASES = ("AllocationIn", "DataOut", "ParameterOut")
_FIXED_BASES = ("NoData", "BlockIn", "BlockOut")


def _base_of(cls: type) -> str:
    for klass in cls.__mro__[1:]:
        if klass.__module__ == base.__name__ and klass.__name__ in _GENERIC_BASES + _FIXED_BASES + ("Command",):
            return klass.__name__
    raise SystemExit(f"{cls.__name__}: no base class of sgpy.cdb.base in its MRO")


def _params(cls: type) -> Tuple[List[str], List[str]]:
    """(``__init__`` parameters, attribute declarations) of a command class."""
    required: List[str] = []
    optional: List[str] = []
    attrs_: List[str] = []
    for a in attr.fields(cls):
        if not a.init or a.name.startswith("_"):
            continue
        spec = field_spec(a)
        if spec is not None:
            typ = "Optional[int]" if spec.nullable else "int"
        elif a.name == "data":
            typ = "Optional[DataBuffer]"
        elif a.name == "handlers":
            typ = "Optional[Iterable[Handler]]"
        elif a.name == "verify_handler":
            typ = "Optional[Handler]"
        else:
            raise SystemExit(f"{cls.__name__}.{a.name}: no type known for this field; extend {__file__}")
        has_default = a.default is not attr.NOTHING
        (optional if has_default else required).append(f"{a.name}: {typ}{' = ...' if has_default else ''}")
        if a.name not in ("handlers", "data", "verify_handler"):  # declared by the bases
            attrs_.append(f"{a.name}: {typ}")
    return required + optional, attrs_


def _classmethods(cls: type) -> List[str]:
    """Stubs of the public class methods a command class defines itself (e.g. an alternative
    constructor), from their signatures; their annotations are strings (PEP 563) and kept as written."""
    out: List[str] = []
    for name, obj in vars(cls).items():
        if name.startswith("_") or not isinstance(obj, classmethod):
            continue
        sig = inspect.signature(obj.__func__)
        parts: List[str] = []
        star = False
        for i, p in enumerate(sig.parameters.values()):
            if i == 0:
                parts.append(p.name)  # cls
                continue
            if p.kind is p.KEYWORD_ONLY and not star:
                parts.append("*")
                star = True
            ann = "" if p.annotation is p.empty else f": {p.annotation}"
            default = "" if p.default is p.empty else " = ..."
            parts.append(f"{p.name}{ann}{default}")
        ret = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
        out += ["", "    @classmethod", f"    def {name}({', '.join(parts)}){ret}: ...  # type: ignore[empty-body]"]
    return out


def generate() -> str:
    classes = sorted(command.all_commands(), key=lambda c: c.__name__)
    names = [c.__name__ for c in classes]
    out = [
        '"""What type checkers see of sgpy\'s commands.  Generated by tools/gen_command_types.py: do not edit.',
        "",
        "Imported only under ``TYPE_CHECKING`` (by :mod:`sgpy.command` and the channels): at run time",
        "the classes come from :mod:`sgpy.cdb` and ``channel.cmd`` looks them up by name.",
        '"""',
        "",
        "# flake8: noqa",
        "from __future__ import annotations",
        "",
        "from typing import Any, Awaitable, Iterable, Optional, Protocol, Union",
        "",
        "from sgpy import responses as r",
        "from sgpy.cdb.base import (",
        "    AllocationIn, BlockIn, BlockOut, Command, DataBuffer, DataOut, Handler, NoData, ParameterOut, RawCommand,",
        "    ReservedBitsWarning, all_commands, decode, lookup,",
        ")",
        "from sgpy.io import Io",
        "",
        "__all__ = [",
        '    "Command", "RawCommand", "ReservedBitsWarning", "all_commands", "decode", "lookup",',
        "    \"Commands\", \"AsyncCommands\",",
    ]
    out += [f'    "{n}",' for n in names]
    out += ["]", ""]
    sigs: Dict[str, Tuple[str, str]] = {}
    for cls in classes:
        name = cls.__name__
        params, decls = _params(cls)
        result = RESULT_TYPES.get(name, "None")
        b = _base_of(cls)
        base_expr = f"{b}[{result}]" if b in _GENERIC_BASES or b == "Command" else b
        if b in _FIXED_BASES and result != "None":
            raise SystemExit(f"{name}: its base {b} has no answer type but {result} is listed")
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else name
        out += ["", f"class {name}({base_expr}):", f'    """{doc}"""', ""]
        out += [f"    {d}" for d in decls]
        out += ["", f"    def __init__(self, *, {', '.join(params)}) -> None: ..."]
        out += _classmethods(cls)
        sigs[name] = (", ".join(params), result)
    for proto, ret in (("Commands", "Io[{r}]"), ("AsyncCommands", "Awaitable[Io[{r}]]")):
        extra = "async_: bool = ..., timeout: Optional[int] = ..." if proto == "Commands" else \
            "timeout: Optional[int] = ..."
        out += ["", "", f"class {proto}(Protocol):",
                f'    """``channel.cmd`` ({"synchronous or async_=True" if proto == "Commands" else "asyncio"}):'
                ' build the command and execute it on the channel."""', ""]
        for name in names:
            params, result = sigs[name]
            out.append(f"    def {name}(self, *, {params}, {extra}) -> {ret.format(r=result)}: ...")
    return "\n".join(out) + "\n"


def main() -> int:
    text = generate()
    check = "--check" in sys.argv
    if check:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{OUT} is stale: run python tools/gen_command_types.py", file=sys.stderr)
                return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUT}: {text.count(chr(10) + 'class ')} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
