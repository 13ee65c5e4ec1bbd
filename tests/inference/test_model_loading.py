"""load_model: Lightning-style .ckpt and .safetensors round trips; one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_lit.models.loading import CheckpointError, load_model, load_state_dict_any, save_safetensors
from tests.inference._models import tiny_model


def _fake_ckpt(path: Path, state: dict, spec: dict | None, compiled: bool = False) -> Path:
    infix = "_orig_mod." if compiled else ""
    sd = {f"net.{infix}{k}": v for k, v in state.items()}
    sd["loss_fn.dummy"] = torch.zeros(1)  # non-model keys of the LightningModule are ignored
    hp = {"model_spec": spec} if spec is not None else {"lr": 1e-4}
    torch.save({"state_dict": sd, "hyper_parameters": hp, "epoch": 3}, path)
    return path


@pytest.mark.parametrize("compiled", [False, True])
def test_ckpt_round_trip(tmp_path: Path, compiled: bool) -> None:
    model, spec = tiny_model(3)
    path = _fake_ckpt(tmp_path / "m.ckpt", model.state_dict(), spec, compiled)
    loaded, spec2 = load_model(path)
    assert spec2 == spec and loaded.scale == 3 and not loaded.training
    x = torch.rand(1, 3, 9, 11)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_safetensors_round_trip(tmp_path: Path) -> None:
    model, spec = tiny_model(2)
    path = save_safetensors(model, spec, tmp_path / "export" / "m.safetensors")
    loaded, spec2 = load_model(path)
    assert spec2 == spec
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert set(load_state_dict_any(path)) == set(model.state_dict())


def test_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    model, spec = tiny_model(2)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_model(junk)
    with pytest.raises(CheckpointError, match="model_spec"):
        load_model(_fake_ckpt(tmp_path / "nospec.ckpt", model.state_dict(), None))
    state = dict(model.state_dict())
    dropped = next(iter(state))
    state.pop(dropped)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing keys") as e:
        load_model(_fake_ckpt(tmp_path / "bad.ckpt", state, spec))
    assert dropped in str(e.value) and "extra.weight" in str(e.value)
    other_scale = dict(spec, scale=4)  # upsampler shapes differ
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(_fake_ckpt(tmp_path / "x4.ckpt", model.state_dict(), other_scale))
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_model(bad_st)


def test_load_state_dict_any_accepts_plain_state_dicts(tmp_path: Path) -> None:
    model, _ = tiny_model(2)
    p = tmp_path / "plain.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, p)
    assert set(load_state_dict_any(p)) == set(model.state_dict())


def test_torchscript_export_is_named_not_unpickled(tmp_path: Path) -> None:
    """A TorchScript archive is recognised from its zip records: a clear error, and torch.load's
    'looks like a TorchScript archive' warning never fires."""
    import warnings

    from sr_lit.export.torchscript import export_torchscript
    from sr_lit.models.loading import TorchScriptFileError, is_torchscript_archive

    model, spec = tiny_model(2)
    ts = export_torchscript(model, spec, tmp_path / "m.pt").path
    ckpt = _fake_ckpt(tmp_path / "m.ckpt", model.state_dict(), spec)
    assert is_torchscript_archive(ts) and not is_torchscript_archive(ckpt)
    for load in (load_model, load_state_dict_any):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(TorchScriptFileError, match="TorchScript export") as e:
                load(ts)
        assert isinstance(e.value, CheckpointError) and str(e.value).startswith(str(ts))
        assert not caught, [str(w.message) for w in caught]


def test_save_safetensors_writes_through_a_symlink_with_the_umask_mode(tmp_path: Path) -> None:
    import os
    import stat

    model, spec = tiny_model(2)
    target = tmp_path / "real.safetensors"
    link = tmp_path / "link.safetensors"
    old = os.umask(0o022)
    try:
        save_safetensors(model, spec, target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        link.symlink_to(target)
        save_safetensors(model, spec, link)
    finally:
        os.umask(old)
    assert link.is_symlink() and load_model(link)[1] == spec
