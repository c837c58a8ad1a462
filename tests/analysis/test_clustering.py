import numpy as np
import pytest

from mae_hf.analysis.clustering import (
    class_radii,
    fit_tsne,
    knn_accuracy,
    linear_probe_accuracy,
    scale_free_radii,
    silhouette,
    trustworthiness,
    tsne_from_coordinates,
    tsne_transform,
)


def rings(radii=(1.0, 2.0, 3.0), centres=((0, 0), (10, 0), (0, 10)), per_class=12):
    """Points exactly on circles of known radius: each class centroid is its centre, each radius exact."""
    angles = np.linspace(0, 2 * np.pi, per_class, endpoint=False)
    x = np.concatenate([np.c_[c[0] + r * np.cos(angles), c[1] + r * np.sin(angles)] for r, c in zip(radii, centres)])
    y = np.repeat(np.arange(len(radii)), per_class)
    return x, y


def blobs(n_per=40, dim=8, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, dim))
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    return x, np.repeat(np.arange(3), n_per)


def test_radii_of_known_rings():
    x, y = rings()
    r = class_radii(x, y)
    np.testing.assert_allclose(r["radius"], [1.0, 2.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(r["centroids"], [[0, 0], [10, 0], [0, 10]], atol=1e-12)
    sf = scale_free_radii(x, y)
    between = (10 + 10 + 10 * np.sqrt(2)) / 3
    assert sf["centroid_distance"] == pytest.approx(between)
    np.testing.assert_allclose(sf["scale_free_radius"], np.array([1.0, 2.0, 3.0]) / between)


def test_scale_free_radius_is_scale_free_but_radius_is_not():
    x, y = rings()
    assert class_radii(7 * x, y)["radius"] == pytest.approx(7 * class_radii(x, y)["radius"])
    np.testing.assert_allclose(
        scale_free_radii(7 * x, y)["scale_free_radius"], scale_free_radii(x, y)["scale_free_radius"]
    )


def test_silhouette_known_value_and_spread():
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    # point 0: a = 1, b = 10.5; point 1: a = 1, b = 9.5; symmetric for the other class
    expected = np.mean([1 - 1 / 10.5, 1 - 1 / 9.5, 1 - 1 / 9.5, 1 - 1 / 10.5])
    assert silhouette(x, y) == pytest.approx(expected)
    tight, loose = rings(radii=(0.5, 0.5, 0.5)), rings(radii=(4.0, 4.0, 4.0))
    assert silhouette(*tight) > silhouette(*loose)


def test_classifiers_on_separable_and_random_labels():
    x, y = blobs()
    train, test = np.arange(len(x)) % 2 == 0, np.arange(len(x)) % 2 == 1
    assert knn_accuracy(x[train], y[train], x[test], y[test]) == 1.0
    assert linear_probe_accuracy(x[train], y[train], x[test], y[test]) == 1.0
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(400, 5))
    labels = rng.integers(0, 4, 400)
    assert knn_accuracy(noise[:200], labels[:200], noise[200:], labels[200:]) < 0.45
    with pytest.raises(ValueError, match="width"):
        knn_accuracy(x[:, :3], y, x, y)


def test_tsne_map_trustworthy_and_transform_places_new_points_in_their_cluster():
    x, y = blobs(n_per=30)
    emb = fit_tsne(x, seed=0)
    coords = np.asarray(emb)
    assert coords.shape == (90, 2)
    assert trustworthiness(x, coords) > 0.9
    np.testing.assert_allclose(np.asarray(fit_tsne(x, seed=0)), coords)  # fixed seed → same map
    centroids = np.stack([coords[y == c].mean(0) for c in range(3)])
    rebuilt = tsne_from_coordinates(x, coords, seed=0)
    np.testing.assert_allclose(np.asarray(rebuilt), coords)
    for m in (emb, rebuilt):
        new = tsne_transform(m, x[[0, 35, 70]] + 0.01)
        nearest = np.linalg.norm(new[:, None] - centroids[None], axis=-1).argmin(1)
        assert list(nearest) == [0, 1, 2]
    with pytest.raises(ValueError, match="dimensions"):
        tsne_transform(emb, np.zeros((1, 3)))
