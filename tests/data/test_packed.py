"""LMDB training sources: `sr-data pack` packs give the folder's patches for the same seed; BasicSR folders read."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.bench.datacache import photo_like, write_div2k_like
from sr_lit.data.datamodule import SRDataModule
from sr_lit.data.datasets import TrainPatchDataset
from sr_lit.data.imresize import make_lr
from sr_lit.data.packed import open_lmdb, pack
from sr_lit.data.sources import folder_pairs
from sr_lit.data.store import DataConfigError, DataFaultError
from tests.reliability.cli import REPO_ROOT, cli_env


def _folder(d: Path) -> Path:
    d.mkdir(parents=True)
    for i, (h, w) in enumerate([(101, 130), (97, 88), (120, 100)]):
        Image.fromarray(photo_like(h, w, i)).save(d / f"im{i}.png")
    Image.fromarray(photo_like(90, 97, 9, channels=1)).save(d / "gray.png")
    return d


def _same_items(a: TrainPatchDataset, b: TrainPatchDataset) -> bool:
    assert len(a) == len(b)
    return all(
        torch.equal(a[(e, i)]["lr"], b[(e, i)]["lr"]) and torch.equal(a[(e, i)]["hr"], b[(e, i)]["hr"])
        for e in (0, 1, 5)
        for i in range(len(a))
    )


def test_pack_of_a_folder_gives_the_folders_patches(tmp_path: Path) -> None:
    src = _folder(tmp_path / "imgs")
    meta = pack(src, tmp_path / "p.lmdb", scales=(2, 3))
    assert [im["name"] for im in meta["images"]] == ["gray", "im0", "im1", "im2"] and not meta["official_lr"]
    for s in (2, 3):
        ref = TrainPatchDataset(folder_pairs(src), s, patch_size=12, repeat=2, seed=5)
        packed = TrainPatchDataset(
            open_lmdb(tmp_path / "p.lmdb", s, min_lr_size=12), s, patch_size=12, repeat=2, seed=5
        )
        assert _same_items(ref, packed), s
    with pytest.raises(DataConfigError, match="scales \\[2, 3\\], not 4"):
        open_lmdb(tmp_path / "p.lmdb", 4)


def test_pack_of_div2k_uses_the_official_lr_and_trains_through_the_datamodule(tmp_path: Path) -> None:
    root = write_div2k_like(tmp_path / "DIV2K", 3, size=(120, 150), lr_scales=(2,))
    meta = pack(root, tmp_path / "d.lmdb", scales=(2,), index_range="1-3")
    assert meta["official_lr"] and [im["name"] for im in meta["images"]] == ["0001", "0002", "0003"]
    common = {"scale": 2, "patch_size": 16, "batch_size": 2, "repeat": 2, "seed": 3, "val_sets": []}
    dm_folder = SRDataModule(train={"kind": "div2k", "root": str(root), "range": "1-3"}, **common)
    dm_packed = SRDataModule(train={"kind": "lmdb", "root": str(tmp_path / "d.lmdb")}, **common)
    for dm in (dm_folder, dm_packed):
        dm.setup("fit")
    assert _same_items(dm_folder.train_set, dm_packed.train_set)
    # DataLoader workers open their own LMDB environment (2 workers, same batches as in-process loading)
    dm_packed.num_workers = 2
    with_workers = list(dm_packed.train_dataloader())
    dm_packed.num_workers = 0
    for a, b in zip(with_workers, dm_packed.train_dataloader()):
        assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])


def _basicsr_lmdb(folder: Path, images: dict[str, np.ndarray]) -> None:
    """What basicsr/utils/lmdb_util.make_lmdb_from_imgs writes: PNG values, keys = names, meta_info.txt."""
    import lmdb

    env = lmdb.open(str(folder), map_size=1 << 26)
    lines = []
    with env.begin(write=True) as txn:
        for key, a in images.items():
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG", compress_level=1)
            txn.put(key.encode(), buf.getvalue())
            h, w = a.shape[:2]
            lines.append(f"{key}.png ({h},{w},{1 if a.ndim == 2 else a.shape[2]}) 1\n")
    env.close()
    (folder / "meta_info.txt").write_text("".join(lines))


def test_basicsr_lmdb_folders_are_read(tmp_path: Path) -> None:
    hr = {f"0001_s00{i}": photo_like(96, 96, i) for i in range(1, 4)}
    lr = {
        k: make_lr(torch.from_numpy(a).permute(2, 0, 1).contiguous(), 2).permute(1, 2, 0).numpy()
        for k, a in hr.items()
    }
    _basicsr_lmdb(tmp_path / "HR_sub.lmdb", hr)
    _basicsr_lmdb(tmp_path / "LR_X2_sub.lmdb", lr)
    store = open_lmdb(tmp_path / "HR_sub.lmdb", 2, tmp_path / "LR_X2_sub.lmdb")
    assert [e.name for e in store.entries] == list(hr)
    for i, (k, a) in enumerate(hr.items()):
        got_lr, got_hr = store.get(i)
        assert torch.equal(got_hr, torch.from_numpy(a).permute(2, 0, 1))
        assert torch.equal(got_lr, torch.from_numpy(np.ascontiguousarray(lr[k])).permute(2, 0, 1))
    # without the LR folder, the LR is made from the HR (the same MATLAB bicubic)
    alone = open_lmdb(tmp_path / "HR_sub.lmdb", 2)
    assert torch.equal(alone.get(1)[0], store.get(1)[0])
    with pytest.raises(DataFaultError, match="smaller than the training patch"):
        open_lmdb(
            tmp_path / "HR_sub.lmdb",
            2,
            min_lr_size=64,
            size_reason=lambda w, h: "smaller than the training patch",
        )


def _sr_data(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sr_lit.cli.data", *args], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_sr_data_pack_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sr_lit.cli.data import main

    src = _folder(tmp_path / "imgs")
    out = tmp_path / "p.lmdb"
    proc = _sr_data("pack", str(src), "--out", str(out), "--scales", "2")  # the module as a command
    assert proc.returncode == 0, proc.stderr
    assert "packed 4 images (scales 2, generated LR)" in proc.stdout and (out / "data.mdb").is_file()
    with pytest.raises(SystemExit) as again:  # never overwrites
        main(["pack", str(src), "--out", str(out)])
    err = capsys.readouterr().err
    assert again.value.code == 2 and err.count("\n") == 1 and "already exists" in err
    (src / "cut.png").write_bytes((src / "im0.png").read_bytes()[:300])
    with pytest.raises(SystemExit) as bad:
        main(["pack", str(src), "--out", str(tmp_path / "q.lmdb")])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and f"{src / 'cut.png'}: corrupt or truncated" in err
    assert not list(tmp_path.glob("q.lmdb*"))  # nothing half-written left


def test_div2k_config_trains_from_a_pack(tmp_path: Path) -> None:
    """The README's command line: data=div2k with data.train.kind=lmdb and the pack as root."""
    import hydra.utils

    from tests.conftest import compose

    pack(_folder(tmp_path / "imgs"), tmp_path / "p.lmdb", scales=(2,))
    cfg = compose(
        "train",
        ["data=div2k", "data.train.kind=lmdb", f"data.train.root={tmp_path / 'p.lmdb'}", "data.patch_size=16",
         "data.batch_size=2", "data.val_sets=[]", "data.num_workers=0"],
        tmp_path / "run",
    )  # fmt: skip
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    assert dm.train_set.store.mode == "lmdb" and len(dm.train_set.store) == 4
    assert next(iter(dm.train_dataloader()))["hr"].shape == (2, 3, 32, 32)


def test_encoded_values_decode_as_the_folder_reader_does(tmp_path: Path) -> None:
    """BasicSR packs PNG bytes as read (16-bit stays 16-bit): a 16-bit gray value maps to round(v/257) like a
    16-bit file in a folder, not clipped to 255, and EXIF orientation is applied as for files."""
    from sr_lit.data.io import decode_image_bytes, read_image

    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, size=(9, 11), dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(gray16).save(path)
    got = decode_image_bytes(path.read_bytes(), "key g16")
    assert torch.equal(got, read_image(path))
    assert torch.equal(got[0], torch.from_numpy(np.floor(gray16 / 257.0 + 0.5).astype(np.uint8)))
    # a JPEG whose EXIF says "rotate 90": decoded upright (portrait), as sr_lit's folder reader does
    rgb = Image.fromarray(photo_like(20, 40, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", exif=exif)
    (tmp_path / "r.jpg").write_bytes(buf.getvalue())
    upright = decode_image_bytes(buf.getvalue(), "key r")
    assert upright.shape == (3, 40, 20) and torch.equal(upright, read_image(tmp_path / "r.jpg"))
