"""Opening channels: the errors a person can act on (no device needed)."""

import errno
import os

import pytest

from sgpy import Channel
from sgpy import channel as channel_mod
from sgpy.errors import NotAnSgDevice


def test_permission_denied_says_what_access_is_needed(monkeypatch):
    def refuse(path, flags, mode=0o777):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(channel_mod.os, "open", refuse)
    with pytest.raises(PermissionError, match="needs read and write access to it .*group"):
        Channel.from_path("/dev/sg0")


def test_missing_device_is_named():
    with pytest.raises(FileNotFoundError, match="/dev/sg-nonexistent does not exist"):
        Channel.from_path("/dev/sg-nonexistent")


def test_a_regular_file_is_not_a_device(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(NotAnSgDevice, match="is not a device node"):
        Channel.from_path(str(p))
    assert len(os.listdir("/proc/self/fd")) == before


def test_dev_null_is_not_an_sg_device():
    with pytest.raises(NotAnSgDevice, match="not an sg or bsg device"):
        Channel.from_path("/dev/null")
