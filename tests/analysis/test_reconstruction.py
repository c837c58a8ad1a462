import numpy as np
import pytest
import torch

from mae_hf import DAEConfig, DAEModel, compute_psnr
from mae_hf.analysis.reconstruction import corrupt_both_ways, cross_table, evaluate_reconstructions, summarize_metrics


def test_corruptions_repeatable_with_exact_mask(mnist_batch):
    x = mnist_batch[0][:4]
    a = corrupt_both_ways(x, 4, 0.75, 0.5, seed=3)
    b = corrupt_both_ways(x, 4, 0.75, 0.5, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.all(a["pixel_mask"].flatten(1).sum(1) == (49 - 12) * 16)
    assert torch.all(a["masked"][a["pixel_mask"].expand_as(x).bool()] == 0)
    assert a["noisy"].min() >= 0 and a["noisy"].max() <= 1 and not torch.equal(a["noisy"], x)


def test_both_models_under_both_corruptions(tiny_dae, tiny_mae, mnist_batch):
    x = mnist_batch[0][:6]
    res = evaluate_reconstructions(tiny_dae, tiny_mae, x, seed=0, batch_size=4)
    assert set(res) == {("mae", "masking"), ("mae", "noise"), ("dae", "noise"), ("dae", "masking")}
    mm, dm, dn, mn = res["mae", "masking"], res["dae", "masking"], res["dae", "noise"], res["mae", "noise"]
    assert torch.equal(mm.corrupted, dm.corrupted) and torch.equal(dn.corrupted, mn.corrupted)  # same inputs
    visible = corrupt_both_ways(x, 4, 0.75, 0.5, seed=0)["pixel_mask"].expand_as(x) == 0
    assert torch.equal(mm.shown[visible], x[visible])  # pasted: visible pixels are the original's
    assert not torch.equal(mm.shown[~visible], x[~visible])
    np.testing.assert_allclose(mm.metrics["psnr"], compute_psnr(mm.shown, x))
    np.testing.assert_allclose(mm.metrics["psnr_input"], compute_psnr(mm.corrupted, x))
    for r in res.values():
        assert {"psnr", "ssim", "psnr_input"} <= set(r.metrics) and all(v.shape == (6,) for v in r.metrics.values())
    assert "psnr_masked" in mm.metrics and "psnr_masked" in dm.metrics and "psnr_masked" not in dn.metrics
    table = cross_table(res)
    assert table["dae"]["masking"]["psnr"]["mean"] == pytest.approx(dm.metrics["psnr"].mean())


def test_models_of_different_image_sizes_rejected(tiny_mae):
    dae = DAEModel(DAEConfig(image_size=32))
    with pytest.raises(ValueError, match="same image size"):
        evaluate_reconstructions(dae, tiny_mae, torch.rand(2, 1, 28, 28))


def test_summary_ignores_nan_keeps_inf():
    s = summarize_metrics(np.array([1.0, 3.0, np.nan]))
    assert s["mean"] == 2.0 and s["std"] == 1.0 and s["n"] == 2
    assert summarize_metrics(np.array([1.0, np.inf]))["mean"] == np.inf
    assert np.isnan(summarize_metrics(np.array([np.nan]))["mean"])
