"""`sr-inspect`'s work: load a checkpoint, run it on one image, write what its MMCA and HPF units learned.

Outputs in one folder: inspect.json (everything, numbers), mmca_weights.png (one DCT (u, v) heat map per MMCA unit),
hpf_response.png (mean |H| of the predicted high-pass per placement, 2-D and radial). See sr_lit.analysis.units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sr_lit.analysis.plots import plot_hpf_responses, plot_mmca_weights
from sr_lit.analysis.units import hpf_responses, mmca_weights
from sr_lit.utils.files import write_atomic

__all__ = ["OUTPUT_NAMES", "DEFAULT_IMAGE", "load_input", "inspect_checkpoint"]

OUTPUT_NAMES = ("inspect.json", "mmca_weights.png", "hpf_response.png")
DEFAULT_IMAGE = "coffee"  # a scikit-image photo that data=sample holds out of training


def _centre_crop(x: torch.Tensor, max_side: int | None) -> torch.Tensor:
    if not max_side:
        return x
    h, w = x.shape[-2:]
    ch, cw = min(h, max_side), min(w, max_side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def load_input(
    image: str | Path | None, scale: int, as_hr: bool, max_side: int | None
) -> tuple[torch.Tensor, str]:
    """The network input (1, 3, h, w) in [0, 1] and a description of where it came from.

    image None: scikit-image's `coffee` photo, downscaled x``scale`` (MATLAB bicubic). A given file is the LR input
    itself, or, with ``as_hr``, downscaled x``scale`` first. Centre-cropped to ``max_side`` LR pixels per side.
    """
    from sr_lit.data.imresize import make_lr
    from sr_lit.data.io import read_image, to_float, to_rgb

    if image is None:
        from skimage import data as skdata

        hr = torch.from_numpy(skdata.coffee().copy()).permute(2, 0, 1).contiguous()
        lr, source = make_lr(hr, scale), f"scikit-image {DEFAULT_IMAGE}, MATLAB-bicubic x{scale} down"
    else:
        pic = to_rgb(read_image(image))
        lr, source = (
            (make_lr(pic, scale), f"{image}, MATLAB-bicubic x{scale} down") if as_hr else (pic, str(image))
        )
    lr = _centre_crop(lr, max_side)
    return to_float(lr).unsqueeze(0), source


def inspect_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    image: str | Path | None = None,
    as_hr: bool = False,
    max_side: int | None = 192,
) -> dict[str, Any]:
    """Write inspect.json (+ the PNGs of the units the model has) into ``out``; returns the JSON record."""
    from sr_lit.models.loading import load_model

    model, spec = load_model(ckpt, map_location="cpu")
    lr, source = load_input(image, int(spec["scale"]), as_hr, max_side)
    mmca = mmca_weights(model)
    hpf = hpf_responses(model, lr)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "model_spec": spec,
        "image": {"source": source, "lr_size": list(lr.shape[-2:])},
        "mmca": mmca,
        "hpf": hpf,
        "files": {},
    }
    if mmca:
        record["files"]["mmca"] = str(plot_mmca_weights(mmca, out / "mmca_weights.png"))
    if hpf:
        record["files"]["hpf"] = str(plot_hpf_responses(hpf, out / "hpf_response.png"))
    write_atomic(out / "inspect.json", (json.dumps(record, indent=1) + "\n").encode())
    return record
