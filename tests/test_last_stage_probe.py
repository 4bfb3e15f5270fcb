"""benchmarks/last_stage_probe.py: its split routes each network to its L6 group's weights, and
both probes run end to end in --quick mode."""

from __future__ import annotations

import itertools
import json
import sys

import pytest

from nas_test_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import last_stage_probe as probe  # noqa: E402


class Marked:
    """A stand-in supernet whose score of any network is its own mark."""

    def __init__(self, mark):
        self.mark = mark


class MarkEvaluator:
    def evaluate(self, net, archs):
        return [net.mark] * len(archs)


class FakeRun:
    evaluator = MarkEvaluator()


def test_each_network_is_scored_by_the_supernet_its_route_gives_it():
    identity_group, op_group = Marked(1.0), Marked(2.0)
    archs = [(0,) * 6 + (c, 0) for c in (0, 1, 2, 0, 2)]
    scores = probe.score_routed(FakeRun(), archs, lambda a: (identity_group, op_group)[a[probe.L6] != 0])
    assert scores == [1.0, 2.0, 2.0, 1.0, 2.0]


def test_the_l6_effect_is_read_from_the_layer_effects_fit():
    keys = ["".join(choices) + "0" for choices in itertools.product("012", repeat=7)]  # every L0-L6, L7 identity
    scores = [float(k[6] != "0") for k in keys]  # only an op at L6 matters, MB3 and MB6 alike
    effect = probe.l6_effect(keys, scores)
    assert effect[0] == pytest.approx(effect[1]) and effect[0] > 1.5


@pytest.mark.parametrize("command", ["split", "standalone"])
def test_the_probe_runs_in_quick_mode(command, shared_data, capsys):
    assert probe.main([command, "--quick"]) == 0
    out_path = capsys.readouterr().out.rsplit("-> ", 1)[1].split()[0]
    result = json.loads(open(out_path).read())
    assert result["command"] == command and "quick" in out_path
    if command == "split":
        assert list(result["variants"]) == ["as trained", "shared, fine-tuned", "split at L6, fine-tuned"]
        for variant in result["variants"].values():
            assert len(variant["scores"]) == result["networks"] and len(variant["l6_effect"]) == 2
    else:
        (pair,) = result["pairs"]
        identity, mb6 = pair["networks"]
        assert identity[6] == "0" and mb6[6] == "2" and identity[:6] == mb6[:6] and identity[7] == mb6[7] == "0"
        assert len(pair["alone"]) == len(pair["ground_truth"]) == len(pair["supernet"]) == 2


def test_a_run_folder_without_a_checkpoint_is_one_error_line_before_any_work(tmp_path, shared_data, monkeypatch):
    def machine(label):
        raise AssertionError("the machine was asked for before the checkpoint was checked")

    monkeypatch.setattr(probe, "machine", machine)
    with pytest.raises(SystemExit, match=r"error: .*checkpoint.pt: no checkpoint \(train the study's sandwich seed 3 there, or name a trained run folder with --run\)"):
        probe.main(["split", "--run", str(tmp_path)])
