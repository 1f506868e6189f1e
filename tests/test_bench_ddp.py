"""Two processes under ``torchrun`` (gloo on CPU): the ranks agree, and match one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ITERATIONS = 3


def run_worker(out: Path) -> None:
    """Train a tiny EDSR for a few iterations in this process (a torchrun worker or alone)."""
    from safetensors.torch import save_file

    from mdfloss.bench.config import experiment_config
    from mdfloss.bench.data import EvalImage, TrainPatches
    from mdfloss.bench.degradations import SuperResolution
    from mdfloss.bench.distributed import setup, teardown
    from mdfloss.bench.fit import Trainer
    from mdfloss.bench.models import EDSR
    from mdfloss.losses import build_loss

    torch.set_num_threads(1)
    context = setup("cpu")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 36, 3), dtype=np.uint8) for _ in range(3)]
    patches = TrainPatches(images, SuperResolution(4), patch_size=16, seed=3)
    val = [EvalImage("v.png", torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1)),
                     torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)))]
    config = experiment_config([{"base": "sisr-edsr"}, {
        "data": {"patch_size": 16, "batch_size": 4},
        "train": {"iters": ITERATIONS, "val_every": 2, "checkpoint_every": 2, "log_every": 1},
        "logging": {"progress": False},
    }])
    torch.manual_seed(0)
    model = EDSR(blocks=1, features=8, scale=4)
    trainer = Trainer(folder=out / f"world{context.world_size}", model=model, loss_fn=build_loss("l1"),
                      patches=patches, config=config, total=ITERATIONS, identity={}, context=context,
                      val_images=val, border=4)
    trainer.run(resume=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, out / f"world{context.world_size}-rank{context.rank}.safetensors")
    teardown(context)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    tests = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_two_torchrun_processes_agree_with_each_other_and_with_one_process(tmp_path):
    from safetensors.torch import load_file

    code = f"from pathlib import Path; from test_bench_ddp import run_worker; run_worker(Path({str(tmp_path)!r}))"
    script = tmp_path / "worker.py"
    script.write_text(code + "\n")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    done = subprocess.run(launcher, env=_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    run_worker(tmp_path)  # the same training in this one process
    rank0, rank1 = (load_file(tmp_path / f"world2-rank{r}.safetensors") for r in (0, 1))
    single = load_file(tmp_path / "world1-rank0.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    for key in single:
        torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-6)
    checkpoint = torch.load(tmp_path / "world2" / "checkpoint.pt", weights_only=True)
    assert checkpoint["iteration"] == ITERATIONS and set(checkpoint["best"]) == {"val_loss", "val_psnr"}
