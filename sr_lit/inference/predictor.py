"""``Upscaler``: one object that turns an LR image into its SR image, shared by sr-upscale and sr-eval.

It hides the choice of model vs. the MATLAB-bicubic baseline, the device, automatic tiling above a
pixel budget, and the x8 self-ensemble.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sr_lit.inference.ensemble import self_ensemble
from sr_lit.inference.tiling import auto_tile, tiled_forward

__all__ = [
    "Upscaler",
    "resolve_device",
    "min_input_side",
    "DEFAULT_MAX_PIXELS",
    "MAX_AUTO_OVERLAP",
    "BICUBIC_MARGIN",
    "PRECISIONS",
]

# LR pixels above which tiling turns on by itself; also the tile area. 384x384 keeps a 3840x2160 x2
# edsr_baseline run on CPU near 1.4 GB peak RSS (512x512 tiles: ~0.35 GB more; activations grow with
# the tile area and the model width, so wide models such as full EDSR want a smaller budget).
DEFAULT_MAX_PIXELS = 384 * 384
# Default overlap = the model's receptive margin, capped: RCAN's theoretical margin (~400 px) would
# make every tile mostly context, while its effective receptive field is far smaller.
MAX_AUTO_OVERLAP = 64
# MATLAB bicubic x s reads 2 LR taps on each side; 4 makes tiled bicubic bit-exact with margin to spare.
BICUBIC_MARGIN = 4
# fp32: the published protocol's numbers (sr-eval's default). bf16: the network under torch.autocast (its units'
# reductions and its output conv stay fp32, sr_lit.models.blocks.precision); faster where bf16 is native (GPUs,
# CPUs with AVX-512 BF16/AMX), several times slower elsewhere; moves PSNR by hundredths of a dB (README).
PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None -> cuda when available else cpu; ValueError for unknown or unavailable devices."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {str(device)!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


def min_input_side(net: object, spec: dict | None = None) -> int:
    """Smallest LR side ``net`` accepts: the largest ``min_input_side`` its modules declare (reflect padding, in
    the dynamic HPF, needs more pixels than it pads, so a 1x1 input fails inside the network; searching the modules
    also finds it behind a wrapper such as nn.DataParallel), else from the spec (ONNX), else 1."""
    if isinstance(net, nn.Module):
        sides = [
            m.min_input_side for m in net.modules() if isinstance(getattr(m, "min_input_side", None), int)
        ]
        if sides:
            return max(sides)
    hpf = (spec or {}).get("hpf") if isinstance(spec, dict) else None
    if isinstance(hpf, dict) and hpf.get("name", "none") != "none":
        return int(hpf.get("kernel_size", 3)) // 2 + 1
    return 1


class _Bicubic:
    """The published "bicubic" row: MATLAB bicubic on the 8-bit LR, rounded after each pass."""

    def __init__(self, scale: int) -> None:
        self.scale = int(scale)
        self.receptive_margin = BICUBIC_MARGIN

    def __call__(self, lr01: torch.Tensor) -> torch.Tensor:
        from sr_lit.data.imresize import bicubic_upscale

        lr8 = torch.floor(lr01.clamp(0, 1) * 255 + 0.5).to(torch.uint8)  # exact for LR read from 8-bit files
        return bicubic_upscale(lr8, self.scale).float().div_(255)


class Upscaler:
    """``Upscaler(model)(lr01)`` -> sr01. lr01: float [0, 1] (3, h, w) or (N, 3, h, w); result on CPU.

    tile: LR tile side (None: automatic above ``max_pixels`` LR pixels, 0: never tile).
    overlap: LR context per tile side (None: the model's receptive margin, capped at MAX_AUTO_OVERLAP).
    feather: cross-fade tiles over ``overlap`` px (None: for models with global attention, and when the overlap
    is below the model's receptive margin: neither can tile exactly; a hard cut is exact otherwise).
    precision: fp32 | bf16 (the network under bf16 autocast; a PyTorch model only).
    """

    def __init__(
        self,
        model: nn.Module | None,
        *,
        scale: int | None = None,
        device: str | torch.device | None = "auto",
        tile: int | None = None,
        overlap: int | None = None,
        self_ensemble: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        feather: bool | None = None,
        progress: bool = False,
        name: str | None = None,
        spec: dict | None = None,
        precision: str = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        if precision != "fp32" and model is None:
            raise ValueError(f"precision {precision} needs a model; the bicubic baseline runs in fp32")
        self.precision = precision
        self.device = resolve_device(device)
        if model is None:
            if scale is None:
                raise ValueError("the bicubic baseline needs a scale")
            self.net: nn.Module | _Bicubic = _Bicubic(scale)
            self.device = torch.device("cpu")  # bicubic runs on CPU; cheap and bit-exact there
        else:
            model_scale = int(getattr(model, "scale", scale or 0))
            if scale is not None and int(scale) != model_scale:
                raise ValueError(f"scale {scale} disagrees with the model's scale {model_scale}")
            self.net = model.to(self.device).eval()
        self.scale = int(scale if model is None else getattr(model, "scale", scale))
        margin = int(getattr(self.net, "receptive_margin", MAX_AUTO_OVERLAP))
        self.overlap = int(overlap) if overlap is not None else min(margin, MAX_AUTO_OVERLAP)
        if self.overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        if tile is not None and tile < 0:
            raise ValueError(f"tile must be >= 0, got {tile}")
        self.tile = tile
        self.max_pixels = max_pixels
        self.self_ensemble = bool(self_ensemble)
        self.spec = spec
        exact_cut = self.overlap >= margin and not _has_global_attention(self.net, spec)
        self.feather = not exact_cut if feather is None else bool(feather)
        self.progress = progress
        self.name = name or ("bicubic" if model is None else type(model).__name__)

    @property
    def min_input_side(self) -> int:
        """Smallest LR side this upscaler accepts (an image or a tile)."""
        return min_input_side(self.net, self.spec)

    @property
    def min_tile(self) -> int:
        """Smallest tile side worth running: the default overlap (the receptive margin, capped at
        MAX_AUTO_OVERLAP), below which a tile is mostly context (``--tile 1``: 82,944 tiles for 288x288 LR)."""
        margin = int(getattr(self.net, "receptive_margin", MAX_AUTO_OVERLAP))
        return max(self.min_input_side, min(margin, MAX_AUTO_OVERLAP))

    def tile_problem(self) -> str | None:
        """Why the tile side asked for cannot be used (None: it can). Fixed-size ONNX exports plan their own."""
        if not self.tile or getattr(self.net, "fixed_hw", None) is not None or self.tile >= self.min_tile:
            return None
        return (
            f"below this model's minimum of {self.min_tile} LR px (its receptive margin, at most "
            f"{MAX_AUTO_OVERLAP}: a smaller tile is mostly overlap); 0 = no tiling"
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> Upscaler:
        """Load a .ckpt/.safetensors (``sr_lit.models.loading.load_model``) and wrap it."""
        from sr_lit.models.loading import load_model

        model, spec = load_model(path, map_location="cpu")
        return cls(model, name=str(path), spec=spec, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, **kwargs) -> Upscaler:
        """Run an sr-export ONNX file (onnxruntime; ``device`` picks its provider). A fixed-size export tiles
        with tiles that fit its input (tile + 2 * overlap); smaller inputs are padded, so ``tile=0`` is refused."""
        from sr_lit.export.runtime import OnnxSR

        if kwargs.get("precision", "fp32") != "fp32":  # the graph's dtypes are fixed at export
            raise ValueError(
                f"precision {kwargs['precision']} needs a PyTorch model; {path} is an ONNX export"
            )
        net = OnnxSR(path, device=str(kwargs.pop("device", "auto") or "auto"))
        if net.fixed_hw is not None:
            tile, overlap = net.tile_plan(kwargs.get("overlap"), MAX_AUTO_OVERLAP)
            if kwargs.get("tile") == 0:
                raise ValueError(f"{path} has a fixed {net.fixed_hw} input: it must tile (tile=0 refused)")
            if kwargs.get("tile") is not None and kwargs["tile"] > tile:
                raise ValueError(
                    f"tile {kwargs['tile']} + overlap does not fit the fixed {net.fixed_hw} input of {path}"
                )
            kwargs["tile"], kwargs["overlap"] = kwargs.get("tile") or tile, overlap
        # inputs go to onnxruntime as NumPy arrays: keep the torch side on the CPU
        return cls(net, spec=net.spec, name=str(path), device="cpu", **kwargs)

    @classmethod
    def bicubic(cls, scale: int, **kwargs) -> Upscaler:
        return cls(None, scale=scale, **kwargs)

    @property
    def is_baseline(self) -> bool:
        return isinstance(self.net, _Bicubic)

    def tile_for(self, h: int, w: int) -> int | None:
        """Tile side used for an h x w LR input (None = whole image)."""
        if self.tile == 0:
            return None
        if getattr(self.net, "fixed_hw", None) is not None and self.net.fits(h, w):
            return None  # a fixed-size ONNX export takes the whole (padded) image in one run
        if self.tile is not None:
            return self.tile if max(h, w) > self.tile else None
        return auto_tile(h, w, self.max_pixels)

    def _run_net(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.net(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        tile = self.tile_for(x.shape[-2], x.shape[-1])
        if tile is None:
            return self._run_net(x.to(self.device)).float().cpu()
        return tiled_forward(
            self._run_net,
            x,
            tile,
            self.overlap,
            self.scale,
            feather=self.overlap if self.feather else 0,
            device=self.device,
            progress=self.progress,
        )

    @torch.inference_mode()
    def __call__(self, lr01: torch.Tensor) -> torch.Tensor:
        squeeze = lr01.ndim == 3
        x = lr01.unsqueeze(0) if squeeze else lr01
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected an LR image (3, h, w) or (N, 3, h, w), got {tuple(lr01.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale -> RGB for the model (DESIGN 1.5)
        x = x.float().contiguous()
        sr = self_ensemble(self._forward, x) if self.self_ensemble else self._forward(x)
        sr = sr.clamp_(0, 1)
        return sr[0] if squeeze else sr


def _has_global_attention(net: object, spec: dict | None) -> bool:
    """CA/FCA/MMCA pool over the whole input: tiles can't be exact, so blend them instead of cutting."""
    if spec is not None and isinstance(spec.get("attention"), dict):
        return str(spec["attention"].get("name", "none")) != "none"
    if not isinstance(net, nn.Module):
        return False
    return any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) for m in net.modules())
