"""The ranking study resumes: finished units are skipped, unfinished ones go to the machine."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import pytest

from nas_test_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import study  # noqa: E402


class QueueCalled(Exception):
    pass


@pytest.fixture
def no_machine(monkeypatch):
    """Any unit that would really run asks the machine queue first; make that call visible."""

    @contextmanager
    def machine(label):
        raise QueueCalled(label)
        yield

    monkeypatch.setattr(study, "machine", machine)


def test_finished_units_are_skipped_and_unfinished_ones_run(tmp_path, shared_data, no_machine):
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    results = tmp_path / "results"
    study.write_json(results / "train" / "spos-s0.json", {"finished": True, "marker": "kept"})
    study.write_json(results / "methods" / "spos-s0.json", {"finished": True, "marker": "kept"})
    assert the_study.train("spos", 0)["marker"] == "kept"
    assert the_study.evaluate("spos", 0)["marker"] == "kept"

    study.write_json(results / "train" / "spos-s0.json", {"finished": False, "sittings": []})
    with pytest.raises(QueueCalled, match="train spos seed 0"):
        the_study.train("spos", 0)
    with pytest.raises(QueueCalled, match="train fairnas seed 1"):
        the_study.train("fairnas", 1)


def test_budget_is_counted_in_path_images_of_the_sampler(tmp_path, shared_data):
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    budget = the_study.spec["budget_path_images"]
    batch = the_study.spec["base"]["train"]["batch_size"]
    spos = the_study.training_config("spos", 0)["train"]["max_steps"]
    fair = the_study.training_config("fairnas", 0)["train"]["max_steps"]
    assert spos * batch >= budget > (spos - 1) * batch
    assert fair * batch * 3 >= budget > (fair - 1) * batch * 3  # FairNAS trains one path per op: 3 per step here


def test_the_study_measures_the_main_job_as_shipped(tmp_path, shared_data):
    """The study's `quickstart` method is configs/quickstart.yaml: same recipe, budget, evaluator
    and searcher, so its REPORT numbers are the main job's (this fails when the two drift)."""
    import yaml

    shipped = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    measured = the_study.method_config("quickstart", 0)
    for section in ("space", "sampler", "evaluator", "plugins"):
        assert measured[section] == shipped[section], section
    for key in ("batch_size", "optimizer", "scheduler"):
        assert measured["train"][key] == shipped["train"][key], key
    assert measured["search"]["searcher"] == shipped["search"]["searcher"]
    assert measured["data"]["val_subset"] == shipped["data"]["val_subset"]
    train_images = 50000 - shipped["data"]["val_size"]
    epochs_trained = measured["train"]["max_steps"] * measured["train"]["batch_size"] / train_images
    assert abs(epochs_trained - shipped["train"]["epochs"]) < 0.01
    alone = the_study.method_config("quickstart-accuracy", 0)  # its supernet member, scored alone
    member = next(m["evaluator"] for m in shipped["evaluator"]["members"] if m["evaluator"]["name"] == "accuracy")
    assert alone["evaluator"] == {**alone["evaluator"], **member}
    assert alone["data"]["val_subset"] == shipped["data"]["val_subset"]
    assert alone["run_dir"] == measured["run_dir"]  # the same trained supernet
    limits = the_study.samples()["limits"]
    assert shipped["search"]["constraints"]["max_flops"] in [round(limit["max_macs"]) for limit in limits]


def test_samples_and_limits_are_reproduced_from_the_spec(tmp_path, shared_data):
    """The committed samples and MACs limits follow from the spec's seeds alone."""
    import json

    committed = json.loads((REPO / "benchmarks" / "results" / "study" / "samples.json").read_text())
    assert study.Study(results=tmp_path / "results", runs=tmp_path / "runs").samples() == committed


def test_every_training_in_the_spec_builds_and_reports_its_paths_per_step(tmp_path, shared_data):
    """Each training of study.yaml is a valid run (config, plugins, compatibility checks as
    `nas config check` does them) whose sampler says how many paths a step trains, and whose
    step count is the budget in those path-images. A typo in a plugin option, a combination
    the engine refuses or a sampler that stops reporting paths_per_step fails here, not hours
    into the study."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    expected = {"spos": 1, "fairnas": 3, "sandwich": 4, "spos-les": 1, "fairnas-les": 3, "cream": 1, "pinas": 2, "fairnas-les-cream": 3}
    for training, entry in the_study.spec["trainings"].items():
        config = the_study.training_config(training, 0)
        run = the_study.run_for(config, tmp_path / "check" / training)
        run.check()
        paths = the_study.paths_per_step(training)
        assert paths == run.sampler.paths_per_step >= 1, training
        if training in expected:
            assert paths == expected[training], training
        budget = entry.get("budget_path_images", the_study.spec["budget_path_images"])
        steps, batch = config["train"]["max_steps"], config["train"]["batch_size"]
        assert steps * batch * paths >= budget > (steps - 1) * batch * paths, training
    for method, entry in the_study.spec["methods"].items():
        if entry.get("config"):  # without a patch a method's config is its training's, checked above
            the_study.run_for(the_study.method_config(method, 0), tmp_path / "check-methods" / method).check()


def test_seed_plugins_are_in_the_study_with_their_components(tmp_path, shared_data):
    """The issue-13 entries are the methods they claim to be (names and options as the plugins
    register them), so the study measures ScarletNAS, Cream, Pi-NAS and the combination."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    les = the_study.training_config("fairnas-les", 0)
    assert les["sampler"]["name"] == "fairnas" and les["regularizers"] == [{"name": "les"}]
    cream = the_study.training_config("cream", 0)
    assert (cream["sampler"]["name"], cream["teacher"]["name"], cream["regularizers"]) == ("cream", "cream", [{"name": "cream"}])
    assert cream["teacher"]["admission_data"] == "heldout"
    pinas = the_study.training_config("pinas", 0)
    assert pinas["train"]["label_loss"] == "none" and pinas["evaluator"]["name"] == "knn"
    combo = the_study.training_config("fairnas-les-cream", 0)
    assert combo["sampler"]["name"] == "fairnas" and [r["name"] for r in combo["regularizers"]] == ["les", "cream"]
    assert combo["teacher"]["name"] == "cream"
    assert the_study.method_config("cream-board", 0)["search"]["searcher"]["name"] == "cream-board"
    assert the_study.method_config("pinas-probe", 0)["evaluator"]["name"] == "linear-probe"


def test_a_killed_sitting_counts_its_time_up_to_its_last_checkpoint(tmp_path):
    """Train seconds stay complete across kills: the open sitting is closed at the checkpoint's
    step and write time; a sitting that reached no checkpoint adds nothing."""
    import os
    import time

    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"x")
    started = time.time() - 100
    os.utime(checkpoint, (started + 60, started + 60))
    record = {"sittings": [], "open_sitting": {"from_step": 0, "started_unix": started}}
    closed = study.Study._close_interrupted_sitting(record, checkpoint, 500)
    assert "open_sitting" not in closed
    assert closed["sittings"] == [{"from_step": 0, "to_step": 500, "interrupted": True, "seconds": pytest.approx(60, abs=1)}]
    untouched = study.Study._close_interrupted_sitting({"sittings": [], "open_sitting": {"from_step": 500, "started_unix": started}}, checkpoint, 500)
    assert untouched == {"sittings": []}


def test_rank_fusion_weights_are_chosen_on_tuning_and_a_useless_supernet_gets_none():
    """A supernet that knows the truth earns weight and raises tau over the priors alone; one that
    scores at random on tuning is left out (weight 0), so the report's fusion equals the priors'."""
    import numpy as np
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    truth = {s: list(rng.normal(size=120)) for s in ("tuning", "report")}
    prior = {s: list(np.array(truth[s]) + rng.normal(scale=1.5, size=120)) for s in truth}
    grid = [0, 0.5, 1, 2]
    informed = study.rank_fusion_on_tuning({"prior": prior, "supernet": truth}, truth, grid)
    assert informed["weights"]["supernet"] > 0
    tau = {name: kendalltau(scores["report"], truth["report"])[0] for name, scores in (("fused", informed["scores"]), ("prior", prior))}
    assert tau["fused"] > tau["prior"] + 0.1, tau
    noise = {s: list(rng.normal(size=120)) for s in truth}
    useless = study.rank_fusion_on_tuning({"prior": prior, "supernet": noise}, truth, grid)
    assert useless["weights"]["supernet"] == 0  # seeded: any weight on noise lowers this tuning tau
    assert kendalltau(useless["scores"]["report"], prior["report"])[0] == pytest.approx(1.0)


def test_the_load_of_a_training_counts_only_sittings_that_recorded_it():
    """A killed sitting is closed without a load record; the summary must not fail on it."""
    sittings = [{"from_step": 0, "to_step": 5, "interrupted": True, "seconds": 9.0},
                {"from_step": 5, "to_step": 9, "seconds": 7.0, "load_mean": 3.0, "load_max": 4.0}]
    assert study.mean_load(sittings) == 3.0
    assert study.mean_load(sittings[:1]) is None


def test_scores_are_averaged_per_identity_count_over_both_samples():
    rows = {"m (seed 0)": {"scores": {"tuning": [1.0, 3.0], "report": [5.0]}},
            "macs": {"scores": {"tuning": [0.0, 0.0], "report": [0.0]}, "reference": True}}
    groups = {"tuning": [0, 2], "report": [0]}
    truth = {"tuning": [90.0, 80.0], "report": [92.0]}
    by = study.scores_by_identities(rows, groups, truth)
    assert by == {"ground truth": {"0": 91.0, "2": 80.0}, "m (seed 0)": {"0": 3.0, "2": 3.0}}
