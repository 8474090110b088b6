"""Defect: ATA PASS-THROUGH(32) and unknown VARIABLE LENGTH service actions.

ATA PASS-THROUGH(32) (7Fh, service action 1FF0h, SAT-4) hands the device
any ATA command, exactly as ATA PASS-THROUGH(12) and (16) do, so it must be
irreversible like them: ``--allow-data-loss`` must not send it.  A 7Fh
service action sgpy does not know may be anything (FORMAT OSD is one), so
it is irreversible too.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgpy import command as c
from sgpy import safety
from sgpy.constants import Direction
from sgpy.errors import UnsafeCommand
from sgpy.safety import ALLOW_DATA_LOSS, Risk

IN, OUT, NONE = Direction.FROM_DEVICE, Direction.TO_DEVICE, Direction.NONE


def variable_length_cdb(service_action: int, rest: bytes = bytes(22)) -> bytes:
    """A 32-byte 7Fh CDB: ADDITIONAL CDB LENGTH 18h, service action in bytes 8-9."""
    return bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18]) + service_action.to_bytes(2, "big") + rest


@pytest.mark.parametrize("direction", [IN, OUT, NONE])
def test_ata_pass_through_32_is_irreversible_like_12_and_16(direction):
    cdb = variable_length_cdb(0x1FF0)
    assert safety.classify_cdb(cdb, direction) is Risk.IRREVERSIBLE
    assert safety.classify_cdb(cdb, direction) == safety.classify(c.AtaPassThrough16)
    assert safety.classify_cdb(cdb, direction) == safety.classify(c.AtaPassThrough12)


def test_allow_data_loss_refuses_ata_pass_through_32():
    raw = c.RawCommand(cdb=variable_length_cdb(0x1FF0), direction=OUT, data=bytes(512))
    with pytest.raises(UnsafeCommand, match=r"operation code 7Fh\) can irreversibly"):
        ALLOW_DATA_LOSS.check(raw)


@given(st.integers(0, 0xFFFF).filter(lambda sa: sa not in safety.VARIABLE_LENGTH_RISK),
       st.sampled_from([IN, OUT, NONE]))
def test_an_unknown_variable_length_service_action_is_irreversible(service_action, direction):
    assert safety.classify_cdb(variable_length_cdb(service_action), direction) is Risk.IRREVERSIBLE


@pytest.mark.parametrize("length", [1, 2, 8, 9])
def test_a_variable_length_cdb_too_short_for_its_service_action_is_irreversible(length):
    assert safety.classify_cdb(variable_length_cdb(0x0009)[:length]) is Risk.IRREVERSIBLE


def test_the_operation_code_alone_takes_the_most_dangerous_service_action():
    assert safety.opcode_risk(0x7F) is Risk.IRREVERSIBLE


@pytest.mark.parametrize("cls", [c.Write32, c.WriteAndVerify32, c.WriteSame32])
def test_known_variable_length_writes_stay_data_changing(cls):
    # NUMBER OF LOGICAL BLOCKS (bytes 28-31) 1: WRITE SAME(32) of zero blocks reaches the whole medium.
    cdb = variable_length_cdb(cls.service_action, bytes(18) + (1).to_bytes(4, "big"))
    assert safety.classify_cdb(cdb, OUT) is Risk.DATA_CHANGING
