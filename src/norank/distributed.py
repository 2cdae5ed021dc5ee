"""Multi-process training on PyTorch's own engine (torchrun + DistributedDataParallel).

Launch with `torchrun --nproc_per_node=N -m norank fit …`, or from Python call `setup()` in a script
started by torchrun and then `NoRankEmbedder(...).fit(X, y)` as usual: `fit` notices the process group.
Every rank draws the same global P×K batch and embeds its own slice; embeddings are gathered before
mining so triplets span the global batch, and only rank 0 writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) outside distributed training."""
    if is_active():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def setup(backend: str | None = None) -> bool:
    """Join the process group described by torchrun's environment; False when not launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows; gradients flow only into this rank's own rows.

    Callers scale the loss by the world size: DistributedDataParallel averages gradients over ranks,
    so the result equals the gradient of the loss of the global batch.
    """
    if not is_active():
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.detach().contiguous())
    parts[dist.get_rank()] = local
    return torch.cat(parts)


def gather(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (no gradient)."""
    if not is_active():
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


def broadcast_flag(flag: bool, device=None) -> bool:
    """Rank 0's decision, for early stopping on every rank at once."""
    if not is_active():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())
