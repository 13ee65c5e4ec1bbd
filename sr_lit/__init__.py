"""sr_lit: Lightning + Hydra super-resolution with dynamic high-pass filtering (HPF) and MMCA."""

import contextlib

# registers the ${repo_root:} resolver; the GPU check machine has no omegaconf, and needs none
with contextlib.suppress(ModuleNotFoundError):
    from sr_lit.utils import config as _config  # noqa: F401

__version__ = "0.1.0"
