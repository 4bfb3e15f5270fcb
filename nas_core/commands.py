"""What each CLI command does, as plain functions (the CLI only parses arguments).

Search, export and rank read the trained supernet through :mod:`nas_core.restore` and never
enter the trainer; with an evaluator that does not read trained weights
(``Evaluator.reads_supernet``) and no checkpoint they use the freshly built supernet instead,
and ``nas run`` trains none. Every command records ``run_dir/metadata-<command>.json``, and
holds the run folder's lock (:mod:`nas_core.run_lock`) while it works.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from nas_core import distributed
from nas_core.checked_json import write_json_atomic
from nas_core.checkpoint import CHECKPOINT_NAME
from nas_core.config import RunConfig
from nas_core.errors import ArchitectureError, ConfigError, DataError, NasError
from nas_core.export import export_subnet
from nas_core.ground_truth import load_table, lookup
from nas_core.latency.runs import table_for_search
from nas_core.outcome import search_outcome
from nas_core.ranking import rank_statistics, sample_distinct, scatter_plot
from nas_core.restore import load_trained_supernet
from nas_core.run import Run
from nas_core.run_lock import check_output_dir, locked_run_dir
from nas_core.search_result import SearchProblem, SearchResult

console = Console(stderr=False)


def writes_run_dir(command: str):
    """The command holds ``run.run_dir``'s lock while it runs: a second writer is refused.

    Under torchrun only rank 0 locks (it alone writes), and every rank learns whether it got
    the folder, so a refused job stops on all ranks instead of leaving the others waiting."""

    def wrap(function):
        @functools.wraps(function)
        def locked(run: Run, *args, **kwargs):
            with contextlib.ExitStack() as held:
                refusal = None
                try:
                    held.enter_context(locked_run_dir(run.run_dir, command))
                except NasError as exc:
                    refusal = exc.messages
                refused = distributed.all_gather_objects(refusal)[0]
                if refused:
                    raise NasError(*refused)
                return function(run, *args, **kwargs)

        return locked

    return wrap


def ground_truth_for(run: Run) -> dict | None:
    """The NAS-Bench-Macro table when the run's space is that benchmark's, else None."""
    if run.config.space.name != "nas-bench-macro":
        return None
    try:
        return load_table(run.config.rank.ground_truth)
    except DataError:
        return None


@writes_run_dir("train")
def train(run: Run, resume: bool = False) -> dict[str, float]:
    from nas_core.trainer import Trainer

    metrics = Trainer(run).fit(resume=resume)
    if run.is_main:
        done = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) or "already fully trained, nothing to do"
        console.print(f"[green]trained[/green] {run.run_dir / CHECKPOINT_NAME}: {done}")
    return metrics


def _checkpoint(run: Run, checkpoint: str | None) -> Path:
    return Path(checkpoint) if checkpoint else run.run_dir / CHECKPOINT_NAME


def supernet_weights(run: Run, checkpoint: str | None) -> Literal["supernet", "initial"]:
    """Give the run the supernet that search, export and rank work on; returns which weights:

    - ``"supernet"``: the trained checkpoint (``checkpoint``, else the run's own) is loaded --
      always when one is given or exists, and whenever the evaluator reads trained weights (a
      missing checkpoint is then the usual one-line error);
    - ``"initial"``: the evaluator does not read trained weights (``reads_supernet`` False) and
      there is no checkpoint: the freshly built supernet stays as it is."""
    path = _checkpoint(run, checkpoint)
    if checkpoint is None and not path.exists() and not run.evaluator.reads_supernet:
        return "initial"
    load_trained_supernet(run, path)
    return "supernet"


def _evaluator_label(run: Run) -> str:
    """``'rank-fusion' (naswot, depth)``: the evaluator's name, and a wrapper's scored members
    (a fusion's ``members`` with a weight above 0, ``layer-additive``'s ``member``)."""
    spec = run.config.evaluator
    members = [m.evaluator.name for m in getattr(spec.options, "members", ()) if getattr(m, "weight", 1) > 0]
    if getattr(spec.options, "member", None) is not None:
        members.append(spec.options.member.name)
    return f"'{spec.name}'" + (f" ({', '.join(members)})" if members else "")


def search_problem(run: Run) -> SearchProblem:
    """The run's search problem. Constraints that no architecture meets and a latency table that
    does not fit are refused here, before any weights are loaded or scores computed."""
    return SearchProblem(run.space, lambda archs: run.evaluator.evaluate(run.supernet, archs), run.config.search.constraints, run.config.seed,
                         latency=table_for_search(run))


@writes_run_dir("search")
def search(run: Run, checkpoint: str | None = None) -> SearchResult:
    run.check()
    problem = search_problem(run)
    supernet_weights(run, checkpoint)  # after the constraints are found satisfiable
    run.write_metadata("search")
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
    try:
        outcome = search_outcome(run.space, {k: r.mean_acc for k, r in table.items()}, problem.feasible, run.space.decode(result.best.arch))
    except KeyError as exc:  # a partial table (rank.ground_truth): the search result stands, the report is skipped
        warnings.warn(f"{run.config.rank.ground_truth or 'the ground-truth table'}: has no entry for {exc}; no ground-truth outcome for this search", stacklevel=2)
        return
    write_json_atomic(outcome.as_dict(), run.run_dir / "outcome.json")
    console.print(outcome.summary())


def _print_result(run: Run, result: SearchResult) -> None:
    table = ground_truth_for(run)
    rows = result.pareto or [result.best]
    latency = result.best.latency_ms is not None
    view = Table(title=f"search ({result.searcher}, {len(result.history)} architectures evaluated)")
    for column in ("arch", "score", "MMACs", "params (M)") + (("latency ms",) if latency else ()) + (("ground truth %",) if table else ()):
        view.add_column(column)
    for c in rows:
        cells = [c.arch + (" *" if c.arch == result.best.arch else ""), f"{c.score:.2f}", f"{c.macs / 1e6:.1f}", f"{c.params / 1e6:.3f}"]
        if latency:
            cells.append(f"{c.latency_ms:.3f}")
        if table:
            cells.append(f"{table[c.arch].mean_acc:.2f}" if c.arch in table else "-")
        view.add_row(*cells)
    console.print(view)


def _pareto_outputs(run: Run, result: SearchResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_latency = "latency" in getattr(run.searcher, "objectives", ())
    cost = (lambda c: c.latency_ms) if by_latency else (lambda c: c.macs / 1e6)
    front = sorted(result.pareto, key=cost)
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    ax.scatter([cost(c) for c in result.history], [c.score for c in result.history], s=8, c="0.7", label="evaluated")
    ax.plot([cost(c) for c in front], [c.score for c in front], "o-", c="C3", label="Pareto front")
    ax.set_xlabel("predicted latency (ms)" if by_latency else "MMACs")
    ax.set_ylabel(run.evaluator.metric_name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.run_dir / "pareto.png")
    plt.close(fig)


def _picked_arch(path: Path, pick: int | None) -> str:
    """The best architecture of a saved search result, or its Pareto point number ``pick``."""
    result = SearchResult.load(path)
    if pick is None:
        return result.best.arch
    if not 0 <= pick < len(result.pareto):
        points = f"Pareto points 0..{len(result.pareto) - 1}" if result.pareto else "no Pareto front (single-objective search)"
        raise NasError(f"--pick {pick}: {path} has {points}")
    return result.pareto[pick].arch


@writes_run_dir("export")
def export(run: Run, arch_text: str | None, checkpoint: str | None = None, out: str | None = None, search_result: str | None = None, pick: int | None = None) -> dict[str, Any]:
    if out:
        check_output_dir(out, "--out")
    if pick is not None and (arch_text is not None):
        raise NasError("--pick chooses a point of a search result; it cannot be combined with --arch")
    if arch_text is None:  # a bad search result or architecture fails before the supernet is read
        arch_text = _picked_arch(Path(search_result) if search_result else run.run_dir / "search.json", pick)
    run.space.decode(arch_text)
    run.check()
    table_for_search(run)  # a bad latency table stops here, before anything is written
    weights = supernet_weights(run, checkpoint)
    run.write_metadata("export")
    arch = run.space.decode(arch_text)
    out_dir = Path(out) if out else run.run_dir / f"export-{run.space.encode(arch)}"
    summary = export_subnet(run, arch, out_dir, onnx=run.config.export.onnx, weights=weights)
    table = ground_truth_for(run)
    gt = f", ground truth {table[summary['arch']].mean_acc:.2f}%" if table and summary["arch"] in table else ""
    latency = summary.get("latency")
    if latency:
        measured = f", measured {latency['measured_ms']:.3f}" if latency.get("measured_ms") is not None else ""
        gt += f", latency predicted {latency['predicted_ms']:.3f} ms{measured}"
    initial = "; initial weights (no trained supernet): train it downstream" if weights == "initial" else ""
    console.print(f"[green]exported[/green] {summary['arch']} ({summary['macs'] / 1e6:.1f} MMACs, {summary['params'] / 1e6:.3f} M params{gt}) to {out_dir}{initial}")
    return summary


@writes_run_dir("rank")
def rank(run: Run, checkpoint: str | None = None) -> dict[str, Any]:
    cfg = run.config.rank
    table = load_table(cfg.ground_truth)  # the table and the sample are checked before any work
    try:
        archs = sample_distinct(run.space, cfg.num_archs, cfg.seed)
    except ArchitectureError as exc:
        raise ConfigError(f"{run.config.source}: rank.num_archs: {exc}") from None
    keys = [run.space.encode(a) for a in archs]
    truth = [lookup(table, k, cfg.ground_truth).mean_acc for k in keys]
    run.check()
    supernet_weights(run, checkpoint)
    run.write_metadata("rank")
    scores = run.evaluator.evaluate(run.supernet, archs)
    groups = [run.space.num_identities(a) for a in archs]
    report = rank_statistics(scores, truth, groups, cfg.bootstrap, cfg.seed, cfg.top_k)
    report["archs"] = [{"arch": k, "score": s, "ground_truth": t} for k, s, t in zip(keys, scores, truth)]
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report, run.run_dir / "rank.json")
    scatter_plot(scores, truth, groups, run.run_dir / "rank.png", f"{run.config.sampler.name}: tau {report['kendall_tau']:.3f} (n={len(archs)})")
    lo, hi = report["kendall_tau_ci95"]
    console.print(
        f"Kendall tau {report['kendall_tau']:.3f} [95% CI {lo:.3f}, {hi:.3f}], Spearman {report['spearman_rho']:.3f}, "
        f"tau within equal-identity groups {report['group_tau_weighted_mean']:.3f}, top-k overlap {report['top_k_overlap']} "
        f"(n={len(archs)}) -> {run.run_dir / 'rank.json'}"
    )
    return report


@writes_run_dir("run")
def run_all(run: Run, resume: bool = False) -> dict[str, Any]:
    """The main job: train, search, export; print the choice and its ground truth. An evaluator
    that does not read the supernet's trained weights (``reads_supernet`` False) gets no training."""
    search_problem(run)  # an impossible constraint or a latency table that does not fit stops the job before training
    run.write_metadata("run")
    if run.evaluator.reads_supernet:
        train(run, resume=resume)
    elif run.is_main:
        existing = run.run_dir / CHECKPOINT_NAME
        weights = (f"the export inherits the weights of the existing {existing}" if existing.exists()
                   else "the exported network starts from initial weights -- train it downstream")
        console.print(f"evaluator {_evaluator_label(run)} is training-free (it does not read the supernet's trained weights): no supernet training; {weights}")
    result = search(run)
    summary = export(run, result.best.arch)
    return {"search": result.as_dict()["best"], "export": summary}


def config_show(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
