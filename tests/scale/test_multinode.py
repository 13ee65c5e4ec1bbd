"""Multi-node DDP as a cluster runs it, simulated on one machine: two `torchrun --nnodes 2 --nproc-per-node 1`
agents (node ranks 0 and 1, gloo on CPU) run `python -m sr_lit.cli.train trainer=ddp_multinode` with one shared
hydra.run.dir. Lightning must take ranks from torchrun's environment (no re-launch), shard training disjointly,
count every validation image once, and let only global rank 0 write into the run folder. ~30-70 s on 2 cores."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("_audited_train.py")
KNOWN_SET_SIZES = {"Set5": 5, "Set14": 14}
# launcher variables of an outer job must not leak into the simulated one
_LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(tmp_path: Path) -> tuple[Path, Path, Path]:
    run, audit, probe = tmp_path / "run", tmp_path / "audit", tmp_path / "probe"
    audit.mkdir()
    overrides = [
        f"hydra.run.dir={run}",
        "trainer=ddp_multinode",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",  # validate in the loop (sharded) at the last step
        "trainer.check_val_every_n_epoch=null",
        "backbone=edsr_tiny",
        "data=sample",
        "data.patch_size=16",
        "data.batch_size=2",
        "data.repeat=1",
        "logger=csv",
        "module.log_images=0",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "callbacks.ema=null",  # validated weights == last.ckpt weights: in-loop and final scores must agree
        "+callbacks.shard_probe._target_=tests.scale._probe.ShardProbe",
        f"+callbacks.shard_probe.out_dir={probe}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_ENV and not k.startswith("SLURM_")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline", PYTHONPATH=str(REPO))
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--node-rank",
                str(node),
                "--nproc-per-node",
                "1",
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                str(DRIVER),
                str(audit / f"node{node}.json"),
                str(run),
                *overrides,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for node in (0, 1)
    ]
    try:
        logs = [p.communicate(timeout=480)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for node, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"node {node} exit {p.returncode}:\n{log[-4000:]}"
    return run, audit, probe


def test_two_nodes_torchrun(tmp_path: Path) -> None:
    run, audit, probe = _launch(tmp_path)

    # ranks and shards come from torchrun's environment; the two shards are disjoint and cover the data
    shards = [json.loads((probe / f"shard_rank{r}_epoch0.json").read_text()) for r in (0, 1)]
    for r, shard in enumerate(shards):
        assert (shard["global_rank"], shard["node_rank"], shard["world_size"]) == (r, r, 2), shard
        assert (shard["sampler_rank"], shard["sampler_replicas"]) == (r, 2), shard
    first, second = set(shards[0]["indices"]), set(shards[1]["indices"])
    assert first and not first & second
    assert first | second == set(range(shards[0]["dataset_len"]))  # 12 images: no padding repeats

    # validation: each image once, in the sharded in-loop run and in rank 0's final evaluation
    metrics = json.loads((run / "metrics.json").read_text())
    sets = [k.split("/")[1] for k in metrics if k.startswith("val/") and k.endswith("/n_images")]
    assert sets, metrics
    for name in sets:
        n_final = metrics[f"val/{name}/n_images"]
        assert metrics["ddp_in_loop"][f"val/{name}/n_images"] == n_final
        assert n_final == KNOWN_SET_SIZES.get(name, n_final)
        assert metrics["ddp_in_loop"][f"val/{name}/psnr_y"] == pytest.approx(
            metrics[f"val/{name}/psnr_y"], abs=1e-6
        )
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2

    # only global rank 0 writes into the shared run folder (Hydra's .hydra/ and log included)
    written = {node: json.loads((audit / f"node{node}.json").read_text()) for node in (0, 1)}
    # creating the shared folder itself (mkdir exist_ok, whichever rank starts first) is not writing into it
    assert [w for w in written[1] if w != "os.mkdir ."] == [], written[1]
    rank0 = "\n".join(written[0])
    for expected in ("metrics.json", "csv/metrics.csv", "last.ckpt", ".hydra/config.yaml", "train.log"):
        assert expected in rank0, written[0]
    assert len(list(run.rglob("metrics.json"))) == 1 and len(list(run.rglob("metrics.csv"))) == 1
