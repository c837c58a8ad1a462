import numpy as np
import torch

from mae_hf import extract_mae_latents
from mae_hf.analysis.latents import (
    extract_dae_latents,
    extract_features,
    extract_mae_features,
    extract_mae_masked_flat,
)


def test_dae_latents_flattened(tiny_dae, mnist_batch):
    x = mnist_batch[0][:5]
    f = extract_dae_latents(tiny_dae, x, batch_size=2)
    assert f.shape == (5, 72) and f.dtype == np.float32
    np.testing.assert_allclose(f, tiny_dae.encode(x).flatten(1).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_mae_features_are_cls_and_mean_in_spatial_order(tiny_mae, mnist_batch):
    x = mnist_batch[0][:5]
    f = extract_mae_features(tiny_mae, x, batch_size=3)
    tokens = extract_mae_latents(tiny_mae, x)
    np.testing.assert_allclose(f["mae_cls"], tokens[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f["mae_mean"], tokens[:, 1:].mean(1).numpy(), rtol=1e-5, atol=1e-6)


def test_study_variant_really_masks_and_shuffles(tiny_mae, mnist_batch):
    x = mnist_batch[0][:4]
    d, length = tiny_mae.config.hidden_size, 49
    keep = int(length * (1 - 0.75))
    feats, mask = extract_mae_masked_flat(tiny_mae, x, mask_ratio=0.75, seed=0)
    assert feats.shape == (4, (1 + keep) * d)  # only the kept tokens: 1 + 12 of 50
    assert torch.all(mask.sum(1) == length - keep)
    again, _ = extract_mae_masked_flat(tiny_mae, x, mask_ratio=0.75, seed=0)
    other, other_mask = extract_mae_masked_flat(tiny_mae, x, mask_ratio=0.75, seed=1)
    np.testing.assert_array_equal(feats, again)
    assert not torch.equal(mask, other_mask) and not np.allclose(feats, other)
    # the kept tokens are the spatial-order tokens of the visible patches, in shuffled (noise) order
    noise = torch.rand(4, length, generator=torch.Generator().manual_seed(0))
    ids_keep = torch.argsort(noise, 1)[:, :keep]
    assert not torch.equal(ids_keep, ids_keep.sort(1).values)  # the order really is shuffled
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(4, keep))
    assert tiny_mae.config.mask_ratio == 0.75  # restored


def test_extract_features_has_every_set(tiny_dae, tiny_mae, mnist_batch):
    x = mnist_batch[0][:3]
    f = extract_features({"dae": tiny_dae, "mae": tiny_mae}, x)
    assert tuple(f) == ("raw_pixels", "dae", "mae_cls", "mae_mean", "mae_masked_flat")
    assert f["raw_pixels"].shape == (3, 784) and f["dae"].shape == (3, 72) and f["mae_cls"].shape == (3, 32)
    assert f["mae_masked_flat"].shape == (3, 13 * 32)
