"""The publish seam (mae_hf/hub.py) against a mocked `HfApi`; nothing here touches the network."""

from pathlib import Path
from unittest import mock

import pytest
from datasets import DatasetDict
from huggingface_hub import HfApi

from mae_hf import hub
from mae_hf.training import ConfigurationError, RunArgs, TrainingConfig, training_function


def _api(user="alice"):
    api = mock.create_autospec(HfApi, instance=True)
    api.whoami.return_value = {"name": user}
    api.create_repo.side_effect = lambda repo_id, **kw: f"https://huggingface.co/{repo_id}"
    return api


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def test_publish_creates_the_repo_and_uploads_the_folder_without_checkpoints(tmp_path):
    for name in ("config.json", "model.safetensors", "README.md", "eval_results.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / "step_5").mkdir()
    (tmp_path / "step_5" / "optimizer.bin").write_text("x")
    api = _api()
    url = hub.publish(tmp_path, "alice/dae-mnist", token="hf_x", private=True, api=api)
    assert url == "https://huggingface.co/alice/dae-mnist"
    api.create_repo.assert_called_once_with(
        "alice/dae-mnist", token="hf_x", private=True, repo_type="model", exist_ok=True
    )
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "alice/dae-mnist" and kwargs["folder_path"] == str(tmp_path)
    assert set(kwargs["ignore_patterns"]) == {*hub.IGNORE_PATTERNS, *hub.LOCAL_ONLY}
    assert hub.files_to_upload(tmp_path) == ["README.md", "config.json", "eval_results.json", "model.safetensors"]


def test_publish_refuses_an_unfinished_folder(tmp_path):
    with pytest.raises(ValueError, match="not a finished output folder"):
        hub.publish(tmp_path, "alice/x", api=_api())


def test_check_push_access_offline_and_without_token(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set"):
        hub.check_push_access("x", token="hf_x", api=_api())
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(ValueError, match="needs a Hugging Face token"):
        hub.check_push_access("x", api=_api())


def test_check_push_access_rejected_token_and_bare_names(online):
    api = _api("bob")
    assert hub.check_push_access("dae-mnist", token="hf_x", api=api) == "bob/dae-mnist"
    assert hub.check_push_access("org/dae-mnist", token="hf_x", api=api) == "org/dae-mnist"
    api.whoami.side_effect = OSError("401 Unauthorized")
    with pytest.raises(ValueError, match="token was rejected"):
        hub.check_push_access("dae-mnist", token="bad", api=api)


def test_push_to_hub_uploads_every_file_of_the_finished_folder(tmp_path, mnist, online, monkeypatch):
    api = _api("alice")
    monkeypatch.setattr(hub, "HfApi", lambda token=None: api)
    data = DatasetDict(train=mnist["train"].select(range(16)), test=mnist["test"].select(range(8)))
    out = tmp_path / "dae-mnist"
    config = TrainingConfig(
        model="dae", config_overrides={"hidden_channels": [8, 8, 4]}, max_train_steps=2, per_device_train_batch_size=8
    )
    args = RunArgs(
        output_dir=str(out), push_to_hub=True, hub_token="hf_x", hub_private_repo=True, checkpointing_steps=1
    )
    training_function(config, args, data=data)
    api.create_repo.assert_called_once()
    assert api.create_repo.call_args.args == ("alice/dae-mnist",)
    assert api.create_repo.call_args.kwargs["private"] is True
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "alice/dae-mnist" and kwargs["folder_path"] == str(out)
    uploaded = hub.files_to_upload(kwargs["folder_path"])
    assert uploaded == sorted(
        [
            "config.json",
            "model.safetensors",
            "configuration_dae.py",
            "modeling_dae.py",
            "README.md",
            "training_args.json",
            "eval_results.json",
            "train_results.json",
            "preprocessor_config.json",
        ]
    )
    assert any(p.name.startswith("step_") for p in out.iterdir())  # checkpoints exist locally, are not uploaded
    # the card's code loads the pushed repo
    assert 'from_pretrained("alice/dae-mnist"' in (out / "README.md").read_text()
    assert "hf_x" not in (out / "training_args.json").read_text()


def test_publish_refuses_a_folder_that_holds_a_token(tmp_path):
    for name in ("config.json", "model.safetensors", "README.md"):
        (tmp_path / name).write_text("x")
    (tmp_path / "training_args.json").write_text('{"command": "train --hub_token hf_secretvalue123"}')
    api = _api()
    with pytest.raises(ValueError, match="training_args.json contain"):
        hub.publish(tmp_path, "alice/x", token="hf_secretvalue123", api=api)
    api.upload_folder.assert_not_called()


def test_redact_every_spelling():
    text = "python t.py --hub_token hf_abc --x 1 --hub_token=hf_def --hub_token 'hf q' and hf_env"
    assert hub.redact(text, ["hf_env"]) == (
        "python t.py --hub_token <HUB_TOKEN> --x 1 --hub_token=<HUB_TOKEN> --hub_token <HUB_TOKEN> and <HUB_TOKEN>"
    )


def test_push_to_hub_offline_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "never"
    config = TrainingConfig(model="dae", max_train_steps=1)
    with pytest.raises(ConfigurationError, match="--push_to_hub needs the network"):
        training_function(config, RunArgs(output_dir=str(out), push_to_hub=True, hub_token="hf_x"))
    assert not out.exists()


def _listing(api):
    """Make `api.upload_folder` record the exact files of the folder it is given (the staging folder is gone after)."""
    seen = {}

    def upload_folder(**kwargs):
        root = Path(kwargs["folder_path"])
        seen["files"] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        seen["readme"] = (root / "README.md").read_text()
        seen["gitattributes"] = (root / ".gitattributes").read_text() if (root / ".gitattributes").exists() else None
        seen["kwargs"] = kwargs

    api.upload_folder.side_effect = upload_folder
    return seen


def test_push_model_renders_the_card_for_the_repo_id_and_uploads_the_exact_files(tmp_path, mnist):
    data = DatasetDict(train=mnist["train"].select(range(16)), test=mnist["test"].select(range(8)))
    out = tmp_path / "local-name"
    config = TrainingConfig(
        model="dae", config_overrides={"hidden_channels": [8, 8, 4]}, max_train_steps=2, per_device_train_batch_size=8
    )
    training_function(config, RunArgs(output_dir=str(out), checkpointing_steps=1, with_tracking=False), data=data)
    assert 'from_pretrained("local-name"' in (out / "README.md").read_text()  # the folder, by its name
    api = _api("alice")
    seen = _listing(api)
    url = hub.push_model(out, "alice/dae-mnist", token="hf_pushtoken123", api=api)
    assert url == "https://huggingface.co/alice/dae-mnist"
    assert seen["files"] == [
        "README.md",
        "config.json",
        "configuration_dae.py",
        "eval_results.json",
        "model.safetensors",
        "modeling_dae.py",
        "preprocessor_config.json",
        "train_results.json",
        "training_args.json",
    ]
    assert 'from_pretrained("alice/dae-mnist"' in seen["readme"] and str(out) not in seen["readme"]
    assert seen["kwargs"]["repo_type"] == "model"
    assert 'from_pretrained("local-name"' in (out / "README.md").read_text()  # the local card is left alone


def test_push_model_refuses_a_folder_that_is_not_a_training_run(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not a finished training folder"):
        hub.push_model(tmp_path, "alice/x", api=_api())


def test_push_space_uploads_the_app_with_models_listed_and_binaries_in_lfs():
    import subprocess

    root = Path(__file__).resolve().parent.parent
    api = _api("alice")
    seen = _listing(api)
    hub.push_space(root, "alice/mae-hf-demo", ["alice/dae-mnist", "alice/mae-mnist"], token="hf_x", api=api)
    api.create_repo.assert_called_once_with(
        "alice/mae-hf-demo", token="hf_x", private=False, repo_type="space", space_sdk="gradio", exist_ok=True
    )
    assert seen["kwargs"]["repo_type"] == "space"
    tracked = subprocess.run(
        ["git", "ls-files", "mae_hf", "examples", "model_cards"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    folders = sorted(p.name for p in (root / "pretrained").iterdir() if (p / "config.json").is_file())
    assert {"dae-mnist", "mae-mnist", "dae-fashion", "mae-fashion"} <= set(folders)  # both datasets' pairs
    models = [f"pretrained/{m}/{name}" for m in folders for name in hub.files_to_upload(root / "pretrained" / m)]
    results = [
        "docs/study/study.json",
        "docs/results/metrics.json",
        "docs/results-fashion/metrics.json",
        "pretrained/app-analysis-mnist.npz",
        "pretrained/app-analysis-fashion.npz",
        *[s for s in hub.SPACE_OPTIONAL if (root / s).is_file()],  # the Fashion-MNIST study, once it has one
    ]
    expected = sorted({".gitattributes", "README.md", "app.py", "requirements.txt", *results, *tracked, *models})
    assert seen["files"] == expected
    assert not any("step_" in f or "epoch_" in f or f.endswith(".gitignore") for f in seen["files"])
    from huggingface_hub import SpaceCard

    card = SpaceCard(seen["readme"])
    assert card.data.models == ["alice/dae-mnist", "alice/mae-mnist"]
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert len(card.data.short_description) <= 60
    for pattern in ("*.png", "*.safetensors", "*.npz"):
        assert f"{pattern} filter=lfs diff=lfs merge=lfs -text" in seen["gitattributes"]


def test_the_space_takes_an_optional_result_where_the_checkout_has_it(monkeypatch):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.setattr(hub, "SPACE_OPTIONAL", ("docs/STUDY.md", "docs/no-such-study.json"))
    files = hub.space_files(root)
    assert files["docs/STUDY.md"] == root / "docs" / "STUDY.md" and "docs/no-such-study.json" not in files


@pytest.mark.parametrize("command", [["push", "some/folder"], ["push-space"]])
def test_mae_hf_push_offline_exits_2_with_a_message(caplog, monkeypatch, command):
    from mae_hf.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main([*command, "--repo-id", "alice/x"]) == 2
    assert f"mae-hf {command[0]} needs the network" in caplog.text


def test_mae_hf_push_space_lists_every_bundled_model_by_default(monkeypatch, capsys):
    """Without --models, the Space's front matter lists OWNER/<folder> for each bundled model: both datasets' pairs."""
    from mae_hf.cli import main

    pushed = {}
    monkeypatch.setattr(hub, "check_push_access", lambda repo_id, token=None, action="": repo_id)
    monkeypatch.setattr(hub, "push_space", lambda root, repo_id, models, **kw: pushed.update(models=models) or "url")
    assert main(["push-space", "--repo-id", "alice/demo"]) == 0
    assert pushed["models"] == ["alice/dae-mnist", "alice/mae-mnist", "alice/dae-fashion", "alice/mae-fashion"]
    assert "Pushed the app to url" in capsys.readouterr().out
