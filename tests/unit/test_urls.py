"""URL schemes and the transports that open them (sgpy._urls)."""

from __future__ import annotations

import pytest

import sgpy  # noqa: F401  (the package registers its transports)
from sgpy import _urls
from sgpy.channel import Channel


def test_the_package_registers_iscsi_and_the_scheme_is_compared_without_case():
    assert _urls.opener_for("iscsi://127.0.0.1/iqn.x/0") is _urls.opener_for("ISCSI://h/iqn.x/0") is not None


@pytest.mark.parametrize("text", ["/dev/sg0", "sg0", "1:0:0:0", "nbd://host/x", "iscsi:/h/x", ""])
def test_paths_and_unknown_schemes_have_no_opener(text):
    assert _urls.opener_for(text) is None


@pytest.mark.parametrize("scheme", ["", "a-b", "x://", "nbd+unix"])
def test_a_scheme_that_is_not_letters_and_digits_is_refused(scheme):
    with pytest.raises(ValueError, match="letters and digits"):
        _urls.register(scheme, lambda url, **options: None)


def test_from_path_and_from_url_hand_a_registered_url_to_its_opener(monkeypatch):
    seen = []
    monkeypatch.setitem(_urls._OPENERS, "demo", lambda url, **options: seen.append((url, options)) or "opened")
    assert Channel.from_path("DEMO://x/y", timeout=5) == "opened"
    assert Channel.from_url("demo://z", read_only=True) == "opened"
    assert seen == [("DEMO://x/y", {"timeout": 5}), ("demo://z", {"read_only": True})]


def test_the_sg_channel_module_does_not_import_the_iscsi_module():
    import ast
    import inspect

    from sgpy import channel

    tree = ast.parse(inspect.getsource(channel))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
               {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "iscsi" not in imported and "sgpy.iscsi" not in imported
