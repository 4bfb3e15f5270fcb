"""What the fine-tuning configs written by ``nas finetune`` cost: task x backbone -> peak memory,
seconds per training iteration and the pyramid strides, measured on this machine.

For each backbone (an export of each registered space's reference architecture:
``nas_downstream.sample_data.REFERENCE_EXPORTS``) and each task,
the config is written exactly as ``nas finetune`` writes it (default input size, batch and
pipeline unless ``--quick``), then in a fresh process (``python -m nas_downstream.cost``):
the estimate ``nas finetune`` checks before it starts anything long (two reduced synthetic
inputs, extrapolated), and N real training iterations with mmengine's Runner on COCO /
ADE20K / Cityscapes-layout folders built from the real OpenMMLab fixtures. The first iteration
includes one-off work (allocator warm-up, lazy initialisation); seconds per iteration is the
median of the later ones. Runs are sequential: never two trainings at once.

    python benchmarks/bench_finetune.py [--quick] [--iterations 3] [--backbones macro-q,scarlet-a] [--tasks ...]

Backbone weights are the export's (from an untrained supernet: cost does not depend on the
values). Memory is the training process's peak resident set (CPU) or CUDA max allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from nas_core.config import data_root  # noqa: E402
from nas_downstream.finetune import TASKS, write_config  # noqa: E402
from nas_downstream.sample_data import TASK_LAYOUT, build_layouts, make_export  # noqa: E402

GB = 1024**3
BACKBONES = {"macro-q": "nas-bench-macro", "scarlet-a": "scarlet-imagenet", "cream-s": "cream-imagenet", "pinas-cls": "pinas-resnest"}
QUICK_SIZES = {"retinanet-coco": (320, 192), "mask-rcnn-coco": (320, 192), "upernet-ade20k": (128, 128), "upernet-cityscapes": (256, 128)}


def cost(config: Path, *flags: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cost.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nas_downstream.cost", str(config), *flags, "--json", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["killed"])[-1][-400:], "returncode": proc.returncode}
        result = json.loads(out.read_text())
        result["process_seconds"] = time.perf_counter() - start
        return result


def markdown_table(rows: list[dict]) -> str:
    """The README table: task x backbone -> measured peak memory, seconds per iteration, pyramid."""
    lines = ["| task | backbone | input (WxH), batch | peak memory | s / iteration | pyramid strides (fed backbone strides + extra stages) |",
             "|------|----------|--------------------|-------------|---------------|------------------------------------------------------|"]
    for r in rows:
        fed = [s for s in r["neck_input_strides"]][: len(r["neck_input_strides"]) - len(r["extra_stages"])]
        extra = f" + {len(r['extra_stages'])} extra" if r["extra_stages"] else ""
        memory = f"{r['peak_memory_gb']:.1f} GB" if r["peak_memory_gb"] is not None else "failed"
        seconds = f"{r['seconds_per_iteration']:.1f}" if r["seconds_per_iteration"] is not None else "-"
        lines.append(f"| {r['task']} | {r['backbone']} | {r['input_size'][0]}x{r['input_size'][1]}, {r['batch_size']} | {memory} | {seconds} | "
                     f"{r['pyramid_strides']} ({fed}{extra}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one backbone, reduced inputs, one iteration (checks the script)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--table", metavar="RESULT_JSON", help="print the README table of a result file and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())["rows"]))
        return
    backbones = ["macro-q"] if args.quick else args.backbones.split(",")
    tasks = ["retinanet-coco", "upernet-ade20k"] if args.quick else args.tasks.split(",")
    iterations = 1 if args.quick else args.iterations
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        tmp = Path(tmp)
        layouts = build_layouts(data_root() / "openmmlab-fixtures", tmp / "data")
        for name in backbones:
            space = BACKBONES[name]
            export = make_export(space, tmp / name)
            for task in tasks:
                size = QUICK_SIZES[task] if args.quick else None
                written = write_config(export, task, layouts[TASK_LAYOUT[task]], tmp / "configs" / f"{task}-{name}.py", input_size=size)
                estimate = cost(written.path, "--estimate")
                measured = cost(written.path, "--iterations", str(iterations))
                seconds = measured.get("seconds", [])
                steady = seconds[1:] or seconds
                row = {
                    "task": task, "backbone": name, "space": space, "arch": written.arch,
                    "input_size": list(written.input_size), "batch_size": written.batch_size,
                    "backbone_strides": [s.stride for s in written.pyramid.backbone], "backbone_channels": [s.channels for s in written.pyramid.backbone],
                    "neck_input_strides": written.pyramid.in_strides, "extra_stages": list(written.pyramid.extra_stages), "pyramid_strides": written.pyramid.out_strides,
                    "peak_memory_gb": round(measured["peak_memory_bytes"] / GB, 2) if "peak_memory_bytes" in measured else None,
                    "seconds_per_iteration": round(statistics.median(steady), 2) if steady else None,
                    "estimate_peak_memory_gb": round(estimate["peak_memory_bytes"] / GB, 2) if "peak_memory_bytes" in estimate else None,
                    "estimate_seconds_per_iteration": round(estimate["seconds_per_iteration"], 2) if "seconds_per_iteration" in estimate else None,
                    "measured": measured, "estimate": estimate,
                }
                rows.append(row)
                print(f"{task:19s} {name:10s} {row['input_size'][0]}x{row['input_size'][1]} b{row['batch_size']}  "
                      f"peak {row['peak_memory_gb']} GB (estimate {row['estimate_peak_memory_gb']})  "
                      f"{row['seconds_per_iteration']} s/it (estimate {row['estimate_seconds_per_iteration']})  pyramid {row['pyramid_strides']}"
                      + (f"  ERROR {measured['error']}" if "error" in measured else ""), flush=True)
                complete = len(rows) == len(backbones) * len(tasks)
                data = {"iterations": iterations, "threads_env": os.environ.get("OMP_NUM_THREADS"), "complete": complete,
                        "load_avg_before": list(load_before), "load_avg_after": list(os.getloadavg()), "rows": rows}
                path = write_result("finetune", data, args.quick)  # after every row: a killed run keeps what it measured
    print(markdown_table(rows))
    print(f"-> {path} (results)")


if __name__ == "__main__":
    main()
