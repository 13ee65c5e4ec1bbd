"""sr-eval: score a checkpoint (or the bicubic baseline) on benchmark sets with the paper protocol.

    sr-eval ckpt_path=best.ckpt 'data.sets=[Set5,Set14]' json_out=results.json
    sr-eval baseline=bicubic scale=4                 # also: model=bicubic
    sr-eval ckpt_path=best.ckpt self_ensemble=true tile=256
    sr-eval ckpt_path=best.ckpt precision=bf16              # the network under bf16 autocast (fp32 default)
    sr-eval ckpt_path=best.ckpt hr_dir=/path/to/hr_images   # any folder of HR images
    sr-eval ckpt_path=EDSR_x2.pt protocol=edsr              # a released file, EDSR-PyTorch's test protocol

Protocol (DESIGN 1.5, via ``SRMetrics``): 8-bit output, Y (gray values for gray ground truth), shave =
scale, per-image PSNR/SSIM averaged per set. Images go one at a time through ``Upscaler``, which tiles
large ones. Every input is checked before the first image, cheapest first: options (scale, tile, json_out's
folder), then the checkpoint and data folders, then every image (decoded in full; too small for the metric or
the model: named, or skipped with ``data.skip_bad=true``). The results are always written to the run folder
(results.json); a json_out that cannot be written after all still leaves the table printed and that file.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from sr_lit.cli._common import config_dir, fail
from sr_lit.errors import EXIT_INTERRUPTED, ConfigError, UserError
from sr_lit.utils.files import write_atomic

PROG = "sr-eval"


def _source(cfg: DictConfig) -> tuple[str | None, str | None]:
    """(ckpt_path, baseline) after checking that exactly one model source was given."""
    ckpt = cfg.get("ckpt_path")
    baseline = cfg.get("baseline") or cfg.get("model")  # `model=bicubic` (DESIGN 3) is an alias
    if ckpt and baseline:
        raise UserError(
            f"give either ckpt_path or baseline, not both (ckpt_path={ckpt}, baseline={baseline})"
        )
    if not ckpt and not baseline:
        raise UserError("nothing to evaluate: give ckpt_path=PATH (.ckpt/.safetensors) or baseline=bicubic")
    if baseline and str(baseline) != "bicubic":
        raise UserError(f"unknown baseline {baseline!r}; the only baseline is 'bicubic'")
    return (str(ckpt) if ckpt else None), (str(baseline) if baseline else None)


def check_options(cfg: DictConfig) -> None:
    """Checks of values alone, before any file is looked at (a bad option is named even without data)."""
    _, baseline = _source(cfg)
    scale = cfg.get("scale")
    if scale is not None and (isinstance(scale, bool) or scale not in (2, 3, 4)):
        raise ConfigError(f"scale={scale}: must be 2, 3 or 4")
    if baseline and scale is None:
        raise ConfigError("baseline=bicubic needs scale=2|3|4")
    for key in ("tile", "overlap", "max_pixels"):
        v = cfg.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"{key}={v}: expected a non-negative integer or null")
    _gray_gt(cfg)
    if cfg.get("json_out"):
        check_writable(Path(str(cfg.json_out)), "json_out")


def check_writable(path: Path, key: str) -> None:
    """``path`` can be created (atomically: a temp file in its folder, then a rename): not a folder, and its
    nearest existing parent is a folder we may write in. Checked before the evaluation, not after it."""
    if path.is_dir():
        raise ConfigError(f"{key}={path}: is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{key}={path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: no permission to write in {parent}")


def _build_upscaler(cfg: DictConfig, ckpt: str | None):
    from sr_lit.inference.predictor import DEFAULT_MAX_PIXELS, Upscaler
    from sr_lit.models.loading import CheckpointError, load_model

    scale = cfg.get("scale")
    common: dict[str, Any] = dict(
        device=cfg.get("device", "auto"),
        tile=cfg.get("tile"),
        overlap=cfg.get("overlap"),
        self_ensemble=bool(cfg.get("self_ensemble", False)),
        max_pixels=cfg.get("max_pixels", DEFAULT_MAX_PIXELS),
        precision=str(cfg.get("precision", "fp32")),
    )
    try:
        if ckpt is None:
            return Upscaler.bicubic(int(scale), **common)
        try:
            model, spec = load_model(ckpt, map_location="cpu")
        except CheckpointError as e:
            raise UserError(f"ckpt_path={e}") from None
        if scale is not None and int(scale) != int(spec["scale"]):
            raise UserError(f"scale={scale} disagrees with ckpt_path={ckpt}, a x{spec['scale']} model")
        return Upscaler(model, spec=spec, name=ckpt, **common)
    except ValueError as e:  # unknown/unavailable device
        raise UserError(str(e)) from None


def _data_source(cfg: DictConfig) -> dict[str, Any]:
    """build_eval_datasets arguments from the config; missing folders fail here, before any image is read."""
    data = cfg.get("data") or {}
    hr_dir = cfg.get("hr_dir")
    if hr_dir:  # any folder of HR images, LR made on the fly; independent of the data group's layout
        kind, sets, root = "folder", None, str(hr_dir)
    else:
        root = data.get("root", None)
        # data=folder data.root=DIR: any folder of HR images
        kind = "folder" if root is not None else str(data.get("kind", "benchmark"))
        # data.test_sets name benchmark sets (what a training run tests on); under data=folder data.root=DIR
        # they are not sub-folders of DIR: there only an explicit data.sets picks sub-folders
        sets = data.get("sets", None) or (data.get("test_sets", None) if kind != "folder" else None)
        sets = OmegaConf.to_container(sets, resolve=True) if OmegaConf.is_config(sets) else sets
        root = OmegaConf.to_container(root, resolve=True) if OmegaConf.is_config(root) else root
    data_dir = cfg.paths.get("data_dir") if cfg.get("paths") else None
    # The commonest mistake gets the most specific message.
    if kind == "benchmark" and root is None and (data_dir is None or not Path(str(data_dir)).is_dir()):
        raise UserError(f"data directory not found: {data_dir} (set paths.data_dir=DIR or $SR_DATA_DIR)")
    if root is not None and not Path(str(root)).is_dir():
        raise UserError(f"image folder not found: {root}")
    return dict(
        sets=sets,
        data_dir=data_dir,
        lr_border=str(data.get("lr_border", "symmetric")),
        kind=kind,
        root=root,
        use_official_lr=bool(data.get("use_official_lr", True)),
        skip_bad=bool(data.get("skip_bad", False)),  # bad or too-small images: skipped with a warning each
    )


def _build_datasets(source: dict[str, Any], scale: int, min_lr_size: int) -> dict:
    from sr_lit.data.datasets import build_eval_datasets

    try:
        # one pass: hold no image cache; images smaller than the model's minimum input are bad files too
        return build_eval_datasets(scale=scale, cache="none", min_lr_size=min_lr_size, **source)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise UserError(str(e)) from None


def _gray_gt(cfg: DictConfig) -> str:
    from sr_lit.metrics.sr_metrics import GRAY_GT_MODES

    value = str(cfg.get("gray_gt") or "gray")
    if value not in GRAY_GT_MODES:
        raise UserError(f"gray_gt={value}: must be one of {', '.join(GRAY_GT_MODES)}")
    return value


def _protocol(cfg: DictConfig, source: dict[str, Any], gray_gt: str) -> dict[str, Any]:
    """The settings that move published numbers (configs/protocol/*.yaml), recorded with the scores."""
    name = None
    try:
        from hydra.core.hydra_config import HydraConfig

        name = HydraConfig.get().runtime.choices.get("protocol")
    except (ValueError, ImportError, AttributeError):  # not under Hydra
        pass
    return {
        "name": name,
        "lr_border": source["lr_border"],
        "use_official_lr": source["use_official_lr"],
        "gray_gt": gray_gt,
    }


def _analysis_options(cfg: DictConfig) -> dict[str, Any]:
    """per_image / spectrum / n_bands (configs/eval.yaml), checked before any work."""
    options = {}
    for key in ("per_image", "spectrum"):
        value = cfg.get(key, key == "per_image")
        if not isinstance(value, bool):
            raise UserError(f"{key}={value}: expected true or false")
        options[key] = value
    n_bands = cfg.get("n_bands", 8)
    if isinstance(n_bands, bool) or not isinstance(n_bands, int) or n_bands < 1:
        raise UserError(f"n_bands={n_bands}: expected a positive integer")
    options["n_bands"] = n_bands
    return options


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation described by ``cfg``; returns the JSON-able result."""
    from sr_lit.analysis.evaluation import evaluate_with_spectra

    check_options(cfg)
    analysis = _analysis_options(cfg)
    ckpt, _ = _source(cfg)
    if ckpt is not None and not Path(ckpt).is_file():
        raise UserError(f"ckpt_path not found: {ckpt}")
    upscaler = _build_upscaler(cfg, ckpt)  # the checkpoint's own checks (scale, tile minimum) need no data
    why = upscaler.tile_problem()
    if why:
        raise ConfigError(f"tile={cfg.tile}: {why}")
    source = _data_source(cfg)
    scale = upscaler.scale
    datasets = _build_datasets(source, scale, upscaler.min_input_side)
    progress = bool(cfg.get("progress", True))
    gray_gt = _gray_gt(cfg)

    result: dict[str, Any] = {
        "scale": scale,
        "model": ckpt if ckpt else "bicubic",
        "self_ensemble": upscaler.self_ensemble,
        "model_spec": getattr(upscaler, "spec", None),
        "tile": cfg.get("tile"),
        "device": str(upscaler.device),
        "protocol": _protocol(cfg, source, gray_gt),
        "precision": upscaler.precision,
        "sets": {},
    }
    t0 = time.perf_counter()
    try:
        result["sets"] = evaluate_with_spectra(
            upscaler,
            datasets,
            scale,
            spectrum=analysis["spectrum"],
            n_bands=analysis["n_bands"],
            progress=progress,
            gray_gt=gray_gt,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    if not analysis["per_image"]:
        for record in result["sets"].values():
            record.pop("per_image", None)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"{Path(result['model']).name} x{result['scale']}" + (
        " (+ self-ensemble)" if result["self_ensemble"] else ""
    )
    table = Table(title=title)
    for col, just in (("set", "left"), ("n", "right"), ("PSNR-Y", "right"), ("SSIM-Y", "right")):
        table.add_column(col, justify=just)
    for name, r in result["sets"].items():
        psnr = "nan" if math.isnan(r["psnr_y"]) else f"{r['psnr_y']:.2f}"
        table.add_row(name, str(r["n_images"]), psnr, f"{r['ssim_y']:.4f}")
    console = Console(soft_wrap=True)
    console.print(table)
    for name, r in result["sets"].items():
        if r.get("spectrum"):
            console.print(band_table(name, r["spectrum"]))


def band_table(set_name: str, spectrum: dict):
    """Per-band Y-PSNR of the model and of bicubic (sr_lit.analysis.spectrum) as a rich table."""
    from rich.table import Table

    def db(v: float | None) -> str:
        return "inf" if v is None else f"{v:.2f}"

    edges = spectrum["band_edges"]
    table = Table(
        title=f"{set_name}: Y-PSNR per frequency band (r = f / HR Nyquist, {spectrum['window']} window)"
    )
    for col in ("band", "r", "model", "bicubic", "Δ", "model error share"):
        table.add_column(col, justify="right")
    model, bicubic = spectrum["model"], spectrum["bicubic"]
    for k in range(spectrum["n_bands"]):
        delta = spectrum["delta_band_psnr_y"][k]
        share = model["band_share"][k]
        table.add_row(
            str(k),
            f"{edges[k]:.3f}-{edges[k + 1]:.3f}" + ("+" if k == spectrum["n_bands"] - 1 else ""),
            db(model["band_psnr_y"][k]),
            db(bicubic["band_psnr_y"][k]),
            "—" if delta is None else f"{delta:+.2f}",
            "—" if share is None else f"{100 * share:.1f} %",
        )
    return table


def write_json(result: dict, path: str | Path, like: dict[str, Path] | None = None) -> dict[str, Path]:
    """The result as JSON at ``path``, with `<stem>_per_image.csv` (per_image=true) and `<stem>_spectrum.png`
    (spectrum=true) beside it; ``like``: those files already written for the same result (copied, not rendered
    again). Returns {"json"|"per_image"|"spectrum": path written}."""
    from sr_lit.analysis.records import write_beside

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(result, indent=2) + "\n").encode())
    if like is None:
        beside = write_beside(path, result["sets"], title=f"{Path(result['model']).name} x{result['scale']}")
    else:  # same content, this JSON's stem: <results>_spectrum.png -> <json_out stem>_spectrum.png
        beside = {
            kind: path.with_name(path.stem + src.name[len(like["json"].stem) :])
            for kind, src in like.items()
            if kind != "json"
        }
        for kind, dest in beside.items():
            write_atomic(dest, like[kind].read_bytes())
    return {"json": path, **beside}


def _run_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):  # not under Hydra (called from python)
        return None


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> float | None:
    try:
        result = evaluate(cfg)
    except UserError as e:
        fail(PROG, str(e))
    except KeyboardInterrupt:
        fail(PROG, "interrupted", code=EXIT_INTERRUPTED)
    print_table(result)  # first: whatever happens to the files, the numbers are on screen
    run_dir, kept = _run_dir(), None
    if run_dir is not None:
        try:
            kept = write_json(result, run_dir / "results.json")  # every run keeps its numbers beside its log
        except OSError as e:
            print(
                f"{PROG}: warning: cannot write {run_dir / 'results.json'} ({e.strerror or e})",
                file=sys.stderr,
            )
    if cfg.get("json_out"):
        try:
            write_json(result, cfg.json_out, like=kept)
        except OSError as e:
            where = f"the results are in {kept['json']}" if kept else "the table above is all that was kept"
            fail(PROG, f"json_out={cfg.json_out}: cannot write ({e.strerror or e}); {where}")
    first = next(iter(result["sets"].values()), None)
    return first["psnr_y"] if first else None  # for sweepers


if __name__ == "__main__":
    main()
