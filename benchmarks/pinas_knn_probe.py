"""Why does Pi-NAS's kNN score prefer identity-heavy networks? A measurement, not a fix.

For a Pi-NAS supernet (the study's ``pinas`` training: at initialisation, or trained from a
checkpoint) and the first N networks of the study's TUNING sample, it records per network:

- the plugin's kNN score (the study's evaluator: BN recalibration, bank of labelled training
  images, weighted kNN on L2-normalised pooled features);
- how spread out the features are: the mean cosine similarity between different images
  (1.0 = every image maps to one direction, the kNN then votes at random) and the effective rank
  of the feature matrix (exp of the entropy of its normalised singular values);
- the number of identity layers and the ground truth.

It then reports Kendall tau of the kNN score with ground truth and with the number of identities,
and of the feature spread with the number of identities: if deeper paths have collapsed
(more similar) features, kNN prefers shallow paths for that reason. A pixel-kNN baseline (the
same bank and queries on raw pixels) says how much a near-identity path keeps for free.

    python benchmarks/pinas_knn_probe.py --networks 40                       # at initialisation
    python benchmarks/pinas_knn_probe.py --networks 40 --run runs/study/pinas-s0   # trained
    python benchmarks/pinas_knn_probe.py --quick                             # smoke run

Results: ``benchmarks/results/pinas_knn_probe[-<label>].json``. Heavy: run it through
``heavy_queue.py`` (it takes the machine itself) when nothing else trains.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heavy_queue import machine  # noqa: E402
from study import Study, load_monitor  # noqa: E402

from nas_core.checkpoint import CHECKPOINT_NAME  # noqa: E402
from nas_core.api import score_after_recalibration  # noqa: E402
from nas_core.restore import load_trained_supernet  # noqa: E402
from nas_pinas.evaluators import knn_top1, path_features  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def effective_rank(features: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred feature matrix."""
    singular = torch.linalg.svdvals(features - features.mean(0, keepdim=True)).double()
    p = singular / singular.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity between different images (features already L2-normalised)."""
    sims = features @ features.t()
    n = len(features)
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=40)
    parser.add_argument("--run", type=Path, help="a trained pinas run folder (default: the supernet at initialisation)")
    parser.add_argument("--label", default=None, help="results file suffix (default: init / trained)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    study = Study(quick=args.quick, results=Path("/tmp/pinas-probe-study") if args.quick else None,
                  runs=Path("/tmp/pinas-probe-runs") if args.quick else None)
    config = study.training_config("pinas", 0)
    keys = study.samples()["tuning"][: 6 if args.quick else args.networks]
    archs = [study.space.decode(k) for k in keys]
    label = args.label or ("trained" if args.run else "init")
    out_path = RESULTS / f"pinas_knn_probe-{label}.json"
    with (nullcontext() if args.quick else machine(f"pinas knn probe ({label})")), load_monitor() as load:
        torch.set_num_threads(2)
        started = time.perf_counter()
        run = study.run_for(config, Path("/tmp/pinas-probe-runs") / f"probe-{label}")
        if args.run:
            load_trained_supernet(run, args.run / CHECKPOINT_NAME)
        evaluator, supernet = run.evaluator, run.supernet
        data = evaluator.data()
        knn = evaluator.evaluate(supernet, archs)

        def stats(arch):
            feats = path_features(supernet, arch, data.val_x[:1000], 250)
            return mean_cosine(feats), effective_rank(feats)

        spread = score_after_recalibration(supernet, archs, data.recal, stats, through="features")
        o = evaluator.options
        pixel = knn_top1(F.normalize(data.train_x.flatten(1), dim=1), data.train_y, F.normalize(data.val_x.flatten(1), dim=1), data.val_y,
                         o.k, o.temperature, data.num_classes)
        seconds = time.perf_counter() - started
    identities = [study.space.num_identities(a) for a in archs]
    truth = study.truth(keys)
    cos = [s[0] for s in spread]
    rank = [s[1] for s in spread]

    def tau(a, b):
        return float(kendalltau(a, b)[0])

    by_identities = {}
    for n in sorted(set(identities)):
        idx = [i for i, v in enumerate(identities) if v == n]
        by_identities[str(n)] = {"networks": len(idx), "knn": float(np.mean([knn[i] for i in idx])), "mean_cosine": float(np.mean([cos[i] for i in idx])),
                                 "effective_rank": float(np.mean([rank[i] for i in idx])), "ground_truth": float(np.mean([truth[i] for i in idx]))}
    result = {
        "what": "Pi-NAS kNN score vs depth: feature spread per number of identity layers",
        "supernet": str(args.run) if args.run else "initialisation (seed 0)",
        "networks": len(keys), "sample": "tuning (first networks)",
        "tau": {"knn_vs_truth": tau(knn, truth), "knn_vs_identities": tau(knn, identities), "truth_vs_identities": tau(truth, identities),
                "mean_cosine_vs_identities": tau(cos, identities), "effective_rank_vs_identities": tau(rank, identities),
                "knn_vs_effective_rank": tau(knn, rank)},
        "pixel_knn": pixel,
        "by_identities": by_identities,
        "per_network": [{"arch": k, "identities": i, "knn": s, "mean_cosine": c, "effective_rank": r, "ground_truth": t}
                        for k, i, s, c, r, t in zip(keys, identities, knn, cos, rank, truth)],
        "seconds": seconds,
        "machine": "through heavy_queue (no other heavy job); load while it ran:",
        "load": load,
    }
    if not args.quick:
        out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("tau", "pixel_knn", "by_identities", "seconds")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
