"""The built-in ``rank-fusion`` evaluator on known scores (tiny space, test-only members), and
the built-in accuracy evaluator's ``metric: loss``."""

from __future__ import annotations

import math
import random

import pytest
import torch
from nas_test_helpers import nas

from nas_core.api import ConfigError, Evaluator, Section, hookimpl
from nas_core.ranking import distinct_networks
from nas_core.testing.stand_in import tiny_space

SPACE = tiny_space()
EVERY_ENCODING = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
NETWORKS = distinct_networks(SPACE)


def score_a(arch) -> float:
    """Distinct for every network: a deterministic hash of the canonical form."""
    canon = SPACE.canonical(arch)
    return float(random.Random(str(canon)).random())


def score_b(arch) -> float:
    canon = SPACE.canonical(arch)
    return float(sum(canon)) + 0.01 * canon[0]


class KnownOptions(Section):
    which: str = "a"


class KnownScores(Evaluator):
    """Test-only member: a fixed score per network; counts what it is asked to evaluate."""

    def __init__(self, context, options: KnownOptions):
        self.which = options.which
        self.asked: list[tuple[int, ...]] = []

    def evaluate(self, supernet, archs):
        self.asked += [tuple(a) for a in archs]
        if self.which == "nan":
            return [math.nan if SPACE.canonical(a) == NETWORKS[0] else score_a(a) for a in archs]
        return [score_a(a) if self.which == "a" else score_b(a) for a in archs]


class KnownPlugin:
    NAS_PLUGIN_API = "1.1"

    @hookimpl
    def nas_register_evaluators(self, registry):
        registry.register("known", KnownScores, options=KnownOptions)


def fusion(nas_kit, members, reference_size=128):
    spec = {"name": "rank-fusion", "reference_size": reference_size, "members": members}
    return nas_kit.build("evaluator", spec, plugins={"known": KnownPlugin()})


def member(weight, which="a"):
    return {"weight": weight, "evaluator": {"name": "known", "which": which}}


def percentile(value, population):
    return (sum(v < value for v in population) + 0.5 * sum(v == value for v in population)) / len(population)


def test_the_fused_score_is_the_weighted_mean_of_percentiles_against_the_reference(nas_kit):
    evaluator = fusion(nas_kit, [member(1.0, "a"), member(3.0, "b")])
    reference = evaluator.reference_archs()
    assert sorted(reference) == sorted(NETWORKS)  # the tiny space has fewer networks than 128: all of them
    ref_a, ref_b = [score_a(r) for r in reference], [score_b(r) for r in reference]
    scores = evaluator.evaluate(None, EVERY_ENCODING)
    expected = [(percentile(score_a(x), ref_a) + 3 * percentile(score_b(x), ref_b)) / 4 for x in EVERY_ENCODING]
    assert scores == pytest.approx(expected, abs=2e-6)  # the tie-break term is below 1e-6 per member
    # the weights matter: the heavier member dominates the ordering
    assert scores != pytest.approx(fusion(nas_kit, [member(3.0, "a"), member(1.0, "b")]).evaluate(None, EVERY_ENCODING), abs=1e-3)


@pytest.mark.parametrize("reference_size", [3, 128])
def test_a_weight_one_and_zero_fusion_ranks_exactly_like_its_member(nas_kit, reference_size):
    """Also with a reference of 3 networks, where most networks fall outside its range (all at
    percentile 0 or 1): the tie-break keeps the member's order there."""
    evaluator = fusion(nas_kit, [member(1.0, "a"), member(0.0, "b")], reference_size)
    scores = evaluator.evaluate(None, NETWORKS)
    truth = [score_a(a) for a in NETWORKS]
    assert sorted(range(len(NETWORKS)), key=scores.__getitem__) == sorted(range(len(NETWORKS)), key=truth.__getitem__)
    assert len(set(scores)) == len(NETWORKS)
    assert evaluator.members[1].asked == []  # a weight-0 member is built but never scored


def test_scores_do_not_depend_on_batching_or_order(nas_kit):
    members = [member(1.0, "a"), member(2.0, "b")]
    together = fusion(nas_kit, members, reference_size=5).evaluate(None, EVERY_ENCODING)
    fresh = fusion(nas_kit, members, reference_size=5)
    one_by_one = {arch: fresh.evaluate(None, [arch])[0] for arch in reversed(EVERY_ENCODING)}
    chunked = fusion(nas_kit, members, reference_size=5)
    shuffled = random.Random(3).sample(EVERY_ENCODING, len(EVERY_ENCODING))
    in_chunks = {}
    for start in range(0, len(shuffled), 4):
        chunk = shuffled[start : start + 4]
        in_chunks.update(zip(chunk, chunked.evaluate(None, chunk)))
    assert together == [one_by_one[a] for a in EVERY_ENCODING] == [in_chunks[a] for a in EVERY_ENCODING]
    # equivalent encodings (identities moved within a run of shape-preserving layers) score alike
    by_network = {}
    for arch, score in zip(EVERY_ENCODING, together):
        assert by_network.setdefault(SPACE.canonical(arch), score) == score


def test_each_member_scores_each_network_once(nas_kit):
    evaluator = fusion(nas_kit, [member(1.0, "a"), member(1.0, "b")], reference_size=4)
    evaluator.evaluate(None, EVERY_ENCODING[:10])
    evaluator.evaluate(None, EVERY_ENCODING)
    evaluator.evaluate(None, list(reversed(EVERY_ENCODING)))
    for m in evaluator.members:
        assert len(m.asked) == len(set(m.asked)) == len(NETWORKS)  # reference and all networks, once each
        assert all(SPACE.canonical(a) == a for a in m.asked)


def test_a_new_supernet_drops_the_cached_scores(nas_kit):
    evaluator = fusion(nas_kit, [member(1.0, "a")], reference_size=4)
    evaluator.evaluate(None, NETWORKS[:2])
    asked = len(evaluator.members[0].asked)
    evaluator.evaluate(torch.nn.Identity(), NETWORKS[:2])
    assert len(evaluator.members[0].asked) == 2 * asked


def test_a_nan_score_counts_as_the_worst(nas_kit):
    evaluator = fusion(nas_kit, [member(1.0, "nan")])
    scores = evaluator.evaluate(None, NETWORKS)
    assert scores[0] == min(scores) and all(math.isfinite(s) for s in scores)


def test_the_reference_is_seeded_by_the_run(nas_kit):
    big = [member(1.0, "a")]
    first = fusion(nas_kit, big, reference_size=6).reference_archs()
    again = fusion(nas_kit, big, reference_size=6).reference_archs()
    other = nas_kit.build("evaluator", {"name": "rank-fusion", "reference_size": 6, "members": big}, config={"seed": 5}, plugins={"known": KnownPlugin()}).reference_archs()
    assert first == again and len(set(first)) == 6
    assert first != other


def test_accuracy_can_be_a_member_and_lends_its_recalibration_batches(tiny_run):
    context = tiny_run.context
    spec = {"name": "rank-fusion", "members": [{"weight": 1, "evaluator": {"name": "accuracy", "bn_recal_batches": 2, "batch_size": 16}},
                                              {"weight": 1, "evaluator": {"name": "accuracy", "metric": "loss", "bn_recal_batches": 1, "batch_size": 16}}]}
    evaluator = context.build("evaluator", spec)
    batches = evaluator.recalibration_batches()
    assert len(batches) == 2 and all(torch.equal(a, b) for a, b in zip(batches, evaluator.members[0].recalibration_batches()))
    scores = evaluator.evaluate(tiny_run.supernet, [(1, 2, 1), (0, 0, 0)])
    assert all(0 <= s <= 1 for s in scores)


def test_a_weight_zero_member_does_not_lend_its_batches_while_a_scored_member_recalibrates(tiny_run):
    context = tiny_run.context
    unscored = {"weight": 0, "evaluator": {"name": "accuracy", "bn_recal_batches": 3, "batch_size": 16}}
    scored = {"weight": 1, "evaluator": {"name": "accuracy", "bn_recal_batches": 1, "batch_size": 16}}
    evaluator = context.build("evaluator", {"name": "rank-fusion", "members": [unscored, scored]})
    assert len(evaluator.recalibration_batches()) == 1
    alone = context.build("evaluator", {"name": "rank-fusion", "members": [unscored, {"weight": 1, "evaluator": {"name": "macs"}}]})
    assert len(alone.recalibration_batches()) == 3  # no scored member recalibrates: the subnet still gets statistics


def test_the_loss_metric_is_the_negative_mean_cross_entropy(tiny_run):
    context, supernet = tiny_run.context, tiny_run.supernet
    by_loss = context.build("evaluator", {"name": "accuracy", "metric": "loss", "bn_recal_batches": 0, "batch_size": 7})
    assert by_loss.metric_name == "neg_val_loss"
    data = by_loss.data()
    arch = (1, 2, 1)
    supernet.eval()
    with torch.no_grad():
        expected = -float(torch.nn.functional.cross_entropy(supernet(data.images, arch), data.labels))
    assert by_loss.evaluate(supernet, [arch])[0] == pytest.approx(expected, rel=1e-5)
    by_accuracy = context.build("evaluator", {"name": "accuracy", "bn_recal_batches": 0})
    assert by_accuracy.metric_name == "val_acc" and 0 <= by_accuracy.evaluate(supernet, [arch])[0] <= 100


def test_bad_fusion_options_are_config_errors(nas_kit):
    with pytest.raises(ConfigError, match=r"evaluator\.members\.0\.evaluator\.name: .*'nowhere'"):
        fusion(nas_kit, [{"weight": 1, "evaluator": {"name": "nowhere"}}])
    with pytest.raises(ConfigError, match=r"evaluator\.members\.0\.evaluator\.whch: unknown key"):
        fusion(nas_kit, [{"weight": 1, "evaluator": {"name": "known", "whch": "a"}}])
    with pytest.raises(ConfigError, match="at least one member needs a weight above 0"):
        fusion(nas_kit, [member(0.0)])
    with pytest.raises(ConfigError, match=r"members\.0\.weight"):
        fusion(nas_kit, [member(-1.0)])


def test_config_check_names_the_unknown_member_in_one_line(tmp_path):
    path = tmp_path / "fusion.yaml"
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\n"
        "evaluator:\n  name: rank-fusion\n  members:\n"
        "    - {weight: 1, evaluator: {name: accuracy}}\n"
        "    - {weight: 1, evaluator: {name: accuracyy}}\n"
    )
    proc = nas("config", "check", str(path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: {path}: evaluator.members.1.evaluator.name: ") and "accuracyy" in lines[0], lines[0]
