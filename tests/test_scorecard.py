"""The scorecard's mask-ratio sweep (mae_hf/scorecard.py): pooled masked-region PSNR by `compute_pooled_psnr`, over
the reconstructions of the one evaluation engine."""

import math
from pathlib import Path

import pytest
import torch

from mae_hf.data import dataset_to_tensors
from mae_hf.evaluation import Corruption, draw_noise, reconstruct
from mae_hf.loading import load_dae, load_mae
from mae_hf.scorecard import mask_ratio_sweep

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def _pooled_by_hand(guess: torch.Tensor, x: torch.Tensor, pixel_mask: torch.Tensor) -> float:
    m = pixel_mask.expand_as(x).double()
    return 10 * math.log10(float(m.sum()) / float((((guess.double() - x.double()) ** 2) * m).sum()))


def test_the_sweep_pools_every_masked_pixel_of_every_image(tiny_mae, mnist_batch):
    x = mnist_batch[0][:12]
    mean_image = mnist_batch[0].mean(0, keepdim=True)
    rows = mask_ratio_sweep(tiny_mae, x, mean_image, (0.25, 0.75), seed=1, batch_size=5)
    for row in rows:
        rec = reconstruct(
            tiny_mae, x, Corruption("mask", row["mask_ratio"]), draw_noise(tiny_mae, "mask", range(12), 1)
        )
        assert row["psnr_masked_pooled"] == pytest.approx(_pooled_by_hand(rec.reconstruction, x, rec.pixel_mask))
        assert row["black"] == pytest.approx(_pooled_by_hand(torch.zeros_like(x), x, rec.pixel_mask))
        assert row["mean_image"] == pytest.approx(_pooled_by_hand(mean_image.expand_as(x), x, rec.pixel_mask))
        assert row["margin"] == pytest.approx(row["psnr_masked_pooled"] - max(row["black"], row["mean_image"]))
    by_12 = mask_ratio_sweep(tiny_mae, x, mean_image, (0.25, 0.75), seed=1, batch_size=12)
    for a, b in zip(rows, by_12):
        assert a == pytest.approx(b, rel=1e-6)


# What the sweep gave for the bundled models on the first 64 test digits (seed 0, their mean as the mean image)
# before its pooled PSNR was metrics.compute_pooled_psnr (float32 batch sums then, float64 now: ~3e-7 dB apart).
BEFORE = {
    "mae": {
        0.5: (19.08469971625943, 20.82551703286329, 10.197835126115828, 12.196984020859865),
        0.75: (16.143758448546105, 17.240521090473287, 10.17209836306005, 12.142802099202415),
    },
    "dae": {
        0.5: (11.447192437769353, 12.299541638425023, 10.197835126115828, 12.196984020859865),
        0.75: (10.889271338859698, 11.409582358567983, 10.17209836306005, 12.142802099202415),
    },
}


@pytest.mark.parametrize("kind", ["mae", "dae"])
def test_the_bundled_models_sweep_gives_the_numbers_it_gave_before(kind, mnist):
    model = (load_mae if kind == "mae" else load_dae)(PRETRAINED / f"{kind}-mnist")
    x = dataset_to_tensors(mnist["test"], n=64)[0]
    for row in mask_ratio_sweep(model, x, x.mean(0, keepdim=True), (0.5, 0.75), seed=0):
        pooled, mean, black, mean_image = BEFORE[kind][row["mask_ratio"]]
        assert row["psnr_masked_mean"] == pytest.approx(mean, rel=1e-6)
        for key, before in (("psnr_masked_pooled", pooled), ("black", black), ("mean_image", mean_image)):
            assert row[key] == pytest.approx(before, abs=1e-5), key


def test_the_field_protocol_reads_each_model_its_random_init_twin_and_the_pixels_the_same_way(mnist):
    """Every row is `readout_scores` of that row's features, with one validation split of the training set; the
    twin is the model's architecture freshly initialised (its kind's build_like)."""
    import numpy as np

    from mae_hf.analysis.readout import READOUT_MEASURES, readout_scores
    from mae_hf.registry import kind_of
    from mae_hf.scorecard import features, field_protocol
    from mae_hf.validation import validation_indices

    models = {"dae": load_dae(PRETRAINED / "dae-mnist")}
    train, test = dataset_to_tensors(mnist["train"], n=120), dataset_to_tensors(mnist["test"], n=40)
    out = field_protocol(models, train, test, init_seed=3)
    assert set(out["rows"]) == {"dae", "dae_random_init", "raw_pixels"}
    s = out["settings"]
    assert (s["n_train"], s["n_validation"], s["n_test"], s["init_seed"]) == (120, 20, 40, 3)
    y, test_y = train[1].numpy(), test[1].numpy()
    twin = kind_of(models["dae"]).build_like(models["dae"], 3)
    for name, model, f_train, f_test in (
        ("dae", models["dae"], features(models["dae"], train[0]), features(models["dae"], test[0])),
        ("dae_random_init", twin, features(twin, train[0]), features(twin, test[0])),
        ("raw_pixels", None, train[0].flatten(1).numpy(), test[0].flatten(1).numpy()),
    ):
        row = out["rows"][name]
        assert set(row["accuracy"]) == set(READOUT_MEASURES)
        expected = readout_scores(f_train, y, f_test, test_y, validation_indices(y))
        assert row["accuracy"] == expected["accuracy"] and row["probes"] == expected["probes"], name
        assert row["num_parameters"] == (None if model is None else sum(p.numel() for p in model.parameters()))
    assert out["rows"]["dae"]["features"] == "dae" and out["rows"]["raw_pixels"]["feature_dim"] == 784
    # the twin is untrained: same architecture, other weights
    assert not all(
        np.array_equal(a.detach(), b.detach()) for a, b in zip(twin.parameters(), models["dae"].parameters())
    )
