"""Unit attentions on iSCSI: a new session's are cleared at login and recorded,
and commands sgpy sends on its own behalf never fail the caller's for one."""

import sgpy
from sgpy import command
from sgpy.constants import SenseKey


def test_a_fresh_session_reads_at_once_and_records_what_it_cleared(tgtd, new_target):
    iqn = new_target()
    with sgpy.Channel.from_path(tgtd.url(iqn, 1)) as ch:  # from_path takes URLs too
        assert ch.cmd.Inquiry().result is not None
        # The READ needs the block size: sgpy's own READ CAPACITY(16) must not
        # have met the session's unit attention, nor passed it to the READ.
        io = ch.cmd.Read10(lba=0, transfer_length=1)
        assert len(io.data) == 512
        assert ch.unit_attentions, "tgtd reports a unit attention on every new session"
        for sense in ch.unit_attentions:
            assert sense.sense_key == SenseKey.UNIT_ATTENTION
        assert any(s.asc == 0x29 for s in ch.unit_attentions)  # 29h: POWER ON, RESET, OR BUS DEVICE RESET


def test_every_new_session_clears_its_own(tgtd, new_target):
    iqn = new_target()
    for _ in range(3):
        with sgpy.Channel.from_url(tgtd.url(iqn, 1)) as ch:
            assert ch.unit_attentions
            assert ch.execute(command.TestUnitReady()).error is None
