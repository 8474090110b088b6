"""The classification table, opcode by opcode, against T10's operation code list.

Every operation code of sgpy/_opcode_table.py (generated from T10's list)
and every device type it lists has a class in :data:`sgpy.safety.MEANINGS`;
the tables below say, independently of sgpy.safety, which of them change
data or are irreversible (everything else reads).  Also the regression
tests of the classification gaps found by that review: ERASE(16), EXTENDED
CDB, RESERVE/RELEASE, SEND DIAGNOSTIC with a parameter list, CLOSE
TRACK/SESSION, REBUILD(16), WRITE SAME of the whole medium, RESET WRITE
POINTER of every zone, SECURITY PROTOCOL OUT, unknown codes.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgpy import command as c
from sgpy import safety
from sgpy._opcode_table import DEVICE_KEYS, OPCODE_NAMES
from sgpy.constants import Direction
from sgpy.errors import UnsafeCommand
from sgpy.safety import ALLOW_DATA_LOSS, READ_ONLY, Risk

R, D, I = Risk.READ, Risk.DATA_CHANGING, Risk.IRREVERSIBLE
IN, OUT, NONE = Direction.FROM_DEVICE, Direction.TO_DEVICE, Direction.NONE
DIRECTIONS = (IN, OUT, NONE)
SA = None  # the meaning's class depends on its service action (SERVICE_ACTIONS below)

# (operation code, device-type key) -> class, for every meaning that is not a read.
NOT_READ = {
    (0x04, "DISK_ZBC"): I, (0x04, "TAPE"): I, (0x04, "PRINTER"): I,  # FORMAT UNIT / MEDIUM / printer
    (0x07, "DISK_ZBC"): D,  # REASSIGN BLOCKS
    (0x0A, "DISK_ZBC"): D, (0x0A, "PRINTER"): D, (0x0A, "PROCESSOR"): D,  # WRITE(6), PRINT, SEND
    (0x0B, "TAPE"): I, (0x0B, "PRINTER"): D,  # SET CAPACITY, SLEW AND PRINT
    (0x10, "TAPE"): D, (0x10, "PRINTER"): D,  # WRITE FILEMARKS(6), SYNCHRONIZE BUFFER
    (0x15, "ALL"): D,  # MODE SELECT(6)
    (0x16, "ALL"): D, (0x16, "MCHANGER"): D, (0x17, "ALL"): D, (0x17, "MCHANGER"): D,  # RESERVE/RELEASE(6)
    (0x18, "ALL"): D,  # COPY
    (0x19, "ALL"): I,  # ERASE(6)
    (0x24, "ALL"): D,  # SET WINDOW
    (0x2A, "ALL"): D,  # WRITE(10)
    (0x2C, "ALL"): I,  # ERASE(10)
    (0x2E, "ALL"): D,  # WRITE AND VERIFY(10)
    (0x33, "ALL"): D,  # SET LIMITS(10)
    (0x38, "DISK_ZBC"): I,  # FORMAT WITH PRESET
    (0x3A, "ALL"): D,  # COPY AND VERIFY
    (0x3B, "ALL"): I,  # WRITE BUFFER
    (0x3D, "OPTICAL"): D,  # UPDATE BLOCK
    (0x3F, "ALL"): D,  # WRITE LONG(10)
    (0x40, "ALL"): D,  # CHANGE DEFINITION
    (0x41, "ALL"): D,  # WRITE SAME(10)
    (0x42, "DISK_ZBC"): D,  # UNMAP
    (0x48, "ALL"): SA,  # SANITIZE
    (0x4C, "ALL"): D,  # LOG SELECT
    (0x50, "DISK"): D, (0x51, "DISK"): D, (0x53, "DISK"): D,  # XDWRITE, XPWRITE, XDWRITEREAD(10)
    (0x54, "MMC"): D,  # SEND OPC INFORMATION
    (0x55, "ALL"): D,  # MODE SELECT(10)
    (0x56, "ALL"): D, (0x56, "MCHANGER"): D, (0x57, "ALL"): D, (0x57, "MCHANGER"): D,  # RESERVE/RELEASE(10)
    (0x58, "MMC"): D,  # REPAIR TRACK
    (0x5B, "MMC"): I,  # CLOSE TRACK/SESSION
    (0x5D, "MMC"): D,  # SEND CUE SHEET
    (0x5E, "ALL"): SA, (0x5F, "ALL"): SA,  # PERSISTENT RESERVE IN / OUT
    (0x7E, "ALL"): I,  # EXTENDED CDB
    (0x7F, "ALL"): SA,  # VARIABLE LENGTH
    (0x80, "DISK"): D, (0x80, "TAPE"): D,  # XDWRITE EXTENDED(16), WRITE FILEMARKS(16)
    (0x81, "DISK"): D,  # REBUILD(16)
    (0x83, "ALL"): SA, (0x84, "ALL"): SA,  # THIRD-PARTY COPY OUT / IN
    (0x85, "ALL"): I,  # ATA PASS-THROUGH(16)
    (0x86, "ALL"): D, (0x87, "ALL"): D,  # ACCESS CONTROL IN / OUT
    (0x89, "ALL"): D, (0x8A, "ALL"): D, (0x8B, "DISK"): D,  # COMPARE AND WRITE, WRITE(16), ORWRITE(16)
    (0x8C, "ALL"): SA,  # READ ATTRIBUTE
    (0x8D, "ALL"): D, (0x8E, "ALL"): D,  # WRITE ATTRIBUTE, WRITE AND VERIFY(16)
    (0x93, "ALL"): D, (0x93, "TAPE"): I,  # WRITE SAME(16), ERASE(16)
    (0x94, "DISK_ZBC"): SA, (0x95, "DISK_ZBC"): SA,  # ZBC OUT / IN
    (0x96, "ALL"): I,  # WRITE BUFFER(16)
    (0x9A, "ALL"): D, (0x9C, "ALL"): D,  # WRITE STREAM(16), WRITE ATOMIC(16)
    (0x9D, "ALL"): SA, (0x9E, "ALL"): SA, (0x9F, "ALL"): SA,  # SERVICE ACTION BIDI / IN / OUT(16)
    (0xA1, "ALL"): I, (0xA1, "MMC"): I,  # ATA PASS-THROUGH(12), BLANK
    (0xA3, "ALL"): SA, (0xA4, "ALL"): SA,  # MAINTENANCE IN / OUT
    (0xA9, "ALL"): SA, (0xAB, "ALL"): SA,  # SERVICE ACTION OUT / IN(12)
    (0xAA, "ALL"): D,  # WRITE(12)
    (0xAC, "OPTICAL"): I,  # ERASE(12)
    (0xAE, "ALL"): D,  # WRITE AND VERIFY(12)
    (0xB3, "DISK"): D,  # SET LIMITS(12)
    (0xB5, "ALL"): I,  # SECURITY PROTOCOL OUT
    (0xB6, "MCHANGER"): D, (0xB6, "MMC"): D,  # SEND VOLUME TAG, SET STREAMING
    (0xBB, "ALL"): I, (0xBB, "MMC"): D,  # REDUNDANCY GROUP OUT, SET CD SPEED
    (0xBD, "ALL"): I,  # SPARE OUT
    (0xBF, "MMC"): D, (0xBF, "ALL"): I,  # SEND DVD/BD STRUCTURE, VOLUME SET OUT
}  # fmt: skip

# Service actions sgpy knows, per operation code, with their class; a
# service action not here is unknown (irreversible).
SERVICE_ACTIONS = {
    0x48: {0x01: I, 0x02: I, 0x03: I, 0x1F: I},
    0x5E: {0x00: R, 0x01: R, 0x02: R, 0x03: R},
    0x5F: {0x00: D, 0x01: D, 0x02: D, 0x03: D, 0x04: D, 0x05: D, 0x06: D, 0x07: D, 0x08: D},
    0x7F: {
        0x0001: D, 0x0002: R, 0x0003: R, 0x0004: D, 0x0005: D, 0x0006: D, 0x0007: D, 0x0008: D,
        0x0009: R, 0x000A: R, 0x000B: D, 0x000C: D, 0x000D: D, 0x000E: D, 0x000F: D, 0x0010: D,
        0x0011: D, 0x0012: R, 0x1FF0: I,
    },
    0x83: {0x00: D, 0x01: D, 0x10: D, 0x11: D, 0x16: D, 0x1C: D},
    0x84: {0x00: R, 0x01: R, 0x03: R, 0x04: R, 0x05: R, 0x06: R, 0x07: R, 0x08: R, 0x16: R},
    0x8C: {0x00: R, 0x01: R, 0x02: R, 0x03: R, 0x05: R},
    0x94: {0x01: R, 0x02: D, 0x03: R, 0x04: D, 0x10: D},
    0x95: {0x00: R, 0x06: R, 0x07: R, 0x08: I, 0x09: R},
    0x9D: {},
    0x9E: {
        0x0F: R, 0x10: R, 0x11: R, 0x12: R, 0x13: R, 0x14: D, 0x15: D, 0x16: R, 0x17: R,
        0x18: I, 0x19: I, 0x1A: I,
    },
    0x9F: {0x0B: D, 0x0C: D, 0x0D: D, 0x0E: D, 0x0F: D, 0x11: D, 0x12: D, 0x14: D},
    0xA3: {**{sa: R for sa in range(0x00, 0x11)}, 0x1D: R, 0x1E: R},
    0xA4: {0x06: D, 0x0A: D, 0x0B: D, 0x0C: D, 0x0E: D, 0x0F: D, 0x10: D, 0x1D: D, 0x1E: D},
    0xA9: {},
    0xAB: {0x01: R},
}  # fmt: skip

# Meanings a CDB field can make more dangerous than their row says, at worst.
FIELD_WORST = {(0x1D, "ALL"): D, (0x41, "ALL"): I, (0x93, "ALL"): I, (0xA3, "MMC"): D}
SA_FIELD_WORST = {(0x7F, 0x000D): I, (0x94, 0x04): I}

TABLE_ROWS = sorted((op, key) for op, rows in OPCODE_NAMES.items() for key, _ in rows)


def expected_row(opcode, key, sa=None, worst_fields=False):
    """This file's answer for one meaning (a service action of it, its fields at their worst)."""
    want = NOT_READ.get((opcode, key), R)
    if want is SA:
        want = SERVICE_ACTIONS[opcode].get(sa, I) if sa is not None else I
        if worst_fields:
            want = max(want, SA_FIELD_WORST.get((opcode, sa), R))
    elif worst_fields:
        want = max(want, FIELD_WORST.get((opcode, key), R))
    return want


def test_every_meaning_of_t10s_list_has_a_class_and_nothing_else_does():
    listed = {(op, key) for op, key in TABLE_ROWS} | {(0x7F, "ALL")}
    classed = {(op, key) for op, rows in safety.MEANINGS.items() for key in rows}
    assert classed == listed
    assert all(key in DEVICE_KEYS for _, key in classed)


@pytest.mark.parametrize("opcode, key", TABLE_ROWS + [(0x7F, "ALL")], ids=lambda v: f"{v:02X}h" if isinstance(v, int) else v)
def test_each_meaning_lands_in_its_tier(opcode, key):
    want = NOT_READ.get((opcode, key), R)
    assert safety.MEANINGS[opcode][key] == want


def test_every_known_service_action_lands_in_its_tier():
    assert set(safety.SERVICE_ACTION_RISK) == set(SERVICE_ACTIONS)
    for opcode, actions in SERVICE_ACTIONS.items():
        assert safety.SERVICE_ACTION_RISK[opcode] == actions, f"{opcode:02X}h"


@pytest.mark.parametrize("opcode", range(256), ids=lambda op: f"{op:02X}h")
def test_opcode_risk_is_the_worst_meaning_and_irreversible_when_unknown(opcode):
    if opcode >= 0xC0 or opcode not in safety.MEANINGS:
        want = I  # vendor specific, or not in T10's list
    else:
        want = max(expected_row(opcode, key, worst_fields=True) for key in safety.MEANINGS[opcode])
    assert safety.opcode_risk(opcode) is want
    assert safety.OPCODE_RISK.get(opcode, I) is want


@pytest.mark.parametrize("opcode, sa", [(op, sa) for op, sas in SERVICE_ACTIONS.items() for sa in sas],
                         ids=lambda v: f"{v:02X}h")
def test_opcode_risk_of_each_known_service_action(opcode, sa):
    want = max(expected_row(opcode, key, sa, worst_fields=True) for key in safety.MEANINGS[opcode])
    assert safety.opcode_risk(opcode, sa) is want


def sa_cdb(opcode, sa, length=32):
    """A zeroed CDB of ``length`` bytes carrying ``sa`` where ``opcode`` keeps its service action."""
    cdb = bytearray(length)
    cdb[0] = opcode
    if opcode == 0x7F:
        cdb[7] = 0x18
        cdb[8:10] = sa.to_bytes(2, "big")
    else:
        cdb[1] = sa
    return bytes(cdb)


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: d.name)
@pytest.mark.parametrize("opcode", range(256), ids=lambda op: f"{op:02X}h")
def test_every_operation_code_in_every_direction(opcode, direction):
    """All 256 codes x data direction: unknown is irreversible, known lies between read and its worst."""
    for length in (1, 6, 10, 12, 16, 32):
        cdb = bytes([opcode]) + bytes(length - 1)
        risk = safety.classify_cdb(cdb, direction)
        if opcode >= 0xC0 or opcode not in safety.MEANINGS:
            assert risk is I
        else:
            assert risk <= safety.opcode_risk(opcode)
        if opcode != 0xA3:  # only SEND KEY (MMC) reads the direction
            assert risk is safety.classify_cdb(cdb, NONE)


@given(st.integers(0, 0xFF), st.binary(max_size=40), st.sampled_from(DIRECTIONS))
def test_unknown_is_never_read_and_nothing_exceeds_its_code_alone(opcode, rest, direction):
    cdb = bytes([opcode]) + rest
    risk = safety.classify_cdb(cdb, direction)
    assert risk <= safety.opcode_risk(opcode)
    if opcode >= 0xC0 or opcode not in safety.MEANINGS:
        assert risk is I
    elif opcode in safety.SERVICE_ACTION_RISK:
        sa = int.from_bytes(cdb[8:10], "big") if opcode == 0x7F else cdb[1] & 0x1F if len(cdb) > 1 else None
        if sa is None or (opcode == 0x7F and len(cdb) < 10) or sa not in SERVICE_ACTIONS[opcode]:
            assert risk is I


@pytest.mark.parametrize("opcode, sa", [(op, sa) for op, sas in SERVICE_ACTIONS.items() for sa in range(0x20)
                                        if op != 0x7F and sa not in sas], ids=lambda v: f"{v:02X}h")
def test_an_unknown_service_action_is_irreversible(opcode, sa):
    for direction in DIRECTIONS:
        assert safety.classify_cdb(sa_cdb(opcode, sa, 16), direction) is I


# -- sgpy's own command classes --------------------------------------------------------


def own_row(cls):
    """The row of T10's list that is the class's meaning: the direct-access one, else ALL."""
    rows = safety.MEANINGS[cls.opcode]
    for key in rows:
        if 0 in DEVICE_KEYS[key]:
            return key
    return "ALL"


@pytest.mark.parametrize("cls", c.all_commands(), ids=lambda cls: cls.name)
def test_a_command_class_is_at_least_as_dangerous_as_its_meaning(cls):
    assert safety.classify(cls) >= expected_row(cls.opcode, own_row(cls), cls.service_action)


# -- the gaps (defect 12) ------------------------------------------------------------


def test_erase_16_is_irreversible_like_erase_6_10_12():
    for hexcdb in ("19" + "00" * 5, "2c" + "00" * 9, "ac" + "00" * 11, "93" + "00" * 15):
        assert safety.classify_cdb(bytes.fromhex(hexcdb)) is I, hexcdb
    # WRITE SAME(16), the same code on a disk, is still data-changing through its class
    assert safety.classify(c.WriteSame16(lba=0, number_of_logical_blocks=8, ndob=True)) is D


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: d.name)
def test_extended_cdb_is_irreversible_because_it_can_carry_format_unit(direction):
    cdb = bytes([0x7E, 0, 0, 0, 0, 0, 0, 0x0A]) + bytes.fromhex("04" + "00" * 5) + bytes(6)
    assert safety.classify_cdb(cdb, direction) is I
    with pytest.raises(UnsafeCommand):
        READ_ONLY.check(c.RawCommand(cdb=cdb))


@pytest.mark.parametrize("cmd", [c.Reserve6(), c.Release6(), c.Reserve10(), c.Release10(),
                                 c.Reserve10(third_party=True, third_party_device_id=3)],
                         ids=lambda cmd: cmd.name)
def test_reserve_and_release_are_data_changing_as_they_lock_other_initiators_out(cmd):
    assert safety.classify(cmd) is D
    assert safety.classify(type(cmd)) is D
    assert safety.classify_cdb(cmd.cdb) is D
    with pytest.raises(UnsafeCommand, match="changes data"):
        READ_ONLY.check(cmd)


@pytest.mark.parametrize(
    "cmd, risk",
    [
        (c.SendDiagnostic(selftest=True), R),
        (c.SendDiagnostic(self_test_code=1), R),
        (c.SendDiagnostic(pf=True, data=bytes(8)), D),
        (c.SendDiagnostic(selftest=True, unitoffl=True), D),
        (c.SendDiagnostic(selftest=True, devoffl=True), D),
    ],
    ids=["self-test", "background short self-test", "parameter list", "unitoffl", "devoffl"],
)
def test_send_diagnostic_with_a_parameter_list_or_offline_bits_is_data_changing(cmd, risk):
    assert safety.classify(cmd) is risk
    assert safety.classify_cdb(cmd.cdb, cmd.direction) is risk
    assert READ_ONLY.allows(cmd) is (risk is R)


def test_raw_send_diagnostic_with_a_data_out_parameter_list_is_refused_by_read_only():
    raw = c.RawCommand(cdb=bytes.fromhex("1d1000000800"), direction=OUT, data=bytes(8))
    with pytest.raises(UnsafeCommand):
        READ_ONLY.check(raw)


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: d.name)
def test_close_track_session_is_irreversible(direction):
    assert safety.classify_cdb(bytes.fromhex("5b0200000000000000 00".replace(" ", "")), direction) is I


def test_rebuild_16_is_data_changing():
    assert safety.classify_cdb(bytes.fromhex("81" + "00" * 15), OUT) is D
    with pytest.raises(UnsafeCommand):
        READ_ONLY.check(c.RawCommand(cdb=bytes.fromhex("81" + "00" * 15)))


@pytest.mark.parametrize(
    "cmd",
    [
        c.WriteSame10(lba=0, number_of_logical_blocks=0, data=bytes(512)),
        c.WriteSame16(lba=0, number_of_logical_blocks=0, ndob=True),
        c.WriteSame16(lba=0, number_of_logical_blocks=0, unmap=True, ndob=True),
        c.WriteSame32(lba=5, number_of_logical_blocks=0, ndob=True),
    ],
    ids=lambda cmd: cmd.name,
)
def test_write_same_of_zero_blocks_reaches_the_end_of_the_medium_and_is_irreversible(cmd):
    assert safety.classify(cmd) is I
    assert safety.classify_cdb(cmd.cdb, cmd.direction) is I
    with pytest.raises(UnsafeCommand, match="irreversibly"):
        ALLOW_DATA_LOSS.check(cmd)
    assert safety.classify(type(cmd)) is D  # a counted WRITE SAME stays data-changing


def test_reset_write_pointer_of_every_zone_is_irreversible():
    assert safety.classify(c.ResetWritePointer(zone_id=0x80000)) is D
    assert safety.classify(c.ResetWritePointer(all=True)) is I
    assert safety.classify_cdb(c.ResetWritePointer(all=True).cdb) is I
    assert safety.classify(c.FinishZone(all=True)) is D


def test_security_protocol_out_is_irreversible():
    cmd = c.SecurityProtocolOut(security_protocol=1, security_protocol_specific=1, data=bytes(512))
    assert safety.classify(cmd) is I
    assert safety.classify_cdb(cmd.cdb, OUT) is I
    assert safety.classify(c.SecurityProtocolIn) is R


def test_send_key_on_an_mmc_device_is_data_changing_when_it_sends_a_key():
    rsoc = c.ReportSupportedOperationCodes(reporting_options=0, allocation_length=512)
    assert safety.classify(rsoc) is R
    assert safety.classify_cdb(rsoc.cdb, IN) is R
    assert safety.classify_cdb(rsoc.cdb, OUT) is D  # the same bytes are SEND KEY to a DVD drive


def test_service_actions_are_trusted_where_every_device_type_shares_the_field():
    assert safety.classify_cdb(sa_cdb(0x7F, 0x0009), IN) is R  # READ(32)
    assert safety.classify_cdb(sa_cdb(0x9E, 0x10, 16), IN) is R  # READ CAPACITY(16)
    assert safety.classify_cdb(sa_cdb(0x9E, 0x18, 16), IN) is I  # REMOVE ELEMENT AND TRUNCATE
    assert safety.classify_cdb(sa_cdb(0x94, 0x01, 16)) is R  # CLOSE ZONE
    assert safety.classify_cdb(sa_cdb(0x95, 0x08, 16), IN) is I  # ZONE ACTIVATE


def test_an_unresolved_command_reads_its_fields_at_their_worst():
    class Unresolved(c.WriteSame10):  # the CDB is not packed yet (needs the block size)
        @property
        def cdb(self):
            from sgpy.errors import EncodeError

            raise EncodeError("not resolved")

    cmd = Unresolved.__new__(Unresolved)
    assert safety.classify(cmd) is I
