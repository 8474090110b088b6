"""Golden CDB bytes for every command, written from the T10 CDB tables.

Each row builds a command and gives the bytes the standard's table says it
must encode to; the same bytes must decode back to an equal command.  Field
values are chosen so that each field lands on distinct bits.
"""

from __future__ import annotations

import pytest

from sgpy import command as c


def h(text: str) -> bytes:
    return bytes.fromhex(text)


GOLDEN = [
    # ---- SPC-5 -------------------------------------------------------------
    (c.TestUnitReady(), "00 00 00 00 00 00"),
    (c.TestUnitReady(control=0x04), "00 00 00 00 00 04"),  # NACA bit
    (c.RequestSense(desc=True, allocation_length=18), "03 01 00 00 12 00"),
    (c.RequestSense(), "03 00 00 00 fc 00"),
    (c.Inquiry(), "12 00 00 00 60 00"),
    (c.Inquiry(evpd=True, page_code=0x83, allocation_length=0x1234), "12 01 83 12 34 00"),
    (c.ModeSelect6(pf=True, sp=True, parameter_list_length=12), "15 11 00 00 0c 00"),
    (c.ModeSelect10(pf=True, parameter_list_length=0x0123), "55 10 00 00 00 00 00 01 23 00"),
    (
        c.ModeSense6(dbd=True, pc=2, page_code=0x3F, subpage_code=0xFF, allocation_length=0xFC),
        "1a 08 bf ff fc 00",
    ),
    (
        c.ModeSense10(llbaa=True, dbd=True, pc=1, page_code=0x08, allocation_length=0x1000),
        "5a 18 48 00 00 00 00 10 00 00",
    ),
    (
        c.LogSelect(pcr=True, sp=True, pc=3, page_code=0x0D, subpage_code=1, parameter_list_length=0),
        "4c 03 cd 01 00 00 00 00 00 00",
    ),
    (
        c.LogSense(sp=True, pc=1, page_code=0x2F, parameter_pointer=0x0102, allocation_length=0x0400),
        "4d 01 6f 00 00 01 02 04 00 00",
    ),
    (c.LogSense(ppc=True, page_code=0x00, allocation_length=4), "4d 02 00 00 00 00 00 00 04 00"),
    (c.ReportLuns(select_report=2, allocation_length=0x1000), "a0 00 02 00 00 00 00 00 10 00 00 00"),
    (
        c.ReportSupportedOperationCodes(
            rctd=True,
            reporting_options=2,
            requested_operation_code=0x9E,
            requested_service_action=0x10,
            allocation_length=0x200,
        ),
        "a3 0c 82 9e 00 10 00 00 02 00 00 00",
    ),
    (
        c.ReportSupportedTaskManagementFunctions(repd=True, allocation_length=16),
        "a3 0d 80 00 00 00 00 00 00 10 00 00",
    ),
    (
        c.ReportTargetPortGroups(parameter_data_format=1, allocation_length=0x10000),
        "a3 2a 00 00 00 00 00 01 00 00 00 00",
    ),
    (c.Reserve6(), "16 00 00 00 00 00"),
    (c.Release6(), "17 00 00 00 00 00"),
    (
        c.Reserve10(third_party=True, longid=True, data=bytes(8)),
        "56 12 00 00 00 00 00 00 08 00",
    ),
    (c.Release10(third_party=True, third_party_device_id=5), "57 10 00 05 00 00 00 00 00 00"),
    (c.PersistentReserveInReadKeys(allocation_length=0x2000), "5e 00 00 00 00 00 00 20 00 00"),
    (c.PersistentReserveInReadReservation(allocation_length=0x18), "5e 01 00 00 00 00 00 00 18 00"),
    (c.PersistentReserveInReportCapabilities(allocation_length=8), "5e 02 00 00 00 00 00 00 08 00"),
    (c.PersistentReserveInReadFullStatus(allocation_length=0xFFFF), "5e 03 00 00 00 00 00 ff ff 00"),
    (c.PersistentReserveOutRegister(data=bytes(24)), "5f 00 00 00 00 00 00 00 18 00"),
    (c.PersistentReserveOutReserve(type=1, data=bytes(24)), "5f 01 01 00 00 00 00 00 18 00"),
    (c.PersistentReserveOutRelease(type=3, parameter_list_length=24), "5f 02 03 00 00 00 00 00 18 00"),
    (c.PersistentReserveOutClear(parameter_list_length=24), "5f 03 00 00 00 00 00 00 18 00"),
    (c.PersistentReserveOutPreempt(scope=2, type=1, parameter_list_length=24), "5f 04 21 00 00 00 00 00 18 00"),
    (c.PersistentReserveOutPreemptAndAbort(type=5, parameter_list_length=24), "5f 05 05 00 00 00 00 00 18 00"),
    (
        c.PersistentReserveOutRegisterAndIgnoreExistingKey(parameter_list_length=24),
        "5f 06 00 00 00 00 00 00 18 00",
    ),
    (
        c.PersistentReserveOutRegisterAndMove(type=8, parameter_list_length=0x12345678),
        "5f 07 08 00 00 12 34 56 78 00",
    ),
    (c.PersistentReserveOutReplaceLostReservation(parameter_list_length=24), "5f 08 00 00 00 00 00 00 18 00"),
    (c.SendDiagnostic(selftest=True), "1d 04 00 00 00 00"),
    (c.SendDiagnostic(selftest=True, devoffl=True, unitoffl=True), "1d 07 00 00 00 00"),
    (c.SendDiagnostic(self_test_code=6), "1d c0 00 00 00 00"),
    (c.SendDiagnostic(pf=True, data=bytes(0x104)), "1d 10 00 01 04 00"),
    (
        c.ReceiveDiagnosticResults(pcv=True, page_code=0x02, allocation_length=0xFFFF),
        "1c 01 02 ff ff 00",
    ),
    (
        c.ReadBuffer10(mode=0x03, buffer_id=1, buffer_offset=0x010203, allocation_length=4),
        "3c 03 01 01 02 03 00 00 04 00",
    ),
    (
        c.ReadBuffer10(mode_specific=5, mode=0x1C, allocation_length=0xABCDEF),
        "3c bc 00 00 00 00 ab cd ef 00",
    ),
    (c.WriteBuffer(mode=0x07, buffer_offset=0x8000, data=bytes(0x200)), "3b 07 00 00 80 00 00 02 00 00"),
    (
        c.SecurityProtocolIn(security_protocol=0xEF, security_protocol_specific=1, allocation_length=0x200),
        "a2 ef 00 01 00 00 00 00 02 00 00 00",
    ),
    (
        c.SecurityProtocolIn(security_protocol=0xEF, security_protocol_specific=1, inc_512=True, allocation_length=1),
        "a2 ef 00 01 80 00 00 00 00 01 00 00",
    ),
    (
        c.SecurityProtocolOut(security_protocol=1, security_protocol_specific=0x0203, data=bytes(0x10)),
        "b5 01 02 03 00 00 00 00 00 10 00 00",
    ),
    (
        c.SecurityProtocolOut(security_protocol=1, security_protocol_specific=0x0203, inc_512=True, data=bytes(1024)),
        "b5 01 02 03 80 00 00 00 00 02 00 00",
    ),
    # ---- SBC-4 -------------------------------------------------------------
    (c.Read6(lba=0x12345, transfer_length=0), "08 01 23 45 00 00"),
    (c.Read6(lba=0x1FFFFF, transfer_length=0xFF, control=0x80), "08 1f ff ff ff 80"),
    (c.Write6(lba=0, transfer_length=1), "0a 00 00 00 01 00"),
    (c.Write6(lba=0x100000, transfer_length=0), "0a 10 00 00 00 00"),
    (c.Read10(lba=0, transfer_length=1), "28 00 00 00 00 00 00 00 01 00"),
    (
        c.Read10(
            rdprotect=5,
            dpo=True,
            fua=True,
            rarc=True,
            fua_nv=True,
            lba=0x01020304,
            group_number=0x3F,
            transfer_length=0xABCD,
            control=0x04,
        ),
        "28 be 01 02 03 04 3f ab cd 04",
    ),
    (
        c.Write10(wrprotect=1, fua=True, lba=0xDEADBEEF, group_number=1, transfer_length=8),
        "2a 28 de ad be ef 01 00 08 00",
    ),
    (c.Write10(fua_nv=True, lba=0, transfer_length=0), "2a 02 00 00 00 00 00 00 00 00"),
    (c.Read12(lba=0x10, transfer_length=0x01000000, group_number=2), "a8 00 00 00 00 10 01 00 00 00 02 00"),
    (c.Write12(dpo=True, lba=1, transfer_length=2), "aa 10 00 00 00 01 00 00 00 02 00 00"),
    (c.Read16(lba=0xFFFFFFFF, transfer_length=1), "88 00 00 00 00 00 ff ff ff ff 00 00 00 01 00 00"),
    (
        c.Read16(dld2=True, dld1=True, group_number=3, lba=0x0102030405060708, transfer_length=0x10),
        "88 01 01 02 03 04 05 06 07 08 00 00 00 10 83 00",
    ),
    (
        c.Write16(wrprotect=7, lba=2**64 - 1, transfer_length=0xFFFFFFFF, dld0=True),
        "8a e0 ff ff ff ff ff ff ff ff ff ff ff ff 40 00",
    ),
    (
        c.Read32(
            rdprotect=2,
            fua=True,
            group_number=4,
            lba=0x0A0B,
            expected_initial_logical_block_reference_tag=0x11223344,
            expected_logical_block_application_tag=0x5566,
            logical_block_application_tag_mask=0xFFFF,
            transfer_length=3,
        ),
        "7f 00 00 00 00 00 04 18 00 09 48 00 00 00 00 00 00 00 0a 0b 11 22 33 44 55 66 ff ff 00 00 00 03",
    ),
    (
        c.Write32(wrprotect=1, lba=1, transfer_length=1, control=0x04),
        "7f 04 00 00 00 00 00 18 00 0b 20 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 01",
    ),
    (c.WriteAndVerify10(bytchk=1, lba=0x100, transfer_length=2), "2e 02 00 00 01 00 00 00 02 00"),
    (
        c.WriteAndVerify16(wrprotect=1, dpo=True, bytchk=1, lba=5, transfer_length=1),
        "8e 32 00 00 00 00 00 00 00 05 00 00 00 01 00 00",
    ),
    (
        c.WriteAndVerify32(bytchk=1, lba=0, transfer_length=1),
        "7f 00 00 00 00 00 00 18 00 0c 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01",
    ),
    (c.Verify10(lba=0x1000, verification_length=0x80), "2f 00 00 00 10 00 00 00 80 00"),
    (c.Verify10(vrprotect=3, dpo=True, bytchk=3, lba=0, verification_length=16), "2f 76 00 00 00 00 00 00 10 00"),
    (
        c.Verify16(bytchk=1, lba=0x100000000, verification_length=1, group_number=5),
        "8f 02 00 00 00 01 00 00 00 00 00 00 00 01 05 00",
    ),
    (
        c.Verify32(lba=7, verification_length=9),
        "7f 00 00 00 00 00 00 18 00 0a 00 00 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 09",
    ),
    (c.ReadCapacity10(), "25 00 00 00 00 00 00 00 00 00"),
    (c.ReadCapacity10(lba=0x100, pmi=True), "25 00 00 00 01 00 00 00 01 00"),
    (c.ReadCapacity16(), "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00"),
    (
        c.GetLbaStatus(starting_lba=0x1000, allocation_length=0x100, report_type=2),
        "9e 12 00 00 00 00 00 00 10 00 00 00 01 00 02 00",
    ),
    (c.SynchronizeCache10(immed=True, lba=1, number_of_logical_blocks=2), "35 02 00 00 00 01 00 00 02 00"),
    (c.SynchronizeCache16(), "91 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
    (
        c.SynchronizeCache16(lba=0x10, number_of_logical_blocks=0x20, group_number=1),
        "91 00 00 00 00 00 00 00 00 10 00 00 00 20 01 00",
    ),
    (c.WriteSame10(unmap=True, lba=0x10, number_of_logical_blocks=0x20), "41 08 00 00 00 10 00 00 20 00"),
    (
        c.WriteSame10(wrprotect=2, anchor=True, pbdata=True, lbdata=True, lba=0, number_of_logical_blocks=0),
        "41 56 00 00 00 00 00 00 00 00",
    ),
    (
        c.WriteSame16(ndob=True, unmap=True, lba=0, number_of_logical_blocks=0x100),
        "93 09 00 00 00 00 00 00 00 00 00 00 01 00 00 00",
    ),
    (
        c.WriteSame32(ndob=True, lba=3, number_of_logical_blocks=4),
        "7f 00 00 00 00 00 00 18 00 0d 01 00 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 04",
    ),
    (c.Unmap(data=bytes(24)), "42 00 00 00 00 00 00 00 18 00"),
    (c.Unmap(anchor=True, group_number=1), "42 01 00 00 00 00 01 00 00 00"),
    (
        c.CompareAndWrite(fua=True, lba=0x20, number_of_logical_blocks=1),
        "89 08 00 00 00 00 00 00 00 20 00 00 00 01 00 00",
    ),
    (
        c.Orwrite16(orprotect=5, dpo=True, fua=True, lba=0x0102030405060708, transfer_length=0x0A0B0C0D,
                    group_number=0x21),
        "8b b8 01 02 03 04 05 06 07 08 0a 0b 0c 0d 21 00",
    ),
    (c.Orwrite16(lba=2**64 - 1, transfer_length=0, control=0x04), "8b 00 ff ff ff ff ff ff ff ff 00 00 00 00 00 04"),
    (c.StartStopUnit(start=True), "1b 00 00 00 01 00"),
    (c.StartStopUnit(immed=True, loej=True), "1b 01 00 00 02 00"),
    (c.StartStopUnit(power_condition=3, power_condition_modifier=1, no_flush=True), "1b 00 00 01 34 00"),
    (c.PreventAllowMediumRemoval(prevent=1), "1e 00 00 00 01 00"),
    (c.FormatUnit(), "04 00 00 00 00 00"),
    (
        c.FormatUnit(fmtpinfo=2, longlist=True, fmtdata=True, cmplst=True, defect_list_format=5, data=bytes(4)),
        "04 bd 00 00 00 00",
    ),
    (c.FormatUnit(vendor_specific=0x5A, ffmt=1), "04 00 5a 00 01 00"),
    (c.SanitizeOverwrite(immed=True, data=bytes(8)), "48 81 00 00 00 00 00 00 08 00"),
    (c.SanitizeBlockErase(ause=True), "48 22 00 00 00 00 00 00 00 00"),
    (c.SanitizeCryptographicErase(znr=True), "48 43 00 00 00 00 00 00 00 00"),
    (c.SanitizeExitFailureMode(), "48 1f 00 00 00 00 00 00 00 00"),
    (c.ReassignBlocks(longlba=True, data=bytes(16)), "07 02 00 00 00 00"),
    (c.ReassignBlocks(longlist=True), "07 01 00 00 00 00"),
    (
        c.ReadDefectData10(req_plist=True, req_glist=True, defect_list_format=5, allocation_length=4),
        "37 00 1d 00 00 00 00 00 04 00",
    ),
    (
        c.ReadDefectData12(
            req_glist=True, defect_list_format=4, address_descriptor_index=0x100, allocation_length=0x10000
        ),
        "b7 0c 00 00 01 00 00 01 00 00 00 00",
    ),
    # ---- ZBC-2 -------------------------------------------------------------
    (
        c.ReportZones(zone_start_lba=0x80000, allocation_length=0x1000, partial=True, reporting_options=0x3F),
        "95 00 00 00 00 00 00 08 00 00 00 00 10 00 bf 00",
    ),
    (c.OpenZone(zone_id=0x80000), "94 03 00 00 00 00 00 08 00 00 00 00 00 00 00 00"),
    (c.CloseZone(all=True), "94 01 00 00 00 00 00 00 00 00 00 00 00 00 01 00"),
    (c.FinishZone(zone_id=0x100, zone_count=2), "94 02 00 00 00 00 00 00 01 00 00 00 00 02 00 00"),
    (c.ResetWritePointer(zone_id=0x1000), "94 04 00 00 00 00 00 00 10 00 00 00 00 00 00 00"),
    # ---- SAT-4 -------------------------------------------------------------
    # IDENTIFY DEVICE: PIO data-in (protocol 4), from device, blocks, length in COUNT.
    (
        c.AtaPassThrough12(protocol=4, t_dir=True, byt_blok=True, t_length=2, count=1, command=0xEC),
        "a1 08 0e 00 01 00 00 00 00 ec 00 00",
    ),
    (
        c.AtaPassThrough16(protocol=4, t_dir=True, byt_blok=True, t_length=2, count=1, command=0xEC),
        "85 08 0e 00 00 00 01 00 00 00 00 00 00 00 ec 00",
    ),
    # SMART READ DATA: FEATURES D0h, LBA mid/high 4Fh/C2h.
    (
        c.AtaPassThrough16(
            protocol=4,
            t_dir=True,
            byt_blok=True,
            t_length=2,
            features=0xD0,
            count=1,
            lba_mid=0x4F,
            lba_high=0xC2,
            command=0xB0,
        ),
        "85 08 0e 00 d0 00 01 00 00 00 4f 00 c2 00 b0 00",
    ),
    # READ DMA EXT at a 48-bit LBA: bytes 7..12 carry LBA (31:24) (7:0) (39:32) (15:8) (47:40) (23:16).
    (
        c.AtaPassThrough16(
            protocol=6,
            extend=True,
            device=0x40,
            command=0x25,
            **c.AtaPassThrough16.lba_registers(0x123456789ABC),
        ),
        "85 0d 00 00 00 00 00 56 bc 34 9a 12 78 40 25 00",
    ),
    (
        c.AtaPassThrough12(
            multiple_count=7, off_line=3, ck_cond=True, t_type=True, lba_low=1, lba_mid=2, lba_high=3, device=0xE0
        ),
        "a1 e0 f0 00 00 01 02 03 e0 00 00 00",
    ),
]


def _ids() -> list:
    return [f"{cmd.name}-{i}" for i, (cmd, _) in enumerate(GOLDEN)]


@pytest.mark.parametrize("cmd, expected", GOLDEN, ids=_ids())
def test_encodes_to_t10_layout(cmd: c.Command, expected: str) -> None:
    assert cmd.cdb == h(expected)
    assert len(cmd.cdb) == type(cmd).cdb_length


@pytest.mark.parametrize("cmd, expected", GOLDEN, ids=_ids())
def test_golden_bytes_decode_back(cmd: c.Command, expected: str) -> None:
    decoded = c.decode(h(expected), strict=True)
    assert type(decoded) is type(cmd)
    assert decoded == cmd
    assert decoded.cdb == h(expected)
    assert decoded.reserved_bits == ()


def test_every_command_has_a_golden_row() -> None:
    covered = {type(cmd) for cmd, _ in GOLDEN}
    missing = [cls.name for cls in c.all_commands() if cls not in covered]
    assert missing == []


def test_seed_write6_resolves_to_one_block() -> None:
    cmd = c.Write6(lba=0, data=b"a" * 512).for_block_size(512)
    assert cmd.cdb == h("0a 00 00 00 01 00")


def test_write6_of_256_blocks_encodes_zero() -> None:
    cmd = c.Write6(lba=7, data=bytes(256 * 512)).for_block_size(512)
    assert cmd.cdb == h("0a 00 00 07 00 00")
    assert cmd.transfer_bytes(512) == 256 * 512


def test_compare_and_write_counts_half_the_data() -> None:
    cmd = c.CompareAndWrite(lba=0x20, data=bytes(2 * 4096)).for_block_size(4096)
    assert cmd.cdb == h("89 00 00 00 00 00 00 00 00 20 00 00 00 01 00 00")


def test_ata_lba_joins_the_registers_again() -> None:
    cmd = c.AtaPassThrough16(**c.AtaPassThrough16.lba_registers(0x123456789ABC))
    assert cmd.ata_lba == 0x123456789ABC
    assert c.AtaPassThrough12(lba_low=1, lba_mid=2, lba_high=3).ata_lba == 0x030201
