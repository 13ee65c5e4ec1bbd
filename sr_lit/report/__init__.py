"""sr-report: collect the jobs of a sweep (multirun folder or W&B runs) into an ablation table and a plot."""

from sr_lit.report.collect import Job, collect
from sr_lit.report.table import Report, build_report

__all__ = ["Job", "Report", "build_report", "collect"]
