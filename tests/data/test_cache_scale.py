"""Decode caches at DIV2K scale: one preallocated buffer per process (memory), one file per node (shared).

The memory figures themselves (RSS per decoded byte, set-up time) are measured by `make bench` (datacache); here:
the buffer layout, equality with the per-image paths, the builder/reader protocol, and a 2-rank ddp_cpu run on
DIV2K-sized images where rank 1 decodes nothing, adds almost no private memory and draws the patches a
single-process run draws for the same keys.
"""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.bench.datacache import photo_like, write_div2k_like
from sr_lit.data import slab
from sr_lit.data.datamodule import SRDataModule
from sr_lit.data.datasets import TrainPatchDataset
from sr_lit.data.imresize import make_lr, make_lr_into
from sr_lit.data.slab import NodeRole
from sr_lit.data.sources import div2k_pairs, folder_pairs
from sr_lit.data.store import build_store
from sr_lit.errors import ConfigError, DataError
from tests.data.helpers import digest


def _folder(d: Path) -> Path:
    d.mkdir(parents=True)
    for i, (h, w) in enumerate([(61, 75), (80, 53), (70, 70)]):
        Image.fromarray(photo_like(h, w, i)).save(d / f"c{i}.png")
    Image.fromarray(photo_like(66, 59, 9, channels=1)).save(d / "gray.png")
    return d


def _items(ds: TrainPatchDataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds[(e, i)]["lr"], ds[(e, i)]["hr"]) for e in (0, 3) for i in range(len(ds))]


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))


@pytest.mark.parametrize("scale", [2, 3])
def test_memory_cache_is_one_buffer_and_matches_decoding_on_access(tmp_path: Path, scale: int) -> None:
    pairs = folder_pairs(_folder(tmp_path / "imgs"))
    mem = TrainPatchDataset(pairs, scale, patch_size=10, repeat=2, seed=4, cache="memory")
    none = TrainPatchDataset(pairs, scale, patch_size=10, repeat=2, seed=4, cache="none")
    assert _same(_items(mem), _items(none))
    store = mem.store
    # every image is a view into the one buffer, which holds exactly the decoded pixels
    assert store.slab is not None and store.slab.numel() == store.nbytes
    expect = sum(e.hr_channels * (h * scale) * (w * scale) + e.hr_channels * h * w for e in store.entries
                 for h, w in [e.lr_hw])  # fmt: skip
    assert store.nbytes == expect
    for i in range(len(store)):
        lr, hr = store.get(i)
        assert lr.untyped_storage().data_ptr() == hr.untyped_storage().data_ptr() == store.slab.data_ptr()


def test_too_small_images_take_no_room(tmp_path: Path) -> None:
    d = _folder(tmp_path / "imgs")
    Image.fromarray(photo_like(20, 20, 5)).save(d / "small.png")
    with pytest.warns(UserWarning, match="small.png"):
        store = build_store(folder_pairs(d), 2, label="t", min_lr_size=16, too_small="skip")
    assert [e.name for e in store.entries] == ["c0", "c1", "c2", "gray"] and store.n_skipped == 1
    assert store.slab.numel() == store.nbytes


def test_make_lr_into_equals_make_lr() -> None:
    g = torch.Generator().manual_seed(0)
    for i, (c, h, w) in enumerate([(3, 131, 301), (1, 97, 64)]):
        hr = torch.randint(0, 256, (c, h, w), dtype=torch.uint8, generator=g)
        for s in (2, 3, 4):
            for border in ("symmetric", "replicate"):
                ref = make_lr(hr, s, border)
                out = torch.empty_like(ref)
                make_lr_into(hr, out, s, border, strip=57 + i)  # strips that do not divide the image
                assert torch.equal(out, ref), (c, h, w, s, border)


def test_shared_cache_builder_and_reader(tmp_path: Path) -> None:
    """The builder decodes into one file; a reader of the same run maps it and decodes nothing; a worker started by
    spawn gets the file's name, not the pixels."""
    root = write_div2k_like(tmp_path / "DIV2K", 3, size=(120, 150), lr_scales=(2,))
    pairs = div2k_pairs(root, 2, "1-3")
    token = uuid.uuid4().hex[:8]
    kw = {"cache": "shared", "cache_dir": tmp_path / "shm", "patch_size": 12, "seed": 2}
    built = TrainPatchDataset(pairs, 2, node=NodeRole(True, token), **kw)
    n0 = slab.decode_count()
    read = TrainPatchDataset(pairs, 2, node=NodeRole(False, token), **kw)
    assert slab.decode_count() == n0 and read.store.decoded == 0 and built.store.decoded == 3
    assert (
        built.store.slab_path == read.store.slab_path
        and Path(read.store.slab_path).parent == tmp_path / "shm"
    )
    ref = TrainPatchDataset(pairs, 2, cache="memory", patch_size=12, seed=2)
    assert _same(_items(read), _items(ref)) and _same(_items(built), _items(ref))
    blob = pickle.dumps(read)
    assert len(blob) < read.store.nbytes // 4  # no pixels inside
    assert _same(_items(pickle.loads(blob)), _items(ref))


def test_disk_cache_is_decoded_by_the_builder_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data.cache=disk with several ranks on a node: local rank 0 decodes into the cache while the others wait,
    then they find every file there (a reader started during the build decodes nothing)."""
    import threading
    import time

    from sr_lit.data import store

    root = write_div2k_like(tmp_path / "DIV2K", 3, size=(60, 70), lr_scales=(2,))
    pairs = div2k_pairs(root, 2, "1-3")
    decoded: list[str] = []
    real = store._load_pair

    def slow_load(pair, *a, **k):  # type: ignore[no-untyped-def]
        decoded.append(pair.name)
        time.sleep(0.3)
        return real(pair, *a, **k)

    monkeypatch.setattr(store, "_load_pair", slow_load)
    token, kw = (
        uuid.uuid4().hex[:8],
        {"label": "t", "cache": "disk", "cache_dir": tmp_path / "npy", "threads": 1},
    )
    stores: dict[str, object] = {}
    builder = threading.Thread(
        target=lambda: stores.update(b=build_store(pairs, 2, node=NodeRole(True, token, lambda: None), **kw))
    )
    builder.start()
    time.sleep(0.1)  # the reader starts while the builder is decoding
    stores["r"] = build_store(pairs, 2, node=NodeRole(False, token, None, wait_s=60), **kw)
    builder.join()
    assert sorted(decoded) == sorted(p.name for p in pairs)  # each image decoded once, by the builder
    assert len(stores["r"]) == len(stores["b"]) == 3  # type: ignore[arg-type]


def test_reader_fails_at_once_when_the_builder_is_gone(tmp_path: Path) -> None:
    name = "sr_lit-test-x"
    (tmp_path / f"{name}.building").write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7})
    )  # no such pid
    with pytest.raises(DataError, match="ended"):
        slab.once_per_node(tmp_path, name, NodeRole(False, "t", wait_s=30), lambda: (None, {}), lambda m: m)

    # and a builder's exception reaches the readers as a DataError naming it
    def broken() -> tuple:
        raise ConfigError("data.cache=shared: no room")

    with pytest.raises(ConfigError):
        slab.once_per_node(tmp_path, "sr_lit-test-y", NodeRole(True, "t"), broken, lambda m: m)
    with pytest.raises(DataError, match="no room"):
        slab.once_per_node(tmp_path, "sr_lit-test-y", NodeRole(False, "t", wait_s=5), broken, lambda m: m)


def test_shared_cache_refuses_a_folder_without_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = folder_pairs(_folder(tmp_path / "imgs"))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 1000))  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"data.cache=shared needs .* GiB in .*free"):
        build_store(pairs, 2, label="t", cache="shared", cache_dir=tmp_path / "shm")


def test_auto_cache_is_shared_only_with_several_ranks_per_node(tmp_path: Path) -> None:
    class FakeTrainer:
        def __init__(self, devices: int, world: int) -> None:
            self.num_devices, self.world_size = devices, world

    dm = SRDataModule(cache="auto")
    assert dm.resolved_cache() == "memory"  # no trainer
    for devices, world, expect in [(1, 1, "memory"), (2, 2, "shared"), (1, 4, "memory"), (8, 16, "shared")]:
        dm.trainer = FakeTrainer(devices, world)  # type: ignore[assignment]
        assert dm.resolved_cache() == expect, (devices, world)
    from tests.conftest import compose

    cfg = compose("train", ["data=div2k"], tmp_path / "run")
    assert cfg.data.cache == "auto"  # the DIV2K default: one copy per node under multi-device trainers


def test_ddp_cpu_ranks_share_one_decoded_copy(tmp_path: Path) -> None:
    """trainer=ddp_cpu (2 spawned ranks), data=div2k with its default cache (auto -> shared), 4 DIV2K-sized images:
    rank 1 decodes nothing and adds <= 10 % of the decoded bytes as private memory; both ranks' first batches are
    the patches a single-process dataset gives for the keys each rank drew."""
    from tests.reliability.cli import NO_VAL, run_sr_train

    root = write_div2k_like(tmp_path / "DIV2K", 4, lr_scales=(2,), distinct=4)
    rec = tmp_path / "rec"
    proc = run_sr_train(
        "trainer=ddp_cpu", "trainer.max_steps=2", *NO_VAL, "data=div2k", f"paths.data_dir={tmp_path}",
        "data.train.range=1-4", "data.val_sets=[]", "data.num_workers=0", "data.patch_size=16",
        "data.batch_size=2", "data.repeat=2", "seed=7", "callbacks.ema=null",
        "+callbacks.rec._target_=tests.data.helpers.RecordRankData", f"+callbacks.rec.folder={rec}",
        run_dir=tmp_path / "run", timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((rec / f"rank{r}.json").read_text()) for r in (0, 1)]
    decoded_mb = ranks[0]["report"]["decoded_mb"]
    assert decoded_mb == pytest.approx(4 * (2040 * 1356 * 3 * 1.25) / 2**20)
    assert [r["report"]["cache"] for r in ranks] == ["shared", "shared"]
    assert ranks[0]["slab_path"] == ranks[1]["slab_path"]
    assert ranks[0]["report"]["decoded_images"] == 4 and ranks[1]["report"]["decoded_images"] == 0
    assert ranks[1]["decode_count"] == 0
    assert ranks[1]["report"]["private_mb_added"] <= 0.1 * decoded_mb, ranks[1]["report"]
    assert not Path(ranks[0]["slab_path"]).exists()  # removed when the run ended
    single = TrainPatchDataset(
        div2k_pairs(root, 2, "1-4"), 2, patch_size=16, repeat=2, seed=7, cache="memory"
    )
    for r in ranks:
        keys = [tuple(k) for k in r["keys"]]
        for b, (lr_digest, hr_digest) in enumerate(r["batches"]):
            items = [single[k] for k in keys[2 * b : 2 * b + 2]]
            assert digest(torch.stack([i["lr"] for i in items])) == lr_digest, (r["rank"], b)
            assert digest(torch.stack([i["hr"] for i in items])) == hr_digest, (r["rank"], b)
    assert set(map(tuple, ranks[0]["keys"])).isdisjoint(map(tuple, ranks[1]["keys"]))


def test_setup_report_of_the_datamodule(tmp_path: Path) -> None:
    d = _folder(tmp_path / "imgs")
    dm = SRDataModule(train={"kind": "folder", "root": str(d)}, patch_size=8, batch_size=2, val_sets=[])
    dm.setup("fit")
    rep = dm.setup_report
    assert rep["cache"] == "memory" and rep["images"] == 4 and rep["decoded_images"] == 4
    assert rep["decoded_mb"] == pytest.approx(dm.train_set.store.nbytes / 2**20)
    assert np.isfinite(rep["seconds"]) and np.isfinite(rep["private_mb_added"])


@pytest.mark.data
def test_memory_cache_makes_the_official_lr_files() -> None:
    """The LR the memory cache makes (make_lr_into, in strips, per channel) is bit-exact with EDSR's files."""
    from sr_lit.data.sources import benchmark_pairs
    from tests._shared import require_shared_data

    base = require_shared_data("Set5").parent
    for s in (2, 3, 4):
        made = build_store(benchmark_pairs(base, "Set5", s, use_official_lr=False), s, label="made")
        official = build_store(benchmark_pairs(base, "Set5", s), s, label="official")
        for i in range(len(made)):
            assert torch.equal(made.get(i)[0], official.get(i)[0]), (s, made.entries[i].name)
