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
    "sgpy_refs",
]
intersphinx_mapping = {}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = True
# Names -n cannot resolve and that are not sgpy's to document: type
# variables and private aliases in signatures, private modules named on
# purpose, and other projects' objects (no intersphinx: the build is
# offline).
nitpick_ignore = [
    ("py:class", "_R"),
    ("py:class", "sgpy.aio._R"),
    ("py:class", "sgpy.io.R"),
    ("py:class", "sgpy.cdb.base.C"),
    ("py:class", "sgpy.aio._Opening"),
    ("py:class", "_safety.Policy"),
    ("py:mod", "sgpy._binding"),
    ("py:func", "sgpy._asc.asc_text"),
    ("py:class", "uuid.UUID"),
    ("py:func", "attr.evolve"),
]
exclude_patterns = ["_build"]
# A builtin theme with a fluid body: wide code blocks and tables get the
# window's width (and a scroll bar beyond it) instead of a fixed column.
html_theme = "classic"
html_theme_options = {"body_max_width": "none", "stickysidebar": False}
html_static_path = []

# The man page sgpy(1) is docs/cli.rst (tools/gen_man.py writes docs/man/sgpy.1
# with sphinx's man builder; tests/packaging/test_man_page.py checks it is current).
man_pages = [("cli", "sgpy", "send SCSI commands to Linux devices through the sg driver", [author], 1)]


def _man_plain_references(app, doctree, docname):  # type: ignore[no-untyped-def]
    """In the man page a link to another page or object is its text alone.

    docutils' man writer (0.22) prints every link's target after its text,
    "<#sgpy.devices.find>" or "<>" for one within the documentation, which
    means nothing in a terminal; links to web addresses keep theirs.
    """
    if app.builder.name != "man":
        return
    from docutils import nodes

    for node in doctree.findall(nodes.reference):
        if "://" not in node.get("refuri", "://") and not node["refuri"].startswith("mailto:"):
            del node["refuri"]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("doctree-resolved", _man_plain_references)
