"""Where a scorer's ranking goes wrong: its additive per-layer effects against the ground truth's.

Every scorer of the ranking study (each finished method, and the proxies) is regressed by least
squares on the one-hot layer choices of the study's networks (both samples, 400 distinct
NAS-Bench-Macro networks; identity is the baseline of each layer), after standardising the score.
Two things come out, per scorer:

- the EFFECT of each op (MB3_K3, MB6_K5) against identity at each layer, in standard deviations
  of the score, printed beside the ground truth's: a supernet that overrates a layer shows there;
- the split of its score into that additive part (R^2) and the rest, and the Kendall tau of the
  rest (the residual) with the ground truth's residual: how well it orders what the per-layer
  choices do not explain additively.

Reads only stored results (no training, no evaluation; seconds):

    python benchmarks/layer_effects.py            # -> benchmarks/results/study/layer-effects.json

It describes the samples to explain the study's numbers; it chooses nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import read_json, write_json  # noqa: E402

from nas_core.ground_truth import load_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "study"
OPS = ("MB3_K3", "MB6_K5")


def design(archs: list[str]) -> np.ndarray:
    """Intercept + one column per (layer, non-identity op): 1 where the network picks it."""
    layers = len(archs[0])
    return np.array([[1.0] + [float(a[layer] == str(op)) for layer in range(layers) for op in (1, 2)] for a in archs])


def fit(x: np.ndarray, scores: list[float]) -> dict:
    """Per-layer effects (in SDs of the score), R^2 of the additive fit, and the residuals."""
    y = np.asarray(scores, dtype=np.float64)
    y = (y - y.mean()) / y.std()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    return {"effects": coef[1:].reshape(-1, len(OPS)).tolist(), "r2": float(1 - residual.var() / y.var()), "residual": residual}


def scorers(results: Path) -> dict[str, list[float]]:
    """Every finished method (`name-s<seed>`) and proxy, scores over tuning + report, in order.

    Methods scored on the tuning sample only (recipe-tuning runs) are left out: the fit needs
    the same 400 networks for every scorer.
    """
    out = {}
    for path in sorted((results / "methods").glob("*.json")):
        scores = read_json(path)["scores"]
        if "report" not in scores:
            continue
        out[path.stem] = scores["tuning"] + scores["report"]
    for name, entry in read_json(results / "references.json")["proxies"].items():
        out[name] = entry["scores"]["tuning"] + entry["scores"]["report"]
    return out


def analyse(results: Path, table_path: str | None = None) -> dict:
    samples = read_json(results / "samples.json")
    archs = samples["tuning"] + samples["report"]
    table = load_table(table_path)
    x = design(archs)
    truth = fit(x, [table[a].mean_acc for a in archs])
    rows = {"ground truth": {"effects": truth["effects"], "r2": truth["r2"], "residual_tau": 1.0}}
    for name, scores in scorers(results).items():
        found = fit(x, scores)
        tau = stats.kendalltau(found["residual"], truth["residual"])[0]
        rows[name] = {"effects": found["effects"], "r2": found["r2"], "residual_tau": float(tau)}
    return {"networks": len(archs), "ops": list(OPS), "scorers": rows}


def show(result: dict) -> None:
    rows = result["scorers"]
    layers = len(rows["ground truth"]["effects"])
    print(f"effect of {' / '.join(result['ops'])} vs identity per layer, in SDs of each score ({result['networks']} networks)")
    print("scorer".ljust(24) + "".join(f"L{layer}".rjust(13) for layer in range(layers)) + "      R2  resid tau")
    for name, row in rows.items():
        cells = "".join(f"{a:+.2f}/{b:+.2f}".rjust(13) for a, b in row["effects"])
        print(name.ljust(24) + cells + f"  {row['r2']:6.3f}  {row['residual_tau']:+.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the study's results directory")
    parser.add_argument("--ground-truth", default=None, help="NAS-Bench-Macro table (default: $NAS_DATA's)")
    parser.add_argument("--out", type=Path, default=None, help="where the JSON goes (default: RESULTS/layer-effects.json)")
    args = parser.parse_args(argv)
    result = analyse(args.results, args.ground_truth)
    show(result)
    out = args.out or args.results / "layer-effects.json"
    write_json(out, result)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
