"""`attention_overlays`: the one definition of the heat maps the report's overlay rows and the app's overlay panels
show, and of their labels and masks."""

import numpy as np

from mae_hf.analysis.attention import attention_overlays


def _maps(batch: tuple[int, ...] = ()):
    rng = np.random.default_rng(0)
    rollout = rng.random(batch + (7, 7))  # (..., G, G)
    rollout_masked = np.where(rng.random(batch + (7, 7)) < 0.5, np.nan, rollout)
    pixel_mask = np.isnan(rollout_masked).repeat(4, -2).repeat(4, -1).astype(float)  # (..., H, W)
    saliency = {"dae": rng.random(batch + (28, 28)), "mae": rng.random(batch + (28, 28))}
    return rollout, rollout_masked, saliency, rng.random(batch + (28, 28)), pixel_mask


def test_one_picture_gets_every_map_in_order_with_the_masked_ones_veiled():
    rollout, rollout_masked, saliency, masked, pixel_mask = _maps()
    heats, masks = attention_overlays(rollout, rollout_masked, saliency, masked, pixel_mask, "mae", 4)
    assert list(heats) == ["rollout", "rollout, masked", "DAE saliency", "MAE saliency", "MAE saliency, masked"]
    assert heats["rollout"].shape == (28, 28) and heats["rollout"][5, 9] == rollout[1, 2]  # each patch's value
    assert np.isnan(heats["rollout, masked"]).sum() == pixel_mask.sum()
    assert heats["DAE saliency"] is saliency["dae"] and heats["MAE saliency, masked"] is masked
    assert set(masks) == {"rollout, masked", "MAE saliency, masked"}
    assert all(m is pixel_mask for m in masks.values())


def test_a_batch_and_the_studys_heatmap_after_the_rollouts():
    rollout, rollout_masked, saliency, masked, pixel_mask = _maps((3,))
    study = np.zeros((3, 28, 28))
    heats, masks = attention_overlays(
        rollout, rollout_masked, saliency, masked, pixel_mask, "mae", 4, study_heatmap=study
    )
    assert list(heats)[:3] == ["rollout", "rollout, masked", "study: attn × pixels"]
    assert all(h.shape == (3, 28, 28) for h in heats.values())
    assert list(masks) == ["rollout, masked", "MAE saliency, masked"]
