"""The documented lifecycle order, machine-checked.

The order lives in one place: the literal block of :mod:`nas_core.hookspecs`' docstring (also
rendered in ``docs/hooks.md``). This module parses that block -- hook names joined by ``->``,
``[x]`` optional, ``(x)`` grouping, ``x*`` / ``x+`` repetition, ``a | b`` alternatives -- into a
small automaton and checks a recorded sequence of hook calls against it, reporting the first
call that breaks the order and what was allowed there instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from nas_core import hookspecs

_TOKEN = re.compile(r"\s*(->|\[|\]|\(|\)|\*|\+|\||nas_\w+)")


def documented_order(doc: str | None = None) -> str:
    """The lifecycle block (the ``::`` literal block starting with ``nas_configure``)."""
    lines = (doc if doc is not None else hookspecs.__doc__ or "").splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::"):
            block: list[str] = []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and not nxt.startswith((" ", "\t")):
                    break
                block.append(nxt)
            text = "\n".join(block).strip()
            if text.startswith("nas_configure"):
                return text
    raise ValueError("the hookspecs docstring has no lifecycle block (a '::' literal block starting with nas_configure)")


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"lifecycle order: cannot read {text[pos:pos + 20]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return [t for t in tokens if t != "->"]


@dataclass
class _State:
    label: str | None = None  # a hook name, or None for an epsilon state
    out: list[int] = field(default_factory=list)


class LifecycleAutomaton:
    """A Thompson automaton of the grammar; :meth:`check` walks a call sequence through it."""

    def __init__(self, text: str):
        self.text = text
        self.states: list[_State] = []
        self._tokens = tokenize(text)
        self._pos = 0
        start, end = self._alternatives()
        if self._pos != len(self._tokens):
            raise ValueError(f"lifecycle order: unexpected {self._tokens[self._pos]!r}")
        self.start, self.accept = start, end
        self.hooks = sorted({s.label for s in self.states if s.label})

    # ---------------------------------------------------------------- parsing

    def _new(self, label: str | None = None) -> int:
        self.states.append(_State(label))
        return len(self.states) - 1

    def _peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _alternatives(self) -> tuple[int, int]:
        branches = [self._sequence()]
        while self._peek() == "|":
            self._pos += 1
            branches.append(self._sequence())
        if len(branches) == 1:
            return branches[0]
        start, end = self._new(), self._new()
        for s, e in branches:
            self.states[start].out.append(s)
            self.states[e].out.append(end)
        return start, end

    def _sequence(self) -> tuple[int, int]:
        start = end = self._new()
        while self._peek() not in (None, "]", ")", "|"):
            s, e = self._item()
            self.states[end].out.append(s)
            end = e
        return start, end

    def _item(self) -> tuple[int, int]:
        token = self._peek()
        self._pos += 1
        if token in ("(", "["):
            closing = ")" if token == "(" else "]"
            s, e = self._alternatives()
            if self._peek() != closing:
                raise ValueError(f"lifecycle order: missing {closing!r}")
            self._pos += 1
            if token == "[":
                self.states[s].out.append(e)
        elif token and token.startswith("nas_"):
            s = self._new(token)
            e = self._new()
            self.states[s].out.append(e)
        else:
            raise ValueError(f"lifecycle order: unexpected {token!r}")
        if self._peek() in ("*", "+"):
            repeat = self._peek()
            self._pos += 1
            start, end = self._new(), self._new()
            self.states[start].out.append(s)
            self.states[e].out += [s, end]
            if repeat == "*":
                self.states[start].out.append(end)
            return start, end
        return s, e

    # ---------------------------------------------------------------- matching

    def _closure(self, states: Iterable[int]) -> set[int]:
        seen, stack = set(), list(states)
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            if self.states[i].label is None:
                stack.extend(self.states[i].out)
        return seen

    def _expected(self, current: set[int]) -> list[str]:
        return sorted({self.states[i].label for i in current if self.states[i].label})

    def check(self, calls: Sequence[str]) -> None:
        """Raise AssertionError at the first call the documented order does not allow."""
        current = self._closure([self.start])
        for index, name in enumerate(calls):
            nxt = [o for i in current if self.states[i].label == name for o in self.states[i].out]
            if not nxt:
                before = " -> ".join(calls[max(0, index - 3) : index]) or "(start)"
                allowed = self._expected(current) + (["(end)"] if self.accept in current else [])
                raise AssertionError(
                    f"hook call #{index} '{name}' breaks the documented lifecycle order after {before}; "
                    f"allowed here: {', '.join(allowed)}"
                )
            current = self._closure(nxt)
        if self.accept not in current:
            raise AssertionError(
                f"hook calls end early after {' -> '.join(calls[-3:]) or '(start)'}; "
                f"the documented order still needs one of: {', '.join(self._expected(current))}"
            )


_AUTOMATON: LifecycleAutomaton | None = None


def lifecycle_automaton() -> LifecycleAutomaton:
    global _AUTOMATON
    if _AUTOMATON is None:
        _AUTOMATON = LifecycleAutomaton(documented_order())
    return _AUTOMATON


def assert_lifecycle_order(calls) -> None:
    """Check hook calls (a :class:`~nas_core.testing.HookRecorder` or a list of hook names)
    against the order documented in :mod:`nas_core.hookspecs`."""
    names = calls.names() if hasattr(calls, "names") else list(calls)
    lifecycle_automaton().check(names)
