"""How noisy is scoring a path of a trained supernet, and which score ranks best?

For every network of the study's TUNING sample (never the report sample: this chooses the
evaluation recipe), the trained supernet of one study training is scored under two independent
BN-recalibration draws (A: the evaluator's own batches, B: the next batches of the same seeded
permutation of training images), each on the 5,000 validation images split into two seeded
halves. Per image it keeps correctness and cross-entropy, so one pass gives:

- noise: Kendall tau between the scores of draws A and B (same images), and between the two
  validation halves (same draw) -- the agreement of a score with itself;
- the standard deviation of the A-B score difference against the spread of scores between
  networks;
- ranking: tau with ground truth (all, and inside equal-identity groups) for accuracy and for
  negative loss, per draw, per half and for A+B averaged.

    python benchmarks/heavy_queue.py run -- python benchmarks/eval_noise.py --training spos --seed 0

Resumable: per-network records are appended to the result file as they come.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heavy_queue import machine  # noqa: E402
from study import Study, load_monitor, read_json  # noqa: E402

from nas_core.api import CHECKPOINT_NAME, preserved_bn_state, recalibrate_bn  # noqa: E402
from nas_core.checked_json import write_json_atomic  # noqa: E402
from nas_core.evaluation import evaluation_data  # noqa: E402
from nas_core.restore import load_trained_supernet  # noqa: E402


@torch.no_grad()
def per_image(supernet, arch, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness (0/1) and cross-entropy of every evaluation image."""
    correct, losses = [], []
    for start in range(0, len(images), batch_size):
        logits = supernet(images[start : start + batch_size], arch)
        target = labels[start : start + batch_size]
        correct.append((logits.argmax(1) == target).float())
        losses.append(F.cross_entropy(logits, target, reduction="none"))
    return torch.cat(correct).cpu().numpy(), torch.cat(losses).cpu().numpy()


def in_group_tau(scores: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> float:
    taus, sizes = [], []
    for g in np.unique(groups):
        members = groups == g
        if members.sum() > 2:
            taus.append(stats.kendalltau(scores[members], truth[members])[0])
            sizes.append(members.sum())
    return float(np.average(taus, weights=sizes)) if taus else float("nan")


def analyse(records: list[dict], truth: np.ndarray, groups: np.ndarray) -> dict:
    """Noise and ranking of every (metric, draw, images) variant."""
    out: dict[str, dict] = {}
    for metric in ("acc", "neg_loss"):
        table = {f"{draw}-{half}": np.array([r[metric][draw][half] for r in records]) for draw in ("A", "B") for half in ("h1", "h2", "all")}
        table["AB-all"] = (table["A-all"] + table["B-all"]) / 2
        diff = table["A-all"] - table["B-all"]
        out[metric] = {
            "noise": {
                "tau_draw_A_vs_B": float(stats.kendalltau(table["A-all"], table["B-all"])[0]),
                "tau_half1_vs_half2 (draw A)": float(stats.kendalltau(table["A-h1"], table["A-h2"])[0]),
                "sd_of_A_minus_B": float(diff.std()),
                "sd_between_networks": float(table["A-all"].std()),
                "sd_A_minus_B_among_top_quarter": float(diff[truth >= np.quantile(truth, 0.75)].std()),
                "sd_between_top_quarter": float(table["A-all"][truth >= np.quantile(truth, 0.75)].std()),
            },
            "ranking": {
                name: {"tau": float(stats.kendalltau(s, truth)[0]), "in_group_tau": in_group_tau(s, truth, groups)}
                for name, s in table.items()
            },
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--training", default="spos", help="a study training whose checkpoint exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N tuning networks")
    parser.add_argument("--results", type=Path, default=None, help="the study's results folder (default benchmarks/results/study)")
    parser.add_argument("--runs", type=Path, default=None, help="the study's checkpoints folder (default runs/study)")
    args = parser.parse_args(argv)
    study = Study(results=args.results, runs=args.runs)
    path = study.results / f"eval-noise-{args.training}-s{args.seed}.json"
    record = read_json(path)
    records: list[dict] = record.get("networks", [])
    keys = study.samples()["tuning"][: args.limit]
    config = study.training_config(args.training, args.seed)
    evaluator = config["evaluator"]
    batches, batch_size = evaluator["bn_recal_batches"], evaluator["batch_size"]
    with machine(f"eval-noise: {args.training} seed {args.seed}"):
        torch.set_num_threads(2)
        run = study.run_for(config, study.runs / f"{args.training}-s{args.seed}" / "eval-noise")
        load_trained_supernet(run, study.runs / f"{args.training}-s{args.seed}" / CHECKPOINT_NAME)
        both = evaluation_data(run.context, bn_recal_batches=2 * batches, batch_size=batch_size)
        draws = {"A": both.recalibration[:batches], "B": both.recalibration[batches:]}
        halves = torch.randperm(len(both.labels), generator=torch.Generator().manual_seed(run.config.seed + 17))
        half = {"h1": halves[: len(halves) // 2].numpy(), "h2": halves[len(halves) // 2 :].numpy()}
        supernet = run.supernet
        with load_monitor() as load:
            started = time.perf_counter()
            for key in keys[len(records) :]:
                arch = run.space.decode(key)
                entry = {"arch": key, "acc": {}, "neg_loss": {}}
                with preserved_bn_state(supernet):
                    for draw, recal in draws.items():
                        recalibrate_bn(lambda x: supernet(x, arch), supernet, recal)
                        supernet.eval()
                        correct, loss = per_image(supernet, arch, both.images, both.labels, batch_size)
                        for name, index in (("h1", half["h1"]), ("h2", half["h2"]), ("all", slice(None))):
                            entry["acc"].setdefault(draw, {})[name] = float(100 * correct[index].mean())
                            entry["neg_loss"].setdefault(draw, {})[name] = float(-loss[index].mean())
                records.append(entry)
                record.update(training=args.training, seed=args.seed, sample="tuning", recal_batches=batches, batch_size=batch_size,
                              networks=records, seconds=record.get("seconds", 0.0) + time.perf_counter() - started)
                started = time.perf_counter()
                if len(records) % 10 == 0:
                    write_json_atomic(record, path)
        record["load"] = load
    truth = np.array(study.truth([r["arch"] for r in records]))
    groups = np.array([run.space.num_identities(run.space.decode(r["arch"])) for r in records])
    record["analysis"] = analyse(records, truth, groups)
    record["other_processes"] = "heavy queue holder; helpers' niced 1-thread tests beside it (see load)"
    write_json_atomic(record, path)
    print(json.dumps(record["analysis"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
