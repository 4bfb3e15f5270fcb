"""One heavy job at a time: a first-come-first-served queue for benchmarks, studies and test suites.

On a 2-core machine two heavy jobs at once make both wall times meaningless (OpenMP threads spin
against each other). Every heavy job takes a ticket in a shared folder and waits until its
ticket is the oldest one whose process is still alive; then it has the machine. Tickets of
dead processes are ignored and removed, so a killed job never blocks the queue.

    python benchmarks/heavy_queue.py run -- bash scripts/test.sh     # wait for the machine, run, release
    python benchmarks/heavy_queue.py status                          # who has it, who waits

From Python (the ranking study takes one ticket per training unit, so others can get in between)::

    with machine("study: spos seed 0"):
        ...

The folder is ``$NAS_HEAVY_QUEUE`` (default ``/tmp/nas-heavy-queue``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

QUEUE = Path(os.environ.get("NAS_HEAVY_QUEUE", "/tmp/nas-heavy-queue"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tickets() -> list[tuple[Path, dict]]:
    """Live tickets, oldest first; tickets of dead processes are removed."""
    QUEUE.mkdir(parents=True, exist_ok=True)
    live = []
    for path in sorted(QUEUE.glob("*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
            path.unlink(missing_ok=True)
            continue
        live.append((path, info))
    return live


@contextmanager
def machine(label: str, poll_seconds: float = 5.0) -> Iterator[None]:
    """Wait until every older live ticket is gone, hold the machine for the block, release."""
    QUEUE.mkdir(parents=True, exist_ok=True)
    ticket = QUEUE / f"{time.time_ns():020d}-{os.getpid()}.json"
    ticket.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "label": label, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    try:
        announced = False
        while True:
            ahead = [info for path, info in tickets() if path.name < ticket.name]
            if not ahead:
                break
            if not announced:
                print(f"[heavy-queue] '{label}' waits behind: " + "; ".join(i["label"] for i in ahead), file=sys.stderr, flush=True)
                announced = True
            time.sleep(poll_seconds)
        yield
    finally:
        ticket.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="one heavy job at a time")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="wait for the machine, run a command, release")
    run.add_argument("--label", help="what this job is (default: the command)")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("status", help="list the holder and the waiting jobs")
    args = parser.parse_args()
    if args.command == "status":
        for i, (_, info) in enumerate(tickets()):
            print(f"{'running' if i == 0 else 'waiting'}  pid {info['pid']}  since {info['since']}  {info['label']}")
        return 0
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("give a command after --")
    with machine(args.label or " ".join(cmd)):
        return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
