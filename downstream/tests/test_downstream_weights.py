"""Backbone weights: inherited from a supernet checkpoint == exported subnet, for every space."""

from __future__ import annotations

import random

import pytest
import torch

import nas_downstream.mmlab  # noqa: F401  (registers NASBackbone)
from nas_core.api import CHECKPOINT_FORMAT, NasError, save_atomic, space_names, validated_space_options
from nas_core.testing import export_subnet, open_run
from nas_downstream.backbone import NASBackbone, backbone_features

pytestmark = pytest.mark.openmmlab

SPACES = space_names()


# Spaces whose size is set by options the generic rules below do not know.
KNOWN_TINY = {"cream-imagenet": {"depths": [1, 1, 1, 1, 1], "resolution": 64}}


def tiny_options(space_name: str) -> dict:
    """Small settings where the space's options allow them: width 0.25, 64-pixel inputs."""
    fields = validated_space_options(space_name)  # every option, with its default
    options = {"width": 0.25} if "width" in fields else {}
    options.update({k: 64 for k in ("input_size", "image_size", "resolution") if k in fields})
    options.update({k: v for k, v in KNOWN_TINY.get(space_name, {}).items() if k in fields})
    return options


def scramble(module: torch.nn.Module, seed: int) -> None:
    """Distinct random values in every parameter and buffer, so a wrong mapping shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                values = torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name else torch.randn(t.shape, generator=g) * 0.1
                t.copy_(values)


def supernet_and_export(space_name: str, tmp_path):
    options = tiny_options(space_name)
    run = open_run({"device": "cpu", "run_dir": str(tmp_path), "space": {"name": space_name, **options}, "evaluator": {"name": "accuracy", "bn_recal_batches": 0}})
    scramble(run.supernet, seed=1)
    checkpoint = save_atomic(
        {"format": CHECKPOINT_FORMAT, "space": space_name, "space_options": run.config.space.options.model_dump(mode="json"), "step": 0, "supernet": run.supernet.state_dict()},
        tmp_path / "checkpoint.pt",
    )
    arch = run.space.sample(random.Random(7))
    # The MACs / params summary of the export is not under test here and costs a per-op FLOP
    # count over the whole space; the subnet.pt weights are written exactly as always.
    run.space.complexity = lambda arch: (0, 0)
    export_subnet(run, arch, tmp_path / "export", onnx=False)
    return run, options, checkpoint, arch


@pytest.mark.parametrize("space_name", SPACES)
def test_supernet_weights_equal_exported_subnet(space_name, tmp_path):
    run, options, checkpoint, arch = supernet_and_export(space_name, tmp_path)
    arch_text = run.space.encode(arch)
    inherited = NASBackbone(space=space_name, space_options=options, arch=arch_text, supernet=str(checkpoint))
    exported = NASBackbone(subnet=str(tmp_path / "export"))  # space, options and arch from the file
    fresh = NASBackbone(space=space_name, space_options=options, arch=arch_text)
    for backbone in (inherited, exported, fresh):
        backbone.init_weights()
    assert exported.space_name == space_name and exported.arch_text == arch_text
    a, b = inherited.state_dict(), exported.state_dict()
    assert list(a) == list(b) and len(a) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # ... and they are the supernet's weights of that path, not an initialisation
    supernet_state = run.supernet.state_dict()
    stem_key = next(k for k in a if k.startswith("body.stem.") and k.endswith("weight"))
    assert torch.equal(a[stem_key], supernet_state[stem_key[len("body."):]])
    assert any(not torch.equal(a[k], v) for k, v in fresh.state_dict().items() if v.is_floating_point())
    x = torch.randn(2, 3, *run.space.input_size)
    inherited.eval(), exported.eval()
    with torch.no_grad():
        outs_a, outs_b = inherited(x), exported(x)
    features = backbone_features(space_name, options)
    assert [o.shape[1] for o in outs_a] == list(features.channels) == list(inherited.out_channels)
    assert [x.shape[-1] // o.shape[-1] for o in outs_a] == list(features.strides)
    for oa, ob in zip(outs_a, outs_b):
        assert torch.equal(oa, ob)


def test_out_indices_frozen_stages_norm_eval_syncbn():
    space = "nas-bench-macro"
    bb = NASBackbone(space=space, space_options={"width": 0.25}, arch="12121212", out_indices=(1, 2), frozen_stages=1, norm_eval=True, norm_cfg={"type": "SyncBN", "requires_grad": True})
    assert bb.out_channels == (32, 64) and bb.strides == (4, 8)
    outs = bb(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 8, 8), (1, 64, 4, 4)]
    bb.train()
    frozen = [bb.body.stem, *list(bb.body.layers)[:2]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in bb.body.layers[2].parameters())
    bns = [m for m in bb.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(isinstance(m, torch.nn.SyncBatchNorm) for m in bns)
    assert all(not m.training for m in bns)  # norm_eval
    # single process: SyncBN behaves as BN and leaves running stats alone under norm_eval
    before = bns[-1].running_mean.clone()
    bb(torch.randn(2, 3, 32, 32)).__len__()
    assert torch.equal(before, bns[-1].running_mean)
    # the body stops after the deepest requested feature (no unused parameters under DDP)
    only_first = NASBackbone(space=space, space_options={"width": 0.25}, arch="12121212", out_indices=(0,))
    assert len(only_first.body.layers) == 2
    frozen_bn = NASBackbone(space=space, space_options={"width": 0.25}, arch="12121212", norm_cfg={"type": "BN", "requires_grad": False})
    assert all(not p.requires_grad for m in frozen_bn.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"space": "nas-bench-macro", "arch": "1212"}, "has 4 characters"),
        ({"space": "nas-bench-macro", "arch": "12121212", "out_indices": (3,)}, "out_indices"),
        ({"space": "nas-bench-mcro", "arch": "12121212"}, "did you mean 'nas-bench-macro'"),
        ({"space": "nas-bench-macro"}, "needs space= and arch="),
        ({"space": "nas-bench-macro", "arch": "12121212", "norm_cfg": {"type": "GN"}}, "norm_cfg"),
        ({"subnet": "/nonexistent/subnet.pt"}, "checkpoint not found"),
    ],
)
def test_bad_backbone_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(NasError, match=message) as info:
        NASBackbone(**kwargs)
    assert "\n" not in str(info.value)


def test_wrong_weights_are_refused(tmp_path):
    run, options, checkpoint, arch = supernet_and_export("nas-bench-macro", tmp_path)
    other = "".join("1" if c != "1" else "2" for c in run.space.encode(arch))
    with pytest.raises(NasError, match="exported architecture is"):
        NASBackbone(space="nas-bench-macro", space_options=options, arch=other, subnet=str(tmp_path / "export")).init_weights()
    with pytest.raises(NasError, match="space options"):
        NASBackbone(space="nas-bench-macro", space_options={"width": 0.5}, arch=other, supernet=str(checkpoint)).init_weights()
    with pytest.raises(NasError, match="not an exported subnet"):
        NASBackbone(subnet=str(checkpoint))
