"""Pure checks of issue 12's input defects: argument checks, login option text, DataMismatch's message."""

import math

import pytest

from sgpy import _check
from sgpy.errors import DataMismatch


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (0, ValueError), (2 ** 32, ValueError),
                                      (10 ** 12, ValueError), (math.nan, TypeError), (math.inf, TypeError),
                                      (1.5, TypeError), ("100", TypeError), (True, TypeError)])
def test_a_bad_timeout_names_the_allowed_range(bad, exc):
    with pytest.raises(exc, match="1 to 4294967295"):
        _check.timeout_ms(bad)


def test_timeouts_in_range_pass():
    assert _check.timeout_ms(1) == 1 and _check.timeout_ms(2 ** 32 - 1) == 2 ** 32 - 1


@pytest.mark.parametrize("bad, exc", [(math.inf, ValueError), (math.nan, ValueError), (-1, ValueError),
                                      (0, ValueError), ("5", TypeError), (True, TypeError)])
def test_seconds_must_be_finite_and_positive(bad, exc):
    with pytest.raises(exc, match="seconds"):
        _check.seconds(bad)


def test_a_policy_must_be_a_policy():
    with pytest.raises(TypeError, match="READ_ONLY"):
        _check.policy("readonly")
    with pytest.raises(TypeError, match="max_fds must be an int"):
        _check.whole(1.5, "max_fds")


def test_data_mismatch_on_a_zero_block_says_there_is_no_stamp():
    e = DataMismatch(lba=0, found_lba=0, expected_tag=7, found_tag=0)
    assert "no stamp" in str(e) and "LBA 0's stamp" not in str(e)


@pytest.mark.parametrize("name", ["initiator_name", "user", "alias"])
def test_a_login_value_with_a_nul_is_refused_not_cut(name):
    iscsi = pytest.importorskip("sgpy.iscsi")
    options = {"initiator_name": "iqn.2024-01.org.example:a", name: "iqn.2024-01.org.example:a\0b"}
    if name == "user":
        options["password"] = "secret-secret"
    with pytest.raises(ValueError, match="NUL"):
        iscsi.LoginOptions(**options)


def test_a_password_with_a_nul_is_refused_without_showing_it():
    iscsi = pytest.importorskip("sgpy.iscsi")
    with pytest.raises(ValueError, match="password contains a NUL") as info:
        iscsi.LoginOptions(user="u", password="abc\0def")
    assert "abc" not in str(info.value)
