import matplotlib
import numpy as np
import pytest
import torch

from mae_hf import plotting


def test_agg_backend_and_figures_from_arrays():
    assert matplotlib.get_backend().lower() == "agg"
    x = torch.rand(5, 1, 28, 28)
    fig, axes = plotting.plot_image_rows({"a": x, "b": x}, n_show=3, titles=["1", "2", "3"])
    assert len(axes) == 2 and axes[0].images[0].get_array().shape == (28, 3 * 28 + 2)
    fig, ax = plotting.plot_metric_histograms({"m": np.array([1.0, 2.0, np.inf]), "n": np.array([np.nan])}, "PSNR")
    assert ax.get_xlabel() == "PSNR"
    fig, ax = plotting.plot_tsne(np.random.rand(20, 2), np.arange(20) % 3, highlight=np.array([0.5, 0.5]))
    assert len(ax.collections) == 4
    maps = np.random.rand(2, 4, 7, 7)
    maps[:, :, 0, 0] = np.nan
    fig, axes = plotting.plot_cls_attention(maps, image=x[0], rollout=np.random.rand(7, 7))
    assert len(axes) == 4
    fig, axes = plotting.plot_overlay_row(x, {"h": np.random.rand(5, 28, 28)}, {"h": np.zeros((5, 28, 28))}, n_show=2)
    assert len(axes) == 1
    hist = {"l": {"counts": np.array([1, 2]), "edges": np.array([0.0, 1.0, 2.0])}}
    fig, axes = plotting.plot_weight_histograms(hist, hist)
    fig, ax = plotting.plot_radius_bars({"a": [1, 2], "b": [2, 1]}, ["0", "1"])
    assert len(ax.patches) == 4


def test_optional_ax_is_drawn_on():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    f2, a2 = plotting.plot_overlay(torch.rand(1, 28, 28), np.random.rand(28, 28), mask=np.ones((28, 28)), ax=ax)
    assert f2 is fig and a2 is ax and len(ax.images) == 3


def test_empty_rows_rejected():
    with pytest.raises(ValueError):
        plotting.plot_image_rows({})
