"""Tiled inference: bound memory on large images without seams.

Each tile is run with ``overlap`` LR pixels of real image context on every side and only its centre
is kept. When ``overlap >= model.receptive_margin`` the centre never sees the tile border, so for
purely local models (EDSR/RCAN convs, HPF) the result equals the whole-image forward up to float
noise. Global units (CA/FCA/MMCA pool over the whole input) can never be exact; ``feather=N``
cross-fades neighbouring tiles over N px so that their differences leave no visible seams.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["auto_tile", "split_1d", "tiled_forward", "model_device"]


def split_1d(n: int, tile: int) -> list[tuple[int, int]]:
    """Split [0, n) into ceil(n / tile) near-equal pieces (no tiny last piece that breaks reflect padding)."""
    if n <= 0:
        raise ValueError(f"cannot split an empty axis (n={n})")
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    k = max(1, math.ceil(n / tile))
    bounds = [(i * n) // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def auto_tile(h: int, w: int, pixel_budget: int | None) -> int | None:
    """Tile side (LR px) when an h x w input exceeds ``pixel_budget`` LR pixels, else None (whole image)."""
    if pixel_budget is None or pixel_budget <= 0 or h * w <= pixel_budget:
        return None
    return max(32, math.isqrt(pixel_budget))


def model_device(model: Callable, default: torch.device | str = "cpu") -> torch.device:
    """Device of a module's first parameter/buffer (where tiles must go); ``default`` for plain callables."""
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device(default)


def _blend_weights(p0: int, p1: int, c0: int, c1: int, n: int, half: float, s: int) -> torch.Tensor:
    """1-D blend weights over the patch [p0, p1) (LR) whose core is [c0, c1), at HR resolution.

    At each core edge shared with a neighbour the weight ramps linearly from 0 to 1 over
    [edge - hw, edge + hw], hw = min(half, edge, n - edge) LR px: the neighbour computes the same hw,
    so the two ramps sum to exactly 1 (pixel centres). Image borders keep a hard edge (weight 1).
    """
    pos = torch.arange(p0 * s, p1 * s, dtype=torch.float64) + 0.5
    w = torch.ones_like(pos)
    if c0 > 0:
        hw = min(half, c0, n - c0) * s
        if hw > 0:
            w = torch.minimum(w, ((pos - c0 * s + hw) / (2 * hw)).clamp(0, 1))
    if c1 < n:
        hw = min(half, c1, n - c1) * s
        if hw > 0:
            w = torch.minimum(w, ((c1 * s - pos + hw) / (2 * hw)).clamp(0, 1))
    return w.float()


@torch.inference_mode()
def tiled_forward(
    model: Callable[[torch.Tensor], torch.Tensor],
    lr: torch.Tensor,
    tile: int,
    overlap: int,
    scale: int,
    *,
    feather: int = 0,
    device: torch.device | str | None = None,
    out_device: torch.device | str = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """Run ``model`` on ``lr`` (N, C, H, W) or (C, H, W) tile by tile; returns (N, C', H*s, W*s) float32.

    Tiles go one at a time to ``device`` (default: the model's), their outputs are gathered on
    ``out_device`` (CPU by default), so peak accelerator memory is one tile's activations.
    feather: width (LR px, at most 2 * overlap) of a linear cross-fade centred on each tile edge; 0 cuts
    hard. Still exact for local models when ``overlap - feather / 2 >= receptive margin``.
    """
    squeeze = lr.ndim == 3
    x = lr.unsqueeze(0) if squeeze else lr
    if x.ndim != 4:
        raise ValueError(f"lr must be (N, C, H, W) or (C, H, W), got shape {tuple(lr.shape)}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if not 0 <= feather <= 2 * overlap:
        raise ValueError(f"feather must be in [0, 2 * overlap] = [0, {2 * overlap}], got {feather}")
    n, _, h, w = x.shape
    s = int(scale)
    dev = torch.device(device) if device is not None else model_device(model, x.device)
    ys, xs = split_1d(h, tile), split_1d(w, tile)

    out: torch.Tensor | None = None
    wsum = torch.zeros(1, 1, h * s, w * s, device=out_device) if feather else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", leave=False)
    for y0, y1 in ys:
        for x0, x1 in xs:
            # Context window, clipped at the image border (where the whole-image forward pads too).
            py0, py1 = max(y0 - overlap, 0), min(y1 + overlap, h)
            px0, px1 = max(x0 - overlap, 0), min(x1 + overlap, w)
            o = model(x[:, :, py0:py1, px0:px1].to(dev))
            if o.shape[-2:] != ((py1 - py0) * s, (px1 - px0) * s):
                raise ValueError(
                    f"model output {tuple(o.shape[-2:])} is not x{s} of the tile {(py1 - py0, px1 - px0)}"
                )
            o = o.to(out_device, torch.float32)
            if out is None:
                out = torch.zeros(n, o.shape[1], h * s, w * s, device=out_device)
            if feather:
                wy = _blend_weights(py0, py1, y0, y1, h, feather / 2, s)
                wx = _blend_weights(px0, px1, x0, x1, w, feather / 2, s)
                wgt = (wy[:, None] * wx[None, :]).to(out_device)
                out[:, :, py0 * s : py1 * s, px0 * s : px1 * s] += o * wgt
                wsum[:, :, py0 * s : py1 * s, px0 * s : px1 * s] += wgt
            else:
                cy, cx = (y0 - py0) * s, (x0 - px0) * s
                out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = o[
                    :, :, cy : cy + (y1 - y0) * s, cx : cx + (x1 - x0) * s
                ]
            del o
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    assert out is not None
    if feather:
        out /= wsum.clamp_min(1e-12)  # sums to 1 by construction; the clamp only guards rounding
    return out[0] if squeeze else out
