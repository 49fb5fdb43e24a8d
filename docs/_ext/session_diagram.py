"""Sphinx directives that render ptycore's session rules from the table itself.

``.. session-diagram::`` draws the state transitions as text (no Graphviz needed),
``.. session-rules::`` lists every row of ``ptycore._session_rules.RULES`` grouped as
they are written, and ``.. session-checks::`` lists the checks. Built from the same
data the machine runs on, the page cannot drift from the code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from ptycore._session_rules import CHECKS, RULES, Direction, Kind, Role, Rule, SessionState

_ORDER = {state: i for i, state in enumerate(SessionState)}
_KIND_ORDER = {kind: i for i, kind in enumerate(Kind)}


def _names(items: list[Any], order: dict[Any, int]) -> str:
    return ", ".join(i.value for i in sorted(set(items), key=order.__getitem__))


_SPINE = (
    SessionState.READY,
    SessionState.STARTING,
    SessionState.RUNNING,
    SessionState.EXITED,
    SessionState.CLOSING,
    SessionState.CLOSED,
)


def _edges(role: Role) -> dict[tuple[SessionState, SessionState], list[str]]:
    """Labels of every state change of ``role``, by (from, to)."""
    kinds: dict[tuple[SessionState, SessionState, Direction, str], list[Kind]] = defaultdict(list)
    for (r, state, direction, kind), rule in RULES.items():
        if r is role and rule.next_state is not state:
            kinds[(state, rule.next_state, direction, rule.action.value)].append(kind)
    edges: dict[tuple[SessionState, SessionState], list[str]] = defaultdict(list)
    for (src, dst, direction, action), group in sorted(
        kinds.items(), key=lambda e: (e[0][2].value, e[0][3])
    ):
        edges[(src, dst)].append(f"{direction.value} {_names(group, _KIND_ORDER)} ({action})")
    return edges


def diagram_lines(role: Role) -> list[str]:
    """A text state diagram of ``role``: the main path drawn, the other changes listed."""
    edges = _edges(role)
    lines = [f"{role.value}:", ""]
    for i, state in enumerate(_SPINE):
        lines.append(f"  [{state.name}]")
        if i + 1 < len(_SPINE):
            for label in edges.pop((state, _SPINE[i + 1]), []):
                lines.append(f"      |  {label}")
            lines.append("      v")
    others: dict[tuple[SessionState, str], list[SessionState]] = defaultdict(list)
    for (src, dst), labels in edges.items():
        for label in labels:
            others[(dst, label)].append(src)
    rows = [
        (", ".join(s.name for s in sorted(srcs, key=_ORDER.__getitem__)), label, dst.name)
        for (dst, label), srcs in others.items()
    ]
    rows.append(("any state", "receive a violation (ProtocolError)", "ERROR"))
    width = max(len(r[0]) for r in rows)
    lines += ["", "  also:"]
    lines += [f"  {src:<{width}} --{label}--> {dst}" for src, label, dst in sorted(rows)]
    return lines


def rule_groups() -> list[
    tuple[tuple[Role, Direction, Rule, str], list[SessionState], list[Kind]]
]:
    """Rows sharing role, direction, action, checks, source and target, merged.

    The target is ``(same)`` where the state does not change.
    """
    groups: dict[tuple[Role, Direction, Rule, str], tuple[set[SessionState], set[Kind]]] = {}
    for (role, state, direction, kind), rule in RULES.items():
        target = "(same)" if rule.next_state is state else rule.next_state.name
        # The key ignores next_state itself (it is in ``target``).
        key_rule = Rule(
            action=rule.action,
            next_state=SessionState.READY,
            checks=rule.checks,
            source=rule.source,
        )
        states, kinds = groups.setdefault((role, direction, key_rule, target), (set(), set()))
        states.add(state)
        kinds.add(kind)
    return [
        (key, sorted(states, key=_ORDER.__getitem__), sorted(kinds, key=_KIND_ORDER.__getitem__))
        for key, (states, kinds) in groups.items()
    ]


_REQUEST_NAME = re.compile(r"[\w.-]+@[\w.-]+\w")


def _rst(text: str) -> str:
    """Plain text into an rst table cell: no stray emphasis, no mail links for
    request names such as ``eow@openssh.com``."""
    text = text.replace("\\", "\\\\").replace("*", r"\*").replace("`", "'")
    return _REQUEST_NAME.sub(lambda m: f"``{m.group(0)}``", text)


class SessionDiagram(SphinxDirective):
    """Render the state changes of both roles as a text diagram."""

    def run(self) -> list[nodes.Node]:
        text = "\n\n".join("\n".join(diagram_lines(role)) for role in Role)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def _table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0] or ' '}")
        lines.extend(f"     - {cell or ' '}" for cell in row[1:])
    return lines


class _RstDirective(SphinxDirective):
    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(self.lines(), "<session-rules>"), 0, container)
        return list(container.children)


class SessionRules(_RstDirective):
    """Every rule, grouped as written, with its source."""

    def lines(self) -> list[str]:
        rows = [
            [
                role.value,
                direction.value,
                ", ".join(s.name for s in states),
                _rst(_names(kinds, _KIND_ORDER)),
                rule.action.value,
                target,
                ", ".join(f"``{c.value}``" for c in rule.checks),
                _rst(rule.source),
            ]
            for (role, direction, rule, target), states, kinds in rule_groups()
        ]
        return _table(
            ["role", "from", "states", "input", "action", "next", "checks", "source"],
            rows,
            "6 6 12 14 7 8 12 35",
        )


class SessionChecks(_RstDirective):
    """Every check, what its failure does, and its source."""

    def lines(self) -> list[str]:
        rows = [
            [
                f"``{check.value}``",
                _rst(spec.text),
                spec.outcome.value,
                _rst(spec.source),
            ]
            for check, spec in CHECKS.items()
        ]
        return _table(["check", "requires", "on failure", "source"], rows, "15 35 10 40")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("session-diagram", SessionDiagram)
    app.add_directive("session-rules", SessionRules)
    app.add_directive("session-checks", SessionChecks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
