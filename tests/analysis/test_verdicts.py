from mae_hf.analysis.verdicts import compute_verdicts, h1_verdict, h2_verdict, h3_verdict


def latents(dae_radius, mae_radius, dae_acc, mae_acc):
    def entry(r, acc):
        return {
            "tsne_radius": {"mean": r},
            "original_radius": {"mean": r * 10},
            "scale_free_radius": {"mean": r / 10},
            "silhouette": acc - 0.5,
            "knn_accuracy": acc,
            "linear_probe_accuracy": acc,
        }

    return {"dae": entry(dae_radius, dae_acc), "mae_cls": entry(mae_radius, mae_acc)}


def test_h1_follows_the_numbers():
    v = h1_verdict(latents(dae_radius=5.0, mae_radius=2.0, dae_acc=0.9, mae_acc=0.8))
    by = {r["measure"]: r["holds"] for r in v["measures"]}
    assert by["tsne_radius"] and by["scale_free_radius"] and not by["knn_accuracy"] and not by["silhouette"]
    flipped = h1_verdict(latents(dae_radius=2.0, mae_radius=5.0, dae_acc=0.8, mae_acc=0.9))
    assert all(r["holds"] != by[r["measure"]] for r in flipped["measures"])
    assert len(v["holds_under"]) + len(v["fails_under"]) == len(v["measures"]) == 6


def weights(dae_t, dae_i, mae_t, mae_i):
    def e(t, i):
        return {
            "trained": {"near_zero_fraction": {"absolute": t, "relative": t}},
            "init": {"near_zero_fraction": {"absolute": i, "relative": i}},
        }

    return {"dae": e(dae_t, dae_i), "mae": e(mae_t, mae_i)}


def test_h2_judged_against_init():
    v = h2_verdict(weights(dae_t=0.10, dae_i=0.10, mae_t=0.05, mae_i=0.02))
    by = {r["measure"]: r["holds"] for r in v["measures"]}
    assert by["near_zero_fraction_absolute"]  # DAE has more near-zero weights...
    assert not by["near_zero_fraction_absolute_change_from_init"]  # ...but gained none in training, the MAE did


def table(mae_psnr, dae_psnr):
    def cell(p):
        return {"psnr": {"mean": p}, "ssim": {"mean": p / 100}, "psnr_masked": {"mean": p - 5}}

    return {
        "mae": {"mask": cell(mae_psnr), "noise": cell(mae_psnr - 10)},
        "dae": {"mask": cell(dae_psnr - 10), "noise": cell(dae_psnr)},
    }


def test_h3_own_vs_same_corruption():
    v = h3_verdict(table(mae_psnr=20.0, dae_psnr=18.0))
    rows = {(r["measure"], r["corruption"]): r["holds"] for r in v["measures"]}
    assert rows["psnr", "MAE: masked, DAE: noisy"]  # 20 > 18
    assert rows["psnr", "MAE: masked, DAE: masked"]  # 20 > 8
    assert not rows["psnr", "MAE: noisy, DAE: noisy"]  # 10 < 18
    v2 = h3_verdict(table(mae_psnr=15.0, dae_psnr=18.0))
    assert not {(r["measure"], r["corruption"]): r["holds"] for r in v2["measures"]}["psnr", "MAE: masked, DAE: noisy"]


def test_compute_verdicts_all_three():
    v = compute_verdicts(latents(5.0, 2.0, 0.9, 0.8), weights(0.1, 0.1, 0.05, 0.02), table(20.0, 18.0))
    assert set(v) == {"H1", "H2", "H3"} and all("claim" in x for x in v.values())
