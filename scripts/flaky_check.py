"""Run the test suite under several thread / order / instruction-set settings and report every
test that did not pass every time (issue 17: "the README's test command must pass on any machine").

    .venv/bin/python scripts/flaky_check.py                       # the whole suite, 3 runs
    .venv/bin/python scripts/flaky_check.py --settings omp1,avx2 -- tests/test_distributed.py
    .venv/bin/python scripts/flaky_check.py --list                # what each setting does

Settings, combined with ``+`` (``omp1+shuffled``). The default, ``omp1+shuffled,omp2,unset+shuffled``,
covers in three runs what issue 17 asks for: one and two threads, unset (torch then takes one per
core), file order and two shuffled orders.

- ``omp1`` / ``omp2`` / ``unset``: ``OMP_NUM_THREADS=1``, ``2`` or not set at all, in file order.
- ``shuffled``: order shuffled by pytest-random-order (modules shuffled, tests shuffled inside
  each module; a fresh seed each time, recorded so a failing order can be replayed with
  ``--random-order-seed``). Shuffling is opt-in: the README's test
  command runs in file order.
- ``avx2`` / ``noavx``: torch's vector kernels limited to AVX2 / to none
  (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``): the rounding of another processor, on this one.

It is a heavy job: it waits for the machine through ``benchmarks/heavy_queue.py`` and holds it for
all its runs (with one ticket per run, a study that queues one ticket per training unit would
get in between every run and stretch ~1 hour into several). Started under ``heavy_queue.py run``,
it notices that an ancestor already holds the machine and does not queue again (``--no-queue``:
for a light subset only). The report (per run: passed / failed / skipped counts, wall time, load
average before and after, the slowest tests; per test: every outcome that was not a pass) is
printed and written to ``benchmarks/results/flakiness.json`` (``--out``). Exit status 1 when any test did not
pass every time.

Numeric tests print ``[margin] what: observed X, bound Y`` lines; they are collected from every
run, so the report also shows how close each such assertion came to its bound in each setting.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SETTINGS = "omp1+shuffled,omp2,unset+shuffled"

# name -> (environment changes: value None removes the variable, shuffle the order?)
SETTINGS: dict[str, tuple[dict[str, str | None], bool]] = {
    "omp1": ({"OMP_NUM_THREADS": "1"}, False),
    "omp2": ({"OMP_NUM_THREADS": "2"}, False),
    "unset": ({"OMP_NUM_THREADS": None}, False),
    "shuffled": ({}, True),  # OMP_NUM_THREADS as the other parts (or the caller's environment) set it
    "avx2": ({"OMP_NUM_THREADS": None, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
    "noavx": ({"OMP_NUM_THREADS": None, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, False),
}
MARGIN = re.compile(r"^\[margin\] (?P<what>.+?): observed (?P<observed>\S+), bound (?P<bound>\S+)", re.M)


def heavy_queue():
    """benchmarks/heavy_queue.py, loaded by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("heavy_queue", REPO / "benchmarks" / "heavy_queue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ancestors() -> set[int]:
    pids, pid = set(), os.getppid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def holding_machine(queue) -> bool:
    """True when a process above this one already holds a heavy-queue ticket."""
    mine = ancestors()
    return any(int(info.get("pid", -1)) in mine for _, info in queue.tickets())


def environment(changes: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def parse_junit(path: Path) -> dict[str, dict]:
    """test id -> {outcome, seconds, margins} from pytest's JUnit XML."""
    results = {}
    if not path.is_file():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name')}"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.get("message") or "").strip().splitlines()
                break
        else:
            message = []
        out = "".join(e.text or "" for e in case.findall("system-out"))
        margins = [{"what": m["what"], "observed": float(m["observed"]), "bound": float(m["bound"])} for m in MARGIN.finditer(out)]
        entry = {"outcome": outcome, "seconds": float(case.get("time", 0.0)), "margins": margins}
        if outcome in ("failed", "error") and message:
            entry["message"] = message[0][:300]
        if test_id in results and results[test_id]["outcome"] == "passed" and outcome == "error":
            results[test_id]["outcome"] = "error"  # a teardown error after a pass
            results[test_id]["message"] = entry.get("message", "")
            continue
        results.setdefault(test_id, entry)
    return results


def summary_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return lines[-1].strip("= ") if lines else "(no pytest summary line)"


def combined(name: str) -> tuple[dict[str, str | None], bool]:
    """Environment changes and shuffle flag of ``a+b+...`` (later parts win on the same variable)."""
    changes: dict[str, str | None] = {}
    shuffle = False
    for part in name.split("+"):
        part_changes, part_shuffle = SETTINGS[part]
        changes.update(part_changes)
        shuffle = shuffle or part_shuffle
    return changes, shuffle


def run_setting(index: int, name: str, pytest_args: list[str], work: Path, seed: int) -> dict:
    changes, shuffle = combined(name)
    label = f"{name}-{index}"
    junit = work / f"{label}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           "-o", "junit_logging=system-out", "-o", "junit_family=xunit1", "--durations=25"]
    if shuffle:
        cmd.append(f"--random-order-seed={seed}")
    cmd += pytest_args
    env = environment(changes)
    print(f"[flaky-check] {label}: {' '.join(f'{k}={v}' if v is not None else f'-{k}' for k, v in changes.items())}"
          f"{f' random-order-seed={seed}' if shuffle else ''}", flush=True)

    load_before = os.getloadavg()
    started = time.time()
    with open(work / f"{label}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.time() - started
    text = (work / f"{label}.log").read_text()
    run = {"setting": name, "label": label, "env": changes, "random_order_seed": seed if shuffle else None,
           "exit_code": proc.returncode, "seconds": round(seconds, 1), "loadavg_before": load_before,
           "loadavg_after": os.getloadavg(), "summary": summary_line(text), "log": str(work / f"{label}.log")}
    tests = parse_junit(junit)
    counts = {k: sum(1 for t in tests.values() if t["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    run.update(counts=counts, tests=tests)
    slowest = ", ".join(f"{t.split('::')[-1]} {v['seconds']:.0f}s" for t, v in sorted(tests.items(), key=lambda kv: -kv[1]["seconds"])[:3])
    print(f"[flaky-check] {label}: {run['summary']} in {run['seconds']:.0f} s (exit {run['exit_code']}); slowest: {slowest}", flush=True)
    return run


def report(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Tests that did not pass every time, and the closest margin of every [margin] line."""
    ids = sorted({t for run in runs for t in run["tests"]})
    unstable = []
    for test_id in ids:
        outcomes = {run["label"]: run["tests"].get(test_id, {}).get("outcome", "missing") for run in runs}
        if set(outcomes.values()) in ({"passed"}, {"skipped"}):
            continue
        messages = {run["label"]: run["tests"][test_id]["message"] for run in runs if run["tests"].get(test_id, {}).get("message")}
        unstable.append({"test": test_id, "outcomes": outcomes, "messages": messages})
    margins: dict[tuple[str, str], dict] = {}
    for run in runs:
        for test_id, result in run["tests"].items():
            for m in result["margins"]:
                observed, bound = abs(m["observed"]), abs(m["bound"])
                ratio = max(observed, bound) / max(min(observed, bound), 1e-300)
                entry = margins.setdefault((test_id, m["what"]), {"test": test_id, "what": m["what"], "observed": {}, "bound": m["bound"]})
                entry["observed"][run["label"]] = m["observed"]
                entry["closest_ratio"] = min(entry.get("closest_ratio", float("inf")), ratio)
    return unstable, sorted(margins.values(), key=lambda e: e["closest_ratio"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help=f"comma-separated, from: {', '.join(SETTINGS)} (default: {DEFAULT_SETTINGS})")
    parser.add_argument("--seed", type=int, default=None, help="first random-order seed (default: random; each shuffled run adds 1)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "flakiness.json")
    parser.add_argument("--work", type=Path, default=None, help="folder for logs and JUnit files (default: next to --out)")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    parser.add_argument("--no-queue", action="store_true", help="do not wait for the machine (only for a light subset of tests)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: pytest arguments (a subset of the suite)")
    args = parser.parse_args()
    if args.list:
        for name, (changes, shuffle) in SETTINGS.items():
            print(f"{name:9s} {changes}{' + shuffled order' if shuffle else ''}")
        return 0
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [p for s in settings for p in s.split("+") if p not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    if any(combined(s)[1] for s in settings) and importlib.util.find_spec("random_order") is None:
        parser.error("the 'shuffled' setting needs pytest-random-order: pip install -e '.[test]'")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    work = args.work or args.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    queue = heavy_queue()
    held = args.no_queue or holding_machine(queue)
    with contextlib.nullcontext() if held else queue.machine(f"flaky-check: {args.settings} {' '.join(pytest_args)}".strip()):
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        runs, shuffles = [], 0
        for index, name in enumerate(settings, 1):
            run_seed = seed + shuffles
            shuffles += combined(name)[1]
            runs.append(run_setting(index, name, pytest_args, work, run_seed))
    unstable, margins = report(runs)
    result = {
        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pytest_args": pytest_args,
        "python": sys.executable, "cpu_count": os.cpu_count(),
        "runs": [{k: v for k, v in run.items() if k != "tests"} for run in runs],
        "not_passing_every_time": unstable, "margins": margins,
        "durations": {run["label"]: {t: r["seconds"] for t, r in run["tests"].items()} for run in runs},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)

    print("\nsetting          passed failed error skipped   wall   load before/after  exit")
    for run in runs:
        c = run["counts"]
        print(f"{run['label']:16s} {c['passed']:6d} {c['failed']:6d} {c['error']:5d} {c['skipped']:7d} {run['seconds'] / 60:5.1f}m"
              f"   {run['loadavg_before'][0]:4.1f} / {run['loadavg_after'][0]:4.1f}       {run['exit_code']}")
    if margins:
        print("\nclosest margins ([margin] lines; ratio = larger / smaller of observed and bound, worst setting):")
        for m in margins[:15]:
            print(f"  {m['closest_ratio']:8.3g}x  {m['test']}  {m['what']}")
    if unstable:
        print(f"\n{len(unstable)} test(s) did not pass every time:")
        for u in unstable:
            print(f"  {u['test']}: " + ", ".join(f"{k} {v}" for k, v in u["outcomes"].items()))
            for label, message in u["messages"].items():
                print(f"      {label}: {message}")
    else:
        print(f"\nevery test passed in every run ({len(runs)} runs)")
    print(f"-> {args.out}")
    return 1 if unstable or any(run["exit_code"] not in (0,) for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
