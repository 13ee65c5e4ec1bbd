"""Sources: benchmark sets on the real shared data, DIV2K layout and index ranges, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.data.datasets import build_eval_datasets
from sr_lit.data.sources import benchmark_pairs, div2k_pairs, folder_pairs, pairs_from_spec, parse_range
from tests._shared import require_shared_data, shared_data_dir


@pytest.mark.data
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_benchmark_sets_on_shared_data(scale: int) -> None:
    require_shared_data("Set5")
    require_shared_data("Set14")
    root = shared_data_dir()
    for set_name, n in (("Set5", 5), ("Set14", 14)):
        pairs = benchmark_pairs(root, set_name, scale)
        assert len(pairs) == n
        assert all(p.lr_path is not None and p.lr_path.is_file() for p in pairs)
        assert all(p.lr_path.name == f"{p.name}x{scale}.png" for p in pairs)
    sets = build_eval_datasets(["Set5", "Set14"], scale, root)
    assert list(sets) == ["Set5", "Set14"]
    for ds in sets.values():
        for i in range(len(ds)):
            item = ds[i]
            h, w = item["lr"].shape[-2:]
            assert item["lr"].shape[0] == 3
            assert item["hr"].shape[-2:] == (h * scale, w * scale)  # HR cropped to LR * s
    bridge = sets["Set14"][sets["Set14"].names.index("bridge")]
    assert bridge["hr"].shape == (1, 512 // scale * scale, 512 // scale * scale)  # gray values kept
    head = sets["Set5"][sets["Set5"].names.index("head")]
    assert head["hr"].shape[-1] == 280 // scale * scale  # 279 at x3


def _png(path: Path, h: int, w: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def test_div2k_layout_and_ranges(tmp_path: Path) -> None:
    for i in (1, 2, 3, 801, 802):
        split = "train" if i <= 800 else "valid"
        _png(tmp_path / f"DIV2K_{split}_HR" / f"{i:04d}.png", 8, 8)
    for i in (1, 2):  # 0003 lacks its official LR: reported at set-up
        _png(tmp_path / "DIV2K_train_LR_bicubic" / "X2" / f"{i:04d}x2.png", 4, 4)
    pairs = div2k_pairs(tmp_path, 2, "1-3")
    assert [p.name for p in pairs] == ["0001", "0002", "0003"]
    assert pairs[0].lr_path == tmp_path / "DIV2K_train_LR_bicubic" / "X2" / "0001x2.png"
    assert pairs[2].lr_path == tmp_path / "DIV2K_train_LR_bicubic" / "X2" / "0003x2.png"  # expected path
    valid = div2k_pairs(tmp_path, 2, "801-802")
    assert valid[0].hr_path == tmp_path / "DIV2K_valid_HR" / "0801.png" and valid[0].lr_path is None
    assert div2k_pairs(tmp_path, 2, "1-2", use_official_lr=False)[0].lr_path is None
    with pytest.raises(FileNotFoundError, match="DIV2K_train_HR"):
        div2k_pairs(tmp_path / "nope", 2, "1-2")


def test_parse_range() -> None:
    assert parse_range("1-3") == [1, 2, 3]
    assert parse_range("801-803, 810") == [801, 802, 803, 810]
    assert parse_range(5) == [5]
    assert parse_range(["1-2", 7]) == [1, 2, 7]
    for bad in ("3-1", "a-b", "1-"):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_folder_source_several_roots(tmp_path: Path) -> None:
    _png(tmp_path / "A" / "HR" / "x.png", 4, 4)
    _png(tmp_path / "B" / "y.png", 4, 4)
    _png(tmp_path / "B" / "z.jpg", 4, 4)
    pairs = folder_pairs([tmp_path / "A" / "HR", tmp_path / "B"])
    assert [p.name for p in pairs] == ["x", "y", "z"] and all(p.lr_path is None for p in pairs)
    name, _ = pairs_from_spec(
        {"kind": "folder", "root": [str(tmp_path / "A" / "HR"), str(tmp_path / "B")]}, None, 2
    )
    assert name == "A+B"
    with pytest.raises(ValueError, match="unknown data source kind"):
        pairs_from_spec({"kind": "ftp"}, None, 2)
    with pytest.raises(ValueError, match="needs root"):
        pairs_from_spec({"kind": "folder"}, None, 2)


@pytest.mark.data
def test_official_lr_matches_generated_on_shared_data() -> None:
    """Our generated LR (make_lr, symmetric) equals the official Set5 x4 files, so generated-LR sets are
    comparable with official-LR ones."""
    require_shared_data("Set5")
    official = build_eval_datasets(["Set5"], 4, shared_data_dir())["Set5"]
    generated = build_eval_datasets(["Set5"], 4, shared_data_dir(), use_official_lr=False)["Set5"]
    for i in range(len(official)):
        assert torch.equal(official[i]["lr"], generated[i]["lr"])
