"""sr_lit: Lightning + Hydra super-resolution with dynamic high-pass filtering (HPF) and MMCA."""

from sr_lit.utils import config as _config  # noqa: F401  (registers the ${repo_root:} resolver)

__version__ = "0.1.0"
