import numpy as np
import pytest
import torch

from mae_hf import DAEConfig, DAEModel, compute_psnr
from mae_hf.analysis.reconstruction import cross_table, evaluate_reconstructions, model_pairs, summarize_metrics
from mae_hf.evaluation import draw_noise, evaluate_images


def test_both_models_under_both_corruptions(tiny_dae, tiny_mae, mnist_batch):
    x = mnist_batch[0][:6]
    res = evaluate_reconstructions({"dae": tiny_dae, "mae": tiny_mae}, x, seed=0, batch_size=4)
    assert list(res) == model_pairs({"dae": "noise", "mae": "mask"})  # each model, its own corruption first
    assert list(res) == [("dae", "noise"), ("dae", "mask"), ("mae", "mask"), ("mae", "noise")]
    (mm, mm_rec), (dm, dm_rec) = res["mae", "mask"], res["dae", "mask"]
    (dn, dn_rec), (_mn, mn_rec) = res["dae", "noise"], res["mae", "noise"]
    assert torch.equal(mm_rec.corrupted, dm_rec.corrupted) and torch.equal(dn_rec.corrupted, mn_rec.corrupted)
    assert torch.equal(mm_rec.pixel_mask, dm_rec.pixel_mask)  # one mask for both models
    visible = mm_rec.pixel_mask.expand_as(x) == 0
    for rec in (mm_rec, dm_rec):  # under masking both models' whole-image scores use the visible pixels pasted back
        assert torch.equal(rec.shown[visible], x[visible])
    np.testing.assert_allclose(mm["psnr"], np.minimum(compute_psnr(mm_rec.shown, x), 100))
    assert "psnr_masked" in mm and "psnr_masked" in dm and "psnr_masked" not in dn
    table = cross_table({pair: values for pair, (values, _) in res.items()})
    assert table["dae"]["mask"]["psnr"]["mean"] == pytest.approx(dm["psnr"].mean())
    # the engine's own draw: image i gets sample i's mask, as in the card's evaluation
    again, _ = evaluate_images(tiny_mae, x, seed=0, batch_size=4)
    np.testing.assert_array_equal(again["psnr"], mm["psnr"])
    assert draw_noise(tiny_mae, "mask", torch.arange(6), 0).shape == (6, 49)


def test_models_of_different_image_sizes_rejected(tiny_mae):
    dae = DAEModel(DAEConfig(image_size=32))
    with pytest.raises(ValueError, match="different sizes.*the DAE 1x32x32"):
        evaluate_reconstructions({"dae": dae, "mae": tiny_mae}, torch.rand(2, 1, 28, 28))


def test_summary_ignores_nan():
    s = summarize_metrics(np.array([1.0, 3.0, np.nan]))
    assert s["mean"] == 2.0 and s["std"] == 1.0 and s["n"] == 2
    assert np.isnan(summarize_metrics(np.array([np.nan]))["mean"])
