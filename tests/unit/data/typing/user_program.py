# A user's program, checked by mypy in tests/unit/test_typing.py: each
# reveal_type line's expected type follows "# T:", each line that must be an
# error is marked "# E:" with a fragment of mypy's message.
import asyncio

import sgpy
from sgpy import Channel, command, handler

reveal_type(sgpy.Channel)  # T: def (fd: builtins.int, path: builtins.str
reveal_type(Channel.from_path)  # T: def (path: builtins.str, **options: Any) -> sgpy.channel.Channel

with Channel.from_path("/dev/sg0") as ch:
    io = ch.cmd.Inquiry()
    reveal_type(io)  # T: sgpy.io.Io[sgpy.responses.inquiry.StandardInquiryData | sgpy.responses.vpd.VpdPage]
    reveal_type(io.result)  # T: sgpy.responses.inquiry.StandardInquiryData | sgpy.responses.vpd.VpdPage | None
    cap = ch.execute(command.ReadCapacity16())
    reveal_type(cap.result)  # T: sgpy.responses.capacity.ReadCapacity16Data | None
    rd = ch.cmd.Read10(lba=0, transfer_length=1, async_=True)
    reveal_type(rd)  # T: sgpy.io.Io[None]
    reveal_type(rd.data)  # T: builtins.bytes
    ios = ch.execute_many([command.Read10(lba=i, transfer_length=8) for i in range(4)], async_=True)
    reveal_type(ios)  # T: builtins.list[sgpy.io.Io[Any]]
    ch.execute(command.Read16(lba=1 << 40, transfer_length=1), verify_handler=handler.must_fail)
    reveal_type(command.Read10(lba=0, transfer_length=1).lba)  # T: builtins.int
    reveal_type(command.Write10(lba=0, data=b"x" * 512).transfer_length)  # T: int | None

    command.Read10(lba="x", transfer_length=1)  # E: Argument "lba" to "Read10" has incompatible type "str"
    command.Read10(transfer_length=1)  # E: Missing named argument "lba" for "Read10"
    ch.cmd.Read10(lba=0, transfer_length=1, colour=2)  # E: Unexpected keyword argument "colour"
    ch.cmd.NoSuchCommand()  # E: "Commands" has no attribute "NoSuchCommand"
    ch.execute("not a command")  # E: incompatible type "str"; expected "Command[Never]"


async def main() -> None:
    async with sgpy.aio.open("/dev/sg0") as ach:
        inq = await ach.cmd.Inquiry()
        reveal_type(inq.result)  # T: sgpy.responses.inquiry.StandardInquiryData | sgpy.responses.vpd.VpdPage | None
        lbas = await ach.execute(command.GetLbaStatus(starting_lba=0))
        reveal_type(lbas.result)  # T: sgpy.responses.misc.LbaStatus | None

asyncio.run(main())
