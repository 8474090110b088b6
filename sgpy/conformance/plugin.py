"""The conformance suite's pytest plugin: options, markers, the ``dut`` fixture, the record.

Checks are pytest tests in this package, marked with :func:`clause`.  The
``dut`` fixture (device under test) opens the target once per session and
knows what it supports.  The plugin is loaded with sgpy's pytest plugin, so
``pytest --pyargs sgpy.conformance --sgpy-target ...`` needs nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import pytest

from sgpy import command, handler
from sgpy.constants import SenseKey

__all__ = ["clause", "Dut", "Recorder", "data_loss", "irreversible"]

F = TypeVar("F", bound=Callable[..., Any])

_UNSUPPORTED = "unsupported: "
_SAFETY = "safety: "


def clause(ref: str, level: str, family: str) -> Callable[[F], F]:
    """Mark a check with the clause it checks (``"SBC-4 5.16"``), ``"shall"`` or ``"should"``, and its family."""
    if level not in ("shall", "should"):
        raise ValueError(f"level must be 'shall' or 'should', not {level!r}")
    return pytest.mark.sgpy_clause(ref=ref, level=level, family=family)  # type: ignore[no-any-return]


#: Marks a check that writes to the medium (needs ``--allow-data-loss``).
data_loss = pytest.mark.sgpy_data_loss
#: Marks a check whose effect cannot be undone (needs ``--allow-irreversible``).
irreversible = pytest.mark.sgpy_irreversible


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgpy-conformance", "sgpy conformance suite")
    group.addoption("--sgpy-target", action="append", default=None, metavar="PATH|URL",
                    help="the device under test: an sg node or an iscsi:// URL; repeat it with pytest-xdist "
                    "(--tx N*popen --dist each) to run the whole suite on N targets, one worker each")
    group.addoption("--allow-data-loss", action="store_true", default=False,
                    help="run checks that write to the target (they restore what they overwrite)")
    group.addoption("--allow-irreversible", action="store_true", default=False,
                    help="run checks whose effect cannot be undone (SANITIZE, FORMAT)")
    group.addoption("--sgpy-second-initiator", default=None, metavar="IQN",
                    help="the initiator name of the second iSCSI session that checks with two initiators open "
                    "(persistent reservations); default: sgpy's own initiator name with '.second' appended")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sgpy_clause(ref, level, family): the T10 clause a conformance check checks")
    config.addinivalue_line("markers", "sgpy_data_loss: a conformance check that writes to the target")
    config.addinivalue_line("markers", "sgpy_irreversible: a conformance check that cannot be undone")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:  # type: ignore[misc]
    """Skip what the safety options do not allow; name each check's target in its report
    (``user_properties``: JUnit XML carries it)."""
    config = item.config
    if item.get_closest_marker("sgpy_irreversible") and not config.getoption("--allow-irreversible"):
        pytest.skip(_SAFETY + "cannot be undone: needs --allow-irreversible")
    if item.get_closest_marker("sgpy_data_loss") and not config.getoption("--allow-data-loss"):
        pytest.skip(_SAFETY + "writes to the target: needs --allow-data-loss")
    yield
    d = getattr(item, "funcargs", {}).get("dut")
    if isinstance(d, Dut):
        item.user_properties.append(("sgpy_target", d.target))


class TargetUnavailable(Exception):
    """The target could not be opened or identified."""


class Dut:
    """The device under test: one open channel and what the device says it supports."""

    def __init__(self, target: str, *, writable: bool, irreversible: bool = False,
                 second_initiator: Optional[str] = None) -> None:
        from sgpy.channel import Channel
        from sgpy.safety import ALLOW_ALL, ALLOW_DATA_LOSS, READ_ONLY

        self.target = target
        #: The initiator name :meth:`second_initiator` logs in with (None: the default, see there).
        self.second_initiator_name = second_initiator
        #: The session's channel, under the safety policy the options allow.
        self.policy = ALLOW_ALL if irreversible else ALLOW_DATA_LOSS if writable else READ_ONLY
        self.channel = Channel.from_path(target, policy=self.policy)
        self.inquiry = self.channel.cmd.Inquiry().result
        # Clear whatever unit attention is pending, so checks see their own outcomes.
        for _ in range(10):
            if self.channel.execute(command.TestUnitReady(), verify_handler=handler.might_fail).error is None:
                break
        self._opcodes: Optional[Any] = None
        self._opcodes_known = False
        self._vpd: Optional[Tuple[int, ...]] = None

    def close(self) -> None:
        self.channel.close()

    def identity(self) -> Dict[str, Any]:
        """Vendor, product, revision and unit serial number, for the report."""
        inq = self.inquiry
        out: Dict[str, Any] = {"vendor": getattr(inq, "vendor", None), "product": getattr(inq, "product", None),
                               "revision": getattr(inq, "revision", None), "serial": None}
        if 0x80 in self.vpd_pages:
            io = self.channel.execute(command.Inquiry(evpd=True, page_code=0x80), verify_handler=handler.might_fail)
            if io.error is None and io.result is not None:
                out["serial"] = getattr(io.result, "serial", None)
        return out

    @property
    def vpd_pages(self) -> Tuple[int, ...]:
        """The VPD pages the device lists on page 00h (SPC-5 7.7.17)."""
        if self._vpd is None:
            io = self.channel.execute(command.Inquiry(evpd=True, page_code=0), verify_handler=handler.might_fail)
            self._vpd = tuple(getattr(io.result, "pages", ())) if io.error is None else ()
        return self._vpd

    def supports(self, opcode: int, service_action: Optional[int] = None) -> Optional[bool]:
        """What REPORT SUPPORTED OPERATION CODES says of a command: True, False, or None (not reported)."""
        if not self._opcodes_known:
            self._opcodes_known = True
            io = self.channel.execute(command.ReportSupportedOperationCodes(allocation_length=0xFFFF),
                                      verify_handler=handler.might_fail)
            self._opcodes = io.result if io.error is None else None
        table = self._opcodes
        if table is None:
            return None
        for d in getattr(table, "commands", ()):
            if d.opcode == opcode and (service_action is None or d.service_action == service_action):
                return True
        return False

    @property
    def opcodes(self) -> Optional[Any]:
        """The device's REPORT SUPPORTED OPERATION CODES answer, or None when it gives none."""
        self.supports(0x12)
        return self._opcodes

    def require(self, opcode: int, name: str, service_action: Optional[int] = None) -> None:
        """Skip the check when the device reports that it does not support ``name``."""
        if self.supports(opcode, service_action) is False:
            pytest.skip(f"{_UNSUPPORTED}{name} is not in REPORT SUPPORTED OPERATION CODES")

    def require_vpd(self, page: int, name: str) -> None:
        if page not in self.vpd_pages:
            pytest.skip(f"{_UNSUPPORTED}VPD page {page:02X}h ({name}) is not listed on page 00h")

    def unsupported(self, io: Any, name: str) -> None:
        """Skip when ``io`` failed with INVALID COMMAND OPERATION CODE (20h/00h): the device lacks ``name``."""
        sense = io.sense
        if io.error is not None and sense is not None and sense.sense_key == SenseKey.ILLEGAL_REQUEST \
                and sense.asc == 0x20 and sense.ascq == 0x00:
            pytest.skip(f"{_UNSUPPORTED}{name}: INVALID COMMAND OPERATION CODE")

    def succeeded(self, io: Any, name: str) -> None:
        """A check's command must succeed: skip when the device lacks ``name`` (see
        :meth:`unsupported`), raise its failure otherwise."""
        self.unsupported(io, name)
        if io.error is not None:
            raise io.error

    @contextlib.contextmanager
    def unchecked(self) -> Iterator[Any]:
        """A second channel on the target with no safety policy, for a check that must send what
        sgpy cannot classify (an operation code no standard assigns).  Only under
        ``--allow-data-loss``: the check is marked :data:`data_loss`."""
        from sgpy.channel import Channel

        if not self.policy.allow_data_loss:
            pytest.skip(_SAFETY + "needs --allow-data-loss")
        ch = Channel.from_path(self.target)
        try:
            yield ch
        finally:
            ch.close()

    @property
    def is_iscsi(self) -> bool:
        """True when the target is an ``iscsi://`` URL."""
        return self.target[:8].lower() == "iscsi://"

    @contextlib.contextmanager
    def second_initiator(self) -> Iterator[Any]:
        """A channel on a second I_T nexus to the target, for checks that need two initiators
        (persistent reservations, SPC-5 5.14): a second iSCSI session that logs in with another
        initiator name (``--sgpy-second-initiator``, else sgpy's default name with ``.second``
        appended), under the same safety policy.

        Skips the check on an sg device: every file descriptor opened on it is the same I_T nexus
        (this host's initiator port to that target port), so the device cannot tell two
        "initiators" apart.  Skips it too when the target does not let the second name log in
        (an access list that names the initiators)."""
        from sgpy.channel import Channel

        if not self.is_iscsi:
            pytest.skip(f"{_UNSUPPORTED}a second initiator: every file descriptor on an sg device is the same I_T "
                        "nexus (this host's initiator port); checks with two initiators run on iscsi:// targets")
        from sgpy import iscsi

        name = self.second_initiator_name or iscsi.default_initiator_name() + ".second"
        try:
            ch = Channel.from_path(self.target, policy=self.policy, initiator_name=name)
        except iscsi.LoginFailed as exc:
            pytest.skip(f"{_UNSUPPORTED}a second initiator: {name} cannot log in ({exc})")
        try:
            yield ch
        finally:
            ch.close()

    @contextlib.contextmanager
    def no_reissue(self) -> Iterator[None]:
        """Within: a short answer stays short (no re-issue with the length the device asked for)."""
        saved = self.channel.reissue
        self.channel.reissue = False
        try:
            yield
        finally:
            self.channel.reissue = saved

    @property
    def host_managed(self) -> bool:
        """True for a host-managed zoned block device (peripheral device type 14h, ZBC-2 4.2)."""
        return int(getattr(self.inquiry, "peripheral_device_type", 0) or 0) == 0x14

    def random_writes(self, name: str) -> None:
        """Skip a check that writes anywhere on the medium when the device is host-managed zoned.

        Such a check writes the medium's last blocks, which on a host-managed device lie in a
        sequential-write-required zone that refuses a write away from its write pointer (ZBC-2
        4.4.3.2, UNALIGNED WRITE COMMAND): the ZBC checks cover writing there.
        """
        if self.host_managed:
            pytest.skip(f"{_UNSUPPORTED}{name}: a host-managed zoned device takes writes only at a zone's write "
                        "pointer (ZBC-2 4.4.3.2); the ZBC checks cover it")

    @functools.cached_property
    def capacity(self) -> Tuple[int, int]:
        """(number of blocks, block size)."""
        return self.channel.num_blocks, self.channel.block_size


def _my_target(config: pytest.Config) -> str:
    """This session's target: the only one, or under pytest-xdist the worker's own (gwN takes the N-th)."""
    targets: List[str] = config.getoption("--sgpy-target") or []
    if not targets:
        pytest.fail("the conformance suite needs --sgpy-target PATH|URL", pytrace=False)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if len(targets) == 1:
        return targets[0]
    if not worker.startswith("gw"):
        pytest.fail(f"{len(targets)} targets need one pytest-xdist worker each, every worker running the whole "
                    f"suite: --tx {len(targets)}*popen --dist each", pytrace=False)
    index = int(worker[2:])
    if index >= len(targets):
        pytest.fail(f"worker {worker} has no target: {len(targets)} given for more workers", pytrace=False)
    return targets[index]


@pytest.fixture(scope="session")
def dut(request: pytest.FixtureRequest) -> Iterator[Dut]:
    """The device under test, opened once (writable only with ``--allow-data-loss``)."""
    target = _my_target(request.config)
    try:
        d = Dut(target, writable=bool(request.config.getoption("--allow-data-loss")),
                irreversible=bool(request.config.getoption("--allow-irreversible")),
                second_initiator=request.config.getoption("--sgpy-second-initiator"))
    except Exception as exc:
        for rec in _recorders(request.config):
            rec.open_error = f"cannot open {target}: {exc}"
        raise TargetUnavailable(f"cannot open {target}: {exc}") from exc
    ident = d.identity()
    for rec in _recorders(request.config):
        rec.identity = ident
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"target {target}: {ident['vendor']} {ident['product']} {ident['revision']} "
                            f"serial {ident['serial']}")
    try:
        yield d
    finally:
        d.close()


def _recorders(config: pytest.Config) -> List["Recorder"]:
    return [p for p in config.pluginmanager.get_plugins() if isinstance(p, Recorder)]


class Recorder:
    """Collects each check's outcome for :func:`sgpy.conformance.run`'s table and JSON."""

    def __init__(self) -> None:
        self.results: List[Dict[str, Any]] = []
        self.identity: Dict[str, Any] = {}
        self.open_error: Optional[str] = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            mark = item.get_closest_marker("sgpy_clause")
            kw = mark.kwargs if mark is not None else {"ref": "", "level": "shall", "family": "OTHER"}
            if report.skipped:
                reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
                reason = reason.removeprefix("Skipped: ")
                kind = "skipped-by-safety" if reason.startswith(_SAFETY) else "skipped-unsupported"
                text = reason.split(": ", 1)[1] if reason.startswith((_SAFETY, _UNSUPPORTED)) else reason
            elif report.failed:
                kind = "fail"
                text = _one_line(call.excinfo)
            else:
                kind, text = "pass", ""
            self.results.append({"name": item.name, "family": kw["family"], "clause": kw["ref"],
                                 "level": kw["level"], "outcome": kind, "reason": text})


def _one_line(excinfo: Any) -> str:
    if excinfo is None:
        return "failed"
    exc = excinfo.value
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
