"""Vital product data pages (SPC-5 7.7, SBC-4 6.6, SAT-4 12.4.2, ZBC-2 6.5).

Every page starts with the 4-byte VPD header (SPC-5 table 476): peripheral
qualifier and device type, the page code, and a 2-byte PAGE LENGTH, so the
complete page takes ``PAGE LENGTH + 4`` bytes (``wanted_length``).
:func:`parse_vpd` picks the class by page code; unknown pages become
:class:`RawVpdPage`.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Dict, Optional, Tuple, Type, TypeVar

import attrs

from sgpy.errors import MalformedResponse
from sgpy.responses._common import bits, decode_layout, length_header, need, octets, pdt, read_header, text
from sgpy.responses.designators import Association, Designator, NaaDesignator, lu_name, parse_designator

__all__ = [
    "VpdPage",
    "RawVpdPage",
    "SupportedVpdPages",
    "UnitSerialNumber",
    "DeviceIdentification",
    "Designators",
    "ExtendedInquiryData",
    "AtaInformation",
    "PowerCondition",
    "BlockLimits",
    "BlockDeviceCharacteristics",
    "LogicalBlockProvisioning",
    "ZonedBlockDeviceCharacteristics",
    "parse_vpd",
]

V = TypeVar("V", bound="VpdPage")


@attrs.frozen
class VpdPage:
    """Fields and helpers shared by every VPD page class."""

    PAGE_CODE: ClassVar[int] = -1

    peripheral_qualifier: int = bits(0, 5, 3)
    peripheral_device_type: int = bits(0, 0, 5)
    truncated: bool = False
    wanted_length: Optional[int] = None

    @staticmethod
    def required_length(buf: bytes) -> Optional[int]:
        """PAGE LENGTH + 4, or None when the 4-byte header is incomplete."""
        return length_header(buf, 2, 2, 4)

    @classmethod
    def _start(cls, buf: bytes) -> Tuple[bytes, Dict[str, Any]]:
        """Check the header; return the page bytes (cut at PAGE LENGTH) and the common fields."""
        buf, wanted = read_header(buf, 2, 2, 4, "VPD page")
        if cls.PAGE_CODE >= 0 and buf[1] != cls.PAGE_CODE:
            raise MalformedResponse(f"{cls.__name__}: page code {buf[1]:02X}h, expected {cls.PAGE_CODE:02X}h")
        data = buf[:wanted]
        fields = decode_layout(cls, data, wanted)
        fields["peripheral_device_type"] = pdt(fields["peripheral_device_type"])
        fields["truncated"] = len(buf) < wanted
        fields["wanted_length"] = wanted
        return data, fields

    @classmethod
    def from_bytes(cls: Type[V], buf: bytes) -> V:
        """Parse the page; a field a short answer does not wholly hold is None."""
        _, fields = cls._start(buf)
        return cls(**fields)


@attrs.frozen
class RawVpdPage(VpdPage):
    """A VPD page sgpy does not decode: its code and the bytes after the header
    (``data`` is None when the answer was cut short of PAGE LENGTH)."""

    page_code: int = bits(1)
    data: Optional[bytes] = octets(4)


@attrs.frozen
class SupportedVpdPages(VpdPage):
    """Page 00h, SPC-5 7.7.18: the VPD page codes the device supports."""

    PAGE_CODE: ClassVar[int] = 0x00
    pages: Tuple[int, ...] = ()

    @classmethod
    def from_bytes(cls, buf: bytes) -> "SupportedVpdPages":
        """Parse the list of page codes."""
        page, fields = cls._start(buf)
        return cls(**fields, pages=tuple(page[4:]))


@attrs.frozen
class UnitSerialNumber(VpdPage):
    """Page 80h, SPC-5 7.7.19: the product serial number, trimmed (None when cut short)."""

    PAGE_CODE: ClassVar[int] = 0x80
    #: ASCII (other bytes replaced); None when the answer was cut short of PAGE LENGTH.
    serial: Optional[str] = text(4, lstrip=True)


@attrs.frozen
class DeviceIdentification(VpdPage):
    """Page 83h, SPC-5 7.7.6: the designators naming the logical unit,
    its target port and target device, as typed values
    (:mod:`sgpy.responses.designators`)."""

    PAGE_CODE: ClassVar[int] = 0x83
    designators: Tuple[Designator, ...] = ()

    @classmethod
    def from_bytes(cls, buf: bytes) -> "DeviceIdentification":
        """Parse every designation descriptor; a cut-off last one is dropped."""
        page, fields = cls._start(buf)
        out = []
        pos = 4
        while pos + 4 <= len(page):
            if pos + 4 + page[pos + 3] > len(page):
                if fields["truncated"]:
                    break
                raise MalformedResponse(f"designation descriptor at byte {pos} runs past the page length")
            designator, pos = parse_designator(page, pos)
            out.append(designator)
        if pos < len(page) and not fields["truncated"]:
            raise MalformedResponse(f"{len(page) - pos} stray byte(s) after the last designator")
        return cls(**fields, designators=tuple(out))

    @property
    def logical_unit(self) -> "Designators":
        """The designators whose association is the logical unit.

        A property, as :attr:`naa` and :attr:`wwn` are; calling it
        (``page.logical_unit()``, the spelling of sgpy 0.1) still works and
        gives the same tuple, with a :class:`DeprecationWarning`.
        """
        return Designators(d for d in self.designators if d.association == Association.LOGICAL_UNIT)

    @property
    def target_port(self) -> "Designators":
        """The designators whose association is the target port the command came through."""
        return Designators(d for d in self.designators if d.association == Association.TARGET_PORT)

    @property
    def target_device(self) -> "Designators":
        """The designators whose association is the target device holding the logical unit."""
        return Designators(d for d in self.designators if d.association == Association.TARGET_DEVICE)

    @property
    def naa(self) -> Optional[NaaDesignator]:
        """The logical unit's NAA designator (the usual WWN), if any."""
        for d in self.logical_unit:
            if isinstance(d, NaaDesignator):
                return d
        return None

    @property
    def wwn(self) -> Optional[str]:
        """The logical unit's name as one string: ``naa.5000c500a1b2c3d4``, ``eui.…``, ``t10.…``,
        or a SCSI name string (``iqn.…``); None when no designator names it.

        The designator is the one Linux picks for the sysfs ``wwid``
        attribute (:func:`sgpy.responses.lu_name`), so the two agree;
        ``lsscsi -UU`` prints the same string for NAA and EUI-64 names.
        None as well for a truncated page (allocation length too small): a
        designator the kernel would prefer may be among those cut off.
        """
        if self.truncated:
            return None
        return lu_name(self.designators)


class Designators(Tuple[Designator, ...]):
    """A tuple of designators that may also be called (giving itself): what
    :attr:`DeviceIdentification.logical_unit` and its kin return, so that the
    method spelling of sgpy 0.1, ``page.logical_unit()``, keeps working."""

    def __call__(self) -> "Designators":
        warnings.warn("DeviceIdentification.logical_unit is a property: use page.logical_unit, not "
                      "page.logical_unit()", DeprecationWarning, stacklevel=2)
        return self


@attrs.frozen
class ExtendedInquiryData(VpdPage):
    """Page 86h, SPC-5 7.7.8: which protection, task attribute and
    microcode features the logical unit supports."""

    PAGE_CODE: ClassVar[int] = 0x86
    activate_microcode: Optional[int] = bits(4, 6, 2)
    spt: Optional[int] = bits(4, 3, 3)
    grd_chk: Optional[bool] = bits(4, 2, 1, flag=True)
    app_chk: Optional[bool] = bits(4, 1, 1, flag=True)
    ref_chk: Optional[bool] = bits(4, 0, 1, flag=True)
    uask_sup: Optional[bool] = bits(5, 5, 1, flag=True)
    group_sup: Optional[bool] = bits(5, 4, 1, flag=True)
    prior_sup: Optional[bool] = bits(5, 3, 1, flag=True)
    headsup: Optional[bool] = bits(5, 2, 1, flag=True)
    ordsup: Optional[bool] = bits(5, 1, 1, flag=True)
    simpsup: Optional[bool] = bits(5, 0, 1, flag=True)
    wu_sup: Optional[bool] = bits(6, 3, 1, flag=True)
    crd_sup: Optional[bool] = bits(6, 2, 1, flag=True)
    nv_sup: Optional[bool] = bits(6, 1, 1, flag=True)
    v_sup: Optional[bool] = bits(6, 0, 1, flag=True)
    no_pi_chk: Optional[bool] = bits(7, 5, 1, flag=True)
    p_i_i_sup: Optional[bool] = bits(7, 4, 1, flag=True)
    luiclr: Optional[bool] = bits(7, 0, 1, flag=True)
    lu_coll_type: Optional[int] = bits(8, 5, 3)
    r_sup: Optional[bool] = bits(8, 4, 1, flag=True)
    rtd_sup: Optional[bool] = bits(8, 3, 1, flag=True)
    hssrelef: Optional[bool] = bits(8, 1, 1, flag=True)
    cbcs: Optional[bool] = bits(8, 0, 1, flag=True)
    multi_it_nexus_microcode_download: Optional[int] = bits(9, 0, 4)
    extended_self_test_completion_minutes: Optional[int] = bits(10, 0, 16)
    poa_sup: Optional[bool] = bits(12, 7, 1, flag=True)
    hra_sup: Optional[bool] = bits(12, 6, 1, flag=True)
    vsa_sup: Optional[bool] = bits(12, 5, 1, flag=True)
    maximum_supported_sense_data_length: Optional[int] = bits(13)


def _ata_string(identify: bytes, first_word: int, last_word: int) -> str:
    """An ATA IDENTIFY string: each 16-bit word holds two characters, high byte first."""
    raw = identify[first_word * 2 : (last_word + 1) * 2]
    swapped = bytearray()
    for i in range(0, len(raw) - 1, 2):
        swapped += bytes((raw[i + 1], raw[i]))
    return swapped.decode("ascii", "replace").strip(" \0")


@attrs.frozen
class AtaInformation(VpdPage):
    """Page 89h, SAT-4 12.4.2: the SAT layer and the ATA device behind it.

    ``identify_data`` is the 512-byte IDENTIFY (PACKET) DEVICE data kept raw
    (None unless all 512 bytes arrived);
    :attr:`ata_model`, :attr:`ata_serial` and :attr:`ata_firmware` read the
    strings out of it (ACS-4 words 27-46, 10-19 and 23-26).
    """

    PAGE_CODE: ClassVar[int] = 0x89
    sat_vendor: Optional[str] = text(8, 8)
    sat_product: Optional[str] = text(16, 16)
    sat_revision: Optional[str] = text(32, 4)
    device_signature: Optional[bytes] = octets(36, 20)
    command_code: Optional[int] = bits(56)
    identify_data: Optional[bytes] = octets(60, 512)

    @property
    def ata_model(self) -> Optional[str]:
        """Model number from IDENTIFY words 27-46 (None without the IDENTIFY data)."""
        return None if self.identify_data is None else _ata_string(self.identify_data, 27, 46)

    @property
    def ata_serial(self) -> Optional[str]:
        """Serial number from IDENTIFY words 10-19 (None without the IDENTIFY data)."""
        return None if self.identify_data is None else _ata_string(self.identify_data, 10, 19)

    @property
    def ata_firmware(self) -> Optional[str]:
        """Firmware revision from IDENTIFY words 23-26 (None without the IDENTIFY data)."""
        return None if self.identify_data is None else _ata_string(self.identify_data, 23, 26)


@attrs.frozen
class PowerCondition(VpdPage):
    """Page 8Ah, SPC-5 7.7.14: supported power conditions and their recovery times (ms)."""

    PAGE_CODE: ClassVar[int] = 0x8A
    standby_y: Optional[bool] = bits(4, 1, 1, flag=True)
    standby_z: Optional[bool] = bits(4, 0, 1, flag=True)
    idle_c: Optional[bool] = bits(5, 2, 1, flag=True)
    idle_b: Optional[bool] = bits(5, 1, 1, flag=True)
    idle_a: Optional[bool] = bits(5, 0, 1, flag=True)
    stopped_condition_recovery_time: Optional[int] = bits(6, 0, 16)
    standby_z_condition_recovery_time: Optional[int] = bits(8, 0, 16)
    standby_y_condition_recovery_time: Optional[int] = bits(10, 0, 16)
    idle_a_condition_recovery_time: Optional[int] = bits(12, 0, 16)
    idle_b_condition_recovery_time: Optional[int] = bits(14, 0, 16)
    idle_c_condition_recovery_time: Optional[int] = bits(16, 0, 16)


@attrs.frozen
class BlockLimits(VpdPage):
    """Page B0h, SBC-4 6.6.4: transfer, unmap, write same and atomic limits.

    Lengths are in logical blocks; zero means "not reported" for most
    fields, as SBC-4 defines.  A field past the end of the page (an older
    device's page stops at byte 15) is None.
    """

    PAGE_CODE: ClassVar[int] = 0xB0
    wsnz: Optional[bool] = bits(4, 0, 1, flag=True)
    maximum_compare_and_write_length: Optional[int] = bits(5)
    optimal_transfer_length_granularity: Optional[int] = bits(6, 0, 16)
    maximum_transfer_length: Optional[int] = bits(8, 0, 32)
    optimal_transfer_length: Optional[int] = bits(12, 0, 32)
    maximum_prefetch_length: Optional[int] = bits(16, 0, 32)
    maximum_unmap_lba_count: Optional[int] = bits(20, 0, 32)
    maximum_unmap_block_descriptor_count: Optional[int] = bits(24, 0, 32)
    optimal_unmap_granularity: Optional[int] = bits(28, 0, 32)
    ugavalid: Optional[bool] = bits(32, 7, 1, flag=True)
    unmap_granularity_alignment: Optional[int] = bits(32, 0, 31)
    maximum_write_same_length: Optional[int] = bits(36, 0, 64)
    maximum_atomic_transfer_length: Optional[int] = bits(44, 0, 32)
    atomic_alignment: Optional[int] = bits(48, 0, 32)
    atomic_transfer_length_granularity: Optional[int] = bits(52, 0, 32)
    maximum_atomic_transfer_length_with_atomic_boundary: Optional[int] = bits(56, 0, 32)
    maximum_atomic_boundary_size: Optional[int] = bits(60, 0, 32)


@attrs.frozen
class BlockDeviceCharacteristics(VpdPage):
    """Page B1h, SBC-4 6.6.2: rotation rate (1 = non-rotating), form factor, zoning."""

    PAGE_CODE: ClassVar[int] = 0xB1
    medium_rotation_rate: Optional[int] = bits(4, 0, 16)
    product_type: Optional[int] = bits(6)
    wabereq: Optional[int] = bits(7, 6, 2)
    wacereq: Optional[int] = bits(7, 4, 2)
    nominal_form_factor: Optional[int] = bits(7, 0, 4)
    zoned: Optional[int] = bits(8, 4, 2)
    bocs: Optional[bool] = bits(8, 2, 1, flag=True)
    fuab: Optional[bool] = bits(8, 1, 1, flag=True)
    vbuls: Optional[bool] = bits(8, 0, 1, flag=True)
    depopulation_time: Optional[int] = bits(12, 0, 32)

    @property
    def non_rotating(self) -> Optional[bool]:
        """True for solid-state media (MEDIUM ROTATION RATE 0001h); None when bytes 4-5 are missing."""
        return None if self.medium_rotation_rate is None else self.medium_rotation_rate == 1

    @property
    def rotation_rate_rpm(self) -> Optional[int]:
        """The nominal rotation rate in revolutions per minute (MEDIUM ROTATION RATE 0401h-FFFEh,
        SBC-4 6.6.2); None when not reported (0000h), non-rotating (0001h), reserved or missing."""
        rate = self.medium_rotation_rate
        return rate if rate is not None and 0x0401 <= rate <= 0xFFFE else None

    @property
    def form_factor(self) -> Optional[str]:
        """The NOMINAL FORM FACTOR for people (SBC-4 6.6.2): ``3.5 inch``...; None when not
        reported (0h), reserved (6h-Fh) or missing."""
        return {1: "5.25 inch", 2: "3.5 inch", 3: "2.5 inch", 4: "1.8 inch",
                5: "less than 1.8 inch"}.get(self.nominal_form_factor or 0)


@attrs.frozen
class LogicalBlockProvisioning(VpdPage):
    """Page B2h, SBC-4 6.6.6: thin provisioning support.

    ``provisioning_group`` is the optional designation descriptor of the
    provisioning group (present when ``dp`` is set).
    """

    PAGE_CODE: ClassVar[int] = 0xB2
    threshold_exponent: Optional[int] = bits(4)
    lbpu: Optional[bool] = bits(5, 7, 1, flag=True)
    lbpws: Optional[bool] = bits(5, 6, 1, flag=True)
    lbpws10: Optional[bool] = bits(5, 5, 1, flag=True)
    lbprz: Optional[int] = bits(5, 2, 3)
    anc_sup: Optional[bool] = bits(5, 1, 1, flag=True)
    dp: Optional[bool] = bits(5, 0, 1, flag=True)
    minimum_percentage: Optional[int] = bits(6, 3, 5)
    provisioning_type: Optional[int] = bits(6, 0, 3)
    threshold_percentage: Optional[int] = bits(7)
    provisioning_group: Optional[Designator] = None

    @classmethod
    def from_bytes(cls, buf: bytes) -> "LogicalBlockProvisioning":
        """Parse the page and its provisioning group descriptor, if complete."""
        page, fields = cls._start(buf)
        group = None
        if fields["dp"] and len(page) >= 12:
            try:
                group, _ = parse_designator(page, 8)
            except MalformedResponse:
                if not fields["truncated"]:
                    raise
        return cls(**fields, provisioning_group=group)

    @property
    def provisioning(self) -> Optional[str]:
        """The PROVISIONING TYPE for people (SBC-4 6.6.6): ``full`` (000b: fully provisioned, or
        not reported), ``resource`` (001b), ``thin`` (010b); None when reserved or missing."""
        return {0: "full", 1: "resource", 2: "thin"}.get(self.provisioning_type if self.provisioning_type
                                                           is not None else -1)


@attrs.frozen
class ZonedBlockDeviceCharacteristics(VpdPage):
    """Page B6h, ZBC-2 6.5.2: zone resource limits of a zoned device."""

    PAGE_CODE: ClassVar[int] = 0xB6
    urswrz: Optional[bool] = bits(4, 0, 1, flag=True)
    optimal_open_sequential_write_preferred_zones: Optional[int] = bits(8, 0, 32)
    optimal_non_sequentially_written_sequential_write_preferred_zones: Optional[int] = bits(12, 0, 32)
    maximum_open_sequential_write_required_zones: Optional[int] = bits(16, 0, 32)
    zone_alignment_method: Optional[int] = bits(23, 0, 4)
    zone_starting_lba_granularity: Optional[int] = bits(24, 0, 64)


_VPD_CLASSES: Dict[int, Type[VpdPage]] = {
    cls.PAGE_CODE: cls
    for cls in (
        SupportedVpdPages,
        UnitSerialNumber,
        DeviceIdentification,
        ExtendedInquiryData,
        AtaInformation,
        PowerCondition,
        BlockLimits,
        BlockDeviceCharacteristics,
        LogicalBlockProvisioning,
        ZonedBlockDeviceCharacteristics,
    )
}


def parse_vpd(buf: bytes) -> VpdPage:
    """Parse any VPD page by its page code (byte 1); unknown codes give :class:`RawVpdPage`."""
    need(buf, 4, "VPD page")
    return _VPD_CLASSES.get(buf[1], RawVpdPage).from_bytes(buf)
