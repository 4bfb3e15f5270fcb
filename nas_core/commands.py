"""What each CLI command does, as plain functions (the CLI only parses arguments).

Search, export and rank read the trained supernet through :mod:`nas_core.restore` and never
enter the trainer. Every command records ``run_dir/metadata-<command>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nas_core import distributed
from nas_core.checkpoint import CHECKPOINT_NAME
from nas_core.config import RunConfig
from nas_core.errors import DataError, NasError
from nas_core.export import export_subnet
from nas_core.ground_truth import load_table
from nas_core.outcome import search_outcome
from nas_core.ranking import rank_statistics, sample_distinct, save_json, scatter_plot
from nas_core.restore import load_trained_supernet
from nas_core.run import Run
from nas_core.search_result import SearchProblem, SearchResult

console = Console(stderr=False)


def ground_truth_for(run: Run) -> dict | None:
    """The NAS-Bench-Macro table when the run's space is that benchmark's, else None."""
    if run.config.space.name != "nas-bench-macro":
        return None
    try:
        return load_table(run.config.rank.ground_truth)
    except DataError:
        return None


def train(run: Run, resume: bool = False) -> dict[str, float]:
    from nas_core.trainer import Trainer

    metrics = Trainer(run).fit(resume=resume)
    if run.is_main:
        console.print(f"[green]trained[/green] {run.run_dir / CHECKPOINT_NAME}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return metrics


def _checkpoint(run: Run, checkpoint: str | None) -> Path:
    return Path(checkpoint) if checkpoint else run.run_dir / CHECKPOINT_NAME


def search(run: Run, checkpoint: str | None = None) -> SearchResult:
    run.check()
    load_trained_supernet(run, _checkpoint(run, checkpoint))
    run.write_metadata("search")
    problem = SearchProblem(run.space, lambda archs: run.evaluator.evaluate(run.supernet, archs), run.config.search.constraints, run.config.seed)
    searcher_name = run.config.search.searcher.name
    run.hooks.search_start(searcher_name)
    result = run.searcher.search(problem)
    result.searcher = searcher_name
    run.hooks.search_end(result)
    distributed.check_same(result.best.arch, "the chosen architecture")
    if run.is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        result.save(run.run_dir / "search.json")
        if result.pareto:
            _pareto_outputs(run, result)
        _print_result(run, result)
        _print_outcome(run, problem, result)
    return result


def _print_outcome(run: Run, problem: SearchProblem, result: SearchResult) -> None:
    """On a benchmark space: the choice against all feasible networks and the naive picks."""
    table = ground_truth_for(run)
    if table is None or result.pareto:
        return
    outcome = search_outcome(run.space, {k: r.mean_acc for k, r in table.items()}, problem.feasible, run.space.decode(result.best.arch))
    save_json(outcome.as_dict(), run.run_dir / "outcome.json")
    console.print(outcome.summary())


def _print_result(run: Run, result: SearchResult) -> None:
    table = ground_truth_for(run)
    rows = result.pareto or [result.best]
    view = Table(title=f"search ({result.searcher}, {len(result.history)} architectures evaluated)")
    for column in ("arch", "score", "MMACs", "params (M)") + (("ground truth %",) if table else ()):
        view.add_column(column)
    for c in rows:
        cells = [c.arch + (" *" if c.arch == result.best.arch else ""), f"{c.score:.2f}", f"{c.macs / 1e6:.1f}", f"{c.params / 1e6:.3f}"]
        if table:
            cells.append(f"{table[c.arch].mean_acc:.2f}")
        view.add_row(*cells)
    console.print(view)


def _pareto_outputs(run: Run, result: SearchResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    ax.scatter([c.macs / 1e6 for c in result.history], [c.score for c in result.history], s=8, c="0.7", label="evaluated")
    ax.plot([c.macs / 1e6 for c in result.pareto], [c.score for c in result.pareto], "o-", c="C3", label="Pareto front")
    ax.set_xlabel("MMACs")
    ax.set_ylabel(run.evaluator.metric_name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.run_dir / "pareto.png")
    plt.close(fig)


def export(run: Run, arch_text: str | None, checkpoint: str | None = None, out: str | None = None, search_result: str | None = None, pick: int | None = None) -> dict[str, Any]:
    run.check()
    load_trained_supernet(run, _checkpoint(run, checkpoint))
    run.write_metadata("export")
    if arch_text is None:
        path = Path(search_result) if search_result else run.run_dir / "search.json"
        if not path.is_file():
            raise NasError(f"{path}: no search result; pass --arch or run 'nas search' first")
        try:
            data = json.loads(path.read_text())
            arch_text = data["pareto"][pick]["arch"] if pick is not None else data["best"]["arch"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise NasError(f"{path}: not a search result with {'Pareto point ' + str(pick) if pick is not None else 'a best architecture'}") from None
    arch = run.space.decode(arch_text)
    out_dir = Path(out) if out else run.run_dir / f"export-{run.space.encode(arch)}"
    summary = export_subnet(run, arch, out_dir, onnx=run.config.export.onnx)
    table = ground_truth_for(run)
    gt = f", ground truth {table[summary['arch']].mean_acc:.2f}%" if table else ""
    console.print(f"[green]exported[/green] {summary['arch']} ({summary['macs'] / 1e6:.1f} MMACs, {summary['params'] / 1e6:.3f} M params{gt}) to {out_dir}")
    return summary


def rank(run: Run, checkpoint: str | None = None) -> dict[str, Any]:
    run.check()
    load_trained_supernet(run, _checkpoint(run, checkpoint))
    run.write_metadata("rank")
    table = load_table(run.config.rank.ground_truth)
    cfg = run.config.rank
    archs = sample_distinct(run.space, cfg.num_archs, cfg.seed)
    scores = run.evaluator.evaluate(run.supernet, archs)
    keys = [run.space.encode(a) for a in archs]
    truth = [table[k].mean_acc for k in keys]
    groups = [run.space.num_identities(a) for a in archs]
    report = rank_statistics(scores, truth, groups, cfg.bootstrap, cfg.seed, cfg.top_k)
    report["archs"] = [{"arch": k, "score": s, "ground_truth": t} for k, s, t in zip(keys, scores, truth)]
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_json(report, run.run_dir / "rank.json")
    scatter_plot(scores, truth, groups, run.run_dir / "rank.png", f"{run.config.sampler.name}: tau {report['kendall_tau']:.3f} (n={len(archs)})")
    lo, hi = report["kendall_tau_ci95"]
    console.print(
        f"Kendall tau {report['kendall_tau']:.3f} [95% CI {lo:.3f}, {hi:.3f}], Spearman {report['spearman_rho']:.3f}, "
        f"tau within equal-identity groups {report['group_tau_weighted_mean']:.3f}, top-k overlap {report['top_k_overlap']} "
        f"(n={len(archs)}) -> {run.run_dir / 'rank.json'}"
    )
    return report


def run_all(run: Run, resume: bool = False) -> dict[str, Any]:
    """The main job: train, search, export; print the choice and its ground truth."""
    run.write_metadata("run")
    train(run, resume=resume)
    result = search(run)
    summary = export(run, result.best.arch)
    return {"search": result.as_dict()["best"], "export": summary}


def config_show(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
