"""Sphinx extension: resolve short Python references to the object sgpy documents.

Docstrings name objects the way their own module sees them
(``ChannelClosed``, ``from_url``, ``READ_ONLY``), and the pages sometimes by
the package root (``sgpy.Channel``, ``sgpy.find``).  Python's domain looks
such a name up only in the current module and class.  When it finds
nothing, this looks for a documented object whose full name ends with the
same dotted name and, when exactly one does, links to it.  A name no
documented object has stays unresolved, so ``-n`` still reports it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.nodes import make_refnode

__all__ = ["candidates", "setup"]

#: What a reference role may point at, by role.
ROLE_TYPES = {
    "class": ("class", "exception", "data", "attribute"),
    "exc": ("exception", "class"),
    "func": ("function", "method", "classmethod", "staticmethod"),
    "meth": ("method", "classmethod", "staticmethod", "function", "property"),
    "attr": ("attribute", "property", "data"),
    "data": ("data", "attribute"),
    "mod": ("module",),
    "obj": (),
}


def candidates(objects: Dict[str, Any], target: str, role: str) -> List[str]:
    """Documented names ending with ``.target`` (or equal to the name without the root package)."""
    target = target.lstrip("~.")
    wanted = ROLE_TYPES.get(role, ())
    suffix = "." + target.split(".", 1)[1] if target.startswith("sgpy.") else "." + target
    found = []
    for name, entry in objects.items():
        objtype = entry[2] if isinstance(entry, tuple) else entry.objtype
        if wanted and objtype not in wanted:
            continue
        if getattr(entry, "aliased", False):
            continue
        if name.endswith("." + target) or (target.startswith("sgpy.") and name.startswith("sgpy.")
                                            and name.endswith(suffix)):
            found.append((wanted.index(objtype) if objtype in wanted else 0, name))
    if not found:
        return []
    best = min(rank for rank, _ in found)  # a function before a method of the same name
    return sorted({name for rank, name in found if rank == best})


def _missing(app: Sphinx, env: Any, node: nodes.Element, contnode: nodes.Element) -> Optional[nodes.Element]:
    if node.get("refdomain") != "py":
        return None
    objects = env.get_domain("py").objects
    names = candidates(objects, node["reftarget"], node.get("reftype", ""))
    if len(names) != 1:
        return None
    entry = objects[names[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, names[0])


def setup(app: Sphinx) -> Dict[str, Any]:
    app.connect("missing-reference", _missing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
