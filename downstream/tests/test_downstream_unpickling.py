"""Code-running pickles handed in as weights are refused; only the run's own checkpoints resume."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from mmengine.config import Config

import nas_downstream.mmlab  # noqa: F401  (registers NASBackbone and NASRunner)
from nas_core.api import SUBNET_FORMAT, CheckpointError, NasError
from nas_downstream.backbone import NASBackbone
from nas_downstream.runner import MANIFEST, NASRunner

pytestmark = pytest.mark.openmmlab


class RunsCode:
    """Unpickling this object creates a file: proof that code from the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def crafted(path, marker, **fields):
    torch.save({**fields, "payload": RunsCode(marker)}, path)
    return path


def test_crafted_pickle_as_backbone_weights_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    evil = crafted(tmp_path / "subnet.pt", marker, format=SUBNET_FORMAT, space="nas-bench-macro", space_options={"width": 0.25}, arch="12121212")
    # the file really runs code when fully unpickled (checked in a throw-away copy of the marker)
    probe = tmp_path / "probe"
    torch.save({"payload": RunsCode(probe)}, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()

    with pytest.raises(CheckpointError, match="refused: weights_only"):
        NASBackbone(subnet=str(evil))  # space and arch read from the file
    backbone = NASBackbone(space="nas-bench-macro", space_options={"width": 0.25}, arch="12121212", subnet=str(evil))
    with pytest.raises(CheckpointError, match="refused: weights_only"):
        backbone.init_weights()
    supernet = NASBackbone(space="nas-bench-macro", space_options={"width": 0.25}, arch="12121212", supernet=str(evil))
    with pytest.raises(CheckpointError, match="refused: weights_only"):
        supernet.init_weights()
    # through an mmdet config: the detector's init_weights loads the backbone weights
    from mmdet.registry import MODELS

    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "det", "retinanet_nas-fpn_1x_coco.py"))
    cfg.model.backbone.update(space_options={"width": 0.25}, arch="12121212", subnet=str(evil))
    cfg.model.neck.in_channels = [16, 32, 64]
    detector = MODELS.build(cfg.model)
    with pytest.raises(NasError, match="refused"):
        detector.init_weights()
    assert not marker.exists()


def _runner(work_dir) -> NASRunner:
    from mmengine.model import BaseModel

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(2, 2)

        def forward(self, inputs, data_samples=None, mode="tensor"):
            out = self.net(inputs)
            return {"loss": out.pow(2).mean()} if mode == "loss" else out

    return NASRunner(
        model=Tiny(), work_dir=str(work_dir), train_dataloader=dict(batch_size=2, dataset=[{"inputs": torch.randn(2)} for _ in range(4)], sampler=dict(type="DefaultSampler", shuffle=False), collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)), train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2)), default_scope="mmengine",
    )


def test_resume_trusts_only_checkpoints_the_run_wrote_in_its_work_dir(tmp_path):
    work_dir = tmp_path / "work"
    runner = _runner(work_dir)
    runner.train()
    written = work_dir / "iter_2.pth"
    assert written.is_file() and (work_dir / MANIFEST).is_file()
    # mmengine's own checkpoint needs full unpickling: weights_only refuses it
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(written, weights_only=True)
    # resume from the run's own checkpoint works
    resumed = _runner(work_dir)
    resumed.resume(str(written))
    assert resumed.iter == 2

    # the same bytes outside the work dir, or a file in it the run did not write: refused
    outside = tmp_path / "elsewhere.pth"
    shutil.copy(written, outside)
    with pytest.raises(CheckpointError, match="refused to resume"):
        _runner(work_dir).resume(str(outside))
    planted = work_dir / "planted.pth"
    shutil.copy(written, planted)
    with pytest.raises(CheckpointError, match="refused to resume"):
        _runner(work_dir).resume(str(planted))
    # a recorded checkpoint whose bytes were replaced by a code-running pickle: refused, no code ran
    marker = tmp_path / "code-ran"
    crafted(written, marker, meta={})
    with pytest.raises(CheckpointError, match="changed since this run wrote it"):
        _runner(work_dir).resume(str(written))
    # load_from (user-supplied weights) keeps weights_only
    with pytest.raises(Exception, match="Weights only load failed"):
        _runner(work_dir).load_checkpoint(str(written))
    assert not marker.exists()
    # the trusted loader scheme cannot be used directly from a config
    from mmengine.runner.checkpoint import CheckpointLoader

    with pytest.raises(CheckpointError, match="not granted"):
        CheckpointLoader.load_checkpoint("nas-trusted-resume://" + str(written))
    assert not marker.exists()
