import pytest
import torch

from mae_hf.corruption import (
    add_gaussian_noise,
    mask_patches,
    mask_to_image,
    patch_mask_from_noise,
    random_patch_noise,
    spatial_order_noise,
)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_exact_masked_fraction(ratio):
    x = torch.rand(8, 1, 28, 28)
    masked, mask, pixel_mask = mask_patches(x, 4, ratio, generator=torch.Generator().manual_seed(0))
    expected = 49 - int(49 * (1 - ratio))
    assert torch.all(mask.sum(1) == expected)
    assert torch.all(pixel_mask.sum((1, 2, 3)) == expected * 16)
    assert torch.equal(masked[pixel_mask.expand_as(x) == 1], torch.zeros(int(pixel_mask.sum())))
    assert torch.equal(masked[pixel_mask.expand_as(x) == 0], x[pixel_mask.expand_as(x) == 0])


def test_mask_matches_vitmae_random_masking():
    from mae_hf import build_mae

    model = build_mae(
        seed=0,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=32,
    )
    noise = random_patch_noise(5, 49, torch.Generator().manual_seed(1))
    out = model(pixel_values=torch.rand(5, 1, 28, 28), noise=noise)
    assert torch.equal(patch_mask_from_noise(noise, 0.75), out.mask)


def test_mask_to_image_row_major():
    mask = torch.zeros(1, 4)
    mask[0, 1] = 1  # row 0, column 1
    img = mask_to_image(mask, 2, 4)
    assert img.shape == (1, 1, 4, 4)
    assert img[0, 0, :2, 2:].sum() == 4 and img.sum() == 4


def test_spatial_order_noise_is_identity():
    assert torch.equal(torch.argsort(spatial_order_noise(3, 49), 1), torch.arange(49).expand(3, 49))


def test_gaussian_noise_statistics():
    x = torch.full((64, 1, 28, 28), 0.5)
    noisy = add_gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(0))
    diff = noisy - x
    assert abs(diff.std().item() - 0.1) < 0.003
    assert abs(diff.mean().item()) < 0.003
    clamped = add_gaussian_noise(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert clamped.min() >= 0 and clamped.max() <= 1
    assert (clamped == 0).float().mean() > 0.1  # ~16% of N(0.5, 0.5²) falls below 0


def test_bad_inputs():
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="mask_ratio"):
        mask_patches(x, 4, 1.0)
    with pytest.raises(ValueError, match="divide"):
        mask_patches(x, 5, 0.5)
    with pytest.raises(ValueError, match="noise"):
        mask_patches(x, 4, 0.5, noise=torch.rand(2, 10))
    with pytest.raises(ValueError, match="shape"):
        add_gaussian_noise(x, 0.5, noise=torch.rand(1, 1, 28, 28))
