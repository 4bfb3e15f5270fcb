"""Latency tables on the tiny space: plan, build and resume, refusal of tables that do not fit,
bad tables, correction fitting on synthetic timings, constraint and objective in search,
export's record, and the CLI's one-line errors.

No assertion here depends on how fast anything ran: measured numbers are only checked to be
positive and finite; what timing-dependent claims there are live in benchmarks/bench_latency.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from torch import nn

from nas_core import commands
from nas_core.api import ChoiceBlock, LayerSpec, OpSpec, SearchSpace, Supernet  # what a third-party space has
from nas_core.config import ConstraintsConfig
from nas_core.errors import ArchitectureError, ConfigError, NasError
from nas_core.latency import build as build_module
from nas_core.latency import correction as corr
from nas_core.latency import runs
from nas_core.latency.check import evaluate, store_fit
from nas_core.latency.plan import make_plan
from nas_core.latency.table import LatencyTable, LatencyTableError
from nas_core.latency.timing import Protocol, Timing, device_name
from nas_core.registry import Registries
from nas_core.search_result import SearchProblem
from nas_core.testing import tiny_space
from nas_test_helpers import REPO, nas

FAST = Protocol(threads=1, repeats=8, contexts=4, warmup=1, warmup_seconds=0.0, passes=1)
"""Enough to exercise the code (12 networks, 2 forward passes each); the numbers mean nothing."""


@pytest.fixture
def table_path(tiny_run, tmp_path):
    path = tmp_path / "tiny.json"
    runs.build(tiny_run, FAST, str(path), progress=False)
    return path


# ------------------------------------------------------------------------------ plan


def test_plan_has_every_op_with_the_input_it_sees():
    plan = make_plan(tiny_space(), batch_size=2)
    assert [len(g) for g in plan.groups] == [1, 3, 3, 3, 1]
    stem, *layers, head = plan.groups
    assert stem[0].input_shape == (2, 3, 8, 8)
    assert [g[0].input_shape for g in layers] == [(2, 8, 8, 8), (2, 8, 8, 8), (2, 16, 4, 4)]
    assert head[0].input_shape == (2, 16, 4, 4)
    # a skip is free only where it computes nothing (layer 1 is stride 2: a strided 1x1 conv)
    assert [g[0].free for g in layers] == [True, False, True]
    assert not any(s.free for g in layers for s in g[1:])
    assert make_plan(tiny_space(), 2).fingerprint == plan.fingerprint
    assert make_plan(tiny_space(width=16), 2).fingerprint != plan.fingerprint
    assert make_plan(tiny_space(num_classes=7), 2).fingerprint != plan.fingerprint


def _registered_spaces():
    from nas_core.plugins import PluginHost

    host = PluginHost()
    return host.registries, [e.name for e in host.registries.search_spaces]


def test_every_registered_space_has_a_plan():
    """The space contract alone gives a plan, for the built-in and every plugin's space."""
    registries, names = _registered_spaces()
    assert {"nas-bench-macro", "scarlet-imagenet", "cream-imagenet", "pinas-resnest"} <= set(names)
    ops = {e.name: e.obj for e in registries.ops}
    small = {"scarlet-imagenet": {"input_size": 32}, "pinas-resnest": {"image_size": 32, "width": 0.25}, "cream-imagenet": {"preset": "cream-14m"}}
    for name in names:
        space = registries.search_spaces.build(name, small.get(name, {}), ops=ops)
        plan = make_plan(space, 1)
        assert len(plan.slots) == 2 + sum(space.num_choices), name
        assert all(len(s.input_shape) == 4 for s in plan.slots), name


class SharedStemBlock(ChoiceBlock):
    """Candidates that share a 1x1 reduction: ``extract`` returns it with the chosen conv."""

    def __init__(self, channels: int):
        super().__init__([nn.Conv2d(channels, channels, k, padding=k // 2) for k in (1, 3, 5)])
        self.shared = nn.Conv2d(channels, channels, 1)

    def forward(self, x, choice):
        return self.candidates[choice](self.shared(x))

    def extract(self, choice):
        return nn.Sequential(self.shared, self.candidates[choice])


class ThirdPartySpace(SearchSpace):
    """A space written against the contract alone (no MBConvSpace): two blocks of plain convs."""

    name = "third-party"
    input_size = (12, 12)
    layers = tuple(LayerSpec(6, 6, 1, tuple(OpSpec.of(f"conv{k}", "conv", kernel=k) for k in (1, 3, 5))) for _ in range(2))

    def build_supernet(self):
        return Supernet(nn.Conv2d(3, 6, 3, padding=1), [SharedStemBlock(6) for _ in self.layers],
                        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), nn.Linear(6, 3))


def test_a_space_written_against_the_contract_gets_a_table(tmp_path, torch_single_thread):
    space = ThirdPartySpace()
    plan = make_plan(space, 1)
    assert [s.input_shape for s in plan.slots] == [(1, 3, 12, 12)] + [(1, 6, 12, 12)] * 7
    table = build_module.build_table(space, "third-party", {}, FAST, tmp_path / "t.json", progress=False)
    assert table.key["choices"] == [3, 3] and table.data["complete"]
    assert all(0 < table.predict_ms(a) < math.inf for a in itertools.product(range(3), repeat=2))
    table.check_fits("third-party", {}, plan, (12, 12), device_name("cpu"))


# ------------------------------------------------------------------------------ build and resume


def test_build_writes_a_complete_keyed_table(table_path, tiny_run):
    table = LatencyTable.load(table_path)
    key = table.key
    assert key["space"] == "tiny" and key["input_size"] == [8, 8] and key["choices"] == [3, 3, 3]
    assert key["device"] == device_name("cpu") and key["threads"] == 1 and key["batch_size"] == 1 and key["backend"] == "torch"
    assert key["versions"]["torch"] and key["space_options"] == {"num_classes": 4, "width": 8}
    assert table.protocol["repeats"] == 8 and table.data["complete"] and "progress" not in table.data
    assert table.data["machine"]["method"] == "in-network"
    layer_entries = list(itertools.chain(*table.data["ops"]["layers"]))
    assert table.data["ops"]["stem"]["samples"] == table.data["ops"]["head"]["samples"] == 24  # every network: 12 x 2
    assert all(e["samples"] == 8 for e in layer_entries)  # every op in 4 networks, 2 passes each
    for e in [table.data["ops"]["stem"], table.data["ops"]["head"], *layer_entries]:
        assert math.isfinite(e["median_ms"]) and 0 < e["median_ms"]
        assert e["p25_ms"] <= e["median_ms"] <= e["p75_ms"] and 0 <= e["preempted"] <= 1
    fastest, slowest = table.bounds()
    all_archs = list(itertools.product(range(3), repeat=3))
    predictions = [table.predict_ms(a) for a in all_archs]
    assert fastest == pytest.approx(min(predictions)) and slowest == pytest.approx(max(predictions))


def test_in_network_schedule_times_every_op_in_every_round():
    archs = build_module.in_network_schedule([3, 2, 4], contexts=5)
    assert len(archs) == 5 * 4
    for r in range(5):
        rounds = archs[4 * r: 4 * r + 4]
        for layer, n in enumerate([3, 2, 4]):
            assert {a[layer] for a in rounds} == set(range(n))
    assert len(set(archs)) > 4  # neighbours differ between rounds


def test_interrupted_build_resumes_where_it_stopped(tiny_run, tmp_path, monkeypatch):
    path = tmp_path / "partial.json"
    real_step = build_module._run_step
    steps = []

    def step_then_stop(step, *args):
        if len(steps) == 5:
            raise KeyboardInterrupt
        steps.append(step)
        return real_step(step, *args)

    monkeypatch.setattr(build_module, "_run_step", step_then_stop)
    with pytest.raises(KeyboardInterrupt):
        runs.build(tiny_run, FAST, str(path), progress=False)
    partial = json.loads(path.read_text())
    assert not partial["complete"] and partial["progress"]["steps_done"] == 5
    assert len(partial["progress"]["samples"]["stem"]["wall"]) == 5 * 2
    with pytest.raises(LatencyTableError, match=r"incomplete \(5 of 12 measurement steps done\)"):
        LatencyTable.load(path)

    resumed = []
    monkeypatch.setattr(build_module, "_run_step", lambda step, *args: resumed.append(step) or real_step(step, *args))
    table = runs.build(tiny_run, FAST, str(path), progress=False)
    assert resumed == build_module.steps_for(tiny_run.space, make_plan(tiny_run.space, 1), FAST)[5:]
    assert table.data["complete"] and table.data["ops"]["stem"]["samples"] == 24


def test_build_never_replaces_a_table_measured_differently(table_path, tiny_run):
    before = table_path.read_bytes()
    two_threads = dataclasses.replace(FAST, threads=2)
    with pytest.raises(LatencyTableError, match="measured with threads=1, this build has 2.*--overwrite"):
        runs.build(tiny_run, two_threads, str(table_path), progress=False)
    with pytest.raises(LatencyTableError, match="measured with protocol repeats=8, this build has 9"):
        runs.build(tiny_run, dataclasses.replace(FAST, repeats=9), str(table_path), progress=False)
    assert table_path.read_bytes() == before
    runs.build(tiny_run, FAST, str(table_path), progress=False)  # complete and equal: nothing measured
    assert table_path.read_bytes() == before
    replaced = runs.build(tiny_run, two_threads, str(table_path), overwrite=True, progress=False)
    assert replaced.key["threads"] == 2


def test_onnxruntime_tables_time_each_op_as_its_own_graph(tiny_run, tmp_path):
    protocol = dataclasses.replace(FAST, backend="onnxruntime", method="isolated", repeats=3, min_sample_ms=0.0)
    table = runs.build(tiny_run, protocol, str(tmp_path / "ort.json"), progress=False)
    assert table.key["backend"] == "onnxruntime" and table.key["versions"]["onnxruntime"]
    assert table.data["machine"]["method"] == "isolated"
    assert all(e["samples"] == 3 for e in itertools.chain(*table.data["ops"]["layers"]))
    assert table.predict_ms((1, 2, 1)) > 0


# ------------------------------------------------------------------------------ refusal and bad tables


def _search_config(table_path, **search):
    return {"search": {"latency_table": str(table_path), **search}}


def test_a_table_for_another_space_width_input_or_device_is_refused(table_path, nas_kit):
    table = LatencyTable.load(table_path)
    with pytest.raises(LatencyTableError, match=r"does not fit.*width=8 vs 16"):
        runs.table_for_search(nas_kit.open({**_search_config(table_path), "space": {"name": "tiny", "width": 16}})[0])
    other = json.loads(table_path.read_text())
    other["key"]["space"] = "nas-bench-macro"
    (table_path.parent / "other-space.json").write_text(json.dumps(other))
    with pytest.raises(LatencyTableError, match="measured for space 'nas-bench-macro', this run's space is 'tiny'"):
        runs.table_for_search(nas_kit.open(_search_config(table_path.parent / "other-space.json"))[0])
    other = json.loads(table_path.read_text())
    other["key"]["input_size"] = [16, 16]
    (table_path.parent / "other-input.json").write_text(json.dumps(other))
    with pytest.raises(LatencyTableError, match="measured at input 16x16, this run's space takes 8x8"):
        runs.table_for_search(nas_kit.open(_search_config(table_path.parent / "other-input.json"))[0])
    other = json.loads(table_path.read_text())
    other["key"]["device"] = "cuda/NVIDIA A100"
    phone = table_path.parent / "other-device.json"
    phone.write_text(json.dumps(other))
    with pytest.raises(LatencyTableError, match=f"measured on device 'cuda/NVIDIA A100', this run targets '{device_name('cpu')}'"):
        runs.table_for_search(nas_kit.open(_search_config(phone))[0])
    # naming the table's device explicitly means: search for that device from here
    run = nas_kit.open(_search_config(phone, latency_device="cuda/NVIDIA A100"))[0]
    assert runs.table_for_search(run).key["device"] == "cuda/NVIDIA A100"
    # the same space with an option that does not change the network is accepted
    assert runs.table_for_search(nas_kit.open(_search_config(table_path))[0]).path == table.path


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], "corrupt latency table (not JSON"),
    (lambda text: "[1, 2]", "not a latency table"),
    (lambda text: json.dumps({**json.loads(text), "format": "something/1"}), "not a latency table (format 'something/1'"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "ops"}), "corrupt latency table (missing 'ops')"),
    (lambda text: text.replace('"median_ms": ', '"median_ms": -', 1), "corrupt latency table (ops.stem: timings must be finite"),
    (lambda text: text.replace('"median_ms": ', '"median_ms": NaN, "x": ', 1), "timings must be finite"),
    (lambda text: json.dumps({**json.loads(text), "correction": {"model": "cubic"}}), "unknown correction model 'cubic'"),
    (lambda text: json.dumps({**json.loads(text), "complete": False}), "incomplete"),
])
def test_bad_tables_are_one_line_errors_and_stay_untouched(table_path, damage, message):
    table_path.write_text(damage(table_path.read_text()))
    before = table_path.read_bytes()
    with pytest.raises(LatencyTableError) as info:
        LatencyTable.load(table_path)
    assert message in str(info.value) and str(table_path) in str(info.value)
    assert "\n" not in str(info.value)
    assert table_path.read_bytes() == before


def test_missing_table_and_latency_without_a_table_are_config_errors(nas_kit, tmp_path):
    with pytest.raises(LatencyTableError, match="latency table not found"):
        runs.table_for_search(nas_kit.open(_search_config(tmp_path / "nope.json"))[0])
    with pytest.raises(ConfigError, match="max_latency_ms needs search.latency_table"):
        runs.table_for_search(nas_kit.open({"search": {"constraints": {"max_latency_ms": 3.0}}})[0])
    with pytest.raises(ConfigError, match="'latency' objective of search.searcher needs search.latency_table"):
        runs.table_for_search(nas_kit.open({"search": {"searcher": {"name": "nsga2", "objectives": ["score", "latency"]}}})[0])
    with pytest.raises(ConfigError, match="unknown objective 'latncy'"):
        nas_kit.open({"search": {"searcher": {"name": "nsga2", "objectives": ["score", "latncy"]}}})


# ------------------------------------------------------------------------------ correction on synthetic timings


def _synthetic_networks(count=60, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.uniform(1.0, 6.0, count)
    layers = rng.integers(2, 9, count).astype(float)
    return raw, layers


def test_correction_recovers_a_per_layer_overhead():
    raw, layers = _synthetic_networks()
    noise = 1 + np.random.default_rng(1).normal(0, 0.002, len(raw))
    measured = (1.12 * raw + 0.05 * layers) * noise
    chosen, report = corr.select(raw, layers, measured)
    assert chosen.model == "scale+per-layer"
    assert chosen.scale == pytest.approx(1.12, rel=0.02) and chosen.per_layer_ms == pytest.approx(0.05, abs=0.01)
    assert report["none"]["median_abs_pct"] > 10 and report["scale"]["median_abs_pct"] > 2 and report[chosen.model]["max_abs_pct"] < 2


def test_correction_keeps_the_simpler_model_when_it_is_enough():
    raw, layers = _synthetic_networks()
    measured = 0.9 * raw * (1 + np.random.default_rng(3).normal(0, 0.002, len(raw)))
    chosen, _ = corr.select(raw, layers, measured)
    assert chosen.model in ("scale", "scale+per-layer") and chosen.scale == pytest.approx(0.9, rel=0.01)
    assert abs(chosen.per_layer_ms) < 0.01


def test_an_implausible_fit_is_never_kept():
    raw, layers = _synthetic_networks()
    chosen, report = corr.select(raw, layers, 5 * raw)  # "networks five times slower than their ops": broken timings
    assert chosen.model == "none" and report["scale"]["max_abs_pct"] < 1e-6


def test_macs_line_is_fitted_on_relative_error():
    macs = np.linspace(1e6, 9e6, 20)
    slope, intercept = corr.affine_fit(macs, 2e-7 * macs + 0.5)
    assert slope == pytest.approx(2e-7) and intercept == pytest.approx(0.5)
    assert np.allclose(corr.affine_cross_validated(macs, 2e-7 * macs + 0.5), 2e-7 * macs + 0.5)


def test_correction_is_not_invented_when_the_sum_is_right():
    raw, layers = _synthetic_networks()
    measured = raw * (1 + np.random.default_rng(2).normal(0, 0.01, len(raw)))
    chosen, report = corr.select(raw, layers, measured)
    assert report[chosen.model]["mean_abs_pct"] <= report["none"]["mean_abs_pct"]
    assert chosen.apply(raw, layers) == pytest.approx(raw, rel=0.03)  # whatever it kept stays near identity


def test_correction_needs_enough_networks():
    raw, layers = _synthetic_networks(count=8)
    with pytest.raises(ValueError, match="at least 10 networks"):
        corr.select(raw, layers, raw)


def test_check_fits_stores_and_validates_a_correction_on_synthetic_measurements(table_path):
    table = LatencyTable.load(table_path)
    archs = list(itertools.product(range(3), repeat=3))
    raw = np.array([table.raw_ms(a) for a in archs])
    layers = np.array([table.layers_run(a) for a in archs])
    true = 1.3 * raw + 0.02 * layers
    timings = [Timing(float(t), float(t) * 0.99, float(t) * 1.01, 10) for t in true]
    report = evaluate(table, archs, ["".join(map(str, a)) for a in archs], [1000 + i for i in range(len(archs))], timings, seed=0)
    assert report["raw"]["median_abs_pct"] > 15
    assert report["fitted_correction"]["cv"]["max_abs_pct"] < 1
    store_fit(table, report)
    stored = LatencyTable.load(table_path)
    assert stored.correction.model == "scale+per-layer"
    assert stored.predict_ms(archs[5]) == pytest.approx(true[5], rel=1e-6)
    fastest, slowest = stored.bounds()
    assert fastest == pytest.approx(true.min()) and slowest == pytest.approx(true.max())
    again = evaluate(stored, archs, ["x"] * len(archs), [1] * len(archs), timings, seed=1, fit=False)
    assert again["stored_correction"]["new_networks"] and again["stored_correction"]["max_abs_pct"] < 1e-6
    same = evaluate(stored, archs, ["".join(map(str, a)) for a in archs], [1] * len(archs), timings, seed=0, fit=False)
    assert not same["stored_correction"]["new_networks"]
    assert "fitted_correction" not in again


def test_a_fit_from_broken_timings_is_reported_but_not_stored(table_path):
    """A noisy check (here: one network in five measured three times its ops) once stored a
    margin the table then refused to load; such a fit is reported and the table left as it was."""
    table = LatencyTable.load(table_path)
    before = table_path.read_bytes()
    archs = list(itertools.product(range(3), repeat=3))
    raw = np.array([table.raw_ms(a) for a in archs])
    measured = raw * np.where(np.arange(len(archs)) % 5 == 0, 3.0, 1.0)
    timings = [Timing(float(t), float(t) * 0.99, float(t) * 1.01, 10) for t in measured]
    report = evaluate(table, archs, ["".join(map(str, a)) for a in archs], [1000 + i for i in range(len(archs))], timings, seed=0)
    assert report["fitted_correction"]["margin_pct"] >= corr.MAX_MARGIN_PCT
    assert store_fit(table, report) is False
    assert "too noisy" in report["fitted_correction"]["not_stored"]
    assert table_path.read_bytes() == before
    assert LatencyTable.load(table_path).margin_pct == 0.0


def test_bounds_are_exact_with_a_negative_per_layer_term(table_path):
    table = LatencyTable.load(table_path)
    table.set_correction(corr.Correction("scale+per-layer", 0.9, -0.5), {})
    predictions = [table.predict_ms(a) for a in itertools.product(range(3), repeat=3)]
    assert table.bounds() == pytest.approx((min(predictions), max(predictions)))


# ------------------------------------------------------------------------------ search and export


def test_latency_constraint_and_objective_in_search(table_path, nas_kit):
    table = LatencyTable.load(table_path)
    fastest, slowest = table.bounds()
    limit = fastest + 0.4 * (slowest - fastest)
    archs = list(itertools.product(range(3), repeat=3))
    assert any(table.predict_ms(a) > limit for a in archs)  # the limit excludes something
    config = _search_config(table_path, constraints={"max_latency_ms": limit},
                            searcher={"name": "nsga2", "population": 8, "generations": 3, "objectives": ["score", "latency"]})
    done = nas_kit.train_and_search(config)
    result = done.search
    assert result.best.latency_ms is not None and result.best.latency_ms <= limit
    assert all(c.latency_ms <= limit for c in result.pareto)
    for a in result.pareto:
        assert not any(b.score >= a.score and b.latency_ms <= a.latency_ms and (b.score, b.latency_ms) != (a.score, a.latency_ms) for b in result.pareto)
    saved = json.loads((done.run_dir / "search.json").read_text())
    assert saved["best"]["latency_ms"] == pytest.approx(result.best.latency_ms)
    assert (done.run_dir / "pareto.png").is_file()


def test_violation_counts_latency_and_a_limit_below_the_fastest_network_is_refused(table_path):
    table = LatencyTable.load(table_path)
    fastest, _ = table.bounds()
    space = tiny_space()
    problem = SearchProblem(space, lambda archs: [0.0] * len(archs), ConstraintsConfig(max_latency_ms=fastest * 1.5), 0, latency=table)
    for arch in itertools.product(range(3), repeat=3):
        assert problem.feasible(arch) == (table.predict_ms(arch) <= fastest * 1.5)
    with pytest.raises(ArchitectureError, match=r"max_latency_ms 1e-06 is below the fastest architecture's"):
        SearchProblem(space, lambda archs: [], ConstraintsConfig(max_latency_ms=1e-6), 0, latency=table)
    # with a safety margin the limit applies to prediction + margin
    table.margin_pct = 10.0
    problem = SearchProblem(space, lambda archs: [0.0] * len(archs), ConstraintsConfig(max_latency_ms=fastest * 1.5), 0, latency=table)
    for arch in itertools.product(range(3), repeat=3):
        assert problem.feasible(arch) == (table.predict_ms(arch) * 1.1 <= fastest * 1.5)
        assert problem.latency_ms(arch) == table.predict_ms(arch)  # what is reported stays the prediction
    with pytest.raises(ArchitectureError, match=r"below the fastest architecture's .* with its 10% margin"):
        SearchProblem(space, lambda archs: [], ConstraintsConfig(max_latency_ms=fastest * 1.05), 0, latency=table)


def test_safety_margin_is_the_90th_percentile_of_under_prediction(table_path, nas_kit):
    predicted = np.full(100, 2.0)
    measured = predicted * (1 + np.linspace(-0.1, 0.099, 100))  # under-predictions up to 9.9%
    assert corr.safety_margin_pct(predicted, measured) == pytest.approx(7.9, abs=0.05)
    assert corr.safety_margin_pct(predicted, predicted * 0.9) == 0.0
    data = json.loads(table_path.read_text())
    data["correction"] = {"model": "scale", "scale": 1.1, "margin_pct": 6.5}
    table_path.write_text(json.dumps(data))
    assert LatencyTable.load(table_path).margin_pct == 6.5
    override = nas_kit.open(_search_config(table_path, latency_margin_pct=0))[0]
    assert runs.table_for_search(override).margin_pct == 0.0
    data["correction"]["margin_pct"] = -3
    table_path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="margin_pct must be a percentage"):
        LatencyTable.load(table_path)


def test_export_writes_predicted_and_measured_latency(table_path, nas_kit):
    config = {**_search_config(table_path), "export": {"onnx": False}}
    trained = nas_kit.train(config)
    run, _ = nas_kit.open({**config, "run_dir": str(trained.run_dir)})
    summary = commands.export(run, "120")
    record = json.loads((trained.run_dir / "export-120" / "arch.json").read_text())["latency"]
    assert record == summary["latency"]
    assert record["predicted_ms"] == pytest.approx(LatencyTable.load(table_path).predict_ms((1, 2, 0)))
    assert record["measured_ms"] > 0 and record["device"] == device_name("cpu") and record["threads"] == 1
    other = json.loads(table_path.read_text())
    other["key"]["device"] = "cuda/elsewhere"
    table_path.write_text(json.dumps(other))
    run, _ = nas_kit.open({**config, "run_dir": str(trained.run_dir), "search": {"latency_table": str(table_path), "latency_device": "cuda/elsewhere"}})
    elsewhere = commands.export(run, "120")["latency"]
    assert elsewhere["measured_ms"] is None and "this machine is" in elsewhere["not_measured"]


# ------------------------------------------------------------------------------ the CLI


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_cli_build_check_and_one_line_errors(tmp_path):
    quick = str(REPO / "tests" / "base.yaml")
    table = tmp_path / "nbm.json"
    common = [f"run_dir={tmp_path}", "space.width=0.25"]
    nas("latency", "build", quick, *common, "--threads", "1", "--repeats", "2", "--warmup", "0", "--passes", "1", "--out", str(table), "--no-progress", check=True)
    proc = nas("latency", "check", quick, *common, "--table", str(table), "--num-archs", "10", "--no-progress", check=True)
    assert "sum of ops" in proc.stdout and "MACs" in proc.stdout
    report = json.loads((tmp_path / "nbm-check.json").read_text())
    assert report["networks"] == 10 and -1 <= report["macs"]["kendall_tau"] <= 1 and (tmp_path / "nbm-check.png").is_file()
    before = table.read_bytes()
    _one_line_error(nas("config", "check", quick, *common[:1], "space.width=0.5", f"search.latency_table={table}"), "width=0.25 vs 0.5")
    _one_line_error(nas("search", quick, *common, f"search.latency_table={table}", "search.constraints.max_latency_ms=0.0001"),
                    "search.constraints: impossible: max_latency_ms 0.0001 is below the fastest architecture's")
    _one_line_error(nas("latency", "build", quick, *common, "--threads", "2", "--repeats", "2", "--out", str(table)), "measured with threads=1", "--overwrite")
    assert table.read_bytes() == before
    table.write_text(before.decode()[:100])
    _one_line_error(nas("search", quick, *common, f"search.latency_table={table}"), "corrupt latency table")
    _one_line_error(nas("latency", "check", quick, *common, "--table", str(table)), "corrupt latency table")
    assert table.read_text() == before.decode()[:100]
