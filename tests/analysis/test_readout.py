"""The field's readouts (mae_hf/analysis/readout.py): the weighted cosine kNN against a brute-force reference written
here, and the probes' hyperparameter chosen on validation, never on the test split."""

import numpy as np
import pytest

from mae_hf.analysis import readout as ro
from mae_hf.validation import validation_indices


def _reference_knn(bank_x, bank_y, query_x, k, t):
    """DINO's weighted kNN written out: L2-normalise, every cosine similarity, the top k (ties: the earlier bank
    item), exp(sim / T) votes per class, the largest vote (ties: the smallest class)."""
    classes = np.unique(bank_y)
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)  # noqa: E731
    sim = unit(query_x) @ unit(bank_x).T  # (M, N)
    out = []
    for row in sim:
        top = np.argsort(-row, kind="stable")[:k]
        votes = np.array([np.exp(row[top][bank_y[top] == c] / t).sum() for c in classes])
        out.append(classes[np.argmax(votes)])
    return np.array(out)


def _blobs(n, d=6, classes=4, spread=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d)) * 2
    return centres[y] + rng.normal(scale=spread, size=(n, d)), y


@pytest.mark.parametrize("settings", [ro.KNN_SETTINGS, ((1, 0.5), (7, 1.0), (5, 0.01))])
def test_the_weighted_knn_is_the_brute_force_reference(settings):
    bank_x, bank_y = _blobs(300)
    query_x, _ = _blobs(80, seed=1)
    predicted = ro.weighted_knn_predict(bank_x, bank_y, query_x, settings)
    for k, t in settings:
        np.testing.assert_array_equal(predicted[k, t], _reference_knn(bank_x, bank_y, query_x, min(k, 300), t))


def test_the_knn_search_is_chunked_and_the_chunks_change_nothing():
    """scikit-learn's brute search works through the bank in blocks of `working_memory`: with blocks of a few rows
    (as a 60,000-image bank gets at the default 1 GB) the answer is the same."""
    import sklearn

    bank_x, bank_y = _blobs(400)
    query_x, _ = _blobs(150, seed=5)
    whole = ro.weighted_knn_predict(bank_x, bank_y, query_x)
    with sklearn.config_context(working_memory=0.01):  # 10 kB: about three query rows per block
        chunked = ro.weighted_knn_predict(bank_x, bank_y, query_x)
    for key in whole:
        np.testing.assert_array_equal(whole[key], chunked[key])


def test_the_knn_weighs_by_similarity_not_by_count_and_ignores_feature_scale():
    # three neighbours of class 1 at similarity ~0.6 against two of class 0 at ~0.99: uniform 5-NN says 1, the
    # exp(sim / 0.07) votes say 0; scaling a bank item changes nothing (cosine)
    bank_x = np.array([[1, 0.01], [1, -0.01], [0.6, 0.8], [0.6, 0.81], [0.6, 0.79]]) * [[1], [50], [1], [0.1], [3]]
    bank_y = np.array([0, 0, 1, 1, 1])
    query = np.array([[1.0, 0.0]])
    assert ro.weighted_knn_predict(bank_x, bank_y, query, ((5, 0.07),))[5, 0.07][0] == 0
    assert ro.weighted_knn_predict(bank_x, bank_y, query, ((5, 100.0),))[5, 100.0][0] == 1  # T→∞: a plain vote


def test_knn_ties_go_as_stated():
    # two classes with exactly equal votes: the smaller class wins, as the reference's argmax
    bank_x, bank_y = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([3, 2])
    assert ro.weighted_knn_predict(bank_x, bank_y, np.array([[1.0, 0.0]]), ((2, 0.1),))[2, 0.1][0] == 2
    # a zero feature vector is similar to nothing (similarity 0), like DINO's F.normalize: its votes are all equal
    bank_x, bank_y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([1, 0, 0])
    assert ro.weighted_knn_predict(bank_x, bank_y, np.array([[0.0, 0.0]]), ((3, 0.1),))[3, 0.1][0] == 0
    # duplicated bank items tie at the k-th place; with the same label the answer is the reference's
    bank_x, bank_y = _blobs(120, classes=3)
    bank_x, bank_y = np.concatenate([bank_x, bank_x]), np.concatenate([bank_y, bank_y])
    query_x = _blobs(40, classes=3, seed=2)[0]
    got = ro.weighted_knn_predict(bank_x, bank_y, query_x, ((5, 0.07), (9, 0.1)))
    for k, t in ((5, 0.07), (9, 0.1)):
        np.testing.assert_array_equal(got[k, t], _reference_knn(bank_x, bank_y, query_x, k, t))


def test_the_knn_accuracy_names_each_setting_and_checks_shapes():
    bank_x, bank_y = _blobs(200)
    test_x, test_y = _blobs(50, seed=3)
    acc = ro.weighted_knn_accuracy(bank_x, bank_y, test_x, test_y)
    assert set(acc) == {"knn_cosine_k20", "knn_cosine_k200"} <= set(ro.READOUT_MEASURES)
    assert acc["knn_cosine_k20"] == np.mean(_reference_knn(bank_x, bank_y, test_x, 20, 0.07) == test_y)
    with pytest.raises(ValueError, match="like the bank"):
        ro.weighted_knn_predict(bank_x, bank_y, test_x[:, :3])


def _noisy_labels(n, seed, flip=0.35, d=30):
    """A linear rule on 2 of `d` features, a share of labels flipped: weak regularisation overfits the noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    flipped = rng.random(n) < flip
    return x, np.where(flipped, 1 - y, y)


def test_the_probe_chooses_c_on_validation_and_never_reads_the_test_labels():
    x, y = _noisy_labels(400, seed=0)
    validation = validation_indices(y, size=150)
    fit = np.setdiff1d(np.arange(len(y)), validation)
    cs = (1e-4, 1e-2, 1.0, 100.0)
    by_hand = {c: np.mean(ro.make_probe(c).fit(x[fit], y[fit]).predict(x[validation]) == y[validation]) for c in cs}
    # a test split that rewards another C than validation does: the images on which the validation-best and another
    # C's refit probes disagree, labelled as the other one says
    best = max(cs, key=lambda c: by_hand[c])
    other = next(c for c in cs if c != best)
    pool = _noisy_labels(3000, seed=9)[0]
    a, b = (ro.make_probe(c).fit(x, y).predict(pool) for c in (best, other))
    test_x, test_y = pool[a != b], b[a != b]
    assert len(test_y) > 0
    result = ro.linear_probe(x, y, test_x, test_y, validation, cs)
    assert result["C"] == best and result["accuracy"] == 0.0  # the validation choice, though C=other scores 1.0
    assert result["validation_accuracy"] == {f"{c:g}": pytest.approx(by_hand[c]) for c in cs}
    assert result["n_fit"] == len(y)  # refit on every training image, validation included
    # the test labels reach no choice: any labels give the same C
    for labels in (1 - test_y, np.zeros_like(test_y)):
        assert ro.linear_probe(x, y, test_x, labels, validation, cs)["C"] == best


def test_selection_reads_only_the_rows_it_is_given():
    x, y = _noisy_labels(300, seed=1)
    validation = validation_indices(y, size=60)
    fit = np.setdiff1d(np.arange(300), validation)
    c, scores = ro.select_probe_c(x, y, fit, validation, (0.01, 1.0))
    rest = np.setdiff1d(np.arange(300), np.concatenate([fit[:100], validation]))
    y_changed = y.copy()
    y_changed[rest] = 1 - y_changed[rest]  # rows outside the selection's rows: no effect
    assert ro.select_probe_c(x, y_changed, fit[:100], validation, (0.01, 1.0)) == ro.select_probe_c(
        x, y, fit[:100], validation, (0.01, 1.0)
    )
    assert c in scores
    with pytest.raises(ValueError, match="overlap"):
        ro.select_probe_c(x, y, fit, np.concatenate([validation, fit[:1]]))


def test_low_label_probes_draw_a_stratified_share_from_outside_validation():
    rng = np.random.default_rng(0)
    labels = rng.choice(10, size=6000, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())
    validation = validation_indices(labels)
    for fraction in ro.LOW_LABEL_FRACTIONS:
        picked = ro.low_label_indices(labels, fraction, validation)
        assert len(picked) == round(fraction * 6000) and not np.intersect1d(picked, validation).size
        share = np.bincount(labels[picked], minlength=10) / len(picked)
        np.testing.assert_allclose(share, np.bincount(labels, minlength=10) / 6000, atol=1.5 / len(picked))
        np.testing.assert_array_equal(picked, ro.low_label_indices(labels, fraction, validation))
    assert len(ro.low_label_indices(labels[:200], 0.01)) == 10  # at least one image per class
    with pytest.raises(ValueError, match="fraction"):
        ro.low_label_indices(labels, 1.0)


def test_readout_scores_gives_every_measure_from_the_parts():
    x, y = _blobs(600, classes=3)
    test_x, test_y = _blobs(100, classes=3, seed=4)
    validation = validation_indices(y)
    out = ro.readout_scores(x, y, test_x, test_y, cs=(0.1, 1.0))
    assert set(out["accuracy"]) == set(ro.READOUT_MEASURES)
    assert out["accuracy"]["knn_cosine_k20"] == ro.weighted_knn_accuracy(x, y, test_x, test_y)["knn_cosine_k20"]
    assert out["probes"]["linear_probe"] == ro.linear_probe(x, y, test_x, test_y, validation, (0.1, 1.0))
    assert out["probes"]["linear_probe_1pct"]["n_fit"] == 6 < out["probes"]["linear_probe_10pct"]["n_fit"] == 60
    assert (out["feature_dim"], out["n_train"], out["n_validation"], out["n_test"]) == (6, 600, 100, 100)
    assert all(0 <= a <= 1 for a in out["accuracy"].values())
