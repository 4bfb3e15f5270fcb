"""torch.distributed for supernet training and search (``torchrun`` sets the environment).

The rules that keep ranks from silently disagreeing:

- Every rank builds the same sampler with the same seed, so the sampled paths are identical; the
  trainer checks this every step (``check_same``) and stops with an error if they differ.
- The global batch (``train.batch_size``) is split evenly across ranks; each rank takes its own
  slice of the same shuffled global batch, so a run with any number of processes visits the same
  data, and a checkpoint resumes under a different world size.
- Gradients are averaged over ranks with one flattened all-reduce of the parameters the step
  used (identical on every rank, because the paths are) -- parameters of unused candidates have
  no gradient anywhere and are skipped, unlike DDP's hooks that need ``find_unused_parameters``.
  BatchNorm normalises with each rank's own slice (as DDP without SyncBN does); a
  single-process run matches it with ``train.micro_batches`` equal to the world size.
- Search shards candidates across ranks and all-gathers the scores, so every rank ends with the
  same cache and the same chosen architecture.
- Only rank 0 writes logs and checkpoints.

Backend: nccl when CUDA is available, else gloo. Plugins that need collectives (a cross-rank board
accuracy, shuffled BN) use :func:`world_size`, :func:`rank`, :func:`all_reduce_mean` and
:func:`all_gather_objects`, which are no-ops in a single process.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch
import torch.distributed as dist

from nas_core.errors import NasError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def init_from_env() -> torch.device | None:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Returns the CUDA device for this rank's ``LOCAL_RANK`` when CUDA is used, else None.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return None


def shard(batch: Sequence[Any] | torch.Tensor, index: int | None = None, count: int | None = None):
    """This rank's contiguous slice of a global batch (the batch must divide evenly)."""
    count = count or world_size()
    index = rank() if index is None else index
    size = len(batch)
    if size % count:
        raise NasError(f"train.batch_size {size} does not divide evenly over {count} processes")
    per = size // count
    return batch[index * per : (index + 1) * per]


def all_reduce_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients of the parameters that have one, in one flattened all-reduce."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_mean(values: dict[str, float], device: torch.device | None = None) -> dict[str, float]:
    """Mean of scalar metrics over ranks (same keys on every rank)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= world_size()
    return dict(zip(keys, tensor.tolist()))


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def check_same(value: Any, what: str) -> None:
    """Raise when ranks disagree on ``value`` (e.g. the sampled paths of a step)."""
    if not is_distributed():
        return
    values = all_gather_objects(value)
    if any(v != values[0] for v in values[1:]):
        raise NasError(f"ranks disagree on {what}: {values}")


def fingerprint(module: torch.nn.Module) -> str:
    """A hash of every parameter's bytes: equal on all ranks iff their weights are identical."""
    import hashlib

    digest = hashlib.sha1()
    for name, p in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


_left_process_group = False


def shutdown() -> None:
    """Leave the process group together: a rank that tears down while another still talks to
    it aborts the other ("terminate called without an active exception")."""
    global _left_process_group
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError:  # a peer already failed; its error is the one to report
            pass
        dist.destroy_process_group()
        _left_process_group = True


def left_process_group() -> bool:
    """Whether this process ran under torchrun and has left its process group."""
    return _left_process_group
