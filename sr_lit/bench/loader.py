"""Benchmark 2: patches/s the training DataLoader delivers vs patches/s the model consumes.

The loader is SRDataModule's train_dataloader from the real data config (T91 when ../shared/data holds it,
else the scikit-image sample photos): memory decode cache, random crop, flips/rot90, collate. Rates with 0, 1
and 2 workers are interleaved over repetitions; each measurement drops the first batches (worker start-up and
the prefetch burst it queues) and times the next ones. The model rate is edsr_baseline's plain training step
(benchmark 1's when it ran in the same invocation, else measured here).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_lit.bench.common import Result, build, compose_train, median, spec_for, timed_loop, train_step_fn


def data_choice() -> str:
    """t91 when the shared data holds it (real photographs, the issue's choice), else the sample photos."""
    root = Path(os.environ.get("SR_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")
    return "t91" if (root / "T91" / "HR").is_dir() else "sample"


def build_datamodule(data: str, batch: int, patch: int, workdir: str, overrides: Sequence[str] = ()) -> Any:
    import hydra.utils

    base = [
        f"data={data}",
        "scale=2",
        f"data.batch_size={batch}",
        f"data.patch_size={patch}",
        "data.cache=memory",
    ]
    # validation sets are not part of the training loader: not decoded here
    cfg = compose_train([*base, "data.val_sets=[]", *overrides], workdir)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")  # decode cache built here, outside the timed part (as before training starts)
    return dm


def loader_rate(dm: Any, workers: int, batches: int) -> float:
    """Patches/s over `batches` batches after the start-up and prefetch burst of a fresh loader."""
    dm.num_workers = workers
    loader = dm.train_dataloader()
    skip = 1 + (loader.prefetch_factor or 0) * workers
    it = iter(loader)
    for _ in range(skip):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    del it, loader  # shut the workers down before the next measurement
    gc.collect()
    return batches * dm.batch_size / dt


def model_rate(dm: Any, backbone: str, steps: int = 2, warmup: int = 1) -> float:
    """Patches/s of plain training steps on real batches from the loader."""
    spec = spec_for(backbone)
    step = train_step_fn(build(spec), rgb_range=float(spec["backbone"].get("rgb_range", 1)))
    dm.num_workers = 0
    it = iter(dm.train_dataloader())
    batches = [next(it) for _ in range(steps + warmup)]
    return dm.batch_size / median(timed_loop(step, batches, warmup))


def measure(
    data: str,
    workers: Sequence[int] = (0, 1, 2),
    batch: int = 16,
    patch: int = 48,
    batches: int = 30,
    reps: int = 2,
    backbone: str = "edsr_baseline",
    model_patches_per_s: float | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sr_bench_data_") as workdir:
        dm = build_datamodule(data, batch, patch, workdir, overrides)
        rates: dict[int, list[float]] = {w: [] for w in workers}
        for _ in range(reps):
            for w in workers:
                rates[w].append(loader_rate(dm, w, batches))
        if model_patches_per_s is None:
            model_patches_per_s = model_rate(dm, backbone)
    out = {f"loader_patches_per_s_workers{w}": median(r) for w, r in rates.items()}
    best = max(out.values())
    out["loader_model_patches_per_s"] = model_patches_per_s
    out["loader_vs_model_ratio"] = best / model_patches_per_s
    return out


def run(quick: bool = False, context: Result | None = None, **_: Any) -> Result:
    context = context or {}
    data = data_choice()
    if quick:
        one_photo = ["+data.train.names=[camera]", "data.repeat=64"]  # decoding all 12 takes most of the time
        res = measure(
            "sample", (0, 1), batch=4, patch=16, batches=4, reps=1, backbone="edsr_tiny", overrides=one_photo
        )
    else:
        res = measure(data, model_patches_per_s=context.get("framework_model_patches_per_s_edsr_baseline"))
    res["loader_data"] = "sample" if quick else data
    return res
