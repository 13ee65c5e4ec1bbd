"""Smoke test of `make bench`: every benchmark function runs at minimal sizes and returns finite, flat results.

Structure and finiteness only, never speed (the CPU is shared). One thread: libgomp's spinning barriers make
tiny ops 10x slower on a loaded machine (sr_lit.bench.threads), which would only slow this test down.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch

from sr_lit.bench import (
    arms,
    attention,
    common,
    framework,
    gpu_check,
    hpf,
    inference,
    loader,
    precision,
    table,
    threads,
)
from sr_lit.bench.__main__ import parse_args, write
from tests._shared import require_shared_data


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def check_flat(res: dict, *keys: str) -> None:
    assert all(isinstance(v, str | int | float | bool) for v in res.values()), res
    assert common.finite(res), res
    for key in keys:
        assert key in res, (key, sorted(res))


def test_framework_both_arms() -> None:
    res = framework.measure(
        "edsr_tiny", batch=1, patch=8, warmup=1, min_pairs=6, target_rel=0.01, max_seconds=0
    )
    check_flat(res, "ratio", "plain_s_per_step", "lightning_s_per_step", "overhead_ms_per_step")
    # max_seconds=0: stop at `min_pairs` pairs after the warm-up
    assert res["n_steps"] == 6 and res["ratio"] > 0
    # each pair: a Lightning step and a plain step of the same model and batch, so within a factor of a few
    assert 0.2 < res["lightning_s_per_step"] / res["plain_s_per_step"] < 5
    assert res["ratio_ci95_low"] <= res["ratio"] <= res["ratio_ci95_high"]


def test_framework_ratio_interval() -> None:
    # t quantiles: the table's last entry and the expansion beyond it against known values (dof 9, 10, 30)
    assert framework.t975(9) == pytest.approx(2.262, abs=1e-3)
    assert framework.t975(10) == pytest.approx(2.228, abs=3e-3) and framework.t975(30) == pytest.approx(
        2.042, abs=1e-3
    )
    ratio, low, high = framework.ratio_interval([0.9, 1.0, 1.1])
    assert low < ratio < high and ratio == pytest.approx((0.9 * 1.0 * 1.1) ** (1 / 3))
    assert framework.ratio_interval([1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_loader_rates() -> None:
    res = loader.run(quick=True)
    check_flat(res, "loader_vs_model_ratio", "loader_patches_per_s_workers0", "loader_patches_per_s_workers1")
    assert res["loader_vs_model_ratio"] > 0


def test_hpf_keys_and_equality() -> None:
    res = hpf.run(quick=True)
    check_flat(res, "hpf_speedup_vs_unfold", "hpf_extra_memory_ratio_vs_unfold", "hpf_k5_speedup_vs_unfold")
    assert res["hpf_k3_max_abs_diff_out"] <= 1e-5 and res["hpf_k3_max_abs_diff_out_shift_autograd"] <= 1e-5
    assert res["hpf_k3_max_abs_diff_grad_w"] <= 1e-5 and res["hpf_k3_max_abs_diff_grad_x"] <= 1e-5
    assert 0 < res["hpf_extra_memory_ratio_vs_unfold"] < 1  # the lean path saves less for backward


def test_hpf_peak_rss_child() -> None:
    # > 0: the child's high-water mark was reset (ru_maxrss would start at this process's RSS and read 0)
    assert (
        hpf.rss_growth_mb("unfold", 3, (2, 16, 64, 64)) > 2 * 0.5
    )  # unfold holds 9 copies of a 0.5 MB input


def test_attention_ratios() -> None:
    res = attention.run(quick=True)
    check_flat(
        res, "ca_step_time_ratio_vs_none", "mmca_step_time_ratio_vs_none", "hpf_model_step_time_ratio_vs_none"
    )


def test_inference_subprocess() -> None:
    spec = common.spec_for("edsr_tiny")
    other = common.spec_for("edsr_tiny", n_resblocks=1)
    # tile 24: sr-upscale refuses tiles below the model's receptive margin (20 px here); two models, each with its
    # start-up run on the 32x32 image (their outputs must not collide: sr-upscale keeps existing files)
    arms = {"tiled": (spec, 24), "whole": (spec, 0), "other": (other, 0)}
    res = inference.measure(arms, (40, 24), startup=True)
    check_flat(res, "tiled_seconds", "tiled_peak_rss_mb", "tiled_mp_per_s", "other_startup_seconds")
    assert 50 < res["tiled_peak_rss_mb"] < 4096


def test_inference_in_process_ratios() -> None:
    res = inference.in_process(quick=True)
    check_flat(
        res,
        "tiled_vs_whole_throughput_ratio",
        "tiled_vs_whole_throughput_ratio_edsr_tiny_mmca_hpf",
        "bf16_inference_speedup",
        "bf16_inference_speedup_edsr_tiny_mmca_hpf",
    )
    assert all(res[k] > 0 for k in ("tiled_vs_whole_throughput_ratio", "bf16_inference_speedup"))


def test_threads_workload() -> None:
    # in-process: the arms differ only in the environment of the child running this
    assert threads._child("edsr_tiny", 1, 8, steps=1, warmup=0) > 0
    assert set(threads.ARMS) == {"default_2t", "passive_2t", "passive_1t"}


def test_table_and_merge(tmp_path) -> None:
    res = {"hpf_speedup_vs_unfold": 1.2, "loader_vs_model_ratio": 5.0, "load_avg_1m_start": 3.0}
    rows = {r[0]: r for r in table.rows(res)}
    assert rows["hpf_speedup_vs_unfold"][3] == "MISSED" and rows["loader_vs_model_ratio"][3] == "met"
    assert rows["tiled_2k_peak_rss_mb_rcan"][1] == "not measured"
    # a bf16 speed-up target is not applicable where the CPU emulates bf16
    key = "bf16_train_speedup_vs_fp32_edsr_baseline"
    assert {r[0]: r for r in table.rows({key: 0.2, "precision_cpu_native_bf16": False})}[key][3].startswith(
        "n/a"
    )
    assert {r[0]: r for r in table.rows({key: 0.2, "precision_cpu_native_bf16": True})}[key][3] == "MISSED"
    assert "| `loader_vs_model_ratio` | 5 |" in table.markdown(res)
    out = tmp_path / "results.json"
    write({"a": 1.0, "bench_hpf_error": "x"}, out)
    merged = write({"b": 2.0, "bench_hpf_seconds": 1.0}, out)
    assert merged == json.loads(out.read_text()) and merged["a"] == 1.0 and "bench_hpf_error" not in merged
    # a rerun of a benchmark drops the keys it produced before and no longer produces; others' keys stay
    write({"old": 1.0, "kept": 1.0, "bench_hpf_keys": "kept,old", "bench_hpf_seconds": 1.0}, out)
    merged = write({"kept": 2.0, "new": 3.0, "bench_hpf_keys": "kept,new", "bench_hpf_seconds": 1.0}, out)
    assert "old" not in merged and merged["kept"] == 2.0 and merged["new"] == 3.0 and merged["a"] == 1.0


def test_cli_args() -> None:
    assert parse_args(["--only", "hpf,loader", "--quick"]).only == ["hpf", "loader"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_gpu_check_skips_without_cuda(capsys) -> None:
    assert gpu_check.main([]) == gpu_check.SKIP_EXIT
    assert "no CUDA device" in capsys.readouterr().out
    assert gpu_check.main(["--require-cuda"]) == gpu_check.NO_CUDA_EXIT


def test_gpu_check_parts_on_cpu() -> None:
    cpu = torch.device("cpu")
    res = gpu_check.hpf_kernel(cpu, (1, 16, 8, 8), reps=1)
    assert (
        math.isfinite(res["gpu_hpf_k3_shift_autograd_speedup_vs_unfold"])
        and res["gpu_hpf_k3_shift_max_abs_diff"] < 1e-5
    )
    models = {"edsr_tiny_mmca_hpf": arms.small_models()["edsr_tiny_mmca_hpf"]}
    res = gpu_check.step_times(models, ["fp32", "bf16"], cpu, steps=1, reps=1)
    # the GPU table's keys are the CPU precision benchmark's, prefixed
    assert res["gpu_bf16_train_speedup_vs_fp32_edsr_tiny_mmca_hpf"] > 0
    assert res["gpu_train_flop_rate_vs_conv_edsr_tiny_mmca_hpf"] > 0


def test_precision_table_keys() -> None:
    res = precision.run(quick=True)
    check_flat(res, "precision_cpu_native_bf16", "precision_bf16_reps")
    for model in arms.PRECISION_MODELS:
        check_flat(
            res,
            f"bf16_train_speedup_vs_fp32_{model}",
            f"bf16_cl_train_speedup_vs_fp32_{model}",
            f"fp32_cl_train_speedup_vs_fp32_{model}",
            f"train_flop_rate_vs_conv_{model}",
            f"{model}_train_gflop_per_step",
            f"{model}_conv64_train_gflops_fp32",
            f"{model}_conv64_train_gflops_bf16_cl",
        )
        assert res[f"fastest_arm_{model}"] in arms.PRECISION_ARMS
        assert 0 < res[f"train_flop_rate_vs_conv_{model}"] < 100


def test_arms_agree_on_the_first_step() -> None:
    # every arm trains the same model: its first loss equals the fp32 one up to bf16 rounding
    spec = arms.small_models()["edsr_tiny_mmca_hpf"].spec()
    batch = common.random_batches(1, 2, 8, 2)[0]
    losses = {
        a: float(arms.make_step(spec, torch.device("cpu"), *arms.ARM_FLAGS[a])[0](batch))
        for a in arms.PRECISION_ARMS
    }
    assert all(loss == pytest.approx(losses["fp32"], rel=1e-2) for loss in losses.values()), losses


# the lent GPU machine has torch, Lightning and torchmetrics only: both ways of starting the check must import
# nothing else (an import error there would cost a device session)
_BLOCK_CLI_DEPS = """
import runpy, sys
for name in ("omegaconf", "hydra", "wandb", "kornia"):
    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError
"""
_WITHOUT_CLI_DEPS = (
    _BLOCK_CLI_DEPS
    + """
how, target = sys.argv[1], sys.argv[2]
sys.argv = [target, "--require-cuda"]
if how == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    runpy.run_path(target, run_name="__main__")
"""
)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
@pytest.mark.parametrize(
    ("how", "target"), [("module", "sr_lit.bench.gpu_check"), ("file", gpu_check.__file__)]
)
def test_gpu_check_starts_without_cli_deps(how: str, target: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CLI_DEPS, how, target],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=common.REPO_ROOT,
    )
    assert proc.returncode == gpu_check.NO_CUDA_EXIT, proc.stderr[-2000:]
    assert "no CUDA device" in proc.stdout


def test_gpu_check_psnr_data_without_cli_deps() -> None:
    """The PSNR part's data path (Set5 + T91 through sr_lit.data, SRMetrics) also needs none of the CLI deps."""
    data = require_shared_data()
    require_shared_data("T91", "HR")
    code = _BLOCK_CLI_DEPS + (
        "from sr_lit.bench import gpu_check\n"
        "from sr_lit.metrics.sr_metrics import SRMetrics\n"
        "source, train, evals = gpu_check.load_data(sys.argv[1], quick=False)\n"
        "print(source, len(train), len(evals))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=common.REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_train, n_eval = proc.stdout.split()[-2:]
    assert proc.stdout.startswith("train T91, eval Set5"), proc.stdout
    assert int(n_eval) == 5 and int(n_train) >= 80, proc.stdout


def test_train_step_accepts_a_compiled_forward() -> None:
    # a torch.compile wrapper has no truth value (its __len__ raises): the step must not test it with `or`
    model = common.build(arms.small_models()["edsr_tiny_mmca_hpf"].spec())
    compiled = torch.compile(model)
    with pytest.raises(TypeError):
        bool(compiled)
    assert callable(common.train_step_fn(model, 255.0, forward=compiled))
