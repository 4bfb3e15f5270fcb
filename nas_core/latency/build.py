"""``nas latency build``: measure every op of a space into a table, resumably.

How an op is timed depends on the backend:

- **torch (in-network).** Each op is timed *inside whole networks*: forward hooks read the
  clocks just before a layer runs and just after it returns, while the network runs as it
  will in deployment. Timed alone, an op finds its weights and input hot in the core's private
  cache on every repeat; inside a network the other layers have evicted them, and on this
  machine that alone made networks ~30% slower than the sum of their ops timed alone, by an
  amount that varied from network to network. The networks follow a balanced schedule: in each
  of ``protocol.contexts`` rounds every layer draws a random permutation of its choices and
  network ``j`` takes choice ``j`` of each, so every op is timed in ``contexts`` different
  random networks (its neighbours vary), ``repeats / contexts`` forward passes each.
- **onnxruntime (isolated).** A session runs a whole graph, so each op is exported and timed
  as its own graph on the input shape it sees in the network; ``nas latency check`` fits the
  correction that maps the sum to whole networks. (``method="isolated"`` with torch is kept
  as the ablation that shows why torch tables are measured in-network.)

Every step (one network, or one layer's candidates) is written to the table file atomically
with its raw samples, so an interrupted build keeps what it measured and the same command
continues where it stopped. An existing table is never replaced silently: a finished one is
reported as such, one measured under another key (device, threads, batch, backend, library
versions, space) or protocol is an error unless ``overwrite`` is given.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas_core.latency.plan import HEAD, STEM, Plan, Slot, make_plan, op_module
from nas_core.latency.table import LatencyTable, LatencyTableError
from nas_core.latency.timing import Protocol, Samples, Timing, check_protocol, device_name, library_versions, prepare, sample, sample_inside
from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Arch

SCHEDULE_SEED = 0


def table_key(space: SearchSpace, space_name: str, space_options: dict[str, Any], plan: Plan, protocol: Protocol) -> dict[str, Any]:
    """What a table's numbers are valid for."""
    return {
        "space": space_name,
        "space_options": space_options,
        "input_size": list(space.input_size),
        "structure": plan.fingerprint,
        "choices": list(space.num_choices),
        "device": device_name(protocol.device),
        "batch_size": protocol.batch_size,
        "threads": protocol.threads,
        "backend": protocol.backend,
        "versions": library_versions(protocol.backend),
    }


def slot_key(slot: Slot) -> str:
    return slot.kind if slot.kind != "layer" else f"{slot.layer}.{slot.choice}"


@dataclass(frozen=True)
class Step:
    """One unit of work: a whole network (``arch``) or the ops of one plan group (``group``)."""

    arch: Arch | None = None
    group: int | None = None


def in_network_schedule(num_choices: list[int], contexts: int, seed: int = SCHEDULE_SEED) -> list[Arch]:
    """Networks in which every op of every layer appears at least ``contexts`` times, each time
    beside randomly drawn neighbours."""
    rng = random.Random(seed)
    width = max(num_choices)
    archs = []
    for _ in range(contexts):
        perms = [rng.sample(range(n), n) for n in num_choices]
        archs += [tuple(p[j % len(p)] for p in perms) for j in range(width)]
    return archs


def steps_for(space: SearchSpace, plan: Plan, protocol: Protocol) -> list[Step]:
    if protocol.method == "in-network":
        return [Step(arch=a) for a in in_network_schedule(list(space.num_choices), protocol.contexts)]
    return [Step(group=g) for g in range(len(plan.groups))]


def _run_step(step: Step, supernet: Any, space: SearchSpace, plan: Plan, protocol: Protocol) -> dict[str, Samples]:
    if step.arch is not None:
        subnet = supernet.extract(step.arch)
        spans = {STEM: (subnet.stem, subnet.stem), HEAD: (subnet.head_features, subnet.classifier)}
        spans.update({f"{i}.{c}": (subnet.layers[i], subnet.layers[i]) for i, c in enumerate(step.arch)})
        repeats = math.ceil(protocol.repeats / protocol.contexts)
        return sample_inside(subnet, spans, (protocol.batch_size, 3, *space.input_size), protocol, repeats)
    group = plan.groups[step.group]
    with torch.no_grad():
        calls = [prepare(copy.deepcopy(op_module(supernet, slot)), slot.input_shape, protocol) for slot in group]
    return {slot_key(slot): s for slot, s in zip(group, sample(calls, protocol))}


def _existing(out: Path, key: dict[str, Any], protocol: dict[str, Any]) -> LatencyTable | None:
    """The table to continue, or None to start afresh; a table for something else is an error."""
    if not out.exists():
        return None
    table = LatencyTable.load(out, require_complete=False)
    for what, mine, theirs in [("", key, table.key), ("protocol ", protocol, table.protocol)]:
        for name, value in mine.items():
            if theirs.get(name) != value:
                raise LatencyTableError(
                    f"{out}: an existing latency table was measured with {what}{name}={theirs.get(name)!r}, this build has {value!r}; "
                    "pass --overwrite to replace it, or --out another file"
                )
    return table


def build_table(space: SearchSpace, space_name: str, space_options: dict[str, Any], protocol: Protocol, out: str | Path,
                overwrite: bool = False, console: Console | None = None, progress: bool = True) -> LatencyTable:
    """Measure (or finish measuring) the latency table of ``space`` into ``out``."""
    check_protocol(protocol)
    console = console or Console()
    out = Path(out)
    plan = make_plan(space, protocol.batch_size)
    key = table_key(space, space_name, space_options, plan, protocol)
    table = None if overwrite else _existing(out, key, protocol.as_dict())
    if table is not None and table.data["complete"]:
        console.print(f"{out}: latency table already complete ({table.describe()}); nothing to measure")
        return LatencyTable.load(out)
    steps = steps_for(space, plan, protocol)
    if table is None:
        table = LatencyTable.empty(out, key, protocol.as_dict(), plan)
        table.data["progress"] = {"method": protocol.method, "steps_done": 0, "steps_total": len(steps), "samples": {}}
    state = table.data["progress"]
    if state["steps_done"]:
        console.print(f"{out}: resuming after {state['steps_done']} of {len(steps)} measurement steps")
    machine = table.data.setdefault("machine", {})
    machine.setdefault("loadavg_start", list(os.getloadavg()))
    machine.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    torch.manual_seed(0)
    supernet = space.build_supernet().eval()
    bar = Progress(TextColumn("[bold]latency[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console, disable=not progress)
    with bar:
        task = bar.add_task(f"{space_name} ({state['method']})", total=len(steps), completed=state["steps_done"])
        for step in steps[state["steps_done"]:]:
            for name, new in _run_step(step, supernet, space, plan, protocol).items():
                stored = state["samples"].setdefault(name, Samples().as_dict())
                stored["wall"] += new.wall
                stored["thread"] += new.thread
                stored["calls_per_sample"] = new.calls_per_sample
            state["steps_done"] += 1
            table.save()
            bar.advance(task)
    for slot in plan.slots:
        table.record(slot, Timing.of(Samples(**state["samples"][slot_key(slot)]), protocol.clock).as_dict())
    machine["loadavg_end"] = list(os.getloadavg())
    machine["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    machine["method"] = state["method"]
    del table.data["progress"]
    table.data["complete"] = True
    table.save()
    return LatencyTable.load(out)
