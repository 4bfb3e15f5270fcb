"""Bad input gives one clear error line, exit code 2, no traceback; nothing saved is lost."""

import json

import pytest
import torch

from nas_test_helpers import REPO, nas, tiny_overrides

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


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
