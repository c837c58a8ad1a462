"""`mae-hf study`: the architecture × corruption grid, trained for several seeds, analysed and aggregated.

The study compares a ViT trained with patch masking (the MAE) against a CNN trained with Gaussian noise (the DAE),
so a difference could come from either factor. The grid adds the two missing cells — a ViT trained on noisy images
(masking off) and the DAE's CNN trained on masked images (loss on the masked pixels) — trains all four through the
one training loop (`mae_hf.training.training_function`) on the same data and budget for every seed, analyses each
model the same way, and splits every difference into an architecture effect, a corruption effect and their
interaction with paired bootstrap intervals (`mae_hf.analysis.factorial`).

Layout of `--out`: `runs/{cell}/seed{k}/` (a model folder with card, as `train_accelerate.py` writes it, plus
`study_analysis.npz`), `study.json`, `study.md`, `grid_measures.png`, `grid_tsne.png`, `grid_reconstructions.png`.
Finished runs and analyses are skipped on a rerun; an interrupted training resumes from its last checkpoint.
"""

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from . import plotting
from .analysis import clustering as cl
from .analysis import factorial as fac
from .analysis import weights as wts
from .analysis.latents import extract_dae_latents, extract_mae_features
from .data import load_image_dataset
from .evaluation import Corruption, evaluate_images, model_kind, own_corruption
from .report import load_report_data, model_fingerprint, to_jsonable
from .training import ConfigurationError, RunArgs, TrainingConfig, build_model, find_checkpoints, training_function

logger = logging.getLogger(__name__)

__all__ = ["CELL_SPECS", "StudySettings", "QUICK", "run_study", "analyse_model", "STUDY_FILES"]

CELL_SPECS: dict[str, dict] = {
    "vit_mask": {"model": "mae", "corruption": "mask", "label": "ViT + masking (the study's MAE)"},
    "vit_noise": {"model": "mae", "corruption": "noise", "label": "ViT + Gaussian noise"},
    "cnn_mask": {"model": "dae", "corruption": "mask", "label": "CNN + masking"},
    "cnn_noise": {"model": "dae", "corruption": "noise", "label": "CNN + Gaussian noise (the study's DAE)"},
}
STUDY_FILES = ("study.md", "study.json", "grid_measures.png", "grid_tsne.png", "grid_reconstructions.png")
ANALYSIS_FILE = "study_analysis.npz"
ANALYSIS_VERSION = 1
# A tiny ViT for --quick (the pipeline, not the numbers, is what a quick run checks).
TINY_VIT = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
)


@dataclass
class StudySettings:
    """
    Everything that changes the study's numbers (stored in `study.json`).

    Training (identical for the four cells but for each architecture's learning rate and warm-up, the values the
    bundled models were tuned with): `num_train_epochs`, `per_device_train_batch_size`, `learning_rate` /
    `num_warmup_steps` per architecture, `mask_ratio` and `noise_factor` of the two corruptions,
    `max_train_samples` / `max_eval_samples` (None = all), `vit_overrides` (ViTMAE config fields).
    Analysis: `n` test images, `n_train` images the kNN and the probe are fit on, `analysis_seed` (test corruption
    and t-SNE), `n_boot` bootstrap replicates, `knn_k`.
    """

    dataset: str = "mnist"
    seeds: int = 3
    num_train_epochs: int = 20
    per_device_train_batch_size: int = 64
    learning_rate: dict = field(default_factory=lambda: {"vit": 1.5e-3, "cnn": 1e-2})
    num_warmup_steps: dict = field(default_factory=lambda: {"vit": 200, "cnn": 100})
    mask_ratio: float = 0.75
    noise_factor: float = 0.5
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    vit_overrides: dict = field(default_factory=dict)
    n: int = 1000
    n_train: int = 4000
    analysis_seed: int = 0
    n_boot: int = 2000
    knn_k: int = 5

    def validate(self) -> None:
        if self.seeds < 1:
            raise ConfigurationError(f"--seeds must be >= 1, got {self.seeds}.")
        for name in ("num_train_epochs", "n", "n_train", "n_boot", "per_device_train_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"--{name} must be >= 1, got {getattr(self, name)}.")

    def training_config(self, cell: str, seed: int) -> TrainingConfig:
        """The `TrainingConfig` of one run of the grid."""
        spec = CELL_SPECS[cell]
        arch = cell.split("_")[0]
        return TrainingConfig(
            model=spec["model"],
            dataset=self.dataset,
            corruption=spec["corruption"],
            mask_ratio=self.mask_ratio if spec["corruption"] == "mask" else None,
            noise_factor=self.noise_factor if spec["corruption"] == "noise" else None,
            config_overrides=dict(self.vit_overrides) if spec["model"] == "mae" else {},
            num_train_epochs=self.num_train_epochs,
            per_device_train_batch_size=self.per_device_train_batch_size,
            learning_rate=self.learning_rate[arch],
            num_warmup_steps=self.num_warmup_steps[arch],
            seed=seed,
            max_train_samples=self.max_train_samples,
            max_eval_samples=self.max_eval_samples,
        )


# The whole pipeline on tiny budgets (a test runs it end to end in about a minute).
QUICK = dict(
    num_train_epochs=1,
    max_train_samples=256,
    max_eval_samples=128,
    n=120,
    n_train=300,
    n_boot=200,
    vit_overrides=TINY_VIT,
)


# ----------------------------------------------------------------------------------------------------------------
# One model's analysis (pure: a model and tensors in, arrays out)


def _reconstruction_measures(model, x: torch.Tensor, settings: StudySettings) -> dict:
    """PSNR/SSIM under the model's own corruption, and PSNR on the same masked and the same noisy test images (the
    test corruptions every model of the grid gets), from `mae_hf.evaluation`."""
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


def _features(model, x: torch.Tensor) -> np.ndarray:
    """The model's representation: the ViT's mean-pooled patch tokens (masking off), the CNN's bottleneck."""
    if model_kind(model) == "mae":
        return extract_mae_features(model, x)["mae_mean"]
    return extract_dae_latents(model, x)


def analyse_model(model, init_model, data: dict, settings: StudySettings) -> dict:
    """
    Every measure of the grid for one trained model.

    Args:
        model: the trained `ViTMAEForPreTraining` / `DAEModel`. init_model: the same at initialisation.
        data: `load_report_data`'s dict (`x`, `y`, `train_x`, `train_y`).

    Returns:
        `{"per_image": {measure: (N,)}, "scalars": {measure: float}, "coordinates": (N, 2), "examples": {...}}` with
        the measures of `mae_hf.analysis.factorial.MEASURES`.
    """
    rec = _reconstruction_measures(model, data["x"], settings)
    examples = rec.pop("examples")
    feats, train_feats = _features(model, data["x"]), _features(model, data["train_x"])
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
    return {"per_image": per_image, "scalars": scalars, "coordinates": coords, "examples": examples}


def _raw_pixel_baseline(data: dict, settings: StudySettings) -> dict[str, float]:
    x, train_x = data["x"].flatten(1).numpy(), data["train_x"].flatten(1).numpy()
    coords = np.asarray(cl.fit_tsne(x, seed=settings.analysis_seed))
    m = cl.per_image_measures(x, coords, data["y"].numpy(), train_x, data["train_y"].numpy(), k=settings.knn_k)
    y = data["y"].numpy()
    by_class = {
        k: float(np.mean([m[k][y == c].mean() for c in np.unique(y)]))
        for k in ("tsne_radius", "original_radius", "scale_free_radius")
    }
    return by_class | {
        "silhouette": float(m["silhouette"].mean()),
        "knn_accuracy": float(m["knn_correct"].mean()),
        "probe_accuracy": float(m["probe_correct"].mean()),
    }


# ----------------------------------------------------------------------------------------------------------------
# Orchestration (files)


def _run_dir(out: Path, cell: str, seed: int) -> Path:
    return out / "runs" / cell / f"seed{seed}"


def _finished(run_dir: Path) -> bool:
    # the model card is written last (training._write_final_folder)
    return (run_dir / "README.md").is_file() and (run_dir / "eval_results.json").is_file()


def _check_same_settings(run_dir: Path, config: TrainingConfig) -> None:
    saved = json.loads((run_dir / "training_args.json").read_text())
    wanted = asdict(config)
    diff = sorted(
        k
        for k in wanted
        if k in saved
        and json.dumps(saved[k], sort_keys=True, default=str) != json.dumps(wanted[k], sort_keys=True, default=str)
    )
    if diff:
        raise ConfigurationError(
            f"{run_dir} was trained with other settings ({', '.join(diff)} differ); use a new --out folder for new "
            "settings, or delete that run to retrain it."
        )


def _train(config: TrainingConfig, run_dir: Path, data, command: str) -> None:
    resume = "latest" if run_dir.is_dir() and find_checkpoints(run_dir) else None
    args = RunArgs(
        output_dir=str(run_dir),
        overwrite_output_dir=run_dir.is_dir() and resume is None,
        checkpoints_total_limit=1,
        resume_from_checkpoint=resume,
        command=command,
    )
    if resume:
        logger.info("resuming %s from its last checkpoint", run_dir)
    training_function(config, args, data=data)


def _load_trained(run_dir: Path):
    from .loading import load_dae, load_mae

    kind = json.loads((run_dir / "config.json").read_text()).get("model_type")
    return load_mae(str(run_dir)) if kind == "vit_mae" else load_dae(str(run_dir))


def _analysis_key(model, settings: StudySettings) -> str:
    parts = [
        ANALYSIS_VERSION,
        model_fingerprint(model),
        settings.dataset,
        settings.n,
        settings.n_train,
        settings.analysis_seed,
        settings.mask_ratio,
        settings.noise_factor,
        settings.knn_k,
    ]
    return json.dumps(parts)


def _save_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _analyse_run(run_dir: Path, config: TrainingConfig, data: dict, settings: StudySettings) -> dict:
    model = _load_trained(run_dir)
    key = _analysis_key(model, settings)
    path = run_dir / ANALYSIS_FILE
    if path.is_file():
        with np.load(path) as f:
            if str(f["key"]) == key:
                return _unpack(f)
    t = time.perf_counter()
    image_size, channels = model.config.image_size, model.config.num_channels
    init_model = build_model(config, image_size, channels).eval()
    result = analyse_model(model, init_model, data, settings)
    arrays = {"key": np.array(key), "coordinates": result["coordinates"], "seconds": time.perf_counter() - t}
    arrays |= {f"per_image/{k}": v for k, v in result["per_image"].items()}
    arrays |= {f"scalar/{k}": np.float64(v) for k, v in result["scalars"].items()}
    arrays |= {f"example/{k}": v for k, v in result["examples"].items()}
    _save_npz(path, arrays)
    with np.load(path) as f:
        return _unpack(f)


def _unpack(f) -> dict:
    out = {
        "per_image": {},
        "scalars": {},
        "examples": {},
        "coordinates": f["coordinates"],
        "seconds": float(f["seconds"]),
    }
    for name in f.files:
        group, _, key = name.partition("/")
        if group == "per_image":
            out["per_image"][key] = f[name]
        elif group == "scalar":
            out["scalars"][key] = float(f[name])
        elif group == "example":
            out["examples"][key] = f[name]
    return out


def run_study(settings: StudySettings, out_dir: str | os.PathLike, data=None) -> dict:
    """
    Train (or skip, or resume) every run of the grid, analyse each, aggregate, and write the study's files.

    Args:
        settings: `StudySettings` (`QUICK` values for a quick run).
        out_dir: the study folder (created; rerunning into it skips finished work).
        data: an already loaded `load_image_dataset` result (loaded from `settings.dataset` when None).

    Returns:
        the `study.json` content.
    """
    settings.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = data if data is not None else load_image_dataset(settings.dataset)
    seeds = list(range(settings.seeds))
    plan = [(seed, cell) for seed in seeds for cell in CELL_SPECS]
    configs = {(seed, cell): settings.training_config(cell, seed) for seed, cell in plan}
    for (seed, cell), config in configs.items():  # refuse a mixed folder before any work
        if (_run_dir(out, cell, seed) / "training_args.json").is_file():
            _check_same_settings(_run_dir(out, cell, seed), config)
    for i, (seed, cell) in enumerate(plan, 1):
        run_dir = _run_dir(out, cell, seed)
        if _finished(run_dir):
            logger.info("[%d/%d] %s seed %d: trained already, skipped", i, len(plan), cell, seed)
            continue
        logger.info(
            "[%d/%d] %s seed %d: training (%d epochs) into %s",
            i,
            len(plan),
            cell,
            seed,
            settings.num_train_epochs,
            run_dir,
        )
        _train(
            configs[seed, cell],
            run_dir,
            data,
            command=f"mae-hf study --dataset {settings.dataset} --seeds {settings.seeds} --out {out_dir}",
        )
    analysis_data = load_report_data(settings.dataset, "test", settings.n, settings.n_train)
    analyses = {}
    for i, (seed, cell) in enumerate(plan, 1):
        logger.info("[%d/%d] %s seed %d: analysis", i, len(plan), cell, seed)
        analyses[seed, cell] = _analyse_run(_run_dir(out, cell, seed), configs[seed, cell], analysis_data, settings)
    study = aggregate(analyses, configs, analysis_data, settings, out)
    study["baseline_raw_pixels"] = _raw_pixel_baseline(analysis_data, settings)
    study["wall_time_s"] = {
        "this_invocation": round(time.perf_counter() - t0, 1),
        "training_total": round(sum(r["train_runtime_s"] for r in study["runs"]), 1),
        "analysis_total": round(sum(a["seconds"] for a in analyses.values()), 1),
    }
    write_study(study, analyses, analysis_data, out)
    return study


def aggregate(analyses: dict, configs: dict, data: dict, settings: StudySettings, out: Path) -> dict:
    """Bootstrap, effects and verdicts over the analysed runs; the JSON-ready study (without the baseline)."""
    seeds = sorted({seed for seed, _ in analyses})
    runs = {}
    for cell in CELL_SPECS:
        per = [analyses[seed, cell] for seed in seeds]
        runs[cell] = {k: np.stack([a["per_image"][k] for a in per]) for k in per[0]["per_image"]}
        runs[cell] |= {k: np.array([a["scalars"][k] for a in per]) for k in per[0]["scalars"]}
    labels = data["y"].numpy()
    draws = fac.bootstrap_draws(len(seeds), len(labels), settings.n_boot, seed=settings.analysis_seed)
    replicates = fac.bootstrap_cells(runs, labels, draws)
    summary = fac.summarize_cells(runs, labels, replicates)
    table = fac.effects(summary, replicates)
    run_rows = []
    for seed, cell in sorted(configs, key=lambda k: (k[1], k[0])):
        run_dir = _run_dir(out, cell, seed)
        ev = json.loads((run_dir / "eval_results.json").read_text())
        tr = json.loads((run_dir / "train_results.json").read_text())
        run_rows.append(
            {
                "cell": cell,
                "seed": seed,
                "folder": str(run_dir.relative_to(out)),
                "eval": {k: v for k, v in ev.items() if k != "split"},
                "train_runtime_s": tr["train_runtime"],
                "final_train_loss": tr.get("final_train_loss"),
                "num_parameters": tr.get("num_parameters"),
                "hardware": tr.get("hardware"),
                "analysis_s": round(analyses[seed, cell]["seconds"], 1),
            }
        )
    return {
        "settings": asdict(settings),
        "cells": {
            c: {"label": s["label"], "model": s["model"], "corruption": s["corruption"]} for c, s in CELL_SPECS.items()
        },
        "measures": {
            k: {"description": v[2], "higher_is": "better" if v[1] > 0 else "tighter/lower better"}
            for k, v in fac.MEASURES.items()
        },
        "summary": summary,
        "effects": table,
        "verdicts": fac.claim_verdicts(table),
        "runs": run_rows,
        "n_images": int(len(labels)),
        "seeds": seeds,
    }


# ----------------------------------------------------------------------------------------------------------------
# Writing


def _ci(entry: dict, digits: int) -> str:
    return f"{entry['estimate']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


DIGITS = {
    "psnr": 2,
    "psnr_masked": 2,
    "psnr_noisy": 2,
    "ssim": 3,
    "tsne_radius": 2,
    "original_radius": 2,
    "scale_free_radius": 3,
    "silhouette": 3,
    "knn_accuracy": 3,
    "probe_accuracy": 3,
    "near_zero_relative": 4,
    "near_zero_relative_vs_init": 4,
    "near_zero_absolute": 4,
}


def study_markdown(study: dict) -> str:
    """`study.md`: settings, the grid with intervals, the effect table and the verdicts."""
    s, cells = study["settings"], list(study["cells"])
    lines = [
        "# Architecture × corruption: which factor makes the MAE different from the DAE?",
        "",
        f"Four models per seed through the same training loop, data and budget ({s['num_train_epochs']} epochs, batch "
        f"{s['per_device_train_batch_size']}, dataset `{s['dataset']}`"
        + (f", first {s['max_train_samples']} training images" if s["max_train_samples"] else "")
        + f"; learning rate ViT {s['learning_rate']['vit']}, CNN {s['learning_rate']['cnn']}), seeds "
        f"{', '.join(map(str, study['seeds']))}; masking ratio {s['mask_ratio']} of 4×4 patches, Gaussian noise std "
        f"{s['noise_factor']}. Every model is analysed on the same {study['n_images']} test images (kNN and probe fit on "
        f"{s['n_train']} training images). Values: mean over seeds [95% paired bootstrap interval over seeds and test "
        f"images, {s['n_boot']} replicates].",
        "",
        "| cell | " + " | ".join(study["cells"][c]["label"] for c in cells) + " |",
        "| --- | " + " | ".join("---" for _ in cells) + " |",
    ]
    for m in fac.MEASURES:
        if m not in study["summary"][cells[0]]:
            continue
        d = DIGITS.get(m, 3)
        lines.append(f"| {m} | " + " | ".join(_ci(study["summary"][c][m], d) for c in cells) + " |")
    base = study.get("baseline_raw_pixels")
    if base:
        lines += ["", "Raw pixels, for reference: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items()) + "."]
    lines += [
        "",
        "![grid](grid_measures.png)",
        "",
        "## Two-way effects",
        "",
        "Architecture = (ViT − CNN) averaged over corruptions; corruption = (masking − noise) averaged over "
        "architectures; interaction = (ViT_mask − ViT_noise) − (CNN_mask − CNN_noise); the study's contrast "
        "MAE − DAE = ViT_mask − CNN_noise = architecture + corruption. **Bold**: the interval excludes 0.",
        "",
        "| measure | architecture | corruption | interaction | study's contrast (MAE − DAE) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m, row in study["effects"].items():
        d = DIGITS.get(m, 3)
        cells_txt = [
            (f"**{_ci(row[e], d)}**" if row[e]["significant"] else _ci(row[e], d))
            for e in ("architecture", "corruption", "interaction", "study_contrast")
        ]
        lines.append(f"| {m} | " + " | ".join(cells_txt) + " |")
    lines += [
        "",
        "## The study's claims",
        "",
        "Per measure: **holds** (the MAE − DAE contrast is significant in the claimed direction), **reversed** "
        "(significant the other way) or **not shown**; where it holds, which main effect carries it.",
        "",
    ]
    for cid, v in study["verdicts"].items():
        lines += [
            f"### {cid}: {v['claim']} — {v['verdict']}",
            "",
            "| measure | verdict | due to | contrast | architecture | corruption |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m, r in v["measures"].items():
            d = DIGITS.get(m, 3)
            lines.append(
                f"| {m} | {r['verdict']} | {r['due_to'] or '—'} | {_ci(r['contrast'], d)} | "
                f"{_ci(r['architecture'], d)} | {_ci(r['corruption'], d)} |"
            )
        lines.append("")
    lines += [
        "Contrasts and effects in the claim tables are oriented so that positive = as claimed.",
        "",
        "![t-SNE maps, seed 0](grid_tsne.png)",
        "",
        "![reconstructions, seed 0](grid_reconstructions.png)",
        "",
        "## Runs",
        "",
        "| cell | seed | train s | analysis s | test loss | PSNR | folder |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in study["runs"]:
        lines.append(
            f"| {r['cell']} | {r['seed']} | {r['train_runtime_s']:.0f} | {r['analysis_s']:.0f} | "
            f"{r['eval']['loss']:.4f} | {r['eval']['psnr']:.2f} | `{r['folder']}` |"
        )
    w = study.get("wall_time_s", {})
    if w:
        lines += [
            "",
            f"Compute summed over the runs: training {w['training_total']:.0f} s, analysis "
            f"{w['analysis_total']:.0f} s. The last `mae-hf study` invocation took {w['this_invocation']:.0f} s "
            "(finished runs and analyses are skipped, so a rerun is short).",
        ]
    return "\n".join(lines) + "\n"


def write_study(study: dict, analyses: dict, data: dict, out: Path) -> None:
    """`study.json`, `study.md` and the three figures (each written to a temporary name, then moved in)."""
    first = min(seed for seed, _ in analyses)
    figures = {
        "grid_measures.png": plotting.plot_grid_measures(
            study["summary"], {c: v["label"] for c, v in study["cells"].items()}
        )[0],
        "grid_tsne.png": plotting.plot_grid_tsne(
            {c: analyses[first, c]["coordinates"] for c in CELL_SPECS},
            data["y"].numpy(),
            {c: v["label"] for c, v in study["cells"].items()},
        )[0],
    }
    rows = {"clean": data["x"][:8].numpy()}
    for c in CELL_SPECS:
        rows[f"{c} input"] = analyses[first, c]["examples"]["corrupted"]
        rows[f"{c} output"] = analyses[first, c]["examples"]["shown"]
    figures["grid_reconstructions.png"] = plotting.plot_image_rows(rows, n_show=8)[0]
    for name, fig in figures.items():
        tmp = out / f".tmp-{name}"
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        os.replace(tmp, out / name)
    for name, text in (("study.json", json.dumps(to_jsonable(study), indent=2)), ("study.md", study_markdown(study))):
        tmp = out / f".tmp-{name}"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def settings_from_args(quick: bool = False, **values) -> StudySettings:
    """`StudySettings` from CLI values (None = default); `quick` starts from the `QUICK` budgets."""
    base = copy.deepcopy(QUICK) if quick else {}
    names = {f.name for f in fields(StudySettings)}
    base |= {k: v for k, v in values.items() if v is not None and k in names}
    return StudySettings(**base)
