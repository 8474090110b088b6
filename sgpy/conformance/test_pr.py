"""Conformance checks of persistent reservations (SPC-5 5.14, PERSISTENT RESERVE IN 6.16, OUT 6.17).

The checks that only read (PERSISTENT RESERVE IN) run by default; the ones
that register keys and reserve need ``--allow-data-loss`` (a reservation
locks other initiators out of the logical unit while it lasts).  A device
that does not list PERSISTENT RESERVE IN or OUT in REPORT SUPPORTED
OPERATION CODES, or refuses them with INVALID COMMAND OPERATION CODE, has
every check skipped as unsupported.

Two initiators: the suite's own channel is initiator A; checks that need a
second I_T nexus open one with :meth:`Dut.second_initiator` (a second iSCSI
session with another initiator name).  On an sg device there is no second
nexus, and those checks are skipped with that reason.

State: every key a check registers starts with the bytes ``SGPY``.  A check
starts only when the logical unit holds no registration of another
initiator (else it is skipped by safety: unregistering, preempting and
clearing would disturb whoever made it), and it ends, pass or fail, by
removing its registrations (which releases its reservations) and clearing
the unit attentions that left behind on both nexuses.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import pytest

from sgpy import command, handler
from sgpy.conformance.plugin import Dut, clause, data_loss
from sgpy.constants import Direction, PersistentReservationType, ScsiStatus, SenseKey
from sgpy.errors import ReservationConflict, UnitAttention
from sgpy.responses.pr import PrReadKeys, PrReadReservation

ILLEGAL = SenseKey.ILLEGAL_REQUEST
PR_IN, PR_OUT = 0x5E, 0x5F
#: The status a command that conflicts with a reservation ends with (SAM-6 5.3, SPC-5 5.14).
CONFLICT = dict(status=ScsiStatus.RESERVATION_CONFLICT)
#: INVALID RELEASE OF PERSISTENT RESERVATION (SPC-5 table F.1: 26h/04h).
INVALID_RELEASE = dict(sense_key=ILLEGAL, asc=0x26, ascq=0x04)
#: INVALID FIELD IN PARAMETER LIST (26h/00h).
INVALID_FIELD_IN_PARAMETER_LIST = dict(sense_key=ILLEGAL, asc=0x26, ascq=0x00)
#: The unit attentions persistent reservations establish (additional sense code 2Ah).
RESERVATIONS_PREEMPTED = (0x2A, 0x03)
RESERVATIONS_RELEASED = (0x2A, 0x04)
REGISTRATIONS_PREEMPTED = (0x2A, 0x05)

#: The reservation types, by the short names the check ids use (SPC-5 table "Persistent reservation type codes").
TYPES = {
    "WE": PersistentReservationType.WRITE_EXCLUSIVE,
    "EA": PersistentReservationType.EXCLUSIVE_ACCESS,
    "WE-RO": PersistentReservationType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
    "EA-RO": PersistentReservationType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY,
    "WE-AR": PersistentReservationType.WRITE_EXCLUSIVE_ALL_REGISTRANTS,
    "EA-AR": PersistentReservationType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS,
}
_REGISTRANTS_ONLY = ("WE-RO", "EA-RO")
_ALL_REGISTRANTS = ("WE-AR", "EA-AR")
#: The REPORT CAPABILITIES type mask bit of each type (SPC-5 6.16.4).
_MASK_FIELD = {"WE": "wr_ex", "EA": "ex_ac", "WE-RO": "wr_ex_ro", "EA-RO": "ex_ac_ro", "WE-AR": "wr_ex_ar",
               "EA-AR": "ex_ac_ar"}

#: The top four bytes of every reservation key the checks register: ASCII "SGPY".
_KEY_TAG = 0x53475059


def _key() -> int:
    """A fresh reservation key of the suite's own (``SGPY`` and four random bytes, never zero)."""
    return (_KEY_TAG << 32) | (int.from_bytes(os.urandom(4), "big") | 1)


def _ours(key: int) -> bool:
    return key >> 32 == _KEY_TAG


def _param(key: int = 0, sa_key: int = 0) -> bytes:
    """The basic PERSISTENT RESERVE OUT parameter list (SPC-5 6.17.3): RESERVATION KEY, SERVICE ACTION
    RESERVATION KEY, obsolete bytes, SPEC_I_PT / ALL_TG_PT / APTPL all zero; 24 bytes."""
    return key.to_bytes(8, "big") + sa_key.to_bytes(8, "big") + bytes(8)


def _ua_text(uas: Sequence[Tuple[int, int]]) -> str:
    return ", ".join(f"{a:02X}h/{q:02X}h" for a, q in uas) or "none"


class Nexus:
    """One I_T nexus: a channel, the key it registered (0 when none), and what it can send."""

    def __init__(self, channel: Any, name: str) -> None:
        self.channel = channel
        self.name = name
        self.key = 0

    def out(self, cls: Any, *, key: Optional[int] = None, sa_key: int = 0, type: int = 0,
            verify: Any = handler.might_fail) -> Any:
        """PERSISTENT RESERVE OUT ``cls`` with RESERVATION KEY ``key`` (default: this nexus's own)."""
        data = _param(self.key if key is None else key, sa_key)
        return self.channel.execute(cls(type=int(type), data=data), verify_handler=verify)

    def register(self, key: Optional[int] = None) -> int:
        """REGISTER AND IGNORE EXISTING KEY with ``key`` (default: a fresh one); the command must succeed."""
        key = key if key is not None else _key()
        self.out(command.PersistentReserveOutRegisterAndIgnoreExistingKey, key=0, sa_key=key,
                 verify=handler.success)
        self.key = key
        return key

    def reserve(self, kind: str) -> None:
        """RESERVE the logical unit with reservation type ``kind`` (a key of :data:`TYPES`); must succeed."""
        self.out(command.PersistentReserveOutReserve, type=TYPES[kind], verify=handler.success)

    def keys(self) -> PrReadKeys:
        io = self.channel.execute(command.PersistentReserveInReadKeys(allocation_length=8192))
        assert io.result is not None
        return io.result  # type: ignore[no-any-return]

    def reservation(self) -> PrReadReservation:
        io = self.channel.execute(command.PersistentReserveInReadReservation(allocation_length=256))
        assert io.result is not None
        return io.result  # type: ignore[no-any-return]

    def pending(self) -> List[Tuple[int, int]]:
        """The unit attentions pending on this nexus, oldest first (TEST UNIT READY until it ends GOOD:
        TEST UNIT READY conflicts with no reservation, SPC-5 5.14)."""
        out: List[Tuple[int, int]] = []
        for _ in range(16):
            io = self.channel.execute(command.TestUnitReady(), verify_handler=handler.might_fail)
            if isinstance(io.error, UnitAttention) and io.sense is not None:
                out.append((io.sense.asc, io.sense.ascq))
                continue
            break
        return out

    def read(self, lba: int) -> Any:
        return self.channel.execute(command.Read16(lba=lba, transfer_length=1), verify_handler=handler.might_fail)

    def write(self, lba: int, data: bytes) -> Any:
        return self.channel.execute(command.Write16(lba=lba, data=data), verify_handler=handler.might_fail)


def _require_pr_in(dut: Dut) -> None:
    """Skip unless the device has PERSISTENT RESERVE IN (READ KEYS answers)."""
    dut.require(PR_IN, "PERSISTENT RESERVE IN", 0x00)
    io = dut.channel.execute(command.PersistentReserveInReadKeys(), verify_handler=handler.might_fail)
    dut.unsupported(io, "PERSISTENT RESERVE IN")
    if io.error is not None:
        raise io.error


def _missing_types(dut: Dut, kinds: Sequence[str]) -> List[str]:
    """The reservation types among ``kinds`` that REPORT CAPABILITIES' type mask (TMV set) says the device
    lacks (one command for all of them; none when the device has no such mask)."""
    if dut.supports(PR_IN, 0x02) is False:
        return []
    io = dut.channel.execute(command.PersistentReserveInReportCapabilities(), verify_handler=handler.might_fail)
    caps = io.result if io.error is None else None
    if caps is None or not caps.tmv:
        return []
    return [kind for kind in kinds if getattr(caps, _MASK_FIELD[kind]) is False]


def _require_type(dut: Dut, kind: str) -> None:
    """Skip when REPORT CAPABILITIES' type mask (TMV set) says the device lacks reservation type ``kind``."""
    if _missing_types(dut, [kind]):
        pytest.skip(f"unsupported: reservation type {kind} ({TYPES[kind]:X}h) is not in REPORT CAPABILITIES' "
                    "type mask")


def _types_present(dut: Dut, kinds: Sequence[str], why: str) -> List[str]:
    """The types among ``kinds`` the device has (see :func:`_missing_types`); skip with ``why`` when none."""
    missing = _missing_types(dut, kinds)
    present = [kind for kind in kinds if kind not in missing]
    if not present:
        pytest.skip(why)
    return present


def _settle(nexuses: Sequence[Optional[Nexus]]) -> None:
    """Remove the registrations of ``nexuses`` and of earlier runs (keys tagged SGPY), which releases
    their reservations, and clear the unit attentions left on every nexus."""
    live = [n for n in nexuses if n is not None]
    for n in reversed(live):
        n.out(command.PersistentReserveOutRegisterAndIgnoreExistingKey, key=0, sa_key=0,
              verify=handler.might_fail)
        n.key = 0
    first = live[0]
    first.pending()
    left = [k for k in first.keys().keys if _ours(k)]
    if left:  # registrations of an earlier session of ours (another I_T nexus): CLEAR takes them away
        k = first.register()
        first.out(command.PersistentReserveOutClear, key=k, verify=handler.success)
        first.key = 0
    for n in live:
        n.pending()
    stray = [k for k in first.keys().keys if _ours(k)]
    assert not stray, f"the checks' own registrations stayed: {[hex(k) for k in stray]}"


@contextlib.contextmanager
def _nexuses(dut: Dut, two: bool = False) -> Iterator[Tuple[Nexus, Nexus]]:
    """Initiator A (the suite's channel) and, with ``two``, initiator B (a second I_T nexus; else B is A).

    Skips the check when the device lacks PERSISTENT RESERVE OUT, when another initiator holds
    registrations, and (``two``) when there is no second nexus; puts the logical unit back as it was
    afterwards (see the module doc)."""
    _require_pr_in(dut)
    dut.require(PR_OUT, "PERSISTENT RESERVE OUT", 0x00)
    a = Nexus(dut.channel, "A")
    a.pending()
    foreign = [k for k in a.keys().keys if not _ours(k)]
    if foreign:
        pytest.skip(f"safety: the logical unit holds {len(foreign)} registration(s) of other initiators; "
                    "the persistent reservation checks would remove them")
    second = dut.second_initiator() if two else contextlib.nullcontext(None)
    with second as channel:
        b = Nexus(channel, "B") if channel is not None else a
        try:
            io = a.out(command.PersistentReserveOutRegisterAndIgnoreExistingKey, key=0, sa_key=0)
            dut.unsupported(io, "PERSISTENT RESERVE OUT")
            if io.error is not None:
                raise io.error
            _settle([a, b if two else None])
            yield a, b
        except BaseException:
            with contextlib.suppress(Exception):
                _settle([a, b if two else None])
            raise
        else:
            _settle([a, b if two else None])


def _nuar(dut: Dut) -> bool:
    """The Control mode page's NUAR bit (SPC-5 7.5.10; byte 3 bit 3): no RESERVATIONS RELEASED unit
    attention on a release.  False when the device has no Control mode page."""
    io = dut.channel.execute(command.ModeSense10(page_code=0x0A, allocation_length=255),
                             verify_handler=handler.might_fail)
    if io.error is not None or len(io.data) < 8:
        return False
    bdl = int.from_bytes(io.data[6:8], "big")
    page = io.data[8 + bdl:]
    return len(page) > 3 and bool(page[3] & 0x08)


# -- PERSISTENT RESERVE IN: the parameter data ------------------------------------------------------


@clause("SPC-5 6.16", "shall", "PERSISTENT RESERVE")
def test_pr_in_read_keys_is_well_formed(dut: Dut) -> None:
    """READ KEYS: ADDITIONAL LENGTH is a multiple of 8 (one reservation key each) and the device sends
    that many bytes after the 8-byte header, up to the ALLOCATION LENGTH."""
    _require_pr_in(dut)
    allocation = 8192
    with dut.no_reissue():
        io = dut.channel.execute(command.PersistentReserveInReadKeys(allocation_length=allocation))
    data = io.data
    assert len(data) >= 8, f"{len(data)} bytes: no room for PRGENERATION and ADDITIONAL LENGTH"
    length = int.from_bytes(data[4:8], "big")
    assert length % 8 == 0, f"ADDITIONAL LENGTH {length} is not a multiple of 8"
    assert len(data) == min(allocation, 8 + length), f"{len(data)} bytes came; the header says {8 + length}"


@clause("SPC-5 6.16", "shall", "PERSISTENT RESERVE")
def test_pr_in_read_reservation_is_well_formed(dut: Dut) -> None:
    """READ RESERVATION: ADDITIONAL LENGTH is 0 (no reservation) or 10h, and a reservation reported has
    SCOPE 0h (LU_SCOPE) and one of the six reservation types."""
    _require_pr_in(dut)
    with dut.no_reissue():
        io = dut.channel.execute(command.PersistentReserveInReadReservation(allocation_length=256))
    data = io.data
    assert len(data) >= 8, f"{len(data)} bytes: no room for PRGENERATION and ADDITIONAL LENGTH"
    length = int.from_bytes(data[4:8], "big")
    assert length in (0, 0x10), f"ADDITIONAL LENGTH {length}, not 0 or 10h"
    assert len(data) == 8 + length, f"{len(data)} bytes came; the header says {8 + length}"
    if length:
        scope, kind = data[21] >> 4, data[21] & 0x0F
        assert scope == 0, f"SCOPE {scope:X}h, not 0h (LU_SCOPE)"
        assert kind in {int(t) for t in TYPES.values()}, f"TYPE {kind:X}h is not a reservation type"


@clause("SPC-5 6.16", "shall", "PERSISTENT RESERVE")
def test_pr_in_report_capabilities_is_well_formed(dut: Dut) -> None:
    """REPORT CAPABILITIES: LENGTH 8, ALLOW COMMANDS not a reserved code (6h, 7h), and with TMV set the
    type mask holds no reserved bit and at least one type."""
    _require_pr_in(dut)
    dut.require(PR_IN, "PERSISTENT RESERVE IN, REPORT CAPABILITIES", 0x02)
    io = dut.channel.execute(command.PersistentReserveInReportCapabilities(), verify_handler=handler.might_fail)
    if io.error is not None and io.sense is not None and io.sense.sense_key == ILLEGAL and io.sense.asc == 0x24:
        pytest.skip("unsupported: REPORT CAPABILITIES refused as an invalid field (service action 02h)")
    if io.error is not None:
        raise io.error
    data = io.data
    assert len(data) >= 8, f"{len(data)} bytes of REPORT CAPABILITIES data"
    assert int.from_bytes(data[0:2], "big") == 8, f"LENGTH {int.from_bytes(data[0:2], 'big')}, not 8"
    allow = (data[3] >> 4) & 0x07
    assert allow <= 5, f"ALLOW COMMANDS {allow}: a reserved code"
    if data[3] & 0x80:  # TMV
        assert not data[4] & 0x15 and not data[5] & 0xFE, f"reserved type mask bits set: {data[4:6].hex()}"
        assert data[4] & 0xEA or data[5] & 0x01, "TMV is set but the type mask names no type"


@data_loss
@clause("SPC-5 6.16", "shall", "PERSISTENT RESERVE")
def test_pr_in_service_actions_are_answered_as_reported(dut: Dut) -> None:
    """Each PERSISTENT RESERVE IN service action REPORT SUPPORTED OPERATION CODES lists ends GOOD; one of
    00h-03h it does not list ends ILLEGAL REQUEST, INVALID FIELD IN CDB (how a device refuses a service
    action it does not support); the reserved ones (04h-1Fh) end the same way.

    The reserved codes are sent through an unchecked channel (sgpy's safety policy cannot classify
    them), hence --allow-data-loss."""
    _require_pr_in(dut)
    invalid = handler.must_fail(sense_key=ILLEGAL, asc=0x24, ascq=0x00)
    with dut.unchecked() as ch:
        for sa in range(0x20):
            cdb = bytes([PR_IN, sa, 0, 0, 0, 0, 0]) + (1024).to_bytes(2, "big") + bytes(1)
            raw = command.RawCommand(cdb=cdb, direction=Direction.FROM_DEVICE, length=1024)
            listed = dut.supports(PR_IN, sa) if sa < 4 else False
            if listed is None:
                continue
            io = ch.execute(raw, verify_handler=handler.might_fail)
            if listed:
                assert io.error is None, f"service action {sa:02X}h is listed but failed: {io.error}"
            else:
                try:
                    invalid(io)
                except Exception as exc:
                    raise AssertionError(f"service action {sa:02X}h ({'not listed' if sa < 4 else 'reserved'}): "
                                         f"{exc}") from exc


# -- registering --------------------------------------------------------------------------------------


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_register_and_unregister(dut: Dut) -> None:
    """REGISTER with RESERVATION KEY 0 registers the SERVICE ACTION RESERVATION KEY: READ KEYS lists it
    and PRGENERATION goes up by one; REGISTER with that key and SERVICE ACTION RESERVATION KEY 0 removes
    it, and PRGENERATION goes up again (SPC-5 5.14, 6.16.2)."""
    with _nexuses(dut) as (a, _):
        before = a.keys().prgeneration
        key = _key()
        a.out(command.PersistentReserveOutRegister, key=0, sa_key=key, verify=handler.success)
        a.key = key
        listed = a.keys()
        assert key in listed.keys, f"{key:#x} registered, READ KEYS lists {[hex(k) for k in listed.keys]}"
        assert listed.prgeneration == (before + 1) & 0xFFFFFFFF, \
            f"PRGENERATION {before} before REGISTER, {listed.prgeneration} after"
        a.out(command.PersistentReserveOutRegister, sa_key=0, verify=handler.success)
        a.key = 0
        after = a.keys()
        assert key not in after.keys, "the key is still listed after REGISTER with SERVICE ACTION RESERVATION KEY 0"
        assert after.prgeneration == (before + 2) & 0xFFFFFFFF, \
            f"PRGENERATION {listed.prgeneration} before unregistering, {after.prgeneration} after"


@data_loss
@clause("SPC-5 6.17", "shall", "PERSISTENT RESERVE")
def test_pr_register_with_the_wrong_key_is_a_reservation_conflict(dut: Dut) -> None:
    """REGISTER whose RESERVATION KEY is not the nexus's registered key ends RESERVATION CONFLICT and
    changes nothing; so does REGISTER with a nonzero RESERVATION KEY from a nexus that is not registered
    (SPC-5 6.17.3, RESERVATION KEY field)."""
    with _nexuses(dut) as (a, _):
        stranger = _key()
        a.out(command.PersistentReserveOutRegister, key=stranger, sa_key=_key(), verify=handler.must_fail(**CONFLICT))
        assert not [k for k in a.keys().keys if _ours(k)], "an unregistered nexus registered with a nonzero key"
        key = a.register()
        a.out(command.PersistentReserveOutRegister, key=key ^ 0xFF, sa_key=_key(),
              verify=handler.must_fail(**CONFLICT))
        keys = [k for k in a.keys().keys if _ours(k)]
        assert keys == [key], f"after the refused REGISTER: {[hex(k) for k in keys]}, expected {key:#x}"


@data_loss
@clause("SPC-5 6.17", "shall", "PERSISTENT RESERVE")
def test_pr_register_and_ignore_existing_key_replaces_the_key(dut: Dut) -> None:
    """REGISTER AND IGNORE EXISTING KEY ignores the RESERVATION KEY field: a registered nexus sending any
    value there gets its key replaced by the SERVICE ACTION RESERVATION KEY."""
    with _nexuses(dut) as (a, _):
        old = a.register()
        new = _key()
        a.out(command.PersistentReserveOutRegisterAndIgnoreExistingKey, key=old ^ 0xFFFF, sa_key=new,
              verify=handler.success)
        a.key = new
        keys = [k for k in a.keys().keys if _ours(k)]
        assert keys == [new], f"READ KEYS lists {[hex(k) for k in keys]}, expected only {new:#x}"


@data_loss
@clause("SPC-5 6.16", "shall", "PERSISTENT RESERVE")
def test_pr_read_keys_allocation_length_cuts_the_list_not_its_length(dut: Dut) -> None:
    """READ KEYS with ALLOCATION LENGTH 8 ends GOOD with only the header, whose ADDITIONAL LENGTH still
    counts every key ("not altered based on the allocation length", SPC-5 6.16.2)."""
    with _nexuses(dut) as (a, _):
        a.register()
        with dut.no_reissue():
            io = a.channel.execute(command.PersistentReserveInReadKeys(allocation_length=8),
                                   verify_handler=handler.might_fail)
        assert io.error is None, f"READ KEYS with ALLOCATION LENGTH 8: {io.error}"
        assert len(io.data) == 8, f"{len(io.data)} bytes for ALLOCATION LENGTH 8"
        length = int.from_bytes(io.data[4:8], "big")
        assert length >= 8, f"ADDITIONAL LENGTH {length} with a key registered"


# -- reserving and releasing -------------------------------------------------------------------------


@data_loss
@pytest.mark.parametrize("kind", list(TYPES))
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_reserve_and_release(dut: Dut, kind: str) -> None:
    """A registered nexus RESERVEs with the type; READ RESERVATION reports it (SCOPE 0h, that TYPE, the
    holder's key, or 0 for an all registrants type); RELEASE with the same type ends it, and neither
    RESERVE nor RELEASE changes PRGENERATION (SPC-5 5.14, 6.16.2, 6.16.3)."""
    with _nexuses(dut) as (a, _):
        _require_type(dut, kind)
        key = a.register()
        before = a.keys().prgeneration
        a.reserve(kind)
        held = a.reservation()
        assert held.reservation is not None, f"RESERVE {kind} ended GOOD but READ RESERVATION reports none"
        r = held.reservation
        want_key = 0 if kind in _ALL_REGISTRANTS else key
        assert (int(r.type), r.scope, r.key) == (int(TYPES[kind]), 0, want_key), \
            f"reported TYPE {int(r.type):X}h SCOPE {r.scope:X}h key {r.key:#x}; expected {int(TYPES[kind]):X}h, " \
            f"0h, {want_key:#x}"
        a.out(command.PersistentReserveOutRelease, type=TYPES[kind], verify=handler.success)
        assert a.reservation().reservation is None, "RELEASE ended GOOD but the reservation is still reported"
        assert a.keys().prgeneration == before, "RESERVE or RELEASE changed PRGENERATION"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_release_with_another_type_is_refused(dut: Dut) -> None:
    """RELEASE from the holder with a TYPE other than the reservation's ends ILLEGAL REQUEST, INVALID
    RELEASE OF PERSISTENT RESERVATION (26h/04h) and leaves the reservation as it was."""
    with _nexuses(dut) as (a, _):
        _require_type(dut, "WE")
        a.register()
        a.reserve("WE")
        a.out(command.PersistentReserveOutRelease, type=TYPES["EA"], verify=handler.must_fail(**INVALID_RELEASE))
        r = a.reservation().reservation
        assert r is not None and int(r.type) == TYPES["WE"], f"after the refused RELEASE: {r}"


@data_loss
@clause("SPC-5 6.17", "shall", "PERSISTENT RESERVE")
def test_pr_reserve_without_registration_is_a_reservation_conflict(dut: Dut) -> None:
    """RESERVE from a nexus that is not registered ends RESERVATION CONFLICT (its RESERVATION KEY matches
    no registration, SPC-5 6.17.3), and no reservation is made."""
    with _nexuses(dut) as (a, _):
        a.out(command.PersistentReserveOutReserve, key=_key(), type=TYPES["WE"], verify=handler.must_fail(**CONFLICT))
        assert a.reservation().reservation is None, "a reservation was made by an unregistered nexus"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_preempt_with_a_zero_key_is_refused(dut: Dut) -> None:
    """PREEMPT with SERVICE ACTION RESERVATION KEY 0 while a reservation of a type other than all
    registrants is held ends ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST (SPC-5 5.14, table
    "Preempting actions"); the reservation stays."""
    with _nexuses(dut) as (a, _):
        _require_type(dut, "WE")
        dut.require(PR_OUT, "PERSISTENT RESERVE OUT, PREEMPT", 0x04)
        a.register()
        a.reserve("WE")
        a.out(command.PersistentReserveOutPreempt, sa_key=0, type=TYPES["EA"],
              verify=handler.must_fail(**INVALID_FIELD_IN_PARAMETER_LIST))
        r = a.reservation().reservation
        assert r is not None and int(r.type) == TYPES["WE"], f"after the refused PREEMPT: {r}"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_clear_removes_every_registration_and_the_reservation(dut: Dut) -> None:
    """CLEAR from a registered nexus releases the reservation and removes every registration, and
    PRGENERATION goes up by one (SPC-5 5.14 "Clearing", 6.16.2)."""
    with _nexuses(dut) as (a, _):
        _require_type(dut, "EA")
        dut.require(PR_OUT, "PERSISTENT RESERVE OUT, CLEAR", 0x03)
        a.register()
        a.reserve("EA")
        before = a.keys().prgeneration
        a.out(command.PersistentReserveOutClear, verify=handler.success)
        a.key = 0
        after = a.keys()
        assert not after.keys, f"keys registered after CLEAR: {[hex(k) for k in after.keys]}"
        assert a.reservation().reservation is None, "a reservation is reported after CLEAR"
        assert after.prgeneration == (before + 1) & 0xFFFFFFFF, \
            f"PRGENERATION {before} before CLEAR, {after.prgeneration} after"


# -- two initiators --------------------------------------------------------------------------------

#: What a nexus that does not hold the reservation may do, per type: (read, write) when it is not
#: registered, then when it is (SPC-5 5.14, table "SBC commands that are allowed in the presence of
#: various reservations": READ and WRITE).  An all registrants reservation makes every registered
#: nexus a holder.
_ACCESS = {
    "WE": ((True, False), (True, False)),
    "EA": ((False, False), (False, False)),
    "WE-RO": ((True, False), (True, True)),
    "EA-RO": ((False, False), (True, True)),
    "WE-AR": ((True, False), (True, True)),
    "EA-AR": ((False, False), (True, True)),
}


def _judge(io: Any, allowed: bool, what: str) -> None:
    if allowed:
        assert io.error is None, f"{what}: {io.error} (the reservation allows it)"
    else:
        assert isinstance(io.error, ReservationConflict), \
            f"{what}: {io.error or 'GOOD'}, expected RESERVATION CONFLICT"


@data_loss
@pytest.mark.parametrize("kind", list(TYPES))
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_reservation_holds_off_the_other_initiator(dut: Dut, kind: str) -> None:
    """While A holds a reservation of the type, B's READ and WRITE end GOOD or RESERVATION CONFLICT as the
    type dictates, first with B unregistered, then registered; the holder reads and writes freely.  B
    writes back the block A read, so nothing changes even where a write wrongly gets through."""
    with _nexuses(dut, two=True) as (a, b):
        _require_type(dut, kind)
        dut.random_writes("writing the last block")
        lba = dut.capacity[0] - 1
        block = a.read(lba)
        assert block.error is None, f"A's READ before reserving: {block.error}"
        data = bytes(block.data)
        a.register()
        a.reserve(kind)
        b.pending()
        for registered, (may_read, may_write) in zip((False, True), _ACCESS[kind]):
            if registered:
                b.register()
            who = f"{'registered' if registered else 'unregistered'} B under {kind}"
            _judge(b.read(lba), may_read, f"READ(16) from {who}")
            _judge(b.write(lba, data), may_write, f"WRITE(16) from {who}")
        _judge(a.read(lba), True, f"READ(16) from the holder A of {kind}")
        _judge(a.write(lba, data), True, f"WRITE(16) from the holder A of {kind}")


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_only_the_holder_reserves_and_releases(dut: Dut) -> None:
    """While A holds a Write Exclusive reservation, RESERVE from registered B ends RESERVATION CONFLICT,
    and RELEASE from B (registered, not the holder) ends GOOD without releasing anything."""
    with _nexuses(dut, two=True) as (a, b):
        _require_type(dut, "WE")
        a.register()
        a.reserve("WE")
        b.register()
        b.out(command.PersistentReserveOutReserve, type=TYPES["WE"], verify=handler.must_fail(**CONFLICT))
        b.out(command.PersistentReserveOutRelease, type=TYPES["WE"], verify=handler.success)
        r = b.reservation().reservation
        assert r is not None and r.key == a.key and int(r.type) == TYPES["WE"], \
            f"after B's RESERVE and RELEASE the reservation is {r}, not A's Write Exclusive"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_preempt_takes_over_the_reservation(dut: Dut) -> None:
    """B PREEMPTs A's Write Exclusive reservation with A's key and type Exclusive Access: B holds an
    Exclusive Access reservation, A's registration is gone, PRGENERATION goes up by one, and A gets a
    unit attention, REGISTRATIONS PREEMPTED (2Ah/05h)."""
    with _nexuses(dut, two=True) as (a, b):
        for kind in ("WE", "EA"):
            _require_type(dut, kind)
        dut.require(PR_OUT, "PERSISTENT RESERVE OUT, PREEMPT", 0x04)
        a.register()
        a.reserve("WE")
        b.register()
        a.pending()
        before = b.keys().prgeneration
        b.out(command.PersistentReserveOutPreempt, sa_key=a.key, type=TYPES["EA"], verify=handler.success)
        lost, a.key = a.key, 0
        r = b.reservation().reservation
        assert r is not None and (r.key, int(r.type)) == (b.key, int(TYPES["EA"])), \
            f"after PREEMPT the reservation is {r}, not B's Exclusive Access"
        keys = b.keys()
        assert lost not in keys.keys and b.key in keys.keys, f"READ KEYS after PREEMPT: {[hex(k) for k in keys.keys]}"
        assert keys.prgeneration == (before + 1) & 0xFFFFFFFF, \
            f"PRGENERATION {before} before PREEMPT, {keys.prgeneration} after"
        uas = a.pending()
        assert REGISTRATIONS_PREEMPTED in uas, f"A's unit attentions after being preempted: {_ua_text(uas)}"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_preempt_removes_a_registration(dut: Dut) -> None:
    """With no reservation, B PREEMPTs A's key: A's registration is removed (B's stays), PRGENERATION goes
    up by one, and A gets a unit attention, REGISTRATIONS PREEMPTED (2Ah/05h); B gets none (SPC-5 5.14,
    "Removing registrations")."""
    with _nexuses(dut, two=True) as (a, b):
        dut.require(PR_OUT, "PERSISTENT RESERVE OUT, PREEMPT", 0x04)
        a.register()
        b.register()
        a.pending()
        before = b.keys().prgeneration
        b.out(command.PersistentReserveOutPreempt, sa_key=a.key, type=TYPES["EA"], verify=handler.success)
        lost, a.key = a.key, 0
        keys = b.keys()
        assert lost not in keys.keys and b.key in keys.keys, f"READ KEYS after PREEMPT: {[hex(k) for k in keys.keys]}"
        assert keys.prgeneration == (before + 1) & 0xFFFFFFFF, \
            f"PRGENERATION {before} before PREEMPT, {keys.prgeneration} after"
        assert b.reservation().reservation is None, "PREEMPT without a reservation made one"
        ua_a, ua_b = a.pending(), b.pending()
        assert REGISTRATIONS_PREEMPTED in ua_a, f"A's unit attentions after losing its registration: {_ua_text(ua_a)}"
        assert not ua_b, f"B, which sent the PREEMPT, has unit attentions: {_ua_text(ua_b)}"


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_clear_notifies_the_other_registrants(dut: Dut) -> None:
    """CLEAR from A while B is registered: B gets a unit attention, RESERVATIONS PREEMPTED (2Ah/03h); A,
    which sent it, gets none (SPC-5 5.14, "Clearing")."""
    with _nexuses(dut, two=True) as (a, b):
        _require_type(dut, "WE")
        dut.require(PR_OUT, "PERSISTENT RESERVE OUT, CLEAR", 0x03)
        a.register()
        b.register()
        a.reserve("WE")
        b.pending()
        a.out(command.PersistentReserveOutClear, verify=handler.success)
        a.key = b.key = 0
        ua_a, ua_b = a.pending(), b.pending()
        assert RESERVATIONS_PREEMPTED in ua_b, f"B's unit attentions after CLEAR: {_ua_text(ua_b)}"
        assert not ua_a, f"A, which sent CLEAR, has unit attentions: {_ua_text(ua_a)}"


def _release_with_b_registered(dut: Dut, a: Nexus, b: Nexus, kind: str) -> Tuple[List[Tuple[int, int]],
                                                                                 List[Tuple[int, int]]]:
    """A and B registered, A reserves ``kind`` and RELEASEs it: the unit attentions of A and B after."""
    a.register()
    b.register()
    a.reserve(kind)
    a.pending()
    b.pending()
    a.out(command.PersistentReserveOutRelease, type=TYPES[kind], verify=handler.success)
    assert b.reservation().reservation is None, f"RELEASE of {kind} ended GOOD but a reservation is reported"
    return a.pending(), b.pending()


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_release_of_a_registrants_reservation_notifies_the_other_registrants(dut: Dut) -> None:
    """RELEASE of a registrants only or all registrants reservation establishes RESERVATIONS RELEASED
    (2Ah/04h) for every other registered nexus, not for the one that sent it (SPC-5 5.14, "Releasing";
    none at all when the Control mode page's NUAR bit is one)."""
    kinds = _REGISTRANTS_ONLY + _ALL_REGISTRANTS
    with _nexuses(dut, two=True) as (a, b):
        nuar = _nuar(dut)
        for kind in _types_present(dut, kinds, "unsupported: no registrants only or all registrants type in "
                                               "REPORT CAPABILITIES"):
            ua_a, ua_b = _release_with_b_registered(dut, a, b, kind)
            if nuar:
                assert RESERVATIONS_RELEASED not in ua_b, f"{kind}: NUAR is one, yet B got {_ua_text(ua_b)}"
            else:
                assert RESERVATIONS_RELEASED in ua_b, f"{kind} released: B's unit attentions are {_ua_text(ua_b)}"
            assert RESERVATIONS_RELEASED not in ua_a, f"{kind} released: A, which sent RELEASE, got {_ua_text(ua_a)}"
            _settle([a, b])


@data_loss
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_release_of_an_exclusive_reservation_raises_no_unit_attention(dut: Dut) -> None:
    """RELEASE of a Write Exclusive or Exclusive Access reservation establishes no unit attention, for the
    other registrant or for the nexus that sent it (SPC-5 5.14, "Releasing": "if the persistent
    reservation is of any other type, the device server shall not establish a unit attention")."""
    with _nexuses(dut, two=True) as (a, b):
        for kind in _types_present(dut, ("WE", "EA"),
                                   "unsupported: neither Write Exclusive nor Exclusive Access in REPORT CAPABILITIES"):
            ua_a, ua_b = _release_with_b_registered(dut, a, b, kind)
            assert not ua_a and not ua_b, f"{kind} released: unit attentions on A {_ua_text(ua_a)}, on B " \
                                          f"{_ua_text(ua_b)}"
            _settle([a, b])


@data_loss
@pytest.mark.parametrize("kind", list(TYPES))
@clause("SPC-5 5.14", "shall", "PERSISTENT RESERVE")
def test_pr_unregistering_the_holder(dut: Dut, kind: str) -> None:
    """A holds a reservation of the type, B is registered, A unregisters: a reservation of any type but
    all registrants is released, an all registrants one stays (B is still registered); B gets
    RESERVATIONS RELEASED (2Ah/04h) for a registrants only type, and A, which sent the command, gets no
    RESERVATIONS RELEASED (SPC-5 5.14, "Unregistering")."""
    with _nexuses(dut, two=True) as (a, b):
        _require_type(dut, kind)
        a.register()
        b.register()
        a.reserve(kind)
        a.pending()
        b.pending()
        a.out(command.PersistentReserveOutRegister, sa_key=0, verify=handler.success)
        a.key = 0
        r = b.reservation().reservation
        if kind in _ALL_REGISTRANTS:
            assert r is not None and int(r.type) == TYPES[kind], \
                f"{kind}: with B still registered the reservation should stay, READ RESERVATION reports {r}"
        else:
            assert r is None, f"{kind}: the holder unregistered, yet READ RESERVATION reports {r}"
        ua_a, ua_b = a.pending(), b.pending()
        if kind in _REGISTRANTS_ONLY:
            assert RESERVATIONS_RELEASED in ua_b, f"{kind}: B's unit attentions after the holder unregistered: " \
                                                  f"{_ua_text(ua_b)}"
        assert RESERVATIONS_RELEASED not in ua_a, f"{kind}: A, which unregistered, got {_ua_text(ua_a)}"
