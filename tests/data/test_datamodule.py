"""SRDataModule: batches with 0 and 2 workers, sharding under a (fake) multi-rank trainer, fallbacks,
and the real configs/data/*.yaml instantiated through Hydra."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, SequentialSampler

from sr_lit.data.datamodule import SRDataModule
from sr_lit.data.samplers import EpochKeyedSampler, UnrepeatedDistributedSampler
from tests._shared import require_shared_data, shared_data_dir


def _folder(d: Path, n: int, size: tuple[int, int] = (40, 48)) -> Path:
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return d


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    _folder(tmp_path / "train", 3)
    _folder(tmp_path / "SetA" / "HR", 5, (24, 20))
    _folder(tmp_path / "SetB" / "HR", 2, (20, 24))
    return tmp_path


def _dm(root: Path, **kw) -> SRDataModule:
    args = dict(
        scale=2, data_dir=root, train={"kind": "folder", "root": str(root / "train")}, patch_size=8,
        batch_size=4, repeat=4, val_sets=["SetA", "SetB"], test_sets=["SetB"], seed=5,
    )  # fmt: skip
    args.update(kw)
    return SRDataModule(**args)


def test_batches_with_0_and_2_workers_are_identical(data_root: Path) -> None:
    batches = []
    for workers in (0, 2):
        dm = _dm(data_root, num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert isinstance(loader.sampler, EpochKeyedSampler)
        got = list(loader)
        assert len(got) == 3  # 3 images * repeat 4 / batch 4
        for b in got:
            assert b["lr"].shape == (4, 3, 8, 8) and b["hr"].shape == (4, 3, 16, 16)
            assert b["lr"].dtype == torch.float32
        batches.append(got)
    for b0, b2 in zip(*batches):
        assert torch.equal(b0["lr"], b2["lr"]) and torch.equal(b0["hr"], b2["hr"])


def test_val_and_test_loaders(data_root: Path) -> None:
    dm = _dm(data_root)
    dm.setup("fit")
    assert dm.val_set_names == ["SetA", "SetB"]
    loaders = dm.val_dataloader()
    assert isinstance(loaders, list) and len(loaders) == 2
    items = list(loaders[0])
    assert len(items) == 5
    assert items[0]["lr"].shape == (1, 3, 12, 10) and items[0]["hr"].shape == (1, 3, 24, 20)
    assert items[0]["name"] == ["im0"]
    dm.setup("test")
    assert dm.test_set_names == ["SetB"] and len(dm.test_dataloader()) == 1


def test_sharding_follows_the_trainer(data_root: Path) -> None:
    seen: list[int] = []
    train_keys = []
    for rank in range(2):
        dm = _dm(data_root)
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, overfit_batches=0)
        dm.setup("fit")
        val = dm.val_dataloader()[0]
        assert isinstance(val.sampler, UnrepeatedDistributedSampler)
        seen += list(val.sampler)
        train = dm.train_dataloader()
        assert train.sampler.num_replicas == 2 and train.sampler.rank == rank
        train_keys.append({k for k in train.sampler})
    assert sorted(seen) == [0, 1, 2, 3, 4]  # each validation image once over the 2 ranks
    assert not train_keys[0] & train_keys[1]


def test_int_indices_repeat_patches_for_overfit_batches(data_root: Path) -> None:
    # Trainer(overfit_batches=n) replaces our sampler with SequentialSampler(dataset): int indices must
    # then give the same patches every epoch, or the debug run could never overfit.
    dm = _dm(data_root)
    dm.setup("fit")
    loader = DataLoader(dm.train_set, batch_size=4, sampler=SequentialSampler(dm.train_set))
    first, again = next(iter(loader)), next(iter(loader))
    assert torch.equal(first["hr"], again["hr"]) and torch.equal(first["lr"], again["lr"])


def test_missing_val_sets_fall_back_or_fail(data_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        dm = _dm(data_root, val_sets=["Set5x", "SetB"])
        dm.setup("validate")
    assert dm.val_set_names == ["SetB"] and "Set5x" in caplog.text
    with pytest.raises(FileNotFoundError, match="Set5x"):
        _dm(data_root, val_sets=["Set5x"], val_fallback="error").setup("validate")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dm = _dm(data_root, val_sets=["Set5x"], scale=4)
        dm.setup("validate")
    assert dm.val_set_names == ["sample_val"] and "held-out" in caplog.text
    assert dm.val_datasets["sample_val"].names == ["chelsea", "coffee"]


def test_too_few_patches_for_a_batch(data_root: Path) -> None:
    with pytest.raises(ValueError, match="raise data.repeat"):
        _dm(data_root, repeat=1, batch_size=8).setup("fit")


@pytest.mark.parametrize("name", ["sample", "div2k", "folder", "benchmark", "t91", "bsd200", "t91_bsd200"])
def test_real_data_configs_instantiate(name: str, tmp_path: Path) -> None:
    from tests.conftest import compose

    overrides = [f"data={name}", f"paths.data_dir={shared_data_dir()}"]
    if name == "folder":
        overrides.append(f"data.root={tmp_path}")
    cfg = compose("train", overrides, tmp_path / "run")
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, SRDataModule)
    assert dm.scale == cfg.scale and dm.seed == cfg.seed and dm.data_dir == Path(str(shared_data_dir()))
    if name == "benchmark":
        assert dm.sets == ["Set5", "Set14"] and dm.test_sets == ["Set5", "Set14"]


@pytest.mark.data
def test_t91_config_sets_up_on_shared_data(tmp_path: Path) -> None:
    require_shared_data("T91")
    require_shared_data("Set5")
    from tests.conftest import compose

    cfg = compose("train", ["data=t91", f"paths.data_dir={shared_data_dir()}", "scale=2"], tmp_path / "run")
    dm = hydra.utils.instantiate(cfg.data)
    with pytest.warns(UserWarning, match="t20.png"):  # 78x78: smaller than 96x96 at x2
        dm.setup("fit")
    assert dm.train_set.n_images == 90 and dm.val_set_names == ["Set5"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["lr"].shape == (16, 3, 48, 48) and batch["hr"].shape == (16, 3, 96, 96)
