"""Find the jobs of a sweep and read what each one left behind.

Sources:
- a Hydra multirun folder: every `<job>/.hydra/overrides.yaml` is a job; `metrics.json` = done, `error.txt` =
  failed (train.py writes it and returns NaN), neither = missing (killed or still running). multirun.yaml's grid
  also names jobs that never started.
- W&B offline run folders (`wandb/offline-run-*` anywhere below a folder): config.yaml + wandb-summary.json.
- `entity/project[/group]` through the W&B API (needs network and a login).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sr_lit.errors import DataError

# overrides that never define a variant: the seed (averaged over), the sweep file, run plumbing
IGNORED_KEYS = ("seed", "sweep", "ckpt_path", "init_from", "trainer.devices")
ERROR_MAX_CHARS = 300  # a failed job's reason in report.md / on stderr
_TRACEBACK = "Traceback (most recent call last):"
_CHAIN_LINKS = {  # traceback.format_exc's separators between chained exceptions -> how the summary says it
    "The above exception was the direct cause of the following exception:": "caused by",
    "During handling of the above exception, another exception occurred:": "while handling",
}


@dataclass
class Job:
    """One job (or W&B run) of a sweep."""

    path: str
    status: str  # ok | failed | missing
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value, as given to Hydra
    config: dict[str, Any] | None = None  # resolved config
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # one line from error.txt: its first line plus the root cause (error_summary)

    @property
    def seed(self) -> Any:
        if "seed" in self.overrides:
            return self.overrides["seed"]
        return (self.config or {}).get("seed")


class SourceError(DataError):
    """The source cannot be read (no jobs, no network, ...): one clear line for the user."""


def _key(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _read_yaml(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def _load_config(job_dir: Path) -> dict[str, Any] | None:
    for name in ("config_resolved.yaml", ".hydra/config.yaml"):
        p = job_dir / name
        if p.is_file():
            try:
                return _read_yaml(p)
            except yaml.YAMLError:
                continue
    return None


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(n - 1, 0)] + "…"


def _exception_text(segment: list[str]) -> str:
    """`Type: message` of one traceback segment: the lines after its (indented) frames, joined."""
    lines = [ln for ln in segment if ln.strip() and ln.strip() != _TRACEBACK]
    start = next((i for i, ln in enumerate(lines) if not ln[:1].isspace()), len(lines))
    return " ".join(ln.strip() for ln in lines[start:])


def error_summary(text: str, max_chars: int = ERROR_MAX_CHARS) -> str:
    """One line from train.py's error.txt (`Type: message`, a blank line, the traceback) for the report.

    The first line alone can hide the reason: a Hydra InstantiationException says "Error in call to target
    '...':" and the ValueError that says what is wrong follows on the next lines. So the summary is that first
    line plus the chain's first exception (the root cause, printed first by the traceback) when it differs.
    """
    lines = text.splitlines()
    tb_at = next((i for i, ln in enumerate(lines) if ln.strip() == _TRACEBACK), len(lines))
    head = [ln.strip() for ln in lines[:tb_at] if ln.strip()]
    segments: list[list[str]] = [[]]
    links: list[str] = []
    for ln in lines[tb_at:]:
        if ln.strip() in _CHAIN_LINKS:
            links.append(_CHAIN_LINKS[ln.strip()])
            segments.append([])
        else:
            segments[-1].append(ln)
    exceptions = [e for e in (_exception_text(seg) for seg in segments) if e]
    if not head:
        head = [exceptions[-1]] if exceptions else ["(empty error.txt)"]
    if len(exceptions) < 2 or (exceptions[0].partition(": ")[2] or exceptions[0]) in head[0]:
        return _clip(" ".join(head), max_chars)  # one exception (or the first line names the cause)
    root, outer = exceptions[0], head[0].rstrip(": ")
    link = links[0] if len(links) == len(exceptions) - 1 else "caused by"
    room = max(max_chars - len(root) - len(link) - 4, max_chars // 3)
    return _clip(f"{_clip(outer, room)} ({link} {root})", max_chars)


def _read_error(path: Path) -> str:
    return error_summary(path.read_text(errors="replace"))


def read_job(job_dir: Path) -> Job:
    overrides = dict(_key(o) for o in (_read_yaml(job_dir / ".hydra" / "overrides.yaml") or []))
    job = Job(path=str(job_dir), status="missing", overrides=overrides, config=_load_config(job_dir))
    error, metrics = job_dir / "error.txt", job_dir / "metrics.json"
    if error.is_file():
        job.status, job.error = "failed", _read_error(error)
    elif metrics.is_file():
        try:
            job.metrics = json.loads(metrics.read_text())
            job.status = "ok"
        except json.JSONDecodeError as e:
            job.status, job.error = "failed", f"unreadable metrics.json: {e}"
    return job


def expected_grid(sweep_dir: Path) -> list[dict[str, str]] | None:
    """The override sets of every job the basic sweeper would launch (from multirun.yaml); None if unknown."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        hydra_cfg = _read_yaml(path)["hydra"]
        if "BasicSweeper" not in str(hydra_cfg.get("sweeper", {}).get("_target_", "")):
            return None  # Optuna & co decide their jobs while running
        # same order as BasicSweeper.sweep: params first, command line after (a later key replaces in place)
        params = [f"{k}={v}" for k, v in (hydra_cfg["sweeper"].get("params") or {}).items()]
        task = list(hydra_cfg["overrides"]["task"])
        parsed = OverridesParser.create().parse_overrides(params + task)
        batches = BasicSweeper.split_arguments(parsed, None)[0]
        return [dict(_key(o) for o in batch) for batch in batches]
    except Exception:  # noqa: BLE001 - the check is a convenience; the found jobs still make a report
        return None


def collect_multirun(sweep_dir: Path) -> list[Job]:
    job_dirs = sorted(
        {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml") if "wandb" not in p.parts},
        key=lambda p: (len(p.parts), _job_num(p.name), p.name),
    )
    jobs = [read_job(d) for d in job_dirs]
    expected = expected_grid(sweep_dir)
    if expected:
        found = [{k: v for k, v in j.overrides.items()} for j in jobs]
        for i, want in enumerate(expected):
            if want not in found:
                jobs.append(
                    Job(path=f"{sweep_dir}/<job {i}: never started>", status="missing", overrides=want)
                )
    return jobs


def _job_num(name: str) -> int:
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


# ------------------------------------------------------------------------------------------------------ W&B
def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _wandb_config(raw: dict[str, Any]) -> dict[str, Any]:
    """wandb's config.yaml stores {key: {value: ..., desc: ...}} plus `_wandb`: unwrap it."""
    return {
        k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
        for k, v in raw.items()
        if k != "_wandb"
    }


def _variant_overrides(configs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """No overrides.yaml for W&B runs: the variant is every config leaf that differs between runs, except the
    seed and the per-run paths."""
    flats = [_flatten(c) for c in configs]
    keys = sorted({k for f in flats for k in f})
    skip = ("paths.", "hydra.", "seed", "data.seed", "init_from", "ckpt_path", "tags")
    varying = [
        k
        for k in keys
        if not k.startswith(skip)
        and not any(s in k for s in ("output_dir", "save_dir", "dirpath", "default_root_dir"))
        and len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1
    ]

    def varies_within_unit(k: str) -> bool:
        # `attention.freq` etc. only matter among runs of the same unit (`attention.name`)
        group, _, sub = k.partition(".")
        if sub == "name" or f"{group}.name" not in varying:
            return True
        by_name: dict[str, set[str]] = {}
        for f in flats:
            by_name.setdefault(str(f.get(f"{group}.name")), set()).add(json.dumps(f.get(k), default=str))
        return any(len(v) > 1 for v in by_name.values())

    varying = [k for k in varying if varies_within_unit(k)]
    # `attention.name=mmca` reads as the override it came from: `attention=mmca`
    return [{k.removesuffix(".name"): str(f.get(k)) for k in varying} for f in flats]


def collect_wandb_offline(root: Path) -> list[Job]:
    run_dirs = sorted(p for p in root.rglob("offline-run-*") if p.is_dir())
    if not run_dirs and root.name.startswith(("offline-run-", "run-")):
        run_dirs = [root]
    jobs: list[Job] = []
    for run in run_dirs:
        files = run / "files"
        config = (
            _wandb_config(_read_yaml(files / "config.yaml") or {})
            if (files / "config.yaml").is_file()
            else None
        )
        # an sr-train job keeps its W&B folder at <job>/wandb/offline-run-*: its own files are the fallback
        job_dir = run.parent.parent
        config = config or _load_config(job_dir)
        summary_path = files / "wandb-summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        # offline summaries stay empty until synced (DESIGN P8): fall back to the job's own metrics.json
        job_metrics = job_dir / "metrics.json"
        if not any(k.startswith("val/") for k in summary) and job_metrics.is_file():
            summary = json.loads(job_metrics.read_text())
        status = "ok" if any(k.startswith("val/") for k in summary) else "missing"
        error = ""
        if (job_dir / "error.txt").is_file():
            status, error = "failed", _read_error(job_dir / "error.txt")
        jobs.append(Job(path=str(run), status=status, config=config, metrics=summary, error=error))
    for job, ov in zip(jobs, _variant_overrides([j.config or {} for j in jobs]), strict=True):
        job.overrides = {**ov, "seed": str((job.config or {}).get("seed"))}
    return jobs


def collect_wandb_api(path: str, timeout: int = 20) -> list[Job]:
    """`entity/project[/group]` through the public API (online only)."""
    parts = path.strip("/").split("/")
    if len(parts) not in (2, 3):
        raise SourceError(f"{path!r}: expected a folder, or a W&B path entity/project[/group]")
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        raise SourceError(f"W&B path {path!r} needs the W&B API but WANDB_MODE={os.environ['WANDB_MODE']}")
    try:
        import wandb

        api = wandb.Api(timeout=timeout)
        filters = {"group": parts[2]} if len(parts) == 3 else {}
        runs = list(api.runs(f"{parts[0]}/{parts[1]}", filters=filters))
    except Exception as e:  # noqa: BLE001 - no network / no login / no such project: one clear line
        raise SourceError(
            f"cannot read W&B runs {path!r} through the API ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "without network, point sr-report at the multirun folder or at the offline wandb/ run folders"
        ) from e
    jobs = []
    for run in runs:
        summary = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
        status = "ok" if run.state == "finished" and any(k.startswith("val/") for k in summary) else run.state
        status = status if status in ("ok", "failed") else "missing"
        jobs.append(Job(path=run.url, status=status, config=dict(run.config), metrics=summary))
    for job, ov in zip(jobs, _variant_overrides([j.config or {} for j in jobs]), strict=True):
        job.overrides = {**ov, "seed": str((job.config or {}).get("seed"))}
    return jobs


def collect(source: str, kind: str = "auto") -> list[Job]:
    """Jobs from a multirun folder, W&B offline run folders or a W&B API path (kind: auto|multirun|wandb)."""
    path = Path(source)
    if not path.exists():
        if kind == "multirun" or source.startswith((".", "/", "~")):
            raise SourceError(f"{source}: no such folder")
        return collect_wandb_api(source)
    if kind in ("auto", "multirun") and any(path.rglob(".hydra/overrides.yaml")):
        jobs = collect_multirun(path)
    elif kind in ("auto", "wandb"):
        jobs = collect_wandb_offline(path)
    else:
        jobs = []
    if not jobs:
        raise SourceError(f"{source}: no sweep jobs (<job>/.hydra/overrides.yaml) or W&B run folders found")
    return jobs
