"""Unit attentions on sg: commands sgpy sends on its own behalf clear and record them."""

import pytest

from sgpy import Channel, command, handler
from sgpy.constants import SenseKey
from sgpy.errors import UnitAttention


@pytest.mark.scsi_debug(num_tgts=1)
def test_a_capacity_change_does_not_fail_the_block_size_lookup(sg_device, scsi_debug):
    """scsi_debug queues CAPACITY DATA HAS CHANGED (2Ah/09h) on every device
    when virtual_gb changes; sgpy's own READ CAPACITY meets it first."""
    with Channel.from_path(sg_device) as ch:
        scsi_debug.set(virtual_gb=1)
        assert not ch.unit_attentions
        assert ch.block_size == 512
        assert ch.num_blocks == 2 * 1024 * 1024  # 1 GiB of 512-byte blocks
        assert [(s.sense_key, s.asc, s.ascq) for s in ch.unit_attentions] == [(SenseKey.UNIT_ATTENTION, 0x2A, 0x09)]
        # The caller's own commands still see unit attentions: only sgpy's are cleared.
        scsi_debug.set(virtual_gb=0)
        io = ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
        assert isinstance(io.error, UnitAttention)
