import numpy as np
import pytest
from scipy import stats

from mae_hf.analysis import clustering as cl
from mae_hf.analysis import factorial as fac

N, S = 200, 3
LABELS = np.arange(N) % 4
VM, VN, CM, CN = fac.CELLS


def grid(values: dict[str, float], noise: float = 0.1, seed: int = 0, measure: str = "psnr", seeds: int = S) -> dict:
    """Per-image values around a cell mean, independent per seed and cell (so each run's mean varies by seed)."""
    rng = np.random.default_rng(seed)
    return {cell: {measure: mean + noise * rng.standard_normal((seeds, N))} for cell, mean in values.items()}


def analyse(runs):
    values = fac.seed_values(runs, LABELS)
    summary = fac.summarize_cells(values)
    table = fac.effects(values)
    return summary, table, fac.claim_verdicts(summary, table)


def test_a_t_interval_is_scipys_over_seeds_and_needs_a_spread():
    e = fac.t_interval(np.array([1.0, 2.0, 1.5]))
    lo, hi = stats.ttest_1samp([1.0, 2.0, 1.5], 0).confidence_interval(0.95)
    assert e["estimate"] == pytest.approx(1.5) and (e["ci_low"], e["ci_high"]) == pytest.approx((lo, hi))
    assert e["n_seeds"] == 3 and e["per_seed"] == [1.0, 2.0, 1.5] and e["significant"]
    one = fac.t_interval(np.array([0.0822]))  # one seed: a number, no interval, never significant
    assert one["ci_low"] is None and one["ci_high"] is None and not one["significant"]
    flat = fac.t_interval(np.array([0.0822, 0.0822, 0.0822]))  # zero width: never significant
    assert flat["ci_low"] == flat["ci_high"] == pytest.approx(0.0822) and not flat["significant"]
    two = fac.t_interval(np.array([1.0, 1.01]))  # an interval (away from 0), but fewer seeds than a test needs
    assert two["ci_low"] > 0 and not two["significant"]
    with pytest.raises(ValueError, match="at least one seed"):
        fac.t_interval(np.array([]))


def test_effects_decompose_the_study_contrast_and_the_simple_effects_add_up():
    runs = grid({VM: 14.0, VN: 13.0, CM: 12.5, CN: 12.0})
    summary, table, _ = analyse(runs)
    e = table["psnr"]
    # architecture ((14+13)-(12.5+12))/2 = 1.25, corruption ((14+12.5)-(13+12))/2 = 0.75, interaction 1-0.5 = 0.5
    assert e["architecture"]["estimate"] == pytest.approx(1.25, abs=0.03)
    assert e["corruption"]["estimate"] == pytest.approx(0.75, abs=0.03)
    assert e["interaction"]["estimate"] == pytest.approx(0.5, abs=0.05)
    a, c, i = (e[k]["estimate"] for k in ("architecture", "corruption", "interaction"))
    assert e["study_contrast"]["estimate"] == pytest.approx(a + c, abs=1e-12)
    assert e["masking_in_vit"]["estimate"] == pytest.approx(c + i / 2, abs=1e-12)
    assert e["masking_in_cnn"]["estimate"] == pytest.approx(c - i / 2, abs=1e-12)
    assert e["vit_in_mask"]["estimate"] == pytest.approx(a + i / 2, abs=1e-12)
    assert e["vit_in_noise"]["estimate"] == pytest.approx(a - i / 2, abs=1e-12)
    for effect in e.values():
        assert effect["ci_low"] <= effect["estimate"] <= effect["ci_high"] and effect["significant"]
        assert effect["n_seeds"] == S and len(effect["per_seed"]) == S
    # paired: the contrast's interval is the t-interval of the seed-by-seed differences
    diffs = np.array(summary[VM]["psnr"]["per_seed"]) - np.array(summary[CN]["psnr"]["per_seed"])
    assert e["study_contrast"]["per_seed"] == pytest.approx(diffs)
    lo, hi = stats.ttest_1samp(diffs, 0).confidence_interval(0.95)
    assert (e["study_contrast"]["ci_low"], e["study_contrast"]["ci_high"]) == pytest.approx((lo, hi))


def test_pairing_removes_what_seeds_share():
    """A seed effect shared by the four cells (one seed trains every cell better) widens the cell intervals but
    not the effects', which are taken seed by seed."""
    shared = np.array([-1.0, 0.0, 1.0])[:, None]
    runs = {
        cell: {"psnr": m + shared + 0.01 * np.random.default_rng(k).standard_normal((S, N))}
        for k, (cell, m) in enumerate({VM: 14.0, VN: 13.0, CM: 12.5, CN: 12.0}.items())
    }
    summary, table, _ = analyse(runs)
    assert summary[VM]["psnr"]["ci_high"] - summary[VM]["psnr"]["ci_low"] > 4
    contrast = table["psnr"]["study_contrast"]
    assert contrast["ci_high"] - contrast["ci_low"] < 0.1 and contrast["significant"]


def test_verdict_names_the_factor_that_carries_the_difference():
    # only the architecture matters: MAE > DAE holds, due to architecture
    _, table, verdicts = analyse(grid({VM: 14.0, VN: 14.0, CM: 12.0, CN: 12.0}))
    h3 = verdicts["H3"]["measures"]["psnr"]
    assert h3["verdict"] == "holds" and h3["due_to"] == "architecture" and h3["simple_effects"] is None
    assert not table["psnr"]["corruption"]["significant"] and not h3["interaction_dominates"]
    # only the corruption matters
    h3 = analyse(grid({VM: 14.0, VN: 12.0, CM: 14.0, CN: 12.0}))[2]["H3"]["measures"]["psnr"]
    assert h3["verdict"] == "holds" and h3["due_to"] == "corruption"
    # the DAE is better: reversed; no difference: not shown
    assert analyse(grid({VM: 11.0, VN: 12.0, CM: 12.0, CN: 12.0}))[2]["H3"]["measures"]["psnr"]["verdict"] == "reversed"
    assert analyse(grid({c: 12.0 for c in fac.CELLS}, noise=1.0))[2]["H3"]["measures"]["psnr"]["verdict"] == "not shown"


def test_where_the_factors_cross_the_verdict_gives_the_simple_effects():
    """The kNN pattern of the study: masking helps the ViT and hurts the CNN; the main effects are small beside
    the interaction, so the row reports each factor within each level of the other instead of what "carries" it."""
    runs = grid({VM: 0.92, VN: 0.76, CM: 0.82, CN: 0.89}, noise=0.02, measure="knn_accuracy")
    _, table, verdicts = analyse(runs)
    row = verdicts["H1b"]["measures"]["knn_accuracy"]
    assert row["interaction_dominates"] and row["due_to"] is None
    simple = row["simple_effects"]
    assert (
        simple["masking_in_vit"]["estimate"] == pytest.approx(0.16, abs=0.01)
        and simple["masking_in_vit"]["significant"]
    )
    assert (
        simple["masking_in_cnn"]["estimate"] == pytest.approx(-0.07, abs=0.01)
        and simple["masking_in_cnn"]["significant"]
    )
    assert set(simple) == set(fac.SIMPLE_EFFECTS) and row["verdict"] == "holds"


def test_numbers_are_as_measured_and_the_claimed_direction_is_named():
    # a smaller radius for the ViT cells = tighter = as H1 claims; the contrast stays MAE − DAE as measured
    runs = grid({VM: 1.0, VN: 1.0, CM: 2.0, CN: 2.0}, measure="tsne_radius")
    h1 = analyse(runs)[2]["H1"]["measures"]["tsne_radius"]
    assert h1["verdict"] == "holds" and h1["claim"] == "mae < dae"
    assert h1["contrast"]["estimate"] == pytest.approx(-1.0, abs=0.05)
    assert h1["mae"]["estimate"] == pytest.approx(1.0, abs=0.05) and h1["dae"]["estimate"] == pytest.approx(
        2.0, abs=0.05
    )
    # H2 claims the DAE (cnn_noise) has MORE near-zero weights: a larger CNN value holds it
    rng = np.random.default_rng(0)
    runs = {
        c: {"near_zero_relative": v + 0.001 * rng.standard_normal(S)}
        for c, v in {VM: 0.01, VN: 0.01, CM: 0.03, CN: 0.03}.items()
    }
    h2 = analyse(runs)[2]["H2"]["measures"]["near_zero_relative"]
    assert h2["verdict"] == "holds" and h2["claim"] == "dae > mae" and h2["due_to"] == "architecture"


def test_no_verdict_from_one_seed_or_from_an_interval_of_zero_width():
    # one seed: the numbers, no interval, "not tested"
    _, table, verdicts = analyse(grid({VM: 14.0, VN: 14.0, CM: 12.0, CN: 12.0}, seeds=1))
    assert table["psnr"]["study_contrast"]["ci_low"] is None and not table["psnr"]["study_contrast"]["significant"]
    assert verdicts["H3"]["measures"]["psnr"]["verdict"] == "not tested" and verdicts["H3"]["verdict"] == "not tested"
    assert verdicts["H3"]["measures"]["psnr"]["due_to"] is None
    # two seeds: still not tested
    assert analyse(grid({VM: 14.0, VN: 14.0, CM: 12.0, CN: 12.0}, seeds=2))[2]["H3"]["verdict"] == "not tested"
    # the same weights at every seed (the old grid's weight measures at one seed): zero width, not shown
    runs = {c: {"near_zero_relative": np.full(S, v)} for c, v in {VM: 0.08, VN: 0.08, CM: 0.2, CN: 0.17}.items()}
    _, table, verdicts = analyse(runs)
    c = table["near_zero_relative"]["study_contrast"]
    assert c["ci_low"] == pytest.approx(c["ci_high"]) and not c["significant"]
    assert verdicts["H2"]["measures"]["near_zero_relative"]["verdict"] == "not shown"


def test_class_mean_reduction_is_the_mean_class_radius():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, 6)) + LABELS[:, None]
    m = cl.per_image_measures(feats, feats[:, :2], LABELS, feats, LABELS)
    runs = {c: {"original_radius": np.stack([m["original_radius"]] * S)} for c in fac.CELLS}
    summary = fac.summarize_cells(fac.seed_values(runs, LABELS))
    radius = cl.class_radii(feats, LABELS)["radius"].mean()
    assert summary[VM]["original_radius"]["estimate"] == pytest.approx(radius)
    assert summary[VM]["original_radius"]["per_seed"] == pytest.approx([radius] * S)


def test_measures_are_read_from_the_runs_and_can_be_registered():
    """A measure the table lacks is reduced by its shape and gets effects, but bears on no claim; registered with a
    claim, it is judged with that claim's measures."""
    rng = np.random.default_rng(0)
    runs = {
        c: {"knn20_accuracy": m + 0.002 * rng.standard_normal(S), "psnr": m + 0.01 * rng.standard_normal((S, N))}
        for c, m in {VM: 0.95, VN: 0.8, CM: 0.85, CN: 0.9}.items()
    }
    _, table, verdicts = analyse(runs)
    assert "knn20_accuracy" in table and "H1b" not in verdicts  # H1b's measures are not in these runs
    saved_measures, saved_claim = dict(fac.MEASURES), list(fac.CLAIMS["H1b"]["measures"])
    try:
        fac.register_measure("knn20_accuracy", "scalar", +1, "weighted cosine 20-NN accuracy", claim="H1b")
        row = analyse(runs)[2]["H1b"]["measures"]["knn20_accuracy"]
        assert row["verdict"] == "holds" and row["claim"] == "mae > dae"
        with pytest.raises(ValueError, match="No claim 'H9'"):
            fac.register_measure("x", "mean", 1, "x", claim="H9")
        with pytest.raises(ValueError, match="reduces by"):
            fac.register_measure("x", "median", 1, "x")
    finally:
        fac.MEASURES.clear()
        fac.MEASURES.update(saved_measures)
        fac.CLAIMS["H1b"]["measures"][:] = saved_claim


def test_effects_need_the_whole_grid_and_runs_the_same_seeds():
    with pytest.raises(ValueError, match="all four cells"):
        fac.effects(fac.seed_values(grid({VM: 1.0, CN: 1.0}), LABELS))
    runs = grid({c: 1.0 for c in fac.CELLS})
    runs[CN]["psnr"] = runs[CN]["psnr"][:2]
    with pytest.raises(ValueError, match="2 runs, but the other measures have 3 seeds"):
        fac.seed_values(runs, LABELS)


def simulated_coverage(n_experiments: int = 400, seeds: int = S, seed: int = 0) -> dict[str, float]:
    """How often the 95% intervals of every effect cover the true effect, over `n_experiments` simulated grids of
    `seeds` seeds each: cell means with known effects; each seed draws a shift shared by the four cells, one of its
    own per cell (the between-seed variance an effect's interval must cover) and independent noise per test image."""
    rng = np.random.default_rng(seed)
    means = {VM: 0.92, VN: 0.76, CM: 0.82, CN: 0.89}  # architecture 0.035, corruption 0.045, interaction 0.23
    truth = {e: sum(w * means[c] for c, w in weights.items()) for e, weights in fac.EFFECTS.items()}
    covered = dict.fromkeys(fac.EFFECTS, 0)
    n_images, labels = 30, np.arange(30) % 3
    for _ in range(n_experiments):
        shared = 0.03 * rng.standard_normal((seeds, 1))
        runs = {
            c: {
                "knn_accuracy": m
                + shared
                + 0.02 * rng.standard_normal((seeds, 1))
                + 0.05 * rng.standard_normal((seeds, n_images))
            }
            for c, m in means.items()
        }
        table = fac.effects(fac.seed_values(runs, labels))["knn_accuracy"]
        for e, t in truth.items():
            covered[e] += table[e]["ci_low"] <= t <= table[e]["ci_high"]
    return {e: n / n_experiments for e, n in covered.items()}


def test_seed_level_intervals_cover_the_true_effect_about_95_percent_of_the_time():
    """400 simulated 3-seed grids with between-seed variance: every effect's nominal 95% interval covers the true
    effect in 92–98% of them (binomial sd at 400: 1.1 points). A normal quantile instead of t with 2 degrees of
    freedom would cover about 81%, an interval from the test images alone far less."""
    coverage = simulated_coverage()
    assert all(0.92 <= c <= 0.98 for c in coverage.values()), coverage
