"""``SRDataModule``: the ``data`` config group, built by ``hydra.utils.instantiate``.

``setup()`` builds every dataset (decode, LR, checks: faults raised before training starts). Sharding
is done here, not by Lightning (``Trainer(use_distributed_sampler=False)``; our samplers subclass
DistributedSampler so Lightning leaves them alone anyway): training uses ``EpochKeyedSampler``
(shuffled, padded, seeded), validation/test ``UnrepeatedDistributedSampler`` (each image once).
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader

from sr_lit.data.datasets import EvalDataset, TrainPatchDataset, build_eval_datasets
from sr_lit.data.memory import status_mb
from sr_lit.data.packed import LmdbStore, open_lmdb
from sr_lit.data.samplers import EpochKeyedSampler, UnrepeatedDistributedSampler
from sr_lit.data.slab import NodeRole
from sr_lit.data.sources import pairs_from_spec, sample_pairs
from sr_lit.data.store import DataConfigError, normalize_cache

log = logging.getLogger(__name__)

__all__ = ["SRDataModule"]


def _plain(x: Any) -> Any:
    """DictConfig/ListConfig -> plain Python (resolved), anything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(x, (DictConfig, ListConfig)):
            return OmegaConf.to_container(x, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return x


class SRDataModule(pl.LightningDataModule):
    """Training patches + one validation/test loader per evaluation set.

    Args (all are ``data.*`` config keys):
        scale: SR factor (2, 3, 4).
        data_dir: folder holding benchmark sets (``<data_dir>/Set5/HR`` ...).
        train: training source mapping: ``kind`` sample | div2k | folder | benchmark | lmdb, plus ``root``
            (folder: a path or list of paths; lmdb: an ``sr-data pack`` or BasicSR .lmdb folder, with
            ``lr_root`` for BasicSR's LR folder), ``range`` (div2k, e.g. "1-800"), ``sets`` (benchmark).
        patch_size: LR patch side (HR patch = patch_size * scale).
        batch_size: training batch size per process.
        repeat: passes over the training images per epoch (len = n_images * repeat).
        augment / rot90: random h/v flips, and 90-degree rotations when rot90.
        num_workers / val_num_workers: DataLoader workers for training / evaluation loaders.
        pin_memory: None = on when CUDA is available.
        persistent_workers: keep training workers alive between epochs (num_workers > 0).
        cache: memory | shared | disk | none | auto (see ``sr_lit.data.store``): ``auto`` = ``shared`` when
            the trainer runs several ranks on a node (one decoded copy per node), else ``memory``.
            cache_dir: ``disk``'s folder, or where ``shared`` puts its file (default /dev/shm).
        lr_border: symmetric (EDSR files) | replicate (RCAN/SelfExSR files), for generated LR.
        use_official_lr: use ``LR_bicubic/X<s>`` files when present (else always generate).
        val_sets / test_sets: benchmark set names under data_dir, or source mappings (with ``name``).
        val_fallback: "sample" (missing sets are skipped with a warning; when none is left, the 2
            held-out scikit-image photos are used) or "error".
        skip_bad: warn about and skip bad files instead of failing at set-up.
        too_small: "error" | "skip": training images smaller than the HR patch (T91 at x3/x4).
        seed: seeds the shuffle and the per-item patch RNG.
        sets: evaluation sets read by ``sr-eval`` (``data.sets``); default for test_sets.
        root: ``data=folder``: the folder (or list of folders) of HR images; the training source's root
            (``train.root`` refers to it) and the folder ``sr-eval data=folder`` scores.
    """

    def __init__(
        self,
        scale: int = 2,
        data_dir: str | os.PathLike | None = None,
        train: Mapping | None = None,
        patch_size: int = 48,
        batch_size: int = 16,
        repeat: int = 1,
        augment: bool = True,
        rot90: bool = True,
        num_workers: int = 0,
        val_num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        cache: str | bool = "memory",
        cache_dir: str | os.PathLike | None = None,
        lr_border: str = "symmetric",
        use_official_lr: bool = True,
        val_sets: Sequence[str | Mapping] | None = ("Set5",),
        val_fallback: str = "sample",
        test_sets: Sequence[str | Mapping] | None = (),
        skip_bad: bool = False,
        too_small: str = "error",
        seed: int = 0,
        sets: Sequence[str | Mapping] | None = None,
        root: str | os.PathLike | Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if val_fallback not in ("sample", "error"):
            raise ValueError(f"val_fallback must be 'sample' or 'error', got {val_fallback!r}")
        self.scale = int(scale)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.train_spec = dict(_plain(train) or {"kind": "sample"})
        self.patch_size, self.batch_size, self.repeat = int(patch_size), int(batch_size), int(repeat)
        self.augment, self.rot90 = bool(augment), bool(rot90)
        self.num_workers, self.val_num_workers = int(num_workers), int(val_num_workers)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        self.cache, self.cache_dir = normalize_cache(cache), cache_dir
        self.lr_border, self.use_official_lr = lr_border, bool(use_official_lr)
        self.val_sets = list(_plain(val_sets) or [])
        # `sets` (configs/data/benchmark.yaml) is what sr-eval scores; it is the test sets unless given
        self.sets = list(_plain(sets) or [])
        self.test_sets = list(_plain(test_sets) or self.sets)
        self.val_fallback, self.skip_bad, self.seed = val_fallback, bool(skip_bad), int(seed)
        self.too_small = too_small
        self._node: NodeRole | None = None
        self.train_set: TrainPatchDataset | None = None
        self.val_datasets: dict[str, EvalDataset] | None = None
        self.setup_report: dict[str, Any] = {}  # the training set's build: cache, images, MB, seconds
        self.test_datasets: dict[str, EvalDataset] | None = None

    # --- set-up --------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_node"] = None  # holds the strategy's barrier: rebuilt in each process (ddp_spawn pickles us)
        return state

    def resolved_cache(self) -> str:
        """``cache`` with ``auto`` resolved: shared when this node runs several ranks of the trainer."""
        if self.cache != "auto":
            return self.cache
        trainer = getattr(self, "trainer", None)
        per_node = int(getattr(trainer, "num_devices", 1) or 1) if trainer is not None else 1
        return "shared" if per_node > 1 and int(getattr(trainer, "world_size", 1)) > 1 else "memory"

    def node_role(self) -> NodeRole:
        """Local rank 0 builds node-shared caches, the other ranks wait for it (one process: it builds)."""
        if self._node is None:
            self._node = NodeRole.single()
            trainer = getattr(self, "trainer", None)
            if (
                trainer is not None
                and trainer.world_size > 1
                and dist.is_available()
                and dist.is_initialized()
            ):
                strategy = trainer.strategy
                token = strategy.broadcast(
                    uuid.uuid4().hex[:12], src=0
                )  # names this run's files on every node
                self._node = NodeRole(
                    trainer.local_rank == 0, token, lambda: strategy.barrier("sr_lit_cache")
                )
        return self._node

    def _store_kwargs(self) -> dict:
        cache = self.resolved_cache()
        node = self.node_role() if cache in ("shared", "disk") else None
        return {"cache": cache, "cache_dir": self.cache_dir, "skip_bad": self.skip_bad, "node": node}

    def build_train(self) -> TrainPatchDataset:
        spec = {"use_official_lr": self.use_official_lr, **self.train_spec}
        before = status_mb()
        if spec.get("kind") == "lmdb":
            source: Any = self._open_lmdb(spec)
            name = source.label
        else:
            name, source = pairs_from_spec(spec, self.data_dir, self.scale)
        ds = TrainPatchDataset(
            source,
            self.scale,
            self.patch_size,
            self.repeat,
            self.augment,
            self.rot90,
            lr_border=self.lr_border,
            seed=self.seed,
            label=f"training set {name}",
            too_small=self.too_small,
            **self._store_kwargs(),
        )
        store, after = ds.store, status_mb()
        self.setup_report = {
            "cache": store.mode,
            "images": len(store),
            "decoded_images": store.decoded,
            "decoded_mb": store.nbytes / 2**20,
            "seconds": store.seconds,
            "private_mb_added": after.get("RssAnon", 0.0) - before.get("RssAnon", 0.0),
        }
        if store.mode in ("memory", "shared"):
            log.info(
                "training set %s: %d images, %.0f MB decoded (%s cache; %d decoded by this process) in %.1f s",
                name, len(store), store.nbytes / 2**20, store.mode, store.decoded, store.seconds,
            )  # fmt: skip
        return ds

    def _open_lmdb(self, spec: Mapping) -> LmdbStore:
        root, p = spec.get("root"), self.patch_size
        if root is None:
            raise DataConfigError(
                "data.train.kind=lmdb needs data.train.root (an sr-data pack or a BasicSR .lmdb folder)"
            )
        return open_lmdb(
            root, self.scale, spec.get("lr_root"), lr_border=self.lr_border, min_lr_size=p, too_small=self.too_small,
            label=f"training set {spec.get('name', Path(str(root)).name)}",
            size_reason=lambda w, h: f"image is smaller than the training patch: LR {w}x{h} < patch_size {p}",
        )  # fmt: skip

    def _available(self, entry: str | Mapping) -> bool:
        if isinstance(entry, Mapping):
            return True  # full source specs fail loudly on their own
        return self.data_dir is not None and (self.data_dir / entry / "HR").is_dir()

    def build_eval(self, sets: Sequence[str | Mapping], what: str) -> dict[str, EvalDataset]:
        present = [s for s in sets if self._available(s)]
        missing = [s for s in sets if not self._available(s)]
        if missing:
            where = [str(Path(self.data_dir or ".") / str(s) / "HR") for s in missing]
            if self.val_fallback == "error":
                raise FileNotFoundError(
                    f"{what} set(s) not found: {', '.join(where)} (data.data_dir={self.data_dir})"
                )
            log.warning(
                "%s set(s) not found, skipped: %s (data.data_dir=%s)", what, ", ".join(where), self.data_dir
            )
        kw = {"lr_border": self.lr_border, "use_official_lr": self.use_official_lr, **self._store_kwargs()}
        out = build_eval_datasets(present, self.scale, self.data_dir, **kw) if present else {}
        if not out and sets and self.val_fallback == "sample":
            log.warning(
                "no %s benchmark set available: using the held-out scikit-image photos %s (scores are not "
                "comparable with published tables)", what, [p.name for p in sample_pairs("val")],
            )  # fmt: skip
            out = {
                "sample_val": EvalDataset(
                    sample_pairs("val"),
                    self.scale,
                    self.lr_border,
                    label="sample_val",
                    **self._store_kwargs(),
                )
            }
        return out

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self.build_train()
            n = len(self.train_set) // self._world()[0]
            if n < self.batch_size:
                raise DataConfigError(
                    f"training set gives {n} patches per process per epoch, fewer than batch_size "
                    f"{self.batch_size}: raise data.repeat (now {self.repeat})"
                )
        if stage in (None, "fit", "validate") and self.val_datasets is None:
            self.val_datasets = self.build_eval(self.val_sets, "validation")
        if stage in (None, "test") and self.test_datasets is None:
            self.test_datasets = self.build_eval(self.test_sets, "test")

    # --- loaders ---------------------------------------------------------------------------------

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        world, rank = self._world()
        sampler = EpochKeyedSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.seed
        )
        self._position_for_resume(sampler)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=True,  # equal-size batches; the sampler already equalises ranks
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            prefetch_factor=4 if self.num_workers > 0 else None,
        )

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: what sr-train's metrics.json reports when the fit ran in spawned workers."""
        store = getattr(self.train_set, "store", None)
        return {} if store is None else {"skipped_images": int(store.n_skipped)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the data are rebuilt from the config (the sampler follows the trainer's progress)."""

    def _position_for_resume(self, sampler: EpochKeyedSampler) -> None:
        """Let the sampler take each pass's epoch and start from the batches the fit has trained.

        Lightning restarts a resumed epoch from its first batch (it only warns that a plain DataLoader is "not
        resumable"), counts an epoch that max_steps cut short as finished, and with workers > 0 draws the first
        indices before it calls ``set_epoch``. Counting trained batches avoids all three; with the patch RNG keyed
        by (seed, epoch, index) a resumed run trains on exactly the batches an uninterrupted one would. Not with
        limit_train_batches (a debug setting: epochs are then shorter than the loader): Lightning's epoch is used.
        """
        trainer = getattr(self, "trainer", None)
        fit_loop = getattr(trainer, "fit_loop", None)
        if fit_loop is None or getattr(trainer, "limit_train_batches", 1.0) not in (None, 1.0):
            return
        progress = fit_loop.epoch_loop.batch_progress
        sampler.follow(lambda: progress.total.processed, self.batch_size)
        epoch, skip = sampler.position()
        if skip:
            warnings.filterwarnings(
                "ignore", message=r".*ended before the epoch ended and your dataloader is"
            )
            n = len(sampler) // self.batch_size
            rank_zero_info(
                f"resuming mid-epoch: epoch {epoch}, after its first {skip // self.batch_size} of {n} batches"
            )

    def _eval_loaders(self, datasets: dict[str, EvalDataset]) -> list[DataLoader]:
        world, rank = self._world()
        return [
            DataLoader(
                ds,
                batch_size=1,  # whole images of different sizes
                sampler=UnrepeatedDistributedSampler(ds, num_replicas=world, rank=rank),
                num_workers=self.val_num_workers,
                pin_memory=self.pin_memory,
            )
            for ds in datasets.values()
        ]

    def val_dataloader(self) -> list[DataLoader]:
        if self.val_datasets is None:
            self.setup("validate")
        return self._eval_loaders(self.val_datasets or {})

    def test_dataloader(self) -> list[DataLoader]:
        if self.test_datasets is None:
            self.setup("test")
        return self._eval_loaders(self.test_datasets or {})

    @property
    def val_set_names(self) -> list[str]:
        if self.val_datasets is None:
            self.setup("validate")
        return list(self.val_datasets or {})

    @property
    def test_set_names(self) -> list[str]:
        if self.test_datasets is None:
            self.setup("test")
        return list(self.test_datasets or {})
