"""The ranking study: train each supernet recipe at one budget, score two disjoint samples of
networks, search under three MACs limits, and compare against ground truth and cheap references.

The study is defined by a spec (``benchmarks/study.yaml``): a base config, TRAININGS (supernet
recipes, each a config patch trained to the same budget of path-images) and METHODS (a
training plus an optional evaluator patch, so several evaluators can score one supernet; a method
with ``training: none`` has a training-free evaluator, scores the freshly built supernet and is
charged no training time).
For every method and seed it measures, on a TUNING and a REPORT sample of distinct networks
(drawn uniformly over networks, disjoint): Kendall tau with a bootstrap CI, Spearman, tau inside
equal-identity groups, top-10 overlap, and the SEARCH OUTCOME -- the default searcher under the
25/50/75% quantiles of the space's MACs, reporting the chosen network's ground truth, its
percentile among the feasible networks and the regret to the best feasible one. References on
the same samples: MACs, fewer identities, zero-cost proxies, random pick, max-MACs pick. For a
Cream teacher: its final board and its board over training, by ground truth, against a random
path's expected ground truth.

Everything is resumable and goes through the machine queue (``heavy_queue.py``) one unit at a
time: training checkpoints every few hundred steps, scores are saved as they come, finished
units are skipped. Kill it at any moment and run the same command again.

    python benchmarks/study.py run [--only spos,fairnas] [--seeds 0,1]   # train, score, search
    python benchmarks/study.py report                                    # table + figure from what exists
    python benchmarks/study.py run --quick                               # tiny end-to-end smoke run

Results: ``benchmarks/results/study/`` (``study-quick/`` with --quick); checkpoints: ``runs/study/``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import yaml
from scipy.stats import kendalltau, rankdata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heavy_queue import machine  # noqa: E402

from nas_core.checked_json import write_json_atomic  # noqa: E402
from nas_core.checkpoint import CHECKPOINT_NAME  # noqa: E402
from nas_core.config import ConstraintsConfig, load_config  # noqa: E402
from nas_core.errors import NasError  # noqa: E402
from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.outcome import Outcome, Pick, feasible_networks, search_outcome  # noqa: E402
from nas_core.ranking import distinct_networks, paired_difference, rank_statistics, sample_distinct  # noqa: E402
from nas_core.restore import load_trained_supernet  # noqa: E402
from nas_core.run import Run  # noqa: E402
from nas_core.search_result import SearchProblem  # noqa: E402
from nas_core.spaces.space import SearchSpace  # noqa: E402
from nas_core.trainer import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "benchmarks" / "study.yaml"
SCORE_CHUNK = 25
UNTRAINED = "none"
"""A method's ``training`` when its evaluator does not read a trained supernet."""

QUICK = {
    "budget_path_images": 64 * 24,
    "samples": {"size": 12, "seed": 2026},
    "bootstrap": 100,
    "base": {
        "data": {"train_subset": 2000, "val_subset": 300},
        "train": {"batch_size": 64, "checkpoint_every_steps": 10, "log_every_steps": 4, "scheduler": {"warmup_steps": 2}},
        "evaluator": {"bn_recal_batches": 1},
        "search": {"searcher": {"population": 6, "generations": 2}},
    },
}


# ------------------------------------------------------------------------------ small helpers


def deep_merge(base: Any, patch: Any) -> Any:
    """``patch`` over ``base``: mappings merge key by key, everything else is replaced; a component
    mapping naming another component (``name``) replaces the base one, options included."""
    if isinstance(base, dict) and isinstance(patch, dict) and base.get("name", patch.get("name")) == patch.get("name", base.get("name")):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def random_path_ground_truth(space: SearchSpace, truth: Mapping[str, float]) -> float:
    """Expected ground truth of a path drawn with every layer's choice uniform (the ``uniform``
    and Cream ``uniform`` samplers; each of FairNAS's paths too): the mean over ALL encodings of
    their canonical network's accuracy -- not the mean over distinct networks, since a network
    with free identities has several encodings. ``truth`` maps encoded canonical networks."""
    encodings = itertools.product(*(range(n) for n in space.num_choices))
    return float(np.mean([truth[space.encode(space.canonical(a))] for a in encodings]))


def board_over_training(space: SearchSpace, truth: Mapping[str, float], history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per snapshot of a Cream board (``CreamTeacher.board_history``): its step, its entries
    (encoded, best first), their mean ground truth (canonical network's), the ground truth of
    the entry with the best admission accuracy, and the entries' mean admission accuracy."""
    out = []
    for snapshot in history:
        archs = [tuple(a) for a in snapshot["archs"]]
        ground_truth = [truth[space.encode(space.canonical(a))] for a in archs]
        out.append({"step": snapshot["step"], "archs": [space.encode(a) for a in archs], "board_mean_ground_truth": float(np.mean(ground_truth)),
                    "top_ground_truth": ground_truth[int(np.argmax(snapshot["acc"]))],
                    "board_mean_admission_acc": float(np.mean(snapshot["acc"]))})
    return out


@contextmanager
def load_monitor() -> Iterator[dict[str, float]]:
    """Samples the 1-minute load average every 20 s: what else was running during a unit."""
    seen: list[float] = [os.getloadavg()[0]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(20):
            seen.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    summary: dict[str, float] = {}
    try:
        yield summary
    finally:
        stop.set()
        thread.join()
        seen.append(os.getloadavg()[0])
        summary.update(load_mean=float(np.mean(seen)), load_max=float(np.max(seen)))


# ------------------------------------------------------------------------------ the study


class Study:
    """One spec, its samples, and the result files of its units."""

    def __init__(self, spec_path: Path = SPEC, quick: bool = False, results: Path | None = None, runs: Path | None = None):
        spec = json.loads(json.dumps(yaml.safe_load(spec_path.read_text())))  # unshares YAML aliases (*accuracy)
        if quick:
            spec = deep_merge(spec, QUICK)
            for entry in spec["trainings"].values():
                entry.pop("budget_path_images", None)
        for i, pair in enumerate(spec.get("pairs", [])):
            unknown = [pair.get(k) for k in ("lever", "parent") if pair.get(k) not in spec["methods"]]
            if unknown:
                raise SystemExit(f"error: {spec_path.name}: pairs[{i}]: {', '.join(map(repr, unknown))} is not a method of the spec (lever and parent name methods)")
        self.spec = spec
        self.quick = quick
        self.results = results or REPO / "benchmarks" / "results" / ("study-quick" if quick else "study")
        self.runs = runs or REPO / "runs" / ("study-quick" if quick else "study")
        self.table = load_table(None)
        self.space = self.run_for(spec["base"], self.runs / "_space").space
        self._samples: dict[str, Any] | None = None
        self._paths_per_step: dict[str, int] = {}

    # -------------------------------------------------------------- configs and runs

    def training_config(self, training: str, seed: int) -> dict[str, Any]:
        entry = self.spec["trainings"][training]
        config = deep_merge(self.spec["base"], entry.get("config", {}))
        batch = config["train"]["batch_size"]
        budget = entry.get("budget_path_images", self.spec["budget_path_images"])
        steps = math.ceil(budget / (batch * self.paths_per_step(training)))
        return deep_merge(config, {"seed": seed, "run_dir": str(self.runs / f"{training}-s{seed}"), "train": {"max_steps": steps}})

    def paths_per_step(self, training: str) -> int:
        """How many paths one step of a training trains: what its sampler says
        (``Sampler.paths_per_step``), so the budget in path-images cannot disagree with it."""
        if training not in self._paths_per_step:
            entry = self.spec["trainings"][training]
            if "paths_per_step" in entry:
                raise SystemExit(f"error: {SPEC.name}: trainings.{training}.paths_per_step: the sampler says how many paths a step trains; remove the key")
            run = self.run_for(deep_merge(self.spec["base"], entry.get("config", {})), self.runs / "_samplers" / training)
            paths = run.sampler.paths_per_step
            if not paths:
                raise SystemExit(f"error: {SPEC.name}: trainings.{training}: sampler '{run.config.sampler.name}' does not say how many paths a step trains")
            self._paths_per_step[training] = int(paths)
        return self._paths_per_step[training]

    def method_config(self, method: str, seed: int) -> dict[str, Any]:
        entry = self.spec["methods"][method]
        if entry["training"] == UNTRAINED:
            base = deep_merge(self.spec["base"], {"seed": seed, "run_dir": str(self.runs / f"{method}-untrained-s{seed}")})
        else:
            base = self.training_config(entry["training"], seed)
        return deep_merge(base, entry.get("config", {}))

    def run_for(self, config: dict[str, Any], where: Path) -> Run:
        """A run built from a config dict, its config written to ``where`` (also used by probes
        that examine a study's supernets, e.g. ``pinas_knn_probe.py``)."""
        where.mkdir(parents=True, exist_ok=True)
        path = where / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return Run.create(load_config(path))

    # -------------------------------------------------------------- samples and limits

    def samples(self) -> dict[str, Any]:
        """The tuning and report samples, the MACs limits and each limit's feasible networks."""
        if self._samples is not None:
            return self._samples
        path = self.results / "samples.json"
        if not path.is_file():
            size, seed = self.spec["samples"]["size"], self.spec["samples"]["seed"]
            tuning = sample_distinct(self.space, size, seed)
            report = sample_distinct(self.space, size, seed + 1, exclude=tuning)
            truth = {k: r.mean_acc for k, r in self.table.items()}
            macs_of = {a: self.space.complexity(a)[0] for a in distinct_networks(self.space)}
            macs = np.array(list(macs_of.values()), dtype=float)
            limits = []
            for q in self.spec["limits_quantiles"]:
                limit = float(np.quantile(macs, q))
                networks = feasible_networks(self.space, truth, lambda a, limit=limit: macs_of[a] <= limit)
                limits.append({"quantile": q, "max_macs": limit, "feasible": len(networks.archs), "best_arch": self.space.encode(networks.archs[networks.best]),
                               "best_acc": float(networks.accs[networks.best]), "mean_acc": float(np.mean(networks.accs))})
            write_json_atomic({
                "space": self.space.name, "distinct_networks": len(macs),
                "tuning": [self.space.encode(a) for a in tuning], "report": [self.space.encode(a) for a in report], "limits": limits,
            }, path)
        self._samples = read_json(path)
        return self._samples

    def truth(self, keys: list[str]) -> list[float]:
        return [self.table[k].mean_acc for k in keys]

    def outcome(self, arch: str, limit: dict[str, Any]) -> Outcome:
        """A chosen network against every network under the MACs limit, and the naive picks."""
        truth = {k: r.mean_acc for k, r in self.table.items()}
        return search_outcome(self.space, truth, lambda a: self.space.complexity(a)[0] <= limit["max_macs"], self.space.decode(arch))

    @staticmethod
    def judged(pick: Pick) -> dict[str, Any]:
        return {"arch": pick.arch, "ground_truth": pick.ground_truth, "percentile": pick.percentile, "regret": pick.regret}

    # -------------------------------------------------------------- units

    def train(self, training: str, seed: int) -> dict[str, Any]:
        """Train (or resume) one supernet to the budget; skipped when finished, and for
        ``training: none`` (nothing to train)."""
        if training == UNTRAINED:
            return {}
        path = self.results / "train" / f"{training}-s{seed}.json"
        record = read_json(path)
        if record.get("finished"):
            return record
        config = self.training_config(training, seed)
        with machine(f"study: train {training} seed {seed}"):
            torch.set_num_threads(2)
            run = self.run_for(config, Path(config["run_dir"]))
            trainer = Trainer(run)
            resume = trainer.checkpoint_path.is_file()
            start_step = 0
            if resume:
                start_step = int(torch.load(trainer.checkpoint_path, map_location="cpu", weights_only=True)["step"])
            record = self._close_interrupted_sitting(record, trainer.checkpoint_path, start_step)
            write_json_atomic({**record, "open_sitting": {"from_step": start_step, "started_unix": time.time()}}, path)
            with load_monitor() as load:
                started = time.perf_counter()
                last = trainer.fit(resume=resume)
                seconds = time.perf_counter() - started
        sittings = record.get("sittings", []) + [{"from_step": start_step, "to_step": trainer.step, "seconds": seconds, **load}]
        paths = self.paths_per_step(training)
        curve = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines() if line]
        record = {
            "training": training, "seed": seed, "config": config, "steps": trainer.step,
            "path_images": trainer.step * config["train"]["batch_size"] * paths,
            "train_seconds": sum(s["seconds"] for s in sittings), "sittings": sittings, "final": last, "curve": curve,
            "threads": torch.get_num_threads(), "finished": trainer.step >= trainer.total_steps,
        }
        write_json_atomic(record, path)
        return record

    @staticmethod
    def _close_interrupted_sitting(record: dict[str, Any], checkpoint: Path, checkpoint_step: int) -> dict[str, Any]:
        """A sitting that was killed left ``open_sitting``; its time counts up to its last
        checkpoint (the steps after it are trained again), so train seconds stay complete."""
        sitting = record.pop("open_sitting", None)
        if sitting and checkpoint_step > sitting["from_step"]:
            record.setdefault("sittings", []).append({
                "from_step": sitting["from_step"], "to_step": checkpoint_step, "interrupted": True,
                "seconds": max(0.0, checkpoint.stat().st_mtime - sitting["started_unix"]),
            })
        return record

    def evaluate(self, method: str, seed: int) -> dict[str, Any]:
        """Score both samples and search under every limit with one method; resumable. A method
        with ``training: none`` scores the freshly built supernet (its evaluator must not read
        trained weights: ``Evaluator.reads_supernet``). A trained method's run folder is its own
        ``<training>-s<seed>/eval-<method>``: what its evaluator keeps there (a layer-additive fit)
        is never another method's, so its evaluation seconds are its own."""
        path = self.results / "methods" / f"{method}-s{seed}.json"
        record = read_json(path)
        if record.get("finished"):
            return record
        training = self.spec["methods"][method]["training"]
        config = self.method_config(method, seed)
        samples = self.samples()
        with machine(f"study: evaluate {method} seed {seed}"):
            torch.set_num_threads(2)
            if training == UNTRAINED:
                run = self.run_for(config, Path(config["run_dir"]))
                if run.evaluator.reads_supernet:
                    raise SystemExit(f"error: {SPEC.name}: methods.{method}: training {UNTRAINED!r}, but evaluator "
                                     f"'{run.config.evaluator.name}' reads the supernet's trained weights")
            else:
                trained = Path(config["run_dir"])  # the training's folder (training_config)
                where = trained / f"eval-{method}"
                run = self.run_for(deep_merge(config, {"run_dir": str(where)}), where)
                load_trained_supernet(run, trained / CHECKPOINT_NAME)
            record.update(method=method, training=training, seed=seed, evaluator=config["evaluator"])
            board = self.board(run)
            if board is not None:
                record["board"] = board
            record.update(self.board_history(run))
            record.setdefault("scores", {})
            record.setdefault("eval_seconds", 0.0)
            shared = self.shared_scores(method, seed)
            if shared is not None and all(shared[1].get(name, [])[: len(mine)] == mine for name, mine in record["scores"].items()):
                record["scores_from"], record["scores"] = shared  # what this record scored so far agrees with them
            tuning_only = bool(self.spec["methods"][method].get("tuning_only"))
            with load_monitor() as load:
                for name in ("tuning",) if tuning_only else ("tuning", "report"):
                    self._score_sample(run, record, name, samples[name], path)
                if not tuning_only:
                    record["search"] = self._search(run, record.get("search", {}), samples["limits"], path, record)
            record["load"] = load
        record["finished"] = True
        write_json_atomic(record, path)
        return record

    def shared_scores(self, method: str, seed: int) -> tuple[str, dict[str, list[float]]] | None:
        """The sample scores of another finished method that scores networks exactly as this one
        does (same training, seed and config but for ``search`` and ``run_dir``: e.g. ``cream`` and
        ``cream-board``, which differ only in how they search), as (its name, a copy of its
        scores); None when there is none. Scoring is deterministic given the config, so copying
        them saves the ~25 minutes of scoring both samples again and changes no number."""
        training = self.spec["methods"][method]["training"]
        mine = self.scoring_config(method, seed)
        for other, entry in self.spec["methods"].items():
            if other == method or entry["training"] != training:
                continue
            record = read_json(self.results / "methods" / f"{other}-s{seed}.json")
            if not (record.get("finished") and record.get("scores")):
                continue
            if self.scoring_config(other, seed) == mine:
                return other, {name: list(values) for name, values in record["scores"].items()}
        return None

    def scoring_config(self, method: str, seed: int) -> dict[str, Any]:
        """A method's config without what cannot change a network's score: ``search`` and
        ``run_dir`` (a ``training: none`` method's run_dir names the method)."""
        config = self.method_config(method, seed)
        for key in ("search", "run_dir"):
            config.pop(key, None)
        return config

    def board(self, run: Run) -> list[dict[str, Any]] | None:
        """A Cream teacher's final board, best first, with each entry's ground truth (None
        without a board): whether the board really holds good paths."""
        entries = getattr(run.teacher, "board", None)
        if entries is None:
            return None
        return [{"arch": self.space.encode(e.arch), "admission_acc": e.acc, "macs": e.flops, "step": e.step,
                 "ground_truth": self.table[self.space.encode(e.arch)].mean_acc} for e in entries]

    def board_history(self, run: Run) -> dict[str, Any]:
        """A Cream teacher's board over training by ground truth (:func:`board_over_training`) and
        a random path's expected ground truth, the baseline (:func:`random_path_ground_truth`);
        empty without snapshots."""
        history = getattr(run.teacher, "board_history", None)
        if not history:
            return {}
        truth = {k: r.mean_acc for k, r in self.table.items()}
        return {"board_history": board_over_training(self.space, truth, history),
                "random_path_ground_truth": random_path_ground_truth(self.space, truth)}

    def _score_sample(self, run: Run, record: dict[str, Any], name: str, keys: list[str], path: Path) -> None:
        scores = record["scores"].setdefault(name, [])
        while len(scores) < len(keys):
            chunk = [run.space.decode(k) for k in keys[len(scores) : len(scores) + SCORE_CHUNK]]
            started = time.perf_counter()
            scores += [float(s) for s in run.evaluator.evaluate(run.supernet, chunk)]
            record["eval_seconds"] += time.perf_counter() - started
            write_json_atomic(record, path)

    def _search(self, run: Run, done: dict[str, Any], limits: list[dict[str, Any]], path: Path, record: dict[str, Any]) -> dict[str, Any]:
        cache: dict[tuple[int, ...], float] = {}

        def evaluate(archs):
            todo = [a for a in archs if a not in cache]
            if todo:
                cache.update(zip(todo, run.evaluator.evaluate(run.supernet, todo)))
            return [cache[a] for a in archs]

        for limit in limits:
            key = str(limit["quantile"])
            if key in done:
                continue
            started = time.perf_counter()
            problem = SearchProblem(self.space, evaluate, ConstraintsConfig(max_flops=limit["max_macs"]), run.config.seed)
            try:
                result = run.searcher.search(problem)
            except NasError as exc:  # e.g. no board entry of `cream-board` under this limit: an outcome, recorded
                done[key] = {"error": str(exc), "seconds": time.perf_counter() - started}
            else:
                done[key] = {**self.judged(self.outcome(result.best.arch, limit).chosen), "evaluated": len(problem.history),
                             "seconds": time.perf_counter() - started}
            record["search"] = done
            write_json_atomic(record, path)
        return done

    def references(self) -> dict[str, Any]:
        """Scores of the cheap references on both samples and their picks under every limit."""
        path = self.results / "references.json"
        record = read_json(path)
        samples = self.samples()
        for name in ("tuning", "report"):
            keys = samples[name]
            archs = [self.space.decode(k) for k in keys]
            record.setdefault(name, {})
            record[name]["macs"] = [float(self.space.complexity(a)[0]) for a in archs]
            record[name]["fewer_identities"] = [-float(self.space.num_identities(a)) for a in archs]
        picks = {}
        for limit in samples["limits"]:
            naive = self.outcome(limit["best_arch"], limit).naive
            picks[str(limit["quantile"])] = {pick.name: self.judged(pick) for pick in naive}
        record["picks"] = picks
        for name, entry in self.spec.get("references", {}).items():
            if record.get("proxies", {}).get(name, {}).get("finished"):
                continue
            record.setdefault("proxies", {})[name] = self._proxy(name, entry)
            write_json_atomic(record, path)
        write_json_atomic(record, path)
        return record

    def _proxy(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        """A training-free evaluator (e.g. NASWOT at initialisation) scored like a method."""
        config = deep_merge(self.spec["base"], entry.get("config", {}))
        samples = self.samples()
        with machine(f"study: reference {name}"):
            torch.set_num_threads(2)
            run = self.run_for(config, self.runs / f"reference-{name}")
            out: dict[str, Any] = {"scores": {}, "eval_seconds": 0.0}
            started = time.perf_counter()
            for sample in ("tuning", "report"):
                out["scores"][sample] = [float(s) for s in run.evaluator.evaluate(run.supernet, [self.space.decode(k) for k in samples[sample]])]
            out["eval_seconds"] = time.perf_counter() - started
            out["search"] = self._search(run, {}, samples["limits"], self.results / "references.json.partial", out)
        Path(self.results / "references.json.partial").unlink(missing_ok=True)
        out["finished"] = True
        return out


# ------------------------------------------------------------------------------ report


def scorer_rows(study: Study) -> dict[str, dict[str, Any]]:
    """Every scorer with finished scores: methods (per seed; tuning-only ones too) and references."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted((study.results / "methods").glob("*.json")):
        record = read_json(path)
        if record.get("finished"):
            rows[f"{record['method']} (seed {record['seed']})"] = record
    refs = read_json(study.results / "references.json")
    for name in ("macs", "fewer_identities"):
        if refs.get("report"):
            rows[name] = {"scores": {s: refs[s][name] for s in ("tuning", "report")}, "reference": True}
    for name, proxy in refs.get("proxies", {}).items():
        rows[name] = {**proxy, "reference": True}
    return rows


def baseline_row(rows: dict[str, dict[str, Any]], method: str, seed: int) -> str | None:
    """The row a scorer is paired against: the baseline method trained with the scorer's own
    seed where it has been scored on REPORT (a second seed is compared with a second seed: same
    data order, same initialisation stream), else the baseline's seed 0; None if neither is."""
    for candidate in dict.fromkeys((seed, 0)):
        name = f"{method} (seed {candidate})"
        if "report" in rows.get(name, {}).get("scores", {}):
            return name
    return None


def mean_load(sittings: list[dict[str, Any]]) -> float | None:
    """Mean machine load over a training's sittings; a killed sitting has no load record (its
    monitor died with it), so only the sittings that finished count; None if none did."""
    loads = [s["load_mean"] for s in sittings if "load_mean" in s]
    return float(np.mean(loads)) if loads else None


def rank_fusion_on_tuning(members: dict[str, dict[str, list[float]]], truth: dict[str, list[float]], grid: list[float]) -> dict[str, Any]:
    """Weighted average of within-sample ranks of the members' scores, the weights chosen on the
    TUNING sample only: the first member's weight is fixed at 1, every other one comes from
    ``grid``; on a tie the smaller weight of the earlier member is kept (so a supernet listed
    second is left out unless it helps).

    It answers "does the trained supernet add to what costs nothing?" from scores the study has
    already stored, without a new evaluation. Ranks are taken inside each sample; the engine's
    ``rank-fusion`` evaluator ranks against a fixed reference set instead, which orders a sample
    the same way up to ties."""
    names = list(members)
    ranks = {s: {n: rankdata(members[n][s]) / len(members[n][s]) for n in names} for s in ("tuning", "report")}

    def fused(sample: str, weights: dict[str, float]) -> list[float]:
        return list(sum(w * ranks[sample][n] for n, w in weights.items() if w))

    best: tuple[float, dict[str, float]] | None = None
    for rest in itertools.product(sorted(grid), repeat=len(names) - 1):
        weights = {names[0]: 1.0, **dict(zip(names[1:], rest))}
        tau = kendalltau(fused("tuning", weights), truth["tuning"])[0]
        if best is None or tau > best[0] + 1e-12:
            best = (float(tau), weights)
    assert best is not None
    return {"weights": best[1], "scores": {s: fused(s, best[1]) for s in ("tuning", "report")}}


def fusion_rows(study: Study, rows: dict[str, dict[str, Any]], truth: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """The spec's ``fusions`` (if any): every finished supernet method fused with the training-free
    priors, plus the priors fused alone, each with weights chosen on the tuning sample."""
    spec = study.spec.get("fusions")
    if not spec:
        return {}
    priors = {n: rows[n]["scores"] for n in spec["priors"] if n in rows}
    if len(priors) != len(spec["priors"]) or not all("report" in p for p in priors.values()):
        return {}
    first, *others = spec["priors"]
    label = " + ".join(spec["priors"])
    without_name = f"{label} (rank avg)"
    out = {without_name: {**rank_fusion_on_tuning(priors, truth, spec["grid"]), "reference": True, "fusion": True}}
    for name, record in rows.items():
        if record.get("reference") or record.get("method") not in spec["supernets"] or "report" not in record["scores"]:
            continue
        members = {first: priors[first], "supernet": record["scores"], **{n: priors[n] for n in others}}
        fused = rank_fusion_on_tuning(members, truth, spec["grid"])
        out[f"{name} + {label} (rank avg)"] = {**fused, "fusion": True, "without": without_name, "supernet_row": name}
    return out


def scores_by_identities(rows: dict[str, dict[str, Any]], groups: dict[str, list[int]], truth: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Mean score of each trained method per number of identity layers, over both samples, beside
    the ground truth's: how strongly a supernet penalises shallow paths (the depth signal that
    fewer-identities alone ranks with) compared with how much they really lose."""
    def means(values: dict[str, list[float]]) -> dict[str, float]:
        by: dict[int, list[float]] = {}
        for sample, scores in values.items():
            for n, score in zip(groups[sample], scores):
                by.setdefault(n, []).append(score)
        return {str(n): float(np.mean(v)) for n, v in sorted(by.items())}

    out = {"ground truth": means({s: truth[s] for s in ("tuning", "report")})}
    for name, record in rows.items():
        if not record.get("reference") and not record.get("fusion") and "report" in record["scores"]:
            out[name] = means(record["scores"])
    return out


def seed_agreement(rows: dict[str, dict[str, Any]], truth: list[float], resamples: int, baseline: str | None = None) -> dict[str, dict[str, Any]]:
    """Methods scored on REPORT with two or more seeds: how well their seeds agree with each other
    (Kendall tau between the seeds' scores: the training noise of the ranking, against the 0.89
    two ground-truth training seeds agree at) and how the average of the seeds' ranks ranks. The
    average costs the seeds' budgets together, so it is a reference for "more budget", not a
    method at the study's budget; its paired difference is against seed 0 alone.

    With a ``baseline`` method: a method whose seeds the baseline also has is compared with it
    over those seeds (mean tau against the baseline's mean tau, the networks resampled together
    for every seed). Its CI covers which networks are sampled, not which training seed ran:
    the per-seed differences beside it show the seed spread the CI leaves out."""
    by_method: dict[str, dict[int, list[float]]] = {}
    for record in rows.values():
        if "method" in record and not record.get("fusion") and "report" in record["scores"]:
            by_method.setdefault(record["method"], {})[record["seed"]] = record["scores"]["report"]
    out = {}
    for method, by_seed in by_method.items():
        if len(by_seed) < 2:
            continue
        seeds = sorted(by_seed)
        average = np.mean([rankdata(by_seed[seed]) for seed in seeds], axis=0).tolist()
        averaged = rank_statistics(average, truth, [0] * len(truth), resamples, 0, (10,))
        out[method] = {
            "seeds": seeds,
            "tau_per_seed": [float(kendalltau(by_seed[seed], truth)[0]) for seed in seeds],
            "tau_between_seeds": float(np.mean([kendalltau(by_seed[a], by_seed[b])[0] for a, b in itertools.combinations(seeds, 2)])),
            "seed_average_tau": averaged["kendall_tau"],
            "seed_average_ci95": averaged["kendall_tau_ci95"],
            "seed_average_vs_first_seed": paired_difference(average, by_seed[seeds[0]], truth, resamples=resamples),
        }
        if baseline and method != baseline and set(seeds) <= set(by_method.get(baseline, {})):
            out[method]["vs_baseline_over_seeds"] = seed_mean_difference(by_seed, by_method[baseline], truth, resamples)
    return out


def seed_mean_difference(method: dict[int, list[float]], baseline: dict[int, list[float]], truth: list[float], resamples: int) -> dict[str, Any]:
    """Mean over the method's seeds of tau(method seed s) - tau(baseline seed s), with a paired
    bootstrap CI over networks (one resample of networks serves every seed), and the per-seed
    differences that show how much the training seed moves it."""
    seeds = sorted(method)
    ours, theirs = np.column_stack([method[s] for s in seeds]), np.column_stack([baseline[s] for s in seeds])

    def mean_tau(scores: np.ndarray, t: np.ndarray) -> float:
        return float(np.mean([kendalltau(column, t)[0] for column in scores.T]))

    diff = paired_difference(ours, theirs, truth, statistic=mean_tau, resamples=resamples)
    per_seed = [float(kendalltau(method[s], truth)[0] - kendalltau(baseline[s], truth)[0]) for s in seeds]
    return {**diff, "mean_tau": mean_tau(ours, np.asarray(truth)), "baseline_mean_tau": mean_tau(theirs, np.asarray(truth)), "per_seed": per_seed}


def fusion_over_seeds(rows: dict[str, dict[str, Any]], truth: list[float], resamples: int) -> dict[str, dict[str, Any]]:
    """Supernet methods in the fusion table with two or more seeds: does the supernet add to the
    training-free priors over its seeds? The mean over seeds of tau(fused) - tau(priors alone) on
    REPORT, each seed fused at its own weights chosen on TUNING (so this chooses nothing new),
    with one paired bootstrap over networks for every seed (:func:`seed_mean_difference`)."""
    by_method: dict[str, dict[int, tuple[list[float], list[float]]]] = {}
    for row in rows.values():
        if row.get("without") and "report" in row["scores"]:
            supernet = rows[row["supernet_row"]]
            by_method.setdefault(supernet["method"], {})[supernet["seed"]] = (row["scores"]["report"], rows[row["without"]]["scores"]["report"])
    return {method: {**seed_mean_difference({s: fused for s, (fused, _) in by_seed.items()}, {s: alone for s, (_, alone) in by_seed.items()}, truth, resamples),
                     "seeds": sorted(by_seed)}
            for method, by_seed in by_method.items() if len(by_seed) >= 2}


def difference_text(diff: dict[str, Any] | None) -> str:
    """A paired difference as '+0.012 [-0.010, +0.034]' (empty when there is none)."""
    return f"{diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]" if diff else ""


def seed_agreement_lines(agreement: dict[str, dict[str, Any]], baseline: str) -> list[str]:
    """The seed-agreement table of the summary, then the methods against the ``baseline`` method
    over the same seeds (nothing when no method has two seeds)."""
    if not agreement:
        return []
    lines = ["", "Seeds against each other (REPORT): tau between two training seeds' scores (the ranking's training "
             "noise; two ground-truth training seeds agree at 0.89), and the average of the seeds' ranks (it costs "
             "every seed's budget: a reference for more budget, not a method at the study's budget):", "",
             "| method | seeds | tau per seed | tau between seeds | seed average tau [95% CI] | average vs first seed [CI] |",
             "|---|---|---|---|---|---|"]
    for method, row in agreement.items():
        lo, hi = row["seed_average_ci95"]
        lines.append(f"| {method} | {', '.join(map(str, row['seeds']))} | {' / '.join(f'{t:.3f}' for t in row['tau_per_seed'])} | "
                     f"{row['tau_between_seeds']:.3f} | {row['seed_average_tau']:.3f} [{lo:.3f}, {hi:.3f}] | "
                     f"{difference_text(row['seed_average_vs_first_seed'])} |")
    compared = {m: row["vs_baseline_over_seeds"] for m, row in agreement.items() if "vs_baseline_over_seeds" in row}
    if compared:
        lines += ["", f"Methods against {baseline} over the same seeds (REPORT): mean tau over the seeds, and the mean of the "
                  "seed-matched differences. The CI resamples networks only; the per-seed differences show the training-seed "
                  "spread it does not cover (a method effect smaller than that spread is not shown by two seeds):", "",
                  f"| method | seeds | mean tau | {baseline} mean tau | mean difference [CI] | difference per seed |", "|---|---|---|---|---|---|"]
        for method, diff in compared.items():
            lines.append(f"| {method} | {', '.join(map(str, agreement[method]['seeds']))} | {diff['mean_tau']:.3f} | "
                         f"{diff['baseline_mean_tau']:.3f} | {difference_text(diff)} | {' / '.join(f'{d:+.3f}' for d in diff['per_seed'])} |")
    return lines


def lever_pairs(rows: dict[str, dict[str, Any]], pairs: list[dict[str, str]], truth: dict[str, list[float]], resamples: int) -> list[dict[str, Any]]:
    """Each lever (spec ``pairs``) against the parent method it changes, seed by seed where both
    are scored: both TUNING taus (what the adoption rule compares), the paired TUNING and REPORT
    differences, and how alike the two order the REPORT networks (Kendall tau between them)."""
    out = []
    for pair in pairs:
        lever, parent = pair["lever"], pair["parent"]
        seeds = sorted(r["seed"] for r in rows.values() if r.get("method") == lever and not r.get("fusion"))
        for seed in seeds:
            ours, theirs = rows[f"{lever} (seed {seed})"]["scores"], rows.get(f"{parent} (seed {seed})", {}).get("scores", {})
            if not theirs:
                continue
            entry: dict[str, Any] = {"lever": lever, "parent": parent, "seed": seed}
            for sample in ("tuning", "report"):
                if sample in ours and sample in theirs:
                    entry[sample] = {"lever_tau": float(kendalltau(ours[sample], truth[sample])[0]),
                                     "parent_tau": float(kendalltau(theirs[sample], truth[sample])[0]),
                                     "difference": paired_difference(ours[sample], theirs[sample], truth[sample], resamples=resamples),
                                     "agreement_tau": float(kendalltau(ours[sample], theirs[sample])[0])}
            out.append(entry)
    return out


def lever_pair_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """The levers table of the summary: each lever beside its parent on the same supernet seed."""
    if not pairs:
        return []
    lines = ["", "Levers against their parents (same training seed; a lever is adopted only when its TUNING tau beats its "
             "parent's; REPORT is only reported; agreement = Kendall tau between the two methods' REPORT scores):", "",
             "| lever | parent | seed | tau tuning (lever / parent) | tau report (lever / parent) | report diff [CI] | agreement |",
             "|---|---|---|---|---|---|---|"]
    for pair in pairs:
        tun, rep = pair.get("tuning"), pair.get("report")
        cells = [f"{s['lever_tau']:.3f} / {s['parent_tau']:.3f}" if s else "" for s in (tun, rep)]
        cells += [difference_text(rep["difference"]), f"{rep['agreement_tau']:.3f}"] if rep else ["", ""]
        lines.append(f"| {pair['lever']} | {pair['parent']} | {pair['seed']} | " + " | ".join(cells) + " |")
    return lines


def evenly_spaced(length: int, most: int) -> np.ndarray:
    """At most ``most`` evenly spaced indices into a sequence of ``length``, first and last included."""
    return np.unique(np.linspace(0, length - 1, min(most, length)).round().astype(int))


def component_curves(study: Study, most: int = 8) -> dict[str, list[dict[str, float]]]:
    """What each training's components logged over training (the metrics named ``component/...``
    in its curve: Cream's board and meta-network, LES drift, Pi-NAS feature spread), at most
    ``most`` evenly spaced logged steps, the first and the last included. These are the mechanism
    measurements behind a method's result, read from the committed training records."""
    out = {}
    for path in sorted((study.results / "train").glob("*.json")):
        record = read_json(path)
        curve = [point for point in record.get("curve", []) if any("/" in key for key in point)]
        if not record.get("finished") or not curve:
            continue
        keep = evenly_spaced(len(curve), most)
        out[f"{record['training']} (seed {record['seed']})"] = [
            {key: value for key, value in curve[i].items() if key == "step" or "/" in key} for i in keep]
    return out


def component_curve_lines(curves: dict[str, list[dict[str, float]]]) -> list[str]:
    """One table per training: its components' logged metrics (window means) over training."""
    lines = []
    for name, points in curves.items():
        keys = sorted({key for point in points for key in point if key != "step"})
        lines += ["", f"{name}: component metrics over training (means over each logging window):", "",
                  "| step | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for point in points:
            lines.append(f"| {point['step']} | " + " | ".join(f"{point[k]:.4g}" if k in point else "" for k in keys) + " |")
    return lines


def summarize(study: Study) -> dict[str, Any]:
    """Statistics of every scorer on every sample it has; paired differences on the report sample."""
    samples = study.samples()
    bootstrap = study.spec["bootstrap"]
    rows = scorer_rows(study)
    groups = {s: [study.space.num_identities(study.space.decode(k)) for k in samples[s]] for s in ("tuning", "report")}
    truth = {s: study.truth(samples[s]) for s in ("tuning", "report")}
    baseline = baseline_row(rows, study.spec["baseline"], 0)
    rows.update(fusion_rows(study, rows, truth))
    table = {}
    for name, record in rows.items():
        entry: dict[str, Any] = {"reference": bool(record.get("reference")), "search": record.get("search", {})}
        paired_with = baseline_row(rows, study.spec["baseline"], record.get("seed", 0))
        if paired_with and name != paired_with:
            entry["baseline_row"] = paired_with
        for sample, scores in record["scores"].items():
            stats_ = rank_statistics(scores, truth[sample], groups[sample], bootstrap, 0, (10,))
            entry[sample] = {k: stats_[k] for k in ("kendall_tau", "kendall_tau_ci95", "spearman_rho", "group_tau_weighted_mean", "top_k_overlap")}
            if paired_with and name != paired_with:
                entry[sample]["vs_baseline"] = paired_difference(scores, rows[paired_with]["scores"][sample], truth[sample], resamples=bootstrap)
            if "without" in record:
                entry[sample]["vs_without_supernet"] = paired_difference(scores, rows[record["without"]]["scores"][sample], truth[sample], resamples=bootstrap)
                entry[sample]["vs_supernet_alone"] = paired_difference(scores, rows[record["supernet_row"]]["scores"][sample], truth[sample], resamples=bootstrap)
            if not record.get("reference") and not record.get("fusion"):
                entry[sample]["vs_references"] = {
                    ref: paired_difference(scores, rows[ref]["scores"][sample], truth[sample], resamples=bootstrap)
                    for ref in study.spec.get("compare_with", []) if sample in rows.get(ref, {}).get("scores", {})
                }
        for key in ("eval_seconds", "training", "seed", "method", "fusion", "weights", "without", "supernet_row", "board_history", "random_path_ground_truth"):
            if key in record:
                entry[key] = record[key]
        training = read_json(study.results / "train" / f"{record['training']}-s{record['seed']}.json") if "training" in record else {}
        if training:
            entry.update(train_seconds=training["train_seconds"], path_images=training["path_images"],
                         train_load_mean=mean_load(training["sittings"]),
                         final_train_loss=training["final"].get("loss"), final_train_acc=training["final"].get("train_acc"))
        table[name] = entry
    refs = read_json(study.results / "references.json")
    summary = {"spec": study.spec, "baseline": baseline, "limits": samples["limits"], "rows": table, "picks": refs.get("picks", {}),
               "by_identities": scores_by_identities(rows, groups, truth), "component_curves": component_curves(study),
               "seed_agreement": seed_agreement(rows, truth["report"], bootstrap, study.spec["baseline"]),
               "fusion_over_seeds": fusion_over_seeds(rows, truth["report"], bootstrap),
               "lever_pairs": lever_pairs(rows, study.spec.get("pairs", []), truth, bootstrap)}
    write_json_atomic(summary, study.results / "summary.json")
    return summary


def figure(study: Study, summary: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in summary["rows"].items() if "report" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(names) + 1.8), dpi=110)
    y = np.arange(len(names))
    for offset, sample, color in ((-0.18, "tuning", "0.6"), (0.18, "report", "C0")):
        taus = [summary["rows"][n][sample]["kendall_tau"] for n in names]
        cis = np.array([summary["rows"][n][sample]["kendall_tau_ci95"] for n in names], dtype=float)
        err = np.abs(cis.T - np.array(taus))
        left.errorbar(taus, y + offset, xerr=err, fmt="o", color=color, label=f"{sample} sample", capsize=2)
    left.set_yticks(y, names, fontsize=8)
    left.set_xlabel("Kendall tau vs ground truth (95% bootstrap CI)")
    left.axvline(0.89, ls=":", c="0.5", label="two training seeds agree (ceiling)")
    left.legend(fontsize=7, loc="upper left")
    for i, limit in enumerate(summary["limits"]):
        key = str(limit["quantile"])
        pct = [summary["rows"][n]["search"].get(key, {}).get("percentile", np.nan) for n in names]
        right.plot(pct, y, "o", label=f"MACs <= q{int(100 * limit['quantile'])}", alpha=0.8)
    right.axvline(98, ls=":", c="0.5", label="top 2%")
    right.set_yticks(y, [""] * len(names))
    right.set_xlabel("search pick: percentile among feasible networks (ground truth)")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path = study.results / "study.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def pick_text(pick: dict[str, Any] | None) -> str:
    """A search outcome's percentile for the table; "none" when the searcher found no network
    under the limit (e.g. no Cream board entry that small)."""
    if pick is None:
        return ""
    return "none" if "error" in pick else f"{pick['percentile']:.1f}"


def board_history_lines(rows: dict[str, dict[str, Any]], most: int = 8) -> list[str]:
    """The "Cream board over training" table: per training (and seed) whose rows have a board
    history, at most ``most`` evenly spaced snapshots, the first and the last included."""
    trainings = {f"{r['training']} (seed {r['seed']})": r for r in rows.values() if r.get("board_history")}
    if not trainings:
        return []
    lines = ["", "Cream board over training: mean ground truth (GT) of the board's entries, GT of its top entry (best admission "
             "accuracy), and a random path's expected GT:", "",
             "| training | step | board mean GT | top entry GT | random-path mean GT |", "|---|---|---|---|---|"]
    for name, row in trainings.items():
        history = row["board_history"]
        for i in evenly_spaced(len(history), most):
            snapshot = history[i]
            lines.append(f"| {name} | {snapshot['step']} | {snapshot['board_mean_ground_truth']:.2f} | {snapshot['top_ground_truth']:.2f} | "
                         f"{row['random_path_ground_truth']:.2f} |")
    return lines


def unmatched_seed(row: dict[str, Any]) -> str:
    """A note on a paired difference taken against another seed's baseline (its own is not run)."""
    paired_with = row.get("baseline_row", "")
    return f" (vs {paired_with})" if "seed" in row and paired_with and not paired_with.endswith(f"(seed {row['seed']})") else ""


def markdown(summary: dict[str, Any]) -> str:
    """The README tables: the report sample with search outcomes, then every scorer on the tuning sample."""
    quantiles = [str(l["quantile"]) for l in summary["limits"]]
    references = summary["spec"].get("compare_with", [])
    head = ["scorer", "tau (report) [95% CI]", f"tau diff vs {summary['spec']['baseline']}, same seed [CI]", *[f"vs {r} [CI]" for r in references],
            "in-group tau", "Spearman", "top-10", *[f"pick pct q{int(100 * float(q))}" for q in quantiles], "train s", "eval s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    for name, row in summary["rows"].items():
        if "report" not in row:
            continue
        rep = row["report"]
        lo, hi = rep["kendall_tau_ci95"]
        picks = [pick_text(row["search"].get(q)) for q in quantiles]
        lines.append("| " + " | ".join([
            name, f"{rep['kendall_tau']:.3f} [{lo:.3f}, {hi:.3f}]", difference_text(rep.get("vs_baseline")) + unmatched_seed(row),
            *[difference_text(rep.get("vs_references", {}).get(r)) for r in references], f"{rep['group_tau_weighted_mean']:.3f}",
            f"{rep['spearman_rho']:.3f}", f"{rep['top_k_overlap']['10']:.1f}", *picks,
            f"{row.get('train_seconds', 0):.0f}", f"{row.get('eval_seconds', 0):.0f}",
        ]) + " |")
    fusions = {n: r for n, r in summary["rows"].items() if r.get("without") and "report" in r}
    if fusions:
        lines += ["", "Does the trained supernet add to the training-free priors? Within-sample rank averages, weights chosen on the "
                  "tuning sample (no new evaluation; paired differences on the report sample):", "",
                  "| fusion | weights (tuning) | tau (report) [95% CI] | without the supernet | diff [CI] | vs the supernet alone [CI] | in-group tau |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in fusions.items():
            rep = row["report"]
            lo, hi = rep["kendall_tau_ci95"]
            weights = ", ".join(f"{k} {v:g}" for k, v in row["weights"].items())
            lines.append(f"| {name} | {weights} | {rep['kendall_tau']:.3f} [{lo:.3f}, {hi:.3f}] | "
                         f"{summary['rows'][row['without']]['report']['kendall_tau']:.3f} | {difference_text(rep['vs_without_supernet'])} | "
                         f"{difference_text(rep['vs_supernet_alone'])} | {rep['group_tau_weighted_mean']:.3f} |")
    over_seeds = summary.get("fusion_over_seeds", {})
    if over_seeds:
        lines += ["", "The same over training seeds (REPORT): mean tau of the fusion over the seeds (each seed at its own "
                  "tuning-chosen weights) against the priors alone; the CI resamples networks only:", "",
                  "| supernet | seeds | fused mean tau | priors alone | mean difference [CI] | difference per seed |", "|---|---|---|---|---|---|"]
        for method, diff in over_seeds.items():
            lines.append(f"| {method} | {', '.join(map(str, diff['seeds']))} | {diff['mean_tau']:.3f} | {diff['baseline_mean_tau']:.3f} | "
                         f"{difference_text(diff)} | {' / '.join(f'{d:+.3f}' for d in diff['per_seed'])} |")
    lines += seed_agreement_lines(summary.get("seed_agreement", {}), summary["spec"]["baseline"])
    lines += lever_pair_lines(summary.get("lever_pairs", []))
    by = summary.get("by_identities", {})
    if len(by) > 1:
        counts = sorted({n for means in by.values() for n in means}, key=int)
        lines += ["", "Mean score by number of identity layers (both samples; a method's scale is its own):", "",
                  "| scorer | " + " | ".join(f"{n} ids" for n in counts) + " |", "|---|" + "---|" * len(counts)]
        for name, means in by.items():
            lines.append(f"| {name} | " + " | ".join(f"{means[n]:.2f}" if n in means else "" for n in counts) + " |")
    lines += board_history_lines(summary["rows"])
    lines += component_curve_lines(summary.get("component_curves", {}))
    lines += ["", "Tuning sample (every choice is made here):", "",
              "| scorer | path-images | tau (tuning) [95% CI] | in-group tau | Spearman | final train loss | train s |", "|---|---|---|---|---|---|---|"]
    for name, row in summary["rows"].items():
        tun = row["tuning"]
        lo, hi = tun["kendall_tau_ci95"]
        loss = row.get("final_train_loss")
        lines.append(f"| {name} | {row.get('path_images', '')} | {tun['kendall_tau']:.3f} [{lo:.3f}, {hi:.3f}] | {tun['group_tau_weighted_mean']:.3f} | "
                     f"{tun['spearman_rho']:.3f} | {'' if loss is None else f'{loss:.3f}'} | {row.get('train_seconds', 0):.0f} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the ranking study (see the module docstring)")
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--only", help="comma-separated methods (default: all in the spec)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--quick", action="store_true", help="tiny budget and samples: a smoke run")
    parser.add_argument("--results", type=Path, help="results folder (default benchmarks/results/study)")
    parser.add_argument("--runs", type=Path, help="checkpoint folder (default runs/study)")
    args = parser.parse_args(argv)
    study = Study(args.spec, args.quick, args.results, args.runs)
    methods = args.only.split(",") if args.only else list(study.spec["methods"])
    unknown = [m for m in methods if m not in study.spec["methods"]]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)} (in the spec: {', '.join(study.spec['methods'])})")
    if args.command == "run":
        study.samples()
        study.references()
        for seed in (int(s) for s in args.seeds.split(",")):
            for method in methods:
                study.train(study.spec["methods"][method]["training"], seed)
                study.evaluate(method, seed)
    summary = summarize(study)
    figure(study, summary)
    (study.results / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    print(f"-> {study.results / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
