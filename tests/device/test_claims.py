"""Each promise of docs/engine.rst and docs/jobs.rst, and the test that proves it.

Claims proved elsewhere (the test named proves the words quoted):

docs/engine.rst
  'the kernel never sees EDOM'                     test_engine.py::test_queue_depth_64_on_one_channel_never_shows_edom,
                                                   test_engine.py::test_a_full_kernel_queue_waits_for_epollout_instead_of_failing
  'validate: channel open?'                        test_engine.py::test_closed_channel_refuses_work
  'block size (READ CAPACITY on first use)'        test_engine.py::test_block_size_is_learned_from_read_capacity
  'Completions are matched by pack_id, never by order'
                                                   test_faults.py::test_out_of_order_completions_reach_their_own_io
  'RECOVERED ERROR is success; the sense stays on io.sense'
                                                   test_faults.py::test_recovered_error_is_success_with_the_sense_kept
  'variable-length answer cut short? re-issue once, larger'
                                                   test_engine.py::test_variable_length_answers_are_reissued_once
  'Asynchronous work needs the sg node'            test_engine.py::test_block_device_is_synchronous_only,
                                                   test_engine.py::test_bsg_node_is_synchronous_only
  'refused before anything is sent, with TransferTooLarge naming the limit'
                                                   test_engine.py::test_transfer_larger_than_the_device_allows_is_refused_with_the_limit
  'One reactor serves any number of channels'      test_engine.py::test_100k_reads_over_8_channels_on_2_devices_one_reactor
  'commands may be submitted from any thread'; 'reactor.start() moves the driving into a background thread'
                                                   test_engine.py::test_background_thread_with_submitters_on_many_threads
  'completes with DID_TIME_OUT, raised as CommandTimeout'
                                                   test_faults.py::test_a_dropped_command_raises_command_timeout
  'an IO the kernel still holds 30 s past its timeout is finished with CommandTimeout, and its buffers are kept'
                                                   test_engine.py::test_watchdog_finishes_a_lost_command_once_and_keeps_its_buffers
  'the verify handler decides whether it is raised'
                                                   test_faults.py::test_must_fail_checks_the_sense_it_is_given
  'A KeyboardInterrupt during a wait loses nothing: a later wait completes the same IOs'
                                                   test_engine.py::test_keyboard_interrupt_during_wait_loses_no_command,
                                                   test_trust_lifecycle.py::test_keyboard_interrupt_during_waits_loses_no_completion,
                                                   test_state_machine.py (rule ctrl_c)
  'Ctrl-C never lands in the middle of the engine's bookkeeping ... each done callback runs exactly once'
                                                   tests/unit/test_interrupt.py::test_a_sigint_anywhere_in_a_protected_call_leaves_it_whole,
                                                   test_trust_lifecycle.py::test_keyboard_interrupt_during_waits_loses_no_completion,
                                                   test_state_machine.py (rule ctrl_c: SIGINT during every kind of wait)
  'while sgpy waits (epoll, SG_IO, a job's C loop, close() draining) ... it runs it at once'
                                                   tests/unit/test_interrupt.py::test_an_interruptible_wait_inside_bookkeeping_is_interrupted_at_once,
                                                   test_job.py::test_keyboard_interrupt_during_a_synchronous_job_drains_it
  'Several Ctrl-C while one is held back are one interruption; one more than two seconds later is run at once'
                                                   tests/unit/test_interrupt.py::test_repeated_sigints_while_held_back_are_one_interruption,
                                                   tests/unit/test_interrupt.py::test_a_later_sigint_is_not_held_back_for_ever
  'Another signal whose Python handler raises ... is held back the same way once you call sgpy.defer_signal'
                                                   tests/unit/test_interrupt.py::test_defer_signal_holds_back_another_signals_raising_handler
  'a handler you set later replaces it until your next call into sgpy puts it in front of yours'
                                                   tests/unit/test_interrupt.py::test_the_handler_in_front_calls_the_one_it_replaced
  'every pending IO of that channel fails exactly once with DeviceGone ... other channels go on'
                                                   test_unplug.py::test_hot_unplug_fails_each_pending_io_once_and_spares_the_other_device,
                                                   test_trust_lifecycle.py::test_unplug_with_queued_ios_fails_each_once_and_nothing_hangs
  'close() drains commands in flight'              test_engine.py::test_close_drains_commands_in_flight
  'once close() returns, nothing of the channel reaches a device' (issue 12)
                                                   test_trust_lifecycle.py::test_close_racing_synchronous_writes_never_writes_another_disk,
                                                   test_state_machine.py (rule close_channel)

docs/jobs.rst
  '``count`` commands'                             test_job.py::test_a_counted_job_sends_exactly_count_commands
  'as many as fit in ``seconds``'                  test_job.py::test_a_timed_job_ends_at_its_deadline
  'or both (whichever ends first)'                 test_job.py::test_count_and_seconds_whichever_first
  'A list of LBAs alone runs once per LBA'         test_job.py::test_list_job_sends_its_lbas_and_counts_them_by_default
  '"sequential" ... wrapping at the end'           test_job.py::test_sequential_job_wraps_around_its_range
  '"random" ... aligned positions ... repeatable with seed='
                                                   test_job.py::test_random_job_stays_in_its_range_and_aligned,
                                                   test_job.py::test_random_jobs_repeat_with_their_seed
  'None: the template's own LBA every time'        test_job.py::test_fixed_lba_job_and_test_unit_ready
  'the first failure stops the job ... raises it'  test_job.py::test_medium_error_stops_the_job_and_names_the_lba
  'With stop_on_error=False the job goes on, counts failures'
                                                   test_job.py::test_without_stop_on_error_failures_are_counted_and_the_job_goes_on
  'latency=False saves them'                       test_job.py::test_latency_can_be_off
  'jobs on several devices and ordinary IOs run side by side, in the caller's thread or the reactor's own'
                                                   test_job.py::test_jobs_on_several_devices_and_ios_share_one_reactor,
                                                   test_job.py::test_job_on_a_threaded_reactor
  'stamp=TAG ... verify=TAG ... DataMismatch names the block'
                                                   test_job.py::test_stamped_writes_verify_and_every_kind_of_bad_block_is_named
  'The exception's command is the template with the LBA it was sent with'
                                                   test_job.py::test_medium_error_stops_the_job_and_names_the_lba
  'RECOVERED ERROR counts as success (stats.recovered)'
                                                   test_job.py::test_recovered_error_counts_as_success
  'A device that goes away ends the job with DeviceGone'
                                                   test_unplug.py::test_hot_unplug_ends_a_job_with_device_gone_and_spares_the_other_device
  'closing the channel ends its jobs ... with ChannelClosed'
                                                   test_job.py::test_closing_the_channel_ends_its_job,
                                                   test_trust_lifecycle.py::test_close_ends_a_synchronous_job_in_another_thread,
                                                   test_trust_lifecycle.py::test_close_ends_an_async_job_with_channel_closed
  'Ctrl-C during a synchronous job stops it, collects what is in flight, closes its fds'
                                                   test_job.py::test_keyboard_interrupt_during_a_synchronous_job_drains_it
  'cancel() sends no more commands and lets the job end normally'
                                                   test_job.py::test_cancel_ends_a_running_job_without_losing_commands
  'On any other channel the same call runs the same job through the channel's own IOs'
                                                   test_job.py::test_jobs_on_block_and_bsg_nodes_run_one_command_at_a_time

The tests below prove the rest; each docstring quotes its claim.
"""

import ast
import os
import pathlib
import signal
import threading
import time

import pytest

import sgpy
from sgpy import Channel, Reactor, _binding, command, handler
from sgpy.errors import ChannelClosed, SgError

BLOCK = 512


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


def slow(scsi_debug, ns):
    """Every command takes ``ns`` nanoseconds (delay=0 first, so restoring ends at delay=0)."""
    scsi_debug.set(delay=0)
    scsi_debug.set(ndelay=ns)


def open_ready(path, **kw):
    kw.setdefault("block_size", BLOCK)
    ch = Channel.from_path(path, **kw)
    for _ in range(5):
        if ch.execute(command.TestUnitReady(), verify_handler=handler.might_fail).error is None:
            break
    return ch


def pool_fds(ch):
    return [st.fd for st in ch.transport.endpoints if not st.closed]


def sg_fds(path):
    """This process's fds open on ``path``."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == path:
                out.append(int(name))
        except OSError:
            pass
    return out


# -- docs/engine.rst ---------------------------------------------------------------


def test_only_the_binding_touches_the_extension():
    """docs/engine.rst: 'Only sgpy._binding touches the compiled extension sgpy._sgffi'."""
    root = pathlib.Path(sgpy.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n.endswith("_sgffi") for n in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"_binding.py"}, importers


def test_one_command_per_fd_first_then_up_to_16_per_fd(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'Commands go one per fd before any fd takes a second' and 'up to 16 per fd'."""
    slow(scsi_debug, 200_000_000)
    with open_ready(sg_device, reactor=reactor, max_fds=4) as ch:
        ios = [ch.execute(command.Read10(lba=i, transfer_length=1), async_=True) for i in range(4)]
        per = reactor.statistics()["channels"][sg_device]
        assert (per["fds"], per["in_flight"], per["queued"]) == (4, 4, 0)
        assert sorted(len(st.inflight) for st in ch.transport.endpoints) == [1, 1, 1, 1]
        ios += ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(70)], async_=True)
        per = reactor.statistics()["channels"][sg_device]
        assert (per["fds"], per["in_flight"], per["queued"]) == (4, 64, 10)
        assert sorted(len(st.inflight) for st in ch.transport.endpoints) == [16, 16, 16, 16]
        ch.wait(timeout=60)
        assert all(io.ok for io in ios)


def test_a_done_callbacks_next_command_goes_to_the_fd_its_completion_freed(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'the next command a done callback sends goes to the fd whose completion freed a
    place, not behind a queue'."""
    slow(scsi_debug, 20_000_000)
    with open_ready(sg_device, reactor=reactor, max_fds=4) as ch:
        fd_of = {}
        seen = []
        left = [40]

        def send(lba):
            io = ch.execute(command.Read10(lba=lba, transfer_length=1), async_=True)
            fd_of[id(io)] = io._fdstate
            io.add_done_callback(on_done)
            return io

        def on_done(io):
            if left[0] > 0:
                left[0] -= 1
                nxt = send(left[0])
                seen.append((fd_of[id(io)], nxt._fdstate, len(ch.transport.queue)))

        first = [send(i) for i in range(4)]
        assert len({fd_of[id(io)] for io in first}) == 4  # one per fd
        reactor.wait(timeout=60)
        assert len(seen) == 40 and all(io.ok for io in first)
        assert all(done is nxt and queued == 0 for done, nxt, queued in seen)
        assert sorted(len(st.inflight) for st in ch.transport.endpoints) == [0, 0, 0, 0]


def test_an_idle_fd_reserve_buffer_grows_to_the_transfer(sg_device, reactor):
    """docs/engine.rst: 'an idle fd's reserve buffer is grown (SG_SET_RESERVED_SIZE, read back) to fit the
    transfers it is given'."""
    with open_ready(sg_device, reactor=reactor, max_fds=1) as ch:
        (fd,) = pool_fds(ch)
        before = _binding.get_reserved_size(fd)
        size = max(before * 2, 256 * 1024)
        io = ch.execute(command.Read10(lba=0, transfer_length=size // BLOCK), async_=True)
        io.wait(timeout=30)
        assert io.ok and len(io.data) == size
        assert _binding.get_reserved_size(fd) >= size > before
        assert ch.transport.endpoints[0].reserved == _binding.get_reserved_size(fd)  # what it read back


def test_a_synchronous_command_does_not_wait_behind_queued_work(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'A synchronous command on an sg node ... never waits behind queued asynchronous work
    and never takes one of a pool fd's 16 places'."""
    slow(scsi_debug, 50_000_000)
    with open_ready(sg_device, reactor=reactor, max_fds=1) as ch:
        ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(48)], async_=True)
        per = reactor.statistics()["channels"][sg_device]
        assert (per["fds"], per["in_flight"], per["queued"]) == (1, 16, 32)
        start = time.monotonic()
        assert ch.cmd.TestUnitReady().ok
        took = time.monotonic() - start
        # The queue needs 3 rounds of 16 at 50 ms each at the very least.
        assert not all(io.returned for io in ios)
        per = reactor.statistics()["channels"][sg_device]
        assert per["fds"] == 1 and per["in_flight"] <= 16
        ch.wait(timeout=60)
        assert took < 0.15 * 3, took
        assert all(io.ok for io in ios)


def test_a_handler_exception_stops_the_chain_and_is_raised_by_wait(sg_device, reactor):
    """docs/engine.rst: 'An exception inside a handler stops that IO's chain and is raised by its wait();
    the reactor goes on'."""
    ran = []

    def bad(io):
        ran.append("bad")
        raise LookupError("from a handler")

    with open_ready(sg_device, reactor=reactor) as ch:
        cmd = command.Read10(lba=0, transfer_length=1)
        cmd.add_handler(bad)
        cmd.add_handler(lambda io: ran.append("after"))
        io = ch.execute(cmd, async_=True)
        with pytest.raises(LookupError, match="from a handler"):
            io.wait(timeout=10)
        assert ran == ["bad"] and io.returned and io.error is None
        assert ch.cmd.Read10(lba=0, transfer_length=1).ok
        assert reactor.statistics()["outstanding"] == 0


def test_a_bounded_wait_loses_nothing(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'io.wait(timeout), channel.wait(timeout) and reactor.wait(timeout=...) bound only the
    wait: on TimeoutError (or False) nothing is lost'."""
    with open_ready(sg_device, reactor=reactor) as ch:
        ch.cmd.Write10(lba=3, data=b"w" * BLOCK)
        slow(scsi_debug, 300_000_000)
        io = ch.execute(command.Read10(lba=3, transfer_length=1), async_=True)
        with pytest.raises(TimeoutError):
            io.wait(timeout=0.01)
        with pytest.raises(TimeoutError):
            ch.wait(timeout=0.01)
        assert reactor.wait(timeout=0.01) is False
        assert not io.returned
        io.wait(timeout=10)
        assert io.ok and io.data == b"w" * BLOCK
        assert reactor.statistics()["outstanding"] == 0


def test_eintr_is_retried_around_write_and_read(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'EINTR is retried around write() and read()'."""
    slow(scsi_debug, 2_000_000)
    seen = []
    with open_ready(sg_device, reactor=reactor, max_fds=2) as ch:
        old = signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(signum))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
            for _ in range(5):  # the asynchronous path: write() and read() on the pool's fds
                ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(64)], async_=True)
                ch.wait(timeout=60)
                assert all(io.ok for io in ios)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    assert len(seen) > 10  # the signals did arrive while it worked


def test_an_interrupted_synchronous_command_raises_at_once(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'The synchronous SG_IO path ... does not retry an interrupted ioctl ... the
    interruption is raised and the command's outcome is not waited for'."""
    with open_ready(sg_device, reactor=reactor) as ch:
        slow(scsi_debug, 900_000_000)

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGALRM, interrupt)
        start = time.monotonic()
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with pytest.raises(KeyboardInterrupt):
                ch.cmd.Read10(lba=0, transfer_length=1)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert time.monotonic() - start < 0.6
        time.sleep(1.0)  # the command the kernel still had comes back on its own fd
        assert ch.cmd.TestUnitReady().ok


def test_close_fails_queued_commands_with_channel_closed_and_drains_the_rest(sg_device, scsi_debug, reactor):
    """docs/engine.rst: 'channel.close() drains commands in flight ..., fails queued commands that were never
    sent with ChannelClosed, and closes the fds'."""
    slow(scsi_debug, 100_000_000)
    ch = open_ready(sg_device, reactor=reactor, max_fds=1)
    fds = pool_fds(ch)
    ios = ch.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(40)], async_=True)
    assert reactor.statistics()["channels"][sg_device]["queued"] == 24
    ch.close()
    assert all(io.returned for io in ios)
    ok = [io for io in ios if io.error is None and io.exception is None]
    closed = [io for io in ios if isinstance(io.exception, ChannelClosed)]
    assert len(ok) == 16 and len(closed) == 24 and ios[:16] == ok
    assert fds and not set(fds) & set(sg_fds(sg_device))  # the pool's fds are closed
    assert reactor.statistics()["outstanding"] == 0


def test_several_threads_may_wait_at_once(sg_devices, scsi_debug, reactor):
    """docs/engine.rst: 'By default the thread that waits drives the reactor (several threads may wait at
    once)'."""
    slow(scsi_debug, 5_000_000)
    chans = [open_ready(p, reactor=reactor) for p in sg_devices[:2]]
    results = []

    def work(ch, k):
        ios = ch.execute_many([command.Read10(lba=k * 50 + i, transfer_length=1) for i in range(50)], async_=True)
        results.append(reactor.wait(ios, timeout=60) and all(io.ok for io in ios))

    try:
        ts = [threading.Thread(target=work, args=(chans[k % 2], k)) for k in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        assert results == [True] * 6
    finally:
        for ch in chans:
            ch.close()


def test_handlers_run_on_the_driving_thread_holding_the_lock(sg_device):
    """docs/engine.rst: 'Handlers run on the driving thread, holding the lock'."""
    r = Reactor()
    try:
        r.start()
        seen = []

        def where(io):
            seen.append((threading.current_thread().name, r.lock._is_owned()))

        with open_ready(sg_device, reactor=r) as ch:
            cmd = command.Read10(lba=0, transfer_length=1)
            cmd.add_handler(where)
            ch.execute(cmd, async_=True).wait(timeout=10)
        assert seen == [("sgpy-reactor", True)]
    finally:
        r.close()


# -- docs/jobs.rst -------------------------------------------------------------------


def test_queue_depth_is_1_to_16_times_max_fds(sg_device, reactor):
    """docs/jobs.rst: 'queue_depth: Commands in flight, 1 to 16 × max_fds'."""
    with open_ready(sg_device, reactor=reactor) as ch:
        assert ch.run(command.TestUnitReady(), count=64, queue_depth=32, max_fds=2).stats.commands == 64
        for bad in (0, 33):
            with pytest.raises((ValueError, SgError)):
                ch.run(command.TestUnitReady(), count=1, queue_depth=bad, max_fds=2)


def test_lbas_past_the_field_width_are_refused_before_sending(sg_device, reactor):
    """docs/jobs.rst: 'LBAs past a field's width are refused before anything is sent'."""
    with open_ready(sg_device, reactor=reactor) as ch:
        before = reactor.statistics()["channels"][sg_device]["submitted"]
        for lba in ("sequential", [1 << 32]):
            with pytest.raises((ValueError, SgError)):
                ch.run(command.Read10(lba=0, transfer_length=1), count=4, lba=lba, lba_range=(0, (1 << 32) + 8))
        assert reactor.statistics()["channels"][sg_device]["submitted"] == before


def test_a_job_opens_at_most_max_fds_and_grows_their_reserve(sg_device, scsi_debug, reactor):
    """docs/jobs.rst: 'A job opens its own fds on the device, at most max_fds' and 'Each fd's reserve buffer
    is grown to the transfer size'."""
    with open_ready(sg_device, reactor=reactor, max_fds=1) as ch:
        own = set(sg_fds(sg_device))
        slow(scsi_debug, 20_000_000)
        length = 128  # 64 KiB per command
        job = ch.run(command.Read10(lba=0, transfer_length=length), count=200, queue_depth=12, max_fds=3,
                     lba="sequential", lba_range=(0, 4096), async_=True)
        job_fds = set(sg_fds(sg_device)) - own
        sizes = [_binding.get_reserved_size(fd) for fd in job_fds]
        job.wait(timeout=60)
        assert len(job_fds) == 3
        assert all(s >= length * BLOCK for s in sizes), sizes
        assert set(sg_fds(sg_device)) == own


def test_a_job_runs_no_handler_per_command(sg_device, reactor):
    """docs/jobs.rst: 'Handlers and verify handlers do not run per command (an IO is for that)'."""
    calls = []
    with open_ready(sg_device, reactor=reactor) as ch:
        template = command.Read10(lba=0, transfer_length=1, verify_handler=lambda io: calls.append("verify"))
        template.add_handler(lambda io: calls.append("handler"))
        for async_ in (False, True):
            job = ch.run(template, count=50, queue_depth=4, lba="random", lba_range=(0, 1024), async_=async_)
            assert job.wait(timeout=30).commands == 50
    assert calls == []


def test_a_synchronous_job_does_not_drive_the_reactor_and_loses_nothing(sg_devices, reactor):
    """docs/jobs.rst: 'Meanwhile that thread does not drive the reactor: other channels' completions wait in
    the kernel (nothing is lost)'."""
    a = open_ready(sg_devices[0], reactor=reactor)
    b = open_ready(sg_devices[1], reactor=reactor)
    try:
        ios = b.execute_many([command.Read10(lba=i, transfer_length=1) for i in range(32)], async_=True)
        a.run(command.Read10(lba=0, transfer_length=1), count=500, queue_depth=8, lba="random",
              lba_range=(0, 1024))
        assert not any(io.returned for io in ios)
        b.wait(timeout=30)
        assert all(io.ok for io in ios)
    finally:
        a.close()
        b.close()
