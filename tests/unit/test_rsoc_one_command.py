"""REPORT SUPPORTED OPERATION CODES about one command (SPC-5 6.35): the question
(ReportSupportedOperationCodes.one_command) and the parts of the answer sg_opcodes -o shows
(OneCommandSupport's MLU, CDLP and the CDB usage map bit by bit)."""

import pytest

from sgpy import command
from sgpy.errors import EncodeError
from sgpy.responses import CommandSupport, OneCommandSupport
from sgpy.responses.opcodes import MLU_TEXT


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def test_one_command_without_a_service_action_is_reporting_options_1():
    cmd = command.ReportSupportedOperationCodes.one_command(0x28)
    assert cmd.reporting_options == 1 and cmd.requested_operation_code == 0x28
    assert cmd.cdb == h("a3 0c 01 28 00 00 00 00 02 00 00 00")


def test_one_command_with_a_service_action_is_reporting_options_2():
    cmd = command.ReportSupportedOperationCodes.one_command(0x9E, 0x10, rctd=True, allocation_length=0x100)
    assert cmd.cdb == h("a3 0c 82 9e 00 10 00 00 01 00 00 00")
    assert command.ReportSupportedOperationCodes.one_command(0x7F, 0xFFFF).cdb[2:6] == h("02 7f ff ff")
    assert command.ReportSupportedOperationCodes.one_command(0xA3, 0).reporting_options == 2  # SA 0 is one too


@pytest.mark.parametrize("op, sa", [(256, None), (-1, None), (0x9E, 0x10000), (0x9E, -1)])
def test_one_command_refuses_what_the_cdb_cannot_carry(op, sa):
    with pytest.raises(EncodeError):
        command.ReportSupportedOperationCodes.one_command(op, sa)


def test_mlu_cdlp_and_the_usage_bits():
    # byte 1: CTDP 0, MLU 10b, CDLP 01b, SUPPORT 011b
    d = OneCommandSupport.from_bytes(h("00 4b 00 0a 28 fa ff ff ff ff 00 ff ff 07"))
    assert d.support is CommandSupport.SUPPORTED and d.mlu == 2 and d.cdlp == 1 and not d.ctdp
    assert MLU_TEXT[d.mlu].startswith("affects more than one")
    bits = d.usage_bits()
    assert len(bits) == 9  # the bytes after the opcode
    assert bits[0] == (7, 6, 5, 4, 3, 1) and bits[1] == tuple(range(7, -1, -1)) and bits[5] == ()
    assert bits[8] == (2, 1, 0)


def test_usage_bits_of_an_answer_without_a_map():
    assert OneCommandSupport.from_bytes(h("00 01 00 00")).usage_bits() == ()
    assert OneCommandSupport.from_bytes(h("00 03 00 0a 28 fa")).usage_bits() == ()  # cut short: no map
    assert OneCommandSupport.from_bytes(h("00 61 00 00")).mlu == 3
