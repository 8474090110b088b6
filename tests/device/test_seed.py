"""Every example of the original sgpy README's API section, in Python 3 spelling.

(``async=True`` is ``async_=True`` or ``**{"async": True}``; ``tostring()`` is
``tobytes()``; ``data=`` takes bytes.)
"""

import pytest

import sgpy
from sgpy import Channel, command, handler
from sgpy.errors import TaskFailed


@pytest.fixture
def channel(sg_device):
    with Channel.from_path(sg_device) as ch:
        ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)  # eat a power-on UA
        yield ch


def test_initialization(sg_device):
    ch = Channel.from_path(sg_device)
    try:
        assert repr(ch) == f"Channel({sg_device!r})"
    finally:
        ch.close()


def test_execute_a_single_command(channel):
    io = channel.cmd.TestUnitReady()
    assert repr(io) == "NoDirectionIo(timeout=60000, returned=True)"
    io = channel.cmd.Write6(lba=0, data=b"a" * 512)
    assert repr(io) == "Output(timeout=60000, returned=True)"


def test_execute_a_single_command_asynchronously(channel):
    channel.cmd.Write6(lba=0, data=b"a" * 512)
    io = channel.cmd.Read10(lba=0, transfer_length=1, async_=True)
    assert repr(io) == "Input(timeout=60000, returned=False)"
    assert io.poll() in (False, True)  # a delay=0 device may have answered already
    assert io.wait() is None
    assert io.poll() is True
    assert io.data_buf.tobytes() == b"a" * 512


def test_async_keyword_in_the_original_spelling(channel):
    io = channel.cmd.Read10(lba=0, transfer_length=1, **{"async": True})
    assert repr(io).startswith("Input(")
    io.wait()
    ios = channel.execute_many([command.TestUnitReady()], **{"async": True})
    channel.wait()
    assert ios[0].returned


def test_execute_a_batch_of_commands(channel):
    cmd = command.Reserve6()
    ios = channel.execute_many([cmd, cmd])
    assert [repr(io) for io in ios] == ["NoDirectionIo(timeout=60000, returned=True)"] * 2
    channel.cmd.Release6()


def test_execute_a_batch_of_commands_asynchronously(channel):
    cmd = command.Release6()
    ios = channel.execute_many([cmd, cmd], async_=True)
    assert all(repr(io).startswith("NoDirectionIo(timeout=60000, returned=") for io in ios)
    assert channel.wait() is None
    assert channel.poll() is True
    assert ios[0].poll() is True


def test_add_response_handlers(channel, capsys):
    cmd = command.Read10(lba=0, transfer_length=1)
    assert repr(cmd).startswith("Read10(")
    assert "lba=0" in repr(cmd) and "transfer_length=1" in repr(cmd) and "opcode" not in repr(cmd)

    def print_duration(io):
        print("%r took %d milliseconds" % (io, io.hdr.duration))

    cmd.add_handler(print_duration)
    io = channel.execute(cmd)
    assert repr(io) == "Input(timeout=60000, returned=True)"
    out = capsys.readouterr().out
    assert out.startswith("Input(timeout=60000, returned=True) took ") and out.endswith(" milliseconds\n")


def test_expecting_failures(channel):
    with pytest.raises(TaskFailed) as info:
        channel.execute(command.Read16(lba=0xFFFFFFFF, transfer_length=1))
    assert isinstance(info.value, sgpy.IllegalRequest)
    assert "Logical block address out of range" in str(info.value)
    io = channel.execute(command.Read16(lba=0xFFFFFFFF, transfer_length=1, verify_handler=handler.must_fail))
    assert repr(io) == "Input(timeout=60000, returned=True)"
    assert isinstance(io.error, sgpy.IllegalRequest)


def test_command_module_spellings():
    assert command.TestUnitReady().cdb == bytes(6)
    assert command.Read10(lba=0, transfer_length=1).cdb[0] == 0x28
    assert command.Write6(lba=0, data=b"a" * 512).data == b"a" * 512
    assert command.Reserve6().cdb[0] == 0x16
    assert command.Release6().cdb[0] == 0x17
    assert command.Read16(lba=0xFFFFFFFF, transfer_length=1).cdb[0] == 0x88
