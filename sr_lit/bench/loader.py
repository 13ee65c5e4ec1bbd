"""Benchmark 2: patches/s the training DataLoader delivers vs patches/s the model consumes; per-source rates.

The loader is SRDataModule's train_dataloader from the real data config (T91 when ../shared/data holds it,
else the scikit-image sample photos): memory decode cache, random crop, flips/rot90, collate. Rates with 0, 1
and 2 workers are interleaved over repetitions; each measurement drops the first batches (worker start-up and
the prefetch burst it queues) and times the next ones. The model rate is edsr_baseline's plain training step
(benchmark 1's when it ran in the same invocation, else measured here).

Per source (``source_rates``), on 8 synthetic DIV2K-sized images (2040x1356, official LR x2/x4 files): patches/s of
``TrainPatchDataset`` items in one process, i.e. what one DataLoader worker produces (crop, flips/rot90, float
conversion; no inter-process transfer), at 48 px x2 and 96 px x4, sources interleaved over repetitions: the memory
cache, an ``sr-data pack`` LMDB (raw, zero-copy), BasicSR's LMDB of 480-px PNG sub-images, and LitData's optimized
chunks when litdata is importable (it is not a dependency: see README "Data"). Warm page cache: the files were just
written; a cold disk adds its read latency to the LMDB and LitData rates. Start-up: source opened + first item.
Workers per GPU = ceil(assumed GPU patches/s / one worker's rate) for the ASSUMED_GPU_STEPS_PER_S below.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_lit.bench.common import (
    Result,
    build,
    compose_train,
    load_avg_1m,
    median,
    spec_for,
    timed_loop,
    train_step_fn,
)


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
        res.update(source_rates(n_images=1, items=4, reps=1, size=(200, 300), shapes=((8, 2), (8, 4))))
    else:
        res = measure(data, model_patches_per_s=context.get("framework_model_patches_per_s_edsr_baseline"))
        res.update(source_rates())
    res["loader_data"] = "sample" if quick else data
    return res


# ---------------------------------------------------------------------------------------------------
# Per-source patch rates at DIV2K scale (one worker = one process), and workers per rank for a GPU's consumption

# ASSUMPTION (no GPU table yet): training steps/s of one recent data-centre GPU (A100/H200 class, bf16, batch 16),
# from public figures scaled: RCAN's authors report ~70 s per 100 x2 iterations on a Titan Xp (1.4 steps/s); an
# A100/H200 runs these convolutions 5-8x faster in bf16, so ~10 steps/s for RCAN; edsr_baseline has ~10x fewer
# FLOPs per patch than RCAN and is bound by launch overheads there, so ~60 steps/s. Replace with the GPU table's
# figures when they exist.
ASSUMED_GPU_STEPS_PER_S = {"rcan": 10.0, "edsr_baseline": 60.0}
GPU_BATCH = 16
SOURCE_SHAPES = ((48, 2), (96, 4))  # (LR patch, scale): the paper's x2 protocol and a large x4 patch


class _LitdataStore:
    """A LitData StreamingDataset (items {hr, lr2, lr4}: raw HWC arrays) behind the ImageStore interface."""

    mode = "litdata"

    def __init__(self, path: Path, scale: int) -> None:
        from litdata import StreamingDataset

        self.ds, self.scale, self.n_skipped = StreamingDataset(str(path)), scale, 0
        self.entries = list(range(len(self.ds)))

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, i: int):
        import torch

        item = self.ds[i]
        lr = torch.from_numpy(item[f"lr{self.scale}"]).permute(2, 0, 1)
        hr = torch.from_numpy(item["hr"]).permute(2, 0, 1)
        return lr, hr[:, : lr.shape[1] * self.scale, : lr.shape[2] * self.scale]


def _litdata_item(args: tuple[str, str, str]) -> dict:
    from sr_lit.data.io import read_image

    hr, lr2, lr4 = (read_image(p).permute(1, 2, 0).contiguous().numpy() for p in args)
    return {"hr": hr, "lr2": lr2, "lr4": lr4}


def _basicsr_sub_images(root: Path, out: Path, n: int, crop: int = 480) -> None:
    """BasicSR's preparation (extract_subimages.py + create_lmdb.py): crop x crop HR sub-images and their LR
    sub-images, each PNG-encoded into an LMDB with meta_info.txt."""
    import io

    import lmdb
    from PIL import Image

    for tag, folder, s in (("HR", "DIV2K_train_HR", 1), ("X2", "DIV2K_train_LR_bicubic/X2", 2),
                           ("X4", "DIV2K_train_LR_bicubic/X4", 4)):  # fmt: skip
        env = lmdb.open(str(out / f"{tag}.lmdb"), map_size=1 << 32)
        lines = []
        with env.begin(write=True) as txn:
            for i in range(1, n + 1):
                suffix = "" if s == 1 else f"x{s}"
                img = Image.open(root / folder / f"{i:04d}{suffix}.png").convert("RGB")
                c = crop // s
                k = 0
                for y in range(0, img.height - c + 1, c):
                    for x in range(0, img.width - c + 1, c):
                        k += 1
                        buf = io.BytesIO()
                        img.crop((x, y, x + c, y + c)).save(buf, format="PNG", compress_level=1)
                        key = f"{i:04d}_s{k:03d}"
                        txn.put(key.encode(), buf.getvalue())
                        lines.append(f"{key}.png ({c},{c},3) 1\n")
        env.close()
        (out / f"{tag}.lmdb" / "meta_info.txt").write_text("".join(lines))


def source_rates(
    n_images: int = 8,
    items: int = 64,
    reps: int = 3,
    size: tuple[int, int] = (1356, 2040),
    shapes: tuple[tuple[int, int], ...] = SOURCE_SHAPES,
) -> Result:
    """Patches/s of one process (= one DataLoader worker) from each source, interleaved, with start-up times."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what a DataLoader worker runs with (torch's worker loop sets it)
    try:
        return _source_rates(n_images, items, reps, size, shapes)
    finally:
        torch.set_num_threads(threads)


def _source_rates(
    n_images: int, items: int, reps: int, size: tuple[int, int], shapes: tuple[tuple[int, int], ...]
) -> Result:
    import random

    from sr_lit.bench.datacache import write_div2k_like
    from sr_lit.data.datasets import TrainPatchDataset
    from sr_lit.data.packed import open_lmdb, pack
    from sr_lit.data.sources import div2k_pairs
    from sr_lit.data.store import build_store

    out: Result = {"loader_sources_load_avg_1m_start": load_avg_1m()}
    with tempfile.TemporaryDirectory(prefix="sr_bench_sources_") as tmp:
        work = Path(tmp)
        root = write_div2k_like(work / "DIV2K", n_images, size, lr_scales=(2, 4))
        t0 = time.perf_counter()
        pack(root, work / "pack.lmdb", scales=(2, 4), index_range=f"1-{n_images}")
        out["loader_pack_s_per_100_div2k"] = (time.perf_counter() - t0) / n_images * 100
        _basicsr_sub_images(root, work, n_images, crop=min(480, min(size) // 4 * 4))  # BasicSR's 480
        has_litdata = True
        try:
            from litdata import optimize

            t0 = time.perf_counter()
            inputs = [(str(root / "DIV2K_train_HR" / f"{i:04d}.png"),
                       *(str(root / "DIV2K_train_LR_bicubic" / f"X{s}" / f"{i:04d}x{s}.png") for s in (2, 4)))
                      for i in range(1, n_images + 1)]  # fmt: skip
            optimize(fn=_litdata_item, inputs=inputs, output_dir=str(work / "litdata"), chunk_bytes="64MB",
                     num_workers=1, verbose=False, reorder_files=False)  # fmt: skip
            out["loader_litdata_optimize_s_per_100_div2k"] = (time.perf_counter() - t0) / n_images * 100
        except ImportError:
            has_litdata = False
        out["loader_litdata_measured"] = has_litdata

        def opener(name: str, scale: int):
            if name == "memory":
                return lambda: build_store(
                    div2k_pairs(root, scale, f"1-{n_images}"), scale, label="m", cache="memory"
                )
            if name == "lmdb_pack":
                return lambda: open_lmdb(work / "pack.lmdb", scale)
            if name == "lmdb_basicsr_png":
                return lambda: open_lmdb(work / "HR.lmdb", scale, work / f"X{scale}.lmdb")
            return lambda: _LitdataStore(work / "litdata", scale)

        names = ["memory", "lmdb_pack", "lmdb_basicsr_png"] + (["litdata"] if has_litdata else [])
        for patch, scale in shapes:
            datasets = {}
            for name in names:
                t0 = time.perf_counter()
                store = opener(name, scale)()
                ds = TrainPatchDataset(store, scale, patch_size=patch, repeat=1000, seed=0)
                ds[(0, 0)]  # first item: files opened, index read
                out[f"loader_startup_s_{name}_{patch}px_x{scale}"] = time.perf_counter() - t0
                datasets[name] = ds
            rng = random.Random(0)
            rates: dict[str, list[float]] = {n: [] for n in names}
            for rep in range(reps):
                keys = [(rep, rng.randrange(len(datasets["memory"]))) for _ in range(items)]
                for name in names if rep % 2 == 0 else names[::-1]:
                    ds = datasets[name]
                    t0 = time.perf_counter()
                    for k in keys:
                        ds[k]
                    rates[name].append(items / (time.perf_counter() - t0))
            for name in names:
                rate = median(rates[name])
                out[f"loader_patches_per_s_per_worker_{name}_{patch}px_x{scale}"] = rate
                for model, steps in ASSUMED_GPU_STEPS_PER_S.items():
                    need = steps * GPU_BATCH / rate
                    out[f"loader_workers_per_gpu_{name}_{patch}px_x{scale}_{model}"] = float(
                        max(1, -(-need // 1))
                    )
            del datasets
    out["loader_sources_load_avg_1m_end"] = load_avg_1m()
    return out
