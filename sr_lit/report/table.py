"""Aggregate jobs into one row per variant: mean +- std over seeds per validation set, delta vs plain backbone."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sr_lit.analysis.stats import N_RESAMPLES, PairedDelta, paired_delta
from sr_lit.report.collect import IGNORED_KEYS, Job

_SET_METRIC = re.compile(r"^val/([^/]+)/psnr_y$")
COST_LR_SIZE = (48, 48)


@dataclass
class Row:
    variant: dict[str, str]  # the varying overrides (seed excluded)
    label: str
    jobs: list[Job]
    attention: str = "?"
    hpf: str = "?"
    psnr: dict[str, list[float]] = field(default_factory=dict)  # set -> per-seed values
    ssim: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[str] = field(default_factory=list)
    params: int | None = None
    flops: int | None = None
    reference: Row | None = None  # the plain backbone at the same other settings
    # from metrics.json "per_image" (the final evaluation): set -> seed -> image -> Y-PSNR
    per_image: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # set -> band k -> seed -> image -> band Y-PSNR (when the jobs computed spectra)
    band_per_image: dict[str, list[dict[str, dict[str, float]]]] = field(default_factory=dict)
    # the bootstraps (10,000 resamples each) are asked for by the table, the CSV and the plots: computed once
    _paired: dict[tuple[str, bool], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_failed(self) -> int:
        return sum(j.status != "ok" for j in self.jobs)

    def delta(self, set_name: str) -> tuple[float, float] | None:
        """(mean difference, its standard error) of Y-PSNR vs the reference row."""
        if self.reference is None or not self.psnr.get(set_name) or not self.reference.psnr.get(set_name):
            return None
        a, b = self.psnr[set_name], self.reference.psnr[set_name]
        se = math.sqrt(_var(a) / len(a) + _var(b) / len(b))
        return statistics.fmean(a) - statistics.fmean(b), se

    def paired(self, set_name: str) -> PairedDelta | None:
        """Paired per-image Y-PSNR difference vs the reference (same image, same seed), averaged over seeds,
        with its 95 % bootstrap interval over images (sr_lit.analysis.stats); None without per-image rows."""
        if self.reference is None or self.reference is self:
            return None
        if (set_name, False) not in self._paired:
            mine, ref = self.per_image.get(set_name), self.reference.per_image.get(set_name)
            self._paired[set_name, False] = paired_delta(mine, ref) if mine and ref else None
        return self._paired[set_name, False]

    def paired_bands(self, set_name: str) -> list[PairedDelta | None]:
        """``paired`` for each frequency band's Y-PSNR; [] when either side has no band rows."""
        if self.reference is None or self.reference is self:
            return []
        if (set_name, True) not in self._paired:
            mine, ref = self.band_per_image.get(set_name), self.reference.band_per_image.get(set_name)
            ok = mine and ref and len(mine) == len(ref)
            self._paired[set_name, True] = (
                [paired_delta(m, r) if m and r else None for m, r in zip(mine, ref)] if ok else []
            )
        return self._paired[set_name, True]


@dataclass
class Report:
    rows: list[Row]
    sets: list[str]
    shared: dict[str, str]  # overrides common to every job
    jobs: list[Job]
    reference_note: str = ""

    @property
    def problems(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]

    def n_bands(self, set_name: str) -> int:
        return max((len(r.band_per_image.get(set_name) or []) for r in self.rows), default=0)

    @property
    def has_paired(self) -> bool:
        return any(r.paired(s) is not None for r in self.rows for s in self.sets)


def _var(x: Sequence[float]) -> float:
    return statistics.variance(x) if len(x) > 1 else 0.0


def _std(x: Sequence[float]) -> float:
    return statistics.stdev(x) if len(x) > 1 else 0.0


def _unit_name(job: Job, group: str) -> str:
    node = (job.config or {}).get(group)
    if isinstance(node, dict) and node.get("name"):
        return str(node["name"])
    return job.overrides.get(group, "?")


def _is_group_key(key: str, group: str) -> bool:
    return key == group or key.startswith(group + ".")


def model_cost_of(config: dict[str, Any] | None, cache: dict[str, dict[str, int]]) -> dict[str, int] | None:
    """params/FLOPs of the job's model (its resolved config) for one 48x48 LR input; cached per model spec."""
    if not config or not all(k in config for k in ("backbone", "attention", "hpf", "scale")):
        return None
    spec = {k: config[k] for k in ("backbone", "attention", "hpf", "scale")}
    key = json.dumps(spec, sort_keys=True, default=str)
    if key not in cache:
        try:
            from sr_lit.models.registry import build_model
            from sr_lit.models.summary import model_cost

            cost = model_cost(build_model(**spec), COST_LR_SIZE)
            cache[key] = {"params": int(cost["params"]), "flops": int(cost["flops"])}
        except Exception:  # noqa: BLE001 - a spec this version cannot build: fall back to metrics.json
            cache[key] = {}
    return cache[key] or None


def build_report(jobs: list[Job], compute_cost: bool = True) -> Report:
    keys = sorted(
        {k for j in jobs for k in j.overrides if k not in IGNORED_KEYS and not k.startswith("hydra.")}
    )
    values = {k: {j.overrides.get(k) for j in jobs} for k in keys}
    varying = [k for k in keys if len(values[k]) > 1]
    shared = {k: next(iter(values[k])) for k in keys if len(values[k]) == 1 and None not in values[k]}

    rows: dict[str, Row] = {}
    for job in jobs:
        variant = {k: job.overrides.get(k, "-") for k in varying}
        label = ", ".join(f"{k}={v}" for k, v in variant.items()) or "all jobs"
        row = rows.setdefault(label, Row(variant=variant, label=label, jobs=[]))
        row.jobs.append(job)

    sets: list[str] = []
    cost_cache: dict[str, dict[str, int]] = {}
    for row in rows.values():
        for job in row.jobs:
            if job.config and row.attention == "?":
                row.attention, row.hpf = _unit_name(job, "attention"), _unit_name(job, "hpf")
            if job.status != "ok":
                continue
            row.seeds.append(str(job.seed))
            _read_per_image(row, job)
            for key, value in job.metrics.items():
                m = _SET_METRIC.match(key)
                if m and isinstance(value, int | float) and math.isfinite(value):
                    name = m.group(1)
                    if name not in sets:
                        sets.append(name)
                    row.psnr.setdefault(name, []).append(float(value))
                    ssim = job.metrics.get(f"val/{name}/ssim_y")
                    if isinstance(ssim, int | float):
                        row.ssim.setdefault(name, []).append(float(ssim))
            if row.params is None:
                cost = model_cost_of(job.config, cost_cache) if compute_cost else None
                row.params = cost["params"] if cost else job.metrics.get("params")
                row.flops = cost["flops"] if cost else None

    sets = _order_like_config(sets, jobs)

    # reference: attention none + hpf none, same values for every variant key outside the two groups
    def others(r: Row) -> dict[str, str]:
        return {
            k: v
            for k, v in r.variant.items()
            if not (_is_group_key(k, "attention") or _is_group_key(k, "hpf"))
        }

    plain = [r for r in rows.values() if r.attention == "none" and r.hpf == "none" and r.psnr]
    for row in rows.values():
        row.reference = next((p for p in plain if others(p) == others(row)), None)
    note = ""
    if not plain:
        note = "no plain-backbone variant (attention=none, hpf=none) in these jobs: delta PSNR is left empty"
    elif any(r.reference is None for r in rows.values()):
        note = "some variants have no plain-backbone job at the same other settings: their delta is empty"
    return Report(rows=list(rows.values()), sets=sets, shared=shared, jobs=jobs, reference_note=note)


def _read_per_image(row: Row, job: Job) -> None:
    """metrics.json "per_image" rows [{set, image, psnr_y[, band_psnr_y]}] into the row, keyed by seed."""
    seed = str(job.seed)
    for rec in job.metrics.get("per_image") or []:
        if not isinstance(rec, dict) or not isinstance(rec.get("psnr_y"), int | float):
            continue
        set_name, image = str(rec.get("set")), str(rec.get("image"))
        row.per_image.setdefault(set_name, {}).setdefault(seed, {})[image] = float(rec["psnr_y"])
        bands = rec.get("band_psnr_y")
        if isinstance(bands, list) and bands:
            per_band = row.band_per_image.setdefault(set_name, [{} for _ in bands])
            for k, value in enumerate(bands[: len(per_band)]):
                # null = an infinite band PSNR (no error in that band): left out of the pairing
                per_band[k].setdefault(seed, {})[image] = math.inf if value is None else float(value)


def _order_like_config(sets: list[str], jobs: list[Job]) -> list[str]:
    """Validation sets in data.val_sets order (the first one is the monitored val/psnr_y), unknown ones last."""
    for job in jobs:
        val_sets = ((job.config or {}).get("data") or {}).get("val_sets")
        if isinstance(val_sets, list):
            names = [str(v.get("name") if isinstance(v, dict) else v) for v in val_sets]
            return sorted(sets, key=lambda s: names.index(s) if s in names else len(names))
    return sets


# ------------------------------------------------------------------------------------------------- outputs
def _fmt(values: Sequence[float], digits: int) -> str:
    if not values:
        return "—"
    if len(values) == 1:  # one seed: no spread to show
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {_std(values):.{digits}f}"


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """Plain rows for report.csv (numbers unformatted; std over seeds; delta with its standard error)."""
    out = []
    variant_keys = list(report.rows[0].variant) if report.rows else []
    for r in report.rows:
        rec: dict[str, Any] = {"variant": r.label, **{k: r.variant.get(k) for k in variant_keys}}
        rec.update({"attention": r.attention, "hpf": r.hpf, "n_seeds": len(r.seeds), "n_failed": r.n_failed})
        rec.update({"params": r.params, "flops_48x48": r.flops})
        for s in report.sets:
            p, q = r.psnr.get(s, []), r.ssim.get(s, [])
            d = r.delta(s)
            rec.update(
                {
                    f"{s}_psnr_mean": statistics.fmean(p) if p else None,
                    f"{s}_psnr_std": _std(p) if p else None,
                    f"{s}_ssim_mean": statistics.fmean(q) if q else None,
                    f"{s}_ssim_std": _std(q) if q else None,
                    f"{s}_dpsnr": d[0] if d else None,
                    f"{s}_dpsnr_se": d[1] if d else None,
                }
            )
            if report.has_paired:
                pd = r.paired(s)
                rec.update(
                    {
                        f"{s}_dpsnr_paired": pd.mean if pd else None,
                        f"{s}_dpsnr_ci_low": pd.low if pd else None,
                        f"{s}_dpsnr_ci_high": pd.high if pd else None,
                        f"{s}_dpsnr_ci_excludes_0": pd.excludes_zero if pd else None,
                        f"{s}_n_images_paired": pd.n_images if pd else None,
                        f"{s}_n_seeds_paired": pd.n_seeds if pd else None,
                        f"{s}_dpsnr_by_seed": _by_seed(pd, 4) if pd else None,
                        f"{s}_dpsnr_seeds_agree": pd.seeds_agree if pd else None,
                    }
                )
            n_bands = report.n_bands(s)
            bands = r.paired_bands(s)
            for k in range(n_bands):
                bd = bands[k] if k < len(bands) else None
                rec.update(
                    {
                        f"{s}_band{k}_dpsnr": bd.mean if bd else None,
                        f"{s}_band{k}_ci_low": bd.low if bd else None,
                        f"{s}_band{k}_ci_high": bd.high if bd else None,
                        f"{s}_band{k}_ci_excludes_0": bd.excludes_zero if bd else None,
                    }
                )
        out.append(rec)
    return out


def band_rows(report: Report) -> tuple[list[str], list[list[Any]]]:
    """Long-form per-band table (variant, set, band, delta, interval, flag) of the variants with spectra."""
    columns = ["variant", "set", "band", "dpsnr", "ci_low", "ci_high", "ci_excludes_0", "n_images", "n_seeds"]
    rows = []
    for s in report.sets:
        for r in report.rows:
            for k, b in enumerate(r.paired_bands(s)):
                if b is not None:
                    rows.append(
                        [r.label, s, k, b.mean, b.low, b.high, b.excludes_zero, b.n_images, b.n_seeds]
                    )
    return columns, rows


def _by_seed(pd: PairedDelta, digits: int) -> str:
    return " / ".join(f"{d:+.{digits}f}" for d in pd.per_seed)


def _fmt_paired(pd: PairedDelta, digits: int) -> str:
    return f"{pd.mean:+.{digits}f} [{pd.low:+.{digits}f}, {pd.high:+.{digits}f}]" + (
        " *" if pd.excludes_zero else ""
    )


def _band_markdown(report: Report) -> list[str]:
    """Per set, a table of the per-band paired ΔPSNR of each variant (when the jobs have spectra)."""
    lines: list[str] = []
    scales = {(j.config or {}).get("scale") for j in report.jobs if j.status == "ok"}
    scale = int(next(iter(scales))) if len(scales) == 1 and isinstance(next(iter(scales)), int) else 0
    for s in report.sets:
        n = report.n_bands(s)
        rows = [(r, r.paired_bands(s)) for r in report.rows]
        rows = [(r, b) for r, b in rows if any(x is not None for x in b)]
        if not n or not rows:
            continue
        lines += [
            "",
            f"### {s}: Y-PSNR difference per frequency band vs the plain backbone (dB, paired, 95 % interval)",
            "",
            f"Band k covers radial frequency [k/{n}, (k+1)/{n}) of the HR Nyquist (the last band also the corners)"
            + (
                f"; bands 0-{n // scale - 1} lie below the LR Nyquist (x{scale})"
                if scale and n // scale
                else ""
            )
            + ". * = the interval excludes 0.",
            "",
            "| variant | " + " | ".join(f"band {k}" for k in range(n)) + " |",
            "|---|" + "---|" * n,
        ]
        for r, bands in rows:
            cells = [_fmt_paired(b, 3) if b is not None else "—" for b in bands] + ["—"] * (n - len(bands))
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return lines


def _one_line(text: str) -> str:
    """Markdown-safe on one line (an error message may hold newlines and `|`, which would split a table)."""
    return " ".join(text.split()).replace("|", "\\|")


def markdown(report: Report, title: str) -> str:
    sets = report.sets
    head = ["variant", "n seeds", "params", "GFLOPs (48×48)"]
    for s in sets:
        head += [f"{s} PSNR-Y", f"{s} SSIM-Y", f"{s} ΔPSNR"] + (
            [f"{s} Δ by seed"] if report.has_paired else []
        )
    lines = [f"# {title}", ""]
    n_ok = sum(j.status == "ok" for j in report.jobs)
    lines.append(
        f"{len(report.jobs)} jobs: {n_ok} ok, {sum(j.status == 'failed' for j in report.jobs)} failed, "
        f"{sum(j.status == 'missing' for j in report.jobs)} missing. Values: mean ± std over seeds; "
        "ΔPSNR: vs the plain backbone (attention=none, hpf=none) at the same other settings, "
        + (
            "the paired per-image difference (same image, same seed) averaged over seeds, with its 95 % bootstrap "
            f"interval over images ({N_RESAMPLES} resamples, seeded); * = the interval excludes 0. It covers the "
            "choice of images, not the seed-to-seed spread: Δ by seed gives each seed's own paired difference "
            "(seeds in order; ✓ = all of one sign). A difference is worth a claim when it clears both."
            if report.has_paired
            else "± standard error of the difference of the seed means."
        )
    )
    if report.shared:
        lines += ["", "Shared settings: " + ", ".join(f"`{k}={v}`" for k, v in report.shared.items())]
    if report.reference_note:
        lines += ["", f"Note: {report.reference_note}."]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.rows:
        cells = [
            r.label + (f" ({r.n_failed} failed/missing)" if r.n_failed else ""),
            str(len(r.seeds)),
            f"{r.params:,}" if isinstance(r.params, int) else "—",
            f"{r.flops / 1e9:.3f}" if r.flops else "—",
        ]
        for s in sets:
            d = r.delta(s)
            pd = r.paired(s)
            if r.reference is r:
                ref = "ref"
            elif pd is not None:
                ref = _fmt_paired(pd, 3)
            else:
                ref = "—" if d is None else f"{d[0]:+.3f}" + (f" ± {d[1]:.3f}" if d[1] else "")
            cells += [_fmt(r.psnr.get(s, []), 3), _fmt(r.ssim.get(s, []), 4), ref]
            if report.has_paired:
                if r.reference is r or pd is None:
                    cells.append("—")
                else:
                    cells.append(_by_seed(pd, 3) + (" ✓" if pd.seeds_agree else ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines += _band_markdown(report)
    if report.problems:
        lines += ["", "Failed or missing jobs:", ""]
        lines += [
            f"- {j.status}: `{j.path}`" + (f" — {_one_line(j.error)}" if j.error else "")
            for j in report.problems
        ]
    return "\n".join(lines) + "\n"
