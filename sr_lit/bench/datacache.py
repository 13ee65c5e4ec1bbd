"""Benchmark: what the decode cache costs at DIV2K scale: memory per decoded byte, set-up time, one copy per node.

Images: synthetic DIV2K-sized photographs (2040x1356 PNG, smooth random content + noise, compress level 1, made
here in a temp folder; ``write_div2k_like``), in the DIV2K layout with or without official LR files.

- ``cache_rss_per_decoded_byte``: a 2-step ``sr-train`` (edsr_tiny x2, ``data=folder``, LR made on the fly,
  ``data.cache=memory``, the Makefile's glibc malloc thresholds) on 40 DIV2K-sized images vs the same run on 4
  tiny images, each in a fresh process; (peak RSS 40 - peak RSS tiny) / decoded bytes. Peak = the child's own
  ``VmHWM``, read when it exits. Target <= 1.5 (set-up temporaries included).
- ``setup_s_per_100_div2k_*``: seconds to build the memory cache of 8 DIV2K-sized images, x 100/8: with official
  LR files (two PNG decodes per image) and with the LR made by MATLAB bicubic; in this process, default threads.
- ``shared_reader_*``: ``data.cache=shared`` with two processes on this node (a builder, i.e. local rank 0, and a
  reader started at the same time): the private memory (``RssAnon``) the reader adds while it gets the set, per
  decoded byte (target <= 0.1), and the images it decoded (0).
Memory figures do not depend on the load of the shared CPU; the set-up times do (``load_avg_1m_*``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from sr_lit.bench.common import REPO_ROOT, Result, load_avg_1m

DIV2K_HW = (1356, 2040)
MAKEFILE_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def photo_like(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A (h, w, 3) uint8 image with photo-like statistics: a smooth random field plus fine noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 48), max(2, w // 48), channels), dtype=np.uint8)
    img = Image.fromarray(small[..., 0] if channels == 1 else small)
    base = np.asarray(img.resize((w, h), Image.BICUBIC), dtype=np.int16)
    noise = rng.integers(-6, 7, base.shape, dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_div2k_like(
    root: str | os.PathLike,
    n: int,
    size: tuple[int, int] = DIV2K_HW,
    lr_scales: tuple[int, ...] = (),
    distinct: int = 8,
    seed: int = 0,
) -> Path:
    """``root/DIV2K_train_HR/0001.png`` ... (n images of ``size`` (H, W)) and, per scale in ``lr_scales``,
    ``root/DIV2K_train_LR_bicubic/X<s>/0001x<s>.png`` (Pillow bicubic: the LR content does not matter here).
    Only ``distinct`` different images are drawn; the others are copies (decoding cost is the same)."""
    from PIL import Image

    root = Path(root)
    hr_dir = root / "DIV2K_train_HR"
    hr_dir.mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(1, n + 1):
        name = f"{i:04d}"
        if i > distinct:
            src = (i - 1) % distinct + 1
            shutil.copyfile(hr_dir / f"{src:04d}.png", hr_dir / f"{name}.png")
            for s in lr_scales:
                d = root / "DIV2K_train_LR_bicubic" / f"X{s}"
                shutil.copyfile(d / f"{src:04d}x{s}.png", d / f"{name}x{s}.png")
            continue
        img = Image.fromarray(photo_like(h, w, seed + i))
        img.save(hr_dir / f"{name}.png", compress_level=1)
        for s in lr_scales:
            d = root / "DIV2K_train_LR_bicubic" / f"X{s}"
            d.mkdir(parents=True, exist_ok=True)
            img.resize((w // s, h // s), Image.BICUBIC).save(d / f"{name}x{s}.png", compress_level=1)
    return root


# ---------------------------------------------------------------------------------------------------
# peak RSS of a short sr-train run


_TRAIN_CHILD = """
import atexit, json, runpy, sys
from sr_lit.data.memory import status_mb
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(status_mb())))
sys.argv = ["sr-train", *sys.argv[2:]]
runpy.run_module("sr_lit.cli.train", run_name="__main__")
"""


def train_peak_mb(data_root: Path, run_dir: Path, env: dict[str, str], extra: tuple[str, ...] = ()) -> float:
    """VmHWM (MiB) of a 2-step sr-train on the folder ``data_root`` (memory cache), in a fresh process."""
    overrides = [
        "backbone=edsr_tiny", "attention=none", "hpf=none", "scale=2", "trainer=cpu", "trainer.max_steps=2",
        "logger=none", "data=folder", f"data.root={data_root}", "data.cache=memory", "data.num_workers=0",
        "data.val_sets=[]", "+trainer.limit_val_batches=0", "final_eval=false", "data.batch_size=4",
        "data.repeat=2", "module.log_images=0", "callbacks.progress_bar=null", "callbacks.model_summary=null",
        f"hydra.run.dir={run_dir}", *extra,
    ]  # fmt: skip
    status = run_dir.with_suffix(".status.json")
    proc = subprocess.run(
        [sys.executable, "-c", _TRAIN_CHILD, str(status), *overrides],
        cwd=REPO_ROOT,
        env={**os.environ, "WANDB_MODE": "offline", **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sr-train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return float(json.loads(status.read_text())["VmHWM"])


# ---------------------------------------------------------------------------------------------------
# set-up time and the shared cache's reader


def setup_seconds(root: Path, n: int, official_lr: bool) -> tuple[float, float]:
    """(seconds, decoded MiB) to build the memory cache of the first n images of a DIV2K layout."""
    from sr_lit.data.sources import div2k_pairs
    from sr_lit.data.store import build_store

    pairs = div2k_pairs(root, 2, f"1-{n}", use_official_lr=official_lr)
    t0 = time.perf_counter()
    store = build_store(pairs, 2, label="bench", cache="memory")
    return time.perf_counter() - t0, store.nbytes / 2**20


_SHARED_CHILD = """
import json, sys, time
from sr_lit.data.memory import status_mb
from sr_lit.data.store import build_store
from sr_lit.data.slab import NodeRole, decode_count
from sr_lit.data.sources import div2k_pairs
root, n, role, token, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pairs = div2k_pairs(root, 2, f"1-{n}", use_official_lr=True)
before = status_mb()
t0 = time.perf_counter()
store = build_store(pairs, 2, label="bench", cache="shared", node=NodeRole(role == "builder", token))
seconds = time.perf_counter() - t0
for i in range(len(store)):  # touch every page, as training eventually does
    for t in store.get(i):
        int(t.reshape(-1)[::4096].sum())  # one byte per page: no temporaries of the image's size
after = status_mb()
json.dump({"before": before, "after": after, "seconds": seconds, "decoded": decode_count(),
           "nbytes": store.nbytes}, open(out + ".tmp", "w"))
import os
os.replace(out + ".tmp", out)
if role == "builder":  # the builder removes the files when it exits: stay until the reader has its copy
    reader = out.replace("builder.json", "reader.json")
    t = time.monotonic()
    while not os.path.exists(reader) and time.monotonic() - t < 1800:
        time.sleep(0.2)
"""


def shared_pair(root: Path, n: int, work: Path) -> dict[str, dict[str, Any]]:
    """A builder and a reader of the same shared cache, started together; their reports."""
    from sr_lit.data.slab import shared_dir

    token = uuid.uuid4().hex[:8]
    procs = {}
    for role in ("builder", "reader"):
        out = work / f"{role}.json"
        cmd = [sys.executable, "-c", _SHARED_CHILD, str(root), str(n), role, token, str(out)]
        procs[role] = (subprocess.Popen(cmd, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True), out)
        t0 = time.monotonic()
        # the reader starts once the builder has announced itself (what the barrier ensures under DDP)
        while role == "builder" and not list(shared_dir(None).glob(f"sr_lit-slab-*-{token}-*")):
            if procs[role][0].poll() is not None or time.monotonic() - t0 > 600:
                break
            time.sleep(0.1)
    reports = {}
    for role, (proc, out) in procs.items():
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"shared cache {role} failed: {err[-2000:]}")
        reports[role] = json.loads(out.read_text())
    return reports


def measure(
    n_train: int = 40, n_setup: int = 8, n_shared: int = 8, size: tuple[int, int] = DIV2K_HW
) -> Result:
    out: Result = {"datacache_load_avg_1m_start": load_avg_1m()}
    with tempfile.TemporaryDirectory(prefix="sr_bench_cache_") as tmp:
        work = Path(tmp)
        big = write_div2k_like(work / "div2k", max(n_train, n_setup, n_shared), size, lr_scales=(2,))
        train_dir = work / "train_folder"  # data=folder: the HR files only, LR made on the fly
        train_dir.mkdir()
        for i in range(1, n_train + 1):
            os.link(big / "DIV2K_train_HR" / f"{i:04d}.png", train_dir / f"{i:04d}.png")
        tiny = work / "tiny"
        tiny.mkdir()
        from PIL import Image

        for i in range(4):
            Image.fromarray(photo_like(128, 128, 100 + i)).save(tiny / f"t{i}.png")
        t0 = time.perf_counter()
        peak_tiny = train_peak_mb(tiny, work / "run_tiny", MAKEFILE_MALLOC)
        peak_big = train_peak_mb(train_dir, work / "run_big", MAKEFILE_MALLOC)
        out["datacache_train_seconds"] = time.perf_counter() - t0
        decoded = _decoded_mb(train_dir)
        out["cache_peak_rss_mb_tiny"] = peak_tiny
        out[f"cache_peak_rss_mb_div2k{n_train}"] = peak_big
        out[f"cache_decoded_mb_div2k{n_train}"] = decoded
        out["cache_rss_per_decoded_byte"] = (peak_big - peak_tiny) / decoded

        for official in (True, False):
            sec, _ = setup_seconds(big, n_setup, official)
            out[f"setup_s_per_100_div2k_{'official_lr' if official else 'made_lr'}"] = sec / n_setup * 100

        rep = shared_pair(big, n_shared, work)
        reader, builder = rep["reader"], rep["builder"]
        mb = reader["nbytes"] / 2**20
        out["shared_reader_private_per_decoded_byte"] = (
            reader["after"]["RssAnon"] - reader["before"]["RssAnon"]
        ) / mb
        out["shared_reader_decoded_images"] = reader["decoded"]
        out["shared_builder_decoded_images"] = builder["decoded"]
        out["shared_builder_private_per_decoded_byte"] = (
            builder["after"]["RssAnon"] - builder["before"]["RssAnon"]
        ) / mb
        out["shared_reader_shmem_per_decoded_byte"] = (
            reader["after"]["RssShmem"] - reader["before"]["RssShmem"]
        ) / mb
    out["datacache_load_avg_1m_end"] = load_avg_1m()
    return out


def _decoded_mb(folder: Path) -> float:
    """Decoded bytes of a folder at x2 (HR mod-cropped + LR, uint8), from the headers."""
    from sr_lit.data.io import list_images, probe_image

    total = 0
    for f in list_images(folder):
        c, h, w = probe_image(f)
        total += c * (h // 2 * 2) * (w // 2 * 2) + c * (h // 2) * (w // 2)
    return total / 2**20


def run(quick: bool = False, **_: Any) -> Result:
    if quick:
        return measure(n_train=2, n_setup=2, n_shared=2, size=(200, 300))
    return measure()
