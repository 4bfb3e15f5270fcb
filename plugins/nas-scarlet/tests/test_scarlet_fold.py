"""The stabilizer is removable: folded exported subnets compute what the stabilised path did."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nas_core.api import NasError, Skip, build_space, recalibrate_bn
from nas_scarlet.les import LearnableSkip, attach_les, drop_les, fold_les
from nas_scarlet.space import scarlet_space

# Folding is exact arithmetic: in float64 folded and stabilised paths agree to 1e-9 (checked for
# every architecture below). In float32 they differ by rounding, which grows over the 19 layers of
# the Scarlet space and differs between processors: the largest difference observed was 5.3e-6 on
# logits up to 3.3 (3.4e-7 in NAS-Bench-Macro), so 1e-4 leaves a 19x margin, while a wrong fold
# (dropping the stabilizer) changes the output by at least 0.088 (a bound of 100 TOL = 0.01).
TOL = 1e-4


def randomize(net: nn.Module, seed: int, les_scale: float = 0.25) -> None:
    """Random BN affine parameters and random stabilizers W = I + delta (||delta|| about 2 les_scale)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.8, 1.2, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
            elif isinstance(m, LearnableSkip):
                m.delta.normal_(0, les_scale / m.channels**0.5, generator=g)


def stabilised(space, seed: int = 0):
    torch.manual_seed(seed)
    supernet = space.build_supernet()
    attach_les(supernet)
    randomize(supernet, seed + 1)
    return supernet.eval()


def calibrated(supernet, arch, space, seed: int = 0):
    """BN running statistics estimated for this path on random images, as BN recalibration does
    before export (with arbitrary statistics the activations vanish or explode over 19 layers,
    and the output stops depending on the input)."""
    images = [torch.randn(32, 3, *space.input_size, generator=torch.Generator().manual_seed(seed * 10 + i)) for i in range(2)]
    recalibrate_bn(lambda x: supernet(x, arch), supernet, images)
    return supernet.eval()


def archs_to_test(space, count: int, seed: int) -> list[tuple[int, ...]]:
    """Random architectures plus the hard cases: all skips, skips before stride-2 and the head."""
    rng = random.Random(seed)
    skip = [next((c for c, op in enumerate(layer.choices) if op.is_skip), None) for layer in space.layers]
    all_skips = tuple(s if s is not None and layer.shape_preserving else 1 for s, layer in zip(skip, space.layers))
    archs = [all_skips]
    while len(archs) < count:
        arch = list(space.sample(rng))
        for i, s in enumerate(skip):  # skips with probability 1/2 where free, to exercise chains
            if s is not None and space.layers[i].shape_preserving and rng.random() < 0.5:
                arch[i] = s
        archs.append(tuple(arch))
    return archs


SPACES = {
    "nas-bench-macro": lambda: build_space("nas-bench-macro", {"width": 0.25}),
    "scarlet-imagenet": lambda: scarlet_space(width=0.25, num_classes=10, input_size=32),
}


@pytest.mark.parametrize("name", list(SPACES))
def test_folded_subnet_equals_stabilised_path(name):
    space = SPACES[name]()
    supernet = stabilised(space)
    x = torch.randn(3, 3, *space.input_size, generator=torch.Generator().manual_seed(5))
    folded_any, worst, scale = 0, 0.0, 0.0
    for k, arch in enumerate(archs_to_test(space, 8, seed=3)):
        calibrated(supernet, arch, space, seed=k)
        with torch.no_grad():
            reference = supernet(x, arch)
            subnet = fold_les(supernet.extract(arch)).eval()
            out = subnet(x)
            dropped = drop_les(supernet.extract(arch)).eval()(x)
        assert out.dtype == torch.float32
        print(f"[margin] {space.encode(arch)} output depends on the input: observed {(reference[0] - reference[1]).abs().max().item():.3g}, bound {100 * TOL:.3g}")
        assert (reference[0] - reference[1]).abs().max().item() > 100 * TOL  # the output depends on the input
        assert not any(isinstance(m, LearnableSkip) for m in subnet.modules())
        assert (out - reference).abs().max().item() < TOL, space.encode(arch)
        with torch.no_grad():  # in float64 the fold is exact: float32 differences are rounding only
            exact = supernet.extract(arch).double().eval()(x[:1].double())  # the stabilised path, unfolded
            exact_gap = (fold_les(supernet.extract(arch).double()).eval()(x[:1].double()) - exact).abs().max().item()
        print(f"[margin] {space.encode(arch)} float64 fold: observed {exact_gap:.3g}, bound 1e-09")
        assert exact_gap < 1e-9
        worst = max(worst, (out - reference).abs().max().item())
        scale = max(scale, reference.abs().max().item())
        if k == 0:  # the folded weights fit the plain standalone network of the architecture
            plain = space.build_subnet(arch)
            plain.load_state_dict(subnet.state_dict())
            with torch.no_grad():
                assert (plain.eval()(x) - reference).abs().max().item() < TOL
        has_les = any(space.layers[i].is_free_identity(c) for i, c in enumerate(arch))
        if has_les:
            folded_any += 1
            # dropping the trained map instead of folding it changes the function
            print(f"[margin] {space.encode(arch)} dropped vs stabilised: observed {(dropped - reference).abs().max().item():.3g}, bound {100 * TOL:.3g}")
            assert (dropped - reference).abs().max().item() > 100 * TOL
    assert folded_any >= 6
    print(f"[margin] {name} max |folded - stabilised| on logits up to {scale:.1f}: observed {worst:.3g}, bound {TOL:.3g}")


def test_fold_pushes_through_residual_layers_and_into_the_head():
    space = build_space("nas-bench-macro", {"width": 0.25})
    supernet = stabilised(space, seed=7)
    x = torch.randn(2, 3, 32, 32)
    # skips at the end (only the head conv can absorb them), before stride-2 layers (absorbed by
    # a strided MBConv or a non-free skip conv) and before residual MBConvs (pushed through them)
    for arch in [(1, 1, 2, 0, 0, 1, 2, 0), (2, 0, 1, 1, 0, 2, 0, 0), (1, 0, 1, 0, 2, 1, 1, 2)]:
        calibrated(supernet, arch, space)
        with torch.no_grad():
            ref = supernet(x, arch)
            sub = fold_les(supernet.extract(arch)).eval()
            assert (sub(x) - ref).abs().max().item() < TOL
        assert all(isinstance(sub.layers[i], Skip) and sub.layers[i].is_free for i, c in enumerate(arch) if c == 0 and i not in (0, 2, 5))


def test_attach_replaces_only_free_identities():
    space = build_space("nas-bench-macro", {"width": 0.25})
    supernet = space.build_supernet()
    replaced = attach_les(supernet)
    assert replaced == [(1, 0), (3, 0), (4, 0), (6, 0), (7, 0)]  # layers 0, 2, 5 keep their strided 1x1 conv + BN
    assert isinstance(supernet.layers[0].candidates[0], Skip) and not supernet.layers[0].candidates[0].is_free
    les = supernet.layers[1].candidates[0]
    x = torch.randn(2, les.channels, 8, 8)
    assert torch.equal(les(x), x)  # identity initialisation: same function as the plain supernet at start
    scarlet = scarlet_space(width=0.25, num_classes=10, input_size=32).build_supernet()
    assert len(attach_les(scarlet)) == 13


def test_near_singular_stabilizer_is_reported():
    space = build_space("nas-bench-macro", {"width": 0.25})
    supernet = stabilised(space)
    les = supernet.layers[6].candidates[0]
    with torch.no_grad():
        les.delta.copy_(-torch.eye(les.channels))  # W = 0
    with pytest.raises(NasError, match="near-singular"):
        fold_les(supernet.extract((1, 1, 1, 1, 1, 1, 0, 1)))
