"""Published weights in and out (sr_lit.models.layouts): the EDSR-PyTorch / RCAN and BasicSR key layouts, detection
of a plain state dict's architecture, and the plain-state-dict export.

The key lists come from tests/models/fixtures/published_layouts.json (written from the official modules), and
the imported models are checked against a forward pass computed straight from the official state dict
(tests/_published.py), so neither side is checked against itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_lit.bench.common import spec_for
from sr_lit.errors import CheckpointError, ExportError
from sr_lit.export.pth import export_pth
from sr_lit.models import layouts
from sr_lit.models.loading import load_model, read_weights
from sr_lit.models.registry import build_model
from tests._published import Dims, layouts_fixture, published_rows, random_published_state, reference_forward

PUBLISHED = {  # backbone config -> dimensions of the released model
    "edsr_baseline": Dims("edsr", n_feats=64, n_blocks=16),
    "edsr": Dims("edsr", n_feats=256, n_blocks=32),
    "rcan": Dims("rcan", n_feats=64, n_blocks=20, n_groups=10),
}
SMALL_EDSR = Dims("edsr", n_feats=16, n_blocks=2)
SMALL_RCAN = Dims("rcan", n_feats=16, n_blocks=2, n_groups=2, reduction=4)


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("backbone", list(PUBLISHED))
def test_published_variants_have_the_official_keys_and_shapes(backbone: str, scale: int) -> None:
    attention = "ca" if backbone == "rcan" else "none"
    with torch.device("meta"):  # shapes only: the 40 M-parameter EDSR costs nothing
        model = build_model(**spec_for(backbone, attention, "none", scale))
    expected = {official: shape for official, _, shape in published_rows(PUBLISHED[backbone], scale)}
    assert _shapes(model.state_dict()) == expected
    if backbone == "rcan":
        assert set(layouts_fixture()["spandrel_rcan_detection"]) <= set(expected)


def _small_spec(dims: Dims, scale: int, res_scale: float = 1.0) -> dict:
    if dims.arch == "edsr":
        return spec_for("edsr_baseline", "none", "none", scale, n_resblocks=dims.n_blocks, n_feats=dims.n_feats,
                        res_scale=res_scale)  # fmt: skip
    from sr_lit.models.registry import model_spec

    backbone = {"arch": "rcan", "n_resgroups": dims.n_groups, "n_resblocks": dims.n_blocks,
                "n_feats": dims.n_feats, "res_scale": 1.0, "rgb_range": 255}  # fmt: skip
    return model_spec(backbone, {"name": "ca", "reduction": dims.reduction}, None, scale)


@pytest.mark.parametrize("layout", ["official", "basicsr"])
@pytest.mark.parametrize(("dims", "scale"), [(SMALL_EDSR, 3), (SMALL_RCAN, 4), (SMALL_RCAN, 2)])
def test_pth_export_has_exactly_the_published_keys(
    tmp_path: Path, dims: Dims, scale: int, layout: str
) -> None:
    spec = _small_spec(dims, scale)
    torch.manual_seed(0)
    model = build_model(**spec).eval()
    out = tmp_path / "m.pth"
    result = export_pth(model, spec, out, layout=layout)
    assert result.diffs and result.max_diff == 0.0
    obj = torch.load(out, weights_only=True)
    state = obj if layout == "official" else obj["params"]
    assert list(obj) == (list(state) if layout == "official" else ["params"])
    rows = published_rows(dims, scale)
    expected = {
        (o if layout == "official" else b): shape for o, b, shape in rows if layout == "official" or b
    }
    assert _shapes(state) == expected
    if dims.arch == "rcan" and layout == "official":
        assert set(layouts_fixture()["spandrel_rcan_detection"]) <= set(state)
    # the file holds the model's tensors, renamed
    names = {o: (o if layout == "official" else b) for o, b, _ in rows}
    for key, value in model.state_dict().items():
        if names.get(key):
            assert torch.equal(state[names[key]], value), key


def _save(state: dict, path: Path, legacy: bool = False) -> Path:
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize(
    ("dims", "scale", "layout", "variant"),
    [
        (SMALL_EDSR, 2, "official", "plain"),
        (SMALL_EDSR, 3, "basicsr", "params"),
        (SMALL_RCAN, 4, "official", "legacy"),  # the RCAN release was written by PyTorch 0.4 (pre-zip format)
        (SMALL_RCAN, 2, "official", "dataparallel"),
        (SMALL_RCAN, 3, "basicsr", "params_ema"),
        (Dims("edsr", n_feats=256, n_blocks=1), 2, "official", "plain"),  # EDSR's width: res_scale 0.1
    ],
)
def test_released_layouts_are_detected_and_compute_the_published_forward(
    tmp_path: Path, dims: Dims, scale: int, layout: str, variant: str
) -> None:
    state = random_published_state(dims, scale, layout, seed=1)
    if variant == "dataparallel":
        state = {f"module.{k}": v for k, v in state.items()}
    obj: dict = {variant: state} if variant in ("params", "params_ema") else state
    path = _save(obj, tmp_path / ("m.pth" if layout == "basicsr" else "m.pt"), legacy=variant == "legacy")
    loaded = read_weights(path)
    b = loaded.spec["backbone"]
    assert loaded.source == layout and loaded.spec["scale"] == scale and b["arch"] == dims.arch
    assert b["n_feats"] == dims.n_feats and b["n_resblocks"] == dims.n_blocks
    if dims.arch == "rcan":
        assert b["n_resgroups"] == dims.n_groups and b["res_scale"] == 1.0
        assert loaded.spec["attention"] == {"name": "ca", "reduction": dims.reduction}
    else:
        assert loaded.spec["attention"] == {"name": "none"}
        assert b["res_scale"] == (0.1 if dims.n_feats == 256 else 1.0)
        assert any("res_scale" in a for a in loaded.assumed)  # said, not silently taken
    model, _ = load_model(path)
    official = random_published_state(dims, scale, "official", seed=1)
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got = model(x)
        ref = reference_forward(official, dims, scale, x, res_scale=b["res_scale"])
    assert got.shape == (1, 3, 9 * scale, 11 * scale)
    assert float((got - ref).abs().max()) <= 1e-5 * max(1.0, float(ref.abs().max()))


def test_basicsr_params_ema_is_preferred(tmp_path: Path) -> None:
    raw = random_published_state(SMALL_EDSR, 2, "basicsr", seed=1)
    ema = random_published_state(SMALL_EDSR, 2, "basicsr", seed=2)
    both = read_weights(_save({"params": raw, "params_ema": ema}, tmp_path / "both.pth"))
    assert both.where == "'params_ema'"
    assert torch.equal(both.state["head.0.weight"], ema["conv_first.weight"])
    only = read_weights(_save({"params": raw}, tmp_path / "raw.pth"))
    assert torch.equal(only.state["head.0.weight"], raw["conv_first.weight"])


class _NotATensor:  # pickled by reference: what weights_only loading must refuse
    pass


def test_detection_refusals_are_one_line(tmp_path: Path) -> None:
    official = random_published_state(SMALL_RCAN, 2, "official")
    path = _save(official, tmp_path / "rcan.pt")
    with pytest.raises(CheckpointError, match="holds RCAN, not EDSR"):
        read_weights(path, arch="edsr")
    with pytest.raises(CheckpointError, match="upsampler is x2, not x4"):
        read_weights(path, scale=4)
    gap = {k: v for k, v in official.items() if not k.startswith("body.0.body.1.")}
    with pytest.raises(CheckpointError, match=r"missing keys: body\.0\.body\.1\.body\.0\.weight"):
        read_weights(_save(gap, tmp_path / "gap.pt"))
    extra = {
        **official,
        "body.0.body.0.hpf.predictor.weight": torch.zeros(1),
    }  # an HPF model without its spec
    with pytest.raises(CheckpointError, match=r"unexpected keys: body\.0\.body\.0\.hpf\.predictor\.weight"):
        read_weights(_save(extra, tmp_path / "extra.pt"))
    with pytest.raises(CheckpointError, match="not an EDSR/RCAN state dict"):
        read_weights(_save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pt"))
    x8 = random_published_state(SMALL_EDSR, 4, "official")
    x8["tail.0.4.weight"], x8["tail.0.4.bias"] = x8["tail.0.2.weight"], x8["tail.0.2.bias"]
    with pytest.raises(CheckpointError, match="x8 upsampler"):
        read_weights(_save(x8, tmp_path / "x8.pt"))
    unsafe = _save({"model": _NotATensor()}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_weights(unsafe)


@pytest.mark.parametrize("layout", ["official", "basicsr"])
@pytest.mark.parametrize(
    ("backbone", "attention", "hpf", "needle"),
    [
        ("edsr_tiny", "none", "dynamic", "no dynamic high-pass filter"),
        ("edsr_tiny", "mmca", "none", "no channel attention"),
        ("edsr_tiny", "ca", "none", "no channel attention"),
        ("rcan", "fca", "none", "only RCAN's channel attention"),
        ("rcan", "none", "none", "only RCAN's channel attention"),
        ("rcan", "mmca", "dynamic", "no dynamic high-pass filter"),
    ],
)
def test_export_refuses_what_the_target_code_lacks(
    tmp_path: Path, layout: str, backbone: str, attention: str, hpf: str, needle: str
) -> None:
    from tests.export._variants import variant_model, variant_spec

    spec = variant_spec(backbone, attention, hpf)
    target = "BasicSR" if layout == "basicsr" else ("EDSR-PyTorch" if backbone != "rcan" else "the RCAN code")
    with pytest.raises(ExportError, match=needle) as err:
        export_pth(variant_model(spec), spec, tmp_path / "m.pth", layout=layout)
    assert target in str(err.value) and not (tmp_path / "m.pth").exists()


def test_rcan_res_scale_cannot_go_to_the_rcan_code(tmp_path: Path) -> None:
    spec = _small_spec(SMALL_RCAN, 2)
    spec["backbone"]["res_scale"] = 0.5
    model = build_model(**spec)
    with pytest.raises(ExportError, match="ignores res_scale"):
        export_pth(model, spec, tmp_path / "m.pt", layout="official")
    export_pth(model, spec, tmp_path / "m.pth", layout="basicsr")  # BasicSR's RCAB has res_scale
    assert read_weights(tmp_path / "m.pth", res_scale=0.5).spec == spec
    # and reading a file of the RCAN code with another res_scale would silently change what it computes
    export_pth(build_model(**_small_spec(SMALL_RCAN, 2)), _small_spec(SMALL_RCAN, 2), tmp_path / "o.pt")
    with pytest.raises(ValueError, match="ignores res_scale"):
        read_weights(tmp_path / "o.pt", res_scale=0.5)


def test_basicsr_export_refuses_a_trained_mean_shift(tmp_path: Path) -> None:
    spec = _small_spec(SMALL_EDSR, 2)
    model = build_model(**spec)
    with torch.no_grad():
        model.sub_mean.weight.mul_(1.01)  # RCAN's code left MeanShift trainable: released files may differ
    with pytest.raises(ExportError, match="fixed mean shift"):
        export_pth(model, spec, tmp_path / "m.pth", layout="basicsr")
    export_pth(model, spec, tmp_path / "m.pt", layout="official")  # the official layout stores it
    assert torch.equal(read_weights(tmp_path / "m.pt").state["sub_mean.weight"], model.sub_mean.weight)


def test_variant_labels_name_the_published_models() -> None:
    assert layouts.variant_label(spec_for("edsr_baseline")).startswith("EDSR-baseline (16 blocks x 64")
    assert layouts.variant_label(spec_for("edsr")).startswith(
        "EDSR (32 blocks x 256 features, res_scale 0.1)"
    )
    label = layouts.variant_label(spec_for("rcan", "mmca", "dynamic"))
    assert label == "RCAN (10 groups x 20 RCABs x 64 features) + MMCA + HPF"
