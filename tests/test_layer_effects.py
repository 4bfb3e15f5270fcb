"""benchmarks/layer_effects.py: the additive per-layer fit, and its reading of the committed study."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from nas_test_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import layer_effects  # noqa: E402


def test_an_additive_score_is_recovered_exactly_and_leaves_no_residual():
    rng = np.random.default_rng(0)
    archs = ["".join(rng.choice(list("012"), size=8)) for _ in range(300)]
    effect = {(layer, op): (layer + 1) * op for layer in range(8) for op in (1, 2)}
    scores = [sum(effect[(layer, int(c))] for layer, c in enumerate(a) if c != "0") for a in archs]
    found = layer_effects.fit(layer_effects.design(archs), scores)
    assert found["r2"] == pytest.approx(1.0)
    assert np.abs(found["residual"]).max() < 1e-9
    effects = np.array(found["effects"])
    # standardised: proportional to the true effects, largest at the last layer's MB6_K5
    assert effects.argmax() == effects.size - 1
    assert effects[0, 1] == pytest.approx(2 * effects[0, 0])


def test_swapping_in_the_true_effects_of_the_misrated_layer_restores_the_order():
    rng = np.random.default_rng(1)
    keys = ["".join(rng.choice(list("012"), size=8)) for _ in range(300)]
    true_effect = {(layer, op): (8 - layer) * op + rng.uniform(0, 0.5) for layer in range(8) for op in (1, 2)}  # no ties
    truth = np.array([sum(true_effect[(layer, int(c))] for layer, c in enumerate(k) if c != "0") for k in keys], dtype=float)
    # a scorer that is right about every layer but L6, which it rates 30 times too high
    scores = truth + np.array([30 * true_effect[(6, int(k[6]))] if k[6] != "0" else 0 for k in keys])
    assert layer_effects.tau(scores, truth) < 0.8
    fixed = layer_effects.with_true_effects(keys, scores, truth, [6])
    assert layer_effects.tau(fixed, truth) == pytest.approx(1.0)
    # swapping a layer it already rates right changes nothing
    same = layer_effects.with_true_effects(keys, scores, truth, [0])
    assert layer_effects.tau(same, truth) == pytest.approx(layer_effects.tau(scores, truth))


def test_the_committed_study_shows_every_supernet_overrating_the_last_stage(tmp_path, shared_data):
    out = tmp_path / "layer-effects.json"
    assert layer_effects.main(["--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["scorers"]
    truth = np.array(rows["ground truth"]["effects"])
    spos = np.array(rows["spos-s0"]["effects"])
    assert 0 < rows["spos-s0"]["r2"] < 1
    assert truth[0].mean() > truth[6].mean()  # the ground truth: L0 matters, L6 barely
    assert spos[6].mean() > truth[6].mean() + 0.3  # the SPOS supernet overrates L6
    assert spos[0].mean() < truth[0].mean()  # and underrates L0
    assert "tune-w0.5-s0" not in rows  # tuning-only runs are left out of the 400-network fit
    # the TUNING-only fit keeps them: the L6 bias shrinks with training, and width does not cure it
    tuning = {name: np.array(row["effects"]) for name, row in result["tuning_sample"]["scorers"].items()}
    assert result["tuning_sample"]["networks"] == 200
    assert tuning["quickstart-accuracy-s0"][6].mean() > tuning["spos-s0"][6].mean() + 0.3  # 360k vs 2M path-images
    assert tuning["tune-w0.5-s0"][6].mean() > tuning["ground truth"][6].mean() + 0.5  # width 0.5 at equal time
    # the ground truth's additive part outranks the shipped main job: its weights are the gap
    value = result["remainder"]
    assert value["labelled_ceiling"]["additive"]["report"] > value["base_tau"]["report"] + 0.03
    assert value["supernets"]["spos-s0"]["weight"] in layer_effects.REMAINDER_WEIGHTS
    assert set(value["k_label_additive_predictor"]) == {str(k) for k in layer_effects.LABEL_COUNTS}
    # label-free: each supernet's tuning-sample scores fitted as per-layer effects (the
    # layer-additive evaluator's model) rank REPORT better than its raw scores, CI above 0
    fitted = result["label_free_additive"]["methods"]
    for name in ("spos-s0", "spos-s1", "sandwich-s0", "sandwich-s1", "fairnas-s0"):
        assert fitted[name]["fitted_on_other_sample"]["report"] > fitted[name]["raw"]["report"], name
        assert fitted[name]["report_difference"]["ci95"][0] > 0, name
    # with labels, to explain: the additive evaluator's scores with every layer's effects made
    # the ground truth's are the labelled additive ceiling; a perfect L6 alone lifts its fusion
    # with the priors by under 0.03 on REPORT (the most a few-shot split by depth could give)
    oracle = result["layer_oracle"]
    assert oracle["fixed_layer"] == 6
    additive = oracle["methods"]["sandwich-additive-s1"]
    assert additive["all_layers"]["report"] == pytest.approx(value["labelled_ceiling"]["additive"]["report"], abs=1e-9)
    for seed in (1, 2, 3):
        row = oracle["methods"][f"sandwich-additive-s{seed}"]
        assert 0 < row["fused_layer_fixed"]["report"] - row["fused"]["report"] < 0.03
