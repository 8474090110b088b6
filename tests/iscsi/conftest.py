"""iSCSI tests: a private tgtd on loopback, and the ``transport`` fixture.

The session's tgtd (fixture ``tgtd``) listens on 127.0.0.1 at a free port,
with its own management port; tests add their own targets to it.  Tests
that kill or stop a target start their own with ``make_tgtd``.  Every tgtd
is killed by PID (SIGKILL) when its fixture ends.

``transport`` is parameterised by ``sg`` and ``iscsi``: the tests in
``transport_cases.py`` take it and run unchanged on both.  The ``iscsi``
half needs tgtd (host or sandbox guest); the ``sg`` half needs an sg device,
so outside the sandbox, on a machine without one, its items are deselected
(``scripts/test`` runs them in the sandbox).
"""

from __future__ import annotations

import glob
import itertools
import os
from typing import Callable, Iterator, List

import pytest

from iscsi_target import Tgtd, missing

_names = itertools.count(1)


def _in_sandbox() -> bool:
    return bool(os.environ.get("SGPY_SANDBOX"))


def _unavailable(what: str) -> None:
    msg = f"{what}; the iSCSI tests need tgtd and sgpy's libiscsi extension (scripts/setup installs both)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + " [CI: iSCSI tests may not be skipped]", pytrace=False)
    pytest.skip(msg)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Deselect the sg half of transport tests where there is no sg device to run it on."""
    if _in_sandbox() or glob.glob("/dev/sg[0-9]*"):
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("transport") == "sg" \
                or "sg_device" in getattr(item, "fixturenames", ()):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def tgtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tgtd]:
    """The session's tgtd on 127.0.0.1 (killed by PID at the end)."""
    why = missing()
    if why:
        _unavailable(why)
    t = Tgtd(str(tmp_path_factory.mktemp("tgtd")))
    t.start()
    try:
        yield t
    finally:
        t.kill()


@pytest.fixture
def new_target(tgtd: Tgtd) -> Callable[..., str]:
    """``new_target(**add_target options) -> IQN``: a fresh target on the session's tgtd."""

    def make(name: str = "", **options: object) -> str:
        return tgtd.add_target(f"{name or 'disk'}-{next(_names)}", **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_tgtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Tgtd]]:
    """``make_tgtd() -> Tgtd``: a private, started tgtd for tests that kill or stop it."""
    why = missing()
    if why:
        _unavailable(why)
    started: List[Tgtd] = []

    def make() -> Tgtd:
        t = Tgtd(str(tmp_path_factory.mktemp("own-tgtd")))
        started.append(t)
        return t.start()

    try:
        yield make
    finally:
        for t in started:
            t.kill()


class Transport:
    """Where a transport test's device is: ``name`` and ``address`` (path or URL).

    ``open(**options)`` is ``Channel.from_url(address, **options)``, which
    takes device paths and ``iscsi://`` URLs alike.
    """

    def __init__(self, name: str, address: str, blocks: int) -> None:
        self.name = name
        self.address = address
        self.blocks = blocks

    def open(self, **options: object):  # type: ignore[no-untyped-def]
        from sgpy import Channel

        return Channel.from_url(self.address, **options)

    def __repr__(self) -> str:
        return f"Transport({self.name}, {self.address})"


@pytest.fixture(params=["sg", "iscsi"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """The device of a transport test: an sg device, or a LUN of a fresh tgtd target."""
    if request.param == "sg":
        path = request.getfixturevalue("sg_device")
        return Transport("sg", path, blocks=8192)
    make = request.getfixturevalue("new_target")
    t = request.getfixturevalue("tgtd")
    iqn = make("transport", size_mb=16)
    return Transport("iscsi", t.url(iqn, 1), blocks=16 * 2048)
