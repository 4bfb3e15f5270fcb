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

The same fit on the TUNING sample alone (``tuning_sample``) adds the recipe-tuning runs that were
scored on it only (e.g. ``tune-w0.5``: width 0.5 at equal time), so a misweighting can be followed
across budget and width.

Reads only stored results (no training, no evaluation; seconds):

    python benchmarks/layer_effects.py            # -> benchmarks/results/study/layer-effects.json

Then, per sample, what the remainder is worth (``remainder``): each supernet's remainder (after
its own label-free additive fit on that sample) rank-averaged into the shipped main job's scores
(``--base``, default ``quickstart-s0``) at the weight the TUNING sample prefers, reported on
REPORT. Two rows use labels and are explanations, not methods: the ground truth's own additive
part (the ceiling of any per-layer-additive scorer), and that part plus a supernet's remainder;
and one label-using method, counted: an additive predictor fitted (ridge) on k labelled networks
drawn from TUNING, ranked on REPORT, 30 draws per k.

And, label-free (``label_free_additive``): each method's scores of one sample fitted as a sum of
per-layer choice effects -- what the ``layer-additive`` evaluator does with its own fit sample --
then ranking the OTHER sample: tau raw and fitted, per sample, with the paired bootstrap CI of
the difference on REPORT (fitted on the supernet's tuning-sample scores).

And, USING LABELS to explain, not to rank (``layer_oracle``): per method and sample, the tau its
scores would have if ONE layer's effects were the ground truth's (the ground truth's effects
scaled to the method's own at the other layers), for each layer, and if all were. Then the cap of a
perfect L6 (``FIXED_LAYER``: the layer every supernet overrates, above, and the one a few-shot
split by depth would have to fix): the method with L6's effects made the ground truth's, then
rank-averaged with the training-free priors (NASWOT, fewer identities; weights chosen on TUNING,
the study's fusion rule), beside the same fusion of the method as it is. Which layers carry the
gap to the labelled ceiling, and what the best possible L6 fix could give.

It describes the samples to explain the study's numbers; it chooses nothing it then reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import SPEC, rank_fusion_on_tuning, read_json  # noqa: E402

from nas_core.checked_json import write_json_atomic  # noqa: E402
from nas_core.components.additive import LayerEffects, choice_indicators  # noqa: E402
from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.ranking import paired_difference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "study"
OPS = ("MB3_K3", "MB6_K5")
REMAINDER_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
LABEL_COUNTS = (10, 20, 40, 80)
DRAWS = 30
FIXED_LAYER = 6


def as_archs(keys: list[str]) -> list[tuple[int, ...]]:
    """NAS-Bench-Macro keys ('01221021') as architectures (tuples of choices)."""
    return [tuple(int(c) for c in key) for key in keys]


def design(keys: list[str]) -> np.ndarray:
    """Intercept + one column per (layer, non-identity op): 1 where the network picks it (the
    ``layer-additive`` evaluator's features)."""
    archs = as_archs(keys)
    return np.hstack([np.ones((len(archs), 1)), choice_indicators([len(OPS) + 1] * len(archs[0]), archs)])


def fit(x: np.ndarray, scores: list[float]) -> dict:
    """Per-layer effects (in SDs of the score), R^2 of the additive fit, and the residuals."""
    y = np.asarray(scores, dtype=np.float64)
    y = (y - y.mean()) / y.std()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    return {"effects": coef[1:].reshape(-1, len(OPS)).tolist(), "r2": float(1 - residual.var() / y.var()), "residual": residual}


def sample_scores(results: Path) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """Every method (`name-s<seed>`) scored on the tuning sample, and every proxy: their scores
    per sample. Recipe-tuning runs have no ``report`` scores; the both-sample fit leaves them out."""
    methods = {}
    for path in sorted((results / "methods").glob("*.json")):
        scores = read_json(path)["scores"]
        if "tuning" in scores:
            methods[path.stem] = scores
    proxies = {name: entry["scores"] for name, entry in read_json(results / "references.json")["proxies"].items()}
    return methods, proxies


def analyse(archs: list[str], truth: list[float], scorers: dict[str, list[float]]) -> dict:
    """Per-layer effects, R^2 and remainder tau of every scorer (scores over ``archs``)."""
    x = design(archs)
    reference = fit(x, truth)
    rows = {"ground truth": {"effects": reference["effects"], "r2": reference["r2"], "residual_tau": 1.0}}
    for name, scores in scorers.items():
        found = fit(x, scores)
        rows[name] = {"effects": found["effects"], "r2": found["r2"], "residual_tau": tau(found["residual"], reference["residual"])}
    return {"networks": len(archs), "ops": list(OPS), "scorers": rows}


def tau(a, b) -> float:
    return float(stats.kendalltau(a, b)[0])


def remainder(archs: list[str], scores) -> np.ndarray:
    return fit(design(archs), scores)["residual"]


def fused_on_tuning(first: dict, rest: dict, truth: dict) -> dict:
    """``first`` + w x ``rest`` by rank averaging, w from REMAINDER_WEIGHTS chosen on TUNING
    (the study's own rule), with its tau on both samples."""
    fused = rank_fusion_on_tuning({"first": first, "rest": rest}, truth, list(REMAINDER_WEIGHTS))
    return {"weight": fused["weights"]["rest"], **{s: tau(fused["scores"][s], truth[s]) for s in ("tuning", "report")}}


def remainder_value(samples: dict, truth: dict, methods: dict, base: str, label_seed: int = 0) -> dict:
    """What a supernet's remainder adds to ``base`` (weight chosen on TUNING), the labelled
    additive ceiling, and the k-label additive predictor (see the module docstring)."""
    remainders = {n: {s: remainder(samples[s], scores[s]) for s in truth} for n, scores in methods.items() if n != base}
    base_scores = methods[base]
    out = {
        "base": base,
        "base_tau": {s: tau(base_scores[s], truth[s]) for s in truth},
        "supernets": {name: fused_on_tuning(base_scores, parts, truth) for name, parts in remainders.items()},
    }
    # labelled explanations: the ground truth's additive part, alone and with SPOS's remainder
    additive = {s: design(samples[s]) @ np.linalg.lstsq(design(samples[s]), truth[s], rcond=None)[0] for s in truth}
    ceiling = {"additive": {s: tau(additive[s], truth[s]) for s in truth}}
    if "spos-s0" in remainders:
        ceiling["plus_spos_remainder"] = fused_on_tuning(additive, remainders["spos-s0"], truth)
    out["labelled_ceiling"] = ceiling
    # the label-using method: ridge on k labelled TUNING networks, ranked on REPORT
    # (LayerEffects, ridge 1 with the intercept not shrunk: the layer-additive evaluator's fit,
    # here on labels)
    rng = np.random.default_rng(label_seed)
    tuning, report = as_archs(samples["tuning"]), as_archs(samples["report"])
    num_choices = [len(OPS) + 1] * len(tuning[0])
    predictor = {}
    for k in LABEL_COUNTS:
        draws = []
        for _ in range(DRAWS):
            idx = rng.choice(len(tuning), k, replace=False)
            model = LayerEffects.fit(num_choices, [tuning[i] for i in idx], truth["tuning"][idx], ridge=1.0)
            draws.append(tau([model.score(a) for a in report], truth["report"]))
        predictor[str(k)] = {"labels": k, "report_tau_mean": float(np.mean(draws)), "report_tau_sd": float(np.std(draws))}
    out["k_label_additive_predictor"] = predictor
    return out


def label_free_additive(samples: dict, truth: dict, methods: dict, ridge: float = 1.0, resamples: int = 2000) -> dict:
    """Each method's scores of one sample fitted by ``LayerEffects`` (no labels: the targets are
    its own scores), ranking the other sample; tau raw vs fitted per sample, and on REPORT the
    paired bootstrap difference fitted - raw."""
    archs = {s: as_archs(samples[s]) for s in truth}
    num_choices = [len(OPS) + 1] * len(archs["tuning"][0])
    other = {"tuning": "report", "report": "tuning"}
    rows = {}
    for name, scores in methods.items():
        fitted = {s: [LayerEffects.fit(num_choices, archs[other[s]], scores[other[s]], ridge).score(a) for a in archs[s]] for s in truth}
        rows[name] = {
            "raw": {s: tau(scores[s], truth[s]) for s in truth},
            "fitted_on_other_sample": {s: tau(fitted[s], truth[s]) for s in truth},
            "report_difference": paired_difference(fitted["report"], scores["report"], truth["report"], resamples=resamples, seed=0),
        }
    return {"ridge": ridge, "methods": rows}


def with_true_effects(keys: list[str], scores, truth, layers: Sequence[int]) -> np.ndarray:
    """The standardised ``scores`` (up to a constant) with the additive effects of ``layers``
    swapped for the ground truth's, in the scores' own units: the ground truth's effects times the
    median ratio of the scores' effects to the ground truth's at the layers kept (all layers if
    every one is swapped; effects under 5% of the largest left out), so a layer the scores
    misrate does not set the scale."""
    x = design(keys)
    own, true = fit(x, scores), fit(x, truth)
    effects, target = np.ravel(own["effects"]), np.ravel(true["effects"])
    swapped = [layer * len(OPS) + op for layer in layers for op in range(len(OPS))]
    kept = [c for c in range(effects.size) if c not in swapped] or list(range(effects.size))
    kept = [c for c in kept if abs(target[c]) > 0.05 * np.abs(target).max()]
    effects[swapped] = target[swapped] * float(np.median(effects[kept] / target[kept]))
    return x[:, 1:] @ effects + own["residual"]


def layer_oracle(samples: dict, truth: dict, methods: dict, priors: dict, grid: Sequence[float], fixed_layer: int = FIXED_LAYER) -> dict:
    """Per method: tau with one layer's (or every layer's) effects made the ground truth's, and
    the fused cap of fixing ``fixed_layer`` (module docstring). ``priors`` in the study's fusion
    order: the supernet joins second, as in ``study.fusion_rows``."""
    layers = range(len(samples["tuning"][0]))
    first, *others = priors
    rows = {}
    for name, scores in methods.items():
        base = {s: tau(scores[s], truth[s]) for s in truth}
        rows[name] = {
            "tau": base,
            "one_layer_gain": {s: [tau(with_true_effects(samples[s], scores[s], truth[s], [layer]), truth[s]) - base[s] for layer in layers] for s in truth},
            "all_layers": {s: tau(with_true_effects(samples[s], scores[s], truth[s], layers), truth[s]) for s in truth},
        }
        fixed = {s: list(with_true_effects(samples[s], scores[s], truth[s], [fixed_layer])) for s in truth}
        for label, member in (("fused", scores), ("fused_layer_fixed", fixed)):
            members = {first: priors[first], "supernet": member, **{n: priors[n] for n in others}}
            fused = rank_fusion_on_tuning(members, truth, list(grid))
            rows[name][label] = {"weights": fused["weights"], **{s: tau(fused["scores"][s], truth[s]) for s in truth}}
    return {"fixed_layer": fixed_layer, "priors": list(priors), "methods": rows}


def show(result: dict) -> None:
    rows = result["scorers"]
    layers = len(rows["ground truth"]["effects"])
    print(f"effect of {' / '.join(result['ops'])} vs identity per layer, in SDs of each score ({result['networks']} networks)")
    print("scorer".ljust(24) + "".join(f"L{layer}".rjust(13) for layer in range(layers)) + "      R2  resid tau")
    for name, row in rows.items():
        cells = "".join(f"{a:+.2f}/{b:+.2f}".rjust(13) for a, b in row["effects"])
        print(name.ljust(24) + cells + f"  {row['r2']:6.3f}  {row['residual_tau']:+.3f}")


def show_remainder(value: dict) -> None:
    base = value["base_tau"]
    print(f"\n{value['base']} (the base): tau tuning {base['tuning']:.3f} / REPORT {base['report']:.3f}")
    print("base + a supernet's remainder (weight chosen on tuning):")
    for name, row in value["supernets"].items():
        print(f"  {name:24s} weight {row['weight']:.2f}  tuning {row['tuning']:.3f}  REPORT {row['report']:.3f}")
    ceiling = value["labelled_ceiling"]
    print(f"USES LABELS (explanation): the ground truth's additive part {ceiling['additive']['tuning']:.3f} / {ceiling['additive']['report']:.3f}", end="")
    if "plus_spos_remainder" in ceiling:
        row = ceiling["plus_spos_remainder"]
        print(f"; + SPOS's remainder (weight {row['weight']:.2f}) {row['tuning']:.3f} / {row['report']:.3f}", end="")
    print()
    print("USES LABELS (method): additive predictor fitted on k labelled tuning networks, REPORT tau mean +- sd:")
    for row in value["k_label_additive_predictor"].values():
        print(f"  k={row['labels']:3d}: {row['report_tau_mean']:.3f} +- {row['report_tau_sd']:.3f}")


def show_label_free(value: dict) -> None:
    print("\nLABEL-FREE: each method's scores fitted as per-layer effects on the other sample (layer-additive):")
    print("  method                    raw tuning/REPORT   fitted tuning/REPORT   REPORT fitted - raw [95% CI]")
    for name, row in value["methods"].items():
        raw, fitted, diff = row["raw"], row["fitted_on_other_sample"], row["report_difference"]
        low, high = diff["ci95"]
        print(f"  {name:24s}  {raw['tuning']:.3f} / {raw['report']:.3f}       {fitted['tuning']:.3f} / {fitted['report']:.3f}"
              f"          {diff['difference']:+.3f} [{low:+.3f}, {high:+.3f}]")


def show_oracle(value: dict) -> None:
    layer = value["fixed_layer"]
    print("\nUSES LABELS (explanation): REPORT tau with one layer's (+Lk) or every layer's (all) effects made the ground truth's;")
    print(f"then rank-averaged with {' + '.join(value['priors'])} (weights on TUNING), as is and with L{layer} made the ground truth's:")
    print("  method                            tau" + "".join(f"    +L{k}" for k in range(8)) + "    all  fused  fused+L" + str(layer))
    for name, row in value["methods"].items():
        gains = "".join(f"{g:+7.3f}" for g in row["one_layer_gain"]["report"])
        print(f"  {name:32s} {row['tau']['report']:.3f}{gains}  {row['all_layers']['report']:.3f}  {row['fused']['report']:.3f}  {row['fused_layer_fixed']['report']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the study's results directory")
    parser.add_argument("--ground-truth", default=None, help="NAS-Bench-Macro table (default: $NAS_DATA's)")
    parser.add_argument("--base", default="quickstart-s0", help="the method whose scores a remainder is fused into")
    parser.add_argument("--out", type=Path, default=None, help="where the JSON goes (default: RESULTS/layer-effects.json)")
    args = parser.parse_args(argv)
    samples = read_json(args.results / "samples.json")
    table = load_table(args.ground_truth)
    truth = {s: np.array([table[a].mean_acc for a in samples[s]]) for s in ("tuning", "report")}
    methods, proxies = sample_scores(args.results)
    scorers = {**methods, **proxies}
    reported = {name: scores for name, scores in methods.items() if "report" in scores}
    both = {name: list(scores["tuning"]) + list(scores["report"]) for name, scores in {**reported, **proxies}.items()}
    result = analyse(samples["tuning"] + samples["report"], list(truth["tuning"]) + list(truth["report"]), both)
    show(result)
    result["tuning_sample"] = analyse(samples["tuning"], list(truth["tuning"]), {name: scores["tuning"] for name, scores in scorers.items()})
    print("\nTUNING sample only (adds the recipe-tuning runs):")
    show(result["tuning_sample"])
    result["remainder"] = remainder_value(samples, truth, reported, args.base)
    show_remainder(result["remainder"])
    result["label_free_additive"] = label_free_additive(samples, truth, reported)
    show_label_free(result["label_free_additive"])
    fusions = yaml.safe_load(SPEC.read_text())["fusions"]  # the study's priors, their order and grid
    references = read_json(args.results / "references.json")
    stored = {**proxies, "fewer_identities": {s: references[s]["fewer_identities"] for s in truth}}
    result["layer_oracle"] = layer_oracle(samples, truth, reported, {n: stored[n] for n in fusions["priors"]}, fusions["grid"])
    show_oracle(result["layer_oracle"])
    out = args.out or args.results / "layer-effects.json"
    write_json_atomic(result, out)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
