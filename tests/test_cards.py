"""Model cards written by the training run (mae_hf/cards.py, model_cards/)."""

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from datasets import DatasetDict
from huggingface_hub import ModelCard

from mae_hf.cards import card_code_blocks, dataset_metadata
from mae_hf.training import RunArgs, TrainingConfig, training_function

from .conftest import TINY_MAE

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"  # MNIST's and Fashion-MNIST's IDX files, where this machine has them


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """A finished output folder per model (tiny, in process)."""
    data = DatasetDict(train=mnist["train"].select(range(32)), test=mnist["test"].select(range(16)))
    folders = {}
    for model, overrides in (("dae", {"hidden_channels": [8, 8, 4]}), ("mae", TINY_MAE)):
        out = tmp_path_factory.mktemp("cards") / f"{model}-mnist"
        config = TrainingConfig(
            model=model, config_overrides=overrides, num_train_epochs=2, per_device_train_batch_size=8, seed=11
        )
        training_function(
            config, RunArgs(output_dir=str(out), command=f"python train_accelerate.py --model {model}"), data=data
        )
        folders[model] = out
    return folders


@pytest.mark.parametrize("model", ["dae", "mae"])
def test_card_metadata_parses_with_huggingface_hub(trained, model):
    out = trained[model]
    card = ModelCard.load(out / "README.md")
    metrics = json.loads((out / "eval_results.json").read_text())
    data = card.data
    assert data.library_name == "transformers" and data.license == "apache-2.0"
    # no pipeline_tag: transformers' image pipelines convert to RGB, these models take one channel
    assert data.pipeline_tag is None and data.datasets == ["ylecun/mnist"]
    assert "mae_hf" in data.tags and ("vit_mae" in data.tags) == (model == "mae")
    assert set(data.metrics) == ({"mse", "psnr", "ssim"} if model == "mae" else {"psnr", "ssim"})  # DAE: BCE
    assert data.model_name == f"{model}-mnist"
    found = {r.metric_type: r.metric_value for r in data.eval_results}
    expected = {"loss", "psnr", "ssim"} | ({"psnr_masked"} if model == "mae" else set())
    assert set(found) == expected
    for key in expected:
        assert found[key] == pytest.approx(metrics[key], abs=1e-6)
    # the embedded MNIST's test split is MNIST's official test set: the model-index says so
    assert all(r.dataset_split == "test" and r.dataset_type == "ylecun/mnist" for r in data.eval_results)
    # the model-index is what the Hub reads
    assert "model-index" in card.content and f"- name: {model}-mnist" in card.content


@pytest.mark.parametrize("model", ["dae", "mae"])
def test_card_text_has_training_details_limitations_and_citation(trained, model):
    out = trained[model]
    text = (out / "README.md").read_text()
    train = json.loads((out / "train_results.json").read_text())
    metrics = json.loads((out / "eval_results.json").read_text())
    for needle in (
        f"python train_accelerate.py --model {model}",  # the exact command
        "| seed | 11 ",
        f"| epochs / optimisation steps | 2 / {train['completed_steps']} |",
        f"{train['train_runtime']:.1f} s",
        train["hardware"],
        f"{metrics['psnr']:.2f}",
        f"{metrics['ssim']:.4f}",
        "## Limitations",
        "Masked Autoencoders Are Scalable Vision Learners",
        "evaluation seed 0",
    ):
        assert needle in text, needle
    assert "{{" not in text and "}}" not in text  # every template variable was filled
    if model == "mae":
        assert "ViTMAEForPreTraining.from_pretrained" in text and "mask ratio 0.75" in text
    else:
        assert "trust_remote_code=True" in text and "std 0.5" in text


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dae", "mae"])
def test_card_code_runs_without_mae_hf(trained, model, tmp_path):
    """The card's snippet, verbatim, in a fresh process that cannot import mae_hf."""
    blocks = card_code_blocks(ModelCard.load(trained[model] / "README.md"))
    # the run's --output_dir was absolute: the snippet loads the folder by its name, from the folder that holds it
    assert blocks and f'from_pretrained("{model}-mnist"' in blocks[0] and str(trained[model]) not in blocks[0]
    script = 'import sys\nsys.modules["mae_hf"] = None  # any import of mae_hf now fails\n' + blocks[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=trained[model].parent, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = {
        "dae": "torch.Size([1, 1, 28, 28]) torch.Size([1, 1, 28, 28]) torch.Size([1, 4, 3, 3])",
        "mae": "torch.Size([1, 1, 28, 28]) torch.Size([1, 1, 28, 28]) torch.Size([1, 32])",
    }[model]
    assert expected in result.stdout


def test_dataset_metadata_for_each_kind_of_source(tmp_path):
    embedded = dataset_metadata("mnist", 4000, 1000)
    assert embedded["hub_id"] == "ylecun/mnist"
    assert (embedded["train_split"], embedded["test_split"]) == ("train", "test")
    assert "MNIST's official test set" in embedded["eval_split"] and "4,000" in embedded["description"]
    hub = dataset_metadata("uoft-cs/cifar10", 50000, 10000)
    assert hub["hub_id"] == "uoft-cs/cifar10" and hub["test_split"] == "test"
    local = dataset_metadata(str(tmp_path), 10, 5)
    assert local["hub_id"] is None and local["name"] == tmp_path.name


def test_an_idx_folder_of_mnist_itself_is_named_ylecun_mnist(tmp_path):
    """Recognised by its labels (the same bytes as ylecun/mnist's); other IDX files stay a local dataset."""
    import gzip

    import numpy as np

    from mae_hf.data import MNIST_LABELS_SHA256, dataset_provenance

    shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "mnist")
    if os.path.isdir(shared):
        p = dataset_provenance(shared)
        assert (p["hub_id"], p["train_split"], p["test_split"]) == ("ylecun/mnist", "train", "test")
    for name, n in (("train-labels-idx1-ubyte.gz", 60000), ("t10k-labels-idx1-ubyte.gz", 10000)):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + np.zeros(n, np.uint8).tobytes())
    assert dataset_provenance(str(tmp_path))["hub_id"] is None
    assert set(MNIST_LABELS_SHA256) == {"train", "test"}


@pytest.mark.parametrize("model", ["dae", "mae"])
def test_the_shipped_image_processor_turns_a_pil_digit_into_pixel_values(trained, model, mnist):
    """`AutoImageProcessor.from_pretrained(folder)`: stock transformers, (B, 1, 28, 28) on [0, 1], the same values as
    the training data."""
    from transformers import AutoImageProcessor

    from mae_hf import to_pixel_values

    processor = AutoImageProcessor.from_pretrained(trained[model])
    images = list(mnist["test"].select(range(3))["image"])
    pixel_values = processor(images, return_tensors="pt").pixel_values
    assert tuple(pixel_values.shape) == (3, 1, 28, 28)
    assert pixel_values.min() >= 0 and pixel_values.max() <= 1
    assert pixel_values.equal(to_pixel_values(images))


def test_unknown_model_kind_is_refused():
    from mae_hf.cards import render_model_card

    with pytest.raises(ValueError, match="'mae' or 'dae'"):
        render_model_card("vae", "x", None, {}, {}, {})


def test_card_snippet_block_extraction():
    text = textwrap.dedent(
        """
        intro
        ```python
        a = 1
        ```
        ```bash
        ls
        ```
        ```python
        b = 2
        ```
        """
    )
    assert card_code_blocks(text) == ["a = 1\n", "b = 2\n"]


def test_an_idx_folder_of_fashion_mnist_is_named_zalando_fashion_mnist():
    from mae_hf.data import dataset_provenance

    if not (SHARED / "fashion-mnist").is_dir():
        pytest.skip("no local copy of Fashion-MNIST's IDX files")
    p = dataset_provenance(str(SHARED / "fashion-mnist"))
    assert (p["hub_id"], p["name"], p["local"]) == ("zalando-datasets/fashion_mnist", "Fashion-MNIST", True)
    assert dataset_provenance("zalando-datasets/fashion_mnist")["local"] is False
    assert dataset_provenance("mnist")["local"] is False


def _shipped_mae_inputs() -> tuple:
    """The bundled MAE's config, metrics and training facts, to render cards from without training."""
    from transformers import ViTMAEConfig

    folder = REPO / "pretrained" / "mae-mnist"
    config = json.loads((folder / "training_args.json").read_text())
    metrics = {k: v for k, v in json.loads((folder / "eval_results.json").read_text()).items() if k != "split"}
    train = json.loads((folder / "train_results.json").read_text())
    return ViTMAEConfig.from_pretrained(folder), config, metrics, train


def test_the_card_says_how_to_prepare_a_picture_for_the_models_dataset():
    """The card tells how a picture from elsewhere is made like the training images, from the model's dataset
    profile: MNIST-like digits for a digits model, Fashion-MNIST-like items for a clothing one, with the code."""
    from mae_hf.cards import render_model_card

    model_config, config, metrics, train = _shipped_mae_inputs()
    digits = str(render_model_card("mae", "pretrained/mae-mnist", model_config, config, metrics, train))
    assert "made MNIST-like" in digits and "profile_for('digits').prepare(\"photo.jpg\", 28, 1)" in digits
    model_config.dataset_profile = "clothing"
    clothing = str(render_model_card("mae", "pretrained/mae-fashion", model_config, config, metrics, train))
    assert "made Fashion-MNIST-like" in clothing and "profile_for('clothing')" in clothing
    assert "MNIST-like:" not in clothing.replace("Fashion-MNIST-like", "") and "handwritten" not in clothing


@pytest.mark.parametrize(
    "source, shown",
    [
        ("idx", "path/to/your/images"),  # 96 digits of MNIST: not a public dataset
        ("mnist", "ylecun/mnist"),
        ("fashion-mnist", "zalando-datasets/fashion_mnist"),
    ],
)
def test_the_card_of_a_run_on_a_local_folder_gives_a_command_without_local_paths(tmp_path, idx_dataset, source, shown):
    """The exact command of a run on a local IDX folder with an absolute --output_dir: the card names the Hub dataset
    the folder mirrors (or a placeholder) and the output folder by its name; no path of this machine anywhere."""
    from mae_hf.cards import render_model_card

    folder = Path(idx_dataset) if source == "idx" else SHARED / source
    if not folder.is_dir():
        pytest.skip(f"no local copy of {source}'s IDX files")
    model_config, config, metrics, train = _shipped_mae_inputs()
    out = tmp_path / "runs" / "mae-local"
    command = shlex.join(
        ["python", "train_accelerate.py", "--model", "mae", "--dataset", str(folder), "--output_dir", str(out)]
    )
    card = render_model_card(
        "mae", str(out), model_config, {**config, "dataset": str(folder)}, metrics, {**train, "command": command}
    )
    text = str(card)  # metadata and text
    for local in (str(folder), str(folder.resolve()), str(folder.parent), str(tmp_path), str(out)):
        assert local not in text, local
    assert f"python train_accelerate.py --model mae --dataset {shown} --output_dir mae-local" in text
    if source == "idx":
        assert "a local folder of images, shown as `path/to/your/images`" in text
    else:
        assert f"read a local copy of `{shown}`'s IDX files" in text
        assert ModelCard(text).data.datasets == [shown]
    assert 'from_pretrained("mae-local")' in text and "run this code from the folder that holds it" in text


@pytest.mark.parametrize("kind", ["dae", "mae"])
def test_the_shipped_cards_give_a_command_a_reader_can_run(kind):
    """The bundled models read MNIST's IDX files from a local folder: their cards name `ylecun/mnist` instead and
    say the snippet's relative folder is relative to the repository root."""
    text = (REPO / "pretrained" / f"{kind}-mnist" / "README.md").read_text()
    assert "../shared" not in text and "/work/" not in text
    assert f"--dataset ylecun/mnist --output_dir pretrained/{kind}-mnist" in text
    assert "read a local copy of `ylecun/mnist`'s IDX files" in text
    assert f'from_pretrained("pretrained/{kind}-mnist"' in text and "the repository root" in text


def test_public_command_replaces_only_paths_of_the_training_machine():
    from mae_hf.cards import public_command

    recorded = (
        "mae-hf train --model dae --dataset=/data/my_digits --output_dir=/home/me/runs/dae "
        "--resume_from_checkpoint /home/me/runs/dae/epoch_3 --config_overrides 'hidden_channels=[8, 8, 4]'"
    )
    command, note = public_command(recorded, {"local": True, "hub_id": None})
    assert command == (
        "mae-hf train --model dae --dataset=path/to/your/images --output_dir=dae --resume_from_checkpoint dae/epoch_3 "
        "--config_overrides 'hidden_channels=[8, 8, 4]'"
    )
    assert "a local folder of images, shown as `path/to/your/images`" in note
    portable = "python train_accelerate.py --model mae --dataset ylecun/mnist --output_dir outputs/mae-mnist"
    assert public_command(portable, {"local": False, "hub_id": "ylecun/mnist"}) == (portable, "")


def _readout(model_acc: float) -> dict:
    """A readout block as `mae_hf.scorecard.field_protocol` gives it (its rows' numbers made up for the test)."""
    from mae_hf.analysis.readout import KNN_SETTINGS, READOUT_MEASURES

    probes = {
        name: {"C": 0.1, "n_fit": 600 if "1pct" in name else 60_000} for name in READOUT_MEASURES if "probe" in name
    }

    def row(acc):
        return {
            "features": "mae_mean",
            "accuracy": {n: acc + i / 100 for i, n in enumerate(READOUT_MEASURES)},
            "probes": probes,
        }

    settings = {"n_train": 60_000, "n_validation": 10_000, "n_test": 10_000, "knn": [list(s) for s in KNN_SETTINGS]}
    return {
        "settings": settings,
        "model": row(model_acc),
        "controls": {"random init": row(0.5), "raw pixels": row(0.8)},
    }


def test_the_card_carries_the_field_readouts_with_their_protocol(tmp_path):
    """`readout` puts one accuracy per readout into the model-index (test split, the protocol in its name and args)
    and a table beside the controls into the text; `card_for_folder` reads it from the folder's READOUT_FILE."""
    import shutil

    from mae_hf.analysis.readout import READOUT_MEASURES
    from mae_hf.cards import READOUT_FILE, card_for_folder, render_model_card

    model_config, config, metrics, train = _shipped_mae_inputs()
    readout = _readout(0.9)
    card = render_model_card("mae", "pretrained/mae-mnist", model_config, config, metrics, train, readout=readout)
    parsed = ModelCard(str(card)).data.eval_results
    accuracy = [r for r in parsed if r.task_type == "image-classification"]
    assert len(accuracy) == len(READOUT_MEASURES) and {r.metric_type for r in accuracy} == {"accuracy"}
    assert all(r.dataset_split == "test" and r.dataset_type == "ylecun/mnist" for r in accuracy)
    by_name = {r.metric_name: r for r in accuracy}
    knn20 = by_name["Test top-1, " + READOUT_MEASURES["knn_cosine_k20"]]
    assert knn20.metric_value == 0.9 and (knn20.metric_args["k"], knn20.metric_args["temperature"]) == (20, 0.07)
    assert knn20.metric_args["memory_bank"] == "60,000 training images"
    probe = by_name["Test top-1, " + READOUT_MEASURES["linear_probe_1pct"]]
    assert probe.metric_args["labelled_images"] == 600 and probe.metric_args["C"] == 0.1
    assert "10,000-image validation split" in probe.metric_args["protocol"]
    assert {r.metric_type for r in parsed} >= {"loss", "psnr"}  # the reconstruction metrics stay
    text = str(card)
    assert "### Frozen features" in text and "| readout | this model | random init | raw pixels |" in text
    assert f"| {READOUT_MEASURES['knn_cosine_k20']} | 0.9000 | 0.5000 | 0.8000 |" in text
    # without readouts the card is as before: no section, no classification results
    plain = render_model_card("mae", "pretrained/mae-mnist", model_config, config, metrics, train)
    assert "### Frozen features" not in str(plain)
    assert all(r.task_type != "image-classification" for r in ModelCard(str(plain)).data.eval_results)
    folder = tmp_path / "mae-mnist"
    # the shipped folder without its weights and its readouts (a folder that was never read)
    shutil.copytree(
        REPO / "pretrained" / "mae-mnist", folder, ignore=shutil.ignore_patterns("*.safetensors", READOUT_FILE)
    )
    assert "### Frozen features" not in str(card_for_folder(folder, "alice/mae-mnist"))
    (folder / READOUT_FILE).write_text(json.dumps(readout))
    assert str(card_for_folder(folder, "alice/mae-mnist")).count("0.9000 | 0.5000 | 0.8000") == 1


def test_mae_hf_readout_keeps_each_models_readouts_and_puts_them_on_its_card(trained, idx_dataset, tmp_path, capsys):
    """`mae-hf readout`: every model, its random-init twin and the raw pixels read by the field's protocol on the
    dataset's whole train and test splits; each model folder keeps its row (with the controls) and its card is
    rendered again with them, the snippet still loading the folder."""
    import shutil

    from mae_hf import cli
    from mae_hf.analysis.readout import READOUT_MEASURES
    from mae_hf.cards import READOUT_FILE

    folders = {m: shutil.copytree(trained[m], tmp_path / trained[m].name) for m in ("dae", "mae")}
    before = {m: (folders[m] / "README.md").read_text() for m in folders}
    out = tmp_path / "readouts.json"
    args = ["readout", "--dae", str(folders["dae"]), "--mae", str(folders["mae"]), "--dataset", idx_dataset]
    assert cli.main([*args, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"dae", "dae_random_init", "mae", "mae_random_init", "raw_pixels"}
    assert json.loads(out.read_text())["settings"]["n_train"] == 96
    for m, folder in folders.items():
        kept = json.loads((folder / READOUT_FILE).read_text())
        assert kept["model"]["accuracy"] == rows[m]["accuracy"]
        assert kept["controls"]["random init"]["accuracy"] == rows[f"{m}_random_init"]["accuracy"]
        card = ModelCard.load(folder / "README.md")
        results = [r for r in card.data.eval_results if r.task_type == "image-classification"]
        assert sorted(r.metric_value for r in results) == sorted(
            round(rows[m]["accuracy"][k], 6) for k in READOUT_MEASURES
        )
        assert f'from_pretrained("{folder.name}"' in card.text and "### Frozen features" in card.text  # no machine path
        assert "### Frozen features" not in before[m]
    assert "raw_pixels" in capsys.readouterr().out

    # --table: the kept readouts as one table (each model, its random-weights twin, the pixels once), nothing computed
    assert cli.main(["readout", "--dae", str(folders["dae"]), "--mae", str(folders["mae"]), "--table"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert len(table) == 2 + 5 and table[0].startswith("| Features | Parameters | 20-NN (cosine, T=0.07) |")
    assert [line.split(" | ")[0] for line in table[2:]] == [
        "| DAE (DAE bottleneck)",
        "| DAE with random weights",
        "| MAE (MAE mean patch token)",
        "| MAE with random weights",
        "| raw pixels (baseline)",
    ]
    assert f"| {rows['mae']['accuracy']['knn_cosine_k20']:.4f} |" in table[4]
    # readouts of other settings do not share a table; a folder never read is named with the command to run
    kept = json.loads((folders["dae"] / READOUT_FILE).read_text())
    (folders["dae"] / READOUT_FILE).write_text(json.dumps(kept | {"settings": kept["settings"] | {"n_test": 5}}))
    assert cli.main(["readout", "--dae", str(folders["dae"]), "--mae", str(folders["mae"]), "--table"]) == 2
    assert cli.main(["readout", "--dae", str(tmp_path), "--table"]) == 2

    # nothing to read, or a dataset without a test split: a message, nothing written
    assert cli.main(["readout", "--dataset", idx_dataset]) == 2
    (tmp_path / "only-train").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        shutil.copy(Path(idx_dataset) / name, tmp_path / "only-train" / name)
    assert cli.main([*args[:-1], str(tmp_path / "only-train"), "--no_save"]) == 2
