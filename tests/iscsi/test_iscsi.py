"""iSCSI against a real target on loopback: many targets, lost targets, logins, discovery, timeouts."""

import errno
import os
import random
import signal
import struct
import threading
import time

import pytest

from sgpy import Channel, Reactor, command, default_reactor, handler
from sgpy import iscsi
from sgpy.errors import ChannelClosed, CommandTimeout, DeviceGone, HostError

BLOCK = 512


def pattern(lba, tag=0):
    return struct.pack(">QQ", tag, lba) * (BLOCK // 16)


def open_ready(url, **options):
    ch = Channel.from_url(url, **options)
    ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
    return ch


def fd_count():
    return len(os.listdir("/proc/self/fd"))


# -- many targets, one reactor ----------------------------------------------------------


def test_8_targets_10000_commands_one_reactor_each_completed_once_with_the_right_data(tgtd, new_target):
    blocks = 256
    reactor = Reactor()
    channels = []
    try:
        for t in range(8):
            ch = open_ready(tgtd.url(new_target("many"), 1), reactor=reactor)
            ch.execute_many([command.Write10(lba=lba, transfer_length=1, data=pattern(lba, t))
                             for lba in range(blocks)])
            channels.append(ch)
        seen = {}
        lock = threading.Lock()

        def count(io):
            with lock:
                seen[id(io)] = seen.get(id(io), 0) + 1

        rng = random.Random(10)
        ios = []
        per = 10_000 // len(channels)
        failed_before = reactor.statistics()["failed"]
        for ch in channels:
            cmds = []
            for _ in range(per):
                c = command.Read10(lba=rng.randrange(blocks), transfer_length=1)
                c.add_handler(count)
                cmds.append(c)
            ios.extend(ch.execute_many(cmds, async_=True))
        assert reactor.wait(timeout=120)
        assert len(ios) == 10_000
        tags = {id(ch): t for t, ch in enumerate(channels)}
        bad = [io for io in ios if io.data != pattern(io.command.lba, tags[id(io.channel)])]
        assert not bad, f"{len(bad)} reads returned another block's or another target's data"
        assert len(seen) == 10_000 and set(seen.values()) == {1}, "a completion was lost or delivered twice"
        stats = reactor.statistics()
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0 and stats["queued"] == 0
        assert stats["failed"] == failed_before
        assert len(stats["channels"]) == 8
    finally:
        for ch in channels:
            ch.close()
        reactor.close()


def test_queue_depth_bounds_commands_in_flight(tgtd, new_target):
    with open_ready(tgtd.url(new_target(), 1), queue_depth=4) as ch:
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)], async_=True)
        per = ch.reactor.statistics()["channels"][ch.path]
        assert per["in_flight"] <= 4 and per["in_flight"] + per["queued"] + sum(io.returned for io in ios) == 40
        ch.wait(timeout=30)
        assert all(io.ok for io in ios)


def test_a_background_reactor_thread_drives_iscsi_channels(tgtd, new_target):
    reactor = Reactor()
    reactor.start()
    try:
        with open_ready(tgtd.url(new_target(), 1), reactor=reactor) as ch:
            ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(500)])
            assert all(io.ok for io in ios)
            io = ch.cmd.Inquiry(async_=True)
            io.wait(timeout=10)
            assert io.result.vendor == "IET"
    finally:
        reactor.close()


# -- the target goes away ------------------------------------------------------------------


def test_target_killed_with_commands_in_flight_fails_each_exactly_once(make_tgtd):
    t = make_tgtd()
    iqn = t.add_target("victim")
    reactor = Reactor()
    try:
        ch = open_ready(t.url(iqn), reactor=reactor, queue_depth=32)
        calls = {}

        def count(io):
            calls[id(io)] = calls.get(id(io), 0) + 1

        cmds = []
        for i in range(3000):
            c = command.Read10(lba=i % 1000, transfer_length=8)
            c.add_handler(count)
            cmds.append(c)
        ios = ch.execute_many(cmds, async_=True)
        while sum(io.returned for io in ios) < 50:
            reactor.poll()
        t.kill()
        assert reactor.wait(timeout=30)
        gone = [io for io in ios if isinstance(io.exception, DeviceGone)]
        assert gone, "no command was in flight or queued when the target died"
        assert all(io.ok or isinstance(io.exception, DeviceGone) for io in ios)
        assert all(io.hdr is not None and io.hdr.host_status == 1 for io in gone)  # DID_NO_CONNECT
        # Handlers run once for the successes; a failed IO's verify handler raised before them.
        assert all(n == 1 for n in calls.values()) and len(calls) == len(ios) - len(gone)
        assert "connection to the target was lost" in str(gone[0].exception)
        with pytest.raises(DeviceGone):
            ch.cmd.TestUnitReady()
        stats = reactor.statistics()
        assert stats["outstanding"] == 0 and stats["in_flight"] == 0 and stats["queued"] == 0
        ch.close()
    finally:
        reactor.close()


def test_reconnect_resends_the_commands_in_flight_after_the_target_returns(make_tgtd):
    t = make_tgtd()
    iqn = t.add_target("phoenix")
    with open_ready(t.url(iqn), reconnect=20, queue_depth=16) as ch:
        ch.execute_many([command.Write10(lba=lba, transfer_length=1, data=pattern(lba, 7)) for lba in range(128)])
        ch.cmd.SynchronizeCache10()
        ios = ch.execute_many([command.Read10(lba=i % 128, transfer_length=1) for i in range(2000)], async_=True)
        while sum(io.returned for io in ios) < 100:
            ch.poll()
        t.restart()  # same portal, targets and backing files
        ch.wait(timeout=60)
        assert all(io.ok for io in ios), [io.exception for io in ios if not io.ok][:3]
        assert all(io.data == pattern(io.command.lba, 7) for io in ios)
        assert ch.reconnects == 1
        assert ch.cmd.TestUnitReady().ok


def test_reconnect_keeps_trying_until_the_target_is_back(make_tgtd):
    t = make_tgtd()
    iqn = t.add_target("late")
    with open_ready(t.url(iqn), reconnect=20) as ch:
        ch.execute_many([command.Write10(lba=lba, transfer_length=1, data=pattern(lba, 9)) for lba in range(32)])
        t.kill()
        ios = ch.execute_many([command.Read10(lba=i % 32, transfer_length=1) for i in range(300)], async_=True)
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # several refused attempts meanwhile
            ch.reactor.wait(timeout=0.1)
        assert not any(io.returned for io in ios)
        t.revive()
        ch.wait(timeout=30)
        assert all(io.ok and io.data == pattern(io.command.lba, 9) for io in ios)
        assert ch.reconnects == 1


def test_reconnect_gives_up_with_device_gone_when_the_target_stays_away(make_tgtd):
    t = make_tgtd()
    iqn = t.add_target("gone")
    with open_ready(t.url(iqn), reconnect=1.5) as ch:
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(500)], async_=True)
        t.kill()
        start = time.monotonic()
        ch.wait(timeout=30)
        assert time.monotonic() - start < 10
        assert all(io.ok or isinstance(io.exception, DeviceGone) for io in ios)
        assert any(isinstance(io.exception, DeviceGone) for io in ios)
        assert "reconnect=1.5" in str(next(io.exception for io in ios if not io.ok))


def test_a_stopped_target_times_commands_out_and_the_channel_recovers(make_tgtd):
    t = make_tgtd()
    iqn = t.add_target("sleepy")
    with open_ready(t.url(iqn)) as ch:
        assert ch.block_size == BLOCK  # learned now, not while the target sleeps
        t.suspend()
        try:
            start = time.monotonic()
            with pytest.raises(CommandTimeout, match="no answer within 300 ms") as info:
                ch.execute(command.Read10(lba=0, transfer_length=1), timeout=300)
            assert 0.25 < time.monotonic() - start < 3
            assert info.value.io.hdr.host_status == 3  # DID_TIME_OUT
        finally:
            t.resume()
        assert ch.cmd.Read10(lba=0, transfer_length=1).ok
        # The aborted command has been let go of by now or soon; nothing is left pending.
        deadline = time.monotonic() + 10
        while ch.reactor.statistics()["channels"][ch.path]["in_flight"] and time.monotonic() < deadline:
            ch.reactor.wait(timeout=0.1)
            ch.poll()
        assert ch.reactor.statistics()["channels"][ch.path]["in_flight"] == 0


def _stalled_read(make_tgtd):  # type: ignore[no-untyped-def]
    """A private tgtd whose LUN 1 holds a pattern, a session to it, and READ(10) of its first 64 blocks."""
    t = make_tgtd()
    iqn = t.add_target("stalled")
    with open_ready(t.url(iqn)) as ch:
        ch.execute(command.Write10(lba=0, transfer_length=64, data=b"".join(pattern(i, 7) for i in range(64))))
    url = iscsi.IscsiUrl.from_string(t.url(iqn))
    conn = iscsi._open_connection(url, iscsi.LoginOptions(), discovery=False, lun=1)
    tur = bytes(command.TestUnitReady().cdb)
    for _ in range(5):  # the new session's unit attentions (SAM-6 5.14) go to these, not to the READ
        if conn.run_command(1, tur, 0, 0, deadline=time.monotonic() + 5)[0] == 0:
            break
    return t, conn, bytes(command.Read10(lba=0, transfer_length=64).cdb)


def _serve(conn, seconds):  # type: ignore[no-untyped-def]
    """Service the connection for ``seconds``: whatever the target still sends is read and processed."""
    conn.run(lambda: False, time.monotonic() + seconds)


@pytest.mark.parametrize("cancel", [False, True], ids=["left-queued", "cancelled"])
def test_a_late_answer_is_written_only_into_a_command_libiscsi_still_holds(make_tgtd, cancel):
    """A READ into a buffer gets no answer in time (the target is stopped); the answer comes later.

    Left queued in libiscsi (the hazard), the command gets its Data-In written into the buffer after
    the caller stopped waiting; cancelled in libiscsi, as run_command does, nothing is written and
    nothing is recorded.
    """
    t, conn, cdb = _stalled_read(make_tgtd)
    buf = bytearray(b"\xee" * 64 * BLOCK)
    try:
        t.suspend()
        try:
            assert conn.submit(1, cdb, 1, iscsi._b.ffi.from_buffer(buf), len(buf)) == 0
            assert not conn.run(lambda: conn.ptr.ndone > 0, time.monotonic() + 0.3)  # no answer in time
            assert conn.outstanding == 1
            if cancel:
                conn.cancel_all()
                assert conn.outstanding == 0
        finally:
            t.resume()
        _serve(conn, 2)
        if cancel:
            assert buf == bytearray(b"\xee" * 64 * BLOCK) and conn.take()[0] == 0
        else:
            assert bytes(buf[:BLOCK]) == pattern(0, 7)  # written after the wait
    finally:
        conn.close()


class Interrupted(Exception):
    pass


def test_a_synchronous_command_cancels_in_libiscsi_what_it_stops_waiting_for(make_tgtd):
    """run_command (discovery's REPORT LUNS and INQUIRY) leaves no task, so no pointer to its buffer, in libiscsi.

    Whether the wait ends at the deadline or by an exception (a signal handler's, here), the
    command is cancelled in libiscsi before its buffer is released.
    """
    t, conn, cdb = _stalled_read(make_tgtd)

    def interrupt(signum, frame):  # type: ignore[no-untyped-def]
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        t.suspend()
        try:
            start = time.monotonic()
            assert conn.run_command(1, cdb, 1, 64 * BLOCK, deadline=start + 0.3) is None
            assert time.monotonic() - start < 2
            assert conn.outstanding == 0
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                conn.run_command(1, cdb, 1, 64 * BLOCK, deadline=time.monotonic() + 10)
            assert conn.outstanding == 0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            t.resume()
        _serve(conn, 2)
        assert conn.take()[0] == 0  # the late answers found no command
    finally:
        signal.signal(signal.SIGALRM, previous)
        conn.close()


# -- logging in ----------------------------------------------------------------------------------


def test_connection_refused_names_the_portal(tgtd):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(iscsi.IscsiConnectionRefused, match=f"127.0.0.1:{port}: connection refused") as info:
        Channel.from_url(f"iscsi://127.0.0.1:{port}/iqn.2024-01.org.sgpy.test:none/1")
    assert isinstance(info.value, ConnectionRefusedError) and info.value.errno == errno.ECONNREFUSED


def test_unknown_target_lists_the_targets_there(tgtd, new_target):
    real = new_target("real")
    wrong = real + "-typo"
    with pytest.raises(iscsi.UnknownTarget, match="no target named") as info:
        Channel.from_url(tgtd.url(wrong))
    assert info.value.status == 0x0203
    assert real in info.value.targets and real in str(info.value)


def test_a_lun_that_does_not_exist(tgtd, new_target):
    iqn = new_target(luns=(1, 2))
    default_reactor()  # created on first use: its fds are not a leak
    before = fd_count()
    with pytest.raises(iscsi.NoSuchLun, match="has no LUN 7 \\(LUNs there: 0, 1, 2\\)") as info:
        Channel.from_url(tgtd.url(iqn, 7))
    assert info.value.luns == (0, 1, 2)
    assert fd_count() == before


@pytest.mark.parametrize("credentials, error, message", [
    ("", iscsi.AuthenticationFailed, "the target wants CHAP: pass user= and password="),
    ("alice%wrong-secret", iscsi.AuthenticationFailed, "check the CHAP user 'alice' and its secret"),
    ("mallory%secret-12345", iscsi.AuthenticationFailed, "check the CHAP user 'mallory'"),
])
def test_chap_failures(tgtd, new_target, credentials, error, message):
    iqn = new_target("chap")
    tgtd.add_chap(iqn, "alice", "secret-12345")
    with pytest.raises(error, match=message) as info:
        Channel.from_url(tgtd.url(iqn, credentials=credentials))
    assert info.value.status == 0x0201
    assert "secret-12345" not in str(info.value) and "wrong-secret" not in str(info.value)


def test_chap_and_mutual_chap_log_in(tgtd, new_target):
    iqn = new_target("mutual")
    tgtd.add_chap(iqn, "bob", "bob-secret-123")
    with open_ready(tgtd.url(iqn, credentials="bob%bob-secret-123")) as ch:
        assert ch.cmd.Read10(lba=0, transfer_length=1).ok
        assert "bob-secret" not in repr(ch) and "***" in repr(ch)
    tgtd.add_chap(iqn, "tgt", "target-secret-1", outgoing=True)
    url = tgtd.url(iqn) + "?target_user=tgt&target_password=target-secret-1"
    with open_ready(url, user="bob", password="bob-secret-123") as ch:
        assert ch.cmd.Read10(lba=0, transfer_length=1).ok
    with pytest.raises(iscsi.AuthenticationFailed, match="mutual CHAP failed"):
        Channel.from_url(tgtd.url(iqn), user="bob", password="bob-secret-123", target_user="tgt",
                         target_password="not-the-target-secret")


def test_initiator_name_allow_list(tgtd, new_target):
    allowed = "iqn.2024-01.org.sgpy.test:allowed-host"
    iqn = new_target("acl", initiators=[allowed])
    with open_ready(tgtd.url(iqn), initiator_name=allowed) as ch:
        assert ch.options.initiator_name == allowed
        assert ch.cmd.TestUnitReady().ok
    with pytest.raises(iscsi.LoginFailed) as info:
        Channel.from_url(tgtd.url(iqn), initiator_name="iqn.2024-01.org.sgpy.test:stranger")
    assert isinstance(info.value, (iscsi.AuthorizationFailed, iscsi.UnknownTarget))


def test_header_digest_crc32c(tgtd, new_target):
    iqn = new_target("digest")
    with open_ready(tgtd.url(iqn) + "?header_digest=crc32c") as ch:
        assert ch.options.header_digest == "crc32c"
        ch.cmd.Write10(lba=3, transfer_length=1, data=pattern(3))
        assert ch.cmd.Read10(lba=3, transfer_length=1).data == pattern(3)
    with pytest.raises(ValueError, match="DataDigest=None only"):
        Channel.from_url(tgtd.url(iqn), data_digest="crc32c")


# -- discovery --------------------------------------------------------------------------------------


def test_discover_lists_targets_and_their_luns(tgtd, new_target):
    a = new_target("disco-a", luns=(1,))
    b = new_target("disco-b", luns=(1, 2, 3))
    found = {t.iqn: t for t in iscsi.discover(tgtd.portal)}
    assert {a, b} <= set(found)
    assert [lun.lun for lun in found[b].luns] == [0, 1, 2, 3]
    disks = [lun for lun in found[b].luns if lun.device_type == 0]
    assert [d.lun for d in disks] == [1, 2, 3] and disks[0].vendor == "IET"
    assert found[a].portals and found[a].portals[0].startswith(f"127.0.0.1:{tgtd.port}")
    assert tgtd.url(b, 2) in found[b].urls
    with open_ready(found[b].luns[2].url) as ch:
        assert ch.cmd.TestUnitReady().ok
    names = [t.iqn for t in iscsi.discover(f"iscsi://{tgtd.portal}", luns=False)]
    assert a in names and b in names


def test_discover_reports_a_target_it_cannot_log_in_to(tgtd, new_target):
    iqn = new_target("disco-chap")
    tgtd.add_chap(iqn, "carol", "carol-secret-1")
    found = {t.iqn: t for t in iscsi.discover(tgtd.portal)}
    assert found[iqn].luns == () and "authentication failed" in found[iqn].error
    found = {t.iqn: t for t in iscsi.discover(tgtd.portal, user="carol", password="carol-secret-1")}
    assert [lun.lun for lun in found[iqn].luns] == [0, 1]


# -- the channel's life ------------------------------------------------------------------------------


def test_no_fd_leak_over_many_channels(tgtd, new_target):
    url = tgtd.url(new_target())
    Channel.from_url(url).close()
    before = fd_count()
    for _ in range(30):
        ch = Channel.from_url(url)
        ch.close()
        ch.close()  # idempotent
    for _ in range(5):
        with Channel.from_url(url) as ch:
            ch.execute_many([command.Inquiry() for _ in range(40)], async_=True)
            ch.wait()
    assert fd_count() == before


def test_close_with_commands_queued_fails_the_unsent_ones(tgtd, new_target):
    ch = open_ready(tgtd.url(new_target()), queue_depth=2)
    ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(200)], async_=True)
    ch.close()
    assert all(io.returned for io in ios)
    assert all(io.ok or isinstance(io.exception, ChannelClosed) for io in ios)
    assert any(isinstance(io.exception, ChannelClosed) for io in ios)
    with pytest.raises(ChannelClosed):
        ch.cmd.TestUnitReady()


def test_cdbs_longer_than_16_bytes_are_refused_before_sending(tgtd, new_target):
    with open_ready(tgtd.url(new_target())) as ch:
        with pytest.raises(iscsi.CdbTooLong, match="at most 16"):
            ch.execute(command.Read32(lba=0, transfer_length=1))


def test_large_transfers_both_ways(tgtd, new_target):
    with open_ready(tgtd.url(new_target(size_mb=32))) as ch:
        blob = bytes(random.Random(3).getrandbits(8) for _ in range(1 << 16)) * 128  # 8 MiB
        ch.cmd.Write10(lba=100, transfer_length=len(blob) // BLOCK, data=blob)
        io = ch.cmd.Read10(lba=100, transfer_length=len(blob) // BLOCK)
        assert io.hdr.resid == 0 and io.data == blob
        with pytest.raises(Exception, match="at most 33554432 bytes"):
            ch.cmd.Read16(lba=0, transfer_length=(32 << 20) // BLOCK + 1)


def test_max_fds_is_accepted_and_a_channel_keeps_one_session(tgtd, new_target):
    with open_ready(tgtd.url(new_target()), max_fds=8) as ch:
        ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(100)], async_=True)
        assert ch.reactor.statistics()["channels"][ch.path]["fds"] == 1
        ch.wait()


def test_transport_errors_are_host_errors(tgtd, new_target):
    # A plain SCSI failure keeps its SCSI class; HostError is for the transport.
    with open_ready(tgtd.url(new_target())) as ch:
        io = ch.execute(command.Read16(lba=1 << 40, transfer_length=1), verify_handler=handler.might_fail)
        assert not isinstance(io.error, HostError) and io.hdr.host_status == 0


def test_an_iscsi_channel_has_every_attribute_channel_init_sets(tgtd, new_target):
    # IscsiChannel cannot call Channel.__init__ (it needs a device fd), so it
    # sets the same attributes itself; this catches one added to the engine later.
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(Channel.__init__)))
    names = {node.attr for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
             and isinstance(node.value, ast.Name) and node.value.id == "self"}
    names -= {"sg_version"}  # sg character devices only
    with open_ready(tgtd.url(new_target())) as ch:
        missing = sorted(n for n in names if not hasattr(ch, n))
    assert not missing, f"IscsiChannel.__init__ does not set {missing}"
