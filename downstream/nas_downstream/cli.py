"""``nas finetune``: the subcommand this package adds to the ``nas`` command line.

    nas finetune EXPORT --task TASK --data-root DIR --out CONFIG.py
                 [--input-size WxH] [--batch-size N] [--dry-run] [--train] ...

It writes the config (:mod:`nas_downstream.finetune`), prints the backbone's stages and the
pyramid it built, and with ``--dry-run`` measures what one training iteration costs
(:mod:`nas_downstream.cost`): first an estimate from two reduced synthetic inputs (seconds),
and only if that fits the device, one real iteration at the configured input on the real data.
``--train`` estimates too and refuses to start a run that cannot fit, naming what to change.

Registered through the ``nas_core.commands`` entry point (see ``pyproject.toml``) as the
:class:`nas_core.Command` ``finetune``, so the engine never imports the bridge. This module stays
light -- ``nas --help`` imports it -- and loads the engine's API and OpenMMLab only when the
command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from nas_core import Command

GB = 1024**3
FIT_MARGIN = 0.9  # warn above 90% of what the device has free


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``nas finetune``."""
    parser.add_argument("export", help="exported subnet.pt or its folder")
    parser.add_argument("--task", required=True, help="retinanet-coco, mask-rcnn-coco, upernet-ade20k or upernet-cityscapes")
    parser.add_argument("--data-root", required=True, help="the data set's folder")
    parser.add_argument("--out", required=True, help="config file to write (.py)")
    parser.add_argument("--supernet", help="inherit backbone weights from this supernet checkpoint instead")
    parser.add_argument("--work-dir", help="the Runner's work_dir (default: work_dirs/<config name>)")
    parser.add_argument("--out-indices", help="backbone stages fed to the neck, e.g. 1,2 (default: the task's pyramid levels)")
    parser.add_argument("--input-size", help="training input as WIDTHxHEIGHT (default: the task's, 1333x800 COCO, 512x512 ADE20K, 1024x512 Cityscapes)")
    parser.add_argument("--batch-size", type=int, help="images per device and step (default: the task's)")
    parser.add_argument("--dry-run", action="store_true", help="measure one real training iteration: peak memory and seconds")
    parser.add_argument("--train", action="store_true", help="also fine-tune and evaluate now with mmengine's Runner")


def run(args: argparse.Namespace) -> int:
    """Write the config, print what was built; dry-run and / or train when asked."""
    import nas_downstream
    from nas_core.api import NasError

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # imported by mmengine
    nas_downstream.require_openmmlab()
    from nas_downstream.finetune import parse_size, write_config

    indices = None
    if args.out_indices:
        try:
            indices = [int(v) for v in args.out_indices.split(",")]
        except ValueError:
            raise NasError(f"--out-indices '{args.out_indices}': give comma-separated integers, e.g. 1,2,3") from None
    size = parse_size(args.input_size) if args.input_size else None
    written = write_config(args.export, args.task, args.data_root, args.out, args.supernet, args.work_dir, indices, input_size=size, batch_size=args.batch_size)
    for line in written.describe():
        print(line)
    print(f"wrote {written.path} (run: python -m nas_downstream.train {written.path})")
    if args.dry_run or args.train:
        estimate = check_fits(written, refuse=args.train)
        if args.dry_run:
            dry_run(written, estimate["available_memory_bytes"])
    if args.train:
        from nas_downstream.train import run as train

        train(str(written.path))
    return 0


def _cost(config: Path, *flags: str) -> dict:
    """``python -m nas_downstream.cost`` in a process of its own; its JSON result."""
    from nas_core.api import NasError

    with tempfile.TemporaryDirectory(prefix="nas-finetune-") as tmp:
        out = Path(tmp) / "cost.json"
        proc = subprocess.run([sys.executable, "-m", "nas_downstream.cost", str(config), *flags, "--json", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
            if errors:
                raise NasError(f"{config}: {errors[-1][len('error:'):].strip()}")
            if proc.returncode < 0:
                raise NasError(f"{config}: the measuring process was killed by signal {-proc.returncode} (out of memory?); lower --input-size or --batch-size")
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise NasError(f"{config}: measuring failed: {last[:300]}")
        return json.loads(out.read_text())


def _size_text(result: dict) -> str:
    width, height = result["input_size"]
    return f"{width}x{height} input, batch {result['batch_size']}"


def check_fits(written, refuse: bool) -> dict:
    """Estimate peak memory (seconds, synthetic data); one error line if it cannot fit."""
    from nas_core.api import NasError

    result = _cost(written.path, "--estimate")
    need, have = result["peak_memory_bytes"], result["available_memory_bytes"]
    print(f"estimate: {need / GB:.1f} GB peak memory, {result['seconds_per_iteration']:.1f} s per iteration "
          f"on {result['device']} ({_size_text(result)}; {have / GB:.1f} GB available)")
    if need > have:
        action = "refusing to train" if refuse else "not running the dry-run iteration"
        raise NasError(
            f"{written.path}: {_size_text(result)} needs about {need / GB:.1f} GB on {result['device']}, "
            f"{have / GB:.1f} GB are available; {action}: lower --input-size (or --batch-size) and write the config again"
        )
    if need > FIT_MARGIN * have:
        print(f"warning: the estimate uses more than {FIT_MARGIN:.0%} of the available memory; consider a smaller --input-size or --batch-size")
    return result


def dry_run(written, available: int) -> dict:
    """One real training iteration at the configured input on the current device (``available``:
    the device's free memory before it started)."""
    result = _cost(written.path, "--iterations", "1")
    need, have = result["peak_memory_bytes"], available
    print(f"dry run: one training iteration on {result['device']} ({_size_text(result)}): peak memory {need / GB:.2f} GB "
          f"({result['memory_kind']}), {result['seconds'][0]:.1f} s")
    if need > FIT_MARGIN * have:
        print(f"warning: that is above {FIT_MARGIN:.0%} of the {have / GB:.1f} GB available; consider a smaller --input-size or --batch-size")
    return result


finetune = Command(help="write an mmdet/mmseg config for an exported subnet, with its cost (needs OpenMMLab)", add_arguments=add_arguments, run=run)
