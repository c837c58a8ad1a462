import numpy as np
import pytest

from mae_hf.analysis import clustering as cl
from mae_hf.analysis import factorial as fac

N, S = 200, 3
LABELS = np.arange(N) % 4


def grid(values: dict[str, float], noise: float = 0.1, seed: int = 0, measure: str = "psnr") -> dict:
    """Per-image values around a cell mean, for S seeds."""
    rng = np.random.default_rng(seed)
    return {cell: {measure: mean + noise * rng.standard_normal((S, N))} for cell, mean in values.items()}


def analyse(runs, n_boot=400):
    draws = fac.bootstrap_draws(S, N, n_boot, seed=1)
    reps = fac.bootstrap_cells(runs, LABELS, draws)
    summary = fac.summarize_cells(runs, LABELS, reps)
    return summary, fac.effects(summary, reps)


def test_draws_are_shared_resamples_of_seeds_and_images():
    d = fac.bootstrap_draws(3, 50, n_boot=10, seed=0)
    assert d["seeds"].shape == (10, 3) and d["seeds"].max() < 3
    assert d["weights"].shape == (10, 3, 50) and (d["weights"].sum(-1) == 50).all()
    assert np.array_equal(d["seeds"], fac.bootstrap_draws(3, 50, n_boot=10, seed=0)["seeds"])
    with pytest.raises(ValueError, match="at least one seed"):
        fac.bootstrap_draws(0, 50)


def test_effects_decompose_the_study_contrast():
    runs = grid({"vit_mask": 14.0, "vit_noise": 13.0, "cnn_mask": 12.5, "cnn_noise": 12.0})
    summary, table = analyse(runs)
    e = table["psnr"]
    # architecture ((14+13)-(12.5+12))/2 = 1.25, corruption ((14+12.5)-(13+12))/2 = 0.75, interaction 1-0.5 = 0.5
    assert e["architecture"]["estimate"] == pytest.approx(1.25, abs=0.03)
    assert e["corruption"]["estimate"] == pytest.approx(0.75, abs=0.03)
    assert e["interaction"]["estimate"] == pytest.approx(0.5, abs=0.05)
    d = e["study_contrast"]["estimate"]
    assert d == pytest.approx(e["architecture"]["estimate"] + e["corruption"]["estimate"], abs=1e-9)
    for effect in e.values():
        assert effect["ci_low"] <= effect["estimate"] <= effect["ci_high"] and effect["significant"]


def test_verdict_names_the_factor_that_carries_the_difference():
    # only the architecture matters: MAE > DAE holds, due to architecture
    runs = grid({"vit_mask": 14.0, "vit_noise": 14.0, "cnn_mask": 12.0, "cnn_noise": 12.0})
    _, table = analyse(runs)
    h3 = fac.claim_verdicts(table)["H3"]["measures"]["psnr"]
    assert h3["verdict"] == "holds" and h3["due_to"] == "architecture"
    assert not table["psnr"]["corruption"]["significant"]
    # only the corruption matters
    runs = grid({"vit_mask": 14.0, "vit_noise": 12.0, "cnn_mask": 14.0, "cnn_noise": 12.0})
    h3 = fac.claim_verdicts(analyse(runs)[1])["H3"]["measures"]["psnr"]
    assert h3["verdict"] == "holds" and h3["due_to"] == "corruption"
    # the DAE is better: reversed; no difference: not shown
    runs = grid({"vit_mask": 11.0, "vit_noise": 12.0, "cnn_mask": 12.0, "cnn_noise": 12.0})
    assert fac.claim_verdicts(analyse(runs)[1])["H3"]["measures"]["psnr"]["verdict"] == "reversed"
    runs = grid({c: 12.0 for c in fac.CELLS}, noise=1.0)
    assert fac.claim_verdicts(analyse(runs)[1])["H3"]["measures"]["psnr"]["verdict"] == "not shown"


def test_lower_is_tighter_measures_and_the_dae_claim_are_oriented():
    # a smaller radius for the ViT cells = tighter = as H1 claims
    runs = grid({"vit_mask": 1.0, "vit_noise": 1.0, "cnn_mask": 2.0, "cnn_noise": 2.0}, measure="tsne_radius")
    h1 = fac.claim_verdicts(analyse(runs)[1])["H1"]["measures"]["tsne_radius"]
    assert h1["verdict"] == "holds" and h1["contrast"]["estimate"] == pytest.approx(1.0, abs=0.05)
    assert h1["contrast"]["ci_low"] <= h1["contrast"]["estimate"] <= h1["contrast"]["ci_high"]
    # H2 claims the DAE (cnn_noise) has MORE near-zero weights: a larger CNN value holds it
    runs = {
        c: {"near_zero_relative": np.array([v, v + 0.001, v - 0.001])}
        for c, v in {"vit_mask": 0.01, "vit_noise": 0.01, "cnn_mask": 0.03, "cnn_noise": 0.03}.items()
    }
    h2 = fac.claim_verdicts(analyse(runs)[1])["H2"]
    assert h2["measures"]["near_zero_relative"]["verdict"] == "holds"
    assert h2["measures"]["near_zero_relative"]["due_to"] == "architecture"


def test_class_mean_reduction_is_the_mean_class_radius():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, 6)) + LABELS[:, None]
    m = cl.per_image_measures(feats, feats[:, :2], LABELS, feats, LABELS)
    runs = {c: {"original_radius": np.stack([m["original_radius"]] * S)} for c in fac.CELLS}
    summary, _ = analyse(runs, n_boot=50)
    assert summary["vit_mask"]["original_radius"]["estimate"] == pytest.approx(
        cl.class_radii(feats, LABELS)["radius"].mean()
    )
    assert summary["vit_mask"]["original_radius"]["per_seed"] == pytest.approx(
        [cl.class_radii(feats, LABELS)["radius"].mean()] * S
    )


def test_effects_need_the_whole_grid():
    runs = grid({"vit_mask": 1.0, "cnn_noise": 1.0})
    draws = fac.bootstrap_draws(S, N, 20)
    reps = fac.bootstrap_cells(runs, LABELS, draws)
    with pytest.raises(ValueError, match="all four cells"):
        fac.effects(fac.summarize_cells(runs, LABELS, reps), reps)


def test_runs_must_match_the_draws():
    runs = grid({c: 1.0 for c in fac.CELLS})
    with pytest.raises(ValueError, match="runs, but the draws are for 2 seeds"):
        fac.bootstrap_cells(runs, LABELS, fac.bootstrap_draws(2, N, 10))
