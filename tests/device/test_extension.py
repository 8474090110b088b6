"""The sg extension against a real kernel sg driver (scsi_debug devices)."""

import errno
import os

import pytest

from sgpy import _binding as b

TUR = bytes(6)
INQUIRY_96 = bytes([0x12, 0, 0, 0, 96, 0])


@pytest.fixture
def fd(sg_device):
    fd = os.open(sg_device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    yield fd
    os.close(fd)


def test_open_and_identify(fd):
    assert b.version_num(fd) >= 30000
    sid = b.get_scsi_id(fd)
    assert sid.scsi_type == 0  # direct-access block device (SPC-5 table 141)
    assert b.num_waiting(fd) == 0


def test_reserved_size_round_trip(fd):
    granted = b.set_reserved_size(fd, 256 * 1024)
    assert granted == b.get_reserved_size(fd)
    assert granted >= 64 * 1024


def test_sg_io_test_unit_ready(fd):
    caller = b.SyncCaller(fd)
    caller.call(TUR, b.SG_DXFER_NONE, b.NULL, 0, 5000)  # may carry a power-on unit attention
    r = caller.call(TUR, b.SG_DXFER_NONE, b.NULL, 0, 5000)
    assert (r.status, r.host_status, r.driver_status) == (0, 0, 0)


def test_sg_io_inquiry_names_scsi_debug(fd):
    buf = bytearray(96)
    r = b.SyncCaller(fd).call(INQUIRY_96, b.SG_DXFER_FROM_DEV, b.buffer_pointer(buf), len(buf), 5000)
    assert r.status == 0
    assert 96 - r.resid >= 36
    assert bytes(buf[8:16]).rstrip() == b"Linux"
    assert bytes(buf[16:32]).rstrip() == b"scsi_debug"


def test_sg_io_on_a_non_sg_fd_is_an_oserror():
    with open("/dev/null", "rb") as f:
        with pytest.raises(OSError):
            b.version_num(f.fileno())


def _prepare(n, first_pack_id=100):
    slots = b.new_slots(n)
    ptrs = b.slot_pointers(n)
    bufs = []
    for i in range(n):
        buf = bytearray(96)
        bufs.append(buf)
        b.fill(slots + i, b.SG_DXFER_FROM_DEV, INQUIRY_96, b.ffi.from_buffer(buf), 96, 5000, first_pack_id + i)
        ptrs[i] = slots + i
    return slots, ptrs, bufs


def test_async_submit_16_and_reap_by_pack_id(fd):
    slots, ptrs, bufs = _prepare(16)
    accepted, err = b.submit(fd, ptrs, 16)
    assert (accepted, err) == (16, 0)
    out = b.new_headers(16)
    got = {}
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(got) < 16:
        poller.poll(5000)
        n, err = b.reap(fd, out, 16)
        assert err in (0, errno.EAGAIN)
        for i in range(n):
            h = out[i]
            assert h.pack_id not in got, "a completion was delivered twice"
            got[h.pack_id] = (h.status, h.host_status, h.driver_status)
            assert h.usr_ptr == slots + (h.pack_id - 100)
    assert sorted(got) == list(range(100, 116))
    assert all(v == (0, 0, 0) for v in got.values())
    assert all(bytes(buf[8:16]).rstrip() == b"Linux" for buf in bufs)


def test_seventeenth_command_gets_edom(fd):
    slots, ptrs, bufs = _prepare(17)
    accepted, err = b.submit(fd, ptrs, 17)
    assert accepted == 16
    assert err == errno.EDOM
    # Completed-but-unread commands hold their slots until read.
    out = b.new_headers(17)
    total = 0
    import select

    while total < 16:
        select.select([fd], [], [], 5)
        n, err = b.reap(fd, out, 17)
        total += n
    assert total == 16
    n, err = b.reap(fd, out, 1)
    assert (n, err) == (0, errno.EAGAIN)
