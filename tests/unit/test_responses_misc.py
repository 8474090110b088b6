"""REPORT SUPPORTED OPERATION CODES, PERSISTENT RESERVE IN, GET LBA STATUS,
REPORT TARGET PORT GROUPS, REPORT ZONES, task management functions, REQUEST SENSE."""

from __future__ import annotations

from typing import Optional

import pytest

from sgpy.constants import PersistentReservationType, ProtocolIdentifier, SenseKey
from sgpy.errors import MalformedResponse
from sgpy.responses import (
    AccessState,
    CommandSupport,
    CommandTimeouts,
    LbaStatus,
    OneCommandSupport,
    PrFullStatus,
    PrReadKeys,
    PrReadReservation,
    PrReportCapabilities,
    ProvisioningStatus,
    ReportZonesData,
    RequestSenseData,
    SupportedOperationCodes,
    SupportedTaskManagementFunctions,
    TargetPortGroups,
    ZoneCondition,
    ZoneType,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def with_len(body: bytes, size: int = 4) -> bytes:
    return len(body).to_bytes(size, "big") + body


# ------------------------------------------------------ supported opcodes

TIMEOUTS = h("000a 00 07 0000001e 0000003c")


def test_all_commands() -> None:
    body = (
        h("00 00 0000 00 00 0006")  # TEST UNIT READY
        + h("9e 00 0010 00 03 0010") + TIMEOUTS  # READ CAPACITY(16), SERVACTV + CTDP
        + h("28 00 0000 00 02 000a") + TIMEOUTS
    )
    d = SupportedOperationCodes.from_bytes(with_len(body))
    tur, rc16, read10 = d.commands
    assert (tur.opcode, tur.service_action, tur.cdb_length, tur.ctdp, tur.timeouts) == (0, None, 6, False, None)
    assert (rc16.opcode, rc16.service_action, rc16.cdb_length) == (0x9E, 0x10, 16)
    assert rc16.timeouts == CommandTimeouts(7, 30, 60)
    assert read10.service_action is None and read10.ctdp
    assert d.find(0x9E, 0x10) is rc16 and d.find(0x9E) is None
    assert not d.truncated and d.wanted_length == 4 + len(body)


def test_all_commands_truncated() -> None:
    buf = with_len(h("00 00 0000 00 00 0006") + h("28 00 0000 00 02 000a") + TIMEOUTS)
    d = SupportedOperationCodes.from_bytes(buf[:20])
    assert d.truncated and len(d.commands) == 1
    assert SupportedOperationCodes.required_length(buf[:4]) == len(buf)


def test_all_commands_malformed() -> None:
    with pytest.raises(MalformedResponse):
        SupportedOperationCodes.from_bytes(with_len(h("00 00 0000 00 00 00")))
    with pytest.raises(MalformedResponse):
        SupportedOperationCodes.from_bytes(with_len(h("28 00 0000 00 02 000a") + h("0002 00 00 00000000 00000000")))


def test_one_command() -> None:
    usage = h("28 fa ff ff ff ff 1f ff ff 07")
    buf = h("00 83 000a") + usage + TIMEOUTS
    d = OneCommandSupport.from_bytes(buf)
    assert d.support is CommandSupport.SUPPORTED and d.supported and d.ctdp
    assert d.cdb_usage == usage and d.timeouts == CommandTimeouts(7, 30, 60)
    assert d.wanted_length == len(buf) and not d.truncated
    assert OneCommandSupport.required_length(buf[:4]) == len(buf)


def test_one_command_not_supported_and_truncated() -> None:
    d = OneCommandSupport.from_bytes(h("00 01 0000"))
    assert d.support is CommandSupport.NOT_SUPPORTED and not d.supported and d.cdb_usage == b""
    cut = OneCommandSupport.from_bytes(h("00 83 000a 28 fa"))
    assert cut.truncated and cut.timeouts is None and cut.wanted_length == 26


# ------------------------------------------------------ PERSISTENT RESERVE IN


def test_read_keys() -> None:
    buf = h("00000005") + with_len(h("0000000000000abc 123456789abcdef0"))
    d = PrReadKeys.from_bytes(buf)
    assert d.prgeneration == 5 and d.keys == (0xABC, 0x123456789ABCDEF0)
    cut = PrReadKeys.from_bytes(buf[:20])
    assert cut.truncated and cut.keys == (0xABC,) and cut.wanted_length == 24
    assert PrReadKeys.required_length(buf[:8]) == 24 and PrReadKeys.required_length(buf[:7]) is None
    with pytest.raises(MalformedResponse):
        PrReadKeys.from_bytes(h("00000005 00000004 00000000"))


def test_read_reservation() -> None:
    d = PrReadReservation.from_bytes(h("00000007") + with_len(h("0000000000000abc 00000000 00 05 0000")))
    assert d.prgeneration == 7
    assert d.reservation.key == 0xABC and d.reservation.scope == 0
    assert d.reservation.type is PersistentReservationType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY
    none = PrReadReservation.from_bytes(h("00000007 00000000"))
    assert none.reservation is None and not none.truncated


def test_report_capabilities() -> None:
    d = PrReportCapabilities.from_bytes(h("0008 9d 91 ea 01 0000"))
    assert (d.rlr_c, d.crh, d.sip_c, d.atp_c, d.ptpl_c) == (True, True, True, True, True)
    assert (d.tmv, d.allow_commands, d.ptpl_a) == (True, 1, True)
    assert (d.wr_ex_ar, d.ex_ac_ro, d.wr_ex_ro, d.ex_ac, d.wr_ex, d.ex_ac_ar) == (True,) * 6
    assert d.wanted_length == 8 and not d.truncated


def test_full_status() -> None:
    fc = h("00 000000 00000000") + h("2100001b32a0b1c2") + bytes(8)
    iscsi_name = b"iqn.1994-05.com.redhat:host1\0\0\0\0"
    iscsi = h("05 00") + len(iscsi_name).to_bytes(2, "big") + iscsi_name
    sas = h("06 000000") + h("5000c50012345678") + bytes(12)
    d1 = h("000000000000abcd 00000000 03 01 00000000 0001") + with_len(fc)
    d2 = h("000000000000abce 00000000 00 00 00000000 0002") + with_len(iscsi)
    d3 = h("000000000000abcf 00000000 00 00 00000000 0003") + with_len(sas)
    buf = h("00000009") + with_len(d1 + d2 + d3)
    d = PrFullStatus.from_bytes(buf)
    a, b, c = d.descriptors
    assert (a.key, a.all_tg_pt, a.r_holder, a.type, a.relative_target_port) == (
        0xABCD, True, True, PersistentReservationType.WRITE_EXCLUSIVE, 1)
    assert a.transport_id.protocol_identifier is ProtocolIdentifier.FCP and a.transport_id.name == "0x2100001b32a0b1c2"
    assert b.transport_id.protocol_identifier is ProtocolIdentifier.ISCSI
    assert str(b.transport_id) == "iqn.1994-05.com.redhat:host1"
    assert c.transport_id.name == "0x5000c50012345678"
    cut = PrFullStatus.from_bytes(buf[: 8 + len(d1) + 10])
    assert cut.truncated and len(cut.descriptors) == 1
    with pytest.raises(MalformedResponse):
        PrFullStatus.from_bytes(h("00000009") + with_len(d1[:-1]))


# ------------------------------------------------------------ GET LBA STATUS


def test_lba_status() -> None:
    body = h("00000000") + h("0000000000000000 00000100 00 00 0000") + h("0000000000000100 00000f00 01 00 0000")
    d = LbaStatus.from_bytes(with_len(body))
    a, b = d.descriptors
    assert (a.lba, a.number_of_blocks, a.provisioning_status) == (0, 0x100, ProvisioningStatus.MAPPED_OR_UNKNOWN)
    assert (b.lba, b.number_of_blocks, b.provisioning_status) == (0x100, 0xF00, ProvisioningStatus.DEALLOCATED)
    cut = LbaStatus.from_bytes(with_len(body)[:30])
    assert cut.truncated and len(cut.descriptors) == 1
    with pytest.raises(MalformedResponse):
        LbaStatus.from_bytes(with_len(h("00000000 0000")))


@pytest.mark.parametrize(
    ("code", "name"),
    [(0, "MAPPED_OR_UNKNOWN"), (1, "DEALLOCATED"), (2, "ANCHORED"), (3, "MAPPED"), (4, "UNKNOWN")],
)
def test_lba_status_provisioning_status_names(code: int, name: str) -> None:
    # SBC-4 5.8.2 (r12 on): 0h mapped or unknown, 1h deallocated, 2h anchored,
    # 3h mapped, 4h unknown; 0h is the only value an SBC-3 device returns for
    # a mapped extent, so it must not claim the extent is known to be mapped.
    body = h("00000000") + h("0000000000000000 00000100") + bytes([code]) + bytes(3)
    (d,) = LbaStatus.from_bytes(with_len(body)).descriptors
    assert d.provisioning_status is ProvisioningStatus[name]
    assert int(d.provisioning_status) == code


@pytest.mark.parametrize("code", range(5, 16))
def test_lba_status_reserved_provisioning_status_stays_an_int(code: int) -> None:
    body = h("00000000") + h("0000000000000000 00000100") + bytes([code]) + bytes(3)
    (d,) = LbaStatus.from_bytes(with_len(body)).descriptors
    assert d.provisioning_status == code and not isinstance(d.provisioning_status, ProvisioningStatus)


# -------------------------------------------------- REPORT TARGET PORT GROUPS


GROUP1 = h("80 8f 0001 00 02 00 02 0000 0001 0000 0002")
GROUP2 = h("01 0f 0002 00 00 00 01 0000 0003")


def test_target_port_groups_length_only() -> None:
    d = TargetPortGroups.from_bytes(with_len(GROUP1 + GROUP2))
    assert not d.extended and d.implicit_transition_time is None
    g1, g2 = d.groups
    assert g1.pref and g1.asymmetric_access_state is AccessState.ACTIVE_OPTIMIZED
    assert g1.t_sup and g1.ao_sup and g1.an_sup and g1.s_sup and g1.u_sup and not g1.o_sup and not g1.lbd_sup
    assert g1.target_port_group == 1 and g1.status_code == 2 and g1.relative_target_ports == (1, 2)
    assert g2.asymmetric_access_state is AccessState.ACTIVE_NON_OPTIMIZED and g2.relative_target_ports == (3,)


def test_target_port_groups_extended() -> None:
    d = TargetPortGroups.from_bytes(with_len(h("10 3c 0000") + GROUP2))
    assert d.extended and d.implicit_transition_time == 60 and len(d.groups) == 1
    cut = TargetPortGroups.from_bytes(with_len(GROUP1 + GROUP2)[:18])
    assert cut.truncated and cut.groups == ()


# ------------------------------------------------------------- REPORT ZONES


def zone(ztype: int, cond: int, start: int, length: int, wp: int, flags: int = 0) -> bytes:
    """Zone descriptor, ZBC-2 table 6."""
    return (bytes([ztype, cond << 4 | flags]) + bytes(6) + length.to_bytes(8, "big") + start.to_bytes(8, "big")
            + wp.to_bytes(8, "big") + bytes(32))


def test_report_zones() -> None:
    zones = zone(1, 0, 0, 0x80000, 0xFFFFFFFFFFFFFFFF) + zone(2, 1, 0x80000, 0x80000, 0x80000, flags=1)
    header = len(zones).to_bytes(4, "big") + h("01 000000") + (0xFFFFF).to_bytes(8, "big") + bytes(48)
    d = ReportZonesData.from_bytes(header + zones)
    assert d.same == 1 and d.maximum_lba == 0xFFFFF and d.zone_list_length == 128
    a, b = d.zones
    assert a.zone_type is ZoneType.CONVENTIONAL and a.zone_condition is ZoneCondition.NOT_WRITE_POINTER
    assert b.zone_type is ZoneType.SEQUENTIAL_WRITE_REQUIRED and b.zone_condition is ZoneCondition.EMPTY
    assert (b.zone_start_lba, b.zone_length, b.write_pointer_lba, b.reset, b.non_seq) == (
        0x80000, 0x80000, 0x80000, True, False)
    cut = ReportZonesData.from_bytes((header + zones)[:130])
    assert cut.truncated and len(cut.zones) == 1 and cut.wanted_length == 192
    with pytest.raises(MalformedResponse):
        ReportZonesData.from_bytes(h("00000010") + bytes(60))


@pytest.mark.parametrize("same, words", [(0, "may differ"), (1, "type and length of the first"),
                                         (2, "but for the last zone"), (3, "zone types may differ"),
                                         (4, None), (0xF, None)])
def test_report_zones_same_meaning(same: int, words: Optional[str]) -> None:
    header = h("00000000") + bytes([same]) + bytes(3) + (0xFFFF).to_bytes(8, "big") + bytes(48)
    d = ReportZonesData.from_bytes(header)
    assert d.same == same
    assert d.same_meaning is None if words is None else words in (d.same_meaning or "")
    assert ReportZonesData.from_bytes(header[:4]).same_meaning is None  # the header cut before SAME


# ---------------------------------------------- task management functions


def test_task_management_functions() -> None:
    d = SupportedTaskManagementFunctions.from_bytes(h("ff 07 00 00"))
    assert d.ats and d.atss and d.cacas and d.ctss and d.lurs and d.qts and d.trs and d.wakes
    assert d.qaes and d.qtss and d.itnrs and d.wanted_length == 4
    ext = SupportedTaskManagementFunctions.from_bytes(h("c8 01 00 0c 01 00 cd 07 00000064 0000000a"))
    assert ext.tmftmov and ext.atts and ext.atsts and ext.lurts and ext.wakets and ext.qaets and ext.itnrts
    assert (ext.tmf_long_timeout, ext.tmf_short_timeout) == (100, 10)
    assert SupportedTaskManagementFunctions.from_bytes(h("c8 01 00 0c")).truncated


# ------------------------------------------------------------ REQUEST SENSE


def test_request_sense() -> None:
    d = RequestSenseData.from_bytes(h("70 00 02 00000000 0a 00000000 04 02 00 000000"))
    assert d.sense_key is SenseKey.NOT_READY and (d.asc, d.ascq) == (4, 2)
    assert not d.truncated and d.wanted_length == 18


# ----------------------------------------------- numbers cut by a short answer


@pytest.mark.parametrize("size", range(9, 16))
def test_report_zones_cut_maximum_lba_is_none(size: int) -> None:
    full = h("00000000 05 000000 00000000003fffff") + bytes(48)
    assert ReportZonesData.from_bytes(full).maximum_lba == 0x3FFFFF
    cut = ReportZonesData.from_bytes(full[:size])
    assert cut.truncated and cut.same == 5 and cut.maximum_lba is None


def test_report_zones_header_cut_before_same() -> None:
    cut = ReportZonesData.from_bytes(h("00000000"))
    assert cut.same is None and cut.maximum_lba is None and cut.zones == ()


def test_one_command_cut_usage_map_is_none() -> None:
    full = h("00 03 000a") + h("28 ff ffffffff 1f ffff 00")
    assert OneCommandSupport.from_bytes(full).cdb_usage == full[4:]
    assert OneCommandSupport.from_bytes(full[:9]).cdb_usage is None


def test_target_port_groups_format_unknown_before_byte_4() -> None:
    cut = TargetPortGroups.from_bytes(h("00000010"))
    assert cut.truncated and cut.extended is None and cut.implicit_transition_time is None
