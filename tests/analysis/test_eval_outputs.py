"""Per-image rows and spectra where users get them: `sr-eval per_image=... spectrum=...` (JSON + CSV + PNG beside
it) and the end-of-training metrics.json; the set means stay exactly what they were."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from sr_lit.metrics.sr_metrics import evaluate_pair
from tests._shared import require_shared_data, shared_data_dir
from tests.cli._eval import run_eval


@pytest.mark.data
def test_sr_eval_per_image_csv_and_bicubic_spectrum(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_shared_data("Set5")
    common = ["baseline=bicubic", "scale=2", f"paths.data_dir={shared_data_dir()}", "data.sets=[Set5]"]
    plain = run_eval(monkeypatch, tmp_path / "plain", *common, "per_image=false")
    import sr_lit.analysis.plots as plots

    rendered: list[Path] = []
    plot = plots.plot_error_spectra
    monkeypatch.setattr(
        plots, "plot_error_spectra", lambda s, out, **kw: rendered.append(out) or plot(s, out, **kw)
    )
    full = run_eval(monkeypatch, tmp_path / "full", *common, "spectrum=true", "n_bands=6")
    # rendered once, beside the run folder's results.json; json_out's copy is that file, not a second rendering
    assert [p.name for p in rendered] == ["results_spectrum.png"]
    assert (tmp_path / "full" / "result_spectrum.png").read_bytes() == rendered[0].read_bytes()
    a, b = plain["sets"]["Set5"], full["sets"]["Set5"]
    # the set means are untouched by the new outputs, and still the published bicubic row (RCAN Table 3)
    assert (a["psnr_y"], a["ssim_y"], a["n_images"]) == (b["psnr_y"], b["ssim_y"], b["n_images"])
    assert abs(b["psnr_y"] - 33.66) <= 0.02 and abs(b["ssim_y"] - 0.9299) <= 0.002
    assert "per_image" not in a and not (tmp_path / "plain" / "result_per_image.csv").exists()

    rows = list(csv.DictReader((tmp_path / "full" / "result_per_image.csv").read_text().splitlines()))
    assert [r["image"] for r in rows] == ["baby", "bird", "butterfly", "head", "woman"]
    assert {r["set"] for r in rows} == {"Set5"} and "band5_psnr_y" in rows[0]
    for r in rows:
        assert float(r["psnr_y"]) == b["per_image"][r["image"]]["psnr_y"]
        # the bands split the image's MSE: together they give back its PSNR
        mse = sum(255.0**2 / 10 ** (float(r[f"band{k}_psnr_y"]) / 10) for k in range(6))
        assert 10 * math.log10(255.0**2 / mse) == pytest.approx(float(r["psnr_y"]), abs=1e-9)
    assert sum(float(r["psnr_y"]) for r in rows) / 5 == pytest.approx(b["psnr_y"], abs=1e-12)

    spec = b["spectrum"]
    assert spec["n_bands"] == 6 and spec["window"] == "hann" and len(spec["band_edges"]) == 7
    assert spec["model"] == spec["bicubic"] and spec["delta_band_psnr_y"] == [0.0] * 6  # bicubic vs itself
    # bicubic cannot create what the LR does not hold: most of its error lies above the LR Nyquist (r > 1/2)
    assert sum(spec["model"]["band_share"][3:]) > 0.7
    assert (tmp_path / "full" / "result_spectrum.png").stat().st_size > 0
    assert (tmp_path / "full" / "run" / "results_per_image.csv").read_text() == (
        tmp_path / "full" / "result_per_image.csv"
    ).read_text()


def test_sr_eval_rejects_bad_analysis_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    for override, key in (("n_bands=0", "n_bands"), ("spectrum=maybe", "spectrum")):
        with pytest.raises(SystemExit) as e:
            run_eval(monkeypatch, tmp_path / "bad", "baseline=bicubic", "scale=2", override)
        assert e.value.code == 2
        assert f"sr-eval: error: {key}=" in capsys.readouterr().err


def test_training_metrics_json_has_per_image_rows_spectra_and_band_metrics(
    compose_train, tmp_path: Path
) -> None:
    """metrics.json: one row per validation image whose PSNR/SSIM are what evaluate_pair gives for last.ckpt's
    output (computed here independently); the means of those rows are the set means; spectra per set; and
    module.val_bands=4 logs val/<Set>/band<k>_psnr_y during training; W&B gets the band table and figure."""
    from sr_lit.cli.train import train
    from sr_lit.models.loading import load_model

    run = tmp_path / "run"
    # 3 steps = one epoch of data=sample: one in-loop validation; logger=many: CSV (read below) and offline W&B
    overrides = ["trainer.max_steps=3", "logger=many", "logger.wandb.offline=true", "module.val_bands=4"]
    train(compose_train(*overrides, run_dir=run))
    metrics = json.loads((run / "metrics.json").read_text())
    rows = metrics["per_image"]
    sets = {r["set"] for r in rows}
    assert sets and all(f"val/{s}/psnr_y" in metrics for s in sets)

    model, _ = load_model(run / "checkpoints" / "last.ckpt")
    dm = compose_train("trainer.max_steps=2", run_dir=tmp_path / "unused").data
    from hydra.utils import instantiate

    datamodule = instantiate(dm)
    datamodule.setup("validate")
    for s in sets:
        mine = [r for r in rows if r["set"] == s]
        assert sum(r["psnr_y"] for r in mine) / len(mine) == pytest.approx(
            metrics[f"val/{s}/psnr_y"], abs=1e-12
        )
        ds = datamodule.val_datasets[s]
        assert [r["image"] for r in mine] == [ds[i]["name"] for i in range(len(ds))]
        for i, r in enumerate(mine[:2]):  # two images per set: the check is per image, not statistical
            item = ds[i]
            with torch.no_grad():
                sr = model(item["lr"][None])[0].clamp(0, 1)
            psnr, ssim = evaluate_pair(sr, item["hr"], 2)
            assert r["psnr_y"] == pytest.approx(psnr, abs=1e-6) and r["ssim_y"] == pytest.approx(
                ssim, abs=1e-8
            )
            assert len(r["band_psnr_y"]) == 8
        assert metrics["spectrum"][s]["n_bands"] == 8
    assert (run / "metrics_per_image.csv").is_file() and (run / "metrics_spectrum.png").is_file()
    # the W&B run got the band table and the spectrum figure (media files, written when logged)
    (table,) = run.glob("wandb/offline-run-*/files/media/table/final/band_table_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 8 * len(sets)  # one row per set and band
    assert list(run.glob("wandb/offline-run-*/files/media/images/final/error_spectrum_*.png"))
    logged = next(run.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    for s in sets:
        assert [f"val/{s}/band{k}_psnr_y" for k in range(4)] == [
            c for c in logged if c.startswith(f"val/{s}/band")
        ]


@pytest.mark.slow
def test_band_psnr_under_ddp_equals_the_single_process_spectrum(compose_train, tmp_path: Path) -> None:
    """2 spawned CPU ranks validate disjoint shards; BandPSNR's summed states give, per band, the mean over all
    images that the final single-process evaluation of the same weights (EMA off) computes from its spectra."""
    from sr_lit.lit.pipeline import train

    run = tmp_path / "ddp"
    overrides = [
        "trainer=ddp_cpu",
        "trainer.max_steps=2",
        "callbacks.ema=null",
        "logger=csv",
        "module.val_bands=8",
    ]
    metrics = train(compose_train(*overrides, run_dir=run))
    on_disk = json.loads((run / "metrics.json").read_text())
    in_loop = metrics["ddp_in_loop"]
    for name, spectrum in on_disk["spectrum"].items():
        assert in_loop[f"val/{name}/n_images"] == on_disk[f"val/{name}/n_images"]
        final = spectrum["model"]["band_psnr_y"]
        sharded = [in_loop[f"val/{name}/band{k}_psnr_y"] for k in range(8)]
        assert sharded == pytest.approx(final, abs=1e-4)
