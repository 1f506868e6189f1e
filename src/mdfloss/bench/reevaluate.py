"""``mdfloss bench --re-evaluate --out DIR``: test every finished run of a folder again, with today's metrics.

Useful whenever a metric changes: each run's network is rebuilt from its recorded config, its
selected weights are loaded (``best-val-loss.safetensors`` or ``best-val-psnr.safetensors``, the
checkpoint's last weights for ``train.select: last``), and its ``results.csv``, the folder's
``results.csv`` and the degraded input's metrics are written anew; nothing is trained. A run whose
weight files are not in the folder (a light copy) keeps its old rows and is named in the summary.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .._files import write_csv
from ..train.checkpoint import load_checkpoint
from .config import recorded_config
from .distributed import Context
from .evaluate import INPUT_LABEL, RESULT_FIELDS, DegradedInput, format_row, measure
from .experiment import build_metrics, build_run_model, load_eval_sets, prepare
from .fit import BEST_FILES, load_weights
from .manifest import INPUT_RESULTS, RESULTS, read_manifest, record_run
from .run_folder import CHECKPOINT


def re_evaluate(out: Path, context: Context) -> tuple[list[str], list[str]]:
    """Test every recorded run of ``out`` again; returns (runs re-tested, runs left as they were)."""
    manifest = read_manifest(out)
    if not manifest["experiments"]:
        raise FileNotFoundError(f"{out / 'manifest.json'}: no benchmark results here (run mdfloss bench first)")
    done, missing = [], []
    for name, entry in manifest["experiments"].items():
        config = recorded_config(entry["config"])
        experiment = prepare(config, out)
        test_sets = load_eval_sets(experiment, "test")
        metrics, _ = build_metrics(experiment, context)
        labels = {"task": config["task"], "model": config["model"]["type"]}
        rows = measure(DegradedInput(experiment.degradation.scale), test_sets, metrics, device=context.device,
                       labels={**labels, "loss": INPUT_LABEL}, image_dir=None)
        write_csv(experiment.folder / INPUT_RESULTS, RESULT_FIELDS, [format_row(r) for r in rows])
        for key, run in entry["runs"].items():
            folder = out / run["folder"]
            model = build_run_model(config, experiment.degradation)
            if not _load_selected(model, folder, run.get("selected", config["train"]["select"])):
                missing.append(f"{name} {key}")
                continue
            started = time.perf_counter()
            model = model.to(context.device)
            run_labels = {**labels, "loss": run.get("label", key), "repeat": run.get("repeat", 0)}
            image_dir = folder / "images" if config["eval"]["save_images"] else None
            rows = measure(model, test_sets, metrics, device=context.device, labels=run_labels, image_dir=image_dir)
            write_csv(folder / RESULTS, RESULT_FIELDS, [format_row(r) for r in rows])
            record_run(out, name, key, {**run, "eval_seconds": round(time.perf_counter() - started, 1),
                                        "re_evaluated": True})
            done.append(f"{name} {key}")
    return done, missing


def _load_selected(model: torch.nn.Module, folder: Path, selection: str) -> bool:
    """Load the run's selected weights into ``model``; False when their file is not there."""
    if selection == "last":
        path = folder / CHECKPOINT
        if not path.is_file():
            return False
        model.load_state_dict(load_checkpoint(path)["model"])
        return True
    path = folder / BEST_FILES[selection]
    if not path.is_file():
        return False
    load_weights(path, model)
    return True
