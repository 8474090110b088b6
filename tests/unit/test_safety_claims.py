"""docs/safety.rst, claim by claim: each test's docstring quotes the claim it backs.

The opcode-by-opcode tier rules are proved in test_safety_table.py; this
file backs the rest of the page (classes, policies, the channel, the
command line).
"""

import pytest

from sgpy import cli
from sgpy import command as c
from sgpy import safety
from sgpy.constants import Direction
from sgpy.errors import UnsafeCommand
from sgpy.safety import ALLOW_ALL, ALLOW_DATA_LOSS, READ_ONLY, Policy, Risk

R, D, I = Risk.READ, Risk.DATA_CHANGING, Risk.IRREVERSIBLE
OUT = Direction.TO_DEVICE


def test_claim_every_command_falls_in_one_of_three_classes():
    """"sgpy.safety sorts every command into one of three classes"."""
    assert len(Risk) == 3
    for cls in c.all_commands():
        assert isinstance(safety.classify(cls), Risk), cls.name
    for opcode in range(256):
        assert isinstance(safety.classify_cdb(bytes([opcode]) + bytes(15)), Risk)


@pytest.mark.parametrize(
    "cmd, risk",
    [
        # READ examples
        (c.Inquiry(), R), (c.Read10(lba=0, transfer_length=1), R), (c.Verify16(lba=0, verification_length=1), R),
        (c.TestUnitReady(), R), (c.ModeSense10(), R), (c.LogSense(), R), (c.ReportLuns(), R),
        (c.StartStopUnit(), R), (c.SynchronizeCache10(), R), (c.SendDiagnostic(selftest=True), R),
        # DATA_CHANGING examples
        (c.Write10(lba=0, transfer_length=1), D), (c.WriteAndVerify16(lba=0, transfer_length=1), D),
        (c.WriteSame16(lba=0, number_of_logical_blocks=8, ndob=True), D), (c.Unmap(data=bytes(24)), D),
        (c.CompareAndWrite(lba=0, number_of_logical_blocks=1), D), (c.ModeSelect10(data=bytes(8)), D),
        (c.LogSelect(), D), (c.PersistentReserveOutRegister(data=bytes(24)), D), (c.Reserve6(), D),
        (c.Release10(), D), (c.ReassignBlocks(data=bytes(8)), D), (c.SendDiagnostic(data=bytes(8)), D),
        (c.ResetWritePointer(zone_id=0), D), (c.RawCommand(cdb=bytes.fromhex("81" + "00" * 15)), D),
        # IRREVERSIBLE examples
        (c.FormatUnit(), I), (c.SanitizeBlockErase(), I), (c.RawCommand(cdb=bytes.fromhex("19" + "00" * 5)), I),
        (c.RawCommand(cdb=bytes.fromhex("a1" + "00" * 11)), I), (c.RawCommand(cdb=bytes.fromhex("5b" + "00" * 9)), I),
        (c.WriteBuffer(mode=5, data=bytes(16)), I), (c.AtaPassThrough12(protocol=3), I),
        (c.AtaPassThrough16(protocol=3), I),
        (c.RawCommand(cdb=bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x1F, 0xF0]) + bytes(22)), I),
        (c.SecurityProtocolOut(data=bytes(512)), I), (c.RawCommand(cdb=bytes.fromhex("7e" + "00" * 15)), I),
        (c.WriteSame16(lba=0, number_of_logical_blocks=0, ndob=True), I), (c.ResetWritePointer(all=True), I),
        (c.RawCommand(cdb=bytes.fromhex("c5" + "00" * 9)), I), (c.RawCommand(cdb=bytes.fromhex("02" + "00" * 5)), I),
    ],
    ids=lambda v: v.name if isinstance(v, Risk) else None,
)
def test_claim_the_examples_of_each_class(cmd, risk):
    """The "examples" column of the three-classes table."""
    assert safety.classify(cmd) is risk


def test_claim_a_raw_cdb_takes_the_most_dangerous_meaning_over_every_device_type():
    """"a raw 93h is irreversible although it is WRITE SAME(16) on a disk"."""
    same = c.WriteSame16(lba=0, number_of_logical_blocks=8, ndob=True)
    assert safety.classify(same) is D
    assert safety.classify(c.RawCommand(cdb=same.cdb)) is I


def test_claim_a_command_class_takes_the_more_dangerous_of_its_attributes_and_its_meaning():
    """"classify takes the more dangerous of those and the class of the command's own meaning"."""
    assert c.Reserve6.changes_data and safety.classify(c.Reserve6) is D
    assert c.Write10.changes_data and safety.classify(c.Write10) is D
    assert c.FormatUnit.irreversible and safety.classify(c.FormatUnit) is I


def test_claim_opcode_risk_answers_for_a_code_alone_at_the_worst_of_its_fields():
    """"opcode_risk answers for a code (and service action) alone, at the worst of its fields"."""
    assert safety.opcode_risk(0x41) is I  # WRITE SAME(10) of zero blocks
    assert safety.opcode_risk(0x1D) is D  # SEND DIAGNOSTIC with a parameter list
    assert safety.opcode_risk(0x9E, 0x10) is R


def test_claim_allow_irreversible_includes_allow_data_loss():
    """"allow_irreversible lets everything through (it includes allow_data_loss)"."""
    only_irreversible = Policy(allow_irreversible=True)
    for risk in Risk:
        assert only_irreversible.allows(risk)
    assert ALLOW_DATA_LOSS.allows(D) and not ALLOW_DATA_LOSS.allows(I)


def test_claim_the_ready_made_policies():
    """READ_ONLY is Policy(): reads only; ALLOW_DATA_LOSS: writes yes, irreversible no; ALLOW_ALL."""
    assert READ_ONLY == Policy() and READ_ONLY.limit is R
    assert ALLOW_DATA_LOSS.limit is D
    assert ALLOW_ALL.limit is I


def test_claim_check_returns_the_class_or_raises_with_the_risk_and_the_remedy():
    """"policy.check(cmd) returns the command's class or raises UnsafeCommand (its risk attribute holds the class)"."""
    assert READ_ONLY.check(c.Inquiry()) is R
    with pytest.raises(UnsafeCommand, match="changes data on the device.*allow_data_loss=True") as info:
        READ_ONLY.check(c.Reserve10())
    assert info.value.risk is D


class FakeChannel:
    def __init__(self, read_only=False, policy=None):
        self.read_only, self.policy = read_only, policy

    def __repr__(self):
        return "Channel('/dev/sg0')"


def test_claim_read_only_is_the_same_as_the_read_only_policy_and_no_policy_sends_everything():
    """"read_only=True is the same as policy=safety.READ_ONLY. A channel opened with neither sends everything"."""
    for cmd in (c.Inquiry(), c.Reserve6(), c.FormatUnit(), c.SendDiagnostic(data=bytes(4))):
        with_read_only = FakeChannel(read_only=True)
        with_policy = FakeChannel(policy=READ_ONLY)
        outcomes = []
        for channel in (with_read_only, with_policy):
            try:
                outcomes.append(safety.check_channel(channel, cmd))
            except UnsafeCommand as exc:
                outcomes.append(exc.risk)
        assert outcomes[0] is outcomes[1]
        assert safety.check_channel(FakeChannel(), cmd) is safety.classify(cmd)


def run(capsys, *argv):
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["raw", "/dev/sg-none", "56", "00", "00", "00", "00", "00", "00", "00", "00", "00"], "--allow-data-loss"),
        (["raw", "/dev/sg-none", "04", "00", "00", "00", "00", "00"], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "7e", "00", "00", "00", "00", "00", "00", "00", "00", "00"], "--allow-irreversible"),
        (["raw", "/dev/sg-none", "93"] + ["00"] * 15 + ["--allow-data-loss"], "--allow-irreversible"),
    ],
)
def test_claim_the_command_line_is_read_only_unless_told_and_refuses_with_exit_6_before_opening(capsys, argv, flag):
    """"sgpy is read-only unless told otherwise"; "A refused command ends sgpy with exit status 6 before the device is even opened"."""
    code, err = run(capsys, *argv)
    assert code == cli.EXIT_REFUSED == 6
    assert "refused" in err and f"pass {flag} to send it" in err


@pytest.mark.parametrize("cls", c.all_commands(), ids=lambda cls: cls.name)
def test_every_command_class_says_what_the_policy_decides(cls: type) -> None:
    """A class's own ``changes_data`` / ``irreversible`` (what the reference tables show) is the risk the
    policy gives it: never an understatement."""
    own = I if cls.irreversible else D if cls.changes_data else safety.Risk.READ
    assert safety.classify(cls) is own
