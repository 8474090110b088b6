"""``sgpy modes``: the four page controls side by side, and --set (MODE SELECT) on scsi_debug.

scsi_debug lets MODE SELECT change WCE (caching page), D_SENSE and GLTSD
(control page), TEST and MRIE (informational exceptions control page); it
saves nothing (page control saved and SP answer ILLEGAL REQUEST).  Every
test puts the values it changed back.
"""

import json
import os
import sys

import pytest

from sgpy import modes
from sgpy.channel import Channel
from sgpy.cli import EXIT_DEVICE_ERROR, EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from sgpy.safety import Policy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402

WATCHED = [(0x08, "wce"), (0x0A, "d_sense"), (0x0A, "gltsd"), (0x1C, "test"), (0x1C, "mrie"), (0x08, "ic")]


def current(path):
    """The watched fields' current values."""
    with Channel.from_path(path) as ch:
        return {(p, f): getattr(modes.sense(ch, p).page(p), f) for p, f in WATCHED}


@pytest.fixture
def dev(sg_device):
    """The device, with the watched fields put back as they were afterwards."""
    before = current(sg_device)
    yield sg_device
    after = current(sg_device)
    changed = [modes.setting(p, 0, f, v) for (p, f), v in before.items() if after[(p, f)] != v]
    if changed:
        with Channel.from_path(sg_device, policy=Policy(allow_data_loss=True)) as ch:
            modes.read_modify_write(ch, changed)
    assert current(sg_device) == before


def test_a_page_shows_its_current_changeable_default_and_saved_values(capsys, dev):
    code, out, err = run(capsys, "modes", dev, "caching")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == f"{dev}: Caching page (page 08h)"
    assert lines[1].split() == ["FIELD", "CURRENT", "CHANGEABLE", "DEFAULT", "SAVED"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert rows["wce"] == ["yes", "yes", "yes", "-"]  # WCE is set and changeable; nothing is saved
    assert rows["ic"] == ["no", "no", "no", "-"]
    assert rows["number_of_cache_segments"][1] == "no"
    assert lines[-1].startswith("  saved values: not supported (ILLEGAL REQUEST") and "(39h/00h)" in lines[-1]
    code, out, _ = run(capsys, "modes", dev, "ie")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:-1]}
    assert rows["mrie"][1] == "yes" and rows["test"][1] == "yes" and rows["perf"][1] == "no"


def test_the_side_by_side_json_keeps_the_old_keys_and_adds_the_controls(capsys, dev):
    code, out, err = run(capsys, "modes", dev, "0x0a", "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert {"device", "page", "subpage", "pc", "medium_type", "device_specific_parameter", "write_protect",
            "block_descriptors", "pages", "controls", "errors"} == set(doc)
    assert doc["pc"] == "current" and doc["pages"][0]["fields"] == doc["controls"]["current"]
    assert doc["controls"]["changeable"]["d_sense"] is True and doc["controls"]["changeable"]["tst"] == 0
    assert doc["controls"]["saved"] is None
    assert doc["errors"]["saved"]["type"] == "IllegalRequest" and doc["errors"]["saved"]["sense"]["asc"] == 0x39
    # one page control alone is the answer it always was
    code, out, _ = run(capsys, "modes", dev, "0x0a", "--pc", "changeable", "--json")
    doc = json.loads(out)
    assert doc["pc"] == "changeable" and "controls" not in doc and doc["pages"][0]["fields"]["d_sense"] is True


def test_set_changes_a_field_reads_it_back_and_shows_old_and_new(capsys, dev):
    code, out, err = run(capsys, "modes", dev, "--set", "ca.wce=0", "--allow-data-loss")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == f"{dev}: ModeSelect10 (1 page(s))"
    assert lines[2].split() == ["Caching", "page", "wce", "yes", "→", "no"]
    assert current(dev)[(0x08, "wce")] is False
    code, out, err = run(capsys, "modes", dev, "caching", "--set", "WCE=yes", "--set", "ie.mrie=6",
                         "--set", "co.d_sense=1", "--allow-data-loss", "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert set(doc) == {"device", "command", "saved", "changes", "sent"}
    assert (doc["command"], doc["saved"], len(doc["sent"])) == ("ModeSelect10", False, 3)
    assert [(c["page"], c["field"], c["old"], c["requested"], c["new"], c["took"]) for c in doc["changes"]] == [
        (8, "wce", False, True, True, True), (0x1C, "mrie", 0, 6, 6, True), (0x0A, "d_sense", False, True, True,
                                                                          True)]
    sent = bytes.fromhex(doc["sent"][0])
    assert sent[:8] == bytes(8) and sent[8] == 0x08  # no length, no block descriptor, PS clear
    now = current(dev)
    assert (now[(0x08, "wce")], now[(0x1C, "mrie")], now[(0x0A, "d_sense")]) == (True, 6, True)


@pytest.mark.parametrize("argv, code, words", [
    (["--set", "ca.ic=1", "--allow-data-loss"], EXIT_USAGE,
     "field ic is not changeable on this device: its changeable value (MODE SENSE, page control changeable) is 0x0"),
    (["--set", "co.tst=1", "--allow-data-loss"], EXIT_USAGE, "field tst is not changeable"),
    (["--set", "ca.nope=1", "--allow-data-loss"], EXIT_USAGE, "has no field 'nope'"),
    (["--set", "ie.mrie=99", "--allow-data-loss"], EXIT_USAGE, "a 4-bit number: 0 to 15"),
    (["--set", "ca.wce=0"], EXIT_REFUSED, "pass --allow-data-loss"),
    (["--set", "ca.wce=0", "--save", "--allow-data-loss"], EXIT_DEVICE_ERROR, "Invalid field in CDB"),
    (["--set", "0x19.x=1", "--allow-data-loss"], EXIT_USAGE, "sgpy does not decode this page"),
])
def test_refusals_change_nothing_and_exit_with_their_status(capsys, dev, argv, code, words):
    before = current(dev)
    got, out, err = run(capsys, "modes", dev, *argv)
    assert got == code, err
    assert words in err and "Traceback" not in err
    got, out, err = run(capsys, "modes", dev, *argv, "--json")
    assert got == code
    assert json.loads(out)["error"]["exit_code"] == code
    assert current(dev) == before


def test_an_unchangeable_field_set_to_its_own_value_is_sent_and_the_device_decides(capsys, dev):
    # the read-write error recovery page: nothing changeable, and scsi_debug takes no MODE SELECT of it
    code, out, err = run(capsys, "modes", dev, "--set", "rw.dcr=0", "--allow-data-loss")
    assert code == EXIT_DEVICE_ERROR and "Invalid field in parameter list" in err


def test_the_library_read_modify_write(dev):
    with Channel.from_path(dev, policy=Policy(allow_data_loss=True)) as ch:
        change = modes.read_modify_write(ch, [modes.setting(0x0A, 0, "gltsd", 0), modes.setting(0x1C, 0, "test", 1)])
        assert change.ten and not change.saved and len(change.sent) == 2
        assert [(c.field, c.old, c.new, c.took) for c in change.changes] == [("gltsd", True, False, True),
                                                                            ("test", False, True, True)]
        got = modes.page_controls(ch, 0x1C)
        assert got.page("current").test is True and got.page("default").test is False
        assert got.saved is None and got.errors["saved"].matches(0x39)
    with Channel.from_path(dev, policy=Policy()) as ch:  # a read-only policy refuses MODE SELECT: nothing sent
        from sgpy.errors import UnsafeCommand

        with pytest.raises(UnsafeCommand):
            modes.read_modify_write(ch, [modes.setting(0x08, 0, "wce", 0)])
    assert current(dev)[(0x08, "wce")] is True


def test_a_value_the_device_does_not_keep_is_exit_1(capsys, dev, monkeypatch):
    real = modes.read_modify_write

    def forgetful(ch, settings, *, save=False):
        change = real(ch, settings, save=save)
        return modes.ModeChange(changes=tuple(modes.FieldChange(c.page_code, c.subpage_code, c.field, c.old,
                                                                c.requested, c.old) for c in change.changes),
                                saved=change.saved, ten=change.ten, sent=change.sent)

    monkeypatch.setattr(modes, "read_modify_write", forgetful)
    code, out, err = run(capsys, "modes", dev, "--set", "ca.wce=0", "--allow-data-loss")
    assert code == EXIT_FAILURE and "wce reads back yes, not no" in err


def test_defaults_puts_back_what_set_changed_in_one_mode_select(capsys, dev):
    code, out, err = run(capsys, "modes", dev, "--set", "ca.wce=0", "--allow-data-loss")
    assert code == EXIT_OK, err
    assert current(dev)[(0x08, "wce")] is False
    code, out, err = run(capsys, "modes", dev, "ca", "--defaults", "--allow-data-loss")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == f"{dev}: ModeSelect10 (1 page(s))"
    assert lines[1].split() == ["PAGE", "FIELD", "OLD", "NEW"]
    assert [line.split()[2:] for line in lines[2:-1]] == [["wce", "no", "→", "yes"]]  # WCE: the one changeable
    assert lines[-1] == "  1 of 1 changeable field(s) changed"
    assert current(dev)[(0x08, "wce")] is True
    # at the defaults already: the MODE SELECT still goes out, and nothing changes
    code, out, err = run(capsys, "modes", dev, "caching", "--defaults", "--allow-data-loss", "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    assert set(doc) == {"device", "page", "subpage", "defaults", "changed", "command", "saved", "changes", "sent"}
    assert (doc["page"], doc["subpage"], doc["defaults"], doc["changed"], doc["saved"]) == (8, 0, True, 0, False)
    assert [(c["field"], c["old"], c["new"], c["took"]) for c in doc["changes"]] == [("wce", True, True, True)]
    assert len(doc["sent"]) == 1 and bytes.fromhex(doc["sent"][0])[8] == 0x08


def test_defaults_of_a_page_with_several_changeable_fields(capsys, dev):
    code, out, err = run(capsys, "modes", dev, "--set", "ie.test=1", "--set", "ie.mrie=6", "--allow-data-loss")
    assert code == EXIT_OK, err
    with Channel.from_path(dev) as ch:
        default = modes.page_controls(ch, 0x1C).page("default")
    code, out, err = run(capsys, "modes", dev, "ie", "--defaults", "--allow-data-loss", "--json")
    assert code == EXIT_OK, err
    doc = json.loads(out)
    got = {c["field"]: (c["old"], c["new"]) for c in doc["changes"]}
    assert got == {"test": (True, default.test), "mrie": (6, default.mrie)}
    assert doc["changed"] == 2 and all(c["took"] for c in doc["changes"])
    now = current(dev)
    assert (now[(0x1C, "test")], now[(0x1C, "mrie")]) == (default.test, default.mrie)


@pytest.mark.parametrize("argv, code, words", [
    (["ca", "--defaults"], EXIT_REFUSED, "pass --allow-data-loss"),
    (["ca", "--defaults", "--save", "--allow-data-loss"], EXIT_DEVICE_ERROR, "Invalid field in CDB"),
    # the read-write error recovery page: scsi_debug lets MODE SELECT change none of its fields
    (["rw", "--defaults", "--allow-data-loss"], EXIT_USAGE, "has no field this device lets MODE SELECT change"),
])
def test_defaults_refusals_change_nothing(capsys, dev, argv, code, words):
    run(capsys, "modes", dev, "--set", "ca.wce=0", "--allow-data-loss")
    before = current(dev)
    got, out, err = run(capsys, "modes", dev, *argv)
    assert got == code, err
    assert words in err and "Traceback" not in err
    got, out, err = run(capsys, "modes", dev, *argv, "--json")
    assert got == code and json.loads(out)["error"]["exit_code"] == code
    assert current(dev) == before


def test_the_library_restores_defaults(dev):
    with Channel.from_path(dev, policy=Policy(allow_data_loss=True)) as ch:
        modes.read_modify_write(ch, [modes.setting(0x0A, 0, "d_sense", 1)])
        change = modes.restore_defaults(ch, 0x0A)
        assert {c.field: (c.old, c.new) for c in change.changes}["d_sense"] == (True, False)
        assert all(c.took for c in change.changes) and len(change.sent) == 1
    with Channel.from_path(dev, policy=Policy()) as ch:  # read-only: the MODE SELECT is refused, nothing sent
        from sgpy.errors import UnsafeCommand

        with pytest.raises(UnsafeCommand):
            modes.restore_defaults(ch, 0x08)
