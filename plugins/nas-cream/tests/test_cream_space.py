"""The Cream ImageNet space, its FLOPs fitting, and the published models by name."""

from __future__ import annotations

import pytest
import torch

from nas_core.api import NasError, build_space

from nas_cream.space import CHOICES, PUBLISHED, _stage_macs, build_published, cream_imagenet, fit_depths, published_macs


@pytest.mark.parametrize("name, reported", [("cream-s", 287e6), ("cream-l", 604e6)])
def test_published_models_rebuilt_within_two_percent_of_their_macs(name, reported):
    counts = published_macs(name)
    # MACs are counted exactly from the architecture (no data, no rounding that depends on the
    # processor or threads): these bounds check a fixed number, so their margin is not noise.
    print(f"[margin] {name} thop-style MACs relative error: observed {abs(counts['thop_style'] / reported - 1):.3g}, bound 0.02")
    assert counts["reported"] == reported
    # the authors' convention (thop: conv + linear + 2 per BatchNorm output element)
    assert abs(counts["thop_style"] / reported - 1) < 0.02
    # conv + linear only (the engine's counter) is a few percent lower; pinned so a change shows
    assert 0.95 < counts["macs"] / reported < 0.975


def test_published_architectures_are_the_released_choices():
    s, l = PUBLISHED["cream-s"], PUBLISHED["cream-l"]
    assert s.depths == (1, 2, 3, 4, 3) and l.depths == (5, 5, 5, 6, 6) and s.resolution == l.resolution == 224
    assert [CHOICES[c].name for c in s.arch[:4]] == ["k3e4", "k5e6", "k5e6", "k5e6"]  # single-layer stage keeps k3e4
    assert l.arch[:5] == (3, 3, 2, 3, 3) and len(l.arch) == 27


def test_published_network_runs_at_its_resolution():
    net = build_published("cream-s").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_depth_fitting_is_maximal_within_the_interval():
    depths, resolution = fit_depths(None, 300e6)
    assert resolution == 224
    fixed, stages = _stage_macs(224)

    def largest(ds):
        return fixed + sum(max(stages[s][min(i, 1)]) for s, d in enumerate(ds) for i in range(d))

    assert largest(depths) <= 300e6
    for s in range(5):  # one more layer anywhere breaks the bound
        grown = list(depths)
        grown[s] += 1
        assert grown[s] > 4 or largest(grown) > 300e6
    with pytest.raises(NasError, match="min_mmacs"):
        fit_depths(2000e6, 2100e6, max_depth=1)


def test_space_registered_with_presets_and_fitting():
    space = build_space("cream-imagenet", {"preset": "cream-l"})
    assert len(space.layers) == 27 and space.input_size == (224, 224)
    assert space.decode(space.encode(PUBLISHED["cream-l"].arch)) == PUBLISHED["cream-l"].arch
    assert len(cream_imagenet(depths=[1, 1, 2, 2, 1], resolution=160).layers) == 7
    with pytest.raises(NasError, match="unknown preset"):
        cream_imagenet(preset="cream-xl")


def test_meta_step_differentiates_twice_through_the_cream_se_gates():
    import torch.nn.functional as F

    from nas_cream.board import BoardEntry, PathBoard
    from nas_cream.meta import MetaMatchingNetwork, meta_step
    from nas_cream.space import cream_space

    torch.manual_seed(0)
    supernet = cream_space((1, 1, 1, 1, 1), resolution=32, num_classes=10).build_supernet().train()
    board = PathBoard(3)
    for i, arch in enumerate([(0, 1, 2, 3, 4), (5, 5, 5, 5, 5)]):
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            board.offer(BoardEntry(arch, 50.0 + i, 1, x, F.softmax(supernet(x, arch), 1), i))
    meta = MetaMatchingNetwork(10, 4)
    before = meta.linear.weight.detach().clone()
    out = meta_step(meta, torch.optim.Adam(meta.parameters(), 1e-3), supernet, (2, 2, 2, 2, 2), board,
                    torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)), 0.1, 1.0)
    assert out["grad_norm"] > 0 and not torch.equal(before, meta.linear.weight)
    gate = supernet.layers[0].candidates[0].se.gate
    assert "forward" not in gate.__dict__  # the twice-differentiable stand-in is removed again
