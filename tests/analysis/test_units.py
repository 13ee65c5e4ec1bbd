"""What the units learned (sr_lit.analysis.units): MMCA weights on the DCT grid, HPF frequency responses checked
against the analytic DFT of a fixed filter, and sr-inspect end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sr_lit.analysis.spectrum import radial_frequency
from sr_lit.analysis.units import energy_passed, highpass_response, hpf_responses, mmca_weights
from sr_lit.models.blocks.attention import MMCAttention
from sr_lit.models.blocks.dct import freq_indices
from sr_lit.models.blocks.hpf import DynamicHPF
from sr_lit.models.registry import build_model

BINOMIAL = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])) / 16


def _binomial_response(fy: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """|1 - DFT of the 3x3 binomial| at f (x Nyquist): its DFT is cos^2(pi f_y / 2) cos^2(pi f_x / 2), real, >= 0."""
    return 1 - torch.cos(math.pi * fy / 2) ** 2 * torch.cos(math.pi * fx / 2) ** 2


def _fixed_lowpass_hpf(channels: int = 16, groups: int = 4) -> DynamicHPF:
    """A DynamicHPF whose predicted kernels are always the binomial low-pass: no predictor weights, and BatchNorm
    (eval, running stats 0/1) adds log(binomial tap) to each tap's logit, so the group softmax returns the taps."""
    hpf = DynamicHPF(channels, kernel_size=3, groups=groups, bn=True)
    with torch.no_grad():
        hpf.predictor.weight.zero_()
        hpf.norm.bias.copy_(BINOMIAL.log().flatten().repeat(groups))
        hpf.norm.weight.fill_(1.0)
    return hpf.eval()


@pytest.mark.parametrize("freq", ["top16", "low16", [[0, 0], [3, 4]]])
def test_mmca_with_zero_logits_has_uniform_weights_at_its_dct_frequencies(freq) -> None:
    unit = MMCAttention(32, pool_size=7, freq=freq)
    assert torch.count_nonzero(unit.freq_logits) == 0  # the initialisation
    (rec,) = mmca_weights(torch.nn.Sequential(unit))
    k = len(freq_indices(freq, 7))
    assert rec["weights"] == pytest.approx([1.0 / k] * k, abs=1e-15)
    assert rec["effective_k"] == pytest.approx(k) and rec["entropy_ratio"] == pytest.approx(1.0)
    # (u, v) recovered from the unit's bases are the configured frequencies, in order
    assert [tuple(f) for f in rec["freqs"]] == [tuple(f) for f in freq_indices(freq, 7)]


def test_mmca_learned_weights_are_the_softmax_of_the_logits() -> None:
    unit = MMCAttention(32, pool_size=14, freq="pre8")
    with torch.no_grad():
        unit.freq_logits.copy_(torch.arange(8.0))
    (rec,) = mmca_weights(torch.nn.Sequential(unit))
    assert rec["weights"] == pytest.approx(torch.softmax(torch.arange(8.0, dtype=torch.float64), 0).tolist())
    assert rec["max_weight_freq"] == [12, 12]  # pre8's last (6, 6), scaled by 14 // 7
    assert rec["effective_k"] < 8


def test_hpf_forced_to_a_fixed_lowpass_has_that_filters_response() -> None:
    hpf = _fixed_lowpass_hpf()
    x = torch.randn(1, 16, 40, 40, generator=torch.Generator().manual_seed(0))
    kernels = hpf.kernels(x).detach()
    assert torch.allclose(kernels[0, :9, 5, 7], BINOMIAL.flatten(), atol=1e-6)
    f, response = highpass_response(kernels, 3, 4)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    assert torch.allclose(response, _binomial_response(fy, fx), atol=1e-6)
    assert float(response[16, 16]) == pytest.approx(0.0, abs=1e-6)  # zero DC gain: HPF(constant) = 0
    assert float(response[0, 0]) == pytest.approx(1.0, abs=1e-6)  # the binomial's zero at (Nyquist, Nyquist)


@pytest.mark.parametrize("tap", [5, 7])  # (row 1, col 2): the right neighbour; (row 2, col 1): the one below
def test_response_matches_what_the_module_does_to_a_sinusoid(tap: int) -> None:
    """An asymmetric fixed kernel (all weight on one neighbour) checks the tap geometry against DynamicHPF itself:
    the amplitude the module gives a sinusoid in the interior is the |H| highpass_response predicts at its f."""
    hpf = DynamicHPF(8, kernel_size=3, groups=2, bn=True)
    with torch.no_grad():
        hpf.predictor.weight.zero_()
        logits = torch.full((9,), -40.0)
        logits[tap] = 0.0
        hpf.norm.bias.copy_(logits.repeat(2))
    hpf.eval()
    f_y, f_x = 0.25, 0.625  # x Nyquist
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    phase = math.pi * (f_y * yy + f_x * xx)
    x = torch.cos(phase).expand(1, 8, 48, 48).contiguous()
    with torch.no_grad():
        out = hpf(x)[0, 0, 4:-4, 4:-4].double()
    # out = a cos(phase) + b sin(phase) in the interior (a linear filter shifts and scales a sinusoid)
    basis = torch.stack([torch.cos(phase), torch.sin(phase)], dim=-1)[4:-4, 4:-4].reshape(-1, 2).double()
    coef = torch.linalg.lstsq(basis, out.reshape(-1, 1)).solution
    measured = float(coef.norm())
    f, response = highpass_response(hpf.kernels(x).detach(), 3, 2, grid_points=17)
    i, j = int(torch.argmin((f - f_y).abs())), int(torch.argmin((f - f_x).abs()))
    assert measured == pytest.approx(float(response[i, j]), abs=1e-4)
    shift = f_x if tap == 5 else f_y  # |1 - e^{i pi f d}| = 2 |sin(pi f d / 2)|
    assert float(response[i, j]) == pytest.approx(2 * abs(math.sin(math.pi * shift / 2)), abs=1e-6)


def test_energy_passed_by_a_fixed_filter_on_white_features_is_its_mean_squared_response() -> None:
    """White features: the high-pass output's power is |H(f)|^2 times the input's at every f, so the energy passed
    above half Nyquist is the mean of |H|^2 over those frequencies (up to the reflect-padded border)."""
    hpf = _fixed_lowpass_hpf()
    x = torch.randn(2, 16, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        rec = energy_passed(x, hpf(x))
    fy = torch.fft.fftfreq(96, dtype=torch.float64)[:, None] * 2
    fx = torch.fft.fftfreq(96, dtype=torch.float64)[None, :] * 2
    h2 = _binomial_response(fy, fx) ** 2
    above = radial_frequency(96, 96) > 0.5
    assert rec["passed_above_half_nyquist"] == pytest.approx(float(h2[above].mean()), rel=0.03)
    assert rec["passed_below_half_nyquist"] == pytest.approx(float(h2[~above].mean()), rel=0.05)


def test_hpf_responses_cover_every_placement_of_a_model() -> None:
    spec = dict(
        backbone=dict(arch="edsr", n_resblocks=4, n_feats=16, res_scale=1.0, rgb_range=255),
        attention=dict(name="none"),
        hpf=dict(name="dynamic", kernel_size=3, groups=4, every=2),
        scale=2,
    )
    model = build_model(**spec).eval()
    units = hpf_responses(model, torch.rand(1, 3, 24, 28))
    names = [n for n, m in model.named_modules() if isinstance(m, DynamicHPF)]
    assert [u["unit"] for u in units] == names and len(names) == 2
    for u in units:
        assert u["feature_size"] == [24, 28]
        assert len(u["mean_response"]) == len(u["grid_freq"]) == 33
        assert u["radial_response"][0] == pytest.approx(
            0.0, abs=1e-6
        )  # zero DC gain for every pixel's kernel


def test_sr_inspect_writes_json_and_pngs(tmp_path: Path) -> None:
    from sr_lit.cli.inspect import main
    from sr_lit.models.loading import save_safetensors

    spec = dict(
        backbone=dict(arch="edsr", n_resblocks=2, n_feats=16, res_scale=1.0, rgb_range=255),
        attention=dict(name="mmca", reduction=4, pool_size=7, freq="low16"),
        hpf=dict(name="dynamic", kernel_size=3, groups=4, every=2),
        scale=2,
    )
    ckpt = save_safetensors(build_model(**spec), spec, tmp_path / "m.safetensors")
    out = tmp_path / "inspect"
    assert main([str(ckpt), "--out", str(out), "--max-side", "48"]) == 0
    rec = json.loads((out / "inspect.json").read_text())
    assert len(rec["mmca"]) == 2 and len(rec["hpf"]) == 1 and rec["image"]["lr_size"] == [48, 48]
    assert (out / "mmca_weights.png").stat().st_size > 0 and (out / "hpf_response.png").stat().st_size > 0
    with pytest.raises(SystemExit) as e:  # never replaces its files without --overwrite
        main([str(ckpt), "--out", str(out)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "missing.ckpt"), "--out", str(out)])
    assert e.value.code == 2
