"""Sphinx extension: the ``.. sgpy-commands::`` directive.

It writes the table of sgpy's commands — operation code, service action,
direction, every CDB field with its position — straight from the command
classes (``sgpy.command.all_commands()`` and each class's compiled layout),
so the documentation cannot drift from the code.

Options:

``:standard:``
    Only commands whose standard starts with this text (``SPC``, ``SBC``,
    ``ZBC``, ``SAT``).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence

from docutils import nodes
from docutils.parsers.rst import Directive, directives

__all__ = ["CommandsDirective", "command_rows", "setup"]

HEADERS = ("Command", "Opcode", "Service action", "Direction", "Fields (wire order)", "Notes")
WIDTHS = (18, 7, 8, 12, 40, 15)


def _direction_text(cls: type) -> str:
    """The class's direction, or the rule when it depends on the fields."""
    static = inspect.getattr_static(cls, "direction")
    if isinstance(static, property):
        doc = inspect.getdoc(static) or "depends on the fields"
        return doc.splitlines()[0]
    return str(cls.direction.name)


def command_rows(standard: Optional[str] = None) -> List[Dict[str, Any]]:
    """One dict per command class: name, opcode, service action, direction, fields, notes."""
    from sgpy.command import all_commands

    rows = []
    for cls in all_commands():
        if standard and not cls.standard.startswith(standard):
            continue
        layout = cls.layout()
        notes = [cls.standard, f"{layout.length}-byte CDB"]
        if cls.irreversible:
            notes.append("irreversible")
        elif cls.changes_data:
            notes.append("changes data")
        summary = (inspect.getdoc(cls) or "").splitlines()[0] if cls.__doc__ else ""
        rows.append(
            {
                "name": cls.name,
                "summary": summary,
                "opcode": f"{cls.opcode:02X}h",
                "service_action": "" if cls.service_action is None else f"{cls.service_action:02X}h",
                "direction": _direction_text(cls),
                "fields": [(spec.name, spec.describe(), spec.kind(), spec.doc) for spec in layout.fields],
                "notes": ", ".join(notes),
            }
        )
    return rows


def _paragraph(*children: nodes.Node) -> nodes.paragraph:
    paragraph = nodes.paragraph()
    paragraph.extend(children)
    return paragraph


def _entry(*children: nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    entry.extend(children)
    return entry


def _row(cells: Sequence[nodes.entry]) -> nodes.row:
    row = nodes.row()
    row.extend(cells)
    return row


def _fields_cell(fields: Sequence[Any]) -> nodes.entry:
    items = nodes.bullet_list()
    for name, where, kind, doc in fields:
        text = f" — {where}, {kind}" + (f"; {doc}" if doc else "")
        items += nodes.list_item("", _paragraph(nodes.literal(text=name), nodes.Text(text)))
    return _entry(items) if fields else _entry(_paragraph(nodes.Text("—")))


def build_table(rows: Sequence[Dict[str, Any]]) -> nodes.table:
    """A docutils table node for ``rows`` (see :func:`command_rows`)."""
    table = nodes.table(classes=["sgpy-commands"])
    group = nodes.tgroup(cols=len(HEADERS))
    table += group
    for width in WIDTHS:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += _row([_entry(_paragraph(nodes.Text(title))) for title in HEADERS])
    group += head
    body = nodes.tbody()
    for row in rows:
        name_cell = _entry(_paragraph(nodes.literal(text=row["name"])))
        if row["summary"]:
            name_cell += _paragraph(nodes.Text(row["summary"]))
        body += _row(
            [
                name_cell,
                _entry(_paragraph(nodes.Text(row["opcode"]))),
                _entry(_paragraph(nodes.Text(row["service_action"] or "—"))),
                _entry(_paragraph(nodes.Text(row["direction"]))),
                _fields_cell(row["fields"]),
                _entry(_paragraph(nodes.Text(row["notes"]))),
            ]
        )
    group += body
    return table


class CommandsDirective(Directive):
    """``.. sgpy-commands::`` — the generated command table."""

    has_content = False
    option_spec = {"standard": directives.unchanged}

    def run(self) -> List[nodes.Node]:
        rows = command_rows(self.options.get("standard") or None)
        if not rows:
            raise self.error(f"no sgpy command matches :standard: {self.options.get('standard')!r}")
        return [build_table(rows)]


def setup(app: Any) -> Dict[str, Any]:
    """Register the directive with Sphinx."""
    app.add_directive("sgpy-commands", CommandsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
