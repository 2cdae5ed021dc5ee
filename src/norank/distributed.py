"""Multi-process training on PyTorch's own engine (torchrun + DistributedDataParallel).

Launch with `torchrun --nproc_per_node=N -m norank fit …`, or from Python call `setup()` in a script
started by torchrun and then `NoRankEmbedder(...).fit(X, y)` as usual: `fit` notices the process group.
Every rank draws the same global P×K batch and embeds its own slice; embeddings are gathered before
mining so triplets span the global batch, and only rank 0 writes files. Every rank must therefore hold
the same data: `check_agreement` compares the ranks before the first training collective, so different
data is one clear error on every rank rather than silent training or a hang.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
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


def wait_for_all() -> None:
    """Block until every rank arrives (no-op outside torchrun). Called on the success path before teardown:
    a rank that destroys its process group while another still works (rank 0 saving the model) can make
    gloo abort that other process."""
    if is_active():
        dist.barrier()


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


def check_agreement(classes, sample_shape, dtype, n_batches, device=None, labels=None) -> None:
    """Raise the same ValueError on every rank when the ranks were given different training data.

    Every rank all-gathers a small fingerprint of its own data (see `fingerprint`). Call it on every rank
    after the batch sampler is built and before any other training collective; outside distributed
    training it returns at once. `device` is where the gathered bytes live (default: the backend's own).
    """
    if not is_active():
        return
    if classes is None:  # labels that are their own class values
        classes = np.unique(np.asarray(labels))
    mine = fingerprint(classes, sample_shape, dtype, n_batches, labels)
    ranks = [json.loads(b) for b in _all_gather_bytes(json.dumps(mine).encode(), device)]
    message = disagreement(ranks)
    if message:
        raise ValueError(message)


def fingerprint(classes, sample_shape, dtype, n_batches, labels=None) -> dict:
    """What every rank must agree on: the sorted class labels, the shape of one sample, the dtype name, the
    batches per epoch and, when `labels` (per-sample labels or class codes) is given, their count and digest."""
    out = {
        "class labels": _short(np.asarray(classes).ravel().tolist(), "classes"),
        "sample shape": [int(d) for d in sample_shape],
        "dtype": _dtype_name(dtype),
        "batches per epoch": int(n_batches),
    }
    if labels is not None:
        labels = np.ascontiguousarray(labels)
        digest = hashlib.sha256(str(labels.dtype).encode() + labels.tobytes()).hexdigest()[:12]
        out["per-sample labels"] = f"{len(labels)} labels, digest {digest}"
    return out


def disagreement(ranks: list[dict]) -> str | None:
    """The error naming every field on which the ranks' fingerprints differ, with each rank's value."""
    differ = [
        f"{field} (" + "; ".join(f"rank {r}: {rank.get(field)}" for r, rank in enumerate(ranks)) + ")"
        for field in ranks[0]
        if any(rank.get(field) != ranks[0][field] for rank in ranks)
    ]
    if not differ:
        return None
    return (
        f"The {len(ranks)} ranks of this distributed fit were given different data; they differ in "
        f"{', '.join(differ)}. "
        "Give every rank the same X and y, in the same order: each rank embeds its own slice of every "
        "global batch drawn from the whole data set."
    )


def _dtype_name(dtype) -> str:
    if dtype is None:
        return "unknown"
    try:
        return np.dtype(dtype).name
    except TypeError:  # a torch dtype
        return str(dtype).replace("torch.", "")


def _short(values: list, what: str, shown: int = 8) -> str:
    """A readable summary of a list that may be long: its length, first and last items, and a digest."""
    text = ", ".join(map(repr, values[:shown])) + (f", …, {values[-1]!r}" if len(values) > shown else "")
    digest = hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:8]
    return f"{len(values)} {what} [{text}]" + (f" (digest {digest})" if len(values) > shown else "")


def _all_gather_bytes(data: bytes, device=None) -> list[bytes]:
    """Every rank's bytes, padded to the longest and gathered as uint8 tensors (gloo and NCCL alike)."""
    if device is None:
        nccl = dist.get_backend() == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    buffer = torch.zeros(max(int(s) for s in sizes), dtype=torch.uint8, device=device)
    buffer[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    parts = [torch.empty_like(buffer) for _ in sizes]
    dist.all_gather(parts, buffer)
    return [bytes(p[: int(s)].cpu().numpy().tobytes()) for p, s in zip(parts, sizes, strict=True)]
