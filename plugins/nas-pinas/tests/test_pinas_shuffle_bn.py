"""Real shuffled BN across processes (gloo, 2 ranks on CPU): keys come back in each rank's order,
and each rank encodes a shuffled mix of both ranks' images (so its BN statistics do too)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import os, socket, sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from nas_pinas.components import _shuffled_bn_ddp

    def worker(rank, port, out_dir):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=2)
        torch.manual_seed(0)
        images = torch.arange(8, dtype=torch.float32).view(8, 1) + 100 * rank
        seen = []
        def encode(x):
            seen.append(x.clone())
            return x * 2
        keys = _shuffled_bn_ddp(encode, images)
        torch.save({"keys": keys, "seen": seen[0]}, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()

    if __name__ == "__main__":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.spawn(worker, args=(port, sys.argv[1]), nprocs=2, join=True)
''')


@pytest.mark.slow
def test_shuffled_bn_across_two_processes(tmp_path):
    script = tmp_path / "ddp_check.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two ranks on a shared 2-core machine
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        expected = (torch.arange(8, dtype=torch.float32).view(8, 1) + 100 * rank) * 2
        assert torch.equal(result["keys"], expected)  # un-shuffled back to this rank's order
    seen = [torch.load(tmp_path / f"rank{r}.pt")["seen"].flatten() for r in range(2)]
    assert sorted(torch.cat(seen).tolist()) == [float(v) for v in list(range(8)) + list(range(100, 108))]
    assert any(((s >= 100).any() and (s < 100).any()) for s in seen)  # the batches were mixed across ranks
