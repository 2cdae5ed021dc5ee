"""GPU check, for machines that have one: `python benchmarks/gpu_check.py`.

1. fit + transform on CUDA and on the CPU from the same seed: the embeddings must agree (allclose; GPU
   kernels differ from CPU ones in the last bits, which training amplifies only slightly in a few epochs);
2. a model fitted on the CPU gives the same embeddings on either device;
3. every miner returns the same triplets on CUDA as on the CPU for the same distance matrix, and the
   loss values agree; mining time per batch on both devices is printed.
Exits 1 on a mismatch, 0 when everything agrees, 2 when there is no GPU.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    from norank import NoRankEmbedder
    from norank.distances import pairwise_distances
    from norank.losses import triplet_margin_loss
    from norank.mining import MINERS

    failures = []
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(20), 30)
    X = (rng.normal(size=(20, 256))[y] + rng.normal(size=(600, 256))).astype(np.float32)
    params = dict(epochs=5, random_state=0)
    start = time.perf_counter()
    gpu = NoRankEmbedder(device="cuda", **params).fit(X, y)
    gpu_seconds = time.perf_counter() - start
    start = time.perf_counter()
    cpu = NoRankEmbedder(device="cpu", **params).fit(X, y)
    cpu_seconds = time.perf_counter() - start
    Zg, Zc = gpu.transform(X), cpu.transform(X)
    gap = float(np.abs(Zg - Zc).max())
    print(f"fit 5 epochs: cuda {gpu_seconds:.2f}s, cpu {cpu_seconds:.2f}s; max |Z_cuda - Z_cpu| = {gap:.2e}")
    if not np.allclose(Zg, Zc, atol=1e-3):
        failures.append(f"fit on cuda vs cpu differ by {gap:.2e}")
    moved = NoRankEmbedder.load(cpu.save("/tmp/norank_gpu_check_model"), device="cuda")
    gap = float(np.abs(moved.transform(X) - Zc).max())
    print(f"CPU-fitted model on cuda vs cpu: max gap {gap:.2e}")
    if not np.allclose(moved.transform(X), Zc, atol=1e-5):
        failures.append(f"transform on cuda differs by {gap:.2e}")

    for batch in (512, 1024, 2048):
        labels = torch.arange(batch // 4).repeat_interleave(4)
        z = torch.nn.functional.normalize(torch.randn(batch, 64, generator=torch.Generator().manual_seed(batch)), dim=1)
        d_cpu = pairwise_distances(z)
        d_gpu = d_cpu.cuda()
        for name, miner in MINERS.items():
            t0 = time.perf_counter()
            cpu_idx = miner(d_cpu, labels, 0.2)
            t1 = time.perf_counter()
            gpu_idx = miner(d_gpu, labels.cuda(), 0.2)
            torch.cuda.synchronize()
            t2 = time.perf_counter()
            same = all(torch.equal(a, b.cpu()) for a, b in zip(cpu_idx, gpu_idx, strict=True))
            l_cpu = float(triplet_margin_loss(d_cpu, *cpu_idx, 0.2))
            l_gpu = float(triplet_margin_loss(d_gpu, *gpu_idx, 0.2))
            print(
                f"B={batch} {name:10s} cpu {1e3 * (t1 - t0):7.2f} ms  cuda {1e3 * (t2 - t1):7.2f} ms  "
                f"same triplets: {same}  loss {l_cpu:.6f} / {l_gpu:.6f}"
            )
            if not same or not np.isclose(l_cpu, l_gpu, atol=1e-5):
                failures.append(f"{name} at B={batch} differs between cuda and cpu")
    for f in failures:
        print("MISMATCH:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
