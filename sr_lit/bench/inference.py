"""Benchmark 5: `sr-upscale` on a 2K image (DIV2K-sized: 2040x1356 HR at x2, LR 1020x678), tiled vs whole.

Each run is a separate `python -m sr_lit.cli.upscale` process (random weights in a .safetensors export; the
weights do not change the cost), timed end to end (start-up, model load and PNG writing included: what a user
waits for) and measured for peak RSS by /usr/bin/time (its %M is the child's own high-water mark; wait4 on a
child of this process would start from this process's RSS, which Linux carries over fork + exec). A run on a
32x32 input gives the fixed start-up cost, so `*_model_mp_per_s` is the upscaling rate alone.

Default arms: edsr_baseline tiled (sr-upscale's automatic 384x384 tiles) and whole (--tile 0), and the reduced
RCAN (2 groups x 4 RCABs, same width and tiles) tiled. Full RCAN (10 x 20, 15.4 M params) takes tens of minutes
per 2K image on 2 CPU cores: only with --rcan-full, tiled only (whole-image RCAN on CPU is not measured).

In-process ratios (Upscaler called directly, arms interleaved, paired medians; no start-up in them):
`tiled_vs_whole_throughput_ratio` = whole-image time / default-tiling time on the same 2K image (edsr_baseline;
`..._edsr_tiny_mmca_hpf`: the `make train` model, whose global attention makes the tiles cross-fade), and
`bf16_inference_speedup` = fp32 time / bf16 (autocast) time, whole image, on a 340x226 crop of it (bf16 without
native hardware support is an order of magnitude slower: the crop keeps that arm short).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sr_lit.bench.common import RCAN_REDUCED, RCAN_REDUCED_TAG, Result, build, interleave, median, spec_for

LR_2K = (1020, 678)  # (w, h): DIV2K 0801's 2040x1356 HR at x2
LR_CROP = (340, 226)  # (w, h): the bf16 comparison's input


def make_lr_image(path: Path, size: tuple[int, int]) -> Path:
    """A real photograph resized to `size` (content only matters for PNG encoding time)."""
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()).resize(size, Image.Resampling.BICUBIC).save(path)
    return path


def make_checkpoint(path: Path, spec: dict[str, Any]) -> Path:
    from sr_lit.models.loading import save_safetensors

    return save_safetensors(build(spec).eval(), spec, path)


def upscale_run(image: Path, ckpt: Path, out_dir: Path, tile: int | None) -> dict[str, float]:
    """One sr-upscale process: wall seconds and peak RSS (MB)."""
    cmd = [sys.executable, "-m", "sr_lit.cli.upscale", str(image), "--out", str(out_dir), "--ckpt", str(ckpt)]
    cmd += ["--device", "cpu", "--quiet"] + ([] if tile is None else ["--tile", str(tile)])
    time_bin = shutil.which("time") or "/usr/bin/time"
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = [time_bin, "-f", "%M", "-o", rss.name, *cmd] if os.path.exists(time_bin) else cmd
        t0 = time.perf_counter()
        subprocess.run(wrapped, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        text = rss.read().strip().splitlines()
    peak_mb = int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan")
    return {"seconds": wall, "peak_rss_mb": peak_mb}


def measure(
    arms: dict[str, tuple[dict[str, Any], int | None]], size: tuple[int, int], startup: bool = True
) -> dict[str, float]:
    """arms: name -> (model spec, tile: None = automatic, 0 = whole image); startup: time a 32x32 run too."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sr_bench_infer_") as tmp:
        d = Path(tmp)
        image = make_lr_image(d / "lr.png", size)
        tiny = make_lr_image(d / "tiny.png", (32, 32))
        hr_mp = size[0] * size[1] * 4 / 1e6
        fixed: dict[str, float] = {}
        for name, (spec, tile) in arms.items():
            ckpt = d / f"{spec['backbone']['arch']}_{abs(hash(str(spec)))}.safetensors"
            if not ckpt.exists():
                make_checkpoint(ckpt, spec)
            if startup and str(ckpt) not in fixed:  # per model: imports, weights, a tiny forward, PNG
                fixed[str(ckpt)] = upscale_run(tiny, ckpt, d / f"out_tiny_{ckpt.stem}", tile=0)["seconds"]
                out[f"{name}_startup_seconds"] = fixed[str(ckpt)]
            r = upscale_run(image, ckpt, d / f"out_{name}", tile)
            out[f"{name}_seconds"] = r["seconds"]
            out[f"{name}_peak_rss_mb"] = r["peak_rss_mb"]
            out[f"{name}_mp_per_s"] = hr_mp / r["seconds"]
            if startup:
                out[f"{name}_model_mp_per_s"] = hr_mp / max(r["seconds"] - fixed[str(ckpt)], 1e-9)
    return out


def lr_tensor(size: tuple[int, int]) -> torch.Tensor:
    """The benchmark photograph at `size` (w, h) as a [0, 1] (3, h, w) tensor."""
    with tempfile.TemporaryDirectory(prefix="sr_bench_img_") as tmp:
        from sr_lit.data.io import read_image, to_float

        return to_float(read_image(make_lr_image(Path(tmp) / "lr.png", size)))


def upscaler_ratios(
    spec: dict[str, Any], lr: torch.Tensor, arms: dict[str, dict[str, Any]], reps: int
) -> dict[str, list[float]]:
    """Seconds per image of each Upscaler configuration (kwargs per arm), interleaved over repetitions."""
    from sr_lit.inference.predictor import Upscaler

    model = build(spec).eval()
    ups = {name: Upscaler(model, device="cpu", spec=spec, **kw) for name, kw in arms.items()}

    def timed(up: Upscaler) -> list[float]:
        t0 = time.perf_counter()
        up(lr)
        return [time.perf_counter() - t0]

    for up in ups.values():  # warm-up: allocator, oneDNN primitives
        up(lr[:, : lr.shape[1] // 4, : lr.shape[2] // 4])
    samples = interleave({name: (lambda up=up: timed(up)) for name, up in ups.items()}, reps)
    return {name: [x for rep in s for x in rep] for name, s in samples.items()}


def in_process(quick: bool) -> Result:
    out: Result = {}
    big = lr_tensor((64, 48) if quick else LR_2K)
    crop = lr_tensor((40, 32) if quick else LR_CROP)
    reps = 1 if quick else 2
    tile = {"max_pixels": 24 * 24} if quick else {}  # default: sr-upscale's automatic tiling
    models = {"edsr_baseline": spec_for("edsr_tiny" if quick else "edsr_baseline")}
    models["edsr_tiny_mmca_hpf"] = spec_for("edsr_tiny", "mmca", "dynamic")
    for name, spec in models.items():
        t = upscaler_ratios(spec, big, {"whole": {"tile": 0}, "tiled": tile}, reps)
        suffix = "" if name == "edsr_baseline" else f"_{name}"
        out[f"tiled_vs_whole_throughput_ratio{suffix}"] = median(
            w / s for w, s in zip(t["whole"], t["tiled"])
        )
        out[f"inference_whole_s_{name}"] = median(t["whole"])
        out[f"inference_tiled_s_{name}"] = median(t["tiled"])
        t = upscaler_ratios(spec, crop, {"fp32": {"tile": 0}, "bf16": {"tile": 0, "precision": "bf16"}}, reps)
        out[f"bf16_inference_speedup{suffix}"] = median(f / b for f, b in zip(t["fp32"], t["bf16"]))
        out[f"inference_crop_fp32_s_{name}"] = median(t["fp32"])
        out[f"inference_crop_bf16_s_{name}"] = median(t["bf16"])
    out["inference_in_process_images"] = (
        f"tiling: LR {big.shape[2]}x{big.shape[1]}; bf16: LR {crop.shape[2]}x{crop.shape[1]}"
    )
    return out


def run(quick: bool = False, rcan_full: bool = False, **_: Any) -> Result:
    if quick:
        spec = spec_for("edsr_tiny")
        res = measure(
            {"tiled_tiny_edsr_tiny": (spec, 24), "untiled_tiny_edsr_tiny": (spec, 0)}, (64, 48), False
        )
        res["inference_image"] = "LR 64x48 x2 (quick)"
        return {**res, **in_process(quick=True)}
    edsr = spec_for("edsr_baseline")
    arms: dict[str, tuple[dict[str, Any], int | None]] = {
        "tiled_2k_edsr_baseline": (edsr, None),
        "untiled_2k_edsr_baseline": (edsr, 0),
        f"tiled_2k_{RCAN_REDUCED_TAG}": (spec_for("rcan", "ca", **RCAN_REDUCED), None),
    }
    if rcan_full:
        arms["tiled_2k_rcan"] = (spec_for("rcan", "ca"), None)
    res = measure(arms, LR_2K)
    out: Result = dict(res)
    for name in arms:  # the key names: tiled_2k_peak_rss_mb_<model>
        prefix, model = name.split("_2k_", 1)
        out[f"{prefix}_2k_peak_rss_mb_{model}"] = res[f"{name}_peak_rss_mb"]
    out["inference_image"] = f"LR {LR_2K[0]}x{LR_2K[1]} x2 -> HR {2 * LR_2K[0]}x{2 * LR_2K[1]}"
    if rcan_full:  # absent otherwise, so that a merged results.json keeps the earlier full-RCAN run's stamp
        out["inference_rcan_full_measured_at"] = time.strftime("%Y-%m-%d %H:%M")
    out.update(in_process(quick=False))
    return out
