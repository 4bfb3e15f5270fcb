"""The built-in ``layer-additive`` evaluator: a member's scores fitted as per-layer choice effects
(tiny space, test-only members). What the fit does to the study's real supernets is pinned in
tests/test_layer_effects.py."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nas_core.api import ConfigError, Evaluator, NasError, Section, hookimpl
from nas_core.components.additive import LayerEffects
from nas_core.ranking import distinct_networks
from nas_core.testing.stand_in import tiny_space

SPACE = tiny_space()
EVERY_ENCODING = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
NETWORKS = distinct_networks(SPACE)
EFFECTS = [[0.0, 1.0, 3.0], [0.0, -2.0, 0.5], [0.0, 4.0, 2.0]]


def additive(arch) -> float:
    return sum(EFFECTS[layer][choice] for layer, choice in enumerate(SPACE.canonical(arch)))


def noise(arch) -> float:
    """Per-network luck: deterministic in the canonical network, unrelated to its neighbours."""
    return random.Random(str(SPACE.canonical(arch))).gauss(0.0, 1.0)


class KnownOptions(Section):
    which: str = "additive"


class KnownScores(Evaluator):
    """Test-only member: a fixed score per network; records every call."""

    reads_supernet = False

    def __init__(self, context, options: KnownOptions):
        self.which = options.which
        self.calls: list[list[tuple[int, ...]]] = []

    def evaluate(self, supernet, archs):
        self.calls.append([tuple(a) for a in archs])
        if self.which == "nan":
            return [math.nan for _ in archs]
        return [additive(a) + (noise(a) if self.which == "noisy" else 0.0) for a in archs]


class KnownPlugin:
    NAS_PLUGIN_API = "1.1"

    @hookimpl
    def nas_register_evaluators(self, registry):
        registry.register("known", KnownScores, options=KnownOptions)


def layer_additive(nas_kit, which="additive", config=None, **options):
    spec = {"name": "layer-additive", "member": {"name": "known", "which": which}, **options}
    return nas_kit.build("evaluator", spec, config=config or {}, plugins={"known": KnownPlugin()})


def test_an_additive_member_is_reproduced_for_every_encoding(nas_kit):
    evaluator = layer_additive(nas_kit, ridge=0.0)
    assert sorted(evaluator.fit_archs()) == sorted(NETWORKS)  # fewer networks than fit_size: all of them
    assert evaluator.evaluate(None, EVERY_ENCODING) == pytest.approx([additive(a) for a in EVERY_ENCODING])
    # the fitted effects are the member's, against choice 0 of each layer
    model = evaluator.model
    assert np.array(model.effects) == pytest.approx(np.array(EFFECTS))
    assert model.r_squared(NETWORKS, [additive(a) for a in NETWORKS]) == pytest.approx(1.0)


def test_the_fit_removes_per_network_noise_from_the_ranking():
    """On a space with 4 choices x 6 layers, a member that is an additive score plus per-network
    noise of the same spread ranks networks worse than its fitted sum does."""
    rng = np.random.default_rng(0)
    num_choices = [4] * 6
    effects = rng.normal(size=(6, 4))
    archs = [tuple(int(c) for c in rng.integers(0, 4, size=6)) for _ in range(300)]
    truth = np.array([sum(effects[i][c] for i, c in enumerate(a)) for a in archs])
    member = truth + rng.normal(scale=truth.std(), size=len(archs))
    fit_part, rank_part = slice(0, 150), slice(150, 300)
    model = LayerEffects.fit(num_choices, archs[fit_part], member[fit_part], ridge=1.0)
    fitted = [model.score(a) for a in archs[rank_part]]
    assert kendalltau(fitted, truth[rank_part])[0] > kendalltau(member[rank_part], truth[rank_part])[0] + 0.2


def test_scores_do_not_depend_on_batching_and_the_member_is_asked_once_per_supernet(nas_kit):
    evaluator = layer_additive(nas_kit, which="noisy", fit_size=6, cache=False)
    together = evaluator.evaluate(None, EVERY_ENCODING)
    one_by_one = [layer_additive(nas_kit, which="noisy", fit_size=6, cache=False).evaluate(None, [a])[0] for a in EVERY_ENCODING]
    assert together == one_by_one
    assert evaluator.member.calls == [evaluator.fit_archs()]  # the fit sample, once; then nothing per network
    evaluator.evaluate(None, EVERY_ENCODING[:5])
    assert len(evaluator.member.calls) == 1
    evaluator.evaluate(torch.nn.Identity(), EVERY_ENCODING[:5])  # another supernet: fitted again
    assert len(evaluator.member.calls) == 2


def test_a_fit_is_kept_in_the_run_folder_and_read_back_for_the_same_settings(nas_kit, tmp_path):
    run_dir = str(tmp_path / "run")
    first = layer_additive(nas_kit, which="noisy", fit_size=6, config={"run_dir": run_dir})
    scores = first.evaluate(None, EVERY_ENCODING)
    saved = list((tmp_path / "run" / "layer-additive").glob("*.json"))
    assert len(first.member.calls) == 1 and len(saved) == 1
    again = layer_additive(nas_kit, which="noisy", fit_size=6, config={"run_dir": run_dir})
    assert again.evaluate(None, EVERY_ENCODING) == scores  # exactly: JSON keeps every float
    assert again.member.calls == []
    # anything the fit depends on changes the fingerprint: another fit
    for changed in ({"fit_size": 5}, {"ridge": 2.0}, {"config": {"run_dir": run_dir, "seed": 3}}, {"which": "additive"}):
        options = {"which": "noisy", "fit_size": 6, "config": {"run_dir": run_dir}, **changed}
        other = layer_additive(nas_kit, **options)
        other.evaluate(None, EVERY_ENCODING[:1])
        assert len(other.member.calls) == 1, changed
    off = layer_additive(nas_kit, which="noisy", fit_size=6, cache=False, config={"run_dir": run_dir})
    off.evaluate(None, EVERY_ENCODING[:1])
    assert len(off.member.calls) == 1


def test_a_damaged_or_foreign_cache_file_is_fitted_over_not_an_error(nas_kit, tmp_path, caplog):
    run_dir = str(tmp_path / "run")
    first = layer_additive(nas_kit, fit_size=6, config={"run_dir": run_dir})
    scores = first.evaluate(None, EVERY_ENCODING)
    path = first.cache_path(None)
    for damage in ("{not json", '{"intercept": 0, "effects": [[0, 1]], "fitted_on": 6, "r_squared": 1}'):
        path.write_text(damage)
        again = layer_additive(nas_kit, fit_size=6, config={"run_dir": run_dir})
        assert again.evaluate(None, EVERY_ENCODING) == pytest.approx(scores)
        assert len(again.member.calls) == 1
    assert "fitting again" in caplog.text
    assert again.model is not None and first.cache_path(None).read_text().startswith("{\n")  # rewritten whole


def test_the_fingerprint_covers_the_supernet_weights_iff_the_member_reads_them(nas_kit):
    context = nas_kit.context()
    supernet = context.supernet
    reads = context.build("evaluator", {"name": "layer-additive", "member": {"name": "accuracy"}})
    blind = context.build("evaluator", {"name": "layer-additive", "member": {"name": "depth"}})
    before = reads.cache_path(supernet), blind.cache_path(supernet)
    with torch.no_grad():
        next(supernet.parameters()).add_(1.0)
    assert reads.cache_path(supernet) != before[0]
    assert blind.cache_path(supernet) == before[1] == blind.cache_path(None)


def test_the_fit_sample_is_seeded_by_the_run(nas_kit):
    first = layer_additive(nas_kit, fit_size=5).fit_archs()
    again = layer_additive(nas_kit, fit_size=5).fit_archs()
    other = layer_additive(nas_kit, fit_size=5, config={"seed": 5}).fit_archs()
    assert first == again and len(set(first)) == 5 and first != other


def test_it_reads_the_supernet_iff_its_member_does(nas_kit):
    assert layer_additive(nas_kit).reads_supernet is False
    depth = nas_kit.build("evaluator", {"name": "layer-additive", "member": {"name": "depth"}})
    accuracy = nas_kit.build("evaluator", {"name": "layer-additive", "member": {"name": "accuracy"}})
    assert depth.reads_supernet is False and accuracy.reads_supernet is True


def test_a_member_without_finite_scores_is_one_clear_error(nas_kit):
    with pytest.raises(NasError, match=r"evaluator\.member: .*finite score to 0 of the \d+ networks"):
        layer_additive(nas_kit, which="nan").evaluate(None, NETWORKS[:1])


def test_bad_options_are_config_errors(nas_kit):
    with pytest.raises(ConfigError, match=r"evaluator\.member\.name: .*'nowhere'"):
        nas_kit.build("evaluator", {"name": "layer-additive", "member": {"name": "nowhere"}})
    with pytest.raises(ConfigError, match=r"fit_size"):
        layer_additive(nas_kit, fit_size=1)
    with pytest.raises(ConfigError, match=r"ridge"):
        layer_additive(nas_kit, ridge=-1.0)


def test_two_searches_of_one_trained_supernet_fit_once_and_agree(nas_kit, tmp_path, caplog):
    """`nas search` twice (or search, then rank) on the same checkpoint: the second command reads
    the fit the first one kept, and scores every network the same."""
    config = {
        "run_dir": str(tmp_path / "run"),
        "evaluator": {"name": "layer-additive", "fit_size": 6, "member": {"name": "accuracy", "bn_recal_batches": 1, "batch_size": 32}},
    }
    nas_kit.train(config)
    caplog.set_level("INFO", logger="nas_core.components")
    first = nas_kit.search(config).search
    assert caplog.text.count("scores the fit sample") == 1 and "read from" not in caplog.text
    second = nas_kit.search(config).search
    assert caplog.text.count("scores the fit sample") == 1 and caplog.text.count("read from") == 1
    assert [c.score for c in second.history] == [c.score for c in first.history]
