"""The latency table: per-op medians measured for one space on one device, and what they predict.

A table is a JSON file::

    {"format": "nas_core.latency-table/1",
     "key": {"space", "space_options", "input_size", "structure", "choices",
             "device", "batch_size", "threads", "backend", "versions"},
     "protocol": {...},                       # warm-up, repeats, passes (timing.Protocol)
     "complete": true,                        # while building: false, and "progress" holds
     "ops": {"stem": T, "head": T, "layers": [[T | null, ...], ...]},   # the raw samples so far
     "correction": null | {"model", "scale", "per_layer_ms", "fitted_on": {...}},
     "machine": {"loadavg_start", "loadavg_end", ...}}

where ``T`` is a :class:`~nas_core.latency.timing.Timing` (``median_ms``, ``p25_ms``,
``p75_ms``, ``samples``, ...) plus ``name``, ``input_shape`` and ``free`` (a skip that computes
nothing).
The key says what the numbers are valid for; :meth:`LatencyTable.check_fits` refuses a table
for another space, structure, input size or device with one line naming the difference.

The prediction for an architecture is ``stem + sum of its ops + head`` (the raw sum), passed
through the stored correction when ``nas latency check`` fitted one. Both are separable per
layer, so the fastest and slowest network of the space are exact (:meth:`bounds`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nas_core.checked_json import write_json_atomic
from nas_core.errors import NasError
from nas_core.latency.correction import MAX_MARGIN_PCT, Correction
from nas_core.latency.plan import Plan, Slot

FORMAT = "nas_core.latency-table/1"
TIMING_FIELDS = ("median_ms", "p25_ms", "p75_ms")


class LatencyTableError(NasError):
    """A latency table that is missing, corrupt, incomplete or measured for something else."""


def _entry(slot: Slot, timing: dict[str, Any]) -> dict[str, Any]:
    return {"name": slot.name, **timing, "input_shape": list(slot.input_shape), "free": slot.free}


@dataclass
class LatencyTable:
    """A loaded (or growing) table. ``path`` is where it lives; ``data`` is the JSON document."""

    path: Path
    data: dict[str, Any]
    correction: Correction = field(default_factory=Correction)
    margin_pct: float = 0.0
    """Safety margin for limits: by default the under-prediction its check found (90th percentile)."""

    # ------------------------------------------------------------ creating and saving

    @classmethod
    def empty(cls, path: Path, key: dict[str, Any], protocol: dict[str, Any], plan: Plan) -> "LatencyTable":
        data = {
            "format": FORMAT,
            "key": key,
            "protocol": protocol,
            "complete": False,
            "ops": {"stem": None, "head": None, "layers": [[None] * len(group) for group in plan.groups[1:-1]]},
            "correction": None,
            "machine": {},
        }
        return cls(Path(path), data)

    def record(self, slot: Slot, timing: dict[str, Any]) -> None:
        entry = _entry(slot, timing)
        if slot.kind == "layer":
            self.data["ops"]["layers"][slot.layer][slot.choice] = entry
        else:
            self.data["ops"][slot.kind] = entry

    def save(self) -> Path:
        """Write atomically (:func:`nas_core.checked_json.write_json_atomic`): a crash leaves the
        previous file."""
        return write_json_atomic(self.data, self.path)

    # ------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path, require_complete: bool = True) -> "LatencyTable":
        """Read and validate a table; every problem is one :class:`LatencyTableError` line."""
        path = Path(path)
        if not path.is_file():
            raise LatencyTableError(f"{path}: latency table not found (make one with 'nas latency build CONFIG --out {path}')")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:120]
            raise LatencyTableError(f"{path}: corrupt latency table (not JSON: {reason})") from None
        table = cls(path, data)
        table._validate(require_complete)
        return table

    def _validate(self, require_complete: bool) -> None:
        data, path = self.data, self.path
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise LatencyTableError(f"{path}: not a latency table (format {found!r}, expected {FORMAT!r})")
        try:
            key, ops = data["key"], data["ops"]
            for name in ("space", "structure", "device", "backend"):
                if not isinstance(key[name], str):
                    raise TypeError(f"key.{name} is not a string")
            for name in ("batch_size", "threads"):
                if not isinstance(key[name], int) or key[name] < 1:
                    raise TypeError(f"key.{name} is not a positive integer")
            if len(key["input_size"]) != 2 or len(ops["layers"]) != len(key["choices"]):
                raise TypeError("input_size or layers do not fit the key")
            entries = [("ops.stem", ops["stem"]), ("ops.head", ops["head"])]
            for i, (row, n) in enumerate(zip(ops["layers"], key["choices"])):
                if len(row) != n:
                    raise TypeError(f"ops.layers.{i} has {len(row)} entries, the key says {n} choices")
                entries += [(f"ops.layers.{i}.{c}", e) for c, e in enumerate(row)]
            missing = sum(e is None for _, e in entries)
            for where, entry in entries:
                if entry is not None:
                    values = [entry[f] for f in TIMING_FIELDS]
                    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values):
                        raise TypeError(f"{where}: timings must be finite non-negative numbers")
                    if not isinstance(entry.get("free"), bool):
                        raise TypeError(f"{where}: 'free' must be true or false")
            correction = data.get("correction")
            self.correction = Correction.from_dict(correction) if correction else Correction()
            self.margin_pct = float((correction or {}).get("margin_pct", 0.0))
            if not (math.isfinite(self.margin_pct) and 0 <= self.margin_pct < MAX_MARGIN_PCT):
                raise ValueError(f"correction.margin_pct must be a percentage in [0, {MAX_MARGIN_PCT:g})")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise LatencyTableError(f"{path}: corrupt latency table ({detail[:160]})") from None
        if require_complete and (missing or not data.get("complete")):
            state = data.get("progress") or {}
            done = f"{state.get('steps_done', 0)} of {state.get('steps_total', '?')} measurement steps done" if state else f"{len(entries) - missing} of {len(entries)} ops measured"
            raise LatencyTableError(f"{path}: latency table is incomplete ({done}); finish it by running the same 'nas latency build' again")
        if not data.get("complete") and not isinstance((data.get("progress") or {}).get("samples"), dict):
            raise LatencyTableError(f"{path}: corrupt latency table (incomplete, without the samples measured so far)")

    # ------------------------------------------------------------ what it is for

    @property
    def key(self) -> dict[str, Any]:
        return self.data["key"]

    @property
    def protocol(self) -> dict[str, Any]:
        return self.data["protocol"]

    def describe(self) -> str:
        k = self.key
        return f"{k['space']} at {k['input_size'][0]}x{k['input_size'][1]}, batch {k['batch_size']}, {k['threads']} thread(s), {k['backend']} on {k['device']}"

    def check_fits(self, space_name: str, space_options: dict[str, Any], plan: Plan, input_size: Sequence[int], device: str | None) -> None:
        """Refuse (one line naming the difference) a table measured for another space, structure,
        input size or device. ``device=None`` skips the device check."""
        key, where = self.key, self.path
        if key["space"] != space_name:
            raise LatencyTableError(f"{where}: latency table was measured for space '{key['space']}', this run's space is '{space_name}'")
        if list(key["input_size"]) != list(input_size):
            have, want = "x".join(map(str, key["input_size"])), "x".join(map(str, input_size))
            raise LatencyTableError(f"{where}: latency table was measured at input {have}, this run's space takes {want}")
        if key["structure"] != plan.fingerprint:
            differ = [f"{k}={key['space_options'].get(k)!r} vs {space_options.get(k)!r}" for k in sorted(set(key.get("space_options", {})) | set(space_options))
                      if key.get("space_options", {}).get(k) != space_options.get(k)]
            what = f"space options differ (table vs run: {', '.join(differ)})" if differ else "the space's layers differ from those measured (op definitions changed?)"
            raise LatencyTableError(f"{where}: latency table does not fit this run's space: {what}; build a table for it")
        if device is not None and key["device"] != device:
            raise LatencyTableError(
                f"{where}: latency table was measured on device '{key['device']}', this run targets '{device}' "
                "(to search for the table's device from here, set search.latency_device to its name)"
            )

    # ------------------------------------------------------------ predicting

    def _row(self, i: int) -> list[dict[str, Any]]:
        return self.data["ops"]["layers"][i]

    def fixed_ms(self) -> float:
        return self.data["ops"]["stem"]["median_ms"] + self.data["ops"]["head"]["median_ms"]

    def raw_ms(self, arch: Sequence[int]) -> float:
        """Sum of the medians of stem, the chosen op of every layer, and head."""
        return self.fixed_ms() + sum(self._row(i)[c]["median_ms"] for i, c in enumerate(arch))

    def layers_run(self, arch: Sequence[int]) -> int:
        return sum(not self._row(i)[c]["free"] for i, c in enumerate(arch))

    def predict_ms(self, arch: Sequence[int]) -> float:
        """Predicted end-to-end latency: the raw sum through the stored correction (if any)."""
        return float(self.correction.apply(self.raw_ms(arch), self.layers_run(arch)))

    @property
    def margin_factor(self) -> float:
        return 1 + self.margin_pct / 100

    def upper_ms(self, arch: Sequence[int]) -> float:
        """The prediction plus the safety margin: what a latency limit is checked against, so
        that a network picked right at the limit still runs within it when it is measured."""
        return self.predict_ms(arch) * self.margin_factor

    def bounds(self) -> tuple[float, float]:
        """(fastest, slowest) predicted latency over the whole space (exact: the model is separable)."""
        c = self.correction
        per_op = [[c.scale * e["median_ms"] + c.per_layer_ms * (not e["free"]) for e in self._row(i)] for i in range(len(self.key["choices"]))]
        base = c.scale * self.fixed_ms()
        return base + sum(min(row) for row in per_op), base + sum(max(row) for row in per_op)

    def set_correction(self, correction: Correction, fitted_on: dict[str, Any], margin_pct: float = 0.0) -> None:
        self.correction, self.margin_pct = correction, margin_pct
        self.data["correction"] = {**correction.as_dict(), "margin_pct": margin_pct, "fitted_on": fitted_on}  # also "none": which networks it was judged on
