"""Released EDSR/RCAN weights through the commands: sr-import, sr-export --format pth, sr-eval / sr-upscale on a
released file, and init_from a released RCAN into RCAN + MMCA + HPF (the fine-tune-from-RCAN workflow).

Fixture files are random weights in the published layouts (tests/_published.py); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.bench.common import spec_for
from sr_lit.cli.export import main as export_main
from sr_lit.cli.import_weights import main as import_main
from sr_lit.models.loading import load_model, match_init_state, read_init_weights, read_weights
from sr_lit.models.registry import build_model
from tests._published import Dims, random_published_state

RCAN_SMALL = Dims("rcan", n_feats=16, n_blocks=2, n_groups=2, reduction=4)


def _rcan_spec(attention: str = "ca", hpf: str = "none", scale: int = 2) -> dict:
    spec = spec_for("rcan", attention, hpf, scale, n_resgroups=2, n_resblocks=2, n_feats=16)
    if attention == "ca":
        spec["attention"]["reduction"] = 4
    return spec


def _ckpt(tmp_path: Path, spec: dict, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    model = build_model(**spec).eval()
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"model_spec": spec}}, path)  # fmt: skip
    return path, model


@pytest.mark.parametrize("layout", ["official", "basicsr"])
@pytest.mark.parametrize(
    ("spec_fn", "scale"),
    [
        (lambda s: spec_for("edsr", "none", "none", s, n_resblocks=2, n_feats=32), 3),  # res_scale 0.1
        (lambda s: _rcan_spec("ca", "none", s), 4),
    ],
)
def test_round_trip_ours_pth_import_ours(tmp_path: Path, layout: str, spec_fn, scale: int, capsys) -> None:
    spec = spec_fn(scale)
    ckpt, model = _ckpt(tmp_path, spec)
    pth = tmp_path / ("m.pt" if layout == "official" else "m.pth")
    assert export_main([str(ckpt), "--format", "pth", "--layout", layout, "--out", str(pth)]) == 0
    out = tmp_path / "back.safetensors"
    res_scale = ["--res-scale", str(spec["backbone"]["res_scale"])]
    assert import_main([str(pth), "--out", str(out), "--scale", str(scale), *res_scale]) == 0
    printed = capsys.readouterr().out
    assert ("BasicSR layout" if layout == "basicsr" else "EDSR-PyTorch / RCAN layout") in printed, printed
    back, back_spec = load_model(out)
    assert back_spec == spec
    own = model.state_dict()
    assert back.state_dict().keys() == own.keys()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in own.items())
    x = torch.rand(1, 3, 10, 13, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(back(x), model(x))


def test_sr_import_reports_detection_and_hash(tmp_path: Path, capsys) -> None:
    """As the console script: what was detected and assumed, and the sha256 prefix of the file name."""
    state = random_published_state(Dims("edsr", n_feats=256, n_blocks=1), 2, "official")
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    good, bad = tmp_path / f"edsr_x2-{digest[:8]}.pt", tmp_path / "edsr_x2-0edfb8a3.pt"
    good.write_bytes(plain.read_bytes())
    bad.write_bytes(plain.read_bytes())

    def run(src: Path) -> subprocess.CompletedProcess:
        cmd = [
            sys.executable,
            "-m",
            "sr_lit.cli.import_weights",
            str(src),
            "--out",
            str(tmp_path / "o.safetensors"),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    r = run(good)  # once as the console script runs it
    assert r.returncode == 0, r.stderr
    assert "EDSR (1 blocks x 256 features, res_scale 0.1) x2" in r.stdout
    assert "assumed: res_scale 0.1" in r.stdout and f"sha256 starts with {digest[:8]}" in r.stdout
    out = tmp_path / "o.safetensors"
    assert import_main([str(bad), "--out", str(out), "--overwrite", "--res-scale", "1"]) == 0
    assert "does NOT match the 0edfb8a3" in capsys.readouterr().err
    assert load_model(out)[1]["backbone"]["res_scale"] == 1.0
    dated = tmp_path / "edsr_x2-20240315.pt"  # a date is no hash: no "damaged file" verdict
    dated.write_bytes(plain.read_bytes())
    assert import_main([str(dated), "--out", str(out), "--overwrite", "--res-scale", "1"]) == 0
    err = capsys.readouterr().err
    assert "NOT match" not in err and "not its sha256 prefix" in err
    with pytest.raises(SystemExit) as e:
        import_main([str(good), "--out", str(out), "--overwrite", "--arch", "rcan"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.strip().count("\n") == 0 and "holds EDSR, not RCAN" in err


def test_sr_import_refuses_bad_outputs(tmp_path: Path, capsys) -> None:
    src = tmp_path / "m.pt"
    torch.save(random_published_state(Dims("edsr", 16, 2), 2, "official"), src)
    existing = tmp_path / "exists.safetensors"
    existing.write_bytes(b"keep me")
    for out, needle in ((tmp_path / "m.pt", "writes .safetensors"), (existing, "--overwrite")):
        with pytest.raises(SystemExit) as e:
            import_main([str(src), "--out", str(out)])
        assert e.value.code == 2 and needle in capsys.readouterr().err
    assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize("layout", ["official", "basicsr"])
def test_init_from_released_rcan_into_mmca_hpf(tmp_path: Path, layout: str) -> None:
    """The fine-tune-from-RCAN workflow: everything but CA loads; the MMCA and HPF units start fresh, by name."""
    from sr_lit.lit.module import SRModule

    state = random_published_state(RCAN_SMALL, 2, layout, seed=3)
    path = tmp_path / ("RCAN_BIX2.pt" if layout == "official" else "RCAN_BIX2.pth")
    torch.save(state if layout == "official" else {"params_ema": state}, path)
    torch.manual_seed(0)
    module = SRModule(_rcan_spec("mmca", "dynamic", 2) | {"attention": {"name": "mmca", "reduction": 4}})
    skipped = module.load_init_weights(str(path))
    official = random_published_state(RCAN_SMALL, 2, "official", seed=3)
    got = module.net.state_dict()
    for k, v in official.items():
        if ".conv_du." in k:
            assert k in skipped and k not in got
        else:
            assert torch.equal(got[k], v), k
    match = match_init_state(module.net, read_init_weights(path).state)
    assert set(skipped) == {k for k in official if ".conv_du." in k}
    # BasicSR files hold no mean shift: the model keeps its frozen default, which is BasicSR's constant mean
    mean_shift = {"MeanShift at sub_mean": 1, "MeanShift at add_mean": 1} if layout == "basicsr" else {}
    assert match.fresh_units == {
        **mean_shift,
        "MMCAttention at body.*.body.*.body.*": 4,  # 2 groups x 2 RCABs: CA replaced by MMCA
        "DynamicHPF at body.*.hpf": 2,  # one per group
    }
    assert "4 x MMCAttention at" in match.summary() and "2 x DynamicHPF at" in match.summary()


def test_released_file_in_sr_eval_and_sr_upscale(tmp_path: Path, monkeypatch) -> None:
    """sr-eval ckpt_path=RELEASED.pt and sr-upscale --ckpt RELEASED.pt give what the imported .safetensors gives."""
    from sr_lit.cli.eval import main as eval_main
    from sr_lit.cli.upscale import main as upscale_main

    released = tmp_path / "RCAN_BIX2.pt"
    torch.save(random_published_state(RCAN_SMALL, 2, "official", seed=4), released)
    imported = tmp_path / "rcan.safetensors"
    assert import_main([str(released), "--out", str(imported)]) == 0
    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(24, 30), (33, 21)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(hr / f"img{i}.png")

    results = {}
    for name, ckpt in (("released", released), ("imported", imported)):
        js = tmp_path / f"{name}.json"
        argv = ["sr-eval", f"ckpt_path={ckpt}", f"hr_dir={hr}", f"json_out={js}", "progress=false",
                f"hydra.run.dir={tmp_path / name}"]  # fmt: skip
        monkeypatch.setattr(sys, "argv", argv)
        eval_main()
        results[name] = json.loads(js.read_text())
        out = tmp_path / f"sr_{name}"
        assert upscale_main([str(hr), "--out", str(out), "--ckpt", str(ckpt), "-q"]) == 0
    assert results["released"]["sets"] == results["imported"]["sets"]
    assert results["released"]["model_spec"] == read_weights(released).spec
    for png in sorted((tmp_path / "sr_released").iterdir()):
        assert png.read_bytes() == (tmp_path / "sr_imported" / png.name).read_bytes()
