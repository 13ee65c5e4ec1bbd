"""Aggregate jobs into one row per variant: mean +- std over seeds per validation set, delta vs plain backbone."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
        out.append(rec)
    return out


def _one_line(text: str) -> str:
    """Markdown-safe on one line (an error message may hold newlines and `|`, which would split a table)."""
    return " ".join(text.split()).replace("|", "\\|")


def markdown(report: Report, title: str) -> str:
    sets = report.sets
    head = ["variant", "n seeds", "params", "GFLOPs (48×48)"]
    for s in sets:
        head += [f"{s} PSNR-Y", f"{s} SSIM-Y", f"{s} ΔPSNR"]
    lines = [f"# {title}", ""]
    n_ok = sum(j.status == "ok" for j in report.jobs)
    lines.append(
        f"{len(report.jobs)} jobs: {n_ok} ok, {sum(j.status == 'failed' for j in report.jobs)} failed, "
        f"{sum(j.status == 'missing' for j in report.jobs)} missing. Values: mean ± std over seeds; "
        "ΔPSNR: vs the plain backbone (attention=none, hpf=none) at the same other settings, ± standard error "
        "of the difference."
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
            if r.reference is r:
                ref = "ref"
            else:
                ref = "—" if d is None else f"{d[0]:+.3f}" + (f" ± {d[1]:.3f}" if d[1] else "")
            cells += [_fmt(r.psnr.get(s, []), 3), _fmt(r.ssim.get(s, []), 4), ref]
        lines.append("| " + " | ".join(cells) + " |")
    if report.problems:
        lines += ["", "Failed or missing jobs:", ""]
        lines += [
            f"- {j.status}: `{j.path}`" + (f" — {_one_line(j.error)}" if j.error else "")
            for j in report.problems
        ]
    return "\n".join(lines) + "\n"
