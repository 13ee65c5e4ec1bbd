"""SR backbones: EDSR and RCAN."""

from sr_lit.models.backbones.edsr import EDSR
from sr_lit.models.backbones.rcan import RCAN

__all__ = ["EDSR", "RCAN"]
