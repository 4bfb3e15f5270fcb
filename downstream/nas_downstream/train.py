"""Fine-tune and evaluate a config with mmengine's Runner (``NASRunner`` unless it names another).

    python -m nas_downstream.train CONFIG [--work-dir DIR] [--resume] [--test] [--cfg-options k=v ...]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from nas_core.api import NasError


def run(config: str, work_dir: str | None = None, resume: bool = False, test: bool = False, options: Sequence[str] = ()) -> dict:
    """Train (validating on the config's schedule) and optionally test; returns the last metrics."""
    from mmengine.config import Config, DictAction
    from mmengine.registry import RUNNERS

    import nas_downstream.mmlab  # noqa: F401
    from nas_downstream.runner import NASRunner

    cfg = Config.fromfile(config)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument("--o", nargs="+", action=DictAction)
        cfg.merge_from_dict(parser.parse_args(["--o", *options]).o)
    if work_dir:
        cfg.work_dir = work_dir
    cfg.setdefault("work_dir", "work_dirs/finetune")
    if resume:
        cfg.resume = True
    runner = RUNNERS.build(cfg) if cfg.get("runner_type") else NASRunner.from_cfg(cfg)
    runner.train()
    return runner.test() if test else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas_downstream.train", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--work-dir")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in work_dir")
    parser.add_argument("--test", action="store_true", help="run the test loop after training")
    parser.add_argument("--cfg-options", nargs="+", default=[], help="key=value overrides")
    args = parser.parse_args(argv)
    try:
        metrics = run(args.config, args.work_dir, args.resume, args.test, args.cfg_options)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if metrics:
        print(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
