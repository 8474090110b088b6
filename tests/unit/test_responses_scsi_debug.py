"""Answers captured from the kernel's scsi_debug target (tools/capture_answers.py).

Each JSON file holds, for one scsi_debug configuration, the completion of a
fixed list of commands: status bytes, sense bytes and the data returned.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest

from sgpy import errors
from sgpy import responses as r
from sgpy.constants import PeripheralDeviceType, SenseKey
from sgpy.responses import NaaDesignator, ScsiNameStringDesignator, T10VendorIdDesignator
from sgpy.status import classify

DATA = Path(__file__).parent / "data" / "scsi_debug"
CONFIGS = sorted(p.stem for p in DATA.glob("*.json"))


@functools.lru_cache(maxsize=None)
def answers(config: str) -> Dict[str, Dict[str, Any]]:
    return json.loads((DATA / f"{config}.json").read_text())["answers"]


def data(config: str, name: str) -> bytes:
    return bytes.fromhex(answers(config)[name]["data"])


def completion(config: str, name: str):
    a = answers(config)[name]
    return classify(status=a["status"], host_status=a["host_status"], driver_status=a["driver_status"],
                    sense=bytes.fromhex(a["sense"]), resid=a["resid"])


def _parser(name: str) -> Optional[Callable[[bytes], Any]]:
    """The parser for a captured command, by its name in tools/capture_answers.py."""
    if name.startswith("inquiry"):
        return r.StandardInquiryData.from_bytes
    if name.startswith("vpd_"):
        return r.parse_vpd
    if name.startswith("mode_sense_6"):
        return functools.partial(r.parse_mode_parameters, ten=False)
    if name.startswith("mode_sense_10"):
        return functools.partial(r.parse_mode_parameters, ten=True)
    if name.startswith("log_"):
        return r.parse_log_page
    if name.startswith("opcodes_all"):
        return r.SupportedOperationCodes.from_bytes
    return {
        "read_capacity_10": r.ReadCapacity10Data.from_bytes,
        "read_capacity_16": r.ReadCapacity16Data.from_bytes,
        "report_luns": r.ReportLunsData.from_bytes,
        "report_luns_16": r.ReportLunsData.from_bytes,
        "opcodes_read10": r.OneCommandSupport.from_bytes,
        "tmf": r.SupportedTaskManagementFunctions.from_bytes,
        "rtpg": r.TargetPortGroups.from_bytes,
        "rtpg_extended": r.TargetPortGroups.from_bytes,
        "get_lba_status": r.LbaStatus.from_bytes,
        "report_zones": r.ReportZonesData.from_bytes,
        "request_sense": r.RequestSenseData.from_bytes,
        "pr_read_keys": r.PrReadKeys.from_bytes,
    }.get(name)


def _all_answers():
    for config in CONFIGS:
        for name in sorted(answers(config)):
            yield pytest.param(config, name, id=f"{config}-{name}")


def test_captures_present() -> None:
    assert {"default", "dsense", "zbc", "lbp_4k", "physblk", "luns", "medium_error"} <= set(CONFIGS)


@pytest.mark.parametrize(("config", "name"), list(_all_answers()))
def test_every_answer_parses(config: str, name: str) -> None:
    c = completion(config, name)
    if not c.ok:
        assert isinstance(c.error, errors.TaskFailed) and str(c.error)
        return
    parse = _parser(name)
    if parse is None:
        return
    value = parse(data(config, name))
    str(value), repr(value)
    if value.truncated:
        # cut short on purpose, or longer than the capture's allocation length
        # (page 89h is 572 bytes; REPORT ZONES lists every zone)
        assert name.endswith(("_short", "_16")) or name in {"inquiry_36", "vpd_89", "report_zones"}
        assert value.wanted_length > len(data(config, name))


def test_standard_inquiry() -> None:
    d = r.StandardInquiryData.from_bytes(data("default", "inquiry"))
    assert (d.vendor, d.product) == ("Linux", "scsi_debug")
    assert d.peripheral_device_type is PeripheralDeviceType.DISK and d.response_data_format == 2
    assert d.version >= 5 and d.cmdque and d.version_descriptors
    short = r.StandardInquiryData.from_bytes(data("default", "inquiry_36"))
    assert short.truncated and short.wanted_length == d.wanted_length and short.product == "scsi_debug"
    assert r.StandardInquiryData.from_bytes(data("zbc", "inquiry")).peripheral_device_type is PeripheralDeviceType.ZBC


def test_device_identification() -> None:
    page = r.parse_vpd(data("default", "vpd_83"))
    kinds = [type(d) for d in page.designators]
    assert T10VendorIdDesignator in kinds and NaaDesignator in kinds and ScsiNameStringDesignator in kinds
    assert page.naa is not None and page.naa.naa in (3, 5, 6)
    short = r.parse_vpd(data("default", "vpd_83_short"))
    assert short.truncated and short.wanted_length == page.wanted_length
    assert r.DeviceIdentification.required_length(data("default", "vpd_83_short")) == page.wanted_length


@pytest.mark.parametrize(
    ("config", "blocks", "block_length", "lbppbe", "lowest_aligned", "lbpme", "lbprz"),
    [
        ("default", 64 << 11, 512, 0, 0, False, False),
        ("physblk", 32 << 11, 512, 3, 7, False, False),
        ("lbp_4k", (64 << 20) // 4096, 4096, 0, 0, True, True),
    ],
)
def test_capacity(config, blocks, block_length, lbppbe, lowest_aligned, lbpme, lbprz) -> None:
    rc10 = r.ReadCapacity10Data.from_bytes(data(config, "read_capacity_10"))
    rc16 = r.ReadCapacity16Data.from_bytes(data(config, "read_capacity_16"))
    assert rc10.number_of_blocks == rc16.number_of_blocks == blocks
    assert rc10.block_length == rc16.block_length == block_length
    assert (rc16.lbppbe, rc16.lowest_aligned_lba, rc16.lbpme, rc16.lbprz) == (lbppbe, lowest_aligned, lbpme, lbprz)


def test_report_luns() -> None:
    assert r.ReportLunsData.from_bytes(data("default", "report_luns")).linux_luns == (0,)
    assert r.ReportLunsData.from_bytes(data("luns", "report_luns")).linux_luns == (0, 1, 2, 3)
    cut = r.ReportLunsData.from_bytes(data("luns", "report_luns_16"))
    assert cut.truncated and cut.linux_luns == (0,) and cut.wanted_length == 40


def _select_form(buf: bytes, ten: bool) -> bytes:
    m = r.parse_mode_parameters(buf, ten=ten)
    out = bytearray(buf)
    out[0] = 0
    if ten:
        out[1] = 0
    pos = (8 + int.from_bytes(buf[6:8], "big")) if ten else 4 + buf[3]
    for page in m.pages:
        out[pos] &= 0x7F
        pos += len(page.to_bytes())
    return bytes(out)


@pytest.mark.parametrize("config", ["default", "lbp_4k", "zbc"])
@pytest.mark.parametrize(("name", "ten"), [("mode_sense_6", False), ("mode_sense_10", True),
                                           ("mode_sense_10_caching", True), ("mode_sense_10_control", True)])
def test_mode_round_trip(config: str, name: str, ten: bool) -> None:
    buf = data(config, name)
    m = r.parse_mode_parameters(buf, ten=ten)
    assert not m.truncated
    assert m.to_bytes() == _select_form(buf, ten)


def test_mode_pages() -> None:
    m = r.parse_mode_parameters(data("default", "mode_sense_10"), ten=True)
    assert m.longlba and m.block_descriptors[0].block_length == 512
    assert isinstance(m.page(0x08), r.CachingPage) and isinstance(m.page(0x0A), r.ControlPage)
    assert isinstance(m.page(0x1C), r.InformationalExceptionsControlPage)
    assert not m.page(0x0A).d_sense
    assert r.parse_mode_parameters(data("dsense", "mode_sense_10_control"), ten=True).page(0x0A).d_sense
    short = r.parse_mode_parameters(data("default", "mode_sense_6_short"), ten=False)
    assert short.truncated and short.wanted_length > 16


def test_log_pages() -> None:
    supported = r.parse_log_page(data("default", "log_00_00"))
    assert isinstance(supported, r.SupportedLogPages) and {0x0D, 0x2F} <= set(supported.pages)
    sub = r.parse_log_page(data("default", "log_00_ff"))
    assert isinstance(sub, r.SupportedLogSubpages) and (0x0D, 0x00) in sub.pages
    temp = r.parse_log_page(data("default", "log_0d_00"))
    assert isinstance(temp, r.TemperaturePage) and temp.temperature is not None
    ie = r.parse_log_page(data("default", "log_2f_00"))
    assert isinstance(ie, r.InformationalExceptionsPage) and (ie.asc, ie.ascq) == (0, 0)


def test_supported_operation_codes() -> None:
    every = r.SupportedOperationCodes.from_bytes(data("default", "opcodes_all"))
    read10 = every.find(0x28)
    assert read10 is not None and read10.cdb_length == 10 and read10.timeouts is not None
    assert every.find(0x9E, 0x10) is not None  # READ CAPACITY(16)
    short = r.SupportedOperationCodes.from_bytes(data("default", "opcodes_all_short"))
    assert short.truncated and short.wanted_length < every.wanted_length
    one = r.OneCommandSupport.from_bytes(data("default", "opcodes_read10"))
    assert one.supported and one.cdb_usage[0] == 0x28 and len(one.cdb_usage) == 10


def test_other_answers() -> None:
    tmf = r.SupportedTaskManagementFunctions.from_bytes(data("default", "tmf"))
    assert tmf.ats and tmf.lurs
    tpg = r.TargetPortGroups.from_bytes(data("default", "rtpg"))
    assert len(tpg.groups) == 2 and tpg.groups[0].relative_target_ports == (1,)
    lba = r.LbaStatus.from_bytes(data("lbp_4k", "get_lba_status"))
    assert lba.descriptors[0].provisioning_status is r.ProvisioningStatus.DEALLOCATED
    sense = r.RequestSenseData.from_bytes(data("default", "request_sense"))
    assert sense.sense_key is SenseKey.NO_SENSE


def test_zoned() -> None:
    zones = r.ReportZonesData.from_bytes(data("zbc", "report_zones"))
    assert [z.zone_type for z in zones.zones[:3]] == [r.ZoneType.CONVENTIONAL, r.ZoneType.CONVENTIONAL,
                                                      r.ZoneType.SEQUENTIAL_WRITE_REQUIRED]
    assert zones.zones[2].zone_condition is r.ZoneCondition.EMPTY
    assert zones.zones[2].write_pointer_lba == zones.zones[2].zone_start_lba
    assert zones.truncated and zones.wanted_length == 64 + 64 * 32  # 128 MiB in 4 MiB zones
    page = r.parse_vpd(data("zbc", "vpd_b6"))
    assert isinstance(page, r.ZonedBlockDeviceCharacteristics) and page.maximum_open_sequential_write_required_zones


@pytest.mark.parametrize(
    ("config", "name", "cls", "asc", "ascq", "descriptor_format"),
    [
        ("default", "read10_past_end", errors.IllegalRequest, 0x21, 0x00, False),
        ("dsense", "read10_past_end", errors.IllegalRequest, 0x21, 0x00, True),
        ("default", "bad_opcode", errors.IllegalRequest, 0x20, 0x00, False),
        ("dsense", "bad_opcode", errors.IllegalRequest, 0x20, 0x00, True),
        ("default", "inquiry_bad_field", errors.IllegalRequest, 0x24, 0x00, False),
        ("medium_error", "read10_lba100", errors.MediumError, 0x11, 0x00, False),
        ("default", "pr_read_keys", errors.IllegalRequest, 0x20, 0x00, False),
    ],
)
def test_failures(config, name, cls, asc, ascq, descriptor_format) -> None:
    c = completion(config, name)
    assert type(c.error) is cls
    assert (c.error.asc, c.error.ascq) == (asc, ascq)
    assert c.sense.descriptor_format is descriptor_format


def test_field_pointer_and_information() -> None:
    e = completion("default", "inquiry_bad_field").error
    assert str(e).endswith("field pointer: CDB byte 1 bit 1")
    m = completion("medium_error", "read10_lba100").error
    assert m.sense.information is not None and m.sense.valid
