"""``nas finetune``: the subcommand this package adds to the ``nas`` command line.

Registered through the ``nas_core.commands`` entry point (see ``pyproject.toml``), so the engine
never imports the bridge. This module stays light -- ``nas --help`` imports it -- and loads
OpenMMLab only when the command runs.
"""

from __future__ import annotations

import argparse

from nas_core import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export", help="exported subnet.pt or its folder")
    parser.add_argument("--task", required=True, help="retinanet-coco, mask-rcnn-coco, upernet-ade20k or upernet-cityscapes")
    parser.add_argument("--data-root", required=True, help="the data set's folder")
    parser.add_argument("--out", required=True, help="config file to write (.py)")
    parser.add_argument("--supernet", help="inherit backbone weights from this supernet checkpoint instead")
    parser.add_argument("--work-dir", help="the Runner's work_dir (default: work_dirs/<config name>)")
    parser.add_argument("--out-indices", help="backbone stages to use, e.g. 1,2,3 (default: per task)")
    parser.add_argument("--train", action="store_true", help="also fine-tune and evaluate now with mmengine's Runner")


def run(args: argparse.Namespace) -> int:
    """Write the config (and with ``--train`` fine-tune and evaluate it now)."""
    import nas_downstream
    from nas_core.api import NasError

    nas_downstream.require_openmmlab()
    from nas_downstream.finetune import write_config

    indices = None
    if args.out_indices:
        try:
            indices = [int(v) for v in args.out_indices.split(",")]
        except ValueError:
            raise NasError(f"--out-indices '{args.out_indices}': give comma-separated integers, e.g. 1,2,3") from None
    path = write_config(args.export, args.task, args.data_root, args.out, args.supernet, args.work_dir, indices)
    print(f"wrote {path} (run: python -m nas_downstream.train {path})")
    if args.train:
        from nas_downstream.train import run as train

        train(str(path))
    return 0


finetune = Command(help="write an mmdet/mmseg config for an exported subnet (needs OpenMMLab)", add_arguments=add_arguments, run=run)
