"""The ranking study resumes: finished units are skipped, unfinished ones go to the machine."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import pytest

from nas_core.checked_json import write_json_atomic
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
    write_json_atomic({"finished": True, "marker": "kept"}, results / "train" / "spos-s0.json")
    write_json_atomic({"finished": True, "marker": "kept"}, results / "methods" / "spos-s0.json")
    assert the_study.train("spos", 0)["marker"] == "kept"
    assert the_study.evaluate("spos", 0)["marker"] == "kept"

    write_json_atomic({"finished": False, "sittings": []}, results / "train" / "spos-s0.json")
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
    """The study's `quickstart` method is configs/quickstart.yaml: same evaluator and searcher,
    training-free (`training: none`, as `nas run` trains no supernet for it), so its REPORT
    numbers are the main job's; and the config's `train` section (used when its evaluator is
    switched to one that reads the supernet) is the study's `quickstart` training, the supernet
    of `quickstart-v1` and `quickstart-accuracy`. This fails when they drift."""
    import yaml

    shipped = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    measured = the_study.method_config("quickstart", 0)
    for section in ("space", "evaluator", "plugins"):
        assert measured[section] == shipped[section], section
    assert measured["search"]["searcher"] == shipped["search"]["searcher"]
    assert measured["data"]["val_subset"] == shipped["data"]["val_subset"]
    assert the_study.spec["methods"]["quickstart"]["training"] == study.UNTRAINED
    assert not the_study.run_for(measured, tmp_path / "check").evaluator.reads_supernet
    recipe = the_study.training_config("quickstart", 0)
    assert recipe["sampler"] == shipped["sampler"]
    for key in ("batch_size", "optimizer", "scheduler"):
        assert recipe["train"][key] == shipped["train"][key], key
    train_images = 50000 - shipped["data"]["val_size"]
    epochs_trained = recipe["train"]["max_steps"] * recipe["train"]["batch_size"] / train_images
    assert abs(epochs_trained - shipped["train"]["epochs"]) < 0.01
    v1 = the_study.method_config("quickstart-v1", 0)
    alone = the_study.method_config("quickstart-accuracy", 0)  # v1's supernet member, scored alone
    member = next(m["evaluator"] for m in v1["evaluator"]["members"] if m["evaluator"]["name"] == "accuracy")
    assert alone["evaluator"] == {**alone["evaluator"], **member}
    assert alone["data"]["val_subset"] == v1["data"]["val_subset"] == shipped["data"]["val_subset"]
    assert alone["run_dir"] == v1["run_dir"] == recipe["run_dir"]  # the same trained supernet
    limits = the_study.samples()["limits"]
    assert shipped["search"]["constraints"]["max_flops"] in [round(limit["max_macs"]) for limit in limits]


def test_the_shipped_supernet_config_is_the_studys_best_supernet_recipe(tmp_path, shared_data):
    """configs/supernet.yaml (the README's trained-supernet search) trains and scores exactly as
    the study's `sandwich-additive` unit it quotes; this fails when the two drift."""
    import yaml

    shipped = yaml.safe_load((REPO / "configs" / "supernet.yaml").read_text())
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    recipe = the_study.method_config("sandwich-additive", 0)
    for section in ("space", "sampler", "regularizers", "plugins", "teacher", "evaluator"):
        assert recipe.get(section) == shipped.get(section), section
    for key in ("batch_size", "optimizer", "scheduler", "max_steps"):
        assert recipe["train"][key] == shipped["train"][key], key
    assert recipe["search"]["searcher"] == shipped["search"]["searcher"]
    assert recipe["data"] == shipped["data"]
    limits = the_study.samples()["limits"]
    assert shipped["search"]["constraints"]["max_flops"] in [round(limit["max_macs"]) for limit in limits]


def test_a_method_without_training_is_charged_none_and_must_be_training_free(tmp_path, shared_data, monkeypatch):
    """`training: none`: nothing is trained (no queue, no train record, 0 train seconds in the
    report); such a method whose evaluator reads the supernet is refused before it scores."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    assert the_study.train(study.UNTRAINED, 0) == {}  # no_machine is not needed: the queue is never asked
    assert not (tmp_path / "results" / "train").exists()

    @contextmanager
    def machine(label):
        yield

    monkeypatch.setattr(study, "machine", machine)
    the_study.spec["methods"]["untrained-accuracy"] = {"training": study.UNTRAINED}  # the base evaluator: accuracy
    with pytest.raises(SystemExit, match="methods.untrained-accuracy: training 'none', but evaluator 'accuracy' reads"):
        the_study.evaluate("untrained-accuracy", 0)


def test_each_trained_method_scores_in_its_own_folder(tmp_path, shared_data, monkeypatch):
    """`sandwich-additive` and `sandwich-additive-naswot` score one trained supernet; the first
    one's layer-additive fit, kept in its run folder, must not be found by the second (its
    evaluation seconds would then leave the fit out): each evaluation runs in its own folder."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")

    class Captured(Exception):
        pass

    building = the_study.run_for  # still builds the sampler that counts paths per step

    def run_for(config, where):
        if not where.name.startswith("eval-"):
            return building(config, where)
        raise Captured(config["run_dir"], str(where))

    @contextmanager
    def machine(label):
        yield

    monkeypatch.setattr(study, "machine", machine)
    monkeypatch.setattr(study.torch, "set_num_threads", lambda threads: None)
    monkeypatch.setattr(the_study, "run_for", run_for)
    folders = []
    for method in ("sandwich-additive", "sandwich-additive-naswot"):
        with pytest.raises(Captured) as captured:
            the_study.evaluate(method, 1)
        run_dir, where = captured.value.args
        assert run_dir == where == str(tmp_path / "runs" / "sandwich-s1" / f"eval-{method}")
        folders.append(run_dir)
    assert folders[0] != folders[1]


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


def test_a_method_that_differs_only_in_its_search_reuses_a_finished_siblings_scores(tmp_path, shared_data):
    """`cream-board` scores every network as `cream` does (same supernet, same evaluator): once
    `cream` has finished, its scores are copied instead of spending ~25 minutes again. A different
    evaluator (`pinas-probe` beside `pinas`), another seed or an unfinished record is never reused."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    methods = tmp_path / "results" / "methods"
    scores = {"tuning": [1.0, 2.0], "report": [3.0]}
    write_json_atomic({"finished": False, "scores": scores}, methods / "cream-s0.json")
    assert the_study.shared_scores("cream-board", 0) is None
    write_json_atomic({"finished": True, "scores": scores}, methods / "cream-s0.json")
    assert the_study.shared_scores("cream-board", 0) == ("cream", scores)
    assert the_study.shared_scores("cream", 0) is None  # cream-board has not finished
    assert the_study.shared_scores("cream-board", 1) is None
    write_json_atomic({"finished": True, "scores": scores}, methods / "pinas-s0.json")
    assert the_study.shared_scores("pinas-probe", 0) is None
    # training-free methods too: the main job's earlier search budget scores as the main job does
    write_json_atomic({"finished": True, "scores": scores}, methods / "quickstart-v2-s1.json")
    assert the_study.shared_scores("quickstart", 1) == ("quickstart-v2", scores)
    assert the_study.shared_scores("quickstart", 0) is None


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


def test_the_board_over_training_is_judged_by_canonical_ground_truth_against_a_random_path():
    """Known ground truth, keyed by canonical networks only (so a lookup that skips ``canonical``
    fails): per snapshot the entries' mean, the top entry's (best admission accuracy, here not
    the best ground truth) and the mean admission accuracy. The random-path baseline averages over
    encodings, as a uniform sampler draws them: with the number of identities as ground truth it
    is 8 layers x 1/3, above the mean over distinct networks (those with identities have several
    encodings)."""
    import numpy as np

    from nas_core.ranking import distinct_networks
    from nas_core.spaces.nas_bench_macro import nas_bench_macro

    space = nas_bench_macro(width=0.25)
    truth = {"22222222": 94.0, "11111111": 92.0, "22220020": 90.0}  # 22202020 is 22220020 with its identity moved
    history = [{"step": 250, "archs": [[2] * 8, [1] * 8], "acc": [70.0, 60.0]},
               {"step": 500, "archs": [[2, 2, 2, 0, 2, 0, 2, 0], [1] * 8, [2] * 8], "acc": [75.0, 72.0, 71.0]}]
    rows = study.board_over_training(space, truth, history)
    assert [(r["step"], r["board_mean_ground_truth"], r["top_ground_truth"]) for r in rows] == [(250, 93.0, 94.0), (500, 92.0, 90.0)]
    assert [r["board_mean_admission_acc"] for r in rows] == [65.0, pytest.approx(218 / 3)]
    assert rows[1]["archs"] == ["22202020", "11111111", "22222222"]

    identities = {space.encode(n): float(space.num_identities(n)) for n in distinct_networks(space)}
    assert study.random_path_ground_truth(space, identities) == pytest.approx(8 / 3)
    assert np.mean(list(identities.values())) < 8 / 3 - 0.1


def test_the_study_records_a_teachers_board_history_and_only_then(tmp_path, shared_data):
    from types import SimpleNamespace

    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    history = [{"step": 250, "archs": [[2] * 8, [0] * 8], "acc": [80.0, 40.0]}]
    record = the_study.board_history(SimpleNamespace(teacher=SimpleNamespace(board_history=history)))
    table = the_study.table
    assert record["board_history"][0]["board_mean_ground_truth"] == pytest.approx((table["22222222"].mean_acc + table["00000000"].mean_acc) / 2)
    assert record["board_history"][0]["top_ground_truth"] == table["22222222"].mean_acc
    assert 85 < record["random_path_ground_truth"] < 95
    assert the_study.board_history(SimpleNamespace(teacher=None)) == {}
    assert the_study.board_history(SimpleNamespace(teacher=SimpleNamespace(board_history=[]))) == {}


def test_the_board_table_shows_at_most_eight_evenly_spaced_snapshots_per_training():
    """One table block per training and seed (``cream`` and ``cream-board`` share one supernet),
    first and last snapshots kept; no block without a history."""
    history = [{"step": 250 * (i + 1), "board_mean_ground_truth": 91.0, "top_ground_truth": 92.0} for i in range(20)]
    row = {"training": "cream", "seed": 0, "board_history": history, "random_path_ground_truth": 90.25}
    reference = {"scores": {}, "reference": True}
    lines = study.board_history_lines({"cream (seed 0)": row, "cream-board (seed 0)": dict(row), "macs": reference})
    table = [line for line in lines if line.startswith("| cream (seed 0) |")]
    steps = [int(line.split("|")[2]) for line in table]
    assert len(table) == 8 and len(lines) == 8 + 5
    assert steps[0] == 250 and steps[-1] == 5000 and steps == sorted(steps)
    assert all(line.endswith("| 91.00 | 92.00 | 90.25 |") for line in table)
    short = study.board_history_lines({"cream (seed 0)": {**row, "board_history": history[:3]}})
    assert [int(line.split("|")[2]) for line in short if line.startswith("| cream")] == [250, 500, 750]
    assert study.board_history_lines({"macs": reference}) == []


def test_component_metrics_over_training_come_from_finished_training_records(tmp_path, shared_data):
    """The mechanism tables (Cream's meta-network, LES drift, Pi-NAS feature spread) are read from
    the committed training curves: only finished trainings, only ``component/...`` metrics, at
    most eight evenly spaced points with the first and last kept."""
    the_study = study.Study(results=tmp_path / "results", runs=tmp_path / "runs")
    train = tmp_path / "results" / "train"
    curve = [{"step": 100 * (i + 1), "loss": 2.0, "cream/meta_rho": 0.4 + i / 100} for i in range(20)]
    write_json_atomic({"training": "cream", "seed": 0, "finished": True, "curve": curve}, train / "cream-s0.json")
    write_json_atomic({"training": "cream", "seed": 1, "finished": False, "curve": curve}, train / "cream-s1.json")
    write_json_atomic({"training": "spos", "seed": 0, "finished": True, "curve": [{"step": 100, "loss": 2.0}]}, train / "spos-s0.json")
    curves = study.component_curves(the_study)
    assert list(curves) == ["cream (seed 0)"]
    points = curves["cream (seed 0)"]
    assert len(points) == 8 and points[0] == {"step": 100, "cream/meta_rho": 0.4} and points[-1]["step"] == 2000
    lines = study.component_curve_lines(curves)
    assert "| step | cream/meta_rho |" in lines and "| 2000 | 0.59 |" in lines


def test_a_second_seed_is_paired_with_the_baselines_second_seed_once_it_is_scored():
    scored = {"scores": {"tuning": [1.0], "report": [1.0]}}
    rows = {"spos (seed 0)": scored, "fairnas (seed 1)": {**scored, "seed": 1}}
    assert study.baseline_row(rows, "spos", 1) == "spos (seed 0)"
    assert study.unmatched_seed({"seed": 1, "baseline_row": "spos (seed 0)"}) == " (vs spos (seed 0))"
    rows["spos (seed 1)"] = {"scores": {"tuning": [1.0]}, "seed": 1}      # tuning only: not a REPORT baseline
    assert study.baseline_row(rows, "spos", 1) == "spos (seed 0)"
    rows["spos (seed 1)"] = {**scored, "seed": 1}
    assert study.baseline_row(rows, "spos", 1) == "spos (seed 1)"
    assert study.unmatched_seed({"seed": 1, "baseline_row": "spos (seed 1)"}) == ""
    assert study.baseline_row({"fairnas (seed 0)": scored}, "spos", 0) is None


def test_seeds_of_a_method_are_compared_with_each_other_and_averaged():
    truth = [float(i) for i in range(40)]
    noisy = [t + (7 if i % 3 == 0 else -7) for i, t in enumerate(truth)]          # seed 0 errs one way
    other = [t + (-7 if i % 3 == 0 else 7) * (i % 2) for i, t in enumerate(truth)]  # seed 1 errs elsewhere
    rows = {
        "spos (seed 0)": {"method": "spos", "seed": 0, "scores": {"report": noisy}},
        "spos (seed 1)": {"method": "spos", "seed": 1, "scores": {"report": other}},
        "fairnas (seed 0)": {"method": "fairnas", "seed": 0, "scores": {"report": truth}},
        "spos (seed 0) + naswot (rank avg)": {"method": "spos", "seed": 2, "fusion": True, "scores": {"report": truth}},
    }
    agreement = study.seed_agreement(rows, truth, resamples=200)
    assert list(agreement) == ["spos"]                       # one seed, or a fusion, is not a seed
    spos = agreement["spos"]
    assert spos["seeds"] == [0, 1]
    assert spos["tau_between_seeds"] < min(spos["tau_per_seed"])
    assert spos["seed_average_tau"] > max(spos["tau_per_seed"])     # independent errors average out
    assert spos["seed_average_ci95"][0] <= spos["seed_average_tau"] <= spos["seed_average_ci95"][1]
    assert spos["seed_average_vs_first_seed"]["difference"] > 0
    assert "| spos | 0, 1 |" in "\n".join(study.seed_agreement_lines(agreement, "spos"))


def test_a_method_with_two_seeds_is_compared_with_the_baseline_over_the_same_seeds():
    truth = [float(i) for i in range(40)]
    noisy = [t + (7 if i % 3 == 0 else -7) for i, t in enumerate(truth)]
    other = [t + (-7 if i % 3 == 0 else 7) * (i % 2) for i, t in enumerate(truth)]
    slightly = [t + (3 if i % 4 == 0 else -3) for i, t in enumerate(truth)]
    rows = {
        "spos (seed 0)": {"method": "spos", "seed": 0, "scores": {"report": noisy}},
        "spos (seed 1)": {"method": "spos", "seed": 1, "scores": {"report": other}},
        "fairnas (seed 0)": {"method": "fairnas", "seed": 0, "scores": {"report": truth}},      # better on seed 0
        "fairnas (seed 1)": {"method": "fairnas", "seed": 1, "scores": {"report": noisy}},      # worse on seed 1
        "cream (seed 1)": {"method": "cream", "seed": 1, "scores": {"report": slightly}},
        "cream (seed 2)": {"method": "cream", "seed": 2, "scores": {"report": slightly}},       # spos has no seed 2
    }
    agreement = study.seed_agreement(rows, truth, resamples=300, baseline="spos")
    assert "vs_baseline_over_seeds" not in agreement["spos"] and "vs_baseline_over_seeds" not in agreement["cream"]
    diff = agreement["fairnas"]["vs_baseline_over_seeds"]
    tau = lambda scores: study.kendalltau(scores, truth)[0]
    assert diff["per_seed"] == pytest.approx([1 - tau(noisy), tau(noisy) - tau(other)])
    assert diff["per_seed"][0] > 0 > diff["per_seed"][1]                   # the seeds disagree in sign
    assert diff["difference"] == pytest.approx(sum(diff["per_seed"]) / 2)
    assert diff["mean_tau"] == pytest.approx((1 + tau(noisy)) / 2)
    assert diff["baseline_mean_tau"] == pytest.approx((tau(noisy) + tau(other)) / 2)
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]
    table = "\n".join(study.seed_agreement_lines(agreement, "spos"))
    assert "Methods against spos over the same seeds" in table and "| fairnas | 0, 1 |" in table
    assert "| cream | 1, 2 |" in table.split("Methods against spos")[0] and "| cream |" not in table.split("Methods against spos")[1]


def test_a_fused_supernet_with_two_seeds_is_compared_with_the_priors_alone_over_its_seeds():
    """The fusion table's rows of one supernet method on two seeds (each at its own tuning-chosen
    weights) become one mean difference against the priors fused alone; one seed is not enough."""
    truth = [float(i) for i in range(40)]
    priors = [t + (6 if i % 3 == 0 else -6) for i, t in enumerate(truth)]
    better = [t + (2 if i % 5 == 0 else -2) for i, t in enumerate(truth)]
    worse = [t + (9 if i % 2 == 0 else -9) for i, t in enumerate(truth)]
    rows = {
        "naswot + depth (rank avg)": {"reference": True, "fusion": True, "scores": {"report": priors}},
        "sandwich (seed 0)": {"method": "sandwich", "seed": 0, "scores": {"report": truth}},
        "sandwich (seed 1)": {"method": "sandwich", "seed": 1, "scores": {"report": truth}},
        "spos (seed 0)": {"method": "spos", "seed": 0, "scores": {"report": truth}},
        "sandwich (seed 0) + naswot + depth (rank avg)": {"fusion": True, "without": "naswot + depth (rank avg)",
                                                          "supernet_row": "sandwich (seed 0)", "scores": {"report": better}},
        "sandwich (seed 1) + naswot + depth (rank avg)": {"fusion": True, "without": "naswot + depth (rank avg)",
                                                          "supernet_row": "sandwich (seed 1)", "scores": {"report": worse}},
        "spos (seed 0) + naswot + depth (rank avg)": {"fusion": True, "without": "naswot + depth (rank avg)",
                                                      "supernet_row": "spos (seed 0)", "scores": {"report": better}},
    }
    over = study.fusion_over_seeds(rows, truth, resamples=300)
    assert list(over) == ["sandwich"] and over["sandwich"]["seeds"] == [0, 1]
    tau = lambda scores: study.kendalltau(scores, truth)[0]
    diff = over["sandwich"]
    assert diff["per_seed"] == pytest.approx([tau(better) - tau(priors), tau(worse) - tau(priors)])
    assert diff["per_seed"][0] > 0 > diff["per_seed"][1]
    assert diff["difference"] == pytest.approx(sum(diff["per_seed"]) / 2)
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]


def test_a_lever_is_set_beside_its_parent_on_the_same_seed_only():
    """A `pairs` entry compares a lever with the method it changes on each seed both have: the
    two TUNING taus (the adoption rule), the paired REPORT difference, and their agreement."""
    truth = {s: [float(i) for i in range(40)] for s in ("tuning", "report")}
    parent = [t + (6 if i % 3 == 0 else -6) for i, t in enumerate(truth["report"])]
    lever = [t + (2 if i % 5 == 0 else -2) for i, t in enumerate(truth["report"])]
    rows = {
        "base (seed 1)": {"method": "base", "seed": 1, "scores": {"tuning": parent, "report": parent}},
        "more (seed 1)": {"method": "more", "seed": 1, "scores": {"tuning": lever, "report": lever}},
        "more (seed 2)": {"method": "more", "seed": 2, "scores": {"tuning": lever, "report": lever}},  # parent not run on seed 2
        "more (seed 1) + naswot (rank avg)": {"method": "more", "seed": 1, "fusion": True, "scores": {"report": truth["report"]}},
    }
    pairs = study.lever_pairs(rows, [{"lever": "more", "parent": "base"}], truth, resamples=300)
    assert [(p["lever"], p["parent"], p["seed"]) for p in pairs] == [("more", "base", 1)]
    tau = lambda scores: study.kendalltau(scores, truth["report"])[0]
    report = pairs[0]["report"]
    assert (report["lever_tau"], report["parent_tau"]) == pytest.approx((tau(lever), tau(parent)))
    assert report["difference"]["difference"] == pytest.approx(tau(lever) - tau(parent)) and report["difference"]["difference"] > 0
    assert report["agreement_tau"] == pytest.approx(study.kendalltau(lever, parent)[0])
    assert pairs[0]["tuning"]["lever_tau"] > pairs[0]["tuning"]["parent_tau"]
    assert "| more | base | 1 |" in "\n".join(study.lever_pair_lines(pairs))


def test_a_pair_naming_no_method_of_the_spec_is_refused(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("methods: {spos: {training: spos}}\npairs:\n  - {lever: spos-typo, parent: spos}\n")
    with pytest.raises(SystemExit, match=r"spec.yaml: pairs\[0\]: 'spos-typo' is not a method of the spec"):
        study.Study(spec, results=tmp_path / "results", runs=tmp_path / "runs")
