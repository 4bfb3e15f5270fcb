"""What a fine-tuning config costs: peak memory and seconds per training iteration, measured.

Two measurements, each meant to run in a process of its own (``python -m nas_downstream.cost``)
so that its peak memory is the run's and nothing else's:

- :func:`estimate` (seconds, no data set): the config's model and optimizer take real training
  steps on synthetic batches (random images, a few boxes / masks or a random label map) at two
  reduced input sizes with the configured batch size; peak memory and time are fitted as
  ``a + b * pixels`` and extrapolated to the configured input. This is what ``nas finetune``
  checks against the device's memory before it starts anything long.
- :func:`measure`: the config itself, unchanged but for the loop length, trained for N
  iterations with mmengine's Runner on the real data (no validation, no checkpoints, data
  loaded in the training process so its memory is counted); seconds of each iteration and the
  process's peak memory.

Peak memory is the device's: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the process's
resident-set high-water mark (``VmHWM``, reset between probes through ``/proc/self/clear_refs``
where Linux allows it; ``ru_maxrss`` otherwise). It includes the Python process itself
(interpreter, torch, OpenMMLab: about 1 GB on CPU).

    python -m nas_downstream.cost CONFIG --estimate --json out.json
    python -m nas_downstream.cost CONFIG --iterations 2 --json out.json
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import math
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from nas_core.api import NasError

GB = 1024**3
PROBE_MAX_PIXELS = 512 * 512  # the larger probe's input area stays below this (per image)
PROBE_MIN_SIDE = 16


# ------------------------------------------------------------------------------ devices and memory


def current_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def available_memory(device: str) -> int:
    """Bytes a new training process can use now: free CUDA memory, or the host's MemAvailable
    (capped by a cgroup memory limit when one is set)."""
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    available = None
    try:
        match = re.search(r"MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        available = int(match.group(1)) * 1024 if match else None
    except OSError:
        pass
    if available is None:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        available = pages * size
    try:  # cgroup v2 limit (containers)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return int(available)


class PeakMemory:
    """Peak memory of this process on ``device`` since the last :meth:`reset`."""

    def __init__(self, device: str):
        self.device = device
        self.resettable = device.startswith("cuda") or self._clear_refs()

    @staticmethod
    def _clear_refs() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            return True
        except OSError:
            return False

    @property
    def kind(self) -> str:
        if self.device.startswith("cuda"):
            return "torch.cuda.max_memory_allocated"
        return "process resident set high-water mark (VmHWM)" if self.resettable else "process ru_maxrss (not resettable)"

    def reset(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return
        try:  # hand freed heap memory back, so the next peak is not hidden in glibc's cache
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if self.resettable:
            self._clear_refs()

    def peak(self) -> int:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated())
        if self.resettable:
            match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
            if match:
                return int(match.group(1)) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


# ------------------------------------------------------------------------------ the config's task


def _task_of(cfg) -> Any:
    from nas_downstream.finetune import TASKS, configured_input

    head = cfg.model.get("decode_head") or cfg.model.get("bbox_head") or cfg.model.get("roi_head")
    kind = "upernet" if cfg.model.get("decode_head") else "mask-rcnn" if cfg.model.get("roi_head") else "retinanet"
    if head is None:
        raise NasError("not a RetinaNet, Mask R-CNN or UPerNet config")
    task = next(t for t in TASKS.values() if t.kind == kind)
    size, batch = configured_input(cfg, task)
    return task, size, batch


def _load(config: str | Path):
    from mmengine.config import Config

    import nas_downstream.mmlab  # noqa: F401  (NASBackbone, NASRunner)

    path = Path(config)
    if not path.is_file():
        raise NasError(f"{path}: config not found")
    return Config.fromfile(str(path))


# ------------------------------------------------------------------------------ estimate


def _synthetic_batch(task, size: tuple[int, int], batch: int, num_classes: int, seed: int) -> dict[str, list]:
    """A batch as the task's dataloader delivers it (uint8 images + data samples), random content."""
    from mmengine.structures import InstanceData, PixelData

    width, height = size
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8))
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width), scale_factor=(1.0, 1.0), flip=False)
        if task.scope == "mmseg":
            from mmseg.structures import SegDataSample

            sample = SegDataSample(metainfo=meta)
            cells = torch.randint(0, num_classes, (1, 1, max(1, height // 32), max(1, width // 32)), generator=g).float()
            labels = torch.nn.functional.interpolate(cells, size=(height, width), mode="nearest").long()[0]
            sample.gt_sem_seg = PixelData(data=labels)
        else:
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks

            sample = DetDataSample(metainfo={**meta, "batch_input_shape": (height, width)})
            count = 6
            wh = torch.rand(count, 2, generator=g) * 0.5 + 0.1
            xy = torch.rand(count, 2, generator=g) * (1 - wh)
            boxes = torch.cat([xy, xy + wh], dim=1) * torch.tensor([width, height, width, height])
            instances = InstanceData(bboxes=boxes, labels=torch.randint(0, num_classes, (count,), generator=g))
            if task.kind == "mask-rcnn":
                masks = torch.zeros(count, height, width, dtype=torch.uint8)
                for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
                    masks[i, y0:y1, x0:x1] = 1
                instances.masks = BitmapMasks(masks.numpy(), height, width)
            sample.gt_instances = instances
        samples.append(sample)
    return {"inputs": inputs, "data_samples": samples}


def _num_classes(cfg) -> int:
    model = cfg.model
    for head in (model.get("decode_head"), model.get("bbox_head"), (model.get("roi_head") or {}).get("bbox_head")):
        if head and "num_classes" in head:
            return int(head["num_classes"])
    return 1


def probe_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Two reduced inputs with the aspect ratio of ``size``: the larger a quarter of its area
    (at most PROBE_MAX_PIXELS), the smaller a quarter of that; sides multiples of 8."""
    width, height = size
    factor = min(0.5, math.sqrt(PROBE_MAX_PIXELS / (width * height)))

    def side(v: float) -> int:
        return max(PROBE_MIN_SIDE, int(round(v / 8)) * 8)

    large = (side(width * factor), side(height * factor))
    small = (side(width * factor / 2), side(height * factor / 2))
    return [small, large] if small[0] * small[1] < large[0] * large[1] else [large, (width, height)]


def estimate(config: str | Path, device: str | None = None) -> dict[str, Any]:
    """Peak memory and seconds of one training iteration at the configured input, extrapolated
    from real training steps at two reduced inputs (see the module docstring)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    cfg = _load(config)
    task, size, batch = _task_of(cfg)
    device = device or current_device()
    init_default_scope(task.scope)
    registry = importlib.import_module(f"{task.scope}.registry").MODELS
    meter = PeakMemory(device)
    model = registry.build(cfg.model).to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    classes = _num_classes(cfg)
    sizes = probe_sizes(size)

    def step(probe: tuple[int, int], seed: int) -> tuple[int, float]:
        if task.scope == "mmseg":
            model.data_preprocessor.size = (probe[1], probe[0])
        data = _synthetic_batch(task, probe, batch, classes, seed)
        meter.reset()
        start = time.perf_counter()
        model.train_step(data, optim_wrapper)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return meter.peak(), time.perf_counter() - start

    step(sizes[0], 0)  # warm-up: optimizer state, lazy initialisation, allocator pools
    (m1, t1), (m2, t2) = step(sizes[0], 1), step(sizes[1], 2)
    p1, p2, target = (w * h for w, h in (*sizes, size))
    slope_m, slope_t = max(0.0, (m2 - m1) / (p2 - p1)), max(0.0, (t2 - t1) / (p2 - p1))
    return {
        "device": device,
        "input_size": list(size),
        "batch_size": batch,
        "probes": [{"input_size": list(s), "peak_memory_bytes": m, "seconds": t} for s, m, t in ((sizes[0], m1, t1), (sizes[1], m2, t2))],
        "peak_memory_bytes": int(m2 + slope_m * (target - p2)),
        "seconds_per_iteration": t2 + slope_t * (target - p2),
        "memory_kind": meter.kind,
        "available_memory_bytes": available_memory(device),
    }


# ------------------------------------------------------------------------------ measure


def measure(config: str | Path, iterations: int, device: str | None = None, work_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the config for ``iterations`` iterations on its real data; time and peak memory."""
    from mmengine.hooks import Hook

    from nas_downstream.runner import NASRunner

    cfg = _load(config)
    task, size, batch = _task_of(cfg)
    device = device or current_device()
    meter = PeakMemory(device)
    seconds: list[float] = []
    cpu_seconds: list[float] = []

    class Timer(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            self.start, self.cpu = time.perf_counter(), time.process_time()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - self.start)
            cpu_seconds.append(time.process_time() - self.cpu)

    with tempfile.TemporaryDirectory(prefix="nas-cost-") as tmp:
        cfg.work_dir = str(work_dir or tmp)
        cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iterations, val_interval=iterations + 1)
        for key in ("val_cfg", "val_dataloader", "val_evaluator", "test_cfg", "test_dataloader", "test_evaluator"):
            cfg[key] = None
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
        cfg.default_hooks.checkpoint = None
        cfg.default_hooks.logger = dict(type="LoggerHook", interval=1)
        cfg.resume, cfg.load_from = False, None
        meter.reset()
        start = time.perf_counter()
        runner = NASRunner.from_cfg(cfg)
        runner.register_hook(Timer(), priority="VERY_HIGH")
        runner.train()
        total = time.perf_counter() - start
    return {
        "device": device,
        "input_size": list(size),
        "batch_size": batch,
        "iterations": len(seconds),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # process CPU time: all threads, less sensitive to other load
        "threads": torch.get_num_threads(),
        "seconds_total": total,
        "peak_memory_bytes": meter.peak(),
        "memory_kind": meter.kind,
        "available_memory_bytes": available_memory(device),
    }


# ------------------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas_downstream.cost", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--estimate", action="store_true", help="extrapolate from two reduced synthetic inputs (no data set)")
    parser.add_argument("--iterations", type=int, default=1, help="real training iterations to measure (default 1)")
    parser.add_argument("--device", help="cpu or cuda[:N] (default: cuda when present)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    try:
        result = estimate(args.config, args.device) if args.estimate else measure(args.config, args.iterations, args.device)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    result.update(config=str(args.config), kind="estimate" if args.estimate else "measured", load_avg=list(os.getloadavg()))
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
