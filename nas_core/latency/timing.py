"""How latency is timed: a protocol (threads, batch, backend, clock, warm-up, repeats) and its
robust statistic.

Every number -- an op for a table, a whole network for a check, the exported network for
``arch.json`` -- is taken under the same :class:`Protocol`, so predicted and measured latency
mean the same thing:

- the thread count is fixed for the whole measurement (``torch.set_num_threads``, or
  onnxruntime's ``intra_op_num_threads``) and restored afterwards; autograd and the garbage
  collector are off;
- the memory allocator is held in a steady state (``allocator="steady"``, glibc): freed blocks
  stay in the heap instead of being unmapped and trimmed. With glibc's defaults, whether an
  activation of a few hundred kB is served from the heap or from fresh pages (one page fault
  per 4 kB) depends on the allocation history, which here changed one network's time by up to
  ~25% between two runs -- noise no table can predict. The steady state is what a long-running
  inference process settles into (and what jemalloc / tcmalloc, which PyTorch recommends for
  CPU inference, give);
- each callable is warmed up (at least ``warmup`` calls and ``warmup_seconds``) first, so
  one-off costs (kernel selection, lazy init, heap growth) stay out;
- ``repeats`` samples are timed and the statistic is their median, with the interquartile
  range as the spread: a sample disturbed by another process lands in the tail, not in the
  number. A sample is one call, or for callables faster than ``min_sample_ms`` as many
  back-to-back calls as make up that time (divided back to one call), so that reading the
  clocks -- a system call of a few microseconds in this VM -- stays negligible;
- the clock is the wall clock (``perf_counter_ns``; on CUDA after a synchronize) unless the
  protocol says ``clock="thread"``: the calling thread's CPU time, which is what the wall time
  would have been had no other process taken the core. It needs one CPU thread (all work in
  the calling thread) and makes tables reproducible on a shared machine. With one CPU thread
  both clocks are read around every sample, and ``preempted`` (the share of samples whose wall
  time exceeds their CPU time) says how disturbed a measurement was;
- callables are visited in ``passes`` sweeps, so a slow drift of the machine (here ~1-2% over
  a few minutes, even with nothing else running) or a burst of load is spread over all of them
  instead of biasing the ones measured at that moment. The first visit warms a callable up
  fully; later visits run ``REWARM`` calls first, to bring its weights back into the caches.
"""

from __future__ import annotations

import ctypes
import gc
import io
import os
import platform
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nas_core.errors import NasError

BACKENDS = ("torch", "onnxruntime")
CLOCKS = ("wall", "thread")
ALLOCATORS = ("steady", "default")
METHODS = ("in-network", "isolated")
REWARM = 2
PREEMPTED_SLACK = (1.05, 20_000)
"""A sample counts as preempted when wall > 1.05 * CPU time + 20 us."""


@dataclass(frozen=True)
class Protocol:
    """What a latency number means: where and how it was measured."""

    device: str = "cpu"
    batch_size: int = 1
    threads: int = 1
    backend: str = "torch"
    clock: str = "wall"
    allocator: str = "steady"
    warmup: int = 10
    warmup_seconds: float = 0.05
    repeats: int = 100
    passes: int = 10
    method: str = "in-network"
    """Tables: time ops inside whole networks (torch) or each alone (onnxruntime; an ablation for
    torch), see :mod:`nas_core.latency.build`."""
    contexts: int = 16
    """In-network tables: networks each op is timed in."""
    min_sample_ms: float = 1.0

    @property
    def both_clocks(self) -> bool:
        """One CPU thread: the calling thread does all the work, so its CPU time is meaningful."""
        return torch.device(self.device).type == "cpu" and self.threads == 1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Samples:
    """Raw per-call times (ns) of one callable: wall clock and, with one CPU thread, thread CPU time."""

    wall: list[int] = field(default_factory=list)
    thread: list[int] = field(default_factory=list)
    calls_per_sample: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """Median and quartiles (the protocol's clock) of a callable's per-call time over its
    samples, in milliseconds; with one CPU thread also both clocks' medians and the share of
    samples that were preempted."""

    median_ms: float
    p25_ms: float
    p75_ms: float
    samples: int
    calls_per_sample: int = 1
    wall_median_ms: float | None = None
    thread_median_ms: float | None = None
    preempted: float | None = None

    @classmethod
    def of(cls, samples: Samples, clock: str) -> "Timing":
        wall = np.asarray(samples.wall, dtype=float)
        primary = wall if clock == "wall" else np.asarray(samples.thread, dtype=float)
        p25, median, p75 = np.percentile(primary, [25, 50, 75]) / 1e6
        n, calls = len(wall), samples.calls_per_sample
        if not samples.thread:
            return cls(float(median), float(p25), float(p75), n, calls)
        cpu = np.asarray(samples.thread, dtype=float)
        preempted = float(np.mean(wall > cpu * PREEMPTED_SLACK[0] + PREEMPTED_SLACK[1] / calls))
        return cls(float(median), float(p25), float(p75), n, calls, float(np.median(wall) / 1e6), float(np.median(cpu) / 1e6), preempted)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.p75_ms - self.p25_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ the machine


def device_name(device: str | torch.device) -> str:
    """A name that tells devices apart: the CPU model and core count, or the GPU model."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda/{torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu/{model}/{os.cpu_count()} cores"


def library_versions(backend: str) -> dict[str, str]:
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    if backend == "onnxruntime":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def steady_allocator_available() -> bool:
    return _glibc() is not None


def hold_allocator_steady() -> None:
    """glibc: serve activations from the heap (no mmap below 32 MiB) and never trim it back."""
    libc = _glibc()
    if libc is None:
        raise NasError("allocator 'steady' needs glibc (use allocator 'default' on this system)")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 1 << 30)


def check_protocol(protocol: Protocol) -> None:
    """One-line errors for a protocol this machine cannot run."""
    if protocol.backend not in BACKENDS:
        raise NasError(f"--backend '{protocol.backend}': use one of {', '.join(BACKENDS)}")
    if protocol.clock not in CLOCKS:
        raise NasError(f"--clock '{protocol.clock}': use one of {', '.join(CLOCKS)}")
    if protocol.method not in METHODS:
        raise NasError(f"--method '{protocol.method}': use one of {', '.join(METHODS)}")
    if protocol.backend == "onnxruntime" and protocol.method != "isolated":
        raise NasError("--backend onnxruntime runs a whole graph per session: use --method isolated")
    if protocol.allocator not in ALLOCATORS:
        raise NasError(f"--allocator '{protocol.allocator}': use one of {', '.join(ALLOCATORS)}")
    device = torch.device(protocol.device)
    if device.type not in ("cpu", "cuda"):
        raise NasError(f"--device '{protocol.device}': latency is measured on cpu or cuda")
    if protocol.clock == "thread" and not protocol.both_clocks:
        raise NasError("--clock thread needs --device cpu and --threads 1 (other threads' work is not in the calling thread's CPU time)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NasError(f"--device '{protocol.device}': CUDA is not available on this machine")
    if min(protocol.batch_size, protocol.threads, protocol.repeats, protocol.passes, protocol.contexts) < 1 or protocol.warmup < 0:
        raise NasError("--batch-size, --threads, --repeats, --passes and --contexts must be positive, --warmup not negative")
    if protocol.allocator == "steady" and not steady_allocator_available():
        raise NasError("--allocator steady needs glibc; use --allocator default on this system")
    if protocol.backend == "onnxruntime" and device.type == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise NasError("--backend onnxruntime --device cuda: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")


@contextmanager
def measuring(protocol: Protocol) -> Iterator[None]:
    """Fixed threads, steady allocator, no autograd, no garbage collector, for a block."""
    before, gc_was_on = torch.get_num_threads(), gc.isenabled()
    torch.set_num_threads(protocol.threads)
    if protocol.allocator == "steady":
        hold_allocator_steady()
    gc.disable()
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)
        if gc_was_on:
            gc.enable()


# ------------------------------------------------------------------------------ callables


def prepare(module: nn.Module, input_shape: Sequence[int], protocol: Protocol, seed: int = 0) -> Callable[[], object]:
    """A no-argument callable running ``module`` once on a fixed input of ``input_shape``.

    Call it inside :func:`measure` (which holds inference mode for the whole measurement, so no
    op pays for entering it and a network does not pay for it once per layer)."""
    module = module.eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(*input_shape, generator=generator)
    if protocol.backend == "onnxruntime":
        return _onnxruntime_call(module, example, protocol)
    device = torch.device(protocol.device)
    module = module.to(device)
    x = example.to(device)
    if device.type == "cuda":
        def call() -> object:
            out = module(x)
            torch.cuda.synchronize(device)
            return out
        return call
    return lambda: module(x)


def _onnxruntime_call(module: nn.Module, example: torch.Tensor, protocol: Protocol) -> Callable[[], object]:
    import onnxruntime as ort

    with torch.inference_mode():
        if module(example) is example:  # an identity: the exported graph computes nothing
            return lambda: None
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter (as nas export uses) warns that it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.cpu(), (example,), buffer, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = protocol.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CUDAExecutionProvider"] if torch.device(protocol.device).type == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(buffer.getvalue(), options, providers=providers)
    feed = {"x": example.numpy()}
    return lambda: session.run(None, feed)


# ------------------------------------------------------------------------------ measuring


def sample(calls: Sequence[Callable[[], object]], protocol: Protocol, progress: Callable[[int], None] | None = None) -> list[Samples]:
    """Raw samples of every callable under the protocol; ``progress(i)`` when callable ``i`` is done.

    ``protocol.repeats`` samples per callable are spread over ``protocol.passes`` sweeps; each
    sweep visits the callables in a rotated order and warms each one up before timing it.
    """
    out = [Samples() for _ in calls]
    per_pass = [protocol.repeats // protocol.passes + (p < protocol.repeats % protocol.passes) for p in range(protocol.passes)]
    both = protocol.both_clocks
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    with measuring(protocol):
        for p, count in enumerate(per_pass):
            for i in [(k + p) % len(calls) for k in range(len(calls))]:
                call, record = calls[i], out[i]
                if p == 0:  # the same number of calls per sample in every pass
                    record.calls_per_sample = _warm_up(call, protocol)
                else:
                    for _ in range(REWARM * record.calls_per_sample):
                        call()
                inner = record.calls_per_sample
                loop = range(inner)
                for _ in range(count):
                    if both:  # the wall interval sits inside the CPU interval: no clock read in it
                        c0 = cpu_clock()
                        w0 = wall_clock()
                        for _ in loop:
                            call()
                        w1 = wall_clock()
                        record.thread.append((cpu_clock() - c0) // inner)
                    else:
                        w0 = wall_clock()
                        for _ in loop:
                            call()
                        w1 = wall_clock()
                    record.wall.append((w1 - w0) // inner)
                if p == len(per_pass) - 1 and progress is not None:
                    progress(i)
    return out


def measure(calls: Sequence[Callable[[], object]], protocol: Protocol, progress: Callable[[int], None] | None = None) -> list[Timing]:
    """:func:`sample` summarised: one :class:`Timing` per callable."""
    return [Timing.of(s, protocol.clock) for s in sample(calls, protocol, progress)]


def _warm_up(call: Callable[[], object], protocol: Protocol) -> int:
    """Run the warm-up calls; return how many calls make one sample of at least ``min_sample_ms``."""
    deadline = time.perf_counter() + protocol.warmup_seconds
    done, fastest = 0, float("inf")
    while done < max(1, protocol.warmup) or time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        call()
        fastest = min(fastest, time.perf_counter_ns() - start)
        done += 1
    return int(min(1000, max(1, -(-protocol.min_sample_ms * 1e6 // max(fastest, 1)))))


def sample_inside(network: nn.Module, spans: Mapping[str, tuple[nn.Module, nn.Module]], input_shape: Sequence[int], protocol: Protocol,
                  repeats: int, seed: int = 0) -> dict[str, Samples]:
    """Time parts of a network while the whole network runs: ``spans[key] = (first, last)``
    submodules, timed from just before ``first`` runs to just after ``last`` returns.

    ``repeats`` forward passes after the warm-up; each gives one sample per span. The parts
    see exactly the inputs, caches and allocator state they have in the network.
    """
    device = torch.device(protocol.device)
    network = network.eval().to(device)
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed)).to(device)
    both, cuda = protocol.both_clocks, device.type == "cuda"
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    out = {key: Samples() for key in spans}
    started: dict[str, tuple[int, int]] = {}
    recording = [False]

    def before(key: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            if cuda:
                torch.cuda.synchronize(device)
            c = cpu_clock() if both else 0
            started[key] = (c, wall_clock())
        return hook

    def after(key: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            if cuda:
                torch.cuda.synchronize(device)
            w = wall_clock()
            c = cpu_clock() if both else 0
            if recording[0]:
                c0, w0 = started[key]
                out[key].wall.append(w - w0)
                if both:
                    out[key].thread.append(c - c0)
        return hook

    handles = []
    for key, (first, last) in spans.items():
        handles.append(first.register_forward_pre_hook(before(key)))
        handles.append(last.register_forward_hook(after(key)))
    try:
        with measuring(protocol):
            _warm_up(lambda: network(x), protocol)
            recording[0] = True
            for _ in range(repeats):
                network(x)
    finally:
        for handle in handles:
            handle.remove()
    return out
