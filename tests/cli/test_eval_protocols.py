"""Evaluation protocols (configs/protocol): `default` reproduces the published bicubic rows; `edsr` / `rcan` are
the EDSR-PyTorch / RCAN test protocols, which score a gray ground truth on Y of its RGB replica (and, for RCAN,
make LR with a replicated border). Pinned on Set14 x2 bicubic, where Set14 `bridge` (one channel) moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._shared import require_shared_data, shared_data_dir
from tests.cli._eval import run_eval

# Set14 x2 bicubic mean PSNR-Y: RCAN Table 3 publishes 30.24; gray values scored as such give 30.230 (also measured
# by the shared data's own implementation: 30.23); Y of the replicated gray gives about 30.325 (30.33 there).
SET14_X2 = {"default": 30.230, "edsr": 30.325, "rcan": 30.325}
BRIDGE_SHIFT = 1.32  # dB, Set14 `bridge` bicubic x2: Y of the RGB replica minus gray values


def _eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocol: str) -> dict:
    common = ["baseline=bicubic", "scale=2", f"paths.data_dir={shared_data_dir()}", "data.sets=[Set14]"]
    return run_eval(monkeypatch, tmp_path / protocol, *common, f"protocol={protocol}")


@pytest.mark.data
def test_protocols_pin_set14_x2_bicubic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_shared_data("Set14")
    got = {p: _eval(monkeypatch, tmp_path, p) for p in SET14_X2}
    for name, r in got.items():
        psnr = r["sets"]["Set14"]["psnr_y"]
        print(f"{name}: Set14 x2 bicubic {psnr:.4f} dB, protocol {r['protocol']}")
        assert r["protocol"]["name"] == name and r["sets"]["Set14"]["n_images"] == 14
        assert psnr == pytest.approx(SET14_X2[name], abs=0.005)
    assert got["default"]["protocol"] | {"name": None} == {
        "name": None, "lr_border": "symmetric", "use_official_lr": True, "gray_gt": "gray"}  # fmt: skip
    assert (
        got["rcan"]["protocol"]["lr_border"] == "replicate" and not got["rcan"]["protocol"]["use_official_lr"]
    )
    bridge = {n: r["sets"]["Set14"]["per_image"]["bridge"]["psnr_y"] for n, r in got.items()}
    assert bridge["edsr"] - bridge["default"] == pytest.approx(BRIDGE_SHIFT, abs=0.01)
    # the RCAN files differ from the EDSR ones in the outer 2 LR pixels only: a few thousandths of a dB
    assert 0 < abs(bridge["rcan"] - bridge["edsr"]) < 0.01
    others = [n for n in got["default"]["sets"]["Set14"]["per_image"] if n != "bridge"]
    for n in others:  # RGB images score the same under `default` and `edsr`
        a, b = (got[p]["sets"]["Set14"]["per_image"][n]["psnr_y"] for p in ("default", "edsr"))
        assert a == b, n
