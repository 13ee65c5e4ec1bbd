"""Benchmark 3: the HPF kernel, memory-lean shift (k*k - 1 shifted differences) vs the F.unfold reference.

The kernel is the high-pass sum_t w_t (x - x_t) the model computes (= x - L for softmax-normalised kernels).

Arms: unfold (reference), shift (the repo's lean path: shifted multiply-adds with a hand-written backward) and
shift_autograd (the same forward arithmetic under plain autograd: what the hand-written backward buys).
Headline keys are the repo's shift at k=3.
Time: forward + backward of the high-pass alone on (N, C, H, W) with softmax-normalised weights, interleaved
(unfold, shift, shift_autograd, unfold, ...) after warm-up, median.
Memory held for backward: a saved_tensors_hooks pass sums the bytes of every distinct storage autograd keeps;
the "extra" figure leaves out the storages of the two inputs (x and the weights exist with or without the
filter: in a model they are the block's activations and the softmax output, which softmax keeps anyway).
Peak memory: in a subprocess per implementation, the growth of ru_maxrss over one forward + backward, which
also counts the transient products. The child runs with MALLOC_MMAP_THRESHOLD_=65536 so that every tensor
buffer is its own mapping, returned on free: pages freed earlier (import, warm-up) cannot be reused silently
and hide the peak, as they can under `make`'s 4 GB thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from sr_lit.bench.common import Result, median

Impl = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
SHAPE = (16, 64, 48, 48)
GROUPS = 8


def shift_autograd(x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int) -> torch.Tensor:
    """The repo's shift forward differentiated by plain autograd (what the hand-written backward replaces)."""
    from sr_lit.models.blocks.hpf import _shift_highpass, _shift_operands

    padded, tap_weights = _shift_operands(x, weights, kernel_size, groups)
    return _shift_highpass(padded, tap_weights, kernel_size).reshape(x.shape)


def impls() -> dict[str, Impl]:
    """unfold (reference), shift (the repo's lean path) and shift_autograd (same forward, plain autograd)."""
    from sr_lit.models.blocks.hpf import dynamic_highpass_shift, dynamic_highpass_unfold

    return {
        "unfold": dynamic_highpass_unfold,
        "shift": dynamic_highpass_shift,
        "shift_autograd": shift_autograd,
    }


def inputs(
    shape: tuple[int, int, int, int], k: int, groups: int, device: str = "cpu", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, softmax-normalised per-group weights (both leaves needing grad) and an output gradient."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = torch.randn(shape, generator=g)
    logits = torch.randn(n, groups, k * k, h, w, generator=g)
    weights = logits.softmax(dim=2).reshape(n, groups * k * k, h, w)
    grad = torch.randn(shape, generator=g)
    return (
        x.to(device).requires_grad_(),
        weights.to(device).requires_grad_(),
        grad.to(device),
    )


def fwd_bwd(fn: Impl, x: torch.Tensor, w: torch.Tensor, grad: torch.Tensor, k: int, groups: int) -> float:
    x.grad = w.grad = None
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn(x, w, k, groups).backward(grad)
    sync()
    return time.perf_counter() - t0


def max_abs_diffs(
    x: torch.Tensor, w: torch.Tensor, grad: torch.Tensor, k: int, groups: int
) -> dict[str, float]:
    """Output and input-gradient differences of every implementation vs unfold."""
    res = {}
    for name, fn in impls().items():
        x.grad = w.grad = None
        out = fn(x, w, k, groups)
        out.backward(grad)
        res[name] = (out.detach(), x.grad.clone(), w.grad.clone())
    ref = res.pop("unfold")
    return {
        f"{what}_{name}": float((r - a).abs().max())
        for name, got in res.items()
        for what, r, a in zip(("out", "grad_x", "grad_w"), ref, got)
    }


def saved_bytes(fn: Impl, x: torch.Tensor, w: torch.Tensor, k: int, groups: int) -> tuple[int, int]:
    """(all, extra) bytes of the distinct storages autograd saves for backward; extra leaves x and w out."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x, w, k, groups)
    del out
    inputs_ = {x.untyped_storage().data_ptr(), w.untyped_storage().data_ptr()}
    return sum(storages.values()), sum(b for p, b in storages.items() if p not in inputs_)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_child(impl: str, k: int, shape: tuple[int, int, int, int]) -> dict[str, float]:
    """In a fresh process: peak RSS growth (MB) over one forward + backward after a small warm-up.

    VmHWM (this process's own memory map), reset to the current RSS just before: ru_maxrss would start at
    the parent's RSS, which Linux carries over fork + exec.
    """
    fn = impls()[impl]
    small = inputs((1, shape[1], 8, 8), k, GROUPS)
    fwd_bwd(fn, *small, k, GROUPS)  # loads kernels / allocator pools outside the measured part
    x, w, grad = inputs(shape, k, GROUPS)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to VmRSS
    before = _status_kb("VmRSS")
    fwd_bwd(fn, x, w, grad, k, GROUPS)
    after = _status_kb("VmHWM")
    return {"peak_growth_mb": (after - before) / 1024, "input_mb": x.nbytes / 2**20}


def rss_growth_mb(impl: str, k: int, shape: tuple[int, int, int, int]) -> float:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    cmd = [sys.executable, "-m", "sr_lit.bench.hpf", "--rss-child", impl, str(k), ",".join(map(str, shape))]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_growth_mb"])


def measure(
    k: int, shape: tuple[int, int, int, int] = SHAPE, reps: int = 7, warmup: int = 2, rss: bool = True
) -> dict[str, float]:
    x, w, grad = inputs(shape, k, GROUPS)
    diffs = max_abs_diffs(x, w, grad, k, GROUPS)
    for name in ("shift", "shift_autograd"):
        if diffs[f"out_{name}"] > 1e-5:
            raise AssertionError(f"HPF k={k}: {name} and unfold outputs differ by {diffs[f'out_{name}']:.2e}")
    fns = impls()
    for _ in range(warmup):
        for fn in fns.values():
            fwd_bwd(fn, x, w, grad, k, GROUPS)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(fwd_bwd(fn, x, w, grad, k, GROUPS))
    saved = {name: saved_bytes(fn, x, w, k, GROUPS) for name, fn in fns.items()}
    peak = {name: rss_growth_mb(name, k, shape) for name in fns} if rss else {}
    t_ref, (all_ref, extra_ref) = median(times["unfold"]), saved["unfold"]
    res: dict[str, float] = {}
    for name in fns:
        res[f"hpf_k{k}_{name}_ms"] = 1e3 * median(times[name])
        res[f"hpf_k{k}_saved_mb_{name}"] = saved[name][0] / 2**20
        res[f"hpf_k{k}_extra_saved_mb_{name}"] = saved[name][1] / 2**20
        if name in peak:
            res[f"hpf_k{k}_peak_rss_growth_mb_{name}"] = peak[name]
        if name == "unfold":
            continue
        # keys without a suffix are the repo's lean path (shift); _shift_autograd ones its plain-autograd twin
        tag = "" if name == "shift" else f"_{name}"
        res[f"hpf_k{k}_speedup_vs_unfold{tag}"] = t_ref / median(times[name])
        res[f"hpf_k{k}_extra_memory_ratio_vs_unfold{tag}"] = saved[name][1] / extra_ref
        res[f"hpf_k{k}_saved_memory_ratio_vs_unfold{tag}"] = saved[name][0] / all_ref
        if name in peak:
            res[f"hpf_k{k}_peak_rss_ratio_vs_unfold{tag}"] = peak[name] / peak["unfold"]
        for what in ("out", "grad_x", "grad_w"):
            res[f"hpf_k{k}_max_abs_diff_{what}{tag}"] = diffs[f"{what}_{name}"]
    return res


def run(quick: bool = False, **_: Any) -> Result:
    shape = (2, 16, 12, 12) if quick else SHAPE
    res: Result = {"hpf_shape": "x".join(map(str, shape)) + f" G={GROUPS}"}
    for k in (3, 5):
        res.update(measure(k, shape, reps=2 if quick else 9, warmup=1 if quick else 2, rss=not quick))
    # the headline keys are for k=3
    res["hpf_speedup_vs_unfold"] = res["hpf_k3_speedup_vs_unfold"]
    res["hpf_extra_memory_ratio_vs_unfold"] = res["hpf_k3_extra_memory_ratio_vs_unfold"]
    res["hpf_speedup_vs_unfold_shift_autograd"] = res["hpf_k3_speedup_vs_unfold_shift_autograd"]
    return res


def _main() -> None:
    p = argparse.ArgumentParser(description="internal: one peak-RSS measurement (see sr_lit.bench.hpf)")
    p.add_argument("--rss-child", nargs=3, metavar=("IMPL", "K", "SHAPE"), required=True)
    impl, k, shape = p.parse_args().rss_child
    dims = tuple(int(d) for d in shape.split(","))
    assert len(dims) == 4
    print(json.dumps(_rss_child(impl, int(k), dims)))  # type: ignore[arg-type]


if __name__ == "__main__":
    _main()
