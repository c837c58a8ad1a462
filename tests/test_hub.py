"""The publish seam (mae_hf/hub.py) against a mocked `HfApi`; nothing here touches the network."""

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
    api.create_repo.assert_called_once_with("alice/dae-mnist", token="hf_x", private=True, repo_type="model",
                                            exist_ok=True)
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
    config = TrainingConfig(model="dae", config_overrides={"hidden_channels": [8, 8, 4]}, max_train_steps=2,
                            per_device_train_batch_size=8)
    args = RunArgs(output_dir=str(out), push_to_hub=True, hub_token="hf_x", hub_private_repo=True,
                   checkpointing_steps=1)
    training_function(config, args, data=data)
    api.create_repo.assert_called_once()
    assert api.create_repo.call_args.args == ("alice/dae-mnist",)
    assert api.create_repo.call_args.kwargs["private"] is True
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "alice/dae-mnist" and kwargs["folder_path"] == str(out)
    uploaded = hub.files_to_upload(kwargs["folder_path"])
    assert uploaded == sorted(["config.json", "model.safetensors", "configuration_dae.py", "modeling_dae.py",
                               "README.md", "training_args.json", "eval_results.json", "train_results.json"])
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
    assert hub.redact(text, ["hf_env"]) == ("python t.py --hub_token <HUB_TOKEN> --x 1 --hub_token=<HUB_TOKEN> "
                                            "--hub_token <HUB_TOKEN> and <HUB_TOKEN>")


def test_push_to_hub_offline_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "never"
    config = TrainingConfig(model="dae", max_train_steps=1)
    with pytest.raises(ConfigurationError, match="--push_to_hub needs the network"):
        training_function(config, RunArgs(output_dir=str(out), push_to_hub=True, hub_token="hf_x"))
    assert not out.exists()
