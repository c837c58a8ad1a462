import numpy as np
import pytest

from mae_hf.analysis.weights import (
    _layer_name,
    layer_parameters,
    near_zero_fraction,
    near_zero_table,
    weight_histograms,
)


@pytest.mark.parametrize("fixture", ["tiny_dae", "tiny_mae"])
def test_histogram_counts_sum_to_parameter_count(fixture, request):
    model = request.getfixturevalue(fixture)
    hist = weight_histograms(model, bins=25, kind="all")
    assert sum(h["counts"].sum() for h in hist.values()) == sum(p.numel() for p in model.parameters())
    weights = weight_histograms(model, kind="weights")
    expected = sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.ndim >= 2 and p.requires_grad and "token" not in n and "position" not in n and "pos_embed" not in n
    )
    assert sum(h["counts"].sum() for h in weights.values()) == expected
    assert all(len(h["edges"]) == 26 for h in hist.values())


def test_layer_grouping():
    assert _layer_name("vit.encoder.layer.0.attention.attention.query.weight") == "vit.encoder.layer.0"
    assert _layer_name("decoder.decoder_layers.1.output.dense.weight") == "decoder.decoder_layers.1"
    assert _layer_name("encoder.2.weight") == "encoder.2"
    assert _layer_name("decoder.decoder_pred.weight") == "decoder.decoder_pred"


def test_dae_layers_and_shared_range(tiny_dae):
    groups = layer_parameters(tiny_dae)
    assert list(groups) == ["encoder.0", "encoder.1", "encoder.2", "decoder.0", "decoder.1", "decoder.2", "head"]
    h = weight_histograms(tiny_dae, bins=10, value_range={"encoder.0": (-1.0, 1.0)})
    np.testing.assert_allclose(h["encoder.0"]["edges"][[0, -1]], [-1.0, 1.0])


def test_near_zero_fraction_known_values():
    v = np.array([0.0, 0.005, 0.02, -0.001, 1.0])
    f = near_zero_fraction(v, eps_abs=0.01, eps_rel=0.1)
    assert f["absolute"] == pytest.approx(3 / 5)
    assert f["relative"] == pytest.approx(np.mean(np.abs(v) < 0.1 * v.std()))
    assert near_zero_fraction(v * 100, eps_abs=0.01)["relative"] == f["relative"]  # relative is scale-free
    with pytest.raises(ValueError):
        near_zero_fraction(np.array([]))


def test_near_zero_table_pools_layers(tiny_dae):
    t = near_zero_table(tiny_dae, eps_abs=0.05)
    n = sum(s["n"] for s in t["layers"].values())
    pooled = sum(s["absolute"] * s["n"] for s in t["layers"].values()) / n
    assert t["overall"]["n"] == n and t["overall"]["absolute"] == pytest.approx(pooled)
    values = np.concatenate(list(layer_parameters(tiny_dae).values()))
    assert t["overall"]["absolute"] == pytest.approx(np.mean(np.abs(values) < 0.05))
