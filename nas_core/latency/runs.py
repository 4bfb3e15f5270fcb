"""Latency for a run: the table a search uses, ``nas latency build|check``, and export's record.

This is the only part of :mod:`nas_core.latency` that reads a run (its config, space and
device); the rest works on a :class:`~nas_core.spaces.space.SearchSpace` alone.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from nas_core.checked_json import write_json_atomic
from nas_core.errors import ConfigError
from nas_core.latency.build import build_table
from nas_core.latency.check import evaluate, machine_state, measure_networks, plot, protocol_of, store_fit
from nas_core.latency.plan import make_plan
from nas_core.latency.table import LatencyTable
from nas_core.latency.timing import Protocol, device_name, measure, prepare

console = Console()


def _space_options(run: Any) -> dict[str, Any]:
    return run.config.space.options.model_dump(mode="json")


def _objectives(run: Any) -> list[str]:
    return list(run.config.search.searcher.raw_options().get("objectives") or [])


def table_for_search(run: Any) -> LatencyTable | None:
    """The run's latency table (``search.latency_table``), checked against the run's space and
    target device; None when the run uses no latency. One-line errors for every problem."""
    search = run.config.search
    needs = [what for what, used in (("search.constraints.max_latency_ms", search.constraints.max_latency_ms is not None),
                                     ("the 'latency' objective of search.searcher", "latency" in _objectives(run))) if used]
    if search.latency_table is None:
        if needs:
            raise ConfigError(f"{run.config.source}: {needs[0]} needs search.latency_table (a table made by 'nas latency build')")
        return None
    table = LatencyTable.load(search.latency_table)
    target = search.latency_device or device_name(run.device)
    table.check_fits(run.config.space.name, _space_options(run), make_plan(run.space, table.key["batch_size"]), run.space.input_size, target)
    if search.latency_margin_pct is not None:
        table.margin_pct = search.latency_margin_pct
    return table


# ------------------------------------------------------------------------------ nas latency build


def default_table_path(run: Any, protocol: Protocol) -> Path:
    return run.run_dir / f"latency-{torch.device(protocol.device).type}-{protocol.backend}-b{protocol.batch_size}-t{protocol.threads}.json"


def build(run: Any, protocol: Protocol, out: str | None = None, overwrite: bool = False, progress: bool = True) -> LatencyTable:
    path = Path(out) if out else default_table_path(run, protocol)
    table = build_table(run.space, run.config.space.name, _space_options(run), protocol, path, overwrite, console, progress)
    fastest, slowest = table.bounds()
    console.print(f"[green]latency table[/green] {path}: {table.describe()}; networks from {fastest:.3f} to {slowest:.3f} ms (sum of ops)")
    return table


# ------------------------------------------------------------------------------ nas latency check


def check(run: Any, table_path: str, num_archs: int = 50, seed: int = 0, fit: bool = True, out: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Measure ``num_archs`` random networks end to end and report the table's accuracy."""
    from nas_core.ranking import sample_distinct

    table = LatencyTable.load(table_path)
    protocol = protocol_of(table)
    table.check_fits(run.config.space.name, _space_options(run), make_plan(run.space, protocol.batch_size), run.space.input_size, None)
    here = _device_here(protocol)
    if here != table.key["device"]:
        raise ConfigError(f"{table_path}: latency table was measured on '{table.key['device']}'; it can only be checked there (this machine: '{here}')")
    if fit and num_archs < 10:
        raise ConfigError(f"--num-archs {num_archs}: fitting a correction needs at least 10 networks (or pass --no-fit)")
    fitted_on = (table.data.get("correction") or {}).get("fitted_on", {})
    seen = [run.space.decode(a) for a in fitted_on.get("archs", [])]
    archs = sample_distinct(run.space, num_archs, seed, exclude=seen)  # the stored correction is judged on networks it never saw
    before = machine_state()
    measured = measure_networks(run.space, archs, protocol, console, progress)
    report = evaluate(table, archs, [run.space.encode(a) for a in archs], [run.space.complexity(a)[0] for a in archs], measured, seed, fit)
    report.update(table=str(table_path), key=table.key, protocol=table.protocol, machine={"before": before, "after": machine_state()})
    if fit:
        store_fit(table, report)
    base = Path(out) if out else Path(table_path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    plot(report, base.with_name(base.name + "-check.png"), f"{table.describe()} ({num_archs} networks, seed {seed})")
    report.pop("_cv_predictions", None)
    json_path = base.with_name(base.name + "-check.json")
    write_json_atomic(report, json_path)
    _print_check(report, table, json_path)
    return report


def _device_here(protocol: Protocol) -> str | None:
    device = torch.device(protocol.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return None
    return device_name(device)


def _print_check(report: dict[str, Any], table: LatencyTable, json_path: Path) -> None:
    view = Table(title=f"latency check: {report['networks']} networks, {table.describe()}")
    for column in ("predictor", "median |err| %", "max |err| %", "Kendall tau"):
        view.add_column(column)
    r = report["raw"]
    view.add_row("sum of ops", f"{r['median_abs_pct']:.2f}", f"{r['max_abs_pct']:.2f}", f"{r['kendall_tau']:.3f}")
    if "stored_correction" in report:
        s = report["stored_correction"]
        note = "new networks" if s["new_networks"] else "networks it was fitted on"
        view.add_row(f"stored correction ({s['model']}, {note})", f"{s['median_abs_pct']:.2f}", f"{s['max_abs_pct']:.2f}", f"{s['kendall_tau']:.3f}")
    if "fitted_correction" in report:
        f = report["fitted_correction"]
        view.add_row(f"fitted correction ({f['model']}, cross-validated)", f"{f['cv']['median_abs_pct']:.2f}", f"{f['cv']['max_abs_pct']:.2f}", f"{f['cv']['kendall_tau']:.3f}")
    m = report["macs"]
    view.add_row("MACs (linear fit, cross-validated)", f"{m['linear_fit_cv_median_abs_pct']:.2f}", f"{m['linear_fit_cv_max_abs_pct']:.2f}", f"{m['kendall_tau']:.3f}")
    console.print(view)
    if "fitted_correction" in report:
        f = report["fitted_correction"]
        if "not_stored" in f:
            console.print(f"warning: correction not stored in {table.path}: {f['not_stored']}")
        else:
            console.print(f"correction {f['model']} (scale {f['scale']:.4f}, per layer {f['per_layer_ms']:.4f} ms) and safety margin "
                          f"{f['margin_pct']:.2f}% for latency limits (90% of networks measured below prediction + margin) stored in {table.path}")
    console.print(f"measured spread (median IQR / median): {report['measured_spread_median'] * 100:.1f}% -> {json_path}")


# ------------------------------------------------------------------------------ nas export


def export_record(run: Any, subnet: torch.nn.Module, arch: tuple[int, ...]) -> dict[str, Any] | None:
    """Predicted and (when this machine is the table's device) measured latency of an exported network."""
    table = table_for_search(run)
    if table is None:
        return None
    protocol = protocol_of(table)
    record: dict[str, Any] = {
        "predicted_ms": table.predict_ms(arch), "sum_of_ops_ms": table.raw_ms(arch), "correction": table.correction.model,
        "with_margin_ms": table.upper_ms(arch), "margin_pct": table.margin_pct,
        "table": str(table.path), "device": table.key["device"], "batch_size": protocol.batch_size,
        "threads": protocol.threads, "backend": protocol.backend,
    }
    here = _device_here(protocol)
    if here != table.key["device"]:
        record.update(measured_ms=None, not_measured=f"the table is for '{table.key['device']}', this machine is '{here}'")
        return record
    if not getattr(run, "is_main", True):  # under torchrun the other processes would compete for the cores
        record.update(measured_ms=None, not_measured="measured by the main process only")
        return record
    shape = (protocol.batch_size, 3, *run.space.input_size)
    with torch.no_grad():
        call = prepare(copy.deepcopy(subnet).cpu(), shape, protocol)
    timing = measure([call], protocol)[0]
    record.update(measured_ms=timing.median_ms, measured_p25_ms=timing.p25_ms, measured_p75_ms=timing.p75_ms,
                  error_pct=(record["predicted_ms"] - timing.median_ms) / timing.median_ms * 100)
    return record
