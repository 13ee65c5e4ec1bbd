"""The results table: headline keys with their targets (issue "Performance: make bench"), then context rows."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

# key -> (comparison, bound, what it measures)
TARGETS: dict[str, tuple[str, float, str]] = {
    "lightning_vs_plain_steps_ratio": (">=", 0.97, "Lightning steps/s / plain loop, edsr_baseline b16 p48"),
    "loader_vs_model_ratio": (">=", 3.0, "best DataLoader patches/s / edsr_baseline training patches/s"),
    "hpf_speedup_vs_unfold": (">=", 1.5, "HPF k=3 fwd+bwd: unfold time / repo shift time"),
    "hpf_extra_memory_ratio_vs_unfold": ("<=", 1 / 3, "HPF k=3 memory saved for backward: shift / unfold"),
    "tiled_2k_peak_rss_mb_edsr_baseline": ("<=", 2048.0, "sr-upscale 2K x2 tiled, peak RSS (MB)"),
    "tiled_2k_peak_rss_mb_rcan": ("<=", 2048.0, "sr-upscale 2K x2 tiled, full RCAN, peak RSS (MB)"),
    "cache_rss_per_decoded_byte": (
        "<=",
        1.5,
        "sr-train peak RSS, 40 DIV2K-sized x2 - tiny data, per decoded byte",
    ),
    "shared_reader_private_per_decoded_byte": (
        "<=",
        0.1,
        "data.cache=shared: 2nd rank's private memory / decoded",
    ),
    "lightning_vs_plain_ci95_halfwidth_rel": ("<=", 0.01, "that ratio's 95 % interval, +- (relative)"),
    "bf16_train_speedup_vs_fp32_edsr_baseline": (
        ">=",
        1.6,
        "train step fp32 / bf16 autocast, edsr_baseline b8 p48",
    ),
    "bf16_train_speedup_vs_fp32_edsr_baseline_mmca_hpf": (">=", 1.4, "same, edsr_baseline + MMCA + HPF"),
    "tiled_vs_whole_throughput_ratio": (
        ">=",
        0.9,
        "sr-upscale's default tiling / whole image, 2K, edsr_baseline",
    ),
}
# targets that only bf16-capable hardware can meet: "n/a" where precision_cpu_native_bf16 is false
NEEDS_NATIVE_BF16 = (
    "bf16_train_speedup_vs_fp32_edsr_baseline",
    "bf16_train_speedup_vs_fp32_edsr_baseline_mmca_hpf",
)

_PRECISION_MODELS = ("edsr_baseline", "edsr_baseline_mmca_hpf", "rcan_g2b4", "edsr_tiny_mmca_hpf")

INFO: dict[str, str] = {
    "lightning_overhead_ms_per_step_edsr_tiny_b4_p16": "Lightning's per-step cost, ms (tiny model shows it)",
    "lightning_vs_plain_steps_ratio_implied": "edsr_baseline plain step / (plain step + that cost)",
    "lightning_vs_plain_steps_ratio_edsr_tiny_b4_p16": "same ratio on edsr_tiny b4 p16",
    "loader_model_patches_per_s": "edsr_baseline training patches/s",
    "loader_patches_per_s_workers0": "DataLoader patches/s, 0 workers",
    "loader_patches_per_s_workers1": "DataLoader patches/s, 1 worker",
    "loader_patches_per_s_workers2": "DataLoader patches/s, 2 workers",
    "hpf_k5_speedup_vs_unfold": "HPF k=5: unfold / shift time",
    "hpf_k5_extra_memory_ratio_vs_unfold": "HPF k=5: saved memory shift / unfold",
    "hpf_k3_peak_rss_ratio_vs_unfold": "HPF k=3: peak RSS growth shift / unfold",
    "hpf_speedup_vs_unfold_shift_autograd": "HPF k=3: unfold / shift under plain autograd (no custom backward)",
    "hpf_k5_speedup_vs_unfold_shift_autograd": "HPF k=5: unfold / shift under plain autograd",
    "ca_step_time_ratio_vs_none": "rcan_g2b4 step time with CA / without",
    "fca_step_time_ratio_vs_none": "rcan_g2b4 step time with FCA / without",
    "mmca_step_time_ratio_vs_none": "rcan_g2b4 step time with MMCA / without",
    "hpf_model_step_time_ratio_vs_none": "rcan_g2b4 step time with HPF (shift) / without",
    "hpf_model_step_time_ratio_vs_none_unfold": "rcan_g2b4 step time with HPF (unfold reference) / without",
    "tiled_2k_edsr_baseline_model_mp_per_s": "edsr_baseline tiled, HR MP/s (start-up excluded)",
    "untiled_2k_edsr_baseline_model_mp_per_s": "edsr_baseline whole image, HR MP/s",
    "untiled_2k_peak_rss_mb_edsr_baseline": "edsr_baseline whole image, peak RSS (MB)",
    "tiled_2k_peak_rss_mb_rcan_g2b4": "reduced RCAN tiled, peak RSS (MB)",
    "tiled_2k_rcan_seconds": "full RCAN 2K tiled, wall seconds",
    "tiled_2k_rcan_model_mp_per_s": "full RCAN tiled, HR MP/s (start-up excluded)",
    "threads_edsr_tiny_b4_p16_passive_2t_speedup_vs_default_2t": "tiny steps: OMP passive / default, 2 threads",
    "threads_edsr_baseline_b4_p48_passive_2t_speedup_vs_default_2t": "edsr_baseline: OMP passive / default",
    "setup_s_per_100_div2k_official_lr": "memory cache set-up, s per 100 DIV2K-sized images (official LR)",
    "setup_s_per_100_div2k_made_lr": "same, LR made with MATLAB bicubic",
    "shared_reader_decoded_images": "data.cache=shared: images the 2nd rank decoded",
    "loader_patches_per_s_per_worker_memory_48px_x2": "one worker, memory cache, 48 px x2 (DIV2K-sized)",
    "loader_patches_per_s_per_worker_lmdb_pack_48px_x2": "one worker, sr-data pack (LMDB raw), 48 px x2",
    "loader_patches_per_s_per_worker_lmdb_basicsr_png_48px_x2": "one worker, BasicSR LMDB (PNG subs), 48 px x2",
    "loader_patches_per_s_per_worker_memory_96px_x4": "one worker, memory cache, 96 px x4",
    "loader_patches_per_s_per_worker_lmdb_pack_96px_x4": "one worker, sr-data pack, 96 px x4",
    "loader_patches_per_s_per_worker_lmdb_basicsr_png_96px_x4": "one worker, BasicSR LMDB, 96 px x4",
    "lightning_vs_plain_steps_ratio_ci95_low": "its 95 % interval, low end",
    "lightning_vs_plain_steps_ratio_ci95_high": "its 95 % interval, high end",
    "lightning_vs_plain_reps": "pairs of steps run (until +-1 % or the time cap)",
    "lightning_vs_plain_pair_log_ratio_sd": "sd of one pair's log ratio (the noise the interval averages)",
    "precision_cpu_native_bf16": "CPU computes bf16 natively (AVX-512 BF16 / AMX)",
    "precision_cpu_capability": "torch's CPU kernel level",
    **{
        f"{arm}_train_speedup_vs_fp32_{m}": f"train step fp32 / {arm}, {m}"
        for m in _PRECISION_MODELS
        for arm in ("bf16", "bf16_cl", "fp32_cl")
        if f"{arm}_train_speedup_vs_fp32_{m}" not in TARGETS
    },
    **{
        f"train_flop_rate_vs_conv_{m}": f"{m}: training FLOP rate / 64-ch conv rate (fastest arm)"
        for m in _PRECISION_MODELS
    },
    **{f"fastest_arm_{m}": f"{m}: fastest precision arm" for m in _PRECISION_MODELS},
    "edsr_baseline_conv64_train_gflops_fp32": "64-channel 3x3 conv fwd+bwd at b8 p48, GFLOP/s, fp32",
    "edsr_baseline_conv64_train_gflops_fp32_cl": "same, fp32 channels_last",
    "edsr_baseline_conv64_train_gflops_bf16": "same, bf16",
    "edsr_baseline_conv64_train_gflops_bf16_cl": "same, bf16 channels_last",
    "tiled_vs_whole_throughput_ratio_edsr_tiny_mmca_hpf": "default tiling / whole, make-train model (cross-faded tiles)",
    "bf16_inference_speedup": "sr-upscale whole image fp32 / bf16 time, edsr_baseline, LR 340x226",
    "bf16_inference_speedup_edsr_tiny_mmca_hpf": "same, make-train model",
    "load_avg_1m_start": "load average at start (2 cores)",
    "load_avg_1m_end": "load average at end",
}

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def status(key: str, value: Any, results: Mapping[str, Any] | None = None) -> str:
    if key not in TARGETS or not isinstance(value, int | float):
        return ""
    if key in NEEDS_NATIVE_BF16 and results is not None and results.get("precision_cpu_native_bf16") is False:
        return "n/a: no native bf16"
    op, bound, _ = TARGETS[key]
    return "met" if _OPS[op](float(value), bound) else "MISSED"


def rows(results: Mapping[str, Any], measured_now: set[str] | None = None) -> list[tuple[str, ...]]:
    """(key, value, target, status, note) for every headline/context key present."""
    out = []
    for key, (op, bound, what) in TARGETS.items():
        value = results.get(key)
        if value is None:
            out.append((key, "not measured", f"{op} {fmt(bound)}", "", what))
            continue
        note = what if measured_now is None or key in measured_now else f"{what} [earlier run]"
        out.append((key, fmt(value), f"{op} {fmt(bound)}", status(key, value, results), note))
    for key, what in INFO.items():
        if key in results:
            note = what if measured_now is None or key in measured_now else f"{what} [earlier run]"
            out.append((key, fmt(results[key]), "", "", note))
    return out


def print_tables(results: Mapping[str, Any], measured_now: set[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sr_lit benchmarks (CPU; every time figure a same-run ratio)")
    for col in ("key", "value", "target", "status", "what"):
        table.add_column(col, justify="right" if col in ("value", "target") else "left")
    for key, value, target, st, note in rows(results, measured_now):
        style = {"met": "green", "MISSED": "red"}.get(st, "")
        table.add_row(key, value, target, f"[{style}]{st}[/]" if style else st, note)
    Console(width=200).print(table)


def markdown(results: Mapping[str, Any]) -> str:
    """The same table as GitHub markdown (bench/README.md)."""
    lines = ["| key | value | target | status | what |", "|---|---:|---:|---|---|"]
    lines += [f"| `{k}` | {v} | {t} | {s} | {w} |" for k, v, t, s, w in rows(results)]
    return "\n".join(lines)


if (
    __name__ == "__main__"
):  # python -m sr_lit.bench.table [results.json]: the markdown table for bench/README.md
    import json
    import sys
    from pathlib import Path

    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "bench" / "results.json"
    )
    print(markdown(json.loads(path.read_text())))
