"""Which parser reads which command's answer.

Pure: maps a command (a value from :mod:`sgpy.command`) and the bytes it
returned to the typed answer from :mod:`sgpy.responses`, and says how long
a variable-length answer wanted to be.  The engine uses it for
``io.result`` and to re-issue truncated answers.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, Optional

from sgpy import responses as r

__all__ = ["parse_result", "wanted_length", "VARIABLE_LENGTH", "parser_for"]

Parser = Callable[[bytes], Any]


def _inquiry(cmd: Any) -> Parser:
    return r.parse_vpd if cmd.evpd else r.StandardInquiryData.from_bytes


def _mode(ten: bool) -> Callable[[Any], Parser]:
    return lambda cmd: (lambda buf: r.parse_mode_parameters(buf, ten=ten))


def _opcodes(cmd: Any) -> Parser:
    return r.SupportedOperationCodes.from_bytes if cmd.reporting_options == 0 else r.OneCommandSupport.from_bytes


_PARSERS: Dict[str, Callable[[Any], Parser]] = {
    "Inquiry": _inquiry,
    "ReadCapacity10": lambda cmd: r.ReadCapacity10Data.from_bytes,
    "ReadCapacity16": lambda cmd: r.ReadCapacity16Data.from_bytes,
    "ReportLuns": lambda cmd: r.ReportLunsData.from_bytes,
    "ModeSense6": _mode(False),
    "ModeSense10": _mode(True),
    "LogSense": lambda cmd: r.parse_log_page,
    "ReportSupportedOperationCodes": _opcodes,
    "ReportSupportedTaskManagementFunctions": lambda cmd: r.SupportedTaskManagementFunctions.from_bytes,
    "ReportTargetPortGroups": lambda cmd: r.TargetPortGroups.from_bytes,
    "ReportZones": lambda cmd: r.ReportZonesData.from_bytes,
    "GetLbaStatus": lambda cmd: r.LbaStatus.from_bytes,
    "RequestSense": lambda cmd: r.RequestSenseData.from_bytes,
    "PersistentReserveInReadKeys": lambda cmd: r.PrReadKeys.from_bytes,
    "PersistentReserveInReadReservation": lambda cmd: r.PrReadReservation.from_bytes,
    "PersistentReserveInReportCapabilities": lambda cmd: r.PrReportCapabilities.from_bytes,
    "PersistentReserveInReadFullStatus": lambda cmd: r.PrFullStatus.from_bytes,
}

#: Commands whose answers say how long they wanted to be, and that the
#: engine re-issues once with that allocation length when cut short.
VARIABLE_LENGTH: FrozenSet[str] = frozenset({
    "Inquiry",
    "ReportLuns",
    "LogSense",
    "ReportSupportedOperationCodes",
    "PersistentReserveInReadKeys",
    "PersistentReserveInReadReservation",
    "PersistentReserveInReadFullStatus",
    "ReportTargetPortGroups",
    "ModeSense6",
    "ModeSense10",
})


def parser_for(cmd: Any) -> Optional[Parser]:
    """The function that parses ``cmd``'s answer, or None."""
    make = _PARSERS.get(cmd.name)
    return None if make is None else make(cmd)


def parse_result(cmd: Any, data: bytes) -> Any:
    """``cmd``'s answer as a typed value (None when there is no parser)."""
    parse = parser_for(cmd)
    return None if parse is None else parse(data)


def _required(cmd: Any) -> Optional[Callable[[bytes], Optional[int]]]:
    name = cmd.name
    if name == "Inquiry":
        return r.VpdPage.required_length if cmd.evpd else r.StandardInquiryData.required_length
    if name == "ModeSense6":
        return lambda buf: r.ModeParameters.required_length(buf, ten=False)
    if name == "ModeSense10":
        return lambda buf: r.ModeParameters.required_length(buf, ten=True)
    if name == "LogSense":
        return r.LogPage.required_length
    if name == "ReportSupportedOperationCodes":
        if cmd.reporting_options == 0:
            return r.SupportedOperationCodes.required_length
        return r.OneCommandSupport.required_length
    required: Dict[str, Callable[[bytes], Optional[int]]] = {
        "ReportLuns": r.ReportLunsData.required_length,
        "ReportTargetPortGroups": r.TargetPortGroups.required_length,
        "PersistentReserveInReadKeys": r.PrReadKeys.required_length,
        "PersistentReserveInReadReservation": r.PrReadReservation.required_length,
        "PersistentReserveInReadFullStatus": r.PrFullStatus.required_length,
    }
    return required.get(name)


def wanted_length(cmd: Any, data: bytes) -> Optional[int]:
    """How many bytes ``cmd``'s complete answer takes, from ``data``'s header (None if unknown)."""
    if cmd.name not in VARIABLE_LENGTH:
        return None
    required = _required(cmd)
    if required is None:
        return None
    try:
        return required(data)
    except Exception:  # a malformed header: the parser will say so when asked
        return None
