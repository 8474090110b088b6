"""Standard INQUIRY data and VPD pages, from byte strings laid out per SPC-5/SBC-4/SAT-4/ZBC-2."""

from __future__ import annotations

import uuid

import pytest

from sgpy.constants import PeripheralDeviceType, ProtocolIdentifier
from sgpy.errors import MalformedResponse
from sgpy.responses import (
    AtaInformation,
    Association,
    BlockDeviceCharacteristics,
    BlockLimits,
    CodeSet,
    Designator,
    DeviceIdentification,
    Eui64Designator,
    ExtendedInquiryData,
    LogicalBlockProvisioning,
    LogicalUnitGroupDesignator,
    Md5Designator,
    NaaDesignator,
    PowerCondition,
    RawVpdPage,
    RelativeTargetPortDesignator,
    ScsiNameStringDesignator,
    StandardInquiryData,
    SupportedVpdPages,
    T10VendorIdDesignator,
    TargetPortGroupDesignator,
    UnitSerialNumber,
    UuidDesignator,
    ZonedBlockDeviceCharacteristics,
    parse_vpd,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


def vpd(code: int, body: bytes, pdt: int = 0) -> bytes:
    """VPD header, SPC-5 table 476."""
    return bytes([pdt, code]) + len(body).to_bytes(2, "big") + body


# ------------------------------------------------------------ standard INQUIRY

# scsi_debug-like disk: version 7 (SPC-5), HiSup, RDF 2, additional length 5Ah,
# TPGS 0, 3PC, CMDQUE, then vendor/product/revision and version descriptors.
INQ = (
    h("00 00 07 12 5b 08 00 02")
    + b"Linux   "
    + b"scsi_debug      "
    + b"0191"
    + bytes(20)
    + h("00 00")
    + h("00c0 0600 0460 0000 0000 0000 0000 0000")
    + bytes(22)
)


def test_standard_inquiry_fields() -> None:
    d = StandardInquiryData.from_bytes(INQ)
    assert len(INQ) == 96
    assert d.peripheral_qualifier == 0
    assert d.peripheral_device_type is PeripheralDeviceType.DISK
    assert (d.rmb, d.version, d.normaca, d.hisup, d.response_data_format) == (False, 7, False, True, 2)
    assert (d.sccs, d.acc, d.tpgs, d.threepc, d.protect) == (False, False, 0, True, False)
    assert (d.encserv, d.multip, d.cmdque) == (False, False, True)
    assert (d.vendor, d.product, d.revision) == ("Linux", "scsi_debug", "0191")
    assert d.version_descriptors == (0x00C0, 0x0600, 0x0460)
    assert (d.truncated, d.wanted_length) == (False, 96)
    assert str(d) == "Linux scsi_debug 0191"


@pytest.mark.parametrize(
    ("byte", "value", "field", "expected"),
    [
        (0, 0x25, "peripheral_device_type", PeripheralDeviceType.CD_DVD),
        (0, 0x25, "peripheral_qualifier", 1),
        (0, 0x0B, "peripheral_device_type", 0x0B),
        (1, 0x80, "rmb", True),
        (1, 0x40, "lu_cong", True),
        (3, 0x20, "normaca", True),
        (5, 0x80, "sccs", True),
        (5, 0x40, "acc", True),
        (5, 0x30, "tpgs", 3),
        (5, 0x01, "protect", True),
        (6, 0x40, "encserv", True),
        (6, 0x10, "multip", True),
        (7, 0x02, "cmdque", True),
    ],
)
def test_standard_inquiry_bits(byte: int, value: int, field: str, expected) -> None:
    buf = bytearray(INQ)
    buf[byte] = value
    assert getattr(StandardInquiryData.from_bytes(bytes(buf)), field) == expected


def test_standard_inquiry_truncated_at_36() -> None:
    d = StandardInquiryData.from_bytes(INQ[:36])
    assert d.truncated and d.wanted_length == 96
    assert d.product == "scsi_debug" and d.version_descriptors == ()
    assert StandardInquiryData.required_length(INQ[:5]) == 96
    assert StandardInquiryData.required_length(INQ[:4]) is None


def test_standard_inquiry_short_header() -> None:
    with pytest.raises(MalformedResponse):
        StandardInquiryData.from_bytes(INQ[:4])


def test_standard_inquiry_odd_strings() -> None:
    buf = bytearray(INQ)
    buf[8:16] = b"AB\xffC\0\0\0\0"
    assert StandardInquiryData.from_bytes(bytes(buf)).vendor == "AB\ufffdC"


# --------------------------------------------------------------------- VPD


def test_supported_pages() -> None:
    page = parse_vpd(vpd(0x00, h("00 80 83 86 89 b0 b1 b2")))
    assert isinstance(page, SupportedVpdPages)
    assert page.pages == (0x00, 0x80, 0x83, 0x86, 0x89, 0xB0, 0xB1, 0xB2)
    assert page.wanted_length == 12 and not page.truncated


def test_unit_serial_number() -> None:
    page = parse_vpd(vpd(0x80, b"   SN0123  "))
    assert isinstance(page, UnitSerialNumber) and page.serial == "SN0123"


def test_wrong_page_code() -> None:
    with pytest.raises(MalformedResponse):
        UnitSerialNumber.from_bytes(vpd(0x83, b""))


def test_unknown_page_is_raw() -> None:
    page = parse_vpd(vpd(0xC0, h("01 02 03"), pdt=0x0D))
    assert page == RawVpdPage(peripheral_device_type=PeripheralDeviceType.ENCLOSURE, wanted_length=7,
                              page_code=0xC0, data=h("01 02 03"))


def designator(code_set: int, assoc: int, dtype: int, data: bytes, proto: int = 0, piv: bool = False) -> bytes:
    """Designation descriptor, SPC-5 table 487."""
    return bytes([proto << 4 | code_set, (0x80 if piv else 0) | assoc << 4 | dtype, 0, len(data)]) + data


DESIGNATORS = [
    (designator(2, 0, 1, b"LIO-ORG " + b"disk01"), T10VendorIdDesignator, dict(vendor="LIO-ORG",
                                                                               vendor_specific=b"disk01")),
    (designator(1, 0, 2, h("0011223344556677")), Eui64Designator,
     dict(company_id=0x001122, vendor_specific_extension_id=0x3344556677, identifier_extension=None)),
    (designator(1, 0, 2, h("0011223344556677 89abcdef")), Eui64Designator,
     dict(company_id=0x001122, directory_id=0x89ABCDEF)),
    (designator(1, 0, 2, h("0102030405060708 0011223344556677")), Eui64Designator,
     dict(identifier_extension=0x0102030405060708, company_id=0x001122, vendor_specific_extension_id=0x3344556677)),
    (designator(1, 0, 3, h("2abc 001122 334455")), NaaDesignator,
     dict(naa=2, vendor_specific_id_a=0xABC, company_id=0x001122, vendor_specific_id=0x334455)),
    (designator(1, 0, 3, h("3123456789abcdef")), NaaDesignator, dict(naa=3, locally_assigned=0x123456789ABCDEF)),
    (designator(1, 0, 3, h("5000c50012345678")), NaaDesignator,
     dict(naa=5, company_id=0x000C50, vendor_specific_id=0x012345678, vendor_specific_id_extension=None)),
    (designator(1, 0, 3, h("6001405f1234abcd 0011223344556677")), NaaDesignator,
     dict(naa=6, company_id=0x001405, vendor_specific_id=0xF1234ABCD,
          vendor_specific_id_extension=0x0011223344556677)),
    (designator(1, 0, 3, h("1000")), NaaDesignator, dict(naa=1, company_id=None)),
    (designator(1, 1, 4, h("0000 0002"), proto=6, piv=True), RelativeTargetPortDesignator,
     dict(relative_port=2, association=Association.TARGET_PORT, protocol_identifier=ProtocolIdentifier.SAS)),
    (designator(1, 1, 5, h("0000 0101")), TargetPortGroupDesignator,
     dict(target_port_group=0x101, protocol_identifier=None)),
    (designator(1, 0, 6, h("0000 0007")), LogicalUnitGroupDesignator, dict(logical_unit_group=7)),
    (designator(1, 0, 7, bytes(range(16))), Md5Designator, dict(digest=bytes(range(16)))),
    (designator(3, 2, 8, b"iqn.2003-01.org.linux-iscsi:tgt\0"), ScsiNameStringDesignator,
     dict(name="iqn.2003-01.org.linux-iscsi:tgt", association=Association.TARGET_DEVICE, code_set=CodeSet.UTF8)),
    (designator(1, 0, 0xA, h("10 00") + uuid.UUID(int=0x1234).bytes), UuidDesignator,
     dict(uuid_type=1, uuid=uuid.UUID(int=0x1234))),
    (designator(2, 0, 0, b"vendor"), Designator, dict(designator_type=0, data=b"vendor")),
    (designator(1, 1, 9, h("0102"), proto=0xA, piv=True), Designator, dict(designator_type=9)),
    # a length that does not fit the type keeps the plain designator
    (designator(1, 0, 2, h("0011")), Designator, dict(data=h("0011"))),
]


@pytest.mark.parametrize(("raw", "cls", "fields"), DESIGNATORS)
def test_designators(raw: bytes, cls, fields: dict) -> None:
    page = parse_vpd(vpd(0x83, raw))
    assert isinstance(page, DeviceIdentification)
    (d,) = page.designators
    assert type(d) is cls
    for name, value in fields.items():
        assert getattr(d, name) == value, name
    assert str(d)


def test_device_identification_several() -> None:
    body = b"".join(raw for raw, _, _ in DESIGNATORS)
    page = DeviceIdentification.from_bytes(vpd(0x83, body))
    assert len(page.designators) == len(DESIGNATORS)
    assert page.naa is not None and page.naa.naa == 2
    assert all(d.association == Association.LOGICAL_UNIT for d in page.logical_unit)
    assert page.naa.id_string == "naa." + page.naa.data.hex()
    assert page.wwn == "naa.6001405f1234abcd0011223344556677"  # NAA IEEE Registered Extended: the best of them


def test_logical_unit_is_a_property_and_the_old_call_still_works() -> None:
    body = designator(1, 0, 3, h("5000c50012345678")) + designator(1, 1, 3, h("5000c50087654321"))
    page = DeviceIdentification.from_bytes(vpd(0x83, body))
    assert [d.data.hex() for d in page.logical_unit] == ["5000c50012345678"]
    assert [d.data.hex() for d in page.target_port] == ["5000c50087654321"]
    assert page.target_device == ()
    with pytest.warns(DeprecationWarning, match="property"):
        assert page.logical_unit() == page.logical_unit


T10 = designator(2, 0, 1, b"LIO-ORG disk01\x01")
NAA5 = designator(1, 0, 3, h("5000c50012345678"))
NAA6 = designator(1, 0, 3, h("6001405a1b2c3d4e5f60718293a4b5c6"))
EUI8 = designator(1, 0, 2, h("0011223344556677"))
EUI12 = designator(1, 0, 2, h("00112233445566778899aabb"))
NAME = designator(3, 0, 8, b"iqn.2026-11.org.example:disk1\0\0\0")
PORT_NAA = designator(1, 1, 3, h("6001405a1b2c3d4e5f60718293a4b5c7"))


@pytest.mark.parametrize(
    "body, wwn",
    [
        (b"", None),
        (T10, "t10.LIO-ORG disk01\\001"),
        (T10 + EUI8, "eui.0011223344556677"),
        (EUI8 + NAA5, "naa.5000c50012345678"),
        (NAA5 + EUI8, "naa.5000c50012345678"),
        (NAA5 + EUI12, "eui.00112233445566778899aabb"),
        (EUI12 + NAA6, "naa.6001405a1b2c3d4e5f60718293a4b5c6"),
        (NAA6 + NAME + T10, "iqn.2026-11.org.example:disk1"),
        (PORT_NAA + NAA5, "naa.5000c50012345678"),  # a target port's name is not the logical unit's
        (PORT_NAA, None),
        (designator(1, 0, 3, h("5000c50012345678")) + designator(1, 0, 3, h("5000c50087654321")),
         "naa.5000c50087654321"),  # of two as good, the later (as the kernel's scsi_vpd_lun_id)
    ],
)
def test_wwn_is_the_kernels_choice_of_logical_unit_name(body: bytes, wwn) -> None:
    page = DeviceIdentification.from_bytes(vpd(0x83, body))
    assert page.wwn == wwn


def test_device_identification_truncated_drops_last() -> None:
    body = designator(1, 0, 3, h("5000c50012345678")) + designator(2, 0, 1, b"LIO-ORG disk01")
    full = vpd(0x83, body)
    page = DeviceIdentification.from_bytes(full[:20])
    assert page.truncated and page.wanted_length == len(full)
    assert len(page.designators) == 1


def test_device_identification_overrun_is_malformed() -> None:
    bad = vpd(0x83, h("01 03 00 10 5000c50012345678"))
    with pytest.raises(MalformedResponse):
        DeviceIdentification.from_bytes(bad)


def test_extended_inquiry() -> None:
    body = bytearray(0x3C)
    body[0] = 0x40 | 0x08 | 0x07  # ACTIVATE_MICROCODE 1, SPT 1, GRD/APP/REF_CHK
    body[1] = 0x07  # HEADSUP ORDSUP SIMPSUP
    body[2] = 0x03  # NV_SUP V_SUP
    body[3] = 0x01  # LUICLR
    body[6:8] = (30).to_bytes(2, "big")
    body[9] = 252
    page = parse_vpd(vpd(0x86, bytes(body)))
    assert isinstance(page, ExtendedInquiryData)
    assert (page.activate_microcode, page.spt, page.grd_chk, page.app_chk, page.ref_chk) == (1, 1, True, True, True)
    assert (page.headsup, page.ordsup, page.simpsup, page.nv_sup, page.v_sup) == (True,) * 5
    assert page.luiclr and page.extended_self_test_completion_minutes == 30
    assert page.maximum_supported_sense_data_length == 252


def test_ata_information() -> None:
    identify = bytearray(512)
    identify[20:40] = b"1NSS23" + b"  " * 7  # serial, words 10-19, byte-swapped pairs
    identify[46:54] = b"1.02    "
    model = b"QEMU HARDDISK".ljust(40)
    identify[54:94] = b"".join(model[i + 1 : i + 2] + model[i : i + 1] for i in range(0, 40, 2))
    body = bytes(4) + b"linux   " + b"libata          " + b"1.00" + bytes(20) + h("ec 000000") + bytes(identify)
    page = parse_vpd(vpd(0x89, body))
    assert isinstance(page, AtaInformation)
    assert (page.sat_vendor, page.sat_product, page.sat_revision, page.command_code) == (
        "linux", "libata", "1.00", 0xEC)
    assert len(page.identify_data) == 512 and page.wanted_length == 572
    assert page.ata_serial == "N1SS32"
    assert page.ata_firmware == ".120"
    assert page.ata_model == "QEMU HARDDISK"


def test_power_condition_vpd() -> None:
    body = h("03 07 0064 00c8 012c 0190 01f4 0258")
    page = parse_vpd(vpd(0x8A, body))
    assert isinstance(page, PowerCondition)
    assert (page.standby_y, page.standby_z, page.idle_c, page.idle_b, page.idle_a) == (True,) * 5
    assert page.stopped_condition_recovery_time == 100 and page.idle_c_condition_recovery_time == 600


def test_block_limits() -> None:
    body = h(
        "01 01 0008 00000800 00000080 00000000 ffffffff 00000100 00000008 80000004"
        "0000000000400000 00000000 00000000 00000000 00000000 00000000"
    )
    page = parse_vpd(vpd(0xB0, body))
    assert isinstance(page, BlockLimits) and page.wanted_length == 64
    assert page.wsnz and page.maximum_compare_and_write_length == 1
    assert page.optimal_transfer_length_granularity == 8
    assert page.maximum_transfer_length == 0x800 and page.optimal_transfer_length == 0x80
    assert page.maximum_unmap_lba_count == 0xFFFFFFFF and page.maximum_unmap_block_descriptor_count == 0x100
    assert page.optimal_unmap_granularity == 8 and page.ugavalid and page.unmap_granularity_alignment == 4
    assert page.maximum_write_same_length == 0x400000


def test_block_limits_old_short_page() -> None:
    # An SBC-2 era page stops at byte 15: the fields after it are not
    # reported, None rather than a zero the device never sent.
    page = parse_vpd(vpd(0xB0, h("00 00 0001 00000400 00000000")))
    assert page.maximum_transfer_length == 0x400 and page.maximum_unmap_lba_count is None
    assert page.maximum_write_same_length is None
    assert not page.truncated


def test_block_device_characteristics() -> None:
    page = parse_vpd(vpd(0xB1, h("0001 00 02 12 000000") + bytes(52)))
    assert isinstance(page, BlockDeviceCharacteristics)
    assert page.non_rotating and page.nominal_form_factor == 2
    assert page.zoned == 1 and page.fuab


def test_logical_block_provisioning() -> None:
    group = designator(1, 0, 3, h("5000c50012345678"))
    page = parse_vpd(vpd(0xB2, h("08 d5 02 00") + group))
    assert isinstance(page, LogicalBlockProvisioning)
    assert (page.threshold_exponent, page.lbpu, page.lbpws, page.lbpws10) == (8, True, True, False)
    assert (page.lbprz, page.anc_sup, page.dp, page.provisioning_type) == (5, False, True, 2)
    assert isinstance(page.provisioning_group, NaaDesignator)


def test_zoned_characteristics() -> None:
    body = h("01 000000 00000080 00000008 ffffffff 00000001 0000000000080000") + bytes(24)
    page = parse_vpd(vpd(0xB6, body, pdt=0x14))
    assert isinstance(page, ZonedBlockDeviceCharacteristics)
    assert page.peripheral_device_type is PeripheralDeviceType.ZBC
    assert page.urswrz and page.optimal_open_sequential_write_preferred_zones == 0x80
    assert page.maximum_open_sequential_write_required_zones == 0xFFFFFFFF
    assert page.zone_alignment_method == 1 and page.zone_starting_lba_granularity == 0x80000


@pytest.mark.parametrize("code", [0x00, 0x80, 0x83, 0x86, 0x89, 0x8A, 0xB0, 0xB1, 0xB2, 0xB6, 0xC5])
def test_vpd_truncated_header_only(code: int) -> None:
    page = parse_vpd(bytes([0, code, 0x00, 0x3C]))
    assert page.truncated and page.wanted_length == 0x40
    assert type(page).required_length(bytes([0, code, 0x01, 0x00])) == 0x104
    assert type(page).required_length(bytes([0, code, 0x01])) is None


def test_vpd_too_short() -> None:
    with pytest.raises(MalformedResponse):
        parse_vpd(h("00 80 00"))


# ----------------------------------------------- numbers cut by a short answer
# A field whose bytes did not all arrive is None: the bytes present, padded
# with zeros, would make a different number that looks real.


def test_standard_inquiry_cut_version_descriptor_is_left_out() -> None:
    d = StandardInquiryData.from_bytes(INQ[:63])  # 58-61 whole, 62 the first half of the third
    assert d.truncated and d.version_descriptors == (0x00C0, 0x0600)


def test_standard_inquiry_cut_strings_are_none() -> None:
    d = StandardInquiryData.from_bytes(INQ[:20])
    assert d.vendor == "Linux" and d.product is None and d.revision is None and d.vendor_specific is None
    assert str(d) == "Linux"


def test_standard_inquiry_fields_past_additional_length_are_none() -> None:
    buf = bytearray(INQ[:36])
    buf[4] = 31  # a 36-byte answer, complete: bytes 36 on are not part of it
    d = StandardInquiryData.from_bytes(bytes(buf) + b"\xff" * 40)
    assert not d.truncated and d.revision == "0191"
    assert d.vendor_specific is None and d.clocking is None and d.ius is None and d.version_descriptors == ()


@pytest.mark.parametrize(
    ("code", "body", "size", "field"),
    [
        (0xB0, h("00 00 0001 00000400 00000800"), 14, "optimal_transfer_length"),
        (0xB0, h("00 00 0001 00000400 00000800") + bytes(20) + h("0102030405060708"), 40, "maximum_write_same_length"),
        (0xB1, h("3a98 00 02"), 5, "medium_rotation_rate"),
        (0xB6, h("01 000000 00000080 00000008 ffffffff 00000001 0000000000080000"), 30,
         "zone_starting_lba_granularity"),
        (0x86, h("00 00 00 00 00 00 01ff 00 20"), 11, "extended_self_test_completion_minutes"),
    ],
)
def test_vpd_cut_number_is_none(code: int, body: bytes, size: int, field: str) -> None:
    full = vpd(code, body)
    assert getattr(parse_vpd(full), field) not in (None, 0)
    cut = parse_vpd(full[:size])
    assert cut.truncated and getattr(cut, field) is None


def test_block_device_characteristics_cut_rotation_rate() -> None:
    cut = parse_vpd(vpd(0xB1, h("0001 00 02"))[:5])
    assert cut.medium_rotation_rate is None and cut.non_rotating is None


def test_ata_information_cut_identify_data() -> None:
    identify = bytearray(512)
    identify[54:58] = b"BADC"  # words 27-28, bytes swapped: "ABCD"
    full = vpd(0x89, bytes(56) + identify)
    assert AtaInformation.from_bytes(full).ata_model == "ABCD"
    cut = AtaInformation.from_bytes(full[:300])
    assert cut.identify_data is None and cut.ata_model is None and cut.command_code == 0


def test_unit_serial_number_cut_is_none() -> None:
    full = vpd(0x80, b"  SN123456")
    assert UnitSerialNumber.from_bytes(full).serial == "SN123456"
    assert UnitSerialNumber.from_bytes(full[:9]).serial is None


def test_raw_vpd_page_cut_data_is_none() -> None:
    full = vpd(0xC5, b"\x01\x02\x03")
    assert RawVpdPage.from_bytes(full).data == b"\x01\x02\x03"
    assert RawVpdPage.from_bytes(full[:6]).data is None


@pytest.mark.parametrize("version, standard", [(0x00, None), (0x02, None), (0x03, "SPC"), (0x04, "SPC-2"),
                                               (0x05, "SPC-3"), (0x06, "SPC-4"), (0x07, "SPC-5"), (0x08, None)])
def test_the_standard_the_version_claims(version: int, standard: object) -> None:
    buf = bytearray(INQ)
    buf[2] = version
    assert StandardInquiryData.from_bytes(bytes(buf)).standard == standard


@pytest.mark.parametrize("rate, rpm, non_rotating", [("0000", None, False), ("0001", None, True),
                                                     ("0400", None, False), ("0401", 0x401, False),
                                                     ("1c20", 7200, False), ("fffe", 0xFFFE, False),
                                                     ("ffff", None, False)])
def test_rotation_rate_in_rpm(rate: str, rpm: object, non_rotating: bool) -> None:
    page = parse_vpd(vpd(0xB1, h(rate + "00 02") + bytes(56)))
    assert page.rotation_rate_rpm == rpm and page.non_rotating is non_rotating


@pytest.mark.parametrize("code, text", [(0, None), (1, "5.25 inch"), (2, "3.5 inch"), (3, "2.5 inch"),
                                        (4, "1.8 inch"), (5, "less than 1.8 inch"), (6, None), (15, None)])
def test_form_factor(code: int, text: object) -> None:
    assert parse_vpd(vpd(0xB1, h("0001 00") + bytes([code]) + bytes(56))).form_factor == text


def test_form_factor_and_rotation_of_a_short_page() -> None:
    page = parse_vpd(vpd(0xB1, h("1c")))  # cut inside MEDIUM ROTATION RATE
    assert page.rotation_rate_rpm is None and page.form_factor is None and page.non_rotating is None


@pytest.mark.parametrize("ptype, text", [(0, "full"), (1, "resource"), (2, "thin"), (3, None), (7, None)])
def test_provisioning_type(ptype: int, text: object) -> None:
    assert parse_vpd(vpd(0xB2, h("00 00") + bytes([ptype]) + h("00"))).provisioning == text
    assert parse_vpd(vpd(0xB2, b"")).provisioning is None
