"""pytest plugin: real sg devices for device tests, on any Linux machine.

Installed with sgpy (entry point ``pytest11``), so any test suite can use it:

* ``pytest --sgpy-sandbox`` (or ``sgpy_sandbox = true`` in the ``[pytest]``
  ini section) re-runs the whole pytest session inside :mod:`sgpy.sandbox`, a
  User-Mode Linux guest whose ``/dev/sgN`` are scsi_debug disks.  On a machine
  that has sg devices already, leave it off.
* The fixtures ``sg_device`` (a path), ``sg_devices`` (all paths) and
  ``scsi_debug`` (parameters and run-time knobs) hand tests their devices;
  tests that use them are marked ``device`` automatically.
* Outside the sandbox no device is ever picked implicitly (the first
  ``/dev/sg*`` of a real machine is usually its boot disk): tests get only
  the devices named with ``--sgpy-device PATH|URL`` (repeatable) or the
  ``sgpy_devices`` ini value.  A test that needs scsi_debug (its fixture,
  or a ``scsi_debug`` marker) fails there: that cannot be honoured.
* ``@pytest.mark.scsi_debug(ndelay=50000, random=1)`` asks for a scsi_debug
  module loaded with those parameters (merged over the sandbox's); the
  plugin reloads the module between tests as needed and groups tests by
  parameter set so that it reloads as few times as possible.
* Under CI (``CI=true``) a device test with no device fails instead of being
  skipped.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, Iterator, List, Optional

import pytest

__all__ = ["ScsiDebug"]

#: The conformance suite's options and fixtures (``pytest --pyargs sgpy.conformance``).
pytest_plugins = ["sgpy.conformance.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgpy", "sgpy: real sg devices in a User-Mode Linux sandbox")
    group.addoption("--sgpy-sandbox", action="store_true", default=None,
                    help="run this pytest session inside the sgpy sandbox (scsi_debug sg devices)")
    group.addoption("--sgpy-scsi-debug", default=None, metavar="'NAME=VALUE ...'",
                    help="scsi_debug parameters for the sandbox (default: sgpy.sandbox.DEFAULT_SCSI_DEBUG)")
    group.addoption("--sgpy-sandbox-timeout", type=float, default=None, metavar="SECONDS",
                    help="kill the sandbox after this many seconds")
    group.addoption("--sgpy-device", action="append", default=None, metavar="PATH|URL",
                    help="a device the tests may use outside the sandbox (/dev/sgN or iscsi://...; repeatable); "
                    "none is picked implicitly")
    parser.addini("sgpy_sandbox", "run pytest inside the sgpy sandbox (true/false)", default="false")
    parser.addini("sgpy_devices", "devices the tests may use outside the sandbox (whitespace-separated)",
                  default="")
    parser.addini("sgpy_scsi_debug", "scsi_debug parameters for the sandbox", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "device: needs a real sg device (runs inside the sgpy sandbox)")
    config.addinivalue_line("markers", "scsi_debug(**params): scsi_debug module parameters this test needs")


def _want_sandbox(config: pytest.Config) -> bool:
    opt = config.getoption("--sgpy-sandbox")
    if opt is not None:
        return bool(opt)
    return str(config.getini("sgpy_sandbox")).strip().lower() in ("1", "true", "yes", "on")


def pytest_cmdline_main(config: pytest.Config) -> Optional[int]:
    """Hand the whole session to a sandbox guest when asked to."""
    if not _want_sandbox(config) or os.environ.get("SGPY_SANDBOX"):
        return None
    if config.option.collectonly or getattr(config.option, "help", False):
        return None
    from sgpy import sandbox

    params = config.getoption("--sgpy-scsi-debug") or str(config.getini("sgpy_scsi_debug")).strip() or None
    args = [sys.executable, "-m", "pytest", *config.invocation_params.args]
    try:
        return sandbox.run(args, scsi_debug=params, timeout=config.getoption("--sgpy-sandbox-timeout"),
                           cwd=str(config.invocation_params.dir))
    except sandbox.SandboxTimeout as exc:
        sys.stderr.write(f"sgpy sandbox: {exc}\n")
        return sandbox.EXIT_TIMEOUT
    except sandbox.SandboxError as exc:
        sys.stderr.write(f"{exc}\n")
        return sandbox.EXIT_SANDBOX_FAILED


_DEVICE_FIXTURES = {"sg_device", "sg_devices", "scsi_debug"}


def _marker_params(item: pytest.Item) -> Dict[str, str]:
    from sgpy.sandbox import parse_params

    out: Dict[str, str] = {}
    for mark in reversed(list(item.iter_markers("scsi_debug"))):
        out.update(parse_params(dict(mark.kwargs)))
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Mark device tests and group them by the scsi_debug parameters they need."""
    for item in items:
        if _DEVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("scsi_debug"):
            item.add_marker(pytest.mark.device)
    # Tests with the base parameters first, then one group per parameter set
    # (in order of first appearance), so the module is reloaded once a set.
    order: Dict[tuple, int] = {(): 0}
    keyed = []
    for idx, item in enumerate(items):
        key = tuple(sorted(_marker_params(item).items()))
        order.setdefault(key, len(order))
        keyed.append((order[key], idx, item))
    keyed.sort(key=lambda t: (t[0], t[1]))
    items[:] = [t[2] for t in keyed]


def _no_device(what: str) -> None:
    msg = (f"{what}: no device to test: run the device tests inside the sandbox (pytest --sgpy-sandbox), "
           "or name the devices they may use with --sgpy-device PATH|URL (or the sgpy_devices ini value)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + " [CI: device tests may not be skipped]", pytrace=False)
    pytest.skip(msg)


def _chosen_devices(config: pytest.Config) -> List[str]:
    """The devices named on the command line or in the ini file, in order, without repeats."""
    names = list(config.getoption("--sgpy-device") or []) + str(config.getini("sgpy_devices")).split()
    return list(dict.fromkeys(names))


def _cannot_honour(item: pytest.Item, what: str) -> None:
    pytest.fail(f"{item.nodeid}: {what} needs scsi_debug, which only the sandbox provides; "
                "run it with pytest --sgpy-sandbox (this is an error, not a skip: the test would not test "
                "what it says)", pytrace=False)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Outside the sandbox, a ``scsi_debug`` marker cannot be honoured: fail the test."""
    from sgpy.sandbox import guest

    if item.get_closest_marker("scsi_debug") is not None and not guest.in_sandbox():
        _cannot_honour(item, "@pytest.mark.scsi_debug")


class ScsiDebug:
    """What a device test knows and can change about its scsi_debug devices.

    ``params`` are the module parameters in force; :meth:`set` changes a
    run-time driver attribute (``opts``, ``every_nth``, ``ndelay``...) for the
    rest of the test and restores it afterwards.
    """

    def __init__(self, params: Dict[str, str], devices: List[str]) -> None:
        self.params = params
        self.devices = devices
        self._saved: Dict[str, str] = {}

    def set(self, **knobs: object) -> None:
        """Write scsi_debug driver attributes, restoring them after the test."""
        from sgpy.sandbox import guest

        for name, value in knobs.items():
            if name not in self._saved:
                self._saved[name] = guest.read_knob(name)
            guest.write_knob(name, value)

    def get(self, name: str) -> str:
        """Read a scsi_debug driver attribute."""
        from sgpy.sandbox import guest

        return guest.read_knob(name)

    def restore(self) -> None:
        """Put back every attribute :meth:`set` changed (in reverse order)."""
        from sgpy.sandbox import guest

        for name, value in reversed(list(self._saved.items())):
            try:
                guest.write_knob(name, value)
            except Exception:  # pragma: no cover - a knob that refuses its old value
                pass
        self._saved.clear()


@pytest.fixture
def scsi_debug(request: pytest.FixtureRequest) -> Iterator[ScsiDebug]:
    """The scsi_debug devices for this test, loaded with the parameters it asked for (sandbox only)."""
    from sgpy.sandbox import guest

    if not guest.in_sandbox():
        _cannot_honour(request.node, "the scsi_debug fixture")
    params = guest.base_params()
    params.update(_marker_params(request.node))
    devices = guest.reload(params)
    if not devices:
        _no_device(request.node.nodeid)
    sd = ScsiDebug(guest.current_params(), devices)
    try:
        yield sd
    finally:
        sd.restore()


@pytest.fixture
def sg_devices(request: pytest.FixtureRequest) -> List[str]:
    """Paths (or iSCSI URLs) of every device available to this test.

    In the sandbox: its scsi_debug devices.  Elsewhere: exactly those named
    with ``--sgpy-device`` / ``sgpy_devices``, never one found by looking.
    """
    from sgpy.sandbox import guest

    if guest.in_sandbox():
        sd: ScsiDebug = request.getfixturevalue("scsi_debug")
        return list(sd.devices)
    devices = _chosen_devices(request.config)
    if not devices:
        _no_device(request.node.nodeid)
    return devices


@pytest.fixture
def sg_device(sg_devices: List[str]) -> str:
    """The path of one device (the first)."""
    return sg_devices[0]
