"""sr_lit: Lightning + Hydra super-resolution with dynamic high-pass filtering (HPF) and MMCA."""

try:  # registers the ${repo_root:} resolver; the GPU check machine has no omegaconf, and needs none
    from sr_lit.utils import config as _config  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover
    pass

__version__ = "0.1.0"
