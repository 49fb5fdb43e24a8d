"""``.. opcode-table::``: the terminal mode opcodes, generated from ``ptycore.Opcode``.

Each row comes from the enum and the table that drives the termios conversion,
so the page lists exactly the opcodes the code knows.
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from ptycore import Opcode
from ptycore.modes import _SPECS


def opcode_rows() -> list[tuple[str, str, str, str, str]]:
    """(value, name, kind, stty name, meaning) for every opcode, in value order."""
    rows = []
    for opcode in Opcode:
        spec = _SPECS[opcode]
        stty = f"``{spec.stty}``" if spec.stty else ""
        rows.append(
            (str(opcode.value), f"``{opcode.name}``", spec.kind.value, stty, spec.description)
        )
    return rows


class OpcodeTable(SphinxDirective):
    """Render every ``Opcode`` as a list-table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        lines = [
            ".. list-table:: Terminal mode opcodes (RFC 4254 section 8, RFC 8160)",
            "   :header-rows: 1",
            "   :widths: 8 22 16 12 42",
            "",
            "   * - Value",
            "     - Name",
            "     - Kind",
            "     - stty",
            "     - Meaning",
        ]
        for row in opcode_rows():
            lines.append(f"   * - {row[0]}")
            lines.extend(f"     - {cell}" for cell in row[1:])
        container = nodes.container()
        self.state.nested_parse(
            StringList(lines, source="opcode-table"), self.content_offset, container
        )
        return list(container.children)


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_directive("opcode-table", OpcodeTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
