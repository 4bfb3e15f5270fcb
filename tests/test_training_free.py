"""Training-free evaluators (``Evaluator.reads_supernet`` False): ``nas run`` trains no supernet,
search, export and rank work on the freshly built one when there is no checkpoint, and the
exported network says its weights are initial. Tiny stand-in space, seconds each."""

from __future__ import annotations

import json

import pytest

from nas_core import commands
from nas_core.checkpoint import CHECKPOINT_NAME
from nas_core.errors import CheckpointError
from nas_test_helpers import REPO, nas, tiny_overrides

NO_ONNX = {"export": {"onnx": False}}
FUSION = {"name": "rank-fusion", "reference_size": 6, "members": [
    {"weight": 0, "evaluator": {"name": "accuracy", "bn_recal_batches": 1}},
    {"weight": 1, "evaluator": {"name": "depth"}},
    {"weight": 0.5, "evaluator": {"name": "macs"}},
]}


@pytest.mark.parametrize("name, reads", [("accuracy", True), ("macs", False), ("params", False), ("depth", False)])
def test_built_in_evaluators_say_whether_they_read_the_trained_supernet(nas_kit, name, reads):
    assert nas_kit.build("evaluator", {"name": name}).reads_supernet is reads


def test_a_fusion_reads_the_supernet_iff_a_scored_member_does(nas_kit):
    assert nas_kit.build("evaluator", FUSION).reads_supernet is False  # the accuracy member has weight 0
    members = [dict(m) for m in FUSION["members"]]
    members[0]["weight"] = 0.5
    assert nas_kit.build("evaluator", {**FUSION, "members": members}).reads_supernet is True


def test_run_with_a_training_free_evaluator_trains_nothing_and_exports_initial_weights(nas_kit, capsys):
    run, recorder = nas_kit.open({**NO_ONNX, "evaluator": FUSION})
    outcome = commands.run_all(run)
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the console width
    assert "evaluator 'rank-fusion' (depth, macs) is training-free" in printed and "no supernet training" in printed
    assert "initial weights" in printed
    assert not (run.run_dir / CHECKPOINT_NAME).exists() and not (run.run_dir / "metrics.jsonl").exists()
    assert recorder.count("nas_train_start") == 0
    assert (run.run_dir / "search.json").is_file()
    summary = json.loads((run.run_dir / f"export-{outcome['search']['arch']}" / "arch.json").read_text())
    assert summary["weights"] == outcome["export"]["weights"] == "initial"


def test_a_layer_additive_run_over_a_training_free_member_names_its_member(nas_kit, capsys):
    run, _ = nas_kit.open({**NO_ONNX, "evaluator": {"name": "layer-additive", "fit_size": 8, "member": {"name": "depth"}}})
    outcome = commands.run_all(run)
    printed = " ".join(capsys.readouterr().out.split())
    assert "evaluator 'layer-additive' (depth) is training-free" in printed
    assert outcome["export"]["weights"] == "initial" and not (run.run_dir / CHECKPOINT_NAME).exists()


def test_run_with_an_evaluator_that_reads_the_supernet_still_trains(nas_kit, capsys):
    run, recorder = nas_kit.open(NO_ONNX)  # the kit's default evaluator: accuracy
    outcome = commands.run_all(run)
    assert "training-free" not in capsys.readouterr().out
    assert (run.run_dir / CHECKPOINT_NAME).is_file() and recorder.count("nas_train_start") == 1
    assert outcome["export"]["weights"] == "supernet"


def test_search_without_a_checkpoint_needs_a_training_free_evaluator(nas_kit):
    result = nas_kit.search({"evaluator": {"name": "depth"}})
    assert result.search.best.arch and (result.run_dir / "search.json").is_file()
    assert not (result.run_dir / CHECKPOINT_NAME).exists()
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        nas_kit.search()  # accuracy: nothing to score without the trained supernet


def test_a_training_free_evaluator_still_loads_a_checkpoint_that_exists_or_is_given(nas_kit):
    trained = nas_kit.train(NO_ONNX)
    run, _ = nas_kit.open({**NO_ONNX, "run_dir": str(trained.run_dir), "evaluator": {"name": "depth"}})
    assert commands.export(run, "120")["weights"] == "supernet"
    elsewhere, _ = nas_kit.open({**NO_ONNX, "evaluator": {"name": "depth"}})
    summary = commands.export(elsewhere, "120", checkpoint=str(trained.run_dir / CHECKPOINT_NAME))
    assert summary["weights"] == "supernet"
    missing, _ = nas_kit.open({**NO_ONNX, "evaluator": {"name": "depth"}})
    with pytest.raises(CheckpointError, match="checkpoint not found"):  # an explicit --checkpoint must exist
        commands.export(missing, "120", checkpoint=str(missing.run_dir / "nowhere.pt"))


def test_search_without_a_checkpoint_is_one_line_for_an_evaluator_that_reads_it(tmp_path):
    proc = nas("search", str(REPO / "tests" / "base.yaml"), *tiny_overrides(tmp_path / "empty"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith(f"empty/{CHECKPOINT_NAME}: checkpoint not found"), lines[0]
