"""`make gpu-check` / `python -m sr_lit.bench.gpu_check`: the GPU checks in one call (about 3-5 min on one H100).

1. HPF kernel (the high-pass sum_t w_t (x - x_t)) on CUDA: forward+backward time and peak allocated memory of
   unfold (reference), the repo's shift path (hand-written backward) and its plain-autograd twin,
   (16, 64, 48, 48), k=3 and 5, G=8.
2. Training step time by precision and memory format: the CPU `precision` benchmark's arms, models and keys
   (sr_lit.bench.arms: fp32, fp32_cl, bf16 = autocast as Lightning's `bf16-mixed`, bf16_cl; edsr_baseline,
   edsr_baseline + MMCA + HPF, RCAN 2x4, the `make train` model; the 64-channel 3x3 convolution as the rate
   reference), so the two tables line up; torch.compile (bf16 + channels_last) on edsr_baseline; full RCAN x2 (CA):
   fp32 vs bf16 (+ channels_last). Arms interleaved over repetitions, CUDA-synchronised, median.
3. Validation PSNR, fp32 vs bf16: edsr_baseline trained briefly in fp32 (T91 patches when present), then the
   same weights evaluated on Set5 (else the held-out scikit-image photos, else synthetic images) in fp32 and under
   bf16 autocast; |delta Y-PSNR| must be <= 0.01 dB.
Prints one table and writes JSON (default bench/gpu_results.json).

Runs where only torch, pytorch-lightning and torchmetrics are installed: imports nothing from Hydra, OmegaConf,
W&B or kornia (sr_lit.models, sr_lit.metrics and, when Pillow/numpy exist, sr_lit.data). Without a CUDA device
it prints a skip note and exits 0 (--require-cuda: exit 2). `--device cpu --quick` dry-runs every step on CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

if __package__ in (None, ""):  # run as a file (python sr_lit/bench/gpu_check.py): make sr_lit importable
    sys.path[0] = str(REPO_ROOT)  # not sr_lit/bench: its module names must not shadow top-level ones
    if importlib.util.find_spec("omegaconf") is None:
        # sr_lit/__init__.py imports sr_lit.utils.config, which needs OmegaConf only for the CLI resolvers
        _shim = types.ModuleType("sr_lit.utils.config")
        _shim.REPO_ROOT, _shim.CONFIG_DIR = REPO_ROOT, REPO_ROOT / "configs"  # type: ignore[attr-defined]
        sys.modules["sr_lit.utils.config"] = _shim

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sr_lit.bench.arms import (  # noqa: E402
    PRECISION_ARMS,
    PRECISION_MODELS,
    BenchModel,
    make_step,
    peak_mb,
    peak_reset,
    precision_table,
    small_models,
    sync,
)
from sr_lit.bench.common import median, spec_for  # noqa: E402

SKIP_EXIT = 0
NO_CUDA_EXIT = 2
DEFAULT_OUT = REPO_ROOT / "bench" / "gpu_results.json"
PSNR_TOLERANCE_DB = 0.01


# ------------------------------------------------------------------------------------------------ helpers
class Clock:
    """Wall-clock budget: later parts are skipped (and say so) once it is spent."""

    def __init__(self, budget_s: float) -> None:
        self.t0, self.budget_s = time.perf_counter(), budget_s

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)


# --------------------------------------------------------------------------------------- 1. HPF kernel
def hpf_kernel(device: torch.device, shape: tuple[int, int, int, int], reps: int) -> dict[str, float]:
    from sr_lit.bench.hpf import GROUPS, fwd_bwd, impls, inputs

    out: dict[str, float] = {}
    for k in (3, 5):
        x, w, grad = inputs(shape, k, GROUPS, device=str(device))
        fns = impls()
        ref = fns["unfold"](x, w, k, GROUPS).detach()
        for _ in range(3):
            for fn in fns.values():
                fwd_bwd(fn, x, w, grad, k, GROUPS)
        times: dict[str, list[float]] = {n: [] for n in fns}
        for _ in range(reps):
            for name, fn in fns.items():
                times[name].append(fwd_bwd(fn, x, w, grad, k, GROUPS))
        for name, fn in fns.items():
            base = peak_reset(device)
            fwd_bwd(fn, x, w, grad, k, GROUPS)
            out[f"gpu_hpf_k{k}_{name}_ms"] = 1e3 * median(times[name])
            out[f"gpu_hpf_k{k}_{name}_peak_mb"] = peak_mb(device, base)
            out[f"gpu_hpf_k{k}_{name}_max_abs_diff"] = float((fn(x, w, k, GROUPS).detach() - ref).abs().max())
        for name in ("shift", "shift_autograd"):
            out[f"gpu_hpf_k{k}_{name}_speedup_vs_unfold"] = (
                out[f"gpu_hpf_k{k}_unfold_ms"] / out[f"gpu_hpf_k{k}_{name}_ms"]
            )
            out[f"gpu_hpf_k{k}_{name}_peak_ratio_vs_unfold"] = (
                out[f"gpu_hpf_k{k}_{name}_peak_mb"] / out[f"gpu_hpf_k{k}_unfold_peak_mb"]
            )
    return out


# ------------------------------------------------------------------------------------ 2. step times
def step_times(
    models: dict[str, Any],
    arms: list[str],
    device: torch.device,
    steps: int,
    reps: int,
    reference: bool = True,
    prefix: str = "gpu_",
) -> dict[str, Any]:
    """The CPU `precision` benchmark's table (sr_lit.bench.arms.precision_table: same arms, models and keys), on
    `device`, every key prefixed; an arm that fails (e.g. torch.compile) is reported as `<prefix><model>_<arm>_error`.
    """
    errors: dict[str, Any] = {}

    def on_error(name: str, e: BaseException) -> None:
        errors[f"{prefix}{name}_error"] = f"{type(e).__name__}: {e}"[:500]

    res = precision_table(
        device, models, arms, n_steps=steps, reps=reps, reference=reference, on_error=on_error
    )
    return {**{f"{prefix}{k}": v for k, v in res.items()}, **errors}


# ------------------------------------------------------------------------------------ 3. PSNR check
ImagePairs = list[tuple[torch.Tensor, torch.Tensor]]  # (lr uint8 (3,h,w), hr uint8 (3,h*2,w*2))


def data_dirs(explicit: str | None) -> list[Path]:
    cands = [
        explicit,
        os.environ.get("SR_DATA_DIR"),
        REPO_ROOT.parent / "shared" / "data",
        REPO_ROOT / "shared" / "data",
    ]
    return [Path(c) for c in cands if c]


def synthetic_pairs(n: int, size: int, seed: int) -> ImagePairs:
    """Smooth random colour fields with edges: an SR-like signal where no photographs are available."""
    from sr_lit.data.imresize import make_lr

    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        coarse = torch.rand(1, 3, size // 16, size // 16, generator=g)
        img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
        img = img + 0.3 * (torch.rand(1, 1, 1, generator=g) > 0.5) * (torch.arange(size) > size // 2)
        hr = (img.clamp(0, 1) * 255).round().to(torch.uint8)
        pairs.append((make_lr(hr, 2), hr))
    return pairs


def store_pairs(store: Any) -> ImagePairs:
    from sr_lit.data.io import to_rgb

    return [tuple(to_rgb(t) for t in store.get(i)) for i in range(len(store))]  # type: ignore[misc]


def load_data(data_dir: str | None, quick: bool) -> tuple[str, ImagePairs, ImagePairs]:
    """(description, training pairs, evaluation pairs): Set5/T91, else scikit-image photos, else synthetic."""
    if quick:
        return "synthetic (quick)", synthetic_pairs(2, 64, 0), synthetic_pairs(2, 64, 1)
    try:
        from sr_lit.data.sources import benchmark_pairs, folder_pairs, sample_pairs
        from sr_lit.data.store import build_store
    except ImportError as e:  # no Pillow/numpy on this machine
        return f"synthetic ({e})", synthetic_pairs(8, 256, 0), synthetic_pairs(5, 256, 1)
    for d in data_dirs(data_dir):
        if (d / "Set5" / "HR").is_dir():
            ev = store_pairs(build_store(benchmark_pairs(d, "Set5", 2), 2, label="Set5"))
            if (d / "T91" / "HR").is_dir():
                tr_store = build_store(
                    folder_pairs(d / "T91" / "HR"), 2, label="T91", min_lr_size=48, too_small="skip"
                )
                return f"train T91, eval Set5 ({d})", store_pairs(tr_store), ev
            return f"train and eval Set5 ({d}; no T91)", ev, ev
    try:
        ev = store_pairs(build_store(sample_pairs("val"), 2, label="sample_val"))
        tr = store_pairs(
            build_store(sample_pairs("train"), 2, label="sample", min_lr_size=48, too_small="skip")
        )
        return "scikit-image photos (no Set5 found)", tr, ev
    except ImportError:
        return "synthetic (no Set5, no scikit-image)", synthetic_pairs(8, 256, 0), synthetic_pairs(5, 256, 1)


def random_patches(
    pairs: ImagePairs, batch: int, patch: int, g: torch.Generator, device: torch.device
) -> dict[str, torch.Tensor]:
    lrs, hrs = [], []
    for _ in range(batch):
        lr, hr = pairs[int(torch.randint(len(pairs), (1,), generator=g))]
        h, w = lr.shape[-2:]
        y = int(torch.randint(h - patch + 1, (1,), generator=g))
        x = int(torch.randint(w - patch + 1, (1,), generator=g))
        lrs.append(lr[:, y : y + patch, x : x + patch])
        hrs.append(hr[:, 2 * y : 2 * (y + patch), 2 * x : 2 * (x + patch)])
    return {"lr": torch.stack(lrs).to(device).float() / 255, "hr": torch.stack(hrs).to(device).float() / 255}


def psnr_check(device: torch.device, data_dir: str | None, train_steps: int, quick: bool) -> dict[str, Any]:
    from sr_lit.metrics.sr_metrics import SRMetrics

    source, train, evals = load_data(data_dir, quick)
    patch = 16 if quick else 48
    train = [(lr, hr) for lr, hr in train if min(lr.shape[-2:]) >= patch]
    spec = spec_for("edsr_baseline")
    step, model = make_step(spec, device, bf16=False, channels_last=False, compile_=False)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    loss = torch.tensor(float("nan"))
    for _ in range(train_steps):
        loss = step(random_patches(train, 2 if quick else 16, patch, g, device))
    sync(device)
    train_s = time.perf_counter() - t0
    model.eval()
    # fp32: as trained (cuDNN may use TF32, torch's default); fp32_strict: TF32 off, the exact reference
    metrics = {name: SRMetrics(scale=2).to(device) for name in ("fp32", "fp32_strict", "bf16")}
    tf32 = torch.backends.cudnn.allow_tf32
    with torch.inference_mode():
        for lr8, hr8 in evals:
            lr = (lr8.float() / 255)[None].to(device)
            hr = (hr8.float() / 255)[None].to(device)
            for name, metric in metrics.items():
                torch.backends.cudnn.allow_tf32 = tf32 and name != "fp32_strict"
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
                    sr = model(lr)
                metric.update(sr.float().clamp(0, 1), hr)
    torch.backends.cudnn.allow_tf32 = tf32
    scores = {name: {k: float(v) for k, v in m.compute().items()} for name, m in metrics.items()}
    delta = scores["bf16"]["psnr_y"] - scores["fp32"]["psnr_y"]
    return {
        "gpu_psnr_data": source,
        "gpu_psnr_train_steps": train_steps,
        "gpu_psnr_train_seconds": train_s,
        "gpu_psnr_final_train_loss": float(loss),
        "gpu_psnr_n_images": int(scores["fp32"]["n_images"]),
        "gpu_psnr_y_fp32": scores["fp32"]["psnr_y"],
        "gpu_psnr_y_bf16": scores["bf16"]["psnr_y"],
        "gpu_psnr_y_fp32_strict": scores["fp32_strict"]["psnr_y"],
        "gpu_psnr_y_delta_bf16_minus_fp32": delta,
        "gpu_psnr_y_delta_fp32_minus_strict": scores["fp32"]["psnr_y"] - scores["fp32_strict"]["psnr_y"],
        "gpu_ssim_y_fp32": scores["fp32"]["ssim_y"],
        "gpu_ssim_y_bf16": scores["bf16"]["ssim_y"],
        "gpu_psnr_equal_within_0_01db": bool(abs(delta) <= PSNR_TOLERANCE_DB),
    }


# ------------------------------------------------------------------------------------------------ main
def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "gpu_torch_version": torch.__version__,
        "gpu_device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "gpu_cuda_version": torch.version.cuda,
        # "fp32" convolutions use TF32 on Ampere+ unless these are off (Lightning's 32-true leaves them on)
        "gpu_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "gpu_matmul_precision": torch.get_float32_matmul_precision(),
    }
    return env


def print_table(res: dict[str, Any]) -> None:
    """Plain text (rich may not be installed where this runs)."""
    width = max(len(k) for k in res)
    print(f"{'key':<{width}}  value")
    print("-" * (width + 20))
    for k, v in res.items():
        shown = f"{v:.4g}" if isinstance(v, float) and not isinstance(v, bool) else str(v)
        print(f"{k:<{width}}  {shown}")


def run(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    clock = Clock(args.budget_s)
    quick = args.quick
    res: dict[str, Any] = {**environment(device), "gpu_quick": quick}
    hpf_shape = (2, 16, 12, 12) if quick else (16, 64, 48, 48)
    models = small_models() if quick else dict(PRECISION_MODELS)
    steps, reps = (1, 1) if quick else (20, 3)
    parts: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("hpf", lambda: hpf_kernel(device, hpf_shape, reps=2 if quick else 20)),
        # the CPU benchmark's table: same arms, models (the 64-channel ones at the paper's batch 16) and keys
        ("precision", lambda: step_times(models, list(PRECISION_ARMS), device, steps, reps)),
        ("psnr", lambda: psnr_check(device, args.data_dir, 2 if quick else args.train_steps, quick)),
    ]
    if (
        device.type == "cuda"
    ):  # torch.compile: GPU only (inductor's CPU code needs a C++ toolchain and minutes)
        compile_arms = ["fp32", "bf16_cl", "bf16_cl_compile"]
        edsr = {"edsr_baseline": models["edsr_baseline"]}
        parts.append(
            ("compile", lambda: step_times(edsr, compile_arms, device, steps, reps, False, "gpu_compile_"))
        )
    rcan = {
        "rcan": BenchModel(
            "rcan",
            "ca",
            overrides=(("n_resgroups", 1), ("n_resblocks", 1), ("n_feats", 16)),
            batch=1,
            patch=8,
        )
        if quick
        else BenchModel("rcan", "ca")
    }
    parts.append(("rcan", lambda: step_times(rcan, ["fp32", "bf16", "bf16_cl"], device, 1 if quick else 10, reps,
                                             False)))  # fmt: skip
    for name, part in parts:
        if clock.left() <= 0:
            res[f"gpu_{name}_skipped"] = f"time budget of {args.budget_s:.0f} s spent"
            continue
        t0 = time.perf_counter()
        try:
            res.update(part())
        except Exception as e:  # noqa: BLE001 - report and go on: one call must return every other number
            res[f"gpu_{name}_error"] = f"{type(e).__name__}: {e}"
        res[f"gpu_{name}_seconds"] = time.perf_counter() - t0
        print(f"[gpu_check] {name}: {res[f'gpu_{name}_seconds']:.0f} s", file=sys.stderr, flush=True)
    res["gpu_wall_seconds"] = time.perf_counter() - clock.t0
    return res


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sr_lit.bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: a dry run, with --quick)")
    p.add_argument("--quick", action="store_true", help="minimal sizes (a dry run of every step)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    p.add_argument("--data-dir", help="folder holding Set5/ and T91/ (default: $SR_DATA_DIR, ../shared/data)")
    p.add_argument("--train-steps", type=int, default=1000, help="fp32 steps before the PSNR comparison")
    p.add_argument(
        "--budget-s", type=float, default=420.0, help="skip the parts left after this many seconds"
    )
    p.add_argument("--require-cuda", action="store_true", help=f"exit {NO_CUDA_EXIT} (not 0) without CUDA")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing measured, skipped. "
            "Run it on a GPU machine (see bench/GPU.md); --device cpu --quick dry-runs it here."
        )
        return NO_CUDA_EXIT if args.require_cuda else SKIP_EXIT
    res = run(args, device)
    print_table(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, sort_keys=True, default=str) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    failed = [k for k in res if k.endswith("_error")]
    return 1 if failed or res.get("gpu_psnr_equal_within_0_01db") is False else 0


if __name__ == "__main__":
    sys.exit(main())
