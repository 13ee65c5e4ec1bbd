"""Shared helpers: model specs from the real configs, interleaved A/B timing, medians, environment facts.

The CPU this runs on is shared, so no absolute time is trusted on its own: every figure is a ratio of two
measurements taken in the same run, interleaved (A, B, A, B, ...), warm-up excluded, median over repetitions.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"

# RCAN cut down to a CPU-sized depth (same width 64 and CA reduction): the per-block cost of an attention unit
# relative to its convs does not depend on the depth, the run time does (full RCAN: 10 groups x 20 RCABs).
RCAN_REDUCED = {"n_resgroups": 2, "n_resblocks": 4}
RCAN_REDUCED_TAG = "rcan_g2b4"

Result = dict[str, Any]


def load_group(group: str, option: str) -> dict[str, Any]:
    """configs/<group>/<option>.yaml as a plain dict (these groups hold no interpolations)."""
    import yaml

    with open(CONFIG_DIR / group / f"{option}.yaml") as f:
        return dict(yaml.safe_load(f) or {})


def spec_for(
    backbone: str | Mapping[str, Any],
    attention: str = "none",
    hpf: str | Mapping[str, Any] = "none",
    scale: int = 2,
    **backbone_overrides: Any,
) -> dict[str, Any]:
    """A validated model spec from config names (configs/<group>/<name>.yaml) and backbone overrides."""
    from sr_lit.models.registry import model_spec_from_config

    bb = load_group("backbone", backbone) if isinstance(backbone, str) else dict(backbone)
    bb.update(backbone_overrides)
    hp = load_group("hpf", hpf) if isinstance(hpf, str) else dict(hpf)
    attn = load_group("attention", attention)
    return model_spec_from_config({"backbone": bb, "attention": attn, "hpf": hp, "scale": scale})


def build(spec: Mapping[str, Any], seed: int = 0) -> nn.Module:
    from sr_lit.models.registry import build_model

    torch.manual_seed(seed)
    return build_model(**spec)


def random_batches(
    n: int, batch: int, patch: int, scale: int, seed: int = 0, device: torch.device | str = "cpu"
) -> list[dict[str, torch.Tensor]]:
    """Pre-built LR/HR batches (content is irrelevant to step time)."""
    g = torch.Generator().manual_seed(seed)
    hp = patch * scale
    return [
        {
            "lr": torch.rand(batch, 3, patch, patch, generator=g).to(device),
            "hr": torch.rand(batch, 3, hp, hp, generator=g).to(device),
        }
        for _ in range(n)
    ]


def train_step_fn(
    model: nn.Module,
    rgb_range: float = 255.0,
    bf16: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[Mapping[str, torch.Tensor]], torch.Tensor]:
    """One plain PyTorch training step, returning the detached loss: zero_grad, forward (under bf16 autocast when
    asked: what SRModule.training_step runs under trainer.precision=bf16-mixed), L1 on [0, rgb_range] like
    SRModule, backward, Adam like configs/module. forward: e.g. torch.compile(model) (default: the model)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    net = forward if forward is not None else model  # not `or`: a compiled module has no truth value
    device_type = next(model.parameters()).device.type
    model.train()

    def step(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            sr = net(batch["lr"].contiguous(memory_format=memory_format))
        loss = F.l1_loss(sr.float() * rgb_range, batch["hr"] * rgb_range)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def timed_loop(step: Callable[[Any], None], items: Iterable[Any], warmup: int) -> list[float]:
    """Seconds per iteration (start to start, so fetching the item counts), the first `warmup` dropped."""
    stamps = []
    for item in items:
        stamps.append(time.perf_counter())
        step(item)
    stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]


def interleave(arms: Mapping[str, Callable[[], list[float]]], reps: int) -> dict[str, list[list[float]]]:
    """Run every arm once per repetition, A B, B A, A B, ... (the order flips each repetition, so a load that
    drifts during the run favours no arm); per arm a list of per-rep samples."""
    out: dict[str, list[list[float]]] = {name: [] for name in arms}
    names = list(arms)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            out[name].append(arms[name]())
    return out


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def pooled_median(samples: list[list[float]]) -> float:
    return median(x for rep in samples for x in rep)


def paired_ratio(num: list[list[float]], den: list[list[float]]) -> float:
    """Median over repetitions of median(num_rep) / median(den_rep): pairs are measured back to back."""
    return median(median(a) / median(b) for a, b in zip(num, den))


def load_avg_1m() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:  # pragma: no cover - not on Linux/macOS
        return float("nan")


def environment() -> Result:
    import pytorch_lightning as pl

    return {
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "pytorch_lightning_version": pl.__version__,
        "python_version": platform.python_version(),
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_", ""),
    }


def finite(results: Mapping[str, Any]) -> bool:
    """Every float in a result dict is finite (smoke test helper)."""
    import math

    return all(math.isfinite(v) for v in results.values() if isinstance(v, float))


def compose_train(overrides: Iterable[str], output_dir: str | os.PathLike) -> Any:
    """configs/train.yaml composed with `overrides` as sr-train would (Hydra), outside a Hydra run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    import sr_lit.utils.config  # noqa: F401  (the ${repo_root:} resolver)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)  # ${hydra:runtime.output_dir} only resolves inside a run
    return cfg
