"""State-dict layouts of the published EDSR / RCAN code, and the model spec read off a plain state dict.

The same tensors under two namings:

- ``official``: EDSR-PyTorch and the RCAN code (their released ``.pt`` files). sr_lit's EDSR/RCAN modules register
  exactly these names, so this layout *is* ours for the plain variants: ``sub_mean``/``add_mean`` (MeanShift is a
  frozen 1x1 Conv2d, so its weight and bias are in the state dict), ``head.0``, ``body.<i>.body.{0,2}``,
  ``body.<n>`` (body tail conv), ``tail.0.<j>`` (upsampler convs), ``tail.1``; RCAN nests ``body.<g>.body.<b>.body.
  {0,2,3.conv_du.{0,2}}`` (RCAB convs + CA) with the group tail conv ``body.<g>.body.<n_blocks>``.
- ``basicsr``: BasicSR's ``edsr_arch.py`` / ``rcan_arch.py`` (``.pth`` files hold ``{"params": ..., "params_ema":
  ...}``): ``conv_first``, ``body.<i>.conv{1,2}``, ``conv_after_body``, ``upsample.<j>``, ``conv_last``; RCAN:
  ``body.<g>.residual_group.<b>.rcab.{0,2,3.attention.{1,3}}`` and ``body.<g>.conv``. No MeanShift tensors: the mean
  is a constant of the module (``img_range`` 255, DIV2K mean), equal to our frozen MeanShift's defaults.

Detection works like spandrel's: the architecture from which keys exist, width / depth / scale / CA reduction from
the shapes. What no file stores is asked for, with the released models' value as default: EDSR's ``res_scale``
(0.1 for the 256-feature EDSR, 1 below; DESIGN 1.3). Used by ``sr-import``, the model loaders (``sr-eval``,
``sr-upscale``, ``sr-export``), ``init_from`` and ``sr-export --format pth``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "ARCHS",
    "LAYOUTS",
    "Detection",
    "check_exportable",
    "detect",
    "from_ours",
    "layout_of",
    "loader_hint",
    "strip_wrappers",
    "to_ours",
    "variant_label",
]

LAYOUTS = ("official", "basicsr")
ARCHS = ("edsr", "rcan")
RGB_RANGE = 255.0  # the released models' rgb_range / img_range; no file stores it
EDSR_WIDE_FEATS = 256  # the released EDSR (32 x 256) uses res_scale 0.1; EDSR-baseline (16 x 64) uses 1
EDSR_WIDE_RES_SCALE = 0.1
_MEANSHIFT = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")
_WRAPPERS = ("module.", "_orig_mod.")  # DataParallel / torch.compile prefixes

# (official, basicsr) name templates. {i} {g} {b} {j} are block / group / upsampler indices, {p} is weight|bias;
# {N} is the body tail index (= number of blocks or groups), {NB} the group tail index (= RCABs per group).
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "edsr": (
        ("head.0.{p}", "conv_first.{p}"),
        ("body.{i}.body.0.{p}", "body.{i}.conv1.{p}"),
        ("body.{i}.body.2.{p}", "body.{i}.conv2.{p}"),
        ("body.{N}.{p}", "conv_after_body.{p}"),
        ("tail.0.{j}.{p}", "upsample.{j}.{p}"),
        ("tail.1.{p}", "conv_last.{p}"),
    ),
    "rcan": (
        ("head.0.{p}", "conv_first.{p}"),
        ("body.{g}.body.{b}.body.0.{p}", "body.{g}.residual_group.{b}.rcab.0.{p}"),
        ("body.{g}.body.{b}.body.2.{p}", "body.{g}.residual_group.{b}.rcab.2.{p}"),
        ("body.{g}.body.{b}.body.3.conv_du.0.{p}", "body.{g}.residual_group.{b}.rcab.3.attention.1.{p}"),
        ("body.{g}.body.{b}.body.3.conv_du.2.{p}", "body.{g}.residual_group.{b}.rcab.3.attention.3.{p}"),
        ("body.{g}.body.{NB}.{p}", "body.{g}.conv.{p}"),
        ("body.{N}.{p}", "conv_after_body.{p}"),
        ("tail.0.{j}.{p}", "upsample.{j}.{p}"),
        ("tail.1.{p}", "conv_last.{p}"),
    ),
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _pattern(template: str, consts: Mapping[str, int]) -> re.Pattern[str]:
    parts, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        if name in consts:
            parts.append(str(consts[name]))
        elif name == "p":
            parts.append("(?P<p>weight|bias)")
        else:
            parts.append(rf"(?P<{name}>\d+)")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts) + r"\Z")


def _rename(
    state: Mapping[str, torch.Tensor], arch: str, consts: Mapping[str, int], src: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename by the templates of ``arch`` (src 0: official -> basicsr, 1: basicsr -> official); returns the
    renamed tensors and the keys no template matches."""
    rules = [(_pattern(pair[src], consts), pair[1 - src]) for pair in _RULES[arch]]
    out: dict[str, torch.Tensor] = {}
    unmatched: list[str] = []
    for key, value in state.items():
        for pattern, target in rules:
            m = pattern.match(key)
            if m:
                out[target.format(**consts, **m.groupdict())] = value
                break
        else:
            unmatched.append(key)
    return out, unmatched


def strip_wrappers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DataParallel's ``module.`` prefix and torch.compile's ``_orig_mod.`` part of every key."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix(_WRAPPERS[0]).replace(_WRAPPERS[1], "")
        out[key] = value
    return out


def _indices(keys: list[str] | set[str], regex: str) -> list[int]:
    pattern = re.compile(regex)
    return sorted({int(m.group(1)) for k in keys if (m := pattern.match(k))})


def _count(keys: set[str], regex: str, what: str) -> int:
    """Number of consecutive indices 0..n-1 matched by ``regex`` (one capture group); a gap is an error."""
    found = _indices(keys, regex)
    if found != list(range(len(found))):
        missing = sorted(set(range(max(found, default=-1) + 1)) - set(found))
        raise ValueError(f"incomplete state dict: {what} {missing[:5]} missing")
    return len(found)


def layout_of(state: Mapping[str, torch.Tensor]) -> str | None:
    """``official`` / ``basicsr`` for an EDSR or RCAN state dict in that layout, else None."""
    keys = set(state)
    if "conv_first.weight" in keys and "conv_last.weight" in keys:
        return "basicsr"
    if "head.0.weight" in keys and "tail.1.weight" in keys:
        return "official"
    return None


def _basicsr_arch(keys: set[str]) -> str | None:
    if any(".residual_group." in k for k in keys):
        return "rcan"
    if "body.0.conv1.weight" in keys:
        return "edsr"
    return None


def _official_arch(keys: set[str]) -> str | None:
    if "body.0.body.0.body.0.weight" in keys:
        return "rcan"
    if "body.0.body.0.weight" in keys:
        return "edsr"
    return None


def _depth_consts(keys: set[str], arch: str, layout: str) -> dict[str, int]:
    if layout == "basicsr":
        if arch == "edsr":
            return {"N": _count(keys, r"body\.(\d+)\.conv1\.weight\Z", "residual blocks")}
        return {
            "N": _count(keys, r"body\.(\d+)\.conv\.weight\Z", "residual groups"),
            "NB": _count(keys, r"body\.\d+\.residual_group\.(\d+)\.rcab\.0\.weight\Z", "RCABs"),
        }
    if arch == "edsr":
        return {"N": _count(keys, r"body\.(\d+)\.body\.0\.weight\Z", "residual blocks")}
    return {
        "N": _count(keys, r"body\.(\d+)\.body\.0\.body\.0\.weight\Z", "residual groups"),
        "NB": _count(keys, r"body\.\d+\.body\.(\d+)\.body\.0\.weight\Z", "RCABs"),
    }


def _default_meanshift() -> dict[str, torch.Tensor]:
    """Our frozen MeanShift at rgb_range 255 with the DIV2K mean: what BasicSR's constant ``mean`` does."""
    from sr_lit.models.blocks.common import MeanShift

    sub, add = MeanShift(RGB_RANGE, sign=-1), MeanShift(RGB_RANGE, sign=1)
    return {
        "sub_mean.weight": sub.weight.detach().clone(),
        "sub_mean.bias": sub.bias.detach().clone(),
        "add_mean.weight": add.weight.detach().clone(),
        "add_mean.bias": add.bias.detach().clone(),
    }


def to_ours(
    state: Mapping[str, torch.Tensor], add_meanshift: bool = True
) -> tuple[dict[str, torch.Tensor], str | None]:
    """Our (= official) key names for a state dict in any layout; (state, layout found or None).

    A BasicSR state dict is renamed and (``add_meanshift``) gets the MeanShift tensors its module holds as
    constants. Anything else (ours, official, unknown) comes back with only the wrapper prefixes stripped, for
    name matching by the caller.
    """
    state = strip_wrappers(state)
    layout = layout_of(state)
    if layout != "basicsr":
        return state, layout
    keys = set(state)
    arch = _basicsr_arch(keys)
    if arch is None:
        raise ValueError("BasicSR-style keys (conv_first, conv_last) but neither an EDSR nor an RCAN body")
    renamed, unmatched = _rename(state, arch, _depth_consts(keys, arch, "basicsr"), src=1)
    if unmatched:
        raise ValueError(f"keys that BasicSR's {arch.upper()} does not have: {_few(unmatched)}")
    return ({**_default_meanshift(), **renamed} if add_meanshift else renamed), layout


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


@dataclass(frozen=True)
class Detection:
    """What a plain EDSR/RCAN state dict is: layout, model spec, our-named tensors, and what had to be assumed."""

    layout: str
    spec: dict[str, Any]
    state: dict[str, torch.Tensor] = field(repr=False)
    assumed: tuple[str, ...] = ()


def _scale_from_upsampler(state: Mapping[str, torch.Tensor], n_feats: int) -> int:
    convs = _indices(list(state), r"tail\.0\.(\d+)\.weight\Z")
    if not convs:
        raise ValueError("no upsampler (tail.0.*.weight): cannot tell the scale")
    ratio = state[f"tail.0.{convs[0]}.weight"].shape[0] // n_feats
    if ratio == 9 and len(convs) == 1:
        return 3
    if ratio == 4 and len(convs) in (1, 2):
        return 2 ** len(convs)
    if ratio == 4:
        raise ValueError(f"a x{2 ** len(convs)} upsampler: sr_lit's EDSR/RCAN support x2, x3 and x4")
    raise ValueError(
        f"upsampler conv maps {n_feats} -> {ratio * n_feats} channels: not EDSR's x2/x3/x4 upsampler"
    )


def detect(
    state: Mapping[str, torch.Tensor],
    *,
    arch: str | None = None,
    scale: int | None = None,
    res_scale: float | None = None,
) -> Detection:
    """The model spec of a plain EDSR/RCAN state dict (official or BasicSR layout).

    ``arch`` / ``scale`` given: checked against the file. ``res_scale``: used as given; when None, EDSR takes the
    released models' value for the detected width (0.1 at 256 features, else 1) and RCAN 1 (its code ignores
    res_scale), and ``assumed`` says so. ValueError names what does not fit.
    """
    from sr_lit.models.registry import model_spec

    state, layout = to_ours(state)
    if layout is None:
        raise ValueError(
            "not an EDSR/RCAN state dict: neither the EDSR-PyTorch/RCAN keys (head.0.weight, tail.1.weight) "
            "nor BasicSR's (conv_first.weight, conv_last.weight)"
        )
    keys = set(state)
    found = _official_arch(keys)
    if found is None:
        raise ValueError("head and tail convs but no residual blocks (body.0.body.0.*): not EDSR or RCAN")
    if arch is not None and arch != found:
        raise ValueError(f"the file holds {found.upper()}, not {arch.upper()} (--arch {arch})")
    head = state["head.0.weight"]
    if head.ndim != 4 or head.shape[1] != 3 or head.shape[-1] != 3:
        raise ValueError(
            f"head conv {tuple(head.shape)}: sr_lit's EDSR/RCAN take 3 colour channels with 3x3 kernels"
        )
    n_feats = int(head.shape[0])
    consts = _depth_consts(keys, found, "official")
    detected_scale = _scale_from_upsampler(state, n_feats)
    if scale is not None and int(scale) != detected_scale:
        raise ValueError(f"the file's upsampler is x{detected_scale}, not x{scale} (--scale {scale})")
    assumed: list[str] = []
    if found == "edsr":
        if res_scale is None:
            res_scale = EDSR_WIDE_RES_SCALE if n_feats >= EDSR_WIDE_FEATS else 1.0
            assumed.append(
                f"res_scale {res_scale:g}: no file stores it; the released models use 0.1 at 256 features "
                "(EDSR) and 1 below (EDSR-baseline)"
            )
        backbone = {
            "arch": "edsr",
            "n_resblocks": consts["N"],
            "n_feats": n_feats,
            "res_scale": float(res_scale),
        }
        ca_key = "body.0.body.3.conv_du.0.weight"
    else:
        if res_scale is None:
            res_scale = 1.0  # the RCAN code ignores res_scale; BasicSR's default
        elif layout == "official" and float(res_scale) != 1.0:
            raise ValueError(
                f"res_scale {res_scale:g}: the RCAN code this file comes from ignores res_scale (its blocks add "
                "their full residual); only 1 reproduces it"
            )
        backbone = {
            "arch": "rcan",
            "n_resgroups": consts["N"],
            "n_resblocks": consts["NB"],
            "n_feats": n_feats,
            "res_scale": float(res_scale),
        }
        ca_key = "body.0.body.0.body.3.conv_du.0.weight"
    backbone["rgb_range"] = RGB_RANGE
    attention: dict[str, Any] = {"name": "none"}
    if ca_key in state:
        attention = {"name": "ca", "reduction": n_feats // int(state[ca_key].shape[0])}
    if layout == "basicsr":
        assumed.append("mean shift: BasicSR's constant DIV2K mean at img_range 255 (its modules' defaults)")
    elif not all(k in state for k in _MEANSHIFT):
        missing = [k for k in _MEANSHIFT if k not in state]
        state = {**_default_meanshift(), **state}
        assumed.append(f"mean shift: the DIV2K mean at rgb_range 255 ({', '.join(missing)} not in the file)")
    spec = model_spec(backbone, attention, {"name": "none"}, detected_scale)
    _check_fits(spec, state)
    return Detection(layout=layout, spec=spec, state=state, assumed=tuple(assumed))


def _check_fits(spec: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> None:
    """Every key and shape of the detected model, no other (built on the meta device: no memory, no init)."""
    from sr_lit.models.registry import build_model

    with torch.device("meta"):
        own = {k: tuple(v.shape) for k, v in build_model(**spec).state_dict().items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {s}"
        for k, s in own.items()
        if k in state and tuple(state[k].shape) != s
    ]
    problems = [
        f"{what}: {_few(keys)}"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shapes", shapes))
        if keys
    ]
    if problems:
        hint = (
            " (a plain state dict holds no model spec: for a model with HPF/FCA/MMCA give its .ckpt or .safetensors)"
            if unexpected
            else ""
        )
        raise ValueError(f"does not fit the detected {variant_label(spec)}: " + "; ".join(problems) + hint)


def _units(spec: Mapping[str, Any]) -> str:
    att, hpf = spec.get("attention") or {}, spec.get("hpf") or {}
    parts = []
    if att.get("name") == "ca":
        parts.append(f"CA (reduction {att.get('reduction')})")
    elif att.get("name", "none") != "none":
        parts.append(str(att["name"]).upper())
    if hpf.get("name", "none") != "none":
        parts.append("HPF")
    return "".join(f" + {p}" for p in parts)


def variant_label(spec: Mapping[str, Any]) -> str:
    """A readable name: the published variant's name when the spec is one, and its shape."""
    b = spec["backbone"]
    if b.get("arch") == "edsr":
        shape = (b.get("n_resblocks"), b.get("n_feats"), float(b.get("res_scale", 1.0)))
        name = {(16, 64, 1.0): "EDSR-baseline", (32, 256, 0.1): "EDSR"}.get(shape, "EDSR")  # type: ignore[arg-type]
        return f"{name} ({shape[0]} blocks x {shape[1]} features, res_scale {shape[2]:g}){_units(spec)}"
    if b.get("arch") == "rcan":
        dims = f"{b.get('n_resgroups')} groups x {b.get('n_resblocks')} RCABs x {b.get('n_feats')} features"
        return f"RCAN ({dims}){_units(spec)}"
    return f"{b.get('arch')}{_units(spec)}"


def _target(spec: Mapping[str, Any], layout: str) -> str:
    arch = spec["backbone"].get("arch")
    if layout == "basicsr":
        return f"BasicSR's {str(arch).upper()}"
    return "the EDSR-PyTorch code" if arch == "edsr" else "the RCAN code"


def check_exportable(spec: Mapping[str, Any], state: Mapping[str, torch.Tensor], layout: str) -> None:
    """ValueError naming what the target code lacks when this variant cannot be written in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    b = spec["backbone"]
    arch, att = b.get("arch"), (spec.get("attention") or {}).get("name", "none")
    target = _target(spec, layout)
    if arch not in ARCHS:
        raise ValueError(f"backbone {arch!r}: only EDSR and RCAN have a published layout")
    if (spec.get("hpf") or {}).get("name", "none") != "none":
        raise ValueError(
            f"{target} has no dynamic high-pass filter (this model has hpf={spec['hpf']['name']})"
        )
    if arch == "edsr" and att != "none":
        raise ValueError(f"{target} has no channel attention in its residual blocks (attention={att})")
    if arch == "rcan" and att != "ca":
        raise ValueError(
            f"{target} has only RCAN's channel attention (CA) in every RCAB, not attention={att}"
        )
    if arch == "rcan" and layout == "official" and float(b.get("res_scale", 1.0)) != 1.0:
        raise ValueError(f"the RCAN code ignores res_scale; this model uses res_scale {b['res_scale']}")
    if layout == "basicsr":
        mean = _meanshift_mean(state, float(b.get("rgb_range", RGB_RANGE)))
        if mean is None:
            raise ValueError(
                f"{target} has a fixed mean shift (no tensors), and this model's sub_mean/add_mean are not one"
            )


def _meanshift_mean(state: Mapping[str, torch.Tensor], rgb_range: float) -> tuple[float, ...] | None:
    """The RGB mean of a pure mean shift (identity weights, add = -sub = rgb_range * mean), else None."""
    try:
        sw, sb, aw, ab = (state[k].detach().float().cpu() for k in _MEANSHIFT)
    except KeyError:
        return None
    eye = torch.eye(3).view(3, 3, 1, 1)
    if not (torch.equal(sw, eye) and torch.equal(aw, eye) and torch.allclose(ab, -sb, atol=1e-5)):
        return None
    return tuple(round(float(v) / rgb_range, 6) for v in ab)


def from_ours(
    state: Mapping[str, torch.Tensor], spec: Mapping[str, Any], layout: str
) -> dict[str, torch.Tensor]:
    """Our state dict written in ``layout`` (after ``check_exportable``): a plain dict of contiguous CPU tensors."""
    check_exportable(spec, state, layout)
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in strip_wrappers(state).items()}
    if layout == "official":
        return plain
    arch = spec["backbone"]["arch"]
    consts = _depth_consts(set(plain), arch, "official")
    body = {k: v for k, v in plain.items() if k not in _MEANSHIFT}
    renamed, unmatched = _rename(body, arch, consts, src=0)
    if unmatched:
        raise ValueError(f"keys with no BasicSR name: {_few(unmatched)}")
    return renamed


def loader_hint(spec: Mapping[str, Any], state: Mapping[str, torch.Tensor], layout: str) -> str:
    """The options the target code needs to build the matching network (none of them is in the file)."""
    b, s = spec["backbone"], int(spec["scale"])
    rgb_range = float(b.get("rgb_range", RGB_RANGE))
    if layout == "official":
        if b["arch"] == "edsr":
            return (
                f"EDSR-PyTorch: --model EDSR --scale {s} --n_resblocks {b['n_resblocks']} --n_feats {b['n_feats']} "
                f"--res_scale {float(b['res_scale']):g} --rgb_range {rgb_range:g} --pre_train FILE"
            )
        red = spec["attention"].get("reduction", 16)
        return (
            f"RCAN code: --model RCAN --scale {s} --n_resgroups {b['n_resgroups']} --n_resblocks "
            f"{b['n_resblocks']} --n_feats {b['n_feats']} --reduction {red} --rgb_range {rgb_range:g} "
            "--pre_train FILE"
        )
    mean = _meanshift_mean(state, rgb_range)
    common = f"num_in_ch: 3, num_out_ch: 3, num_feat: {b['n_feats']}, upscale: {s}, img_range: {rgb_range:g}"
    common += f", rgb_mean: {list(mean) if mean else '?'}"
    if b["arch"] == "edsr":
        net = f"type: EDSR, {common}, num_block: {b['n_resblocks']}, res_scale: {float(b['res_scale']):g}"
    else:
        red = spec["attention"].get("reduction", 16)
        net = (
            f"type: RCAN, {common}, num_group: {b['n_resgroups']}, num_block: {b['n_resblocks']}, "
            f"squeeze_factor: {red}, res_scale: {float(b['res_scale']):g}"
        )
    return f"BasicSR network_g: {{{net}}}; weights under 'params'"
