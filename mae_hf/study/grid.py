"""The grid: its cells (the four of the design and any registered), its settings and budgets, where each run lives,
and training a run (or skipping it, or resuming it from its last checkpoint)."""

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..training import (
    ConfigOverrides,
    ConfigurationError,
    RunArgs,
    TrainingConfig,
    find_checkpoints,
    image_shape,
    mae_preset_for,
    training_function,
)

logger = logging.getLogger(__name__)

__all__ = [
    "StudyCell",
    "STUDY_CELLS",
    "register_cell",
    "StudySettings",
    "QUICK",
    "TINY_VIT",
    "VIT_SMALL",
    "run_dir",
    "analysis_file",
    "train_run",
    "budget_names",
    "READOUT_EPOCHS",
    "readout_budget_names",
    "budget_checkpoints",
    "finished",
]


@dataclass(frozen=True)
class StudyCell:
    """
    One cell of the grid: a kind of model trained with one corruption.

    Attributes:
        name: its key (`runs/{name}/seed{k}`). label: what a person reads.
        model: the model kind training builds (`TrainingConfig.model`: "mae", "dae").
        corruption: "mask" or "noise". architecture: the key of its learning rate and warm-up in `StudySettings`
            ("vit", "cnn"); the ViT's cells also take `StudySettings.vit_overrides`.
        images_per_s: its training speed measured on 2 CPU cores (docs/STUDY.md); it orders the runs, shortest first.
        config_overrides: model config fields of this cell (a capacity-matched control, say).
    """

    name: str
    label: str
    model: str
    corruption: str
    architecture: str
    images_per_s: float
    config_overrides: dict = field(default_factory=dict)


STUDY_CELLS: dict[str, StudyCell] = {}


def register_cell(cell: StudyCell, replace: bool = False) -> StudyCell:
    """Add a cell to the grid (every study trains and analyses it); `replace=True` to redefine one."""
    if cell.name in STUDY_CELLS and not replace:
        raise ValueError(f"A study cell {cell.name!r} is registered already; pass replace=True to redefine it.")
    if cell.corruption not in ("mask", "noise"):
        raise ValueError(f"A study cell corrupts by 'mask' or 'noise', got {cell.corruption!r}.")
    STUDY_CELLS[cell.name] = cell
    return cell


# The four cells of the architecture × corruption design (mae_hf.analysis.factorial.CELLS).
for _cell in (
    StudyCell("vit_mask", "ViT + masking (the study's MAE)", "mae", "mask", "vit", 860),
    StudyCell("vit_noise", "ViT + Gaussian noise", "mae", "noise", "vit", 370),
    StudyCell("cnn_mask", "CNN + masking", "dae", "mask", "cnn", 1700),
    StudyCell("cnn_noise", "CNN + Gaussian noise (the study's DAE)", "dae", "noise", "cnn", 1700),
):
    register_cell(_cell)

# The capacity control: a ViT of the CNN's size (12,776 trainable parameters against the CNN's 12,785; the full ViT
# has about 0.9-1.0 M), with both corruptions, so "ViT vs CNN" can be read at equal capacity. A small ViT rather than
# a CNN of the ViT's size: on 2 cores it trains faster than the full ViT (a 1 M-parameter CNN at 28×28 would be the
# grid's slowest cell), and its features (24-d mean patch token) are the smallest of the grid. It takes the ViT's
# learning rate and warm-up.
VIT_SMALL = dict(
    hidden_size=24,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=44,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=32,
)
for _cell in (
    StudyCell("vit_small_mask", "small ViT + masking (CNN-sized)", "mae", "mask", "vit", 3000, VIT_SMALL),
    StudyCell("vit_small_noise", "small ViT + Gaussian noise (CNN-sized)", "mae", "noise", "vit", 1300, VIT_SMALL),
):
    register_cell(_cell)

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


DEFAULT_LEARNING_RATE = {"vit": 1.5e-3, "cnn": 1e-2}
DEFAULT_WARMUP_STEPS = {"vit": 200, "cnn": 100}
DEFAULT_BUDGET_EPOCHS = (1, 4, 10, 20)


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class StudySettings:
    """
    Everything that changes the study's numbers (stored in `study.json` and in every run's analysis).

    Training, the same for the four cells but for each architecture's learning rate and warm-up (the values the
    models were tuned with): `num_train_epochs`, `per_device_train_batch_size`, `learning_rate` /
    `num_warmup_steps` per architecture, `mask_ratio` and `noise_factor` of the two corruptions,
    `max_train_samples` / `max_eval_samples` (None = all), `vit_overrides` (ViTMAE config fields).

    Budgets: the checkpoints of one run that are analysed, as images seen grow — after `budget_steps` optimisation
    steps and after `budget_epochs` epochs (the last is the whole run).

    Analysis: `n` test images, `n_train` images the kNN and the probe are fit on, `analysis_seed` (test corruption
    and t-SNE), `knn_k`. The intervals rest on seeds (`mae_hf.analysis.factorial`), so they need no setting here.

    The fields are the flags of `mae-hf study` (`HfArgumentParser`); `learning_rate`, `num_warmup_steps` and
    `vit_overrides` take `key=value,key=value` there.
    """

    dataset: str = field(
        default="mnist",
        metadata=_help(
            "any load_image_dataset source, grayscale or RGB; the ViT cells take the preset of its image size "
            "(mnist: 28x28x1, cifar10: 32x32x3) (default: embedded mnist)"
        ),
    )
    seeds: int = field(default=3, metadata=_help("seeds 0..N-1; each trains every cell (default: 3)"))
    num_train_epochs: int = field(
        default=20, metadata=_help("training epochs of every run (default: 20; quick 2)", aliases=["--epochs"])
    )
    per_device_train_batch_size: int = field(
        default=64, metadata=_help("training batch size of every run (default: 64)", aliases=["--batch_size"])
    )
    learning_rate: ConfigOverrides = field(
        default_factory=lambda: ConfigOverrides(DEFAULT_LEARNING_RATE),
        metadata=_help(
            "peak learning rate per architecture, e.g. vit=2e-3 (the others keep theirs; default: vit=1.5e-3,cnn=1e-2)"
        ),
    )
    num_warmup_steps: ConfigOverrides = field(
        default_factory=lambda: ConfigOverrides(DEFAULT_WARMUP_STEPS),
        metadata=_help("warm-up steps per architecture, e.g. cnn=50 (default: vit=200,cnn=100)"),
    )
    mask_ratio: float = field(default=0.75, metadata=_help("masking ratio of the mask cells (default: 0.75)"))
    noise_factor: float = field(default=0.5, metadata=_help("noise std of the noise cells (default: 0.5)"))
    max_train_samples: int | None = field(default=None, metadata=_help("train on the first N images only"))
    max_eval_samples: int | None = field(
        default=None, metadata=_help("evaluate every epoch on the first N validation images only")
    )
    vit_overrides: ConfigOverrides = field(
        default_factory=ConfigOverrides,
        metadata=_help("ViTMAE config fields of the ViT cells, e.g. hidden_size=64,num_hidden_layers=2"),
    )
    budget_steps: list[int] = field(
        default_factory=lambda: [188, 469],
        metadata=_help("budgets before the first epoch, in optimisation steps (default: 188 469)"),
    )
    budget_epochs: list[int] | None = field(
        default=None,
        metadata=_help(
            "budgets in epochs, ending with --epochs (default: those of 1 4 10 20 below --epochs, and --epochs)"
        ),
    )
    n: int = field(default=1000, metadata=_help("test images analysed (default: 1000)"))
    n_train: int = field(default=4000, metadata=_help("train images the kNN and probe are fit on (default: 4000)"))
    analysis_seed: int = field(default=0, metadata=_help("seed of the test corruption and t-SNE (default: 0)"))
    knn_k: int = field(default=5, metadata=_help("neighbours of the kNN classifier (default: 5)"))

    def __post_init__(self):
        self.learning_rate = ConfigOverrides(DEFAULT_LEARNING_RATE | ConfigOverrides(self.learning_rate))
        self.num_warmup_steps = ConfigOverrides(DEFAULT_WARMUP_STEPS | ConfigOverrides(self.num_warmup_steps))
        self.vit_overrides = ConfigOverrides(self.vit_overrides)
        if self.budget_epochs is None:  # the default budgets that fit, and the whole run
            self.budget_epochs = sorted({e for e in DEFAULT_BUDGET_EPOCHS if e < self.num_train_epochs})
            self.budget_epochs.append(self.num_train_epochs)

    def validate(self) -> None:
        if self.seeds < 1:
            raise ConfigurationError(f"--seeds must be >= 1, got {self.seeds}.")
        for name in ("num_train_epochs", "n", "n_train", "per_device_train_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if not self.budget_epochs or max(self.budget_epochs) != self.num_train_epochs or min(self.budget_epochs) < 1:
            raise ConfigurationError(
                f"--budget_epochs must lie in 1..{self.num_train_epochs} and end with the whole run "
                f"({self.num_train_epochs}), got {self.budget_epochs}."
            )

    def training_config(self, cell: str, seed: int, image_size: int, num_channels: int) -> TrainingConfig:
        """The `TrainingConfig` of one run of the grid, on images of the dataset's size: the ViT's preset is the one
        for that size (`mnist` for 28×28×1, `cifar10` for 32×32×3), else `mnist`'s at the dataset's size."""
        spec = STUDY_CELLS[cell]
        preset = mae_preset_for(image_size, num_channels) if spec.model == "mae" else None
        for name, values in (("learning_rate", self.learning_rate), ("num_warmup_steps", self.num_warmup_steps)):
            if spec.architecture not in values:
                raise ConfigurationError(f"--{name} has no value for {spec.architecture!r} (cell {cell}).")
        overrides = dict(self.vit_overrides) if spec.architecture == "vit" else {}
        if spec.model == "mae" and preset is None:
            preset, overrides = "mnist", {"image_size": image_size, "num_channels": num_channels} | overrides
        return TrainingConfig(
            model=spec.model,
            dataset=self.dataset,
            corruption=spec.corruption,
            preset=preset,
            mask_ratio=self.mask_ratio if spec.corruption == "mask" else None,
            noise_factor=self.noise_factor if spec.corruption == "noise" else None,
            config_overrides=overrides | spec.config_overrides,
            num_train_epochs=self.num_train_epochs,
            per_device_train_batch_size=self.per_device_train_batch_size,
            learning_rate=self.learning_rate[spec.architecture],
            num_warmup_steps=self.num_warmup_steps[spec.architecture],
            seed=seed,
            max_train_samples=self.max_train_samples,
            max_eval_samples=self.max_eval_samples,
        )

    def key(self) -> str:
        """What an analysis depends on, as text: an analysis made with other settings is not reused."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "seeds"}, sort_keys=True)


# The whole pipeline on tiny budgets (a test runs it end to end in about a minute).
QUICK = dict(
    num_train_epochs=2,
    max_train_samples=256,
    max_eval_samples=128,
    n=120,
    n_train=300,
    vit_overrides=TINY_VIT,
    budget_steps=[4],
    per_device_train_batch_size=32,
)


def run_dir(out: Path, cell: str, seed: int) -> Path:
    """Where one run's model folder and checkpoints are (not committed)."""
    return Path(out) / "runs" / cell / f"seed{seed}"


def analysis_file(results: Path, cell: str, seed: int) -> Path:
    """Where one run's analysis is written (committed as it finishes: a study survives a fresh machine)."""
    return Path(results) / "runs" / f"{cell}-seed{seed}.npz"


def finished(path: Path) -> bool:
    """A run's folder is complete: the model card is written last."""
    return (path / "README.md").is_file() and (path / "eval_results.json").is_file()


def _check_same_settings(path: Path, config: TrainingConfig) -> None:
    saved = json.loads((path / "training_args.json").read_text())
    wanted = asdict(config)
    diff = sorted(
        k
        for k in wanted
        if k in saved
        and json.dumps(saved[k], sort_keys=True, default=str) != json.dumps(wanted[k], sort_keys=True, default=str)
    )
    if diff:
        raise ConfigurationError(
            f"{path} was trained with other settings ({', '.join(diff)} differ); use a new --out folder for new "
            "settings, or delete that run to retrain it."
        )


def train_run(
    settings: StudySettings, cell: str, seed: int, out: Path, data, command: str, stop_after_epochs: int | None = None
) -> None:
    """Train one run of the grid into `run_dir`, resuming from its newest complete checkpoint if it has one; every
    budget's checkpoint is kept. `stop_after_epochs`: stop there (on the whole run's schedule, resumable later)."""
    path = run_dir(out, cell, seed)
    config = settings.training_config(cell, seed, *image_shape(data["train"]))
    if (path / "training_args.json").is_file():
        _check_same_settings(path, config)
    resume = "latest" if path.is_dir() and find_checkpoints(path) else None
    args = RunArgs(
        output_dir=str(path),
        overwrite_output_dir=path.is_dir() and resume is None,
        checkpointing_steps=list(settings.budget_steps),
        checkpoints_total_limit=0,
        resume_from_checkpoint=resume,
        stop_after_epochs=stop_after_epochs,
    )
    args.command = command
    if resume:
        logger.info("resuming %s from its last checkpoint", path)
    training_function(config, args, data=data)


def budget_names(settings: StudySettings, epochs: int | None = None) -> list[str]:
    """The checkpoints analysed, fewest images first (those of the first `epochs` epochs; default all)."""
    epochs = settings.num_train_epochs if epochs is None else epochs
    return [f"step_{s}" for s in settings.budget_steps] + [
        f"epoch_{e - 1}" for e in settings.budget_epochs if e <= epochs
    ]


# The field's readouts (`mae_hf.study.measure.readout_measures`) cost about 1-6 min per model on 2 cores, most of it
# the probe's C sweep on 50,000 rows: at all six budgets and at initialisation that is seven a run, about 40 min of
# analysis for a ViT run. They are taken at these epoch budgets and at the whole run (60,000, 240,000 and
# 1,200,000 images of the study's plan), and at initialisation; every budget gets every other measure.
READOUT_EPOCHS = (1, 4)


def readout_budget_names(settings: StudySettings) -> list[str]:
    """The budgets at which the field's readouts are taken: those of `READOUT_EPOCHS` the plan has, and the whole
    run."""
    return [f"epoch_{e - 1}" for e in settings.budget_epochs if e in READOUT_EPOCHS or e == settings.num_train_epochs]


def budget_checkpoints(path: Path, settings: StudySettings, partial: bool = False) -> list[tuple[str, Path]]:
    """The analysed checkpoints of a run, fewest images first: `(budget name, checkpoint folder)`. A finished run
    must have them all; with `partial` (a run stopped part-way), those it has so far."""
    found = {p.name: p for _, p in find_checkpoints(path)}
    if partial:
        return [(name, found[name]) for name in budget_names(settings) if name in found]
    missing = [w for w in budget_names(settings) if w not in found]
    if missing:
        raise ConfigurationError(f"{path} lacks the budget checkpoints {missing}; retrain it (delete the folder).")
    return [(name, found[name]) for name in budget_names(settings)]
