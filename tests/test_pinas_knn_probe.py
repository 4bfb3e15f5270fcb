"""The Pi-NAS kNN probe's feature-spread measures mean what its results file says they mean."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from nas_test_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
pytest.importorskip("nas_pinas")
import pinas_knn_probe as probe  # noqa: E402


def test_mean_cosine_is_one_for_collapsed_features_and_zero_for_orthogonal_ones():
    collapsed = F.normalize(torch.ones(6, 4), dim=1)
    assert probe.mean_cosine(collapsed) == pytest.approx(1.0)
    assert probe.mean_cosine(torch.eye(5)) == pytest.approx(0.0)


def test_effective_rank_counts_the_directions_the_features_use():
    generator = torch.Generator().manual_seed(0)
    line = torch.randn(200, 1, generator=generator) @ torch.randn(1, 16, generator=generator)
    spread = torch.randn(200, 16, generator=generator)
    assert probe.effective_rank(line) == pytest.approx(1.0, abs=0.05)
    assert probe.effective_rank(spread) > 12  # 16 isotropic directions: 15.8 with this seed
