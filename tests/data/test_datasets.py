"""Set-up checks (every fault reported at once), patch geometry, augmentation, cache modes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.data.datasets import EvalDataset, TrainPatchDataset, build_eval_datasets
from sr_lit.data.imresize import make_lr
from sr_lit.data.io import read_image
from sr_lit.data.sources import ImagePair, folder_pairs, sample_pairs
from sr_lit.data.store import BadImageWarning, DataFaultError
from sr_lit.data.transforms import apply_dihedral

RNG = np.random.default_rng(1)


def _texture(h: int, w: int, c: int = 3) -> np.ndarray:
    """Smooth-ish but unique texture (noise + gradients): every patch position is distinguishable."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 96 + 60 * np.sin(yy / 7.0) * np.cos(xx / 5.0) + 0.2 * xx + 0.15 * yy
    img = base[..., None] + RNG.normal(0, 18, (h, w, c))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 0] if c == 1 else img


def _save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def _benchmark(root: Path, set_name: str, sizes: dict[str, tuple[int, int]], scale: int = 2) -> Path:
    """EDSR layout with LR made by make_lr (same as the official files)."""
    for name, (h, w) in sizes.items():
        hr = _save(root / set_name / "HR" / f"{name}.png", _texture(h, w))
        lr = make_lr(read_image(hr), scale).permute(1, 2, 0).numpy()
        _save(root / set_name / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png", lr)
    return root


# --------------------------------------------------------------------------------- faults at set-up


def _bad_training_folder(d: Path) -> dict[str, str]:
    """A folder with good images and one of each fault; returns {file name: reason fragment}."""
    _save(d / "good1.png", _texture(40, 44))
    _save(d / "good2.png", _texture(36, 50, 1))
    full = _save(d / "cut.png", _texture(40, 40))
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("hello, not a png")
    _save(d / "small.png", _texture(30, 60))  # LR 15 < patch 16 at x2
    return {
        "cut.png": "truncated",
        "empty.png": "empty file",
        "text.png": "not a recognised image",
        "small.png": "smaller than the training patch",
    }


def test_all_faults_reported_together(tmp_path: Path) -> None:
    expected = _bad_training_folder(tmp_path)
    with pytest.raises(DataFaultError) as ei:
        TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=16)
    msg = str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert "4 bad image file(s) out of 6" in msg
    for name, reason in expected.items():
        line = next(ln for ln in msg.splitlines() if f"{tmp_path / name}:" in ln)
        assert reason in line, line
    assert "good1" not in msg and "good2" not in msg


def test_skip_bad_warns_per_file_and_counts(tmp_path: Path) -> None:
    expected = _bad_training_folder(tmp_path)
    with pytest.warns(BadImageWarning) as rec:
        ds = TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=16, skip_bad=True, repeat=3)
    messages = [str(w.message) for w in rec]
    for name in expected:
        assert any(str(tmp_path / name) in m for m in messages), name
    assert any("skipped 4 of 6" in m for m in messages)
    assert ds.n_images == 2 and len(ds) == 6 and ds.store.n_skipped == 4


def test_too_small_skip_is_not_a_fault(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _texture(40, 40))
    _save(tmp_path / "b.png", _texture(20, 80))
    with pytest.warns(
        BadImageWarning, match=r"skipped 1 of 2 images smaller than the training patch.*b\.png"
    ):
        ds = TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=16, too_small="skip")
    assert ds.n_images == 1


def test_missing_and_wrong_size_lr_partner(tmp_path: Path) -> None:
    _benchmark(tmp_path, "SetX", {"a": (40, 40), "b": (41, 39), "c": (40, 40)})
    lr_dir = tmp_path / "SetX" / "LR_bicubic" / "X2"
    (lr_dir / "ax2.png").unlink()
    _save(lr_dir / "cx2.png", _texture(21, 20))  # should be 20x20
    with pytest.raises(DataFaultError) as ei:
        build_eval_datasets(["SetX"], 2, tmp_path)
    msg = str(ei.value)
    assert f"{tmp_path / 'SetX' / 'HR' / 'a.png'}: LR partner missing: expected {lr_dir / 'ax2.png'}" in msg
    assert f"{lr_dir / 'cx2.png'}: LR size 20x21 does not match HR 40x40 // 2 = 20x20" in msg
    assert "b.png" not in msg  # odd HR size with floor(HR/2) LR is fine


def test_empty_and_missing_set_name_the_folder(tmp_path: Path) -> None:
    (tmp_path / "Empty" / "HR").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "Empty" / "HR")):
        build_eval_datasets(["Empty"], 2, tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "Nope" / "HR")):
        build_eval_datasets(["Nope"], 2, tmp_path)
    with pytest.raises(FileNotFoundError, match="no images"):
        folder_pairs(tmp_path / "Empty" / "HR")


# --------------------------------------------------------------------------------- geometry


def _find(big: torch.Tensor, patch: torch.Tensor) -> list[tuple[int, int]]:
    ph, pw = patch.shape[-2:]
    win = big.unfold(-2, ph, 1).unfold(-2, pw, 1)  # (C, nh, nw, ph, pw)
    hit = (win == patch[:, None, None]).flatten(-2).all(-1).all(0)
    return [tuple(ix) for ix in hit.nonzero().tolist()]


@pytest.mark.parametrize("scale", [2, 3])
def test_patch_pairs_are_aligned_under_augmentation(tmp_path: Path, scale: int) -> None:
    p = _save(tmp_path / "img.png", _texture(61, 77))  # sizes not divisible by the scale
    ds = TrainPatchDataset([ImagePair("img", p)], scale=scale, patch_size=8, repeat=10, cache="memory")
    lr_full, hr_full = ds.store.get(0)
    assert torch.equal(lr_full, make_lr(read_image(p), scale))
    assert hr_full.shape[-2:] == (lr_full.shape[-2] * scale, lr_full.shape[-1] * scale)
    seen = set()
    for i in range(len(ds)):
        item = ds[(0, i)]
        lr_p = (item["lr"] * 255).round().to(torch.uint8)
        hr_p = (item["hr"] * 255).round().to(torch.uint8)
        assert lr_p.shape == (3, 8, 8) and hr_p.shape == (3, 8 * scale, 8 * scale)
        matches = []
        for h in (False, True):
            for v in (False, True):
                for r in (False, True):
                    # undo: rotate back, then the flips (each is its own inverse)
                    def undo(x: torch.Tensor, h=h, v=v, r=r) -> torch.Tensor:
                        return apply_dihedral(x.rot90(-1, (-2, -1)) if r else x, h, v, False)

                    lr_u, hr_u = undo(lr_p), undo(hr_p)
                    for y, x in _find(lr_full, lr_u):
                        hr_ref = hr_full[:, y * scale : (y + 8) * scale, x * scale : (x + 8) * scale]
                        if torch.equal(hr_ref, hr_u):
                            matches.append((y, x, h, v, r))
        assert matches, f"item {i}: HR patch is not the area of the LR patch"
        seen.add(matches[0][2:])
    assert len(seen) >= 4  # augmentations do happen


def test_len_repeat_and_gray_replicated(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _texture(40, 40, 1))
    _save(tmp_path / "b.png", _texture(40, 40))
    ds = TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=10, repeat=7)
    assert len(ds) == 14
    item = ds[0]  # a.png: gray
    assert item["lr"].shape == (3, 10, 10) and item["hr"].shape == (3, 20, 20)
    assert item["lr"].dtype == torch.float32 and item["lr"].min() >= 0 and item["lr"].max() <= 1
    assert torch.equal(item["hr"][0], item["hr"][2])


def test_keyed_items_reproducible_and_vary_by_epoch(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _texture(60, 60))
    a = TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=8, seed=3)
    b = TrainPatchDataset(folder_pairs(tmp_path), scale=2, patch_size=8, seed=3)
    assert torch.equal(a[(5, 0)]["hr"], b[(5, 0)]["hr"])
    assert not torch.equal(a[(5, 0)]["hr"], a[(6, 0)]["hr"])


@pytest.mark.parametrize("cache", ["disk", "none"])
def test_cache_modes_give_identical_items(tmp_path: Path, cache: str) -> None:
    d = tmp_path / "imgs"
    _save(d / "a.png", _texture(50, 45))
    _save(d / "b.png", _texture(45, 50, 1))
    ref = TrainPatchDataset(folder_pairs(d), scale=2, patch_size=12, repeat=2, cache="memory")
    kw = {"cache_dir": tmp_path / "cache"}
    other = TrainPatchDataset(folder_pairs(d), scale=2, patch_size=12, repeat=2, cache=cache, **kw)
    again = TrainPatchDataset(folder_pairs(d), scale=2, patch_size=12, repeat=2, cache=cache, **kw)
    for i in range(len(ref)):
        for ds in (other, again):
            assert torch.equal(ref[(1, i)]["lr"], ds[(1, i)]["lr"])
            assert torch.equal(ref[(1, i)]["hr"], ds[(1, i)]["hr"])
    if cache == "disk":
        files = list((tmp_path / "cache").glob("*.npy"))
        assert len(files) == 4
        umask = os.umask(0)  # readable as open() would make them, not mkstemp's 0600
        os.umask(umask)
        assert {f.stat().st_mode & 0o777 for f in files} == {0o666 & ~umask}


def test_eval_dataset_items(tmp_path: Path) -> None:
    _save(tmp_path / "F" / "rgb.png", _texture(31, 25))
    _save(tmp_path / "F" / "gray.png", _texture(30, 26, 1))
    sets = build_eval_datasets(None, 3, None, kind="folder", root=tmp_path / "F")
    ds = sets["F"]
    assert isinstance(ds, EvalDataset) and ds.names == ["gray", "rgb"]
    g, c = ds[0], ds[1]
    assert g["lr"].shape == (3, 10, 8) and g["hr"].shape == (1, 30, 24) and g["name"] == "gray"
    assert c["lr"].shape == (3, 10, 8) and c["hr"].shape == (3, 30, 24)


def test_sample_source_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*a, **k):
        raise AssertionError("the sample source must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    train, val = sample_pairs("train"), sample_pairs("val")
    assert len(train) == 12 and [p.name for p in val] == ["chelsea", "coffee"]
    assert not {p.name for p in train} & {p.name for p in val}
    ds = EvalDataset(train + val, scale=4, label="sample")
    assert len(ds) == 14
    shapes = {n: tuple(ds[i]["hr"].shape) for i, n in enumerate(ds.names)}
    assert shapes["astronaut"] == (3, 512, 512) and shapes["camera"] == (1, 512, 512)
