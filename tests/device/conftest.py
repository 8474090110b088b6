"""Device tests: every test here needs a real sg device (the sandbox provides one)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/device/" in str(item.fspath):
            item.add_marker(pytest.mark.device)
