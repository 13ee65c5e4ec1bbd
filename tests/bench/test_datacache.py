"""Smoke test of the datacache benchmark at minimal sizes: structure and finiteness, never speed or memory targets
(those are the benchmark's, on DIV2K-sized images)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sr_lit.bench import datacache


@pytest.mark.slow  # two fresh processes; the protocol itself is tested in tests/data/test_cache_scale.py
def test_shared_pair_and_setup_time(tmp_path: Path) -> None:
    root = datacache.write_div2k_like(tmp_path / "DIV2K", 2, size=(100, 120), lr_scales=(2,))
    seconds, mb = datacache.setup_seconds(root, 2, official_lr=False)
    assert seconds > 0 and mb == pytest.approx(2 * 3 * (100 * 120 + 50 * 60) / 2**20)
    rep = datacache.shared_pair(root, 2, tmp_path)
    assert rep["builder"]["decoded"] == 2 and rep["reader"]["decoded"] == 0
    assert rep["reader"]["nbytes"] == rep["builder"]["nbytes"] == mb * 2**20
    assert all(math.isfinite(v) for r in rep.values() for v in r["after"].values())


@pytest.mark.slow
def test_datacache_quick_run() -> None:
    res = datacache.run(quick=True)
    assert all(math.isfinite(v) for v in res.values() if isinstance(v, float))
    assert (
        res["shared_reader_decoded_images"] == 0
        and res["cache_rss_per_decoded_byte"] == res["cache_rss_per_decoded_byte"]
    )
