"""The data-loss safety policy: classification and refusal (no device needed)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgpy import command as c
from sgpy import safety
from sgpy.constants import Direction
from sgpy.errors import UnsafeCommand
from sgpy.safety import ALLOW_ALL, ALLOW_DATA_LOSS, READ_ONLY, Policy, Risk

R, D, I = Risk.READ, Risk.DATA_CHANGING, Risk.IRREVERSIBLE
IN, OUT, NONE = Direction.FROM_DEVICE, Direction.TO_DEVICE, Direction.NONE


@pytest.mark.parametrize(
    "cmd, risk",
    [
        (c.TestUnitReady(), R),
        (c.Inquiry(), R),
        (c.Inquiry(evpd=True, page_code=0x83), R),
        (c.ReadCapacity16(), R),
        (c.Read10(lba=0, transfer_length=1), R),
        (c.Read16(lba=0, transfer_length=1), R),
        (c.ModeSense10(), R),
        (c.LogSense(), R),
        (c.ReportLuns(), R),
        (c.StartStopUnit(), R),
        (c.SynchronizeCache10(), R),
        (c.Write6(lba=0, data=bytes(512)), D),
        (c.Write10(lba=0, transfer_length=1), D),
        (c.Write16(lba=0, transfer_length=1), D),
        (c.WriteAndVerify10(lba=0, transfer_length=1), D),
        (c.WriteSame10(lba=0, number_of_logical_blocks=1, data=bytes(512)), D),
        (c.WriteSame16(lba=0, number_of_logical_blocks=1, ndob=True), D),
        (c.Unmap(data=bytes(24)), D),
        (c.CompareAndWrite(lba=0, number_of_logical_blocks=1), D),
        (c.Orwrite16(lba=0, transfer_length=1), D),
        (c.ModeSelect10(data=bytes(8)), D),
        (c.LogSelect(), D),
        (c.PersistentReserveOutRegister(data=bytes(24)), D),
        (c.ReassignBlocks(data=bytes(8)), D),
        (c.FormatUnit(), I),
        (c.SanitizeBlockErase(), I),
        (c.SanitizeCryptographicErase(), I),
        (c.WriteBuffer(mode=5, data=bytes(16)), I),
        (c.AtaPassThrough16(protocol=4, t_dir=True, byt_blok=True, t_length=2, count=1), I),
        (c.AtaPassThrough12(protocol=3), I),
        # RawCommand: by operation code
        (c.RawCommand(cdb=bytes.fromhex("120000006000"), direction=IN, length=96), R),
        (c.RawCommand(cdb=bytes.fromhex("2a" + "00" * 9), direction=OUT, data=bytes(512)), D),
        (c.RawCommand(cdb=bytes.fromhex("04" + "00" * 5)), I),
        (c.RawCommand(cdb=bytes.fromhex("48" + "00" * 9)), I),
        (c.RawCommand(cdb=bytes.fromhex("c0" + "00" * 9), direction=IN, length=8), I),
        (c.RawCommand(cdb=bytes.fromhex("ff" + "00" * 9)), I),
        (c.RawCommand(cdb=bytes.fromhex("e5" + "00" * 15)), I),
        # known to the opcode table though no class exists
        (c.RawCommand(cdb=bytes.fromhex("3f" + "00" * 9)), D),   # WRITE LONG(10)
        (c.RawCommand(cdb=bytes.fromhex("38" + "00" * 9)), I),   # FORMAT WITH PRESET
        (c.RawCommand(cdb=bytes.fromhex("19" + "00" * 5)), I),   # ERASE(6)
        (c.RawCommand(cdb=bytes.fromhex("96" + "00" * 15)), I),  # WRITE BUFFER(16)
        (c.RawCommand(cdb=bytes.fromhex("8d" + "00" * 15)), D),  # WRITE ATTRIBUTE
        # unknown operation codes: irreversible whatever the direction
        (c.RawCommand(cdb=bytes.fromhex("02" + "00" * 5)), I),
        (c.RawCommand(cdb=bytes.fromhex("02" + "00" * 5), direction=IN, length=4), I),
        (c.RawCommand(cdb=bytes.fromhex("02" + "00" * 5), direction=OUT, data=b"x"), I),
    ],
    ids=lambda v: v.name if isinstance(v, Risk) else None,
)
def test_classify(cmd, risk):
    assert safety.classify(cmd) is risk


def test_a_command_class_is_never_classified_below_its_own_attributes():
    for cls in c.all_commands():
        own = I if cls.irreversible else D if cls.changes_data else R
        assert safety.classify(cls) >= own, cls.name


@pytest.mark.parametrize(
    "hexcdb, direction, risk",
    [
        ("120000006000", IN, R),
        ("000000000000", NONE, R),
        ("28000000000000000100", IN, R),
        ("2a000000000000000100", OUT, D),
        ("35000000000000000000", NONE, R),
        ("42000000000000001800", OUT, D),
        ("040000000000", NONE, I),
        ("c1000000000000000000", NONE, I),
        ("3b050000000000001000", OUT, I),
    ],
)
def test_classify_cdb(hexcdb, direction, risk):
    assert safety.classify_cdb(bytes.fromhex(hexcdb), direction) is risk


@given(st.integers(0xC0, 0xFF), st.binary(min_size=5, max_size=15), st.sampled_from([IN, OUT, NONE]))
def test_vendor_specific_operation_codes_are_always_irreversible(opcode, rest, direction):
    assert safety.classify_cdb(bytes([opcode]) + rest, direction) is I


@pytest.mark.parametrize("cls", c.all_commands(), ids=lambda cls: cls.name)
def test_raw_is_never_less_dangerous_than_the_class_with_the_same_operation_code_and_service_action(cls):
    """The bytes of any command, sent raw, are classified at least as the command itself."""
    sa = cls.service_action
    if cls.opcode == 0x7F:
        cdb = bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18]) + sa.to_bytes(2, "big") + bytes(22)
    else:
        cdb = bytes([cls.opcode, sa or 0]) + bytes(14)
    assert safety.classify(c.RawCommand(cdb=cdb)) >= safety.classify(cls)


@pytest.mark.parametrize(
    "policy, limit",
    [
        (READ_ONLY, R),
        (Policy(), R),
        (ALLOW_DATA_LOSS, D),
        (Policy(allow_irreversible=True), I),
        (ALLOW_ALL, I),
    ],
)
def test_policy_limits(policy, limit):
    assert policy.limit is limit
    for risk in Risk:
        assert policy.allows(risk) is (risk <= limit)


@pytest.mark.parametrize(
    "policy, cmd, message",
    [
        (READ_ONLY, c.Write10(lba=0, transfer_length=1), "Write10 changes data on the device .*allow_data_loss=True"),
        (ALLOW_DATA_LOSS, c.FormatUnit(), "FormatUnit can irreversibly destroy .*allow_irreversible=True"),
        (READ_ONLY, c.RawCommand(cdb=bytes.fromhex("c0" + "00" * 9)),
         r"RawCommand \(operation code C0h\) can irreversibly"),
    ],
)
def test_policy_refuses_with_a_message_that_names_the_remedy(policy, cmd, message):
    with pytest.raises(UnsafeCommand, match=message) as info:
        policy.check(cmd)
    assert info.value.command is cmd
    assert info.value.risk is safety.classify(cmd)


def test_check_returns_the_risk_and_takes_where_and_remedy():
    assert safety.check(c.Inquiry()) is R
    assert safety.check(c.Write10(lba=0, transfer_length=1), allow_data_loss=True) is D
    assert safety.check(c.FormatUnit(), allow_irreversible=True) is I
    with pytest.raises(UnsafeCommand, match="the tool refuses it: pass --allow-data-loss"):
        safety.check(c.Unmap(data=bytes(24)), where="the tool", remedy="pass --allow-data-loss")


def test_risk_labels():
    assert [r.label for r in Risk] == ["read", "data-changing", "irreversible"]


def test_opcode_risk():
    assert safety.opcode_risk(0x12) is R
    assert safety.opcode_risk(0x2A) is D
    assert safety.opcode_risk(0x04) is I
    assert safety.opcode_risk(0xC0) is I
    assert safety.opcode_risk(0x02) is I  # not in T10's list
    assert safety.opcode_risk(0x9E) is I  # some SERVICE ACTION IN(16) is unknown
    assert safety.opcode_risk(0x9E, 0x10) is R  # READ CAPACITY(16)
    with pytest.raises(ValueError):
        safety.opcode_risk(256)


class FakeChannel:
    def __init__(self, read_only=False, policy=None):
        self.read_only = read_only
        self.policy = policy

    def __repr__(self):
        return "Channel('/dev/sgX')"


@pytest.mark.parametrize(
    "channel, cmd, message",
    [
        (FakeChannel(read_only=True), c.Write10(lba=0, transfer_length=1),
         r"Write10 changes data .*Channel\('/dev/sgX'\), opened read_only=True, refuses it: open it without read_only"),
        (FakeChannel(read_only=True, policy=ALLOW_ALL), c.Unmap(data=bytes(24)), "read_only=True"),
        (FakeChannel(policy=ALLOW_DATA_LOSS), c.SanitizeBlockErase(),
         r"Channel\('/dev/sgX'\) refuses it: open the channel with a policy that allows it"),
        (FakeChannel(policy=READ_ONLY), c.WriteSame16(lba=0, number_of_logical_blocks=1, ndob=True), "refuses it"),
    ],
)
def test_check_channel_refuses(channel, cmd, message):
    with pytest.raises(UnsafeCommand, match=message):
        safety.check_channel(channel, cmd)


@pytest.mark.parametrize(
    "channel, cmd, risk",
    [
        (FakeChannel(), c.FormatUnit(), I),
        (FakeChannel(read_only=True), c.Inquiry(), R),
        (FakeChannel(policy=ALLOW_DATA_LOSS), c.Write16(lba=0, transfer_length=1), D),
    ],
)
def test_check_channel_allows(channel, cmd, risk):
    assert safety.check_channel(channel, cmd) is risk
