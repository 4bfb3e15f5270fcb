"""The one table of component slots: which config key picks which kind of component.

Config resolution, the run, checkpoints and ``nas list`` all read this table, so adding a slot
(or renaming a config key) happens here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One place in a run where a component plugs in."""

    name: str
    """Slot name: checkpoint key (``regularizers.0`` for a list slot) and ``context.peer`` name."""
    kind: str
    """What one component of the slot is (``regularizer``); the argument of ``context.build``."""
    registry: str
    """The attribute of :class:`nas_core.registry.Registries` its factories are registered in."""
    config_path: str
    """Where the config picks it (dotted)."""
    many: bool = False
    """A list of components (``regularizers: [...]``)."""
    optional: bool = False
    """May be absent (``teacher: null``)."""
    trains: bool = False
    """Takes part in supernet training: its state and modules are saved in checkpoints."""


SLOTS: tuple[Slot, ...] = (
    Slot("sampler", "sampler", "samplers", "sampler", trains=True),
    Slot("regularizers", "regularizer", "regularizers", "regularizers", many=True, trains=True),
    Slot("teacher", "teacher", "teachers", "teacher", optional=True, trains=True),
    Slot("evaluator", "evaluator", "evaluators", "evaluator"),
    Slot("searcher", "searcher", "searchers", "search.searcher"),
)
"""The five extension points, in the order the engine builds them."""

NAMED: tuple[tuple[str, str], ...] = (("space", "search_spaces"), ("data", "datasets"))
"""Config keys that pick a registered object that is not a component: (config path, registry)."""


def slot(name_or_kind: str) -> Slot:
    """The slot with this name or kind (``regularizers`` or ``regularizer``)."""
    for s in SLOTS:
        if name_or_kind in (s.name, s.kind):
            return s
    known = ", ".join(s.kind for s in SLOTS)
    raise KeyError(f"no component slot '{name_or_kind}' (slots: {known})")
