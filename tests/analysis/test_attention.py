import numpy as np
import pytest
import torch

from mae_hf import mae_attentions
from mae_hf.analysis.attention import (
    attention_rollout,
    cls_attention_maps,
    rollout_cls_map,
    study_attention_heatmap,
    tokens_to_grid,
    upsample_grid,
)


def as_layers(*mats):
    """Hand-made per-layer attention: each (heads, T, T) → (1, heads, T, T)."""
    return tuple(torch.tensor(m, dtype=torch.float32)[None] for m in mats)


def test_rollout_hand_made_two_layers_in_order():
    first = [[[0.0, 1.0], [0.0, 1.0]]]  # + I, renormalised → [[.5, .5], [0, 1]]
    second = [[[0.0, 1.0], [1.0, 0.0]]]  # + I, renormalised → [[.5, .5], [.5, .5]]
    r = attention_rollout(as_layers(first, second))
    np.testing.assert_allclose(r[0], [[0.25, 0.75], [0.25, 0.75]])  # second @ first, not first @ second
    np.testing.assert_allclose(r[0].sum(-1), 1.0)
    raw = attention_rollout(as_layers(first, second), add_residual=False)
    np.testing.assert_allclose(raw[0], np.array(second[0]) @ np.array(first[0]))


def test_rollout_averages_heads():
    heads = [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]  # mean → all 0.5
    r = attention_rollout(as_layers(heads), add_residual=False)
    np.testing.assert_allclose(r[0], 0.5)


def test_tokens_to_grid_scatters_and_marks_masked():
    values = np.array([[1.0, 2.0], [3.0, 4.0]])  # (B=2, K=2)
    ids = np.array([[3, 0], [1, 2]])
    g = tokens_to_grid(values, ids, grid_size=2)
    np.testing.assert_array_equal(g[0], [[2.0, np.nan], [np.nan, 1.0]])
    np.testing.assert_array_equal(g[1], [[np.nan, 3.0], [4.0, np.nan]])
    with pytest.raises(ValueError):
        tokens_to_grid(values, np.array([[0, 9], [1, 2]]), grid_size=2)


def test_real_mae_maps_masking_off_and_masked(tiny_mae, mnist_batch):
    x = mnist_batch[0][:3]
    grid = tiny_mae.config.image_size // tiny_mae.config.patch_size
    attn, ids_keep, _ = mae_attentions(tiny_mae, x)
    maps = cls_attention_maps(attn, ids_keep, grid)
    assert maps.shape == (2, 3, 4, grid, grid) and not np.isnan(maps).any()
    cls_self = torch.stack(attn)[..., 0, 0].numpy()  # (layers, B, heads)
    np.testing.assert_allclose(maps.sum((-1, -2)) + cls_self, 1.0, atol=1e-5)  # softmax rows
    r = rollout_cls_map(attn, ids_keep, grid)
    np.testing.assert_allclose(r.sum((1, 2)), 1.0)

    attn_m, keep_m, mask = mae_attentions(tiny_mae, x, mask_ratio=0.75, seed=0)
    maps_m = cls_attention_maps(attn_m, keep_m, grid)
    masked = mask.reshape(3, grid, grid).bool().numpy()
    for b in range(3):
        assert np.isnan(maps_m[:, b][..., masked[b]]).all() and not np.isnan(maps_m[:, b][..., ~masked[b]]).any()
    r_m = rollout_cls_map(attn_m, keep_m, grid)
    assert np.isnan(r_m[masked]).all() and np.nansum(r_m, axis=(1, 2)) == pytest.approx(np.ones(3))


def test_study_heatmap_is_zero_without_ink(tiny_mae):
    x = torch.zeros(2, 1, 28, 28)
    x[1, :, 10:14, 10:14] = 1.0
    grid, p = 7, 4
    attn, ids_keep, _ = mae_attentions(tiny_mae, x)
    heat = study_attention_heatmap(attn, ids_keep, grid, x, p)
    assert heat.shape == (2, 28, 28) and np.all(heat[0] == 0)
    assert np.all(heat[1][x[1, 0].numpy() == 0] == 0) and heat[1].max() > 0  # bright only where there is ink
    assert upsample_grid(np.arange(4.0).reshape(2, 2), 3).shape == (6, 6)
