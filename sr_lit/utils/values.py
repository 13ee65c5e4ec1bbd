"""Type predicates for config values (plain Python or OmegaConf containers), shared by the option checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def is_list(v: Any) -> bool:
    """A list, tuple or OmegaConf ListConfig (not a string)."""
    return isinstance(v, Sequence) and not isinstance(v, str | bytes)


def is_int(v: Any) -> bool:
    """An int that is not a bool (YAML `true` must not pass as 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
