"""The training loop and evaluation, in process, on tiny models and tiny data (mae_hf/training.py)."""

import json

import numpy as np
import pytest
import torch
from datasets import DatasetDict
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from mae_hf import DAEConfig, DAEModel, build_mae, compute_psnr, compute_ssim, reconstruct_mae
from mae_hf.training import (
    ConfigurationError,
    ImageTensorDataset,
    NonFiniteLossError,
    RunArgs,
    TrainingConfig,
    batch_noise,
    collate_batch,
    evaluate,
    evaluation_dataloader,
    find_checkpoints,
    evaluate_per_sample,
    per_sample_loss,
    reconstruct_under,
    sample_noise,
    training_function,
)

from .conftest import TINY_MAE

TINY_DAE = {"hidden_channels": [8, 8, 4]}


@pytest.fixture(scope="module")
def tiny_data(mnist):
    """64 training and 24 test digits of the embedded MNIST."""
    return DatasetDict(train=mnist["train"].select(range(64)), test=mnist["test"].select(range(24)))


def run(tmp_path, data, name="run", args=None, **config):
    config = {"model": "dae", "config_overrides": TINY_DAE, "num_train_epochs": 2, "per_device_train_batch_size": 8,
              "per_device_eval_batch_size": 16, **config}
    args = {"output_dir": str(tmp_path / name), **(args or {})}
    return training_function(TrainingConfig(**config), RunArgs(**args), data=data)


# ----------------------------------------------------------------------------------------------------------------
# Per-sample corruption


def test_sample_noise_depends_only_on_the_sample_not_the_batch():
    a = sample_noise(torch.tensor([3, 7, 11]), (1, 4, 4), seed=5, stream=1, distribution="normal")
    b = sample_noise(torch.tensor([11, 3]), (1, 4, 4), seed=5, stream=1, distribution="normal")
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])
    other_epoch = sample_noise(torch.tensor([3]), (1, 4, 4), seed=5, stream=2, distribution="normal")
    other_seed = sample_noise(torch.tensor([3]), (1, 4, 4), seed=6, stream=1, distribution="normal")
    assert not torch.equal(a[0], other_epoch[0]) and not torch.equal(a[0], other_seed[0])


def test_sample_noise_distributions():
    normal = sample_noise(torch.arange(200), (49,), seed=0, stream=0, distribution="normal")
    uniform = sample_noise(torch.arange(200), (49,), seed=0, stream=0, distribution="uniform")
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1) < 0.03
    assert uniform.min() >= 0 and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.02


# ----------------------------------------------------------------------------------------------------------------
# Loss


def test_per_sample_loss_matches_the_models_own_loss(tiny_mae, tiny_dae, mnist_batch):
    x = mnist_batch[0][:6]
    idx = torch.arange(6)
    tiny_mae.eval()
    losses, out = per_sample_loss(tiny_mae, x, batch_noise(tiny_mae, idx, seed=0, stream=0))
    assert losses.shape == (6,)
    torch.testing.assert_close(losses.mean(), out.loss)
    tiny_dae.eval()
    losses, out = per_sample_loss(tiny_dae, x, batch_noise(tiny_dae, idx, seed=0, stream=0))
    torch.testing.assert_close(losses.mean(), out.loss)
    assert not torch.equal(out.corrupted, x)  # the noise was applied


def test_mae_loss_is_finite_at_mask_ratio_zero(mnist_batch):
    """ViTMAE's own loss divides by mask.sum() = 0; ours falls back to all patches."""
    model = build_mae("mnist", seed=0, mask_ratio=0.0, **TINY_MAE).eval()
    x = mnist_batch[0][:4]
    losses, out = per_sample_loss(model, x, batch_noise(model, torch.arange(4), 0, 0))
    assert torch.isnan(out.loss)
    expected = ((out.logits - model.patchify(x)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(losses, expected)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def test_evaluate_does_not_depend_on_batch_size_or_order(tiny_mae, mnist):
    split = mnist["test"].select(range(20))
    by_5 = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=5))
    by_16 = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=16))
    data = ImageTensorDataset.from_dataset(split, 1, 28)
    shuffled = DataLoader(data, batch_size=7, shuffle=True, collate_fn=collate_batch,
                          generator=torch.Generator().manual_seed(3))
    by_7_shuffled = evaluate(tiny_mae, shuffled)
    assert by_5["num_samples"] == by_16["num_samples"] == by_7_shuffled["num_samples"] == 20
    for key in ("loss", "psnr", "ssim", "psnr_input", "psnr_masked"):
        assert by_5[key] == pytest.approx(by_16[key], rel=1e-6)
        assert by_5[key] == pytest.approx(by_7_shuffled[key], rel=1e-6)


def test_evaluate_mae_metrics_are_those_of_the_pasted_reconstruction(tiny_mae, mnist):
    split = mnist["test"].select(range(8))
    metrics = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=8), seed=4)
    x = ImageTensorDataset.from_dataset(split, 1, 28).images.float() / 255
    rec = reconstruct_mae(tiny_mae, x, noise=batch_noise(tiny_mae, torch.arange(8), seed=4, stream=0))
    assert metrics["psnr"] == pytest.approx(compute_psnr(rec.pasted, x).mean())
    assert metrics["ssim"] == pytest.approx(compute_ssim(rec.pasted, x).mean())
    assert metrics["psnr_input"] == pytest.approx(np.minimum(compute_psnr(rec.masked_input, x), 100).mean())
    assert metrics["psnr_masked"] < metrics["psnr"]  # the visible patches pasted back are exact
    other_seed = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=8), seed=5)
    assert other_seed["loss"] != metrics["loss"]


def test_evaluate_dae_keys_and_input_psnr(tiny_dae, mnist):
    split = mnist["test"].select(range(8))
    metrics = evaluate(tiny_dae, evaluation_dataloader(split, tiny_dae, batch_size=3))
    assert set(metrics) == {"loss", "psnr", "ssim", "psnr_input", "num_samples"}
    # noise std 0.5, clamped to [0, 1]: the noisy input's PSNR is far below a clean copy's
    assert 5 < metrics["psnr_input"] < 12
    assert tiny_dae.training  # evaluate restores the mode


def test_evaluate_mae_without_mask_has_no_masked_psnr(mnist):
    model = build_mae("mnist", seed=0, mask_ratio=0.0, **TINY_MAE)
    metrics = evaluate(model, evaluation_dataloader(mnist["test"].select(range(4)), model, batch_size=4))
    assert "psnr_masked" not in metrics and np.isfinite(metrics["loss"])
    assert metrics["psnr_input"] == 100.0  # nothing masked: the input is the clean image (PSNR capped)


# ----------------------------------------------------------------------------------------------------------------
# The loop


def test_training_reduces_the_loss_and_writes_the_folder(tmp_path, tiny_data):
    result = run(tmp_path, tiny_data, model="mae", config_overrides=TINY_MAE, num_train_epochs=3,
                 learning_rate=3e-3)
    history = result["train"]["log_history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    out = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "README.md", "training_args.json", "eval_results.json",
                 "train_results.json", ".gitignore"):
        assert (out / name).is_file(), name
    assert json.loads((out / "eval_results.json").read_text())["loss"] == pytest.approx(result["eval"]["loss"])
    assert result["train"]["completed_steps"] == 3 * 64 // 8
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, tiny_data):
    run(tmp_path, tiny_data, "a", max_train_steps=5)
    run(tmp_path, tiny_data, "b", max_train_steps=5)
    run(tmp_path, tiny_data, "c", max_train_steps=5, seed=1)
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoints_every_n_steps_and_epoch_with_retention(tmp_path, tiny_data):
    # 64 / 8 = 8 steps per epoch, 2 epochs: step_3, step_6, epoch_0 (8), step_9, step_12, step_15, epoch_1 (16)
    run(tmp_path, tiny_data, args={"checkpointing_steps": 3, "checkpoints_total_limit": 3})
    checkpoints = find_checkpoints(tmp_path / "run")
    assert [(s, p.name) for s, p in checkpoints] == [(12, "step_12"), (15, "step_15"), (16, "epoch_1")]
    state = json.loads((tmp_path / "run" / "step_12" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batches_in_epoch"]) == (1, 4)
    assert (tmp_path / "run" / "step_12" / "optimizer.bin").is_file()


def test_resume_in_process_from_a_mid_epoch_checkpoint_gives_the_same_weights(tmp_path, tiny_data):
    run(tmp_path, tiny_data, "full", args={"checkpointing_steps": 3, "checkpoints_total_limit": 10})
    # A second run resumes from full/step_6 (epoch 0, batch 6 of 8) in a fresh folder.
    result = run(tmp_path, tiny_data, "resumed",
                 args={"resume_from_checkpoint": str(tmp_path / "full" / "step_6")})
    assert result["train"]["completed_steps"] == 16
    full, again = (load_file(tmp_path / n / "model.safetensors") for n in ("full", "resumed"))
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_non_finite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path, tiny_data):
    with pytest.raises(NonFiniteLossError, match=r"at step 2 \(epoch 0\)"):
        run(tmp_path, tiny_data, model="mae", config_overrides=TINY_MAE, learning_rate=1e6,
            lr_scheduler_type="constant", args={"checkpointing_steps": 1})
    out = tmp_path / "run"
    assert [p.name for _, p in find_checkpoints(out)] == ["step_1"]
    assert not (out / "model.safetensors").exists() and not (out / "README.md").exists()


def test_output_dir_must_be_empty_unless_overwrite_or_resume(tmp_path, tiny_data):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("x")
    with pytest.raises(ConfigurationError, match="--overwrite_output_dir"):
        run(tmp_path, tiny_data, max_train_steps=1)
    run(tmp_path, tiny_data, max_train_steps=1, args={"overwrite_output_dir": True})
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_mae_preset_must_match_the_images(tmp_path, tiny_data):
    rgb = tiny_data.map(lambda row: {"image": row["image"].convert("RGB").resize((32, 32))})
    with pytest.raises(ConfigurationError, match="--preset cifar10"):
        run(tmp_path, rgb, model="mae", config_overrides=TINY_MAE)
    assert not (tmp_path / "run").exists()  # nothing written


def test_dae_follows_the_dataset_image_shape(tmp_path, tiny_data):
    rgb = tiny_data.map(lambda row: {"image": row["image"].convert("RGB").resize((32, 32))})
    run(tmp_path, rgb, max_train_steps=2)
    config = DAEConfig.from_pretrained(tmp_path / "run")
    assert (config.image_size, config.num_channels) == (32, 3)
    assert DAEModel.from_pretrained(tmp_path / "run").config.hidden_channels == TINY_DAE["hidden_channels"]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model": "vae"}, "Unknown model"),
        ({"learning_rate": -1e-3}, "--learning_rate must be a positive"),
        ({"model": "mae", "mask_ratio": 1.0}, r"--mask_ratio must be in \[0, 1\)"),
        ({"model": "mae", "mask_ratio": -0.1}, r"--mask_ratio must be in \[0, 1\)"),
        ({"model": "mae", "preset": "imagenet"}, "Unknown MAE preset"),
        ({"mask_ratio": 0.5}, "--mask_ratio applies to --corruption mask only"),
        ({"model": "mae", "noise_factor": 0.3}, "--noise_factor applies to --corruption noise only"),
        ({"model": "mae", "corruption": "noise", "mask_ratio": 0.5}, "--mask_ratio applies to --corruption mask"),
        ({"corruption": "blur"}, "Unknown corruption 'blur'"),
        ({"config_overrides": {"corruption": "mask"}}, "Set corruption with --corruption"),
        ({"config_overrides": {"hiden_channels": [4]}}, "not fields of the DAE config"),
        ({"lr_scheduler_type": "exponential"}, "Unknown --lr_scheduler_type"),
        ({"per_device_train_batch_size": 0}, "--per_device_train_batch_size must be >= 1"),
    ],
)
def test_bad_hyperparameters_name_the_flag(config, message):
    with pytest.raises(ConfigurationError, match=message):
        TrainingConfig(**config)


# ----------------------------------------------------------------------------------------------------------------
# The control cells of the architecture x corruption grid: ViT + noise, CNN + masking


def test_cnn_masking_takes_the_loss_on_the_masked_pixels_only(mnist_batch):
    model = DAEModel(DAEConfig(hidden_channels=[8, 8, 4], corruption="mask", mask_ratio=0.75)).eval()
    x = mnist_batch[0][:4]
    noise = batch_noise(model, torch.arange(4), seed=0, stream=0)
    assert noise.shape == (4, 49)  # ViTMAE-style mask noise, not pixel noise
    losses, out = per_sample_loss(model, x, noise)
    assert out.pixel_mask.shape == (4, 1, 28, 28)
    assert out.pixel_mask.flatten(1).mean(1).tolist() == pytest.approx([37 * 16 / 784] * 4)  # 49 - int(49*0.25)
    assert torch.equal(out.corrupted, x * (1 - out.pixel_mask))
    bce = torch.nn.functional.binary_cross_entropy(out.reconstruction, x, reduction="none")
    expected = (bce * out.pixel_mask).flatten(1).sum(1) / out.pixel_mask.flatten(1).sum(1)
    torch.testing.assert_close(losses, expected)
    torch.testing.assert_close(losses.mean(), out.loss)


def test_vit_noise_sees_every_patch_of_the_noisy_image(mnist_batch):
    model = build_mae("mnist", seed=0, mask_ratio=0.0, corruption="noise", noise_factor=0.5, **TINY_MAE).eval()
    x = mnist_batch[0][:4]
    noise = batch_noise(model, torch.arange(4), seed=0, stream=0)
    assert noise.shape == (4, 1, 28, 28)
    losses, out = per_sample_loss(model, x, noise)
    assert out.mask.sum() == 0  # masking off
    # the loss is against the clean image, on every patch
    expected = ((out.logits - model.patchify(x)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(losses, expected)
    r = reconstruct_under(model, x, noise)
    torch.testing.assert_close(r["corrupted"], (x + 0.5 * noise).clamp(0, 1))
    torch.testing.assert_close(r["reconstruction"], model.unpatchify(out.logits).clamp(0, 1))


def test_both_architectures_get_the_same_corrupted_images(tiny_mae, mnist_batch):
    cnn_mask = DAEModel(DAEConfig(hidden_channels=[8, 8, 4], corruption="mask"))
    vit_noise = build_mae("mnist", seed=0, mask_ratio=0.0, corruption="noise", noise_factor=0.5, **TINY_MAE)
    x, idx = mnist_batch[0][:5], torch.arange(5)
    mask_noise = batch_noise(tiny_mae, idx, 3, 0)
    assert torch.equal(mask_noise, batch_noise(cnn_mask, idx, 3, 0))
    vit, cnn = reconstruct_under(tiny_mae, x, mask_noise), reconstruct_under(cnn_mask, x, mask_noise)
    assert torch.equal(vit["pixel_mask"], cnn["pixel_mask"]) and torch.equal(vit["corrupted"], cnn["corrupted"])
    # every model under the other corruption too: the mask-trained ViT on noisy images, the CNN on masked ones
    gauss = batch_noise(tiny_mae, idx, 3, 0, corruption="noise")
    assert gauss.shape == (5, 1, 28, 28)
    a = reconstruct_under(tiny_mae, x, gauss, "noise")
    b = reconstruct_under(vit_noise, x, gauss, "noise")
    assert torch.equal(a["corrupted"], b["corrupted"]) and a["pixel_mask"] is None
    m = reconstruct_under(vit_noise, x, mask_noise, "mask")
    assert torch.equal(m["pixel_mask"], vit["pixel_mask"])
    # visible pixels are pasted back under masking
    visible = m["pixel_mask"] == 0
    assert torch.equal(m["shown"][visible.expand_as(x)], x[visible.expand_as(x)])
    with pytest.raises(ValueError, match="Unknown corruption"):
        reconstruct_under(tiny_mae, x, mask_noise, "blur")


@pytest.mark.parametrize("model,corruption", [("mae", "noise"), ("dae", "mask")])
def test_control_cells_train_and_evaluate_through_the_same_loop(tmp_path, tiny_data, model, corruption):
    overrides = TINY_MAE if model == "mae" else TINY_DAE
    result = run(tmp_path, tiny_data, model=model, corruption=corruption, config_overrides=overrides,
                 num_train_epochs=2, learning_rate=3e-3)
    metrics = result["eval"]
    assert ("psnr_masked" in metrics) == (corruption == "mask")
    history = result["train"]["log_history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    folder = tmp_path / "run"
    config = json.loads((folder / "config.json").read_text())
    assert config["corruption"] == corruption
    card = (folder / "README.md").read_text()
    if model == "mae":
        assert config["mask_ratio"] == 0.0 and config["noise_factor"] == 0.5
        assert "masking is off" in card and "sees all 49 patches" in card
    else:
        assert config["mask_ratio"] == 0.75
        assert "CNN + patch" in card and "masked-region PSNR" in card
    # the per-image values behind the means, in dataset order
    from mae_hf.loading import load_dae, load_mae

    loaded = (load_mae if model == "mae" else load_dae)(str(folder))
    loader = evaluation_dataloader(tiny_data["test"], loaded, batch_size=7)
    per_image = evaluate_per_sample(loaded, loader)
    assert per_image["index"].tolist() == list(range(len(tiny_data["test"])))
    assert per_image["psnr"].mean() == pytest.approx(metrics["psnr"], rel=1e-5)
