"""Config layering, command-line overrides, presets, loss labels and iteration counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdfloss.bench.command import add_arguments, build_configs
from mdfloss.bench.config import (
    experiment_config,
    experiment_names,
    parse_assignment,
    preset_names,
    resolve_losses,
    total_iterations,
)


def parse(argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([*argv, "--out", "unused"])


def test_builtin_experiments_and_presets_are_packaged():
    assert experiment_names() == ["denoise-dncnn", "jpeg-dncnn", "sisr-edsr", "sisr-rrdb", "sisr-srresnet"]
    assert preset_names() == ["ablation-scales", "ablation-task", "cpu", "cpu-gan", "cpu-mini", "cpu-paper-sgd", "paper",
                              "paper-gan"]


def test_cpu_paper_sgd_is_the_papers_optimizer_on_the_cpu_presets_network_and_data():
    sgd, = build_configs(parse(["--preset", "cpu-paper-sgd"]))
    cpu = next(c for c in build_configs(parse(["--preset", "cpu"])) if c["name"] == "denoise-dncnn")
    paper = next(c for c in build_configs(parse(["--preset", "paper"])) if c["name"] == "denoise-dncnn")
    assert sgd["train"]["optimizer"] == {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                         "weight_decay": 1e-4} == paper["train"]["optimizer"]
    assert sgd["train"]["scheduler"] == {"type": "exponential", "lr_end": 1e-4} == paper["train"]["scheduler"]
    assert sgd["train"]["grad_clip"] == 0.1
    assert (sgd["model"], sgd["data"]) == (cpu["model"], cpu["data"])
    assert {k: sgd["train"][k] for k in ("iters", "val_every", "threads")} == {"iters": 3000, "val_every": 250, "threads": 1}
    assert sgd["losses"] == ["l2", "l2@mdf", "l1", "l1@mdf", "mdf"]


def test_builtin_experiments_hold_the_paper_settings():
    configs = {c["name"]: c for c in build_configs(parse(["--preset", "paper"]))}
    assert set(configs) == {"sisr-edsr", "sisr-srresnet", "denoise-dncnn", "jpeg-dncnn"}
    sisr, denoise, jpeg = configs["sisr-edsr"], configs["denoise-dncnn"], configs["jpeg-dncnn"]
    assert sisr["data"]["patch_size"] == 96 and sisr["degradation"] == {"scale": 4}
    assert sisr["train"]["optimizer"]["type"] == "adam" and float(sisr["train"]["optimizer"]["lr"]) == 1e-3
    assert denoise["degradation"]["sigma_range"] == [0, 55]
    assert denoise["train"]["optimizer"] == {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                             "weight_decay": 1e-4}
    assert denoise["train"]["scheduler"] == {"type": "exponential", "lr_end": 1e-4}
    assert jpeg["degradation"]["test_qualities"] == [10, 7] and float(jpeg["train"]["optimizer"]["lr"]) == 1e-4
    assert all(c["train"]["select"] == "val_loss" for c in configs.values())
    # 500 EDSR-PyTorch epochs of 1000 iterations on DIV2K's 800 training images:
    assert total_iterations(sisr, 800) == 500_000


def test_flags_and_set_override_the_builtin_config():
    args = parse(["--task", "sisr", "--model", "srresnet", "--losses", "l1, mdf", "--iters", "7",
                  "--train-dir", "T", "--test-dir", "A", "--test-dir", "B",
                  "--set", "train.optimizer.lr=2e-4", "--set", "model.size=small", "--set", "data.augment=false"])
    (config,) = build_configs(args)
    assert config["name"] == "sisr-srresnet" and config["model"] == {"type": "srresnet", "size": "small"}
    assert config["losses"] == ["l1", "mdf"]
    assert config["train"]["iters"] == 7 and config["train"]["epochs"] is None
    assert config["train"]["optimizer"]["lr"] == 2e-4 and config["data"]["augment"] is False
    assert config["data"]["test_dir"] == ["A", "B"] and config["data"]["train_dir"] == "T"
    assert config["train"]["scheduler"]["type"] == "multistep"  # untouched keys keep the paper's value


def test_preset_applies_common_then_own_overrides_and_filters_by_task():
    configs = build_configs(parse(["--preset", "cpu-mini", "--task", "jpeg"]))
    assert [c["name"] for c in configs] == ["jpeg-dncnn"]
    (jpeg,) = configs
    assert jpeg["model"]["size"] == "small" and jpeg["train"]["iters"] is not None
    assert jpeg["degradation"]["test_qualities"] == [10, 7]


def test_the_cpu_preset_takes_a_task_a_model_and_losses_as_written_in_the_docs():
    argv = ["--preset", "cpu", "--task", "denoise", "--model", "dncnn", "--losses", "l2,mdf",
            "--train-dir", "D", "--val-dir", "D", "--test-dir", "D"]
    (config,) = build_configs(parse(argv))
    assert config["name"] == "denoise-dncnn" and config["losses"] == ["l2", "mdf"]
    assert config["train"]["optimizer"]["type"] == "adam" and config["train"]["iters"] == 3000
    assert config["data"]["train_dir"] == config["data"]["val_dir"] == config["data"]["test_dir"] == "D"


def test_mdf_flag_can_target_one_task():
    configs = build_configs(parse(["--preset", "cpu-mini", "--mdf", "jpeg=/w/j.safetensors", "--mdf", "denoise=dn"]))
    weights = {c["task"]: c["mdf"]["weights"] for c in configs}
    assert weights == {"sisr": None, "denoise": "dn", "jpeg": "/w/j.safetensors"}


def test_a_user_config_file_builds_on_its_builtin(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("task: denoise\nmodel: {type: dncnn, size: small}\ntrain: {iters: 5}\nname: my-run\n")
    (config,) = build_configs(parse(["--config", str(path)]))
    assert config["name"] == "my-run" and config["train"]["iters"] == 5
    assert config["train"]["optimizer"]["type"] == "sgd"  # from the built-in denoise-dncnn


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"train": {"iterz": 3}}, "unknown key 'train.iterz' .did you mean train.iters"),
        ({"task": "deblur"}, "task: expected one of"),
        ({"model": {"type": "dncnn", "size": "paper"}}, "model.type: expected a model for task"),
        ({"train": {"iters": 0}}, "train.iters: expected an int >= 1, got 0"),
        ({"train": {"select": "best"}}, "train.select"),
        ({"losses": ["l1", "l1"]}, "distinct"),
        ({"data": 3}, "expected a mapping for 'data'"),
    ],
)
def test_bad_configs_are_refused_with_the_key_named(layer, message):
    with pytest.raises(ValueError, match=message):
        experiment_config([{"base": "sisr-edsr"}, {"train": {"iters": 2}}, layer])


def test_set_values_are_parsed_as_yaml_with_numbers_in_exponent_form():
    assert parse_assignment("train.optimizer.lr=1e-3") == {"train": {"optimizer": {"lr": 1e-3}}}
    assert parse_assignment("data.test_dir=[a, b]") == {"data": {"test_dir": ["a", "b"]}}
    assert parse_assignment("mdf.weights=sisr") == {"mdf": {"weights": "sisr"}}
    with pytest.raises(ValueError, match="KEY.SUB=VALUE"):
        parse_assignment("train.lr")


def test_missing_choice_of_experiment_is_explained():
    with pytest.raises(ValueError, match="--task and --model"):
        build_configs(parse([]))
    with pytest.raises(ValueError, match="no built-in experiment 'denoise-edsr'"):
        build_configs(parse(["--task", "denoise", "--model", "edsr"]))


def test_loss_labels_resolve_to_specs(tmp_path):
    (tmp_path / "Ds_SISR.pth").write_bytes(b"x")
    config = experiment_config([{"base": "denoise-dncnn"}, {
        "train": {"iters": 1}, "losses": ["l2", "vgg", "lpips", "msssim+l1", "mdf", "mdf-official", "l2+0.5*l1"],
        "official": {"dir": str(tmp_path)},
    }])
    runs = {r.label: r for r in resolve_losses(config, Path("W"))}
    assert runs["vgg"].spec == "l2+vgg" and runs["lpips"].spec == "l2+0.1*lpips"
    assert runs["mdf"].spec == "mdf:denoise"
    # no Ds_Denoising.pth here: the byte-identical Ds_SISR.pth stands in
    assert runs["mdf-official"].official_source == str(tmp_path / "Ds_SISR.pth")
    assert runs["mdf-official"].spec == f"mdf:{Path('W') / 'mdf-official-Ds_SISR.safetensors'}"
    assert runs["mdf-official"].mdf_options == {"features": "official", "scales": 8}
    assert runs["l2+0.5*l1"].spec == "l2+0.5*l1" and runs["l2+0.5*l1"].slug == "l2+0.5xl1"


def test_mdf_official_needs_its_folder(tmp_path):
    config = experiment_config([{"base": "jpeg-dncnn"}, {"train": {"iters": 1}, "losses": ["mdf-official"]}])
    with pytest.raises(ValueError, match="--official-dir"):
        resolve_losses(config, tmp_path)
    config["official"]["dir"] = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="Ds_JPEG.pth"):
        resolve_losses(config, tmp_path)


def test_epochs_count_batches_of_patches():
    config = experiment_config([{"base": "jpeg-dncnn"}, {"train": {"epochs": 3, "patches_per_image": 5},
                                                         "data": {"batch_size": 4}}])
    assert total_iterations(config, 10) == 3 * 13  # ceil(10 * 5 / 4) = 13 batches per epoch


def test_a_mapping_of_another_type_replaces_the_built_in_one(tmp_path):
    """An Adam optimizer over the denoising experiment's SGD: nothing of SGD's settings survives."""
    config = tmp_path / "adam.yaml"
    config.write_text("task: denoise\nmodel: {type: dncnn}\ntrain:\n  optimizer: {type: adam, lr: 1.0e-3}\n")
    (resolved,) = build_configs(parse(["--config", str(config), "--out", str(tmp_path)]))
    assert resolved["train"]["optimizer"] == {"type": "adam", "lr": 1.0e-3}
    (same_type,) = build_configs(parse(["--task", "denoise", "--model", "dncnn", "--out", str(tmp_path),
                                        "--set", "train.optimizer.lr=0.05"]))
    assert same_type["train"]["optimizer"] == {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                                               "weight_decay": 1.0e-4}


def test_a_null_optimizer_option_takes_the_default():
    import torch

    from mdfloss.bench.fit import build_optimizer

    options = {"type": "sgd", "lr": 0.1, "momentum": None, "nesterov": False}
    optimizer = build_optimizer(options, [torch.nn.Parameter(torch.zeros(1))])
    assert optimizer.defaults["momentum"] == 0
