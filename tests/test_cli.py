"""Bad input gives one clear error line, exit code 2, no traceback; nothing saved is lost."""

import json

import pytest
import torch

from nas_test_helpers import REPO, nas, tiny_overrides

QUICKSTART = str(REPO / "tests" / "base.yaml")


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_lists_every_command():
    proc = nas("--help", check=True)
    for command in ("plugins", "list", "config", "train", "search", "rank", "export", "run"):
        assert command in proc.stdout


def test_config_check_and_show():
    assert nas("config", "check", QUICKSTART, check=True).stdout.strip().endswith(": ok")
    shown = nas("config", "show", QUICKSTART, "train.optimizer.lr=0.3", check=True).stdout
    assert "lr: 0.3" in shown and "momentum: 0.9" in shown and "bn_recal_batches: 4" in shown


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("train: {optimizer: {lrr: 1}}\n", ["train.optimizer.lrr: unknown key"]),
        ("train: {batch_size: big}\n", ["train.batch_size: Input should be a valid integer"]),
        ("plugins: {enable: [no-such-plugin]}\n", ["plugin 'no-such-plugin' is enabled in the config but not installed"]),
        ("sampler: {name: spos}\n", ["sampler.name: unknown sampler 'spos'", "(available: ", "fairnas", "uniform"]),
        ("space: {name: nas-bench-macro, widht: 0.5}\n", ["space.widht: unknown key"]),
    ],
)
def test_bad_config(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert_one_line_error(nas("config", "check", str(path)), str(path) if "plugin" not in text else "", *fragments)


def test_missing_config_file(tmp_path):
    assert_one_line_error(nas("train", str(tmp_path / "missing.yaml")), "missing.yaml: config file not found")


def test_missing_data(tmp_path):
    proc = nas("train", QUICKSTART, *tiny_overrides(tmp_path / "run", f"data.root={tmp_path / 'nowhere'}"))
    assert_one_line_error(proc, "CIFAR-10 not found")


def test_unknown_list_kind():
    assert_one_line_error(nas("list", "widgets"), "unknown kind 'widgets'")
    assert "fairnas" in nas("list", "samplers", "fair*", check=True).stdout


@pytest.mark.parametrize("arch, fragment", [("1111", "has 4 characters"), ("11111119", "position 7 is '9'")])
def test_bad_architecture_string(trained_tiny, tmp_path, arch, fragment):
    proc = nas("export", QUICKSTART, *tiny_overrides(trained_tiny), "--arch", arch, "--out", str(tmp_path / "x"))
    assert_one_line_error(proc, fragment)


def test_corrupt_and_truncated_checkpoints_lose_nothing(trained_tiny, tmp_path):
    good = (trained_tiny / "checkpoint.pt").read_bytes()
    for name, payload in (("truncated", good[: len(good) // 2]), ("garbage", b"not a checkpoint at all")):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "checkpoint.pt").write_bytes(payload)
        proc = nas("train", QUICKSTART, *tiny_overrides(run_dir, "train.max_steps=50"), "--resume")
        assert_one_line_error(proc, "checkpoint.pt: cannot read checkpoint")
        assert (run_dir / "checkpoint.pt").read_bytes() == payload  # left as it was
        proc = nas("search", QUICKSTART, *tiny_overrides(run_dir))
        assert_one_line_error(proc, "cannot read checkpoint")


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    run_dir = tmp_path / "evil"
    run_dir.mkdir()
    torch.save({"format": "nas_core.checkpoint/1", "payload": Evil()}, run_dir / "checkpoint.pt")
    proc = nas("search", QUICKSTART, *tiny_overrides(run_dir))
    assert_one_line_error(proc, "refused: weights_only")
    assert "pwned" not in proc.stdout


def test_checkpoint_for_another_width_is_explained(trained_tiny, tmp_path):
    proc = nas("search", QUICKSTART, *tiny_overrides(trained_tiny, "space.width=0.5"))
    assert_one_line_error(proc, "weights do not fit this config's supernet")


def test_resume_without_checkpoint(tmp_path):
    proc = nas("train", QUICKSTART, *tiny_overrides(tmp_path / "fresh"), "--resume")
    assert_one_line_error(proc, "no checkpoint to resume from")


def test_export_without_search_result(trained_tiny, tmp_path):
    run_dir = tmp_path / "nosearch"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").symlink_to(trained_tiny / "checkpoint.pt")
    assert_one_line_error(nas("export", QUICKSTART, *tiny_overrides(run_dir)), "no search result")


def test_metadata_records_plugins_and_versions(trained_tiny):
    meta = json.loads((trained_tiny / "metadata-train.json").read_text())
    assert meta["torch"] == torch.__version__
    assert any(p["name"] == "builtin" and p["version"] for p in meta["plugins"])
    assert meta["config"]["space"]["width"] == 0.25


# ------------------------------------------------------------------------------------------
# nas config check: every impossible combination fails there, in one line, before training
# ------------------------------------------------------------------------------------------

IMPOSSIBLE = {
    "cream-teacher-with-label-free-pinas": (
        "plugins: {enable: [cream, pinas]}\ntrain: {label_loss: none}\ndata: {augment: false}\nsampler: {name: cross-path}\n"
        "teacher: {name: cream}\nregularizers: [{name: cross-path-infonce}]\n",
        "regularizer 'cross-path-infonce' needs train.label_loss: none, teacher 'cream' needs train.label_loss: ce; they cannot be combined",
    ),
    "les-twice": (
        "plugins: {enable: [scarlet]}\nregularizers: [{name: les}, {name: les}]\n",
        "regularizers.0 and regularizers.1 are both regularizer 'les', which can be used once per run",
    ),
    "board-searcher-without-its-teacher": (
        "plugins: {enable: [cream]}\nsearch: {searcher: {name: cream-board}}\n",
        "searcher 'cream-board' needs teacher 'cream' (the board lives in its checkpoint state); the config's teacher is none",
    ),
    "distillation-from-another-teacher": (
        "plugins: {enable: [cream, pinas]}\nteacher: {name: mean-teacher}\nregularizers: [{name: cream}]\n",
        "regularizer 'cream' needs teacher 'cream' to supply its targets; the config's teacher is 'mean-teacher'",
    ),
    "teacher-with-micro-batches": (
        "plugins: {enable: [cream]}\ntrain: {micro_batches: 2}\nteacher: {name: cream}\nregularizers: [{name: cream}]\n",
        "teacher 'cream' needs train.micro_batches: 1 (the config has 2)",
    ),
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_config_check_refuses_combinations_that_cannot_work_in_one_line(tmp_path, case):
    text, message = IMPOSSIBLE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(f"run_dir: {tmp_path / 'run'}\n{text}")
    assert_one_line_error(nas("config", "check", str(path)), f"{path}: {message}")


def test_training_an_impossible_combination_stops_before_the_first_step(tmp_path):
    text, message = IMPOSSIBLE["cream-teacher-with-label-free-pinas"]
    path = tmp_path / "bad.yaml"
    path.write_text(f"run_dir: {tmp_path / 'run'}\n{text}")
    assert_one_line_error(nas("train", str(path), "data.train_subset=500"), message)
    assert not (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_every_validation_error_is_shown_one_line_each(tmp_path):
    engine_keys = tmp_path / "engine.yaml"
    engine_keys.write_text("seed: many\ntrain: {batch_size: big, optimizer: {lrr: 1}}\n")
    proc = nas("config", "check", str(engine_keys))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {engine_keys}: seed: Input should be a valid integer, unable to parse string as an integer",
        f"error: {engine_keys}: train.batch_size: Input should be a valid integer, unable to parse string as an integer",
        f"error: {engine_keys}: train.optimizer.lrr: unknown key",
    ]
    debug = nas("--debug", "config", "check", str(engine_keys))  # the traceback, and still all three
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-3:] == [
        f"nas_core.errors.ConfigError: {engine_keys}: seed: Input should be a valid integer, unable to parse string as an integer",
        f"{engine_keys}: train.batch_size: Input should be a valid integer, unable to parse string as an integer",
        f"{engine_keys}: train.optimizer.lrr: unknown key",
    ]
    plugin_keys = tmp_path / "plugin.yaml"
    plugin_keys.write_text("sampler: {name: fairnas, paths: 3}\nevaluator: {name: accuracy, split: train}\nregularizers: [{name: nothing}]\n")
    lines = nas("config", "check", str(plugin_keys)).stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"error: {plugin_keys}: ") for line in lines)
    assert "sampler.paths: unknown key" in lines[0] and "regularizers.0.name: unknown regularizer 'nothing'" in lines[1]
    assert "evaluator.split: String should match pattern" in lines[2]


def test_list_shows_one_components_options_with_types_defaults_and_descriptions():
    proc = nas("list", "sampler", "fairnas", check=True, env={"COLUMNS": "200"})
    assert "FairNAS strict fairness" in proc.stdout and "builtin:fairnas" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "paths_per_step" in line)
    assert "int | None" in row and "None" in row and "the largest number of choices of a layer" in row
    row = next(line for line in nas("list", "searchers", "nsga2", check=True, env={"COLUMNS": "200"}).stdout.splitlines() if "objectives" in line)
    assert "list[str]" in row and "['score', 'macs', 'params']" in row


# ------------------------------------------------------------------------------------------
# Subcommands contributed by installed packages
# ------------------------------------------------------------------------------------------


class _EntryPoint:
    def __init__(self, name, obj=None, error=None):
        self.name, self.value, self.dist, self._obj, self._error = name, f"fake:{name}", None, obj, error

    def load(self):
        if self._error:
            raise self._error
        return self._obj


def test_packages_contribute_subcommands_and_a_broken_one_is_skipped(monkeypatch, capsys):
    from nas_core import Command, cli

    seen = []
    hello = Command(help="say hello", add_arguments=lambda p: p.add_argument("--name", default="world"), run=lambda args: seen.append(args.name))
    broken = _EntryPoint("broken", error=ImportError("no module named 'x'"))
    monkeypatch.setattr(cli.md, "entry_points", lambda group: [_EntryPoint("hello", hello), broken] if group == "nas_core.commands" else [])
    with pytest.warns(UserWarning, match="command 'broken' from fake:broken failed to load and is skipped: ImportError"):
        assert cli.main(["hello", "--name", "nas"]) == 0
    assert seen == ["nas"]
    monkeypatch.setattr(cli.md, "entry_points", lambda group: [])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.main(["finetune", "x", "--task", "retinanet-coco"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: nas finetune is contributed by the OpenMMLab bridge (package nas-downstream in downstream/), "
        "which bash scripts/setup.sh installs with OpenMMLab; it is not installed\n"
    )
