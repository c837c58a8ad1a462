"""Reading the class out of frozen features the way the self-supervised field does (DINO, solo-learn, lightly, the MAE
paper), beside the study's own 5-NN and fixed-C probe of `clustering`:

- a weighted cosine kNN: features L2-normalised, the cosine similarity of a query to every item of the memory bank
  (the whole training set), the top k, each neighbour voting exp(similarity / T) for its class; k=20 with T=0.07 and
  k=200 with T=0.1 (`KNN_SETTINGS`);
- a linear probe: standardised features → multinomial logistic regression (L2), its inverse regularisation C chosen
  from `PROBE_CS` on the validation split (`mae_hf.validation`: fit on the rest of the training set, scored on
  validation), then refit with that C on the whole training set and scored on the test split once;
- low-label probes: the same, fit on a stratified `fraction` of the training labels only (1% and 10%), drawn from
  outside the validation split, C chosen on validation the same way.

Why logistic regression rather than the MAE paper's BatchNorm (no affine) + linear layer trained by SGD: on frozen
features the two are the same model. BatchNorm without affine standardises each feature with the training set's
statistics (StandardScaler does exactly that), and the linear layer with a softmax cross-entropy is multinomial
logistic regression. Fitting it with a convex solver to convergence gives the optimum without a learning-rate
schedule, epochs and batch size to tune (the paper's LARS, 90 epochs, batch 16,384), deterministically and in
seconds on a CPU; the one hyperparameter left, the L2 strength, is swept on validation.

The searches, the fits and the selection are scikit-learn's (`NearestNeighbors` with the cosine metric, brute force,
chunked to its `working_memory`; `StandardScaler`, `LogisticRegression`, `GridSearchCV` over one predefined
validation split); only the kNN's vote is written here, as DINO writes it.

Pure: arrays in, dicts of floats out.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..validation import validation_indices

__all__ = [
    "KNN_SETTINGS",
    "PROBE_CS",
    "LOW_LABEL_FRACTIONS",
    "LOW_LABEL_SEED",
    "READOUT_MEASURES",
    "knn_key",
    "probe_key",
    "weighted_knn_predict",
    "weighted_knn_accuracy",
    "make_probe",
    "select_probe_c",
    "linear_probe",
    "low_label_indices",
    "low_label_probe",
    "readout_scores",
]

# (k, temperature) of the weighted kNN: DINO's k=20, T=0.07 and the k=200, T=0.1 of InstDisc / solo-learn / lightly.
KNN_SETTINGS: tuple[tuple[int, float], ...] = ((20, 0.07), (200, 0.1))
# The probe's inverse L2 strengths, swept on validation (a decade apart, from heavy regularisation to almost none).
PROBE_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
# The low-label probes' share of the training labels, and the seed of the stratified draw.
LOW_LABEL_FRACTIONS: tuple[float, ...] = (0.1, 0.01)
LOW_LABEL_SEED = 0
# The probe's solver budget: lbfgs on standardised features converges within it for C <= 100 on MNIST's features;
# on Fashion-MNIST's it stops here for the largest Cs (a ConvergenceWarning), where validation accuracy is flat in C.
PROBE_MAX_ITER = 1000


def knn_key(k: int) -> str:
    """The result name of the weighted kNN with `k` neighbours (its temperature is `KNN_SETTINGS`')."""
    return f"knn_cosine_k{k}"


def probe_key(fraction: float | None = None) -> str:
    """The result name of the probe fit on every training label (`fraction=None`) or on `fraction` of them."""
    return "linear_probe" if fraction is None else f"linear_probe_{round(fraction * 100):g}pct"


# Every top-1 accuracy `readout_scores` gives, with its words: the study records them per run, the scorecard per
# model, the cards on the test split.
READOUT_MEASURES: dict[str, str] = {
    **{
        knn_key(k): f"weighted cosine {k}-NN top-1 (T={t:g}; memory bank: every training image)"
        for k, t in KNN_SETTINGS
    },
    probe_key(): "linear probe top-1 (standardised features, logistic regression; C chosen on validation, refit on "
    "every training image)",
    **{
        probe_key(f): f"linear probe top-1 on {f:.0%} of the training labels (stratified; C chosen on validation)"
        for f in LOW_LABEL_FRACTIONS
    },
}


def _as_xy(x, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"`{name}` features must be (N, D) and labels (N,), got {x.shape} and {y.shape}.")
    return x, y


def weighted_knn_predict(
    bank_x: np.ndarray, bank_y: np.ndarray, query_x: np.ndarray, settings=KNN_SETTINGS
) -> dict[tuple[int, float], np.ndarray]:
    """
    The weighted cosine kNN's class for every query, for each `(k, T)` of `settings`, from one neighbour search.

    A query's k most cosine-similar bank items (a zero vector has similarity 0 to everything) each add
    exp(similarity / T) to their class's vote; the class with the largest vote wins (of equal votes, the smallest
    class). One search for the largest k serves every setting: its neighbours come sorted by similarity. Bank items
    of equal similarity at the k-th place are taken in the search's order (as `torch.topk` does in DINO's code).

    Args:
        bank_x: (N, D) the memory bank's features. bank_y: (N,) its classes. query_x: (M, D).
        settings: `(k, T)` pairs; a k above N uses the whole bank.

    Returns:
        `{(k, T): (M,) predicted classes}`.
    """
    bank_x, bank_y = _as_xy(bank_x, bank_y, "bank")
    query_x = np.asarray(query_x, dtype=np.float64)
    if query_x.ndim != 2 or query_x.shape[1] != bank_x.shape[1]:
        raise ValueError(f"Queries must be (M, {bank_x.shape[1]}) like the bank, got {query_x.shape}.")
    classes, bank_class = np.unique(bank_y, return_inverse=True)
    k_max = min(max(k for k, _ in settings), len(bank_x))
    search = NearestNeighbors(n_neighbors=k_max, metric="cosine", algorithm="brute", n_jobs=1).fit(bank_x)
    distance, index = search.kneighbors(query_x)  # (M, k_max) each, nearest first; cosine distance = 1 - similarity
    similarity = 1.0 - distance
    rows = np.arange(len(query_x))[:, None]
    out = {}
    for k, t in settings:
        n = min(k, k_max)
        votes = np.zeros((len(query_x), len(classes)))  # (M, K)
        np.add.at(votes, (rows, bank_class[index[:, :n]]), np.exp(similarity[:, :n] / t))
        out[k, t] = classes[votes.argmax(1)]
    return out


def weighted_knn_accuracy(bank_x, bank_y, test_x, test_y, settings=KNN_SETTINGS) -> dict[str, float]:
    """Top-1 accuracy of the weighted cosine kNN on the test split, memory bank `bank_x`: `{knn_key(k): accuracy}`."""
    test_y = np.asarray(test_y)
    predicted = weighted_knn_predict(bank_x, bank_y, test_x, settings)
    return {knn_key(k): float(np.mean(p == test_y)) for (k, _), p in predicted.items()}


def make_probe(c: float = 1.0):
    """The linear probe, unfitted: standardised features (the training rows' mean and std, as BatchNorm without
    affine) → multinomial logistic regression, L2 with inverse strength `c`, lbfgs."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=PROBE_MAX_ITER))


def select_probe_c(x, y, fit_rows, validation_rows, cs=PROBE_CS) -> tuple[float, dict[float, float]]:
    """
    Choose the probe's C on validation: a probe per C fit on `fit_rows` of `(x, y)`, scored on `validation_rows`
    (`GridSearchCV` over that one split). Nothing else is read.

    Returns:
        `(C, {C: validation accuracy})`; of equal accuracies, the first C of `cs` (the most regularised).
    """
    x, y = _as_xy(x, y, "training")
    fit_rows, validation_rows = np.asarray(fit_rows), np.asarray(validation_rows)
    if np.intersect1d(fit_rows, validation_rows).size:
        raise ValueError("The probe's fit rows and validation rows overlap; validation must be held out.")
    search = GridSearchCV(
        make_probe(),
        {"logisticregression__C": list(cs)},
        scoring="accuracy",
        cv=[(fit_rows, validation_rows)],
        refit=False,
        error_score="raise",
        n_jobs=1,
    )
    search.fit(x, y)
    scores = {float(c): float(s) for c, s in zip(cs, search.cv_results_["split0_test_score"])}
    return float(cs[search.best_index_]), scores


def _probe_result(x, y, train_rows, test_x, test_y, c: float, scores: dict) -> dict:
    probe = make_probe(c).fit(x[train_rows], y[train_rows])
    return {
        "accuracy": float(np.mean(probe.predict(np.asarray(test_x, dtype=np.float64)) == np.asarray(test_y))),
        "C": c,
        "validation_accuracy": {f"{k:g}": v for k, v in scores.items()},
        "n_fit": int(len(train_rows)),
    }


def linear_probe(train_x, train_y, test_x, test_y, validation=None, cs=PROBE_CS) -> dict:
    """
    The probe on every training label: C chosen on `validation` (fit on the other training rows), then refit with
    that C on the whole training set, and scored on the test split once.

    Args:
        train_x, train_y: (N, D), (N,) the training set, in dataset order. test_x, test_y: the test split.
        validation: (V,) positions of the validation split in the training set (default
            `mae_hf.validation.validation_indices(train_y)`).

    Returns:
        `{"accuracy": test top-1, "C": chosen, "validation_accuracy": {C: accuracy}, "n_fit": N}`.
    """
    x, y = _as_xy(train_x, train_y, "training")
    validation = validation_indices(y) if validation is None else np.asarray(validation)
    c, scores = select_probe_c(x, y, np.setdiff1d(np.arange(len(y)), validation), validation, cs)
    return _probe_result(x, y, np.arange(len(y)), test_x, test_y, c, scores)


def low_label_indices(labels, fraction: float, validation=None, seed: int = LOW_LABEL_SEED) -> np.ndarray:
    """
    The labelled images of a low-label probe: `fraction` of the training set's size (at least one per class), drawn
    stratified by class from outside the validation split, by the validation split's own rule
    (`mae_hf.validation.validation_indices`: each class its share, a fixed permutation within each).

    Returns:
        sorted positions into the training set, none of them in `validation`.
    """
    labels = np.asarray(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must lie in (0, 1), got {fraction}.")
    validation = validation_indices(labels) if validation is None else np.asarray(validation)
    outside = np.setdiff1d(np.arange(len(labels)), validation)
    size = min(max(round(fraction * len(labels)), len(np.unique(labels))), len(outside) - 1)
    return np.sort(outside[validation_indices(labels[outside], size=size, seed=seed)])


def low_label_probe(
    train_x, train_y, test_x, test_y, fraction: float, validation=None, cs=PROBE_CS, seed: int = LOW_LABEL_SEED
) -> dict:
    """
    The probe fit on `fraction` of the training labels (`low_label_indices`): C chosen on `validation`, the probe of
    that C (fit on the same labelled images) scored on the test split once.

    Returns:
        as `linear_probe`, `n_fit` the labelled images.
    """
    x, y = _as_xy(train_x, train_y, "training")
    validation = validation_indices(y) if validation is None else np.asarray(validation)
    labelled = low_label_indices(y, fraction, validation, seed)
    c, scores = select_probe_c(x, y, labelled, validation, cs)
    return _probe_result(x, y, labelled, test_x, test_y, c, scores)


def readout_scores(
    train_x,
    train_y,
    test_x,
    test_y,
    validation=None,
    knn_settings=KNN_SETTINGS,
    cs=PROBE_CS,
    fractions=LOW_LABEL_FRACTIONS,
) -> dict:
    """
    Every readout of one feature set: the weighted kNNs with the whole training set as memory bank, the probe on
    every training label and the low-label probes, each scored on the test split.

    Args:
        train_x, train_y: (N, D), (N,) the training set in dataset order (the memory bank; where probes are fit).
        test_x, test_y: (M, D), (M,) the test split. validation: positions of the validation split in the training
            set (default `validation_indices(train_y)`).

    Returns:
        `{"accuracy": {name: top-1} (the names of `READOUT_MEASURES`), "probes": {name: linear_probe's result},
        "feature_dim", "n_train", "n_validation", "n_test"}`.
    """
    x, y = _as_xy(train_x, train_y, "training")
    test_x, test_y = _as_xy(test_x, test_y, "test")
    validation = validation_indices(y) if validation is None else np.asarray(validation)
    probes = {probe_key(): linear_probe(x, y, test_x, test_y, validation, cs)}
    for f in fractions:
        probes[probe_key(f)] = low_label_probe(x, y, test_x, test_y, f, validation, cs)
    accuracy = weighted_knn_accuracy(x, y, test_x, test_y, knn_settings) | {
        name: p["accuracy"] for name, p in probes.items()
    }
    return {
        "accuracy": accuracy,
        "probes": probes,
        "feature_dim": int(x.shape[1]),
        "n_train": int(len(y)),
        "n_validation": int(len(validation)),
        "n_test": int(len(test_y)),
    }
