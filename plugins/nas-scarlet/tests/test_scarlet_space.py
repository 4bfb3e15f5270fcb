"""The ScarletNAS ImageNet space and the published SCARLET-A/B/C built from their choices."""

from __future__ import annotations

import pytest
import torch

from nas_core.api import ArchitectureError
from nas_core.testing import open_run
from nas_scarlet.space import LAYOUT, PUBLISHED, REPORTED, SKIP, scarlet_space


@pytest.fixture(scope="module")
def space():
    return scarlet_space()


def test_layout_and_choices(space):
    assert len(space.layers) == 19
    assert [layer.out_channels for layer in space.layers] == [c for c, _ in LAYOUT]
    assert [i for i, layer in enumerate(space.layers) if layer.stride == 2] == [0, 2, 6, 14]
    skippable = [i for i, layer in enumerate(space.layers) if any(op.is_skip for op in layer.choices)]
    assert skippable == [1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17]
    assert all(space.layers[i].shape_preserving for i in skippable)
    assert set(space.num_choices) == {12, 13}
    names = {op.name for op in space.layers[1].choices}
    assert {"K3_E3", "K7_E6_SE", "Identity"} <= names and len(names) == 13


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_macs_and_params_within_two_percent(space, name):
    arch = space.decode(name)
    assert space.num_identities(arch) == sum(c == SKIP for c in PUBLISHED[name])
    macs, params = space.complexity(arch)
    _, reported_macs, reported_params = REPORTED[name]
    # Exact counts from the architecture (no data, no processor- or thread-dependent rounding):
    # the bounds check fixed numbers, so their margin is not noise.
    print(f"[margin] {name} MACs relative error: observed {abs(macs / reported_macs - 1):.3g}, bound 0.02")
    print(f"[margin] {name} params relative error: observed {abs(params / reported_params - 1):.3g}, bound 0.02")
    assert abs(macs / reported_macs - 1) < 0.02, f"{name}: {macs / 1e6:.1f}M MACs vs {reported_macs / 1e6:.0f}M"
    assert abs(params / reported_params - 1) < 0.02, f"{name}: {params / 1e6:.3f}M params vs {reported_params / 1e6:.1f}M"
    # the string form round-trips
    assert space.decode(space.encode(arch)) == arch


def test_published_network_runs_and_counts_what_it_holds(space):
    subnet = space.build_published("SCARLET-B")
    arch = space.published("SCARLET-B")
    assert sum(p.numel() for p in subnet.parameters()) == space.complexity(arch)[1]
    with torch.no_grad():
        out = subnet.eval()(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000)


def test_unknown_names_and_bad_strings_are_one_line_errors(space):
    with pytest.raises(ArchitectureError, match="known: SCARLET-A"):
        space.decode("SCARLET-D")
    with pytest.raises(ArchitectureError, match="layer 0"):
        space.decode("c" + "0" * 18)  # layer 0 has no skip (stride 2)


def test_registered_and_configurable(tmp_path):
    run = open_run(None, ["space.name=scarlet-imagenet", "space.width=0.5", "space.num_classes=10", "space.input_size=64", f"run_dir={tmp_path}"])
    assert run.space.name == "scarlet-imagenet" and run.space.input_size == (64, 64)
    assert run.space.layers[-1].out_channels == 160
    assert run.space.decode("scarlet_c") == scarlet_space().decode("SCARLET-C")
