"""sgpy.modes without a device: settings checked against the page decoders, the MODE SELECT parameter
lists it builds (SPC-5 6.11, 7.5.5), and the command line's refusals that come before any device is opened."""

import json
import os
import sys

import pytest

from sgpy import modes
from sgpy.cli import EXIT_REFUSED, EXIT_USAGE
from sgpy.responses import ControlExtensionPage, InformationalExceptionsControlPage, ModeParameters

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli_run import run  # noqa: E402

# MODE SENSE(10) of the caching page as scsi_debug answers it: 8-byte header, one short block descriptor
# (131072 blocks of 512 bytes), the page with WCE set; the device-specific parameter has DPOFUA.
CACHING = bytes.fromhex("00 26 00 10 00 00 00 08" "00 02 00 00 00 00 02 00"
                        "08 12 14 00 ff ff 00 00 ff ff ff ff 80 14 00 00 00 00 00 00")
CACHING_CHANGEABLE = bytes.fromhex("00 26 00 10 00 00 00 08" "00 02 00 00 00 00 02 00"
                                   "08 12 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")


def params(data, ten=True):
    return ModeParameters.from_bytes(data, ten=ten)


def test_settings_take_the_decoders_field_names_and_check_values():
    assert modes.setting(0x08, 0, "WCE", "no") == modes.Setting(0x08, 0, "wce", False)
    assert modes.setting(0x0A, 0, "d-sense", "1") == modes.Setting(0x0A, 0, "d_sense", True)
    assert modes.setting(0x1C, 0, "mrie", "0x6") == modes.Setting(0x1C, 0, "mrie", 6)
    assert modes.setting(0x1C, 0, "interval_timer", 2**32 - 1).value == 2**32 - 1
    assert "wce" in modes.settable_fields(0x08) and "ps" not in modes.settable_fields(0x08)
    assert modes.settable_fields(0x19) == {}


@pytest.mark.parametrize("page, field, value, error, words", [
    (0x08, "nope", "1", modes.UnknownModeField, "has no field 'nope' (its fields: ic, abpf"),
    (0x19, "x", "1", modes.UnknownModeField, "none: sgpy does not decode this page"),
    (0x08, "wce", "2", modes.BadModeValue, "a flag: 0 or 1"),
    (0x08, "wce", "maybe", modes.BadModeValue, "a flag"),
    (0x1C, "mrie", "16", modes.BadModeValue, "a 4-bit number: 0 to 15 (0xf)"),
    (0x1C, "mrie", "-1", modes.BadModeValue, "4-bit"),
    (0x1C, "mrie", "yes", modes.BadModeValue, "4-bit"),
])
def test_unknown_fields_and_values_that_do_not_fit_are_refused(page, field, value, error, words):
    with pytest.raises(error, match=None) as info:
        modes.setting(page, 0, field, value)
    assert words in str(info.value) and info.value.page_code == page


def test_the_parameter_list_is_the_page_as_read_with_ps_cleared_no_length_and_no_block_descriptor():
    current, changeable = params(CACHING), params(CACHING_CHANGEABLE)
    (out,) = modes.plan(current, changeable, [modes.setting(8, 0, "wce", 0)], device_type=0)
    data = out.to_bytes()
    # 8-byte header: MODE DATA LENGTH 0, medium type kept, device-specific parameter 0 for a disk
    # (WP and DPOFUA are reserved in MODE SELECT), BLOCK DESCRIPTOR LENGTH 0; then the page, WCE cleared
    assert data[:8] == bytes(8)
    assert data[8:] == CACHING[16:18] + bytes([CACHING[18] & ~0x04]) + CACHING[19:]
    assert modes.select_command(out).cdb.hex() == "55100000000000001c00"  # PF set, SP clear, 28 bytes
    assert modes.select_command(out, save=True).cdb[1] == 0x11  # SP: save


def test_ps_is_cleared_and_other_device_types_keep_their_device_specific_bits():
    ps_set = bytearray(CACHING)
    ps_set[16] |= 0x80
    ps_set[3] = 0x90  # WP and DPOFUA
    (out,) = modes.plan(params(bytes(ps_set)), params(CACHING_CHANGEABLE), [modes.setting(8, 0, "wce", 1)],
                        device_type=0x01)
    data = out.to_bytes()
    assert data[8] == 0x08  # PS cleared
    assert data[3] == 0x10  # a tape's device-specific parameter: WP cleared, the rest kept


def test_mode_sense_6_gives_mode_select_6_data():
    six = bytes([0x1F, 0, 0x10, 8]) + CACHING[8:16] + CACHING[16:]
    six_ch = bytes([0x1F, 0, 0x10, 8]) + CACHING_CHANGEABLE[8:16] + CACHING_CHANGEABLE[16:]
    (out,) = modes.plan(params(six, False), params(six_ch, False), [modes.setting(8, 0, "wce", 0)], device_type=0)
    data = out.to_bytes()
    assert data[:4] == bytes(4) and data[4] == 0x08
    assert modes.select_command(out).cdb.hex() == "151000001800"


def test_a_subpage_keeps_the_sub_page_format():
    raw = bytes([0x4A, 0x01, 0x00, 0x1C]) + bytes(0x1C)
    current = ModeParameters(ten=True, pages=(ControlExtensionPage.from_page(raw),))
    changeable = ModeParameters(ten=True, pages=(ControlExtensionPage.from_page(raw[:4] + b"\x04" + raw[5:]),))
    (out,) = modes.plan(current, changeable, [modes.setting(0x0A, 1, "tcmos", 1)])
    assert out.to_bytes()[8:12] == bytes([0x4A, 0x01, 0x00, 0x1C]) and out.to_bytes()[12] == 0x04


def test_a_field_the_changeable_values_do_not_allow_is_refused_with_its_mask():
    current, changeable = params(CACHING), params(CACHING_CHANGEABLE)
    with pytest.raises(modes.FieldNotChangeable) as info:
        modes.plan(current, changeable, [modes.setting(8, 0, "rcd", 1)])
    assert info.value.field == "rcd" and info.value.mask == 0
    assert "field rcd is not changeable" in str(info.value) and "0x0" in str(info.value)
    # the value it has already is no change: allowed
    assert modes.plan(current, changeable, [modes.setting(8, 0, "rcd", 0)])
    # a number whose changeable mask allows some bits only
    ie = ModeParameters(ten=True, pages=(InformationalExceptionsControlPage.from_page(bytes([0x1C, 0x0A]) + bytes(10)),))
    mask = ModeParameters(ten=True, pages=(InformationalExceptionsControlPage.from_page(
        bytes([0x1C, 0x0A, 0, 0x06]) + bytes(8)),))
    assert modes.plan(ie, mask, [modes.setting(0x1C, 0, "mrie", 6)])
    with pytest.raises(modes.FieldNotChangeable, match="0x6, so 0 cannot become 1"):
        modes.plan(ie, mask, [modes.setting(0x1C, 0, "mrie", 1)])


def test_a_page_the_device_did_not_return_is_not_supported():
    with pytest.raises(modes.ModePageNotSupported, match="no mode page 0Ah"):
        modes.plan(params(CACHING), params(CACHING_CHANGEABLE), [modes.setting(0x0A, 0, "d_sense", 1)])


def test_one_parameter_list_per_page_and_a_fields_last_value():
    lists = modes.plan(params(CACHING), params(CACHING_CHANGEABLE),
                       [modes.setting(8, 0, "wce", 0), modes.setting(8, 0, "wce", 1)])
    assert len(lists) == 1 and lists[0].pages[0].wce is True


@pytest.mark.parametrize("argv, code, words", [
    (["--set", "ca.nope=1"], EXIT_USAGE, "has no field 'nope'"),
    (["--set", "ca.wce=2"], EXIT_USAGE, "a flag: 0 or 1"),
    (["--set", "wce=0"], EXIT_USAGE, "which page?"),
    (["--set", "ca.wce"], EXIT_USAGE, "give PAGE.FIELD=VALUE"),
    (["--set", "nopage.wce=1"], EXIT_USAGE, "unknown mode page 'nopage'"),
    (["--set", "all.wce=1"], EXIT_USAGE, "name one page"),
    (["--set", "ca.wce=0", "--pc", "saved"], EXIT_USAGE, "--pc chooses the values to read"),
    (["--set", "ca.wce=0", "--hex"], EXIT_USAGE, "with --set use --json"),
    (["--save"], EXIT_USAGE, "--save saves what --set changes"),
    (["--set", "ca.wce=0"], EXIT_REFUSED, "--allow-data-loss"),
    (["--set", "ca.wce=0", "--save"], EXIT_REFUSED, "--allow-data-loss"),
])
def test_refusals_come_before_any_device_is_opened(capsys, argv, code, words):
    # the device does not exist: a refusal that needed it would say "no such device" (status 4)
    got, out, err = run(capsys, "modes", "/dev/sg-none", *argv)
    assert got == code, err
    assert words in err and "Traceback" not in err
    got, out, err = run(capsys, "modes", "/dev/sg-none", *argv, "--json") if "--hex" not in argv else (code, "", "")
    if out:
        assert json.loads(out)["error"]["exit_code"] == code


def test_a_field_after_a_page_argument_needs_no_page_prefix(capsys):
    got, out, err = run(capsys, "modes", "/dev/sg-none", "caching", "--set", "WCE=0")
    assert got == EXIT_REFUSED, err  # understood as caching.wce=0, then refused for want of --allow-data-loss


# -- --defaults (sdparm --defaults) ---------------------------------------------------------------------

# The caching page's default values as scsi_debug gives them (WCE set), and a current page with WCE clear.
CACHING_DEFAULT = CACHING
CACHING_WCE_CLEAR = CACHING[:18] + bytes([CACHING[18] & ~0x04]) + CACHING[19:]


def test_default_settings_name_every_changeable_field_with_its_default_value():
    page = params(CACHING_WCE_CLEAR).page(8)
    got = modes.default_settings(page, params(CACHING_CHANGEABLE).page(8), params(CACHING_DEFAULT).page(8))
    assert got == [modes.Setting(8, 0, "wce", True)]  # WCE is the only field the changeable values allow
    (out,) = modes.plan(params(CACHING_WCE_CLEAR), params(CACHING_CHANGEABLE), got, device_type=0)
    assert out.to_bytes()[8:] == CACHING[16:]  # the page sent is the default page, PS clear


def ie_page(byte2, mrie):
    return InformationalExceptionsControlPage.from_page(bytes([0x1C, 0x0A, byte2, mrie]) + bytes(8))


def test_default_settings_take_only_the_changeable_bits_of_a_number():
    current = ie_page(0x00, 0x6)
    changeable = ie_page(0x00, 0x6)  # MRIE bits 1 and 2 may change; TEST, DEXCPT and the rest may not
    default = ie_page(0x04, 0x1)  # TEST set by default, but not changeable: left alone
    got = modes.default_settings(current, changeable, default)
    # bit 0 of the default is not changeable and keeps its current 0; bits 1-2 take the default's 00b
    assert got == [modes.Setting(0x1C, 0, "mrie", 0x0)]
    assert modes.plan(ModeParameters(ten=True, pages=(current,)), ModeParameters(ten=True, pages=(changeable,)),
                      got)


def test_an_undecoded_page_has_no_default_settings():
    from sgpy.responses import ModePage

    raw = ModePage(page_code=0x19, subpage_code=0, spf=False, ps=False, data=b"\x00\x00")
    with pytest.raises(modes.UnknownModeField, match="not decoded by sgpy"):
        modes.default_settings(raw, raw, raw)


@pytest.mark.parametrize("argv, code, words", [
    (["ca", "--defaults", "--set", "wce=0", "--allow-data-loss"], EXIT_USAGE, "give one"),
    (["ca", "--defaults", "--pc", "saved", "--allow-data-loss"], EXIT_USAGE, "--pc chooses the values to read"),
    (["ca", "--defaults", "--hex", "--allow-data-loss"], EXIT_USAGE, "with --defaults use --json"),
    (["--defaults", "--allow-data-loss"], EXIT_USAGE, "--defaults needs the PAGE"),
    (["all", "--defaults", "--allow-data-loss"], EXIT_USAGE, "name one page"),
    (["0x19", "--defaults", "--allow-data-loss"], EXIT_USAGE, "not decoded by sgpy"),
    (["ca", "--defaults"], EXIT_REFUSED, "--allow-data-loss"),
    (["ca", "--defaults", "--save"], EXIT_REFUSED, "--allow-data-loss"),
])
def test_defaults_refusals_come_before_any_device_is_opened(capsys, argv, code, words):
    got, out, err = run(capsys, "modes", "/dev/sg-none", *argv)
    assert got == code, err
    assert words in err and "Traceback" not in err
    if "--hex" not in argv:
        got, out, err = run(capsys, "modes", "/dev/sg-none", *argv, "--json")
        assert got == code and json.loads(out)["error"]["exit_code"] == code
