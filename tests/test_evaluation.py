"""The one evaluation engine (mae_hf/evaluation.py): drawing, applying and scoring a corruption, for every model of
the grid, independent of batch size and order."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mae_hf import DAEConfig, DAEModel, build_mae, compute_psnr, compute_ssim, reconstruct_mae
from mae_hf.data import dataset_to_tensors
from mae_hf.evaluation import (
    PSNR_MAX,
    Corruption,
    draw_noise,
    evaluate,
    evaluate_images,
    objective,
    own_corruption,
    psnr,
    reconstruct,
    sample_noise,
)
from mae_hf.loading import load_dae, load_mae
from mae_hf.training import ImageTensorDataset, collate_batch, evaluation_dataloader

from .conftest import TINY_MAE

MASK, NOISE = Corruption("mask"), Corruption("noise")


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


def test_the_objective_per_image_matches_the_models_own_loss(tiny_mae, tiny_dae, mnist_batch):
    x = mnist_batch[0][:6]
    idx = torch.arange(6)
    tiny_mae.eval()
    losses, out = objective(tiny_mae, x, draw_noise(tiny_mae, own_corruption(tiny_mae).kind, idx, seed=0, stream=0))
    assert losses.shape == (6,)
    torch.testing.assert_close(losses.mean(), out.loss)
    tiny_dae.eval()
    losses, out = objective(tiny_dae, x, draw_noise(tiny_dae, own_corruption(tiny_dae).kind, idx, seed=0, stream=0))
    torch.testing.assert_close(losses.mean(), out.loss)
    assert not torch.equal(out.corrupted, x)  # the noise was applied


def test_mae_loss_is_finite_at_mask_ratio_zero(mnist_batch):
    """ViTMAE's own loss divides by mask.sum() = 0; ours falls back to all patches."""
    model = build_mae("mnist", seed=0, mask_ratio=0.0, **TINY_MAE).eval()
    x = mnist_batch[0][:4]
    losses, out = objective(model, x, draw_noise(model, own_corruption(model).kind, torch.arange(4), 0, 0))
    assert torch.isnan(out.loss)
    expected = ((out.logits - model.patchify(x)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(losses, expected)


# What the engine gave for the bundled models on the first 64 test digits at seed 0 while the DAE's loss and ViTMAE's
# per-image loss were each written twice (in the models and here); the one definition gives the same numbers.
BEFORE = {
    "mae": {"loss": 0.02431164394147345, "psnr": 18.46046465008847, "psnr_masked": 17.240521090473287},
    "dae": {"loss": 0.11628247977932915, "psnr": 17.821909591546536, "psnr_input": 9.380098336856593},
}


@pytest.mark.parametrize("kind", ["mae", "dae"])
def test_the_bundled_models_score_as_before_the_losses_had_one_definition(kind, mnist):
    model = (load_mae if kind == "mae" else load_dae)(
        Path(__file__).resolve().parent.parent / f"pretrained/{kind}-mnist"
    )
    values, _ = evaluate_images(model, dataset_to_tensors(mnist["test"], n=64)[0], seed=0)
    for key, before in BEFORE[kind].items():
        assert values[key].mean() == pytest.approx(before, rel=1e-6), key


# ----------------------------------------------------------------------------------------------------------------
# Evaluation


def test_evaluate_does_not_depend_on_batch_size_or_order(tiny_mae, mnist):
    split = mnist["test"].select(range(20))
    by_5 = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=5))
    by_16 = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=16))
    data = ImageTensorDataset.from_dataset(split, 1, 28)
    shuffled = DataLoader(
        data, batch_size=7, shuffle=True, collate_fn=collate_batch, generator=torch.Generator().manual_seed(3)
    )
    by_7_shuffled = evaluate(tiny_mae, shuffled)
    assert by_5["num_samples"] == by_16["num_samples"] == by_7_shuffled["num_samples"] == 20
    for key in ("loss", "psnr", "ssim", "psnr_input", "psnr_masked"):
        assert by_5[key] == pytest.approx(by_16[key], rel=1e-6)
        assert by_5[key] == pytest.approx(by_7_shuffled[key], rel=1e-6)


def test_evaluate_mae_metrics_are_those_of_the_pasted_reconstruction(tiny_mae, mnist):
    split = mnist["test"].select(range(8))
    metrics = evaluate(tiny_mae, evaluation_dataloader(split, tiny_mae, batch_size=8), seed=4)
    x = ImageTensorDataset.from_dataset(split, 1, 28).images.float() / 255
    rec = reconstruct_mae(
        tiny_mae, x, noise=draw_noise(tiny_mae, own_corruption(tiny_mae).kind, torch.arange(8), seed=4, stream=0)
    )
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
# Every model of the grid under every corruption


def test_cnn_masking_takes_the_loss_on_the_masked_pixels_only(mnist_batch):
    model = DAEModel(DAEConfig(hidden_channels=[8, 8, 4], corruption="mask", mask_ratio=0.75)).eval()
    x = mnist_batch[0][:4]
    noise = draw_noise(model, own_corruption(model).kind, torch.arange(4), seed=0, stream=0)
    assert noise.shape == (4, 49)  # ViTMAE-style mask noise, not pixel noise
    losses, out = objective(model, x, noise)
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
    noise = draw_noise(model, own_corruption(model).kind, torch.arange(4), seed=0, stream=0)
    assert noise.shape == (4, 1, 28, 28)
    losses, out = objective(model, x, noise)
    assert out.mask.sum() == 0  # masking off
    # the loss is against the clean image, on every patch
    expected = ((out.logits - model.patchify(x)) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(losses, expected)
    r = reconstruct(model, x, own_corruption(model), noise)
    torch.testing.assert_close(r.corrupted, (x + 0.5 * noise).clamp(0, 1))
    torch.testing.assert_close(r.reconstruction, model.unpatchify(out.logits).clamp(0, 1))


def test_both_architectures_get_the_same_corrupted_images(tiny_mae, mnist_batch):
    cnn_mask = DAEModel(DAEConfig(hidden_channels=[8, 8, 4], corruption="mask"))
    vit_noise = build_mae("mnist", seed=0, mask_ratio=0.0, corruption="noise", noise_factor=0.5, **TINY_MAE)
    x, idx = mnist_batch[0][:5], torch.arange(5)
    mask_noise = draw_noise(tiny_mae, "mask", idx, 3, 0)
    assert torch.equal(mask_noise, draw_noise(cnn_mask, "mask", idx, 3, 0))
    vit, cnn = reconstruct(tiny_mae, x, MASK, mask_noise), reconstruct(cnn_mask, x, MASK, mask_noise)
    assert torch.equal(vit.pixel_mask, cnn.pixel_mask) and torch.equal(vit.corrupted, cnn.corrupted)
    # every model under the other corruption too: the mask-trained ViT on noisy images, the CNN on masked ones
    gauss = draw_noise(tiny_mae, "noise", idx, 3, 0)
    assert gauss.shape == (5, 1, 28, 28)
    a = reconstruct(tiny_mae, x, NOISE, gauss)
    b = reconstruct(vit_noise, x, NOISE, gauss)
    assert torch.equal(a.corrupted, b.corrupted) and a.pixel_mask is None
    m = reconstruct(vit_noise, x, MASK, mask_noise)
    assert torch.equal(m.pixel_mask, vit.pixel_mask)
    # visible pixels are pasted back under masking
    visible = m.pixel_mask == 0
    assert torch.equal(m.shown[visible.expand_as(x)], x[visible.expand_as(x)])
    with pytest.raises(ValueError, match="Unknown corruption"):
        Corruption("blur")


def test_evaluate_images_scores_the_first_images_of_a_split_as_the_card_evaluation_does(tiny_mae, tiny_dae, mnist):
    """Image i of an in-memory batch is test image i: the same mask and noise, the same numbers."""
    split = mnist["test"].select(range(12))
    x = ImageTensorDataset.from_dataset(split, 1, 28).images.float() / 255
    for model in (tiny_mae, tiny_dae):
        card = evaluate(model, evaluation_dataloader(split, model, batch_size=5), seed=2)
        values, rec = evaluate_images(model, x, seed=2, batch_size=7)
        for key, mean in card.items():
            if key != "num_samples":
                assert values[key].mean() == pytest.approx(mean, rel=1e-6), key  # float32 batch sums differ
        assert rec.shown.shape == x.shape


def test_the_psnr_rule_is_capped_and_nan_where_nothing_counts():
    x = torch.rand(2, 1, 28, 28)
    assert psnr(x, x).tolist() == [PSNR_MAX, PSNR_MAX]
    none = torch.zeros(2, 1, 28, 28)
    assert np.isnan(psnr(x, x * 0.5, none)).all()


def test_corruptions_are_validated():
    with pytest.raises(ValueError, match="mask ratio must be in"):
        Corruption("mask", mask_ratio=1.0)
    with pytest.raises(ValueError, match="noise factor must be in"):
        Corruption("noise", noise_factor=-1)
    assert Corruption("mask", 0.5).describe() == "patch mask, ratio 0.5"
