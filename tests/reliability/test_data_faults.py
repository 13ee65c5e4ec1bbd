"""Bad training files end to end through `sr-train data=folder` (the dataset-level cases are in tests/data): the
run stops at set-up naming each file and its reason, before any training step; `data.skip_bad=true` trains on
and reports the count. The set-up check is cached across runs by the disk cache (path + mtime + size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.checks import bad_image_folder, truncate, write_png
from tests.reliability.cli import NO_VAL, error_lines, run_sr_train


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    return bad_image_folder(tmp_path / "images")


def folder_args(root: Path, run: Path) -> list[str]:
    return [
        "data=folder",
        f"data.root={root}",
        "data.num_workers=0",
        "data.val_sets=[]",
        "data.patch_size=16",
        "data.batch_size=4",
        "data.repeat=2",
        *NO_VAL,
        "trainer.max_steps=2",
        "+callbacks.probe._target_=tests.reliability.helpers.StepProbe",
        f"+callbacks.probe.folder={run / 'probe'}",
    ]


def folder_run(root: Path, run: Path, *extra: str):
    return run_sr_train(*folder_args(root, run), *extra, run_dir=run, timeout=300)


def test_bad_files_stop_the_run_at_setup(bad_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = folder_run(bad_folder, run)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "2 bad image file(s) out of 5" in lines[0], proc.stderr[-3000:]
    assert f"{bad_folder / 'cut.png'}: corrupt or truncated image" in proc.stderr
    assert f"{bad_folder / 'tiny.png'}: image is smaller than the training patch" in proc.stderr
    assert "data.skip_bad=true" in proc.stderr  # the way out is named
    # stopped before training: no step, no checkpoint, no metrics
    assert not (run / "probe" / "step.txt").exists()
    assert not (run / "checkpoints").exists() and not (run / "metrics.json").exists()


def test_skip_bad_warns_and_finishes_with_a_count(bad_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = folder_run(bad_folder, run, "data.skip_bad=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"skipping {bad_folder / 'cut.png'}" in proc.stderr
    assert "skipped 2 of 5 images (skip_bad=true)" in proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped_images"] == 2 and metrics["global_step"] == 2


def test_disk_cache_skips_the_check_of_unchanged_files_only(tmp_path: Path, monkeypatch) -> None:
    """A second run decodes nothing that is unchanged; a file corrupted in between is caught again."""
    import sr_lit.data.store as ds
    from sr_lit.data.sources import folder_pairs

    root, cache = tmp_path / "images", tmp_path / "cache"
    for i in range(3):
        write_png(root / f"im{i}.png", 40, 40, seed=i)
    pairs = folder_pairs(root)
    decoded: list[str] = []
    real_read = ds.read_image
    monkeypatch.setattr(ds, "read_image", lambda p: decoded.append(Path(p).name) or real_read(p))

    ds.build_store(pairs, 2, label="t", cache="disk", cache_dir=cache)
    assert sorted(decoded) == ["im0.png", "im1.png", "im2.png"]
    decoded.clear()
    ds.build_store(pairs, 2, label="t", cache="disk", cache_dir=cache)
    assert decoded == []  # the second run trusts the cache: same path, mtime and size

    truncate(root / "im1.png")  # size and mtime change: the key changes, the file is checked again
    with pytest.raises(ds.DataFaultError, match="im1.png: corrupt or truncated"):
        ds.build_store(pairs, 2, label="t", cache="disk", cache_dir=cache)
    assert decoded == ["im1.png"]


def test_hr_sizes_not_divisible_by_the_scale_are_mod_cropped(tmp_path: Path) -> None:
    """`data.patch_size` is the LR side (HR = patch_size x scale), so a patch is always divisible; what can be
    indivisible is an image: 67x52 at x3 is cropped to 66x51 (LR 22x17) instead of failing."""
    from sr_lit.data.datasets import TrainPatchDataset
    from sr_lit.data.sources import folder_pairs

    write_png(tmp_path / "odd.png", 52, 67)
    ds = TrainPatchDataset(folder_pairs(tmp_path), scale=3, patch_size=7, repeat=2)
    lr, hr = ds.store.get(0)
    assert tuple(lr.shape[-2:]) == (17, 22) and tuple(hr.shape[-2:]) == (51, 66)
    item = ds[(0, 1)]
    assert tuple(item["lr"].shape) == (3, 7, 7) and tuple(item["hr"].shape) == (3, 21, 21)
