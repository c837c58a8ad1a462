"""Model cards: the templates in `model_cards/` filled with a trained model's config, test metrics and training facts,
and, where measured, how well the field's readouts read the class from its frozen features (`mae_hf.analysis.readout`:
weighted cosine kNN, linear probe with C chosen on validation, low-label probes).

Metadata goes through `huggingface_hub`'s `ModelCardData`/`EvalResult`, so `ModelCard.load` parses it back, the Hub
shows the model-index, and `library_name: transformers` makes the Hub offer the right loading code.
"""

import re
import shlex
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .analysis.readout import KNN_SETTINGS, READOUT_MEASURES, knn_key
from .data import dataset_provenance
from .registry import feature_label

__all__ = [
    "TEMPLATE_DIR",
    "render_model_card",
    "card_for_folder",
    "card_code_blocks",
    "dataset_metadata",
    "public_command",
    "model_reference",
    "readout_eval_results",
    "save_readout",
    "READOUT_FILE",
]

# The templates are the repository's model_cards/, shipped in the wheel as mae_hf/model_cards/ (pyproject.toml).
_PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "model_cards"
TEMPLATE_DIR = (
    _PACKAGED_TEMPLATES
    if (_PACKAGED_TEMPLATES / "mae.md").is_file()
    else Path(__file__).resolve().parent.parent / "model_cards"
)
# Hub dataset ids of the embedded sources (the embedded MNIST is a subset of ylecun/mnist's training split).
EMBEDDED_DATASET_IDS = {"mnist": "ylecun/mnist"}
# What a card shows for a local --dataset folder that is no public dataset it knows.
PLACEHOLDER_DATASET = "path/to/your/images"
# Flags whose value is a path the run wrote to: an absolute one is shown by its last part(s).
OUTPUT_PATH_FLAGS = {"--output_dir": 1, "--resume_from_checkpoint": 2}
METRIC_NAMES = {
    "loss": "Test loss (training objective)",
    "psnr": "Test PSNR (dB)",
    "ssim": "Test SSIM",
    "psnr_masked": "Test masked-region PSNR (dB)",
}
# A finished folder's readouts, when measured (`card_for_folder` puts them on the card): `render_model_card`'s
# `readout`, as JSON.
READOUT_FILE = "readout_results.json"


def dataset_metadata(source: str, num_train: int, num_eval: int) -> dict:
    """
    How a `--dataset` source appears on the card: what the model was trained on and evaluated on, truthfully.

    Returns:
        `{"hub_id": Hub dataset id or None (local files), "name": display name, "description": prose for the
        training data, "eval_split": prose for the evaluation data, "train_split" / "test_split": the public
        dataset's split names the two come from (the model-index's `split`)}`.
    """
    p = dataset_provenance(source)
    where = f"`{p['hub_id']}`" if p["hub_id"] else f"the local dataset {p['name']}"
    description = (
        f"{num_train:,} {p['train_note']}"
        if p["train_note"]
        else f"{num_train:,} images of {where} (split `{p['train_split']}`)"
    )
    eval_split = (
        f"{num_eval:,} {p['test_note']}"
        if p["test_note"]
        else f"{num_eval:,} images of {where} (split `{p['test_split']}`)"
    )
    return {
        "hub_id": p["hub_id"],
        "name": p["name"],
        "local": p["local"],
        "description": description,
        "eval_split": eval_split,
        "train_split": p["train_split"],
        "test_split": p["test_split"],
    }


def _is_machine_path(value: str) -> bool:
    return value.startswith(("/", "~")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))


def public_command(command: str, dataset: dict) -> tuple[str, str]:
    """
    The training command as a card shows it: one a reader can run, with no path of the machine that trained the
    model. A local `--dataset` folder becomes the Hub id of the public dataset it holds (`dataset_metadata`'s
    `hub_id`: `ylecun/mnist` for MNIST's IDX files) or `PLACEHOLDER_DATASET`; an absolute `--output_dir` is shown
    by its folder name (and `--resume_from_checkpoint` by its last two parts).

    Returns:
        `(command, note)`: the command (the recorded one, unchanged, when nothing needed replacing) and the sentence
        that says what was replaced ("" when nothing was).
    """
    try:
        words = shlex.split(command)
    except ValueError:
        return command, ""
    notes, shown, i = [], [], 0
    while i < len(words):
        flag, eq, value = words[i].partition("=")
        takes_value = flag == "--dataset" or flag in OUTPUT_PATH_FLAGS
        if not takes_value or (not eq and i + 1 == len(words)):
            shown.append(words[i])
            i += 1
            continue
        if not eq:
            value, i = words[i + 1], i + 1
        new = value
        if flag == "--dataset" and dataset.get("local"):
            new = dataset["hub_id"] or PLACEHOLDER_DATASET
            notes.append(
                f"The run read a local copy of `{new}`'s IDX files; the command names the Hub dataset, which holds "
                "the same images and labels."
                if dataset["hub_id"]
                else f"The run read a local folder of images, shown as `{new}`: put the path of your own copy there."
            )
        elif flag in OUTPUT_PATH_FLAGS and _is_machine_path(value):
            new = "/".join(Path(value).expanduser().parts[-OUTPUT_PATH_FLAGS[flag] :])
        shown += [f"{flag}={new}"] if eq else [flag, new]
        i += 1
    if shown == words:
        return command, ""
    return shlex.join(shown), " ".join(notes)


def model_reference(model_id: str, is_folder: bool | None = None) -> tuple[str, str]:
    """
    What a card's snippet loads and the sentence that says where it runs: a Hub id as it is, with no sentence; a
    folder on disk relative to where the training command ran (say so), an absolute one by its name alone (no path
    of the training machine).

    Args:
        model_id: the Hub repo id or the output folder.
        is_folder: whether `model_id` is a folder; `None` guesses (an existing folder, an absolute path, `./`, `../`,
            `~`, or more than one `/`).
    """
    if is_folder is None:
        is_folder = (
            Path(model_id).expanduser().is_dir()
            or _is_machine_path(model_id)
            or model_id.startswith(".")
            or model_id.count("/") > 1
        )
    if not is_folder:
        return model_id, ""
    hub = "or load the model by its Hub id once it is pushed (`mae-hf push` writes this card again with that id)."
    if _is_machine_path(model_id):
        name = Path(model_id).expanduser().name
        return name, f"`{name}` is the model's folder: run this code from the folder that holds it, {hub}"
    return model_id, (
        f"`{model_id}` is a folder, relative to the directory the training command ran in (the repository root, "
        f"where the project's commands run): run this code from there, {hub}"
    )


def _training_section(config: dict, train_results: dict, dataset: dict) -> str:
    minutes = train_results["train_runtime"] / 60
    steps = train_results["completed_steps"]
    command, note = public_command(train_results["command"], dataset)
    lines = [
        f"Trained with this command. {note}" if note else "Trained with this exact command:",
        "",
        "```bash",
        command,
        "```",
        "",
        "| | |",
        "| --- | --- |",
        f"| seed | {config['seed']} (data order, initialisation and per-sample corruption) |",
        f"| epochs / optimisation steps | {train_results['epochs']} / {steps} |",
        f"| batch size | {train_results['total_train_batch_size']} (per device {config['per_device_train_batch_size']}"
        f" × {train_results['num_processes']} process(es) × {config['gradient_accumulation_steps']} accumulation) |",
        f"| optimiser | AdamW, learning rate {config['learning_rate']:g}, weight decay {config['weight_decay']:g}, "
        f"gradient clipping {config['max_grad_norm']:g} |",
        f"| schedule | {config['lr_scheduler_type']}, {config['num_warmup_steps']} warm-up steps |",
        f"| training data | {train_results['num_train_examples']:,} images |",
        f"| wall time | {train_results['train_runtime']:.1f} s ({minutes:.1f} min) of training, "
        f"{train_results['train_samples_per_second']:.0f} images/s |",
        f"| hardware | {train_results['hardware']} |",
        f"| precision | {'fp32' if train_results['mixed_precision'] == 'no' else train_results['mixed_precision']} |",
    ]
    if train_results.get("final_train_loss") is not None:
        lines.append(f"| final training loss | {train_results['final_train_loss']:.5f} (mean over the last epoch) |")
    history = train_results.get("log_history") or []
    if len(history) > 1:
        # Runs since the validation split evaluate every epoch on it; earlier runs logged the test split.
        split = "validation" if "validation_loss" in history[0] else "test"
        heading = {
            "validation": f"Validation metrics after each epoch ({train_results.get('num_validation_examples', 0):,} "
            "training images held out for choices, `mae_hf.validation`; the test split is scored once, above):",
            "test": "Test metrics after each epoch (this run predates the validation split: every epoch was scored "
            "on the test split):",
        }[split]
        lines += [
            "",
            heading,
            "",
            f"| epoch | step | train loss | {split} loss | {split} PSNR | {split} SSIM |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in history:
            lines.append(
                f"| {row['epoch']} | {row['step']} | {row['train_loss']:.5f} | {row[f'{split}_loss']:.5f} | "
                f"{row[f'{split}_psnr']:.2f} | {row[f'{split}_ssim']:.4f} |"
            )
    return "\n".join(lines)


def _readout_protocol(name: str, row: dict, settings: dict) -> dict:
    """The protocol of one readout, as the model-index's metric `args`."""
    n_train = f"{settings['n_train']:,} training images"
    if name.startswith("knn"):
        k, t = next((k, t) for k, t in KNN_SETTINGS if knn_key(k) == name)
        return {
            "protocol": "weighted cosine kNN (DINO): L2-normalised features, top-k cosine neighbours vote exp(sim / T)",
            "k": k,
            "temperature": t,
            "memory_bank": n_train,
            "features": row["features"],
        }
    probe = row["probes"][name]
    return {
        "protocol": "linear probe: standardised features + multinomial logistic regression (L2), C chosen on the "
        f"{settings['n_validation']:,}-image validation split of the training set",
        "C": probe["C"],
        "labelled_images": probe["n_fit"],
        "of": n_train,
        "features": row["features"],
    }


def readout_eval_results(readout: dict, dataset: dict) -> list[EvalResult]:
    """
    The model-index entries of a model's readouts: one top-1 accuracy per `READOUT_MEASURES` entry, on the test
    split, its protocol named in the metric's name and `args` (k, T, memory bank; the probe's C, labelled images).

    Args:
        readout: `{"settings": field_protocol's settings, "model": the model's readout row, ...}`.
        dataset: `dataset_metadata`'s result.
    """
    row, settings = readout["model"], readout["settings"]
    return [
        EvalResult(
            task_type="image-classification",
            task_name="Frozen-feature classification (field protocol)",
            dataset_type=dataset["hub_id"] or dataset["name"],
            dataset_name=dataset["name"],
            dataset_split=dataset["test_split"],
            metric_type="accuracy",
            metric_name=f"Test top-1, {READOUT_MEASURES[name]}",
            metric_value=round(float(row["accuracy"][name]), 6),
            metric_args=_readout_protocol(name, row, settings),
        )
        for name in READOUT_MEASURES
        if name in row["accuracy"]
    ]


def _readout_section(readout: dict) -> str:
    """The card's table of readouts: the model beside the controls measured with it (random init, raw pixels)."""
    settings, rows = readout["settings"], {"this model": readout["model"], **readout.get("controls", {})}
    lines = [
        f"How well the class can be read from the frozen features ({feature_label(readout['model']['features'])}), "
        f"by the field's protocol (`mae_hf.analysis.readout`): the memory bank and the probes' training set are "
        f"{settings['n_train']:,} training images; each probe's C is chosen on their {settings['n_validation']:,}-image "
        "validation split (`mae_hf.validation`), then the probe is refit and scored once on the "
        f"{settings['n_test']:,} test images. Top-1 accuracy:",
        "",
        "| readout | " + " | ".join(rows) + " |",
        "| --- |" + " --- |" * len(rows),
    ]
    for name, words in READOUT_MEASURES.items():
        if name in readout["model"]["accuracy"]:
            values = [f"{r['accuracy'][name]:.4f}" if name in r["accuracy"] else "—" for r in rows.values()]
            lines.append(f"| {words} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _preparation(config: dict) -> str:
    """How a picture from elsewhere is made like the training images (the model's dataset profile): words, code."""
    from .profiles import profile_of_config

    profile = profile_of_config(config)
    size, channels = config.get("image_size", 28), config.get("num_channels", 1)
    return (
        f"A picture from elsewhere must first be made like the training images. {profile.hint} The demo app does it "
        f"with the `mae_hf` package (the model's `dataset_profile`, {profile.name!r}): `from mae_hf.profiles import "
        f'profile_for`, then `pixel_values = torch.from_numpy(profile_for({profile.name!r}).prepare("photo.jpg", '
        f"{size}, {channels}))[None]`."
    )


def render_model_card(
    model_kind: str,
    model_id: str,
    model_config,
    config: dict,
    eval_metrics: dict,
    train_results: dict,
    template_dir: str | Path | None = None,
    model_is_folder: bool | None = None,
    readout: dict | None = None,
) -> ModelCard:
    """
    Render `model_cards/{model_kind}.md` into a `ModelCard`. The card shows no path of the machine that trained the
    model: its command and snippet go through `public_command` and `model_reference`.

    Args:
        model_kind: `"mae"` or `"dae"`.
        model_id: what the card's code loads (`from_pretrained(model_id)`): the Hub repo id or the output folder.
        model_config: the trained model's `ViTMAEConfig` / `DAEConfig`.
        config: the `TrainingConfig` as a dict.
        eval_metrics: `evaluate`'s result on the test split.
        train_results: the training facts of `training_function` (command, steps, wall time, hardware, ...).
        template_dir: where the templates are (default: `model_cards/` of this repository).
        model_is_folder: whether `model_id` is the output folder rather than a Hub id (`None`: `model_reference`
            guesses).
        readout: the field's readouts of this model, when measured: `{"settings": field_protocol's settings,
            "model": its readout row, "controls": {words: row} (optional; e.g. its random-init twin, raw pixels)}`
            (`mae_hf.scorecard.field_protocol`). They go into the model-index and a table on the card.

    Returns:
        The card; `card.save(path)` writes it, `ModelCard.load` reads it back with its model-index.
    """
    if model_kind not in ("mae", "dae"):
        raise ValueError(f"`model_kind` must be 'mae' or 'dae', got {model_kind!r}.")
    template = Path(template_dir or TEMPLATE_DIR) / f"{model_kind}.md"
    if not template.is_file():
        raise ValueError(f"Model card template {str(template)!r} not found; it ships in the repository's model_cards/.")
    dataset = dataset_metadata(
        config["dataset"], train_results["num_train_examples"], train_results["num_eval_examples"]
    )
    model_name = model_id.rstrip("/").split("/")[-1]
    # No pipeline_tag: transformers' image pipelines convert every image to RGB, and these models take one
    # channel (see the card's snippet). The model-index still needs a task type; it names what is measured.
    task = "image-to-image"
    eval_results = [
        EvalResult(
            task_type=task,
            task_name="Masked image reconstruction" if model_kind == "mae" else "Image denoising",
            dataset_type=dataset["hub_id"] or dataset["name"],
            dataset_name=dataset["name"],
            dataset_split=dataset["test_split"],
            metric_type=key,
            metric_name=METRIC_NAMES[key],
            metric_value=round(float(eval_metrics[key]), 6),
        )
        for key in METRIC_NAMES
        if key in eval_metrics
    ]
    if readout is not None:
        eval_results += readout_eval_results(readout, dataset)
    tags = ["mae_hf", "autoencoder", "image-reconstruction", "pytorch"]
    tags += ["vit_mae", "masked-autoencoder"] if model_kind == "mae" else ["denoising-autoencoder", "custom_code"]
    card_data = ModelCardData(
        model_name=model_name,
        license="apache-2.0",
        library_name="transformers",
        datasets=[dataset["hub_id"]] if dataset["hub_id"] else None,
        # Hub metric ids; the loss is MSE for the MAE and for a DAE trained with loss="mse" (BCE has no id)
        metrics=(["mse"] if getattr(model_config, "loss", "mse") == "mse" else []) + ["psnr", "ssim"],
        tags=tags,
        eval_results=eval_results,
    )
    values = model_config.to_dict()
    num_parameters = train_results.get("num_parameters")
    loads, location_note = model_reference(model_id, model_is_folder)
    fields = dict(
        model_name=model_name,
        model_id=loads,
        model_location_note=location_note,
        metrics=eval_metrics,
        dataset_description=dataset["description"],
        eval_split_description=dataset["eval_split"],
        num_eval_examples=train_results["num_eval_examples"],
        eval_seed=config["eval_seed"],
        training_section=_training_section(config, train_results, dataset),
        num_parameters=f"{num_parameters:,}" if num_parameters else "",
        readout_section=_readout_section(readout) if readout is not None else "",
        **values,
    )
    fields["corruption"] = values.get("corruption") or ("mask" if model_kind == "mae" else "noise")
    fields["preparation"] = _preparation(values)
    if model_kind == "mae":
        num_patches = (values["image_size"] // values["patch_size"]) ** 2
        fields.update(num_patches=num_patches, num_visible=int(num_patches * (1 - values["mask_ratio"])))
    else:
        channels = [values["num_channels"], *values["hidden_channels"]]
        size = values["image_size"]
        for _ in values["hidden_channels"]:
            size //= 2
        k = values["kernel_size"]
        fields.update(
            encoder_description=", ".join(f"conv {a}→{b} {k}×{k}" for a, b in zip(channels[:-1], channels[1:]))
            + ", each followed by ReLU and 2×2 max-pooling",
            latent_shape=f"{channels[-1]}, {size}, {size}",
        )
    return ModelCard.from_template(card_data, template_path=str(template), **fields)


def card_for_folder(folder: str | Path, model_id: str, model_is_folder: bool | None = None) -> ModelCard:
    """
    The card of a finished training folder rendered again for another `model_id` (e.g. the Hub repo it is pushed
    to, so its snippet loads `user/name`), from the folder's config.json, training_args.json, eval_results.json and
    train_results.json, and its `READOUT_FILE` when it has one (`render_model_card`'s `readout`). `model_is_folder`
    as in `render_model_card`.

    Raises:
        ValueError: the folder is not a finished output folder of `train_accelerate.py`.
    """
    import json

    from transformers import ViTMAEConfig

    from .configuration_dae import DAEConfig

    folder = Path(folder)
    needed = ("config.json", "training_args.json", "eval_results.json", "train_results.json")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{str(folder)!r} is not a finished training folder of train_accelerate.py: it has no "
            f"{', '.join(missing)}. Pass the --output_dir of a finished run."
        )
    # The config class by model_type, not AutoConfig: the DAE's config.json names remote code, which AutoConfig
    # asks to trust unless the DAE happens to be registered in this process already.
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    kind = {"vit_mae": "mae", "conv_dae": "dae"}.get(model_type)
    if kind is None:
        raise ValueError(f"{str(folder)!r} holds a {model_type!r} model, not an MAE or a DAE of mae_hf.")
    model_config = (ViTMAEConfig if kind == "mae" else DAEConfig).from_pretrained(folder)
    config = json.loads((folder / "training_args.json").read_text())
    metrics = {k: v for k, v in json.loads((folder / "eval_results.json").read_text()).items() if k != "split"}
    readout = json.loads((folder / READOUT_FILE).read_text()) if (folder / READOUT_FILE).is_file() else None
    return render_model_card(
        kind,
        model_id,
        model_config,
        config,
        metrics,
        json.loads((folder / "train_results.json").read_text()),
        model_is_folder=model_is_folder,
        readout=readout,
    )


def save_readout(folder: str | Path, readout: dict, model_id: str | None = None) -> Path:
    """
    Keep a finished folder's readouts (`READOUT_FILE`) and render its card again with them (its model-index gains the
    readouts). Each file is written whole or not at all. `model_id`: the id the card's snippet loads (default the
    folder as given, as training writes it). Returns the card's path.
    """
    import json
    import os

    folder = Path(folder)
    card = card_for_folder(folder, model_id or str(folder), model_is_folder=True)  # checks the folder first
    readout_tmp = folder / f".{READOUT_FILE}.tmp"
    readout_tmp.write_text(json.dumps(readout, indent=2) + "\n")
    os.replace(readout_tmp, folder / READOUT_FILE)
    card = card_for_folder(folder, model_id or str(folder), model_is_folder=True)
    card_tmp = folder / ".README.md.tmp"
    card.save(card_tmp)
    os.replace(card_tmp, folder / "README.md")
    return folder / "README.md"


def card_code_blocks(card: ModelCard | str, language: str = "python") -> list[str]:
    """The fenced code blocks of a card's text in `language`, in order (to run the card's example)."""
    text = card.text if isinstance(card, ModelCard) else str(card)
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
