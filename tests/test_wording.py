"""The study's numbers and verdicts in words (`mae_hf.wording`): each sentence names the budget, the numbers, their
interval and the seeds, and a budget without enough seeds gets no verdict."""

import numpy as np

from mae_hf.analysis import factorial as fac
from mae_hf.wording import claim_sentence, crossing_text, interval_text, measure_sentence, value_text, verdict_spans


def entry(estimate, lo=None, hi=None, n=3, significant=False):
    return {"estimate": estimate, "ci_low": lo, "ci_high": hi, "n_seeds": n, "significant": significant}


def test_values_and_intervals_in_the_measures_units():
    assert value_text("psnr", 17.944) == "17.94 dB" and value_text("near_zero_relative", 0.0822) == "8.2%"
    assert value_text("knn_accuracy", 0.0491, signed=True) == "+0.049"
    assert interval_text("psnr", entry(0.48, 0.1, 0.86)) == "+0.48 dB [+0.10, +0.86]"
    assert interval_text("near_zero_relative", entry(-0.08, -0.087, -0.073)) == "-8.0% [-8.7%, -7.3%]"
    assert interval_text("knn_accuracy", entry(0.021, n=1)) == "+0.021 (1 seed, no interval)"


def verdicts(means: dict[str, float], seeds: int, noise: float = 0.0002) -> dict:
    rng = np.random.default_rng(0)
    runs = {c: {"knn_accuracy": m + noise * rng.standard_normal(seeds)} for c, m in means.items()}
    values = fac.seed_values(runs, np.arange(4))
    return fac.claim_verdicts(fac.summarize_cells(values), fac.effects(values))["H1b"]


KNN = {"vit_mask": 0.92, "vit_noise": 0.76, "cnn_mask": 0.82, "cnn_noise": 0.89}  # masking helps the ViT, not the CNN


def test_a_claim_in_one_sentence_with_budget_number_interval_and_seeds():
    v = verdicts(KNN, seeds=3)
    text = claim_sentence(v, 240_000)
    row = v["measures"]["knn_accuracy"]
    assert text.startswith("At 240,000 images seen (3 seeds; MAE − DAE, 95% interval over seeds), the claim holds on")
    assert f"5-NN accuracy ({interval_text('knn_accuracy', row['contrast'])})" in text and text.count(". ") == 0
    words = measure_sentence("knn_accuracy", row)
    assert words.startswith("5-NN accuracy: MAE 0.920, DAE 0.890, MAE − DAE +0.030 [")
    assert "over 3 seeds: holds" in words and "masking − noise in the ViT +0.160 [" in words  # the simple effects
    assert "carried by" not in words
    crossing = crossing_text("knn_accuracy", row)
    assert crossing.startswith("on 5-NN accuracy masking − noise is +0.160 [") and "in the CNN" in crossing


def test_one_seed_gives_numbers_and_no_verdict():
    v = verdicts(KNN, seeds=1)
    assert claim_sentence(v, 1_200_000) == (
        "At 1,200,000 images seen, 1 seed: not tested (MAE − DAE 5-NN accuracy +0.030, no interval)."
    )
    assert measure_sentence("knn_accuracy", v["measures"]["knn_accuracy"]).endswith(
        "MAE − DAE +0.030 (1 seed, no interval): 1 seed, not tested"
    )


def test_the_verdict_budget_by_budget():
    def b(seen, seeds, verdict):
        return {"images_seen": seen, "seeds": list(range(seeds)), "verdicts": {"H1": {"verdict": verdict}}}

    budgets = [b(12_032, 3, "reversed"), b(60_000, 3, "reversed"), b(240_000, 3, "holds"), b(600_000, 1, "not tested")]
    budgets.append(b(1_200_000, 1, "not tested"))
    assert verdict_spans(budgets, "H1") == (
        "is reversed at 12,032–60,000 images seen and holds at 240,000 (3 seeds each); "
        "at 600,000–1,200,000, 1 seed: not tested"
    )
