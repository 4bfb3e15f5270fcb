"""Strict fairness in the variable-depth space: every choice, skip included, trained equally often."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from nas_core.testing import Trainer, open_run
from nas_scarlet.les import LearnableSkip
from nas_scarlet.space import scarlet_space


def test_fair_sampler_counts_are_exactly_equal_in_the_scarlet_space(nas_kit):
    space = scarlet_space()
    config = {"seed": 3, "plugins": {"enable": ["scarlet"]}, "space": {"name": "scarlet-imagenet"}}
    sampler = nas_kit.build("sampler", {"name": "fairnas"}, config)
    assert sampler.space.layers == space.layers
    assert sampler.m == 13
    counts = [Counter() for _ in space.layers]
    for step in range(12):  # 12 steps x 13 paths: a multiple of both 12 and 13 per layer
        paths = sampler.sample(step)
        assert len(paths) == 13
        for arch in paths:
            for layer, choice in enumerate(arch):
                counts[layer][choice] += 1
        for layer, n in enumerate(space.num_choices):
            if n == 13:  # skip-eligible layers: every step is a permutation of all 13 choices
                assert sorted(arch[layer] for arch in paths) == list(range(13))
    for layer, n in enumerate(space.num_choices):
        assert set(counts[layer]) == set(range(n))
        assert set(counts[layer].values()) == {12 * 13 // n}, (layer, counts[layer])


def test_training_forwards_every_candidate_equally_with_one_update_per_step(tmp_path: Path):
    """Real CIFAR-10 steps of FairNAS + LES: count what actually runs in the supernet."""
    overrides = [
        f"run_dir={tmp_path}", "plugins.enable=[scarlet]", "space.width=0.25", "data.train_subset=500", "data.val_subset=100",
        "train.batch_size=16", "train.max_steps=4", "train.progress=false", "train.tensorboard=false",
        "sampler.name=fairnas", "regularizers=[{name: les}]",
    ]
    run = open_run(None, overrides)
    trainer = Trainer(run)
    supernet = run.supernet
    forwards: Counter = Counter()
    for i, layer in enumerate(supernet.layers):
        for c, candidate in enumerate(layer.candidates):
            candidate.register_forward_hook(lambda *_, key=(i, c): forwards.update([key]))
    updates = []
    trainer.optimizer.register_step_post_hook(lambda *_: updates.append(1))
    les = [m for m in supernet.modules() if isinstance(m, LearnableSkip)]
    assert len(les) == 5
    trainer.fit()
    assert len(updates) == 4  # one optimiser step per training step, for m = 3 paths
    expected = {(i, c): 4 for i, n in enumerate(run.space.num_choices) for c in range(n)}
    assert dict(forwards) == expected  # skip (LES) included
    assert all(m.delta.abs().max().item() > 0 for m in les)  # the stabilizers were trained
    counts = run.sampler.state_dict()["counts"]
    assert all(set(layer) == {4} for layer in counts)
