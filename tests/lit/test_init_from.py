"""init_from (DESIGN 1.4): x3/x4 start from the x2 model with the upsampler skipped; same scale loads everything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_lit.bench.common import spec_for
from sr_lit.lit.module import SRModule


def module(scale: int, seed: int) -> SRModule:
    torch.manual_seed(seed)
    return SRModule(spec_for("edsr_tiny", "mmca", "dynamic", scale=scale))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_init_from_x2_skips_the_upsampler_at_another_scale(tmp_path: Path, scale: int) -> None:
    src = module(2, seed=0)
    path = tmp_path / "x2.pt"
    torch.save(src.net.state_dict(), path)
    dst = module(scale, seed=1)
    fresh = {k: v.clone() for k, v in dst.net.state_dict().items()}
    skipped = dst.load_init_weights(str(path))
    got, x2 = dst.net.state_dict(), src.net.state_dict()
    upsampler = [k for k in got if k.startswith("tail.0.")]
    assert upsampler  # the test must look at something
    for k, v in got.items():
        if k.startswith("tail.0.") and scale != 2:
            assert torch.equal(v, fresh[k]), (
                f"{k} was loaded from the x2 model"
            )  # x4's tail.0.0 has x2's shape
        else:
            assert torch.equal(v, x2[k]), f"{k} was not loaded"
    assert sorted(skipped) == (sorted(k for k in x2 if k.startswith("tail.0.")) if scale != 2 else [])
