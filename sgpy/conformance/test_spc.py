"""Conformance checks of the primary commands (SPC-5, SAM-6).

Each check sends commands with sgpy and judges the answer with its verify
handlers (``must_fail(sense_key=..., asc=..., ascq=...)``) and typed
results.  The clause named is the one whose "shall" (or "should") the check
tests.
"""

from __future__ import annotations

import pytest

from sgpy import command, handler
from sgpy.conformance.plugin import Dut, clause, data_loss
from sgpy.constants import Direction, SenseKey
from sgpy.sense import FieldPointer

ILLEGAL = SenseKey.ILLEGAL_REQUEST


def _invalid_field_in_cdb(dut: Dut, cdb: bytes, *, byte: int, length: int = 0, pointer_required: bool = False) -> None:
    """A CDB with a reserved or invalid field must end ILLEGAL REQUEST / INVALID FIELD IN CDB
    (24h/00h, SPC-5 4.2.2 and 4.5.2.4.2); the sense-key specific field pointer, where given, names
    the byte (SPC-5 4.5.2.4.2: C/D set, FIELD POINTER = the byte).  ``length``: the data-in buffer
    for a command that returns data; ``pointer_required``: the field pointer must be there (SKSV set)."""
    raw = command.RawCommand(cdb=cdb, direction=Direction.FROM_DEVICE if length else Direction.NONE, length=length)
    io = dut.channel.execute(raw, verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))
    sks = getattr(io.sense, "sense_key_specific", None)
    pointer = getattr(sks, "field_pointer", None)
    if pointer_required:
        assert isinstance(sks, FieldPointer), "no field pointer: SKSV is zero"
        assert sks.cd, f"the field pointer names parameter data byte {sks.field_pointer}, not the CDB"
    if pointer is not None and getattr(sks, "cd", True):
        assert pointer == byte, f"the field pointer names byte {pointer}, not byte {byte}"


# -- TEST UNIT READY -------------------------------------------------------------------------------


@clause("SPC-5 6.47", "shall", "TEST UNIT READY")
def test_test_unit_ready_succeeds_on_a_ready_unit(dut: Dut) -> None:
    """A ready logical unit ends TEST UNIT READY with GOOD status and no data."""
    io = dut.channel.execute(command.TestUnitReady())
    assert io.hdr is not None and io.hdr.status == 0


@clause("SPC-5 4.2.2", "should", "INVALID FIELDS")
def test_test_unit_ready_reserved_byte_is_refused(dut: Dut) -> None:
    """Reserved CDB bytes are zero; recipients "are not required to check" them (SPC-5 3.1), so a
    device that does not is not wrong, but one that checks reports INVALID FIELD IN CDB."""
    _invalid_field_in_cdb(dut, bytes([0x00, 0, 0, 0, 0x80, 0]), byte=4)


# -- INQUIRY ---------------------------------------------------------------------------------------


@clause("SPC-5 6.7.2", "shall", "INQUIRY")
def test_standard_inquiry_has_the_mandatory_fields(dut: Dut) -> None:
    """Standard INQUIRY data is at least 36 bytes; VERSION names a standard, RESPONSE DATA FORMAT is 2."""
    io = dut.channel.execute(command.Inquiry(allocation_length=96))
    assert len(io.data) >= 36, f"{len(io.data)} bytes of standard INQUIRY data (36 at least)"
    assert io.data[3] & 0x0F == 2, f"RESPONSE DATA FORMAT {io.data[3] & 0x0F}"
    assert io.data[4] + 5 >= 36, f"ADDITIONAL LENGTH {io.data[4]}: less than 36 bytes in all"


@clause("SPC-5 6.7.2", "shall", "INQUIRY")
def test_standard_inquiry_strings_are_printable_ascii(dut: Dut) -> None:
    """T10 VENDOR IDENTIFICATION, PRODUCT IDENTIFICATION and PRODUCT REVISION LEVEL are ASCII 20h-7Eh."""
    data = dut.channel.execute(command.Inquiry(allocation_length=36)).data
    for name, lo, hi in (("vendor", 8, 16), ("product", 16, 32), ("revision", 32, 36)):
        bad = [b for b in data[lo:hi] if not 0x20 <= b <= 0x7E]
        assert not bad, f"{name} bytes {data[lo:hi]!r} are not printable ASCII"


@clause("SPC-5 4.2.5.6", "shall", "RESIDUALS")
def test_inquiry_allocation_length_bounds_the_transfer(dut: Dut) -> None:
    """The device transfers no more than ALLOCATION LENGTH bytes, and the same leading bytes as a longer one."""
    full = dut.channel.execute(command.Inquiry(allocation_length=96)).data
    with dut.no_reissue():
        for n in (1, 5, 8, 35):
            short = dut.channel.execute(command.Inquiry(allocation_length=n)).data
            assert short == full[:n], f"allocation length {n}: {short!r}, expected {full[:n]!r}"


@clause("SPC-5 6.7.1", "shall", "INQUIRY")
def test_inquiry_page_code_without_evpd_is_refused(dut: Dut) -> None:
    """PAGE CODE not zero while EVPD is zero: CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB."""
    dut.channel.execute(command.Inquiry(evpd=False, page_code=0x80),
                        verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))


@clause("SPC-5 6.7.1", "shall", "INQUIRY")
def test_inquiry_is_not_reported_a_unit_attention(dut: Dut) -> None:
    """INQUIRY is one of the commands that shall not report a pending unit attention (SAM-6 5.14)."""
    io = dut.channel.execute(command.Inquiry(), verify_handler=handler.might_fail)
    assert io.error is None, f"INQUIRY failed: {io.error}"


# -- VPD -------------------------------------------------------------------------------------------


@clause("SPC-5 7.7.17", "shall", "VPD")
def test_supported_vpd_pages_lists_00h_and_ascends(dut: Dut) -> None:
    """The Supported VPD Pages page lists page codes in ascending order, itself included."""
    pages = list(dut.vpd_pages)
    assert pages, "no VPD pages listed (page 00h is mandatory)"
    assert 0x00 in pages, f"page 00h missing from {pages}"
    assert pages == sorted(set(pages)), f"not ascending without repeats: {pages}"


@clause("SPC-5 7.7.6", "shall", "VPD")
def test_device_identification_page_is_listed_and_parses(dut: Dut) -> None:
    """The Device Identification VPD page (83h) is mandatory and its designators fit the page."""
    dut.require_vpd(0x83, "Device Identification")
    io = dut.channel.execute(command.Inquiry(evpd=True, page_code=0x83, allocation_length=1024))
    page = io.result
    assert io.data[1] == 0x83, f"page {io.data[1]:02X}h answered"
    assert getattr(page, "designators", None), "no designator on the Device Identification page"


@clause("SPC-5 7.7.1", "shall", "VPD")
def test_every_listed_vpd_page_answers_with_its_own_page_code(dut: Dut) -> None:
    """Each page the device lists can be read, and names itself in byte 1."""
    for code in dut.vpd_pages:
        io = dut.channel.execute(command.Inquiry(evpd=True, page_code=code, allocation_length=4096))
        assert len(io.data) >= 4 and io.data[1] == code, f"page {code:02X}h answered as {io.data[:4].hex()}"


@clause("SPC-5 6.7.1", "shall", "VPD")
def test_an_unlisted_vpd_page_is_refused(dut: Dut) -> None:
    """A VPD page the device does not support: ILLEGAL REQUEST, INVALID FIELD IN CDB."""
    unlisted = next(c for c in range(0xC0, 0x100) if c not in dut.vpd_pages)
    dut.channel.execute(command.Inquiry(evpd=True, page_code=unlisted),
                        verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))


# -- REPORT LUNS -----------------------------------------------------------------------------------


@clause("SPC-5 6.35", "shall", "REPORT LUNS")
def test_report_luns_is_well_formed(dut: Dut) -> None:
    """LUN LIST LENGTH is a multiple of 8 and the list holds no duplicates."""
    io = dut.channel.execute(command.ReportLuns(allocation_length=65536))
    assert len(io.data) >= 8
    length = int.from_bytes(io.data[0:4], "big")
    assert length % 8 == 0, f"LUN LIST LENGTH {length} is not a multiple of 8"
    raw = [io.data[8 + 8 * i: 16 + 8 * i] for i in range(min(length, len(io.data) - 8) // 8)]
    assert len(raw) == len(set(raw)), "the LUN list repeats a LUN"


@clause("SPC-5 6.35", "shall", "REPORT LUNS")
def test_report_luns_allocation_length_under_4_is_refused(dut: Dut) -> None:
    """ALLOCATION LENGTH less than 4: ILLEGAL REQUEST, INVALID FIELD IN CDB."""
    with dut.no_reissue():
        dut.channel.execute(command.ReportLuns(allocation_length=3),
                            verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))


# -- MODE SENSE ------------------------------------------------------------------------------------


@clause("SPC-5 6.14", "shall", "MODE SENSE")
def test_mode_sense_6_all_pages_parses(dut: Dut) -> None:
    """MODE SENSE(6) of all pages (3Fh) returns a header whose MODE DATA LENGTH covers what follows."""
    io = dut.channel.execute(command.ModeSense6(page_code=0x3F, allocation_length=255))
    dut.unsupported(io, "MODE SENSE(6)")
    assert len(io.data) >= 4
    assert io.data[0] + 1 >= len(io.data) or io.data[0] + 1 == 256
    assert io.result is not None


@clause("SPC-5 6.15", "shall", "MODE SENSE")
def test_mode_sense_10_all_pages_parses(dut: Dut) -> None:
    """MODE SENSE(10) of all pages returns a header whose MODE DATA LENGTH covers what follows."""
    io = dut.channel.execute(command.ModeSense10(page_code=0x3F, allocation_length=4096),
                             verify_handler=handler.might_fail)
    dut.succeeded(io, "MODE SENSE(10)")
    assert len(io.data) >= 8
    assert int.from_bytes(io.data[0:2], "big") + 2 >= len(io.data)


@clause("SPC-5 6.14", "shall", "MODE SENSE")
def test_mode_sense_6_and_10_agree_on_the_caching_page(dut: Dut) -> None:
    """The same page read by MODE SENSE(6) and (10) has the same bytes (only the header differs)."""
    six = dut.channel.execute(command.ModeSense6(page_code=0x08, allocation_length=255),
                              verify_handler=handler.might_fail)
    if six.error is not None:
        import pytest

        pytest.skip("unsupported: no caching mode page (08h)")
    ten = dut.channel.execute(command.ModeSense10(page_code=0x08, allocation_length=1024))
    p6 = six.data[4 + six.data[3]:]
    bdl10 = int.from_bytes(ten.data[6:8], "big")
    p10 = ten.data[8 + bdl10:]
    assert p6[:2 + p6[1]] == p10[:2 + p10[1]]


@clause("SPC-5 6.14", "shall", "MODE SENSE")
def test_mode_sense_of_a_page_the_device_lacks_is_refused(dut: Dut) -> None:
    """A page code the device does not implement: ILLEGAL REQUEST, INVALID FIELD IN CDB."""
    listed = dut.channel.execute(command.ModeSense6(page_code=0x3F, allocation_length=255)).result
    have = {getattr(p, "page_code", None) for p in getattr(listed, "pages", ())}
    missing = next(c for c in (0x3E, 0x3D, 0x2F, 0x22) if c not in have)
    dut.channel.execute(command.ModeSense6(page_code=missing),
                        verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00))


# -- REPORT SUPPORTED OPERATION CODES ----------------------------------------------------------------


@clause("SPC-5 6.36", "shall", "REPORT SUPPORTED OPCODES")
def test_report_supported_opcodes_lists_itself_and_inquiry(dut: Dut) -> None:
    """A device that answers REPORT SUPPORTED OPERATION CODES lists INQUIRY and itself (A3h/0Ch)."""
    if dut.supports(0x12) is None:
        import pytest

        pytest.skip("unsupported: REPORT SUPPORTED OPERATION CODES")
    assert dut.supports(0x12), "INQUIRY is not listed"
    assert dut.supports(0xA3, 0x0C), "REPORT SUPPORTED OPERATION CODES does not list itself"


@clause("SPC-5 6.36", "shall", "REPORT SUPPORTED OPCODES")
def test_every_listed_command_has_a_plausible_cdb_length(dut: Dut) -> None:
    """Each command descriptor's CDB LENGTH is one SPC-5 4.2 allows for its operation code's group."""
    if dut.supports(0x12) is None:
        import pytest

        pytest.skip("unsupported: REPORT SUPPORTED OPERATION CODES")
    table = dut.opcodes
    assert table is not None
    group_length = {0: 6, 1: 10, 2: 10, 4: 16, 5: 12}
    for d in table.commands:
        if d.opcode == 0x7F:
            assert d.cdb_length >= 8 and d.cdb_length % 4 == 0, f"7Fh with CDB LENGTH {d.cdb_length}"
            continue
        want = group_length.get(d.opcode >> 5)
        if want is not None:
            assert d.cdb_length == want, f"{d.opcode:02X}h listed with CDB LENGTH {d.cdb_length}, group says {want}"


# -- sense -----------------------------------------------------------------------------------------


@data_loss
@clause("SPC-5 4.5.1", "shall", "SENSE")
def test_an_unassigned_opcode_is_refused_with_sense(dut: Dut) -> None:
    """An operation code the device does not implement: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.

    The codes tried are ones no T10 standard assigns (not vendor-specific ones, C0h-FFh, which a
    device may implement as anything).  sgpy's safety policy cannot classify them, so they are
    sent through an unchecked channel, and only under --allow-data-loss."""
    unused = next(op for op in (0x22, 0x26, 0x27) if dut.supports(op) is not True)
    with dut.unchecked() as ch:
        ch.execute(command.RawCommand(cdb=bytes([unused]) + bytes(9)),
                   verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x20, ascq=0x00))


@clause("SPC-5 6.39", "shall", "SENSE")
def test_request_sense_answers_descriptor_format_when_asked(dut: Dut) -> None:
    """REQUEST SENSE with DESC=1 returns descriptor-format sense (response code 72h), or refuses DESC."""
    io = dut.channel.execute(command.RequestSense(desc=True), verify_handler=handler.might_fail)
    if io.error is not None:
        assert io.sense is not None and io.sense.sense_key == ILLEGAL and io.sense.asc == 0x24, str(io.error)
        return
    assert io.data and io.data[0] & 0x7F in (0x72, 0x73), f"response code {io.data[0]:02X}h"


# -- VPD against INQUIRY, descriptor-format sense ----------------------------------------------------


@clause("SPC-5 7.7.18", "shall", "VPD")
def test_unit_serial_number_is_ascii(dut: Dut) -> None:
    """The Unit Serial Number page's PRODUCT SERIAL NUMBER is ASCII (20h-7Eh)."""
    dut.require_vpd(0x80, "Unit Serial Number")
    data = dut.channel.execute(command.Inquiry(evpd=True, page_code=0x80, allocation_length=255)).data
    serial = data[4:4 + data[3]]
    bad = [b for b in serial if not 0x20 <= b <= 0x7E]
    assert not bad, f"serial {serial!r} has bytes outside 20h-7Eh"


@clause("SPC-5 7.7.6.4", "should", "VPD")
def test_t10_vendor_designator_matches_inquiry(dut: Dut) -> None:
    """A T10 vendor ID based designator on page 83h starts with the INQUIRY T10 VENDOR IDENTIFICATION."""
    dut.require_vpd(0x83, "Device Identification")
    data = dut.channel.execute(command.Inquiry(evpd=True, page_code=0x83, allocation_length=1024)).data
    vendor = dut.channel.execute(command.Inquiry(allocation_length=36)).data[8:16]
    end = 4 + int.from_bytes(data[2:4], "big")
    pos, seen = 4, False
    while pos + 4 <= min(end, len(data)):
        dtype, length = data[pos + 1] & 0x0F, data[pos + 3]
        if dtype == 1 and (data[pos + 1] >> 4) & 3 == 0:  # T10 vendor ID based, for the logical unit
            seen = True
            assert data[pos + 4:pos + 12] == vendor, f"designator vendor {data[pos + 4:pos + 12]!r} != {vendor!r}"
        pos += 4 + length
    if not seen:
        import pytest

        pytest.skip("unsupported: no T10 vendor ID based designator for the logical unit")


def _control_page(dut: Dut) -> bytes:
    """The Control mode page (0Ah) as MODE SENSE(10) returns it, D_SENSE changeable; skips the check
    when the device has no such page (INVALID FIELD IN CDB) or cannot change D_SENSE."""
    import pytest

    dut.channel.execute_own(command.TestUnitReady())
    io = dut.channel.execute(command.ModeSense10(page_code=0x0A, allocation_length=255),
                             verify_handler=handler.might_fail)
    if io.error is not None:
        if io.sense is not None and io.sense.sense_key == ILLEGAL and io.sense.asc == 0x24:
            pytest.skip("unsupported: no Control mode page (0Ah)")
        raise io.error
    bdl = int.from_bytes(io.data[6:8], "big")
    page = bytes(io.data[8 + bdl:8 + bdl + 2 + io.data[8 + bdl + 1]])
    ch = dut.channel.execute(command.ModeSense10(page_code=0x0A, pc=1, allocation_length=255)).data
    cbdl = int.from_bytes(ch[6:8], "big")
    if len(ch) <= 8 + cbdl + 2 or not ch[8 + cbdl + 2] & 0x04:
        pytest.skip("unsupported: D_SENSE is not changeable")
    return page


def _select_control(dut: Dut, page: bytes) -> None:
    """MODE SELECT(10) of a Control mode page: no block descriptors, PS cleared (SPC-5 7.5.7)."""
    dut.channel.execute(command.ModeSelect10(pf=True, data=bytes(8) + bytes([page[0] & 0x3F]) + page[1:]))


@data_loss
@clause("SPC-5 4.5.1", "shall", "SENSE")
def test_d_sense_selects_descriptor_format(dut: Dut) -> None:
    """With D_SENSE set in the Control mode page (0Ah), errors are reported in descriptor format
    (response code 72h) and decode to the same sense key and ASC; the page is put back afterwards."""
    original = _control_page(dut)
    page = bytearray(original)
    page[2] |= 0x04
    try:
        _select_control(dut, bytes(page))
        dut.channel.execute_own(command.TestUnitReady())  # a unit attention is another check's business
        blocks = dut.capacity[0]
        err = dut.channel.execute(command.Read16(lba=blocks + 1, transfer_length=1),
                                  verify_handler=handler.must_fail(sense_key=ILLEGAL, asc=0x21))
        raw = err.hdr.sense if err.hdr is not None else b""
        assert raw and raw[0] & 0x7F == 0x72, f"response code {raw[:1].hex()}h, not 72h"
    finally:
        _select_control(dut, original)
        dut.channel.execute_own(command.TestUnitReady())


@data_loss
@clause("SPC-5 6.11", "shall", "MODE SENSE")
def test_mode_select_raises_no_unit_attention_on_its_own_nexus(dut: Dut) -> None:
    """MODE SELECT that changes a page establishes MODE PARAMETERS CHANGED (2Ah/01h) for every
    other I_T nexus, not for the one it came on (SPC-5 6.11, SAM-6 5.14).  The Control mode page is
    written back unchanged apart from D_SENSE, and then restored."""
    page = _control_page(dut)
    flipped = page[:2] + bytes([page[2] ^ 0x04]) + page[3:]
    try:
        _select_control(dut, flipped)
        tur = dut.channel.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        assert tur.error is None, f"the next command on the same nexus got {tur.error}"
    finally:
        _select_control(dut, page)
        dut.channel.execute_own(command.TestUnitReady())


# -- residuals -------------------------------------------------------------------------------------


@clause("SPC-5 4.2.5.6", "shall", "RESIDUALS")
def test_inquiry_short_allocation_length_is_not_an_error(dut: Dut) -> None:
    """An ALLOCATION LENGTH shorter than the data (standard INQUIRY data, the Supported VPD Pages
    page) ends GOOD with exactly ALLOCATION LENGTH bytes and no residual: truncating the answer is
    not an error."""
    with dut.no_reissue():
        for evpd, n in ((False, 1), (False, 5), (False, 8), (False, 35), (True, 3), (True, 4)):
            io = dut.channel.execute(command.Inquiry(evpd=evpd, page_code=0, allocation_length=n),
                                     verify_handler=handler.might_fail)
            what = f"{'VPD page 00h' if evpd else 'standard INQUIRY'}, allocation length {n}"
            assert io.error is None, f"{what}: {io.error}"
            assert io.hdr is not None and io.hdr.status == 0, f"{what}: status {io.hdr and io.hdr.status:#x}"
            assert io.hdr.resid == 0, f"{what}: residual {io.hdr.resid}"
            assert len(io.data) == n, f"{what}: {len(io.data)} bytes"


@clause("SAM-6 5.3", "shall", "RESIDUALS")
def test_inquiry_underflow_is_reported_in_the_residual(dut: Dut) -> None:
    """An ALLOCATION LENGTH longer than the standard INQUIRY data: the device sends ADDITIONAL LENGTH
    + 5 bytes, the command ends GOOD, and the bytes not sent are the residual (``io.hdr.resid``)."""
    allocation = 255
    with dut.no_reissue():
        io = dut.channel.execute(command.Inquiry(allocation_length=allocation), verify_handler=handler.might_fail)
    assert io.error is None, str(io.error)
    assert io.hdr is not None and len(io.data) >= 5
    size = min(allocation, io.data[4] + 5)
    if size == allocation:
        pytest.skip("unsupported: the standard INQUIRY data fills 255 bytes, so nothing is left over")
    assert len(io.data) == size, f"{len(io.data)} bytes came; ADDITIONAL LENGTH says {size}"
    assert io.hdr.resid == allocation - size, f"residual {io.hdr.resid}, expected {allocation - size}"


# -- invalid fields ----------------------------------------------------------------------------------


def _report_luns_cdb(select_report: int = 0, *, reserved_byte_3: int = 0, allocation: int = 4096) -> bytes:
    """A REPORT LUNS CDB (A0h, SPC-5 6.35): SELECT REPORT in byte 2, bytes 1, 3-5 and 10 reserved."""
    return bytes([0xA0, 0, select_report, reserved_byte_3, 0, 0]) + allocation.to_bytes(4, "big") + bytes(2)


#: A SELECT REPORT code SPC-5 table 276 reserves (03h-0Fh are reserved; 00h-02h, 10h-12h are defined).
_RESERVED_SELECT_REPORT = 0x09


@clause("SPC-5 6.35", "shall", "INVALID FIELDS")
def test_report_luns_reserved_select_report_is_refused(dut: Dut) -> None:
    """A reserved SELECT REPORT code: ILLEGAL REQUEST, INVALID FIELD IN CDB ("receipt of reserved
    code values in defined fields shall be reported as an error", SPC-5 clause 3, "reserved"); a
    field pointer, if given, names byte 2."""
    _invalid_field_in_cdb(dut, _report_luns_cdb(_RESERVED_SELECT_REPORT), byte=2, length=4096)


@clause("SPC-5 4.5.2.4.2", "should", "INVALID FIELDS")
def test_invalid_field_in_cdb_names_the_byte(dut: Dut) -> None:
    """INVALID FIELD IN CDB for a reserved SELECT REPORT carries a sense-key specific FIELD POINTER
    (SKSV 1, C/D 1) naming byte 2.  SPC-5 lets a device leave SKSV zero, hence "should"."""
    _invalid_field_in_cdb(dut, _report_luns_cdb(_RESERVED_SELECT_REPORT), byte=2, length=4096,
                          pointer_required=True)


@clause("SPC-5 4.2.2", "should", "INVALID FIELDS")
def test_report_luns_reserved_byte_is_refused(dut: Dut) -> None:
    """A nonzero reserved byte (byte 3) in REPORT LUNS: INVALID FIELD IN CDB, field pointer byte 3.
    Recipients "are not required to check" reserved fields (SPC-5 clause 3, "reserved"), hence
    "should"."""
    _invalid_field_in_cdb(dut, _report_luns_cdb(reserved_byte_3=0xFF), byte=3, length=4096)


@clause("SPC-5 6.36", "shall", "INVALID FIELDS")
def test_report_supported_opcodes_reserved_reporting_options_is_refused(dut: Dut) -> None:
    """REPORT SUPPORTED OPERATION CODES with a reserved REPORTING OPTIONS code (111b): ILLEGAL
    REQUEST, INVALID FIELD IN CDB; a field pointer, if given, names byte 2."""
    if dut.supports(0x12) is None:
        pytest.skip("unsupported: REPORT SUPPORTED OPERATION CODES")
    cdb = bytes([0xA3, 0x0C, 0x07, 0x12, 0, 0]) + (4096).to_bytes(4, "big") + bytes(2)
    _invalid_field_in_cdb(dut, cdb, byte=2, length=4096)
