"""The Pi-NAS ResNeSt-like space and its published architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas_core.api import ArchitectureError, inherit_state_dict
from nas_pinas.space import NAMED_ARCHS, pinas_resnest


def test_space_shape_16_blocks_4_candidates():
    space = pinas_resnest()
    assert len(space.layers) == 16 and space.num_choices == [4] * 16 and space.size == 4**16
    assert [layer.stride for layer in space.layers].count(2) == 3
    assert [f.channels for f in space.feature_info()] == [256, 512, 1024, 2048]
    assert [f.stride for f in space.feature_info()] == [4, 8, 16, 32]


def test_pinas_cls_matches_published_params_and_flops():
    space = pinas_resnest()
    arch = space.decode("pinas-cls")
    assert space.encode(arch) == NAMED_ARCHS["pinas-cls"]
    macs, params = space.complexity(arch)
    # Exact counts (no data, no processor- or thread-dependent rounding): fixed numbers, not noise.
    print(f"[margin] pinas-cls params relative error: observed {abs(params / 27.1e6 - 1):.3g}, bound 0.02")
    print(f"[margin] pinas-cls MACs relative error: observed {abs(macs / 5.38e9 - 1):.3g}, bound 0.03")
    assert abs(params / 27.1e6 - 1) < 0.02, params
    assert abs(macs / 5.38e9 - 1) < 0.03, macs


def test_named_lookup_errors_are_clear():
    space = pinas_resnest()
    with pytest.raises(ArchitectureError, match="known: pinas-cls"):
        space.named("pinas-xyz")
    with pytest.raises(ArchitectureError):
        space.decode("pinas-xyz")


def test_shared_downsample_is_part_of_every_extracted_candidate():
    space = pinas_resnest(width=0.125, num_classes=10, image_size=32, small_input=True)
    torch.manual_seed(0)
    supernet = space.build_supernet().eval()
    first = supernet.layers[0]
    shared = first.candidates[0].downsample
    assert all(c.downsample is shared for c in first.candidates)
    assert sum(p.numel() for p in shared.parameters()) > 0
    assert all(len(list(supernet.layers[1].extract(c).downsample.parameters())) == 0 for c in range(4))
    arch = space.decode("pinas-trans")
    subnet = supernet.extract(arch).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        print(f"[margin] extracted subnet vs supernet path: observed {float((subnet(x) - supernet(x, arch)).abs().max()):.3g}, bound 1e-05")
        assert torch.allclose(subnet(x), supernet(x, arch), atol=1e-5)
    # the supernet's state dict holds everything the standalone subnet needs, under mapped keys
    state = inherit_state_dict(supernet.state_dict(), subnet, arch)
    fresh = space.build_subnet(arch).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        print(f"[margin] rebuilt subnet vs extracted: observed {float((fresh(x) - subnet(x)).abs().max()):.3g}, bound 1e-05")
        assert torch.allclose(fresh(x), subnet(x), atol=1e-5)
    _, params = space.complexity(arch)
    assert params == sum(p.numel() for p in subnet.parameters())


def test_pinas_space_trains_one_unsupervised_step_from_a_config(tmp_path):
    from nas_core.testing import Trainer, open_run

    config = Path(__file__).resolve().parents[1] / "configs" / "pinas-macro.yaml"
    run = open_run(config, [
        f"run_dir={tmp_path}", "device=cpu", "space={name: pinas-resnest, width: 0.125, num_classes: 10, image_size: 32, small_input: true}",
        "data.train_subset=100", "data.val_subset=50", "train.batch_size=8", "train.max_steps=1", "train.progress=false",
        "train.tensorboard=false", "teacher.queue_size=32",
    ])
    assert run.space.name == "pinas-resnest" and run.space.num_choices == [4] * 16
    metrics = Trainer(run).fit()
    assert torch.isfinite(torch.tensor(metrics["loss"])) and "pinas/feat_std" in metrics
