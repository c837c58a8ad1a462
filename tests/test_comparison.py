import numpy as np
import pytest
import torch

from mae_hf import compute_psnr, compute_ssim
from mae_hf.comparison import MASK_COLOR, compare_reconstructions, metrics_table, to_display
from mae_hf.evaluation import PSNR_MAX


@pytest.fixture
def digit(mnist_batch):
    return mnist_batch[0][:1]  # (1, 1, 28, 28)


def test_same_seed_same_everything_other_seed_other_mask(tiny_dae, tiny_mae, digit):
    a = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, seed=3)
    b = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, seed=3)
    c = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, seed=4)
    for name, attr in (("mae", "input"), ("dae", "input"), ("mae", "reconstruction"), ("mae", "pasted")):
        assert torch.equal(getattr(a.models[name], attr), getattr(b.models[name], attr)), (name, attr)
    assert torch.equal(a.models["dae"].reconstruction, b.models["dae"].reconstruction)
    assert a.metrics == b.metrics
    assert not torch.equal(a.models["mae"].pixel_mask, c.models["mae"].pixel_mask)
    assert not torch.equal(a.models["dae"].input, c.models["dae"].input)


def test_own_corruption_masks_the_mae_and_noises_the_dae(tiny_dae, tiny_mae, digit):
    r = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, mask_ratio=0.75, noise_factor=0.5, seed=0)
    removed = r.models["mae"].pixel_mask.mean().item()
    assert removed == pytest.approx(37 / 49)  # 49 patches, int(49 * 0.25) = 12 kept
    assert torch.equal(r.models["mae"].input, digit * (1 - r.models["mae"].pixel_mask))
    assert r.models["dae"].pixel_mask is None
    unclamped = (r.models["dae"].input > 0) & (r.models["dae"].input < 1)
    assert 0.3 < (r.models["dae"].input - digit)[unclamped].std() < 0.6  # factor 0.5, a little less where clamping cuts
    # pasted keeps the visible patches exactly and takes the reconstruction in the hidden ones
    keep = r.models["mae"].pixel_mask == 0
    assert torch.equal(r.models["mae"].pasted[keep], digit[keep])
    assert torch.equal(r.models["mae"].pasted[~keep], r.models["mae"].reconstruction[~keep])


def test_same_mask_gives_the_dae_exactly_the_maes_input(tiny_dae, tiny_mae, digit):
    r = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, mask_ratio=0.5, seed=1, corruption="mask")
    assert torch.equal(r.models["dae"].input, r.models["mae"].input)
    assert torch.equal(r.models["dae"].pixel_mask, r.models["mae"].pixel_mask)
    assert r.noise_factor == 0.0
    assert r.metrics[0]["name"] == "DAE reconstruction" and r.metrics[0]["masked_psnr"] is not None
    np.testing.assert_allclose(
        r.models["dae"].reconstruction,
        tiny_dae(digit, corrupted_pixel_values=r.models["mae"].input).reconstruction.detach(),
    )


def test_same_noise_gives_the_mae_the_daes_noisy_image_unmasked(tiny_dae, tiny_mae, digit):
    r = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, noise_factor=0.7, seed=2, corruption="noise")
    assert torch.equal(r.models["mae"].input, r.models["dae"].input)
    assert r.models["mae"].pixel_mask is None and r.mask_ratio == 0.0
    assert r.models["mae"].pasted is None  # nothing to paste back: under noise it is not masking itself
    assert [m["name"] for m in r.metrics] == ["DAE reconstruction", "MAE reconstruction"]
    assert r.metrics[1]["masked_psnr"] is None


def test_metrics_are_the_package_metrics_against_the_clean_digit(tiny_dae, tiny_mae, digit):
    r = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, seed=0)
    dae_row, mae_row, pasted_row = r.metrics
    assert mae_row["psnr"] == pytest.approx(compute_psnr(r.models["mae"].reconstruction, digit)[0])
    assert dae_row["ssim"] == pytest.approx(compute_ssim(r.models["dae"].reconstruction, digit)[0])
    assert dae_row["input_psnr"] == pytest.approx(compute_psnr(r.models["dae"].input, digit)[0])
    # pasting the true visible patches can only help
    assert pasted_row["psnr"] >= mae_row["psnr"]
    assert pasted_row["masked_psnr"] == pytest.approx(mae_row["masked_psnr"])


def test_no_mask_means_a_perfect_paste_and_no_masked_region(tiny_dae, tiny_mae, digit):
    r = compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, mask_ratio=0.0, seed=0)
    assert r.models["mae"].pixel_mask is None
    assert r.metrics[2]["psnr"] == PSNR_MAX  # the one PSNR rule: capped, as on the test set
    headers, table = metrics_table(r.metrics)
    assert headers[2] == "Output PSNR (dB)" and len(headers) == 5
    assert table[2][2] == "100.00" and table[1][4] == "—"
    assert [len(row) for row in table] == [5, 5, 5]
    assert table[0][0] == "DAE reconstruction" and float(table[0][3]) == pytest.approx(r.metrics[0]["ssim"], abs=5e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(corruption="blur"), "`corruption` must be one of"),
        (dict(mask_ratio=1.0), r"mask ratio must be in \[0, 1\)"),
        (dict(noise_factor=-0.1), r"noise factor must be in \[0, 10\]"),
    ],
)
def test_bad_settings_raise(tiny_dae, tiny_mae, digit, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, digit, **kwargs)


def test_two_images_are_refused(tiny_dae, tiny_mae, mnist_batch):
    with pytest.raises(ValueError, match=r"one image of shape \(1, C, H, W\)"):
        compare_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, mnist_batch[0][:2])


def test_to_display_enlarges_with_crisp_pixels_and_colours_the_mask():
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 3, 5] = 1.0
    mask = torch.zeros(1, 1, 28, 28)
    mask[0, 0, 24:, 24:] = 1
    out = to_display(img, scale=10, pixel_mask=mask)
    assert out.shape == (280, 280, 3) and out.dtype == np.uint8
    assert (out[30:40, 50:60] == 255).all() and (out[29, 50] == 0).all()
    assert (out[240:, 240:] == MASK_COLOR).all()
    with pytest.raises(ValueError, match="one grayscale or colour image"):
        to_display(torch.zeros(2, 1, 28, 28))
    colour = torch.zeros(1, 3, 4, 4)
    colour[0, 2] = 1.0  # blue
    shown = to_display(colour, scale=2, pixel_mask=torch.ones(1, 1, 4, 4) * (torch.arange(4) == 0))
    assert shown.shape == (8, 8, 3) and (shown[0, 2:] == (0, 0, 255)).all() and (shown[:, :2] == MASK_COLOR).all()
