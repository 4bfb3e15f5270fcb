"""Measured latency: per-device tables of every op of a space, checked against whole networks,
used by search as a constraint (``search.constraints.max_latency_ms``) and an objective
(``latency`` for NSGA-II), and recorded by ``nas export``.

- :mod:`~nas_core.latency.timing`: the measurement protocol and its robust statistic;
- :mod:`~nas_core.latency.plan`: which ops a space has and the input each one sees (from the
  space contract alone, so every space gets latency without code of its own);
- :mod:`~nas_core.latency.table`: the table file, its key, validation and predictions;
- :mod:`~nas_core.latency.build` / :mod:`~nas_core.latency.check`: ``nas latency build|check``;
- :mod:`~nas_core.latency.correction`: the fitted sum-of-ops -> end-to-end correction;
- :mod:`~nas_core.latency.runs`: the glue to a run's config, space and device.
"""

from nas_core.latency.correction import Correction
from nas_core.latency.plan import Plan, Slot, make_plan
from nas_core.latency.table import LatencyTable, LatencyTableError
from nas_core.latency.timing import Protocol, Timing, device_name, measure, prepare

__all__ = ["Correction", "LatencyTable", "LatencyTableError", "Plan", "Protocol", "Slot", "Timing", "device_name", "make_plan", "measure", "prepare"]
