"""Per-image rows and the files beside an evaluation's JSON: `<stem>_per_image.csv`, `<stem>_spectrum.png`."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sr_lit.utils.files import write_atomic

__all__ = [
    "band_table_rows",
    "final_record",
    "log_spectra_to_wandb",
    "per_image_csv",
    "per_image_rows",
    "spectra_of",
    "write_beside",
    "write_record_beside",
]


def per_image_rows(sets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """[{set, image, psnr_y, ssim_y[, band_psnr_y]}] from evaluate_datasets' {set: {per_image: {name: ...}}}."""
    rows = []
    for set_name, record in sets.items():
        for name, scores in (record.get("per_image") or {}).items():
            rows.append({"set": set_name, "image": name, **scores})
    return rows


def per_image_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text: set, image, psnr_y, ssim_y, then band<k>_psnr_y when the rows carry bands (empty = infinite)."""
    n_bands = max((len(r.get("band_psnr_y") or []) for r in rows), default=0)
    fields = ["set", "image", "psnr_y", "ssim_y"] + [f"band{k}_psnr_y" for k in range(n_bands)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        rec = {k: r.get(k) for k in ("set", "image", "psnr_y", "ssim_y")}
        rec.update({f"band{k}_psnr_y": v for k, v in enumerate(r.get("band_psnr_y") or [])})
        writer.writerow(rec)
    return buf.getvalue()


def spectra_of(sets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{set: spectrum record} of the sets that have one."""
    return {name: r["spectrum"] for name, r in sets.items() if r.get("spectrum")}


def final_record(sets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What the end-of-training metrics.json holds beside the set means: the per-image rows and the spectra."""
    record: dict[str, Any] = {"per_image": per_image_rows(sets)}
    spectra = spectra_of(sets)
    if spectra:
        record["spectrum"] = spectra
    return record


def write_record_beside(json_path: str | Path, record: Mapping[str, Any], title: str = "") -> dict[str, Path]:
    """Beside ``json_path``: `<stem>_per_image.csv` from record["per_image"] (rows) and `<stem>_spectrum.png` from
    record["spectrum"] ({set: spectrum}), each when present. Returns {"per_image"|"spectrum": path written}."""
    from sr_lit.analysis.plots import plot_error_spectra

    json_path = Path(json_path)
    written: dict[str, Path] = {}
    rows = record.get("per_image") or []
    if rows:
        written["per_image"] = json_path.with_name(f"{json_path.stem}_per_image.csv")
        write_atomic(written["per_image"], per_image_csv(list(rows)).encode())
    spectra = record.get("spectrum") or {}
    if spectra:
        written["spectrum"] = plot_error_spectra(
            spectra, json_path.with_name(f"{json_path.stem}_spectrum.png"), title=title
        )
    return written


def write_beside(
    json_path: str | Path, sets: Mapping[str, Mapping[str, Any]], title: str = ""
) -> dict[str, Path]:
    """``write_record_beside`` for an evaluation result's {set: {per_image, spectrum, ...}} (sr-eval's JSON)."""
    return write_record_beside(json_path, final_record(sets), title=title)


def band_table_rows(spectra: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of the per-band table: one row per set and band, model and bicubic band PSNR."""
    columns = [
        "set",
        "band",
        "r_low",
        "r_high",
        "model_psnr_y",
        "bicubic_psnr_y",
        "delta_psnr_y",
        "model_share",
    ]
    rows = []
    for set_name, rec in spectra.items():
        edges = rec["band_edges"]
        for k in range(int(rec["n_bands"])):
            rows.append(
                [
                    set_name,
                    k,
                    edges[k],
                    edges[k + 1],
                    rec["model"]["band_psnr_y"][k],
                    rec["bicubic"]["band_psnr_y"][k],
                    rec["delta_band_psnr_y"][k],
                    rec["model"]["band_share"][k],
                ]
            )
    return columns, rows


def log_spectra_to_wandb(experiment: Any, spectra: Mapping[str, Any] | None, png: Path | None) -> None:
    """Log the per-band table (wandb.Table) and the spectrum figure to a W&B run (``WandbLogger.experiment``)."""
    if not spectra:
        return
    import wandb

    columns, rows = band_table_rows(spectra)
    payload: dict[str, Any] = {"final/band_table": wandb.Table(columns=columns, data=rows)}
    if png is not None and Path(png).is_file():
        payload["final/error_spectrum"] = wandb.Image(str(png))
    experiment.log(payload)
