"""The stabilizer's drift from the identity, ||W - I||_F / ||I||_F per layer, in the step metrics."""

from __future__ import annotations

import math

import torch

from nas_core.api import Batch, StepContext

LES = {"plugins": {"enable": ["scarlet"]}, "regularizers": [{"name": "les"}]}


def test_drift_is_the_relative_frobenius_distance_of_each_stabilizer(nas_kit):
    run, _ = nas_kit.open(LES)
    supernet = run.supernet  # builds it and attaches the stabilizers
    les = run.regularizers[0]
    assert [layer for layer, _ in les.skips] == [0, 2]  # the tiny space's two free identities
    with torch.no_grad():
        for scale, (_, skip) in zip((0.3, 0.01), les.skips):
            skip.delta.copy_(scale * torch.randn(skip.channels, skip.channels, generator=torch.Generator().manual_seed(1)))
    expected = {}
    for layer, skip in les.skips:
        W = skip.matrix().detach()
        eye = torch.eye(skip.channels)
        expected[f"les/drift/L{layer}"] = float(torch.linalg.matrix_norm(W - eye) / torch.linalg.matrix_norm(eye))
    ctx = StepContext(run.context, 0, 0, Batch(torch.zeros(2, 3, 8, 8)), [(1, 1, 1)], supernet, lr=0.1)
    loss = torch.tensor(1.5)
    assert les.path_loss(ctx, 0, None, loss) is loss  # the loss is left alone
    for key, value in expected.items():
        assert math.isclose(ctx.metrics[key], value, rel_tol=1e-6), key
    assert math.isclose(ctx.metrics["les/drift_mean"], sum(expected.values()) / 2, rel_tol=1e-6)
    assert expected["les/drift/L0"] > 0.1 > expected["les/drift/L2"] > 0


def test_drift_is_logged_every_step_of_training(nas_kit):
    result = nas_kit.train({**LES, "train": {"max_steps": 12, "log_every_steps": 1}})
    lines = result.metrics
    assert len(lines) == 12 and all({"les/drift/L0", "les/drift/L2", "les/drift_mean"} <= set(line) for line in lines)
    assert lines[0]["les/drift_mean"] == 0.0  # W = I before the first update
    assert lines[-1]["les/drift_mean"] > 0  # and moves once paths through a skip have trained
