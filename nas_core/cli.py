"""The ``nas`` command line. Errors print one line each and exit 2; ``--debug`` shows tracebacks.

Anything unforeseen (a bug, in the engine or a plugin) is still one line,
``error: internal error: ...``, with exit code 3; ``--debug`` shows its traceback too.

Installed packages add subcommands through the ``nas_core.commands`` entry-point group
(:class:`nas_core.Command`); the OpenMMLab bridge contributes ``nas finetune`` that way, so the
engine never imports the bridge.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import sys
import warnings
from typing import Sequence

from nas_core import COMMAND_GROUP
from nas_core.config import load_config
from nas_core.errors import NasError

KNOWN_CONTRIBUTED = {
    "finetune": "the OpenMMLab bridge (package nas-downstream in downstream/), which bash scripts/setup.sh installs with OpenMMLab",
}
"""Commands other packages contribute, for a helpful message when the package is missing."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        for name, origin in KNOWN_CONTRIBUTED.items():
            if message.startswith(f"argument command: invalid choice: '{name}'"):
                self.exit(2, f"error: nas {name} is contributed by {origin}; it is not installed\n")
        self.exit(2, f"error: {self.prog}: {message}\n")


def _config_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("config", help="run config (YAML)") if required else None
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="One-shot neural architecture search: train a supernet, search it, export and rank.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plugins", help="list plugins, versions and what they register")
    p.add_argument("--hooks", action="store_true", help="show which hooks each plugin implements")

    p = sub.add_parser("list", help="list registered names of a kind (spaces, ops, datasets, samplers, ...)")
    p.add_argument("kind", nargs="?", default="all")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'fair*'")

    config = sub.add_parser("config", help="check or show a config")
    csub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    _config_args(csub.add_parser("check", help="validate a config (with plugin sections)"))
    _config_args(csub.add_parser("show", help="print the resolved config with defaults"))

    p = sub.add_parser("train", help="train a supernet")
    _config_args(p)
    p.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoint.pt")

    for name, text in (("search", "search a trained supernet"), ("rank", "rank correlation against NAS-Bench-Macro")):
        p = sub.add_parser(name, help=text)
        _config_args(p)
        p.add_argument("--checkpoint", help="supernet checkpoint (default: run_dir/checkpoint.pt)")

    p = sub.add_parser("export", help="export a subnet with inherited weights (+ ONNX)")
    _config_args(p)
    p.add_argument("--checkpoint", help="supernet checkpoint (default: run_dir/checkpoint.pt)")
    p.add_argument("--arch", help="architecture string (default: best of run_dir/search.json)")
    p.add_argument("--search-result", help="search.json to take the architecture from")
    p.add_argument("--pick", type=int, help="index of the Pareto point to export")
    p.add_argument("--out", help="output folder")

    latency = sub.add_parser("latency", help="measure per-op latency tables and check them against whole networks")
    lsub = latency.add_subparsers(dest="latency_command", required=True, parser_class=_Parser)
    p = lsub.add_parser("build", help="measure every op of the config's space into a latency table (resumable)")
    _config_args(p)
    p.add_argument("--device", help="cpu or cuda (default: the config's device)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, help="intra-op threads, fixed for every measurement (default: torch's default here)")
    p.add_argument("--backend", default="torch", help="torch (eager) or onnxruntime")
    p.add_argument("--clock", default="wall", help="wall, or thread: the calling thread's CPU time (cpu, 1 thread; immune to other processes)")
    p.add_argument("--allocator", help="steady (glibc heap kept, no page faults per call; default where available) or default")
    p.add_argument("--repeats", type=int, default=100, help="timed samples per op (the median is kept)")
    p.add_argument("--method", help="in-network (torch default: ops timed inside whole networks) or isolated (each op alone; onnxruntime)")
    p.add_argument("--contexts", type=int, default=16, help="in-network: networks each op is timed in")
    p.add_argument("--passes", type=int, default=10, help="sweeps the repeats of whole networks (and of isolated ops) are spread over")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before timing")
    p.add_argument("--out", help="table file (default: run_dir/latency-<device>-<backend>-b<batch>-t<threads>.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table measured differently")
    p.add_argument("--no-progress", action="store_true")
    p = lsub.add_parser("check", help="measure random whole networks and report the table's error (fits a correction)")
    _config_args(p)
    p.add_argument("--table", required=True, help="latency table to check")
    p.add_argument("--num-archs", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="which random networks (use a new seed to validate a stored correction)")
    p.add_argument("--no-fit", action="store_true", help="only report; do not fit or store a correction")
    p.add_argument("--out", help="report path prefix (default: beside the table)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("run", help="the main job: train, search, export and report")
    _config_args(p)
    p.add_argument("--resume", action="store_true")

    add_contributed_commands(sub)
    return parser


def add_contributed_commands(sub: argparse._SubParsersAction) -> None:
    """One subcommand per ``nas_core.commands`` entry point; a broken one is skipped with a warning."""
    builtin = set(sub.choices)
    for ep in sorted(md.entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        origin = f"{ep.dist.metadata['Name']} {ep.dist.version}" if ep.dist else ep.value
        if ep.name in builtin or ep.name in sub.choices:
            warnings.warn(f"command '{ep.name}' from {origin} is skipped: a command of that name exists", stacklevel=2)
            continue
        try:
            command = ep.load()
            command.add_arguments(_Parser(prog=f"nas {ep.name}"))  # a broken one fails here, not half-added
        except Exception as exc:  # a broken extension must not break the other commands
            warnings.warn(f"command '{ep.name}' from {origin} failed to load and is skipped: {type(exc).__name__}: {exc}", stacklevel=2)
            continue
        parser = sub.add_parser(ep.name, help=command.help)
        command.add_arguments(parser)
        parser.set_defaults(contributed=command)


def _load(args: argparse.Namespace):
    from nas_core.run import Run

    config = load_config(args.config, args.overrides)
    return Run.create(config)


def dispatch(args: argparse.Namespace) -> int:
    from nas_core import commands

    contributed = getattr(args, "contributed", None)
    if contributed is not None:
        return contributed.run(args) or 0
    if args.command == "plugins":
        from nas_core.cli_views import show_plugins

        show_plugins(args.hooks)
    elif args.command == "list":
        from nas_core.cli_views import show_registry

        show_registry(args.kind, args.pattern)
    elif args.command == "config":
        run = _load(args)
        if args.config_command == "check":
            run.check()
            commands.search_problem(run)  # constraints are satisfiable, the latency table fits
            print(f"{args.config}: ok")
        else:
            print(commands.config_show(run.config), end="")
    elif args.command == "train":
        commands.train(_load(args), resume=args.resume)
    elif args.command == "search":
        commands.search(_load(args), args.checkpoint)
    elif args.command == "rank":
        commands.rank(_load(args), args.checkpoint)
    elif args.command == "export":
        commands.export(_load(args), args.arch, args.checkpoint, args.out, args.search_result, args.pick)
    elif args.command == "run":
        commands.run_all(_load(args), resume=args.resume)
    elif args.command == "latency":
        _latency(args)
    return 0


def _latency(args: argparse.Namespace) -> None:
    from nas_core.latency import runs
    from nas_core.latency.timing import Protocol

    run = _load(args)
    if args.latency_command == "build":
        import torch

        from nas_core.latency.timing import steady_allocator_available

        allocator = args.allocator or ("steady" if steady_allocator_available() else "default")
        protocol = Protocol(device=args.device or str(run.device), batch_size=args.batch_size, threads=args.threads or torch.get_num_threads(),
                            backend=args.backend, clock=args.clock, allocator=allocator, warmup=args.warmup, repeats=args.repeats,
                            passes=args.passes, contexts=args.contexts,
                            method=args.method or ("isolated" if args.backend == "onnxruntime" else "in-network"))
        runs.build(run, protocol, args.out, args.overwrite, progress=not args.no_progress)
    else:
        runs.check(run, args.table, args.num_archs, args.seed, fit=not args.no_fit, out=args.out, progress=not args.no_progress)


INTERNAL_ERROR = 3
"""Exit code of an unforeseen failure (a bug); bad input exits 2."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" not in argv:
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except NasError as exc:
        if args.debug:
            raise
        for message in exc.messages:
            print(f"error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: the safety net, still one line
        if args.debug:
            raise
        print(f"error: internal error: {_one_line(exc)} (a bug in nas-core or a plugin, not in your input: "
              f"please report it with the output of the same command run as 'nas --debug ...')", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        from nas_core.distributed import shutdown

        shutdown()


def exit_after(code: int) -> None:
    """Exit with ``code``. After a torchrun job, skip the interpreter's teardown: with the
    process group already left and every file written, the C++ destructors of the collective
    backend still aborted a rank now and then at exit (SIGABRT, "terminate called without an
    active exception"), failing a job that had finished."""
    from nas_core.distributed import left_process_group

    if left_process_group():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_after(main())
