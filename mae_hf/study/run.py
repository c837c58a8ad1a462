"""`run_study`: every run of the grid trained (or skipped, or resumed), analysed at every budget, aggregated and
written; `settings_from_args`: its settings from the command line's values."""

import copy
import logging
import time
from dataclasses import asdict, fields
from pathlib import Path

from ..analysis import factorial as fac
from ..data import load_image_dataset
from ..pipeline import DataSettings, load_analysis_data
from ..scorecard import features
from ..training import ConfigurationError, build_model, find_checkpoints
from .aggregate import aggregate
from .git import commit_file
from .grid import QUICK, STUDY_CELLS, StudySettings, analysis_file, budget_names, finished, run_dir, train_run
from .measure import ANALYSIS_VERSION, analyse_run, load_analysis, raw_pixel_baseline
from .page import write_study

logger = logging.getLogger(__name__)

__all__ = ["run_study", "settings_from_args", "cell_sizes"]


def run_study(
    settings: StudySettings,
    out_dir,
    results_dir=None,
    data=None,
    commit: bool = False,
    train: bool = True,
    other_seeds_epochs: int | None = None,
    stop_after_epochs: int | None = None,
    cells: list[str] | None = None,
) -> dict:
    """
    Train (or skip, or resume) every run of the grid, analyse each at every budget, aggregate, write the page.

    Args:
        settings: `StudySettings` (`QUICK` values for a quick run).
        out_dir: where the runs are trained. results_dir: where the analyses and the page go (default `out_dir`).
        data: an already loaded `load_image_dataset` result (loaded from `settings.dataset` when needed).
        commit: `git commit` each run's analysis as soon as it is written.
        train: False: aggregate the analyses there are, train nothing (a partial study's page).
        other_seeds_epochs: train every seed but the first only this many epochs into its schedule (it stops
            resumable, its later budgets are left out until a later invocation trains it further); default all.
        stop_after_epochs: the same for every seed, this invocation: a study in stages (every run to 4 epochs, then
            on to the whole run) gives every cell its seeds at the early budgets first.
        cells: train and analyse only these cells this time (the ViT cells on a GPU, say); the other cells'
            analyses are read from `results_dir` as they are.

    Returns:
        the `study.json` content.
    """
    settings.validate()
    for name, value in (("other_seeds_epochs", other_seeds_epochs), ("stop_after_epochs", stop_after_epochs)):
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name} must be >= 1, got {value}.")
    unknown = sorted(set(cells or ()) - set(STUDY_CELLS))
    if unknown:
        raise ConfigurationError(
            f"--cells: no study cell {', '.join(unknown)}; the cells are {', '.join(STUDY_CELLS)}."
        )
    out, results = Path(out_dir), Path(results_dir or out_dir)
    t0 = time.perf_counter()
    # the whole training split too: the first max_train_samples of it are the readouts' memory bank
    analysis_data = load_analysis_data(
        DataSettings(settings.dataset, "test", settings.n, settings.n_train, full_train=settings.dataset)
    )

    def run_epochs(seed: int) -> int:
        limits = [settings.num_train_epochs, stop_after_epochs or settings.num_train_epochs]
        if seed > 0 and other_seeds_epochs is not None:
            limits.append(other_seeds_epochs)
        return min(limits)

    # The shortest runs first (epochs / the cell's measured speed): the early budgets get all their seeds (and a
    # page) before the long runs finish, and an interrupted study loses at most the run it was in.
    plan = sorted(
        ((seed, cell) for seed in range(settings.seeds) for cell in STUDY_CELLS),
        key=lambda p: (run_epochs(p[0]), 1 / STUDY_CELLS[p[1]].images_per_s),
    )
    analyses, command = {}, f"mae-hf study --dataset {settings.dataset} --seeds {settings.seeds} --out {out_dir}"
    for i, (seed, cell) in enumerate(plan, 1):
        trains = train and (not cells or cell in cells)
        path = analysis_file(results, cell, seed)
        done = load_analysis(path, settings)
        if done is None and path.is_file():
            raise ConfigurationError(
                f"{path} was analysed with other settings; use another --results folder, or "
                "delete it to analyse that run again."
            )
        epochs = run_epochs(seed)
        folder = run_dir(out, cell, seed)
        older = done is not None and done["meta"]["version"] < ANALYSIS_VERSION
        if older and trains:  # measured again in full: from its checkpoints where they are here, else trained again
            logger.info(
                "[%d/%d] %s seed %d: analysed by an older version (%d); %s",
                i,
                len(plan),
                cell,
                seed,
                done["meta"]["version"],
                "analysing again" if find_checkpoints(folder) else "training and analysing again",
            )
            done = None
        if done is not None and (not trains or set(budget_names(settings, epochs)) <= set(done["budgets"])):
            logger.info("[%d/%d] %s seed %d: analysed already, skipped", i, len(plan), cell, seed)
            analyses[seed, cell] = done
            continue
        if not trains:
            continue
        if not finished(folder):
            logger.info(
                "[%d/%d] %s seed %d: training (%d of %d epochs) into %s",
                i,
                len(plan),
                cell,
                seed,
                epochs,
                settings.num_train_epochs,
                folder,
            )
            data = data if data is not None else load_image_dataset(settings.dataset)
            train_run(settings, cell, seed, out, data, command, stop_after_epochs=epochs)
        logger.info("[%d/%d] %s seed %d: analysing every budget", i, len(plan), cell, seed)
        analyses[seed, cell] = analyse_run(settings, cell, seed, out, analysis_data, path, previous=done)
        if commit:
            commit_file(path, f"Study: the analysis of {cell} seed {seed}")
    study = aggregate(analyses, budget_names(settings), analysis_data["y"].numpy())
    if not study["budgets"]:
        raise ConfigurationError("No budget has every cell analysed yet; train more runs (without --no_train).")
    study |= _describe(settings, analyses, len(analysis_data["y"]))
    for cell, size in cell_sizes(settings, analysis_data).items():
        study["cells"][cell] |= size
    study["baseline_raw_pixels"] = raw_pixel_baseline(analysis_data, settings)
    study["wall_time_s"] = {
        "this_invocation": round(time.perf_counter() - t0, 1),
        "training_total": round(sum(r["train_runtime_s"] for r in study["runs"]), 1),
        "analysis_total": round(sum(r["analysis_s"] for r in study["runs"]), 1),
    }
    write_study(study, analyses, analysis_data, results)
    return study


def _describe(settings: StudySettings, analyses: dict, n_images: int) -> dict:
    runs = [
        {
            "cell": cell,
            "seed": seed,
            "complete": a["meta"].get("complete", True),
            "epochs_trained": a["meta"].get("epochs_trained", settings.num_train_epochs),
            "train_runtime_s": a["meta"]["train_runtime_s"],
            "train_samples_per_second": a["meta"]["train_samples_per_second"],
            "hardware": a["meta"]["hardware"],
            "num_parameters": a["meta"]["num_parameters"],
            "feature_dim": a["meta"].get("feature_dim"),  # version 2 analyses have neither
            "readout_init": a["meta"].get("readout_init"),
            "analysis_s": sum(b["analysis_s"] for b in a["meta"]["budgets"]),
            "budgets": {b["name"]: b["images_seen"] for b in a["meta"]["budgets"]},
        }
        for (seed, cell), a in sorted(analyses.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return {
        "settings": asdict(settings),
        "cells": {
            c: {"label": s.label, "model": s.model, "corruption": s.corruption, "architecture": s.architecture}
            for c, s in STUDY_CELLS.items()
        },
        "measures": {
            k: {"description": v[2], "higher_is": "better" if v[1] > 0 else "tighter/lower better"}
            for k, v in fac.MEASURES.items()
        },
        "runs": runs,
        "n_images": n_images,
        "seeds": sorted({s for s, _ in analyses}),
    }


def cell_sizes(settings: StudySettings, data: dict) -> dict[str, dict[str, int]]:
    """
    Each cell's capacity: its trainable parameter count (the ViT's frozen sin-cos position tables are constants,
    not capacity) and the size of the features every representation measure is taken on (the ViT's mean-pooled
    tokens, the CNN's bottleneck), both of the cell's network built afresh (one test image through it).

    Returns:
        `{cell: {"num_parameters", "feature_size"}}`.
    """
    image_size, num_channels = data["x"].shape[-1], data["x"].shape[1]
    out = {}
    for cell in STUDY_CELLS:
        model = build_model(settings.training_config(cell, 0, image_size, num_channels), image_size, num_channels)
        out[cell] = {
            "num_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "feature_size": int(features(model.eval(), data["x"][:1]).shape[-1]),
        }
    return out


def settings_from_args(quick: bool = False, **values) -> StudySettings:
    """`StudySettings` from values (None = default); `quick` starts from the `QUICK` budgets."""
    base = copy.deepcopy(QUICK) if quick else {}
    names = {f.name for f in fields(StudySettings)}
    base |= {k: v for k, v in values.items() if v is not None and k in names}
    return StudySettings(**base)
