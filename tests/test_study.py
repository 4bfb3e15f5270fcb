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
    limits = the_study.samples()["limits"]
    assert shipped["search"]["constraints"]["max_flops"] in [round(limit["max_macs"]) for limit in limits]


def test_samples_and_limits_are_reproduced_from_the_spec(tmp_path, shared_data):
    """The committed samples and MACs limits follow from the spec's seeds alone."""
    import json

    committed = json.loads((REPO / "benchmarks" / "results" / "study" / "samples.json").read_text())
    assert study.Study(results=tmp_path / "results", runs=tmp_path / "runs").samples() == committed
