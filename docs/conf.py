"""Sphinx configuration for sgpy's documentation."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "_ext"))

project = "sgpy"
author = "the sgpy developers"
copyright = "2026, the sgpy developers"
from sgpy._version import __version__ as release  # noqa: E402 (sgpy/_version.py: the one place)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sgpy_commands",
]
intersphinx_mapping = {}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
