"""Typed parsers for the answers devices return (SPC-5, SBC-4, SAT-4, ZBC-2).

Pure: no I/O.  Every response class is a frozen value built with
``X.from_bytes(buf)``.  Each has ``truncated`` (the answer was cut short by
the allocation length) and ``wanted_length`` (the total length the answer's
own header asks for, so the command can be re-issued with that allocation
length), and ``X.required_length(buf)`` computes the same number from the
header alone (None when even the header is incomplete).  A field is decoded
only when all of its bytes arrived; one a short answer cut, or that lies
past its end, is None, never a number made from part of its bytes.  Data
that cannot be what it claims raises :class:`sgpy.errors.MalformedResponse`.

Dispatchers: :func:`parse_vpd` (by page code), :func:`parse_mode_parameters`
and :func:`parse_log_page` (by page and subpage code).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

# Each public name and the submodule defining it.  Submodules are imported
# on first use (PEP 562), so ``import sgpy.responses`` costs almost nothing
# and a program pays only for the parsers it touches.
_WHERE: Dict[str, str] = {
    "ReadCapacity10Data": "capacity",
    "ReadCapacity16Data": "capacity",
    "Association": "designators",
    "CodeSet": "designators",
    "Designator": "designators",
    "DesignatorType": "designators",
    "Eui64Designator": "designators",
    "LogicalUnitGroupDesignator": "designators",
    "Md5Designator": "designators",
    "NaaDesignator": "designators",
    "RelativeTargetPortDesignator": "designators",
    "ScsiNameStringDesignator": "designators",
    "T10VendorIdDesignator": "designators",
    "TargetPortGroupDesignator": "designators",
    "UuidDesignator": "designators",
    "StandardInquiryData": "inquiry",
    "BackgroundScanResultsPage": "log",
    "ErrorCounterPage": "log",
    "InformationalExceptionsPage": "log",
    "LogPage": "log",
    "LogParameter": "log",
    "MediumScanResult": "log",
    "ReadErrorCounterPage": "log",
    "SelfTestResult": "log",
    "SelfTestResultsPage": "log",
    "StartStopCycleCounterPage": "log",
    "SupportedLogPages": "log",
    "SupportedLogSubpages": "log",
    "TemperaturePage": "log",
    "VerifyErrorCounterPage": "log",
    "WriteErrorCounterPage": "log",
    "parse_log_page": "log",
    "AddressMethod": "luns",
    "Lun": "luns",
    "LunLevel": "luns",
    "ReportLunsData": "luns",
    "AccessState": "misc",
    "LbaStatus": "misc",
    "LbaStatusDescriptor": "misc",
    "ProvisioningStatus": "misc",
    "ReportZonesData": "misc",
    "RequestSenseData": "misc",
    "SupportedTaskManagementFunctions": "misc",
    "TargetPortGroup": "misc",
    "TargetPortGroups": "misc",
    "Zone": "misc",
    "ZoneCondition": "misc",
    "ZoneType": "misc",
    "CachingPage": "mode",
    "ControlExtensionPage": "mode",
    "ControlPage": "mode",
    "DisconnectReconnectPage": "mode",
    "InformationalExceptionsControlPage": "mode",
    "LongBlockDescriptor": "mode",
    "ModePage": "mode",
    "ModeParameters": "mode",
    "PowerConditionPage": "mode",
    "ReadWriteErrorRecoveryPage": "mode",
    "ShortBlockDescriptor": "mode",
    "TypedModePage": "mode",
    "parse_mode_page": "mode",
    "parse_mode_parameters": "mode",
    "CommandDescriptor": "opcodes",
    "CommandSupport": "opcodes",
    "CommandTimeouts": "opcodes",
    "OneCommandSupport": "opcodes",
    "SupportedOperationCodes": "opcodes",
    "FullStatusDescriptor": "pr",
    "PrFullStatus": "pr",
    "PrReadKeys": "pr",
    "PrReadReservation": "pr",
    "PrReportCapabilities": "pr",
    "Reservation": "pr",
    "TransportId": "pr",
    "AtaInformation": "vpd",
    "BlockDeviceCharacteristics": "vpd",
    "BlockLimits": "vpd",
    "DeviceIdentification": "vpd",
    "ExtendedInquiryData": "vpd",
    "LogicalBlockProvisioning": "vpd",
    "PowerCondition": "vpd",
    "RawVpdPage": "vpd",
    "SupportedVpdPages": "vpd",
    "UnitSerialNumber": "vpd",
    "VpdPage": "vpd",
    "ZonedBlockDeviceCharacteristics": "vpd",
    "parse_vpd": "vpd",
}

#: Names of every top-level response class (each has from_bytes,
#: required_length, truncated and wanted_length); see RESPONSE_CLASSES.
_RESPONSE_CLASS_NAMES: Tuple[str, ...] = (
    "StandardInquiryData",
    "SupportedVpdPages",
    "UnitSerialNumber",
    "DeviceIdentification",
    "ExtendedInquiryData",
    "AtaInformation",
    "PowerCondition",
    "BlockLimits",
    "BlockDeviceCharacteristics",
    "LogicalBlockProvisioning",
    "ZonedBlockDeviceCharacteristics",
    "RawVpdPage",
    "ReadCapacity10Data",
    "ReadCapacity16Data",
    "ReportLunsData",
    "ModeParameters",
    "LogPage",
    "SupportedLogPages",
    "SupportedLogSubpages",
    "WriteErrorCounterPage",
    "ReadErrorCounterPage",
    "VerifyErrorCounterPage",
    "TemperaturePage",
    "StartStopCycleCounterPage",
    "SelfTestResultsPage",
    "BackgroundScanResultsPage",
    "InformationalExceptionsPage",
    "SupportedOperationCodes",
    "OneCommandSupport",
    "PrReadKeys",
    "PrReadReservation",
    "PrReportCapabilities",
    "PrFullStatus",
    "RequestSenseData",
    "LbaStatus",
    "TargetPortGroups",
    "ReportZonesData",
    "SupportedTaskManagementFunctions",
)

__all__: List[str] = [
    "RESPONSE_CLASSES",
    "parse_vpd",
    "parse_mode_parameters",
    "parse_mode_page",
    "parse_log_page",
    "StandardInquiryData",
    "VpdPage",
    "RawVpdPage",
    "SupportedVpdPages",
    "UnitSerialNumber",
    "DeviceIdentification",
    "ExtendedInquiryData",
    "AtaInformation",
    "PowerCondition",
    "BlockLimits",
    "BlockDeviceCharacteristics",
    "LogicalBlockProvisioning",
    "ZonedBlockDeviceCharacteristics",
    "Association",
    "CodeSet",
    "DesignatorType",
    "Designator",
    "T10VendorIdDesignator",
    "Eui64Designator",
    "NaaDesignator",
    "RelativeTargetPortDesignator",
    "TargetPortGroupDesignator",
    "LogicalUnitGroupDesignator",
    "Md5Designator",
    "ScsiNameStringDesignator",
    "UuidDesignator",
    "ReadCapacity10Data",
    "ReadCapacity16Data",
    "AddressMethod",
    "LunLevel",
    "Lun",
    "ReportLunsData",
    "ModeParameters",
    "ModePage",
    "TypedModePage",
    "ShortBlockDescriptor",
    "LongBlockDescriptor",
    "ReadWriteErrorRecoveryPage",
    "DisconnectReconnectPage",
    "CachingPage",
    "ControlPage",
    "ControlExtensionPage",
    "PowerConditionPage",
    "InformationalExceptionsControlPage",
    "LogParameter",
    "LogPage",
    "SupportedLogPages",
    "SupportedLogSubpages",
    "ErrorCounterPage",
    "WriteErrorCounterPage",
    "ReadErrorCounterPage",
    "VerifyErrorCounterPage",
    "TemperaturePage",
    "StartStopCycleCounterPage",
    "SelfTestResult",
    "SelfTestResultsPage",
    "MediumScanResult",
    "BackgroundScanResultsPage",
    "InformationalExceptionsPage",
    "CommandTimeouts",
    "CommandDescriptor",
    "SupportedOperationCodes",
    "CommandSupport",
    "OneCommandSupport",
    "PrReadKeys",
    "Reservation",
    "PrReadReservation",
    "PrReportCapabilities",
    "TransportId",
    "FullStatusDescriptor",
    "PrFullStatus",
    "RequestSenseData",
    "ProvisioningStatus",
    "LbaStatusDescriptor",
    "LbaStatus",
    "AccessState",
    "TargetPortGroup",
    "TargetPortGroups",
    "ZoneType",
    "ZoneCondition",
    "Zone",
    "ReportZonesData",
    "SupportedTaskManagementFunctions",
]



def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    if name == "RESPONSE_CLASSES":
        value: Any = tuple(__getattr__(n) for n in _RESPONSE_CLASS_NAMES)
    else:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module 'sgpy.responses' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"sgpy.responses.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names

    from sgpy.responses.capacity import (  # noqa: F401
        ReadCapacity10Data,
        ReadCapacity16Data,
    )
    from sgpy.responses.designators import (  # noqa: F401
        Association,
        CodeSet,
        Designator,
        DesignatorType,
        Eui64Designator,
        LogicalUnitGroupDesignator,
        Md5Designator,
        NaaDesignator,
        RelativeTargetPortDesignator,
        ScsiNameStringDesignator,
        T10VendorIdDesignator,
        TargetPortGroupDesignator,
        UuidDesignator,
    )
    from sgpy.responses.inquiry import (  # noqa: F401
        StandardInquiryData,
    )
    from sgpy.responses.log import (  # noqa: F401
        BackgroundScanResultsPage,
        ErrorCounterPage,
        InformationalExceptionsPage,
        LogPage,
        LogParameter,
        MediumScanResult,
        ReadErrorCounterPage,
        SelfTestResult,
        SelfTestResultsPage,
        StartStopCycleCounterPage,
        SupportedLogPages,
        SupportedLogSubpages,
        TemperaturePage,
        VerifyErrorCounterPage,
        WriteErrorCounterPage,
        parse_log_page,
    )
    from sgpy.responses.luns import (  # noqa: F401
        AddressMethod,
        Lun,
        LunLevel,
        ReportLunsData,
    )
    from sgpy.responses.misc import (  # noqa: F401
        AccessState,
        LbaStatus,
        LbaStatusDescriptor,
        ProvisioningStatus,
        ReportZonesData,
        RequestSenseData,
        SupportedTaskManagementFunctions,
        TargetPortGroup,
        TargetPortGroups,
        Zone,
        ZoneCondition,
        ZoneType,
    )
    from sgpy.responses.mode import (  # noqa: F401
        CachingPage,
        ControlExtensionPage,
        ControlPage,
        DisconnectReconnectPage,
        InformationalExceptionsControlPage,
        LongBlockDescriptor,
        ModePage,
        ModeParameters,
        PowerConditionPage,
        ReadWriteErrorRecoveryPage,
        ShortBlockDescriptor,
        TypedModePage,
        parse_mode_page,
        parse_mode_parameters,
    )
    from sgpy.responses.opcodes import (  # noqa: F401
        CommandDescriptor,
        CommandSupport,
        CommandTimeouts,
        OneCommandSupport,
        SupportedOperationCodes,
    )
    from sgpy.responses.pr import (  # noqa: F401
        FullStatusDescriptor,
        PrFullStatus,
        PrReadKeys,
        PrReadReservation,
        PrReportCapabilities,
        Reservation,
        TransportId,
    )
    from sgpy.responses.vpd import (  # noqa: F401
        AtaInformation,
        BlockDeviceCharacteristics,
        BlockLimits,
        DeviceIdentification,
        ExtendedInquiryData,
        LogicalBlockProvisioning,
        PowerCondition,
        RawVpdPage,
        SupportedVpdPages,
        UnitSerialNumber,
        VpdPage,
        ZonedBlockDeviceCharacteristics,
        parse_vpd,
    )
