"""sr-report's paired statistics on constructed job folders with known per-image numbers: the paired delta vs
the plain backbone (same image, same seed, averaged over seeds), its 95 % bootstrap interval and the flag."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sr_lit.analysis.stats import MIN_IMAGES, bootstrap_mean_ci, paired_delta

N_IMAGES = 40
SEEDS = (0, 1, 2)
N_BANDS = 4
# per image: a large spread between images (hard images, easy images) and per seed a large common offset (one
# seed trains better than another): neither may leak into a correctly paired difference
BASE = 30.0 + 3.0 * np.random.default_rng(7).standard_normal(N_IMAGES)
SEED_OFFSET = {0: 0.0, 1: 0.4, 2: -0.3}
IMAGES = [f"img{i:02d}" for i in range(N_IMAGES)]
# the known per-image effects of each variant (the same at every seed, except `seedy`)
RNG = np.random.default_rng(11)
EFFECTS = {
    ("none", "dynamic"): 0.10 + 0.02 * RNG.standard_normal(N_IMAGES),  # a clear gain
    ("mmca", "none"): 0.05 * RNG.standard_normal(N_IMAGES),  # noise around 0
    ("ca", "none"): np.full(N_IMAGES, -0.03),  # a constant loss: the interval collapses to it
}
BAND_EFFECT = {("none", "dynamic"): [0.0, 0.0, 0.05, 0.2]}  # HPF helps in the high bands only


def _job(root: Path, n: int, attention: str, hpf: str, seed: int) -> None:
    job = root / f"{n}_attention={attention},hpf={hpf},seed={seed}"
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"attention={attention}", f"hpf={hpf}", f"seed={seed}"]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    config = {"attention": {"name": attention}, "hpf": {"name": hpf}, "seed": seed, "scale": 2}
    (job / "config_resolved.yaml").write_text(json.dumps(config))
    effect = EFFECTS.get((attention, hpf), np.zeros(N_IMAGES))
    band_effect = BAND_EFFECT.get((attention, hpf), [0.0] * N_BANDS)
    psnr = BASE + SEED_OFFSET[seed] + effect
    rows = [
        {
            "set": "Set14",
            "image": name,
            "psnr_y": float(p),
            "ssim_y": 0.9,
            "band_psnr_y": [
                float(40 + 2 * k + b + SEED_OFFSET[seed] + BASE[i] / 10) for k, b in enumerate(band_effect)
            ],
        }
        for i, (name, p) in enumerate(zip(IMAGES, psnr))
    ]
    metrics = {"val/Set14/psnr_y": float(psnr.mean()), "val/Set14/ssim_y": 0.9, "per_image": rows}
    (job / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grid")
    variants = [("none", "none"), ("none", "dynamic"), ("mmca", "none"), ("ca", "none")]
    n = 0
    for attention, hpf in variants:
        for seed in SEEDS:
            _job(root, n, attention, hpf, seed)
            n += 1
    return root


def _normal_interval(values: np.ndarray) -> tuple[float, float]:
    """mean +- 1.96 s / sqrt(n): the large-sample interval the bootstrap must approach (independent of it)."""
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def test_report_pairs_images_and_seeds_and_flags_intervals(grid: Path, tmp_path: Path) -> None:
    from sr_lit.cli.report import main

    out = tmp_path / "out"
    assert main([str(grid), "--out", str(out), "--no-cost", "--wandb", "off"]) == 0
    rows = {r["variant"]: r for r in csv.DictReader((out / "report.csv").read_text().splitlines())}
    hpf, mmca, ca = (
        rows["attention=none, hpf=dynamic"],
        rows["attention=mmca, hpf=none"],
        rows["attention=ca, hpf=none"],
    )

    # the delta is the known mean effect: the seed offsets and the image spread cancel in the pairing
    for row, key in ((hpf, ("none", "dynamic")), (mmca, ("mmca", "none")), (ca, ("ca", "none"))):
        effect = EFFECTS[key]
        assert float(row["Set14_dpsnr_paired"]) == pytest.approx(effect.mean(), abs=1e-9)
        assert int(row["Set14_n_images_paired"]) == N_IMAGES and int(row["Set14_n_seeds_paired"]) == 3
        low, high = float(row["Set14_dpsnr_ci_low"]), float(row["Set14_dpsnr_ci_high"])
        if effect.std() > 0:  # the percentile bootstrap of a mean of 40 approaches the normal-theory interval
            n_low, n_high = _normal_interval(effect)
            assert low == pytest.approx(n_low, abs=0.15 * (n_high - n_low))
            assert high == pytest.approx(n_high, abs=0.15 * (n_high - n_low))
    # the flag: every image of HPF gains (> 0.03 dB), so every resampled mean is > 0; CA loses exactly 0.03 dB
    # everywhere (interval [-0.03, -0.03]); MMCA's effect is noise around 0 and its interval must hold 0
    assert EFFECTS[("none", "dynamic")].min() > 0 and hpf["Set14_dpsnr_ci_excludes_0"] == "True"
    assert float(ca["Set14_dpsnr_ci_low"]) == pytest.approx(-0.03) == float(ca["Set14_dpsnr_ci_high"])
    assert ca["Set14_dpsnr_ci_excludes_0"] == "True"
    assert float(mmca["Set14_dpsnr_ci_low"]) < 0 < float(mmca["Set14_dpsnr_ci_high"])
    assert mmca["Set14_dpsnr_ci_excludes_0"] == "False"
    # seed by seed: the seed offsets cancel in the pairing, so each seed shows HPF's mean effect
    by_seed = [float(x) for x in hpf["Set14_dpsnr_by_seed"].split(" / ")]
    assert by_seed == pytest.approx([EFFECTS[("none", "dynamic")].mean()] * 3, abs=1e-4)
    assert hpf["Set14_dpsnr_seeds_agree"] == "True"

    # per band: HPF's known band effects, exact intervals (no per-image spread in the band effects)
    for k, b in enumerate(BAND_EFFECT[("none", "dynamic")]):
        assert float(hpf[f"Set14_band{k}_dpsnr"]) == pytest.approx(b, abs=1e-9)
        assert float(hpf[f"Set14_band{k}_ci_low"]) == pytest.approx(b, abs=1e-9)
        assert hpf[f"Set14_band{k}_ci_excludes_0"] == str(b != 0)

    md = (out / "report.md").read_text()
    assert "bootstrap" in md and "10000 resamples" in md
    d = EFFECTS[("none", "dynamic")]
    lo, hi = float(hpf["Set14_dpsnr_ci_low"]), float(hpf["Set14_dpsnr_ci_high"])
    assert f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] *" in md
    assert "Set14: Y-PSNR difference per frequency band" in md and "+0.200 [+0.200, +0.200] *" in md
    assert (out / "report.png").stat().st_size > 0 and (out / "report_bands.png").stat().st_size > 0
    # the unpaired difference of seed means (kept beside it) has the same mean
    assert float(hpf["Set14_dpsnr"]) == pytest.approx(d.mean(), abs=1e-9)


def test_paired_delta_uses_common_seeds_and_images_only() -> None:
    ref = {"0": {"a": 30.0, "b": 31.0, "c": 29.0}, "1": {"a": 30.5, "b": 31.5, "c": 29.5}}
    var = {"0": {"a": 30.2, "b": 31.2}, "1": {"a": 30.5, "b": 31.9, "c": 30.0}, "2": {"a": 99.0, "b": 99.0}}
    pd = paired_delta(var, ref)
    # seeds 0 and 1 (2 is unpaired); images a, b (c is missing at seed 0); a: (0.2 + 0.0) / 2, b: (0.2 + 0.4) / 2
    assert pd is not None and pd.n_seeds == 2 and pd.images == ("a", "b")
    assert pd.per_image == pytest.approx((0.1, 0.3)) and pd.mean == pytest.approx(0.2)
    # seed by seed over the same images: seed 0 (0.2 + 0.2) / 2, seed 1 (0.0 + 0.4) / 2; both positive
    assert pd.seeds == ("0", "1") and pd.per_seed == pytest.approx((0.2, 0.2)) and pd.seeds_agree
    split = paired_delta({"0": {"a": 30.5, "b": 31.5}, "1": {"a": 30.4, "b": 31.4}}, ref)
    assert split is not None and split.per_seed == pytest.approx((0.5, -0.1)) and not split.seeds_agree
    assert paired_delta({"5": {"a": 1.0}}, ref) is None
    # two images, both up: an interval above 0, but too few images to call it a difference
    assert pd.low > 0 and not pd.excludes_zero
    five = {"0": {f"i{k}": 30.0 for k in range(5)}}
    up = paired_delta({"0": {f"i{k}": 30.1 + 0.01 * k for k in range(5)}}, five)
    assert up is not None and up.n_images == MIN_IMAGES == 5 and up.excludes_zero


def test_bootstrap_is_seeded_and_covers_the_mean() -> None:
    values = np.random.default_rng(3).normal(0.1, 0.2, size=25)
    a, b = bootstrap_mean_ci(values), bootstrap_mean_ci(values)
    assert a == b and a[0] < values.mean() < a[1]
    assert bootstrap_mean_ci(np.array([0.5])) == (0.5, 0.5)


def test_report_logs_the_band_table_to_wandb_offline(grid: Path, tmp_path: Path) -> None:
    from sr_lit.cli.report import main

    assert main([str(grid), "--out", str(tmp_path), "--no-cost", "--wandb", "on"]) == 0
    # the media files are written when logged (the binary run file is flushed asynchronously)
    (table,) = tmp_path.glob("wandb/offline-run-*/files/media/table/ablation_band_table_*.table.json")
    logged = json.loads(table.read_text())
    assert logged["columns"][:4] == ["variant", "set", "band", "dpsnr"]
    assert len(logged["data"]) == 3 * N_BANDS  # 3 variants vs the plain backbone, 4 bands each
    assert list(tmp_path.glob("wandb/offline-run-*/files/media/images/ablation_bands_plot_*.png"))
