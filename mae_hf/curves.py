"""Learning curves: how a model's representation and reconstruction grow with the images it has seen, measured on
the checkpoints of one run (`--checkpoints_total_limit 0` keeps every one)."""

import logging
from pathlib import Path

from .scorecard import classifier_scores
from .training.checkpointing import checkpoint_model, find_checkpoints, images_seen

logger = logging.getLogger(__name__)

__all__ = ["learning_curve"]


def learning_curve(run_dir: str | Path, test: tuple, train: tuple, seed: int = 0) -> list[dict]:
    """
    Every checkpoint of a finished run, scored: `{"checkpoint", "step", "images_seen", "knn", "probe", and under its
    own corruption "psnr_masked" (at mask ratio 0.75) or "psnr_noisy" (from noise std 0.5)}`, oldest first.

    Args:
        test, train: `(pixel_values, labels)`: the scored digits and those the classifiers are fit on.
    """
    import numpy as np

    from .evaluation import Corruption, evaluate_images, own_corruption

    rows = []
    for step, path in find_checkpoints(run_dir):
        model = checkpoint_model(run_dir, path)
        row = {"checkpoint": path.name, "step": step, "images_seen": images_seen(path)}
        row |= classifier_scores(model, train, test)
        if own_corruption(model).kind == "mask":
            values, _ = evaluate_images(model, test[0], Corruption("mask", 0.75), seed=seed)
            row["psnr_masked"] = float(np.mean(values["psnr_masked"]))
        else:
            values, _ = evaluate_images(model, test[0], Corruption("noise", noise_factor=0.5), seed=seed)
            row["psnr_noisy"] = float(np.mean(values["psnr"]))
        logger.info(
            "%s %s: %s", Path(run_dir).name, path.name, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
        )
        rows.append(row)
    return rows
