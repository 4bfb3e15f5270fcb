"""The seed plugins combined with each other and with the study's training techniques.

- The combined method (FairNAS sampling + ScarletNAS's LES + Cream's board teacher and
  distillation) trains, resumes to the same weights, board and meta network as a run that never
  stopped, and searches, on the tiny space.
- Every shipped plugin config combined with the sandwich sampler, the ranking loss and the
  rank-fusion evaluator passes ``nas config check`` when it can work, and is refused there with
  one line saying why when it cannot.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from nas_core.api import load_checkpoint
from nas_core.testing import run_cli, train
from nas_test_helpers import REPO

COMBINED: dict[str, Any] = {
    "plugins": {"enable": ["scarlet", "cream"]},
    "sampler": {"name": "fairnas"},
    "regularizers": [{"name": "les"}, {"name": "cream"}],
    "teacher": {"name": "cream", "board_size": 4, "meta_update_every": 3, "meta_lr": 0.01, "admission_images": 32},
    "cream": {"warmup_steps": 4},
    "train": {"max_steps": 14, "scheduler": {"name": "constant"}},
    "search": {"searcher": {"name": "cream-board"}},
}


def combined(**train: Any) -> dict[str, Any]:
    config = copy.deepcopy(COMBINED)
    config["train"].update(train)
    return config


def test_combined_method_trains_resumes_and_searches(nas_kit):
    """14 steps straight vs 8 steps, stop, resume to 14: the same supernet (LES maps included),
    optimiser, board and meta network, and the same logged metrics; then the board searcher
    returns the best board entry."""
    full = nas_kit.train(combined())
    stopped_dir = nas_kit.root / "stopped"
    nas_kit.train({**combined(max_steps=8), "run_dir": str(stopped_dir)})
    halfway = load_checkpoint(stopped_dir / "checkpoint.pt")
    assert halfway["step"] == 8 and halfway["components"]["teacher"]["meta_updates"] == 1
    run, _ = nas_kit.open({**combined(), "run_dir": str(stopped_dir)})
    train(run, resume=True)

    a, b = load_checkpoint(full.run_dir / "checkpoint.pt"), load_checkpoint(stopped_dir / "checkpoint.pt")
    assert a["step"] == b["step"] == 14
    deltas = [k for k in a["supernet"] if k.endswith(".delta")]
    assert deltas, "the LES maps are part of the supernet"
    assert any(a["supernet"][k].abs().max() > 0 for k in deltas), "the stabilizers trained"
    for key, value in a["supernet"].items():
        assert torch.equal(value, b["supernet"][key]), f"supernet {key} differs"
    for key, value in a["optimizer"]["state"].items():
        assert torch.equal(value["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])
    ta, tb = a["components"]["teacher"], b["components"]["teacher"]
    assert ta["meta_updates"] == tb["meta_updates"] == 3
    assert [e["arch"] for e in ta["board"]] == [e["arch"] for e in tb["board"]] and ta["board"]
    assert [e["acc"] for e in ta["board"]] == [e["acc"] for e in tb["board"]]
    for key, value in ta["meta"].items():
        assert torch.equal(value, tb["meta"][key]), f"meta {key} differs"
    assert a["components"]["sampler"] == b["components"]["sampler"]  # the FairNAS decks

    lines = full.metrics
    assert lines == _metrics(stopped_dir)  # drift, rho, meta diagnostics logged alike (they are in the checkpoint)
    last = lines[-1]
    assert last["les/drift_mean"] > 0 and {"les/drift/L0", "les/drift/L2"} <= set(last)
    assert last["cream/active"] == 1.0 and 0 < last["cream/rho"] < 1
    assert last["cream/meta_updates"] == 2.5  # the window of steps 12 and 13: 2 updates, then the third at step 13
    assert last["cream/meta_grad_norm"] > 0 and last["cream/meta_weight_change"] > 0

    result = nas_kit.search({**combined(), "run_dir": str(full.run_dir)})
    space = result.run.space
    best = ta["board"][0]
    assert result.search.best.arch == space.encode(tuple(best["arch"]))
    assert result.search.best.score == best["acc"]


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


# ------------------------------------------------------------------------------ nas config check

CONFIGS = {
    "scarlet": REPO / "plugins" / "nas-scarlet" / "configs" / "scarlet-macro.yaml",
    "cream": REPO / "plugins" / "nas-cream" / "configs" / "cream-macro.yaml",
    "pinas": REPO / "plugins" / "nas-pinas" / "configs" / "pinas-macro.yaml",
    "scarlet-cream": REPO / "plugins" / "nas-cream" / "configs" / "scarlet-cream-macro.yaml",
}
SANDWICH = {"sampler": {"name": "sandwich", "random_paths": 2}}
RANKING = {"name": "ranking-loss", "prior": {"name": "depth"}}
ACCURACY = {"name": "accuracy", "bn_recal_batches": 4, "batch_size": 250}


def fusion(*members: dict[str, Any]) -> dict[str, Any]:
    return {"evaluator": {"name": "rank-fusion", "reference_size": 16, "members": [{"weight": 1.0, "evaluator": m} for m in members]}}


def with_regularizer(base: str, regularizer: dict[str, Any]) -> dict[str, Any]:
    shipped = yaml.safe_load(CONFIGS[base].read_text())
    return {"regularizers": [*shipped.get("regularizers", []), regularizer]}


VALID = {
    # each plugin as shipped
    "scarlet": ("scarlet", {}),
    "cream": ("cream", {}),
    "pinas": ("pinas", {}),
    "scarlet-cream": ("scarlet-cream", {}),
    # ScarletNAS with each technique
    "scarlet+sandwich": ("scarlet", SANDWICH),
    "scarlet+ranking-loss": ("scarlet", with_regularizer("scarlet", RANKING)),  # FairNAS: 3 paths to order
    "scarlet+rank-fusion": ("scarlet", fusion(ACCURACY, {"name": "depth"})),
    # Cream with each technique (its teacher distils every path of a multi-path step)
    "cream+sandwich": ("cream", SANDWICH),
    "cream+sandwich+ranking-loss": ("cream", {**SANDWICH, **with_regularizer("cream", RANKING)}),
    "cream+rank-fusion": ("cream", fusion(ACCURACY, {"name": "depth"})),
    "cream+evolution": ("cream", {"search": {"searcher": {"name": "evolution", "population": 8, "generations": 2}}}),
    # the combination with each technique
    "scarlet-cream+ranking-loss": ("scarlet-cream", with_regularizer("scarlet-cream", RANKING)),
    "scarlet-cream+rank-fusion": ("scarlet-cream", fusion(ACCURACY, {"name": "depth"})),
    "scarlet-cream+sandwich": ("scarlet-cream", SANDWICH),
    # Pi-NAS: label-free scores only, and the stabilizer on its skips
    "pinas+rank-fusion": ("pinas", fusion({"name": "knn", "k": 20, "bank_images": 2000}, {"name": "depth"})),
    "pinas+les": ("pinas", {"plugins": {"enable": ["pinas", "scarlet"]}, **with_regularizer("pinas", {"name": "les"})}),
}

REFUSED = {
    "cream+ranking-loss": (
        "cream", with_regularizer("cream", RANKING),
        r"regularizer 'ranking-loss' compares the paths of a step, but sampler 'cream' trains 1 path per step",
    ),
    "pinas+sandwich": (
        "pinas", SANDWICH,
        r"regularizer 'cross-path-infonce' pairs the two paths of a step .* but sampler 'sandwich' trains 4 per step",
    ),
    "pinas+fairnas": (
        "pinas", {"sampler": {"name": "fairnas"}},
        r"regularizer 'cross-path-infonce' pairs the two paths of a step .* but sampler 'fairnas' trains 3 per step",
    ),
    "pinas+ranking-loss": (
        "pinas", with_regularizer("pinas", RANKING),
        r"regularizer 'cross-path-infonce' needs train.label_loss: none, regularizer 'ranking-loss' needs train.label_loss: ce; they cannot be combined",
    ),
    "pinas+cream": (
        "pinas", {"plugins": {"enable": ["pinas", "cream"]}, **with_regularizer("pinas", {"name": "cream"})},
        r"needs train.label_loss: none, regularizer 'cream' needs train.label_loss: ce; they cannot be combined",
    ),
    "pinas+accuracy": (
        "pinas", {"evaluator": ACCURACY},
        r"evaluator 'accuracy' scores paths with the supernet's classifier, which train.label_loss: none never trains",
    ),
    "pinas+rank-fusion-with-accuracy": (
        "pinas", fusion({"name": "knn", "k": 20, "bank_images": 2000}, ACCURACY),
        r"evaluator.members.1.evaluator: evaluator 'accuracy' scores paths with the supernet's classifier",
    ),
}


def merged(base: str, patch: dict[str, Any], folder: Path) -> Path:
    config = yaml.safe_load(CONFIGS[base].read_text())
    for key, value in patch.items():
        config[key] = copy.deepcopy(value)
    config["run_dir"] = str(folder / "run")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("name", sorted(VALID))
def test_combination_that_makes_sense_passes_config_check(name, tmp_path, capsys, shared_data, torch_single_thread):
    base, patch = VALID[name]
    path = merged(base, patch, tmp_path)
    code = run_cli(["config", "check", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"{path}: ok"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_combination_that_cannot_work_is_refused_in_one_line(name, tmp_path, capsys, shared_data, torch_single_thread):
    base, patch, reason = REFUSED[name]
    path = merged(base, patch, tmp_path)
    code = run_cli(["config", "check", str(path)])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert re.search(reason, lines[0]), lines[0]
