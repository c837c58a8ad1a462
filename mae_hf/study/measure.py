"""Every measure of the grid for one model, and for every budget of one run: per-image values (so the bootstrap
can resample images), scalars for the weights, the field's readouts (`mae_hf.analysis.readout`, at the budgets of
`readout_budget_names`: weighted cosine kNN with the study's training images as memory bank, validation-tuned
linear and low-label probes) as one value per run, a t-SNE map. Reconstruction is scored by `mae_hf.evaluation`.
A run's analysis is one `.npz` (committed), reused when its settings and weights are the same."""

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..analysis import clustering as cl
from ..analysis import weights as wts
from ..analysis.readout import readout_scores
from ..evaluation import Corruption, evaluate_images, own_corruption
from ..pipeline import model_fingerprint
from ..scorecard import features
from ..training import ConfigurationError, build_model, checkpoint_model, images_seen, trainer_state
from .grid import StudySettings, budget_checkpoints, finished, readout_budget_names, run_dir

logger = logging.getLogger(__name__)

__all__ = [
    "ANALYSIS_VERSION",
    "memory_bank",
    "readout_measures",
    "analyse_model",
    "raw_pixel_baseline",
    "analyse_run",
    "load_analysis",
]

# 3: the field's readouts per budget (`readout`), of the random-init model per run, parameter count and feature size
ANALYSIS_VERSION = 3
# Version 2 (before the field's readouts) is still read: its measures count, its readouts are missing, and a run
# whose checkpoints are at hand is analysed again.
READABLE_VERSIONS = (2, 3)


def _reconstruction_measures(model, x: torch.Tensor, settings: StudySettings) -> dict:
    """PSNR/SSIM under the model's own corruption, and PSNR on the same masked and the same noisy test images (the
    test corruptions every model of the grid gets)."""
    masked, masked_rec = evaluate_images(
        model, x, Corruption("mask", mask_ratio=settings.mask_ratio), seed=settings.analysis_seed
    )
    noisy, noisy_rec = evaluate_images(
        model, x, Corruption("noise", noise_factor=settings.noise_factor), seed=settings.analysis_seed
    )
    own, own_rec = (masked, masked_rec) if own_corruption(model).kind == "mask" else (noisy, noisy_rec)
    examples = {"corrupted": own_rec.corrupted[:8].numpy(), "shown": own_rec.shown[:8].numpy()}
    return {
        "psnr": own["psnr"],
        "ssim": own["ssim"],
        "psnr_masked": masked["psnr_masked"],
        "psnr_noisy": noisy["psnr"],
        "examples": examples,
    }


def memory_bank(data: dict, settings: StudySettings) -> tuple[torch.Tensor, torch.Tensor]:
    """
    The images every run of the study trained on (the first `max_train_samples` of the training split, or all of
    it), with their labels: the readouts' memory bank and the probes' training set.

    Args:
        data: the study's analysis data, with the whole training split (`full_train_x`, `full_train_y`).
    """
    if "full_train_x" not in data:
        raise ValueError("The study's analysis data need the whole training split: load it with full_train set.")
    n = settings.max_train_samples
    return data["full_train_x"][:n], data["full_train_y"][:n]


def readout_measures(model, data: dict, settings: StudySettings) -> dict:
    """
    The field's readouts of one model (`model=None`: the raw pixels) on the study's test images, memory bank and
    probe training set `memory_bank(data, settings)`, each probe's C chosen on its validation split.

    Returns:
        `readout_scores`' result (`accuracy` per `READOUT_MEASURES` name, the probes' choices, sizes).
    """
    bank_x, bank_y = memory_bank(data, settings)
    if model is None:
        f_bank, f_test = bank_x.flatten(1).numpy(), data["x"].flatten(1).numpy()
    else:
        f_bank, f_test = features(model, bank_x), features(model, data["x"])
    return readout_scores(f_bank, bank_y.numpy(), f_test, data["y"].numpy())


def analyse_model(model, init_model, data: dict, settings: StudySettings, readout: bool = True) -> dict:
    """
    Every measure of the grid for one model (the ViT's features: mean-pooled patch tokens, masking off; the CNN's:
    its bottleneck); `readout=False` leaves out the field's readouts (`readout` and `readout_choices` empty).

    Returns:
        `{"per_image": {measure: (N,)}, "scalars": {measure: float}, "readout": {measure: float} (the field's
        readouts, `READOUT_MEASURES`), "readout_choices": {probe: C chosen on validation}, "coordinates": (N, 2),
        "examples": {...}}` with the measures of `mae_hf.analysis.factorial.MEASURES`.
    """
    rec = _reconstruction_measures(model, data["x"], settings)
    examples = rec.pop("examples")
    readout = readout_measures(model, data, settings) if readout else {"accuracy": {}, "probes": {}}
    feats, train_feats = features(model, data["x"]), features(model, data["train_x"])
    coords = np.asarray(cl.fit_tsne(feats, seed=settings.analysis_seed))
    clusters = cl.per_image_measures(
        feats, coords, data["y"].numpy(), train_feats, data["train_y"].numpy(), k=settings.knn_k
    )
    per_image = rec | {
        "tsne_radius": clusters["tsne_radius"],
        "original_radius": clusters["original_radius"],
        "scale_free_radius": clusters["scale_free_radius"],
        "silhouette": clusters["silhouette"],
        "knn_accuracy": clusters["knn_correct"],
        "probe_accuracy": clusters["probe_correct"],
    }
    trained, init = wts.near_zero_table(model)["overall"], wts.near_zero_table(init_model)["overall"]
    scalars = {
        "near_zero_relative": trained["relative"],
        "near_zero_absolute": trained["absolute"],
        "near_zero_relative_vs_init": trained["relative"] - init["relative"],
    }
    return {
        "per_image": per_image,
        "scalars": scalars,
        "readout": readout["accuracy"],
        "readout_choices": {name: p["C"] for name, p in readout["probes"].items()},
        "coordinates": coords,
        "examples": examples,
    }


def raw_pixel_baseline(data: dict, settings: StudySettings) -> dict[str, float]:
    """The clustering measures and the field's readouts (`readout_measures`) of the raw pixels, the baseline every
    representation should beat."""
    x, train_x = data["x"].flatten(1).numpy(), data["train_x"].flatten(1).numpy()
    coords = np.asarray(cl.fit_tsne(x, seed=settings.analysis_seed))
    m = cl.per_image_measures(x, coords, data["y"].numpy(), train_x, data["train_y"].numpy(), k=settings.knn_k)
    y = data["y"].numpy()
    by_class = {
        k: float(np.mean([m[k][y == c].mean() for c in np.unique(y)]))
        for k in ("tsne_radius", "original_radius", "scale_free_radius")
    }
    return (
        by_class
        | {
            "silhouette": float(m["silhouette"].mean()),
            "knn_accuracy": float(m["knn_correct"].mean()),
            "probe_accuracy": float(m["probe_correct"].mean()),
        }
        | readout_measures(None, data, settings)["accuracy"]
    )


def analyse_run(
    settings: StudySettings, cell: str, seed: int, out: Path, data: dict, path: Path, previous: dict | None = None
) -> dict:
    """
    Analyse every budget checkpoint of a run — all of them for a finished run, those it has so far for a run
    stopped part-way; the field's readouts at `readout_budget_names` — and write the analysis to `path` (a temporary
    name first). Budgets already in `previous` (the run's earlier analysis, same settings) are reused. The run's
    meta also holds its model's parameter count and feature size, and the readouts of its model at initialisation
    (`readout_init`, the control for training).

    Returns:
        `load_analysis(path)`; its `meta["complete"]` says whether the run was finished.
    """
    folder = run_dir(out, cell, seed)
    complete = finished(folder)
    checkpoints = budget_checkpoints(folder, settings, partial=not complete)
    if not checkpoints:
        raise ConfigurationError(f"{folder} has no budget checkpoint yet; train it further.")
    image_size, num_channels = data["x"].shape[-1], data["x"].shape[1]
    config = settings.training_config(cell, seed, image_size, num_channels)
    init_model = build_model(config, image_size, num_channels).eval()
    done = {b["name"]: b for b in previous["meta"]["budgets"]} if previous else {}
    arrays, budgets = {}, []
    for name, checkpoint in checkpoints:
        if name in done and done[name]["images_seen"] == images_seen(checkpoint):
            budgets.append(done[name])
            result = previous["budgets"][name]
        else:
            t = time.perf_counter()
            model = checkpoint_model(folder, checkpoint, model=None if complete else init_model)
            result = analyse_model(model, init_model, data, settings, readout=name in readout_budget_names(settings))
            seconds = time.perf_counter() - t
            budgets.append(
                {
                    "name": name,
                    "images_seen": images_seen(checkpoint),
                    "analysis_s": round(seconds, 1),
                    "fingerprint": model_fingerprint(model),
                    "readout_choices": result["readout_choices"],
                }
            )
            logger.info(
                "  %s seed %d, %s (%d images seen): analysed in %.0f s",
                cell,
                seed,
                name,
                budgets[-1]["images_seen"],
                seconds,
            )
        arrays |= {f"{name}/per_image/{k}": v.astype(np.float32) for k, v in result["per_image"].items()}
        arrays |= {f"{name}/scalar/{k}": np.float64(v) for k, v in result["scalars"].items()}
        arrays |= {f"{name}/readout/{k}": np.float64(v) for k, v in result["readout"].items()}
        arrays[f"{name}/coordinates"] = result["coordinates"].astype(np.float32)
        arrays |= {f"{name}/example/{k}": v for k, v in result["examples"].items()}
    init_readout = (previous["meta"].get("readout_init") if previous else None) or readout_measures(
        init_model, data, settings
    )["accuracy"]
    meta = (
        {
            "version": ANALYSIS_VERSION,
            "settings": settings.key(),
            "cell": cell,
            "seed": seed,
            "complete": complete,
            "budgets": budgets,
        }
        | _training_facts(folder, checkpoints[-1][1], complete)
        | {
            "num_parameters": int(sum(p.numel() for p in init_model.parameters())),
            "feature_dim": int(features(init_model, data["x"][:1]).shape[1]),
            "readout_init": init_readout,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)
    return load_analysis(path)


def _training_facts(folder: Path, last_checkpoint: Path, complete: bool) -> dict:
    """Training time and speed of a run: its train_results.json when finished, else its last checkpoint's state."""
    if complete:
        train = json.loads((folder / "train_results.json").read_text())
        return {
            "epochs_trained": train["epochs"],
            "train_runtime_s": train["train_runtime"],
            "train_samples_per_second": train["train_samples_per_second"],
            "hardware": train.get("hardware"),
            "num_parameters": train.get("num_parameters"),
            "final_train_loss": train.get("final_train_loss"),
        }
    state = trainer_state(last_checkpoint)
    return {
        "epochs_trained": state["epoch"],
        "train_runtime_s": state["train_runtime"],
        "train_samples_per_second": state["train_samples"] / max(state["train_runtime"], 1e-9),
        "hardware": None,
        "num_parameters": None,
        "final_train_loss": state["log_history"][-1]["train_loss"] if state["log_history"] else None,
    }


def load_analysis(path: Path, settings: StudySettings | None = None) -> dict | None:
    """
    A run's analysis: `{"meta": {...}, "budgets": {name: {"per_image", "scalars", "readout", "coordinates",
    "examples"}}}`, or None when the file is missing, unreadable, or was made with other settings (or a version not
    in `READABLE_VERSIONS`).
    """
    try:
        with np.load(path) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if meta.get("version") not in READABLE_VERSIONS or (settings is not None and meta["settings"] != settings.key()):
        return None
    budgets = {b["name"]: {"per_image": {}, "scalars": {}, "readout": {}, "examples": {}} for b in meta["budgets"]}
    for key, value in arrays.items():
        name, group, *rest = key.split("/")
        if group == "coordinates":
            budgets[name]["coordinates"] = value
        elif group == "per_image":
            budgets[name]["per_image"][rest[0]] = value.astype(np.float64)
        elif group == "scalar":
            budgets[name]["scalars"][rest[0]] = float(value)
        elif group == "readout":
            budgets[name]["readout"][rest[0]] = float(value)
        elif group == "example":
            budgets[name]["examples"][rest[0]] = value
    return {"meta": meta, "budgets": budgets}
