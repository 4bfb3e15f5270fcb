"""Bad input never crashes (issue 16): a table of wrong inputs of every kind, run through the CLI.

Each case runs ``nas ...`` in this process (fast: no interpreter start-up) against one good,
tiny trained run folder, and must end with exit code 2, exactly one ``error:`` line naming what
is wrong, no traceback -- and every file of the good run folder, and every file the case made,
byte for byte as it was. The property-based layer below (hypothesis) generates more of the same.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings  # a test extra of the project (pyproject.toml)
from hypothesis import strategies as st

from nas_core import cli
from nas_core.checkpoint import CHECKPOINT_NAME
from nas_core.latency.table import FORMAT as LATENCY_FORMAT
from nas_core.run_lock import RunDirLock
from nas_core.search_result import Candidate, SearchResult
from nas_test_helpers import REPO, tiny_overrides

BASE = str(REPO / "tests" / "base.yaml")  # the tests' plain SPOS config (not the main job's recipe)
SMALL_DATA = ("data.train_subset=640", "data.val_subset=200")
TRAINED_STEPS = 3


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``nas argv`` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exited:  # argparse's own errors
        code = exited.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by path, with its bytes."""
    files = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, shared_data) -> Path:
    """A supernet trained for a few steps on real CIFAR-10, with a search result beside it."""
    run_dir = tmp_path_factory.mktemp("good") / "run"
    code = cli.main(["train", BASE, *tiny_overrides(run_dir, f"train.max_steps={TRAINED_STEPS}", *SMALL_DATA)])
    assert code == 0
    best = Candidate("11111111", 50.0, 1_000_000, 50_000)
    SearchResult(best, [best], [best], "evolution").save(run_dir / "search.json")
    return run_dir


def on_good(good: Path, *extra: str) -> list[str]:
    return [BASE, *tiny_overrides(good, *SMALL_DATA, *extra)]


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def bad_checkpoint(folder: Path, good: Path, mutate) -> Path:
    """A copy of the good checkpoint, loaded, changed by ``mutate(state)`` and saved again."""
    state = torch.load(good / CHECKPOINT_NAME, weights_only=True)
    state = mutate(state) or state
    path = folder / "bad.pt"
    torch.save(state, path)
    return path


def drop(key):
    return lambda state: state.pop(key) and None


GT_NAN = '{"11111111": {"mean_acc": NaN, "std": 0, "params": 1, "flops": 1, "test_acc": []}}'


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------------------------------------
# The table: name -> (argv built from (tmp folder, good run folder), fragment of the error line)
# ---------------------------------------------------------------------------------------------


def config_value(override: str, fragment: str):
    return lambda tmp, good: (["config", "check", BASE, override], fragment)


def config_file(content: str | bytes, fragment: str):
    return lambda tmp, good: (["config", "check", write(tmp, "c.yaml", content)], fragment)


def checkpoint_case(mutate, fragment: str, command: str = "search"):
    def build(tmp, good):
        path = bad_checkpoint(tmp, good, mutate)
        if command == "resume":  # the checkpoint becomes the run's own
            run_dir = tmp / "resume"
            run_dir.mkdir()
            shutil.move(path, run_dir / CHECKPOINT_NAME)
            return ["train", *on_good(run_dir, f"train.max_steps={TRAINED_STEPS + 2}"), "--resume"], fragment
        return ["search", *on_good(good), "--checkpoint", path], fragment

    return build


CASES = {
    # --- config values that parse but make no sense ------------------------------------------
    "lr-nan": config_value("train.optimizer.lr=.nan", "train.optimizer.lr: Input should be a finite number"),
    "lr-infinite": config_value("train.optimizer.lr=.inf", "train.optimizer.lr: Input should be a finite number"),
    "lr-negative": config_value("train.optimizer.lr=-0.1", "train.optimizer.lr: Input should be greater than 0"),
    "lr-absurd": config_value("train.optimizer.lr=1.0e+30", "train.optimizer.lr: Input should be less than or equal to 100"),
    "width-absurd": config_value("space.width=1.0e+9", "space.width: Input should be less than or equal to 4"),
    "width-negative": config_value("space.width=-1", "space.width: Input should be greater than 0"),
    "epochs-absurd": config_value("train.epochs=1.0e+300", "train.epochs: Input should be less than or equal to 100000"),
    "epochs-zero": config_value("train.epochs=0", "train.epochs: Input should be greater than 0"),
    "seed-negative": config_value("seed=-1", "seed: Input should be greater than or equal to 0"),
    "seed-absurd": config_value("seed=123456789012345678901234567890", "seed: Input should be less than 4294967296"),
    "bool-for-int": config_value("train.batch_size=true", "train.batch_size: Input should be a number, not true"),
    "int-for-bool": config_value("train.progress=1", "train.progress: Input should be true or false"),
    "zero-classes": config_value("space.num_classes=0", "space.num_classes: Input should be greater than or equal to 2"),
    "device-not-compute": config_value("device=meta", "device: 'meta' is not a compute device"),
    "device-nonsense": config_value("device=disk", "device: 'disk' is not a compute device"),
    "run-dir-empty": config_value("run_dir=", "run_dir: is empty"),
    "run-dir-blank": config_value("run_dir=' '", "run_dir: is empty"),
    "nsga2-unknown-objective": config_value("search.searcher={name: nsga2, objectives: [score, accuracy]}", "search.searcher.objectives: unknown objective 'accuracy'"),
    "nsga2-objective-twice": config_value("search.searcher={name: nsga2, objectives: [score, macs, macs]}", "name each objective once"),
    "onnx-opset-too-new": config_value("export.onnx_opset=99", "export.onnx_opset: Input should be less than or equal to 20"),
    "onnx-opset-too-old": config_value("export.onnx_opset=3", "export.onnx_opset: Input should be greater than or equal to 7"),
    "top-k-zero": config_value("rank.top_k=[10, 0]", "rank.top_k: item 1 is 0; each size must be an integer > 0"),
    "micro-batches-above-batch": config_value("train.micro_batches=1000", "micro_batches 1000 is larger than batch_size 128"),
    "min-lr-above-lr": config_value("train.scheduler.min_lr=5", "scheduler.min_lr 5.0 is above optimizer.lr 0.1"),
    # --- config files -------------------------------------------------------------------------
    "yaml-empty": config_file("", "the config file is empty"),
    "yaml-only-comments": config_file("# nothing here\n", "the config file is empty"),
    "yaml-binary": config_file(bytes(range(256)) * 4, "not a YAML text file (binary data at byte 0)"),
    "yaml-not-utf8": config_file(b"seed: \xff\xfe\n", "not a YAML text file (binary data at byte 6)"),
    "yaml-deep-lists": config_file("seed: " + deep_json(5000) + "\n", "nested too deeply"),
    "yaml-deep-mappings": config_file("a: " + "{a: " * 100 + "1" + "}" * 100 + "\n", "nested more than 64 levels deep"),
    "yaml-a-list": config_file("- seed\n- 1\n", "<root>: expected a mapping of settings, got list"),
    "yaml-is-a-folder": lambda tmp, good: (["config", "check", tmp], "is a folder, not a config file"),
    # --- command-line overrides ---------------------------------------------------------------
    "override-index-out-of-range": lambda tmp, good: (
        ["config", "check", write(tmp, "c.yaml", "rank: {top_k: [10, 20]}\n"), "rank.top_k.5=3"],
        "override rank.top_k.5: rank.top_k has 2 items (indexes 0..1); index 5 is out of range",
    ),
    "override-index-not-integer": lambda tmp, good: (
        ["config", "check", write(tmp, "c.yaml", "rank: {top_k: [10, 20]}\n"), "rank.top_k.first=3"],
        "override rank.top_k.first: rank.top_k is a list (indexes 0..1); 'first' is not an index",
    ),
    "override-index-negative": lambda tmp, good: (
        ["config", "check", write(tmp, "c.yaml", "rank: {top_k: [10, 20]}\n"), "rank.top_k.-1=3"],
        "'-1' is not an index",
    ),
    "override-index-of-nothing": config_value("regularizers.3.name=les", "override regularizers.3.name: regularizers has no items to index"),
    "override-into-a-number": config_value("seed.value=3", "override seed.value: seed is not a mapping"),
    "override-without-value": config_value("train.epochs", "override 'train.epochs': expected key.path=value"),
    "override-empty-key": config_value("train..epochs=3", "override 'train..epochs=3': empty key"),
    "override-deep-value": config_value("seed=" + deep_json(5000), "override seed: the value is nested"),
    # --- files that load but have the wrong structure ----------------------------------------
    "checkpoint-only-format-tag": checkpoint_case(lambda s: {"format": s["format"]}, "bad.pt: damaged or not written by this engine: 'space' is missing"),
    "checkpoint-plain-list": checkpoint_case(lambda s: [1, 2, 3], "bad.pt: not a checkpoint of this engine (top level is list)"),
    "checkpoint-without-scheduler": checkpoint_case(drop("scheduler"), "'scheduler' is missing", "resume"),
    "checkpoint-scheduler-empty": checkpoint_case(lambda s: s.update(scheduler={}), "'scheduler' lacks 'last_epoch'", "resume"),
    "checkpoint-without-optimizer": checkpoint_case(drop("optimizer"), "'optimizer' is missing", "resume"),
    "checkpoint-optimizer-broken": checkpoint_case(lambda s: s["optimizer"].update(param_groups="none"), "'optimizer' lacks its 'state' mapping or 'param_groups' list", "resume"),
    "checkpoint-rng-python-broken": checkpoint_case(lambda s: s["rng"].update(python=[3, [1, 2, 3], None]), "'rng.python' is not a Python random state", "resume"),
    "checkpoint-rng-torch-broken": checkpoint_case(lambda s: s["rng"].update(torch=torch.zeros(3)), "'rng.torch' is not a torch generator state", "resume"),
    "checkpoint-rng-numpy-missing": checkpoint_case(lambda s: s["rng"].pop("numpy") and None, "'rng.numpy' is missing", "resume"),
    "checkpoint-step-as-text": checkpoint_case(lambda s: s.update(step="3"), "'step' is str, expected int", "resume"),
    "checkpoint-weights-not-tensors": checkpoint_case(lambda s: s.update(supernet={"stem.0.weight": [1.0]}), "'supernet' is not a state dict of tensors"),
    "checkpoint-loader-negative": checkpoint_case(lambda s: s["loader"].update(position=-4), "'loader.position' is -4, expected an int >= 0", "resume"),
    "checkpoint-component-state-list": checkpoint_case(lambda s: s["components"].update(sampler=[1]), "'components.sampler' is list", "resume"),
    "ground-truth-a-list": lambda tmp, good: (
        ["rank", *on_good(good, f"rank.ground_truth={write(tmp, 'gt.json', '[1, 2, 3]')}")], "gt.json: not a NAS-Bench-Macro table (<root>: Input should be a valid dictionary"
    ),
    "ground-truth-deep": lambda tmp, good: (
        ["rank", *on_good(good, f"rank.ground_truth={write(tmp, 'gt.json', deep_json(100_000))}")], "gt.json: not a NAS-Bench-Macro table (cannot read it as JSON: nested too deeply)"
    ),
    "ground-truth-entry-incomplete": lambda tmp, good: (
        ["rank", *on_good(good, f"rank.ground_truth={write(tmp, 'gt.json', json.dumps({'11111111': {'mean_acc': 90.0}}))}")], "(11111111.std: Field required)"
    ),
    "ground-truth-nan": lambda tmp, good: (
        ["rank", *on_good(good, f"rank.ground_truth={write(tmp, 'gt.json', GT_NAN)}")],
        "11111111.mean_acc: Input should be a finite number",
    ),
    "ground-truth-lacks-architectures": lambda tmp, good: (
        ["rank", *on_good(good, f"rank.ground_truth={write(tmp, 'gt.json', json.dumps({'11111111': {'mean_acc': 90.0, 'std': 0.1, 'params': 5, 'flops': 5, 'test_acc': [90.0]}}))}")],
        "has no entry for architecture",
    ),
    "latency-table-deep": lambda tmp, good: (
        ["search", *on_good(good, f"search.latency_table={write(tmp, 'lat.json', deep_json(100_000))}")], "lat.json: corrupt latency table (not JSON: nested too deeply)"
    ),
    "latency-table-a-list": lambda tmp, good: (["search", *on_good(good, f"search.latency_table={write(tmp, 'lat.json', '[]')}")], "lat.json: not a latency table"),
    "latency-table-without-ops": lambda tmp, good: (
        ["search", *on_good(good, f"search.latency_table={write(tmp, 'lat.json', json.dumps({'format': LATENCY_FORMAT, 'key': {}}))}")], "lat.json: corrupt latency table ("
    ),
    "search-result-deep": lambda tmp, good: (
        ["export", *on_good(good), "--search-result", write(tmp, "s.json", deep_json(100_000))], "s.json: not a search result (cannot read it as JSON: nested too deeply)"
    ),
    "search-result-a-list": lambda tmp, good: (["export", *on_good(good), "--search-result", write(tmp, "s.json", "[]")], "s.json: not a search result (<root>: Input should be"),
    "search-result-without-best": lambda tmp, good: (["export", *on_good(good), "--search-result", write(tmp, "s.json", '{"history": []}')], "s.json: not a search result (best: Field required)"),
    "search-result-pick-out-of-range": lambda tmp, good: (["export", *on_good(good), "--pick", "5"], "--pick 5: "),
    "search-result-pick-negative": lambda tmp, good: (["export", *on_good(good), "--pick", "-1"], "--pick -1: "),
    # --- resume that contradicts the checkpoint -----------------------------------------------
    "resume-fewer-steps-than-run": lambda tmp, good: (
        ["train", *on_good(good, "train.max_steps=2"), "--resume"], f"has already run {TRAINED_STEPS} steps; {BASE} plans 2"
    ),
    "resume-other-width": lambda tmp, good: (["train", *on_good(good, "space.width=0.5"), "--resume"], "was trained with space.width 0.25"),
    "resume-other-seed": lambda tmp, good: (["train", *on_good(good, "seed=7"), "--resume"], "was trained with seed 0"),
    "resume-other-optimizer": lambda tmp, good: (["train", *on_good(good, "train.optimizer.name=adamw"), "--resume"], "was trained with train.optimizer.name sgd; "),
    "resume-other-lr": lambda tmp, good: (["train", *on_good(good, "train.optimizer.lr=0.5"), "--resume"], "was trained with train.optimizer.lr 0.1 (parameter group 0);"),
    "train-over-a-checkpoint": lambda tmp, good: (["train", *on_good(good)], "a checkpoint already exists; pass --resume"),
    # --- paths ---------------------------------------------------------------------------------
    "run-dir-is-a-file": lambda tmp, good: (["train", *on_good(write(tmp, "file", "x"))], "is a file, not a folder"),
    "run-dir-below-a-file": lambda tmp, good: (["train", *on_good(write(tmp, "file", "x") / "run")], "cannot be created, "),
    "export-out-is-a-file": lambda tmp, good: (["export", *on_good(good), "--arch", "11111111", "--out", write(tmp, "out", "x")], "--out "),
    "export-out-below-a-file": lambda tmp, good: (["export", *on_good(good), "--arch", "11111111", "--out", write(tmp, "out", "x") / "sub"], "cannot be created"),
    # --- search and ranking ----------------------------------------------------------------
    "constraints-impossible-together": lambda tmp, good: (
        ["search", *on_good(good, "search.constraints.min_flops=4.3e+6", "search.constraints.max_params=5.0e+4")],
        "search.constraints: impossible together: no architecture of space 'nas-bench-macro' satisfies min_flops 4.3e+06, max_params 5e+04 (all 6561 architectures checked)",
    ),
    "rank-sample-larger-than-space": lambda tmp, good: (["rank", *on_good(good, "rank.num_archs=5000")], "rank.num_archs: cannot draw 5000 distinct networks"),
    "rank-sample-absurd": config_value("rank.num_archs=1000000000", "rank.num_archs: Input should be less than or equal to 1000000"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(case, good_run, tmp_path, capsys):
    argv, fragment = CASES[case](tmp_path, good_run)
    before = snapshot(good_run, tmp_path)
    code, out, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    assert fragment in lines[0], lines[0]
    assert snapshot(good_run, tmp_path) == before


def test_a_locked_run_dir_refuses_writers_and_still_allows_readers(good_run, capsys):
    holder = RunDirLock(good_run, "train")  # held by "another process": another open file, flock conflicts
    holder.acquire()
    try:
        before = snapshot(good_run)
        for argv in (["train", *on_good(good_run), "--resume"], ["search", *on_good(good_run)], ["export", *on_good(good_run), "--arch", "11111111"]):
            code, _, err = run_cli(capsys, argv)
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert f"run_dir {good_run}: in use by nas train (pid {os.getpid()} on host " in err
        assert snapshot(good_run) == before
        code, out, _ = run_cli(capsys, ["config", "check", *on_good(good_run)])
        assert code == 0 and out.strip().endswith(": ok")
    finally:
        holder.release()


def test_an_unreadable_config_file_is_one_line(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "c.yaml", "seed: 1\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the read fail as it would for a user
        def refuse(self):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(Path, "read_bytes", refuse)
    code, _, err = run_cli(capsys, ["config", "check", path])
    assert code == 2 and err == f"error: {path}: cannot read config file (Permission denied)\n"


def test_a_read_only_run_dir_is_one_line(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "ro"
    run_dir.mkdir()
    run_dir.chmod(0o555)
    if os.access(run_dir, os.W_OK):  # root writes anywhere: make creating the lock fail as for a user
        real_open = os.open

        def refuse(path, flags, *args, **kwargs):
            if str(path).startswith(str(run_dir)):
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    code, _, err = run_cli(capsys, ["train", *on_good(run_dir)])
    assert code == 2 and err == f"error: run_dir {run_dir}: not writable (Permission denied)\n"
    assert list(run_dir.iterdir()) == []


def test_an_unforeseen_failure_is_one_internal_error_line_with_exit_3(capsys, monkeypatch):
    from nas_core import cli_views

    def broken(*args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli_views, "show_plugins", broken)
    code, _, err = run_cli(capsys, ["plugins"])
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: internal error: ZeroDivisionError: division by zero (a bug in nas-core or a plugin")
    with pytest.raises(ZeroDivisionError):  # --debug shows the traceback
        cli.main(["--debug", "plugins"])


def test_onnx_opset_bounds_match_the_installed_exporter():
    from torch.onnx import _constants

    from nas_core.config import ONNX_OPSETS

    assert ONNX_OPSETS == (_constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)


# ---------------------------------------------------------------------------------------------
# Property-based: generated configs, overrides and damaged checkpoints (hypothesis)
# ---------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
FUZZ_RESUME = settings(FUZZ, max_examples=12)  # each example reads the data set (resume checks the schedule against it)

KEYS = ["seed", "device", "run_dir", "space", "width", "num_classes", "train", "epochs", "max_steps", "batch_size", "optimizer",
        "lr", "name", "search", "searcher", "objectives", "constraints", "max_flops", "rank", "num_archs", "top_k", "export",
        "onnx_opset", "regularizers", "sampler", "0", "1", "x"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["sgd", "nsga2", "cpu", "meta", "", "score", "latency", "nas-bench-macro"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)), max_leaves=8)


def assert_clean_outcome(code, out, err):
    """Accepted (0) or refused (2) with only ``error:`` lines; never a crash."""
    assert code in (0, 2), err
    assert "Traceback" not in err + out and "internal error" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), err
    assert code == 0 or any(line.startswith("error: ") for line in lines)


@FUZZ
@given(document=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_generated_config_files_never_crash(document, tmp_path_factory, capsys):
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(path.parent / "run"), **document}))
    assert_clean_outcome(*run_cli(capsys, ["config", "check", path]))


@FUZZ
@given(
    key=st.lists(st.sampled_from(KEYS + ["-1", "99", "top_k", "regularizers"]), min_size=1, max_size=4).map(".".join),
    value=st.one_of(st.text(max_size=12), st.sampled_from(["[1, 2]", "{a: 1}", "[[[[", "true", ".nan", "-7", "1e999"])),
)
def test_generated_overrides_never_crash(key, value, capsys):
    assert_clean_outcome(*run_cli(capsys, ["config", "check", BASE, f"{key}={value}", "run_dir=runs/fuzz-never-written"]))


def _damage(state: dict, rng: random.Random, junk) -> dict:
    """Replace, drop or retype one entry somewhere in the checkpoint's top two levels."""
    key = rng.choice(sorted(state))
    target, name = state, key
    if isinstance(state[key], dict) and state[key] and rng.random() < 0.6:
        target, name = state[key], rng.choice(sorted(state[key], key=str))
    if rng.random() < 0.3:
        del target[name]
    else:
        target[name] = junk
    return state


@FUZZ_RESUME
@given(seed=st.integers(0, 2**16), junk=SCALARS | st.lists(SCALARS, max_size=3) | st.just(torch.zeros(2)))
def test_damaged_checkpoints_are_refused_without_touching_anything(seed, junk, good_run, tmp_path_factory, capsys):
    run_dir = tmp_path_factory.mktemp("damaged") / "run"
    run_dir.mkdir()
    state = torch.load(good_run / CHECKPOINT_NAME, weights_only=True)
    torch.save(_damage(state, random.Random(seed), junk), run_dir / CHECKPOINT_NAME)
    before = snapshot(good_run, run_dir)
    # fewer steps than the checkpoint ran: even a damage the checks cannot see ends in a refusal
    code, out, err = run_cli(capsys, ["train", *on_good(run_dir, "train.max_steps=1"), "--resume"])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert snapshot(good_run, run_dir) == before


@FUZZ_RESUME
@given(cut=st.integers(0, 10**9), flips=st.lists(st.integers(0, 10**9), max_size=4))
def test_truncated_or_bit_flipped_checkpoints_are_refused(cut, flips, good_run, tmp_path_factory, capsys):
    data = bytearray((good_run / CHECKPOINT_NAME).read_bytes())
    for position in flips:
        data[position % len(data)] ^= 0xFF
    data = data[: cut % (len(data) + 1)] if cut % 3 == 0 else data
    run_dir = tmp_path_factory.mktemp("flipped") / "run"
    run_dir.mkdir()
    (run_dir / CHECKPOINT_NAME).write_bytes(bytes(data))
    before = snapshot(good_run, run_dir)
    code, out, err = run_cli(capsys, ["train", *on_good(run_dir, "train.max_steps=1"), "--resume"])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert snapshot(good_run, run_dir) == before


def test_a_sample_larger_than_a_large_space_is_refused_at_once(monkeypatch):
    """Spaces too large to enumerate are sampled by rejection: asking for more networks than the
    space has architecture strings must not loop."""
    from nas_core import ranking
    from nas_core.errors import ArchitectureError
    from nas_core.named_spaces import build_space

    monkeypatch.setattr(ranking, "ENUMERATION_LIMIT", 0)  # treat NAS-Bench-Macro as "large"
    space = build_space("nas-bench-macro", {"width": 0.25})
    with pytest.raises(ArchitectureError, match="cannot draw 7000 distinct networks: space 'nas-bench-macro' has only 6561 architecture strings"):
        ranking.sample_distinct(space, 7000, seed=0)
    assert len(set(ranking.sample_distinct(space, 50, seed=0))) == 50
