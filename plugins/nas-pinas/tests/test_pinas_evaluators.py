"""kNN and linear-probe evaluators on a Pi-NAS supernet (real CIFAR-10), with every searcher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nas_core import testing as commands
from nas_core.testing import Run, Trainer, load_trained_supernet, open_run
from nas_pinas.evaluators import knn_top1

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pinas-macro.yaml"
EVAL = ["evaluator.bank_images=200", "evaluator.max_images=100", "evaluator.bn_recal_batches=1", "evaluator.batch_size=64"]


def small_run(run_dir: Path, *extra: str) -> Run:
    overrides = [
        f"run_dir={run_dir}", "device=cpu", "space.width=0.125", "data.train_subset=600", "data.val_subset=200",
        "train.batch_size=32", "train.progress=false", "train.tensorboard=false", "teacher.queue_size=96",
        "train.max_steps=3", "export.onnx=false", *extra,
    ]
    return open_run(CONFIG, overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pinas-trained")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    Trainer(small_run(run_dir, *EVAL)).fit()
    torch.set_num_threads(before)
    return run_dir


def test_knn_top1_on_separable_and_random_labels():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(5, 16, generator=g), dim=1)
    labels = torch.arange(5).repeat(40)
    feats = F.normalize(centres[labels] + 0.05 * torch.randn(200, 16, generator=g), dim=1)
    assert knn_top1(feats[:150], labels[:150], feats[150:], labels[150:], k=10, temperature=0.07, num_classes=5) == 100.0
    shuffled = labels[torch.randperm(200, generator=g)]
    assert knn_top1(feats[:150], shuffled[:150], feats[150:], shuffled[150:], k=10, temperature=0.07, num_classes=5) < 60.0


@pytest.mark.parametrize("evaluator", ["knn", "linear-probe"])
def test_evaluators_score_paths_without_changing_the_supernet(trained, evaluator):
    extra = EVAL if evaluator == "knn" else ["evaluator={name: linear-probe, steps: 20, train_images: 300, max_images: 100, bn_recal_batches: 1, batch_size: 64}"]
    run = small_run(trained, *extra)
    load_trained_supernet(run, trained / "checkpoint.pt")
    state = {k: v.clone() for k, v in run.supernet.state_dict().items()}
    archs = [(0,) * 8, (2,) * 8, (1, 2, 1, 2, 1, 2, 1, 2)]
    scores = run.evaluator.evaluate(run.supernet, archs)
    assert len(scores) == 3 and all(0.0 <= s <= 100.0 for s in scores)
    assert max(scores) > 15.0  # above the 10% chance level of CIFAR-10
    assert scores == run.evaluator.evaluate(run.supernet, archs)  # deterministic (the probe is cached)
    after = run.supernet.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)


@pytest.mark.parametrize("searcher", ["{name: random, num_samples: 3}", "{name: evolution, population: 3, generations: 1}",
                                      "{name: nsga2, population: 3, generations: 1}"])
def test_knn_evaluator_drives_every_searcher(trained, searcher, tmp_path):
    run = small_run(tmp_path, *EVAL, f"search.searcher={searcher}")
    result = commands.search(run, checkpoint=str(trained / "checkpoint.pt"))
    assert result.history and 0.0 <= result.best.score <= 100.0
    assert len(result.best.arch) == 8


def test_export_recalibrates_with_the_knn_evaluator(trained, tmp_path):
    run = small_run(tmp_path, *EVAL)
    summary = commands.export(run, "01201201", checkpoint=str(trained / "checkpoint.pt"), out=str(tmp_path / "export"))
    assert summary["arch"] == "01201201" and (tmp_path / "export" / "subnet.pt").is_file()
