import math

import numpy as np
import pytest
import torch

from mae_hf.metrics import compute_masked_psnr, compute_pooled_psnr, compute_psnr, compute_ssim


def test_identical_images():
    x = torch.rand(3, 1, 28, 28)
    assert np.all(np.isinf(compute_psnr(x, x)))
    assert np.allclose(compute_ssim(x, x), 1.0)


def test_known_mse_gives_known_psnr():
    x = torch.zeros(2, 1, 10, 10)
    y = x + 0.1  # MSE = 0.01 → PSNR = 10 log10(1 / 0.01) = 20 dB
    assert np.allclose(compute_psnr(x, y), 20.0)
    assert np.allclose(compute_psnr(x * 255, y * 255, data_range=255.0), 20.0)
    # data range matters: the study's [-1, 1] MAE images have range 2 → +6.02 dB for the same error
    assert np.allclose(compute_psnr(x, y, data_range=2.0), 20 + 20 * math.log10(2))


def test_per_image_and_rgb():
    x = torch.rand(4, 3, 32, 32)
    y = x.clone()
    y[1] = (y[1] + 0.2).clamp(0, 1)
    psnr = compute_psnr(x, y)
    assert psnr.shape == (4,) and np.isinf(psnr[0]) and np.isfinite(psnr[1])
    ssim = compute_ssim(x, y)
    assert ssim.shape == (4,) and ssim[0] == pytest.approx(1.0) and ssim[1] < 1.0


def test_ssim_drops_with_noise():
    x = torch.rand(2, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    mild = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    strong = (x + 0.5 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert np.all(compute_ssim(x, mild) > compute_ssim(x, strong))


def test_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        compute_psnr(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 14, 14))
    with pytest.raises(ValueError, match="must be"):
        compute_ssim(torch.rand(1, 1, 1, 28, 28), torch.rand(1, 1, 1, 28, 28))


def test_masked_psnr_counts_only_masked_pixels():
    x = torch.zeros(2, 1, 4, 4)
    y = x.clone()
    y[:, :, :2] = 0.1  # error only in the top half
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2] = 1  # image 0: counts the top half → MSE 0.01 → 20 dB
    mask[1, :, 2:] = 1  # image 1: counts the exact bottom half → inf
    psnr = compute_masked_psnr(x, y, mask)
    assert psnr[0] == pytest.approx(20.0) and np.isinf(psnr[1])
    assert np.isnan(compute_masked_psnr(x, y, torch.zeros(2, 1, 4, 4))).all()


def test_pooled_psnr_takes_one_mse_over_every_counted_pixel():
    x = torch.zeros(2, 1, 4, 4)
    y = x.clone()
    y[0] = 0.1  # image 0: squared error 0.01 on each of its pixels
    y[1, :, 0, 0] = 1.0  # image 1: one pixel off by 1
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :1] = 1  # 4 pixels of image 0
    mask[1] = 1  # all 16 of image 1
    # pooled MSE = (4 * 0.01 + 1) / 20 = 0.052; a mean of the two images' PSNRs would be (20 + 12.04) / 2
    assert compute_pooled_psnr(x, y, mask) == pytest.approx(10 * math.log10(1 / 0.052))
    assert compute_pooled_psnr(x, y) == pytest.approx(10 * math.log10(32 / (16 * 0.01 + 1)))
    assert compute_pooled_psnr(x, y, mask, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.052))
    assert compute_pooled_psnr(x[1:], y[1:]) == pytest.approx(float(compute_psnr(x[1:], y[1:])[0]))
    assert math.isinf(compute_pooled_psnr(x, x, mask))
    assert math.isnan(compute_pooled_psnr(x, y, torch.zeros_like(mask)))
    with pytest.raises(ValueError, match="same shape"):
        compute_pooled_psnr(x, y[:1])


def test_batched_ssim_equals_scikit_image_per_image():
    from skimage.metrics import structural_similarity

    from mae_hf.metrics import SSIM_SETTINGS

    g = torch.Generator().manual_seed(0)
    for shape, data_range in (((5, 1, 28, 28), 1.0), ((3, 3, 32, 32), 1.0), ((2, 1, 28, 28), 2.0)):
        x = torch.rand(shape, generator=g)
        y = (x + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)
        if data_range == 2.0:
            x, y = 2 * x - 1, 2 * y - 1
        ours = compute_ssim(x, y, data_range=data_range)
        ref = [
            structural_similarity(
                a.double().numpy(), b.double().numpy(), data_range=data_range, channel_axis=0, **SSIM_SETTINGS
            )
            for a, b in zip(x, y)
        ]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
