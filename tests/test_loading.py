import pytest
import torch

from mae_hf import DAEConfig, DAEModel, mae_attentions
from mae_hf.loading import ModelLoadError, load_dae, load_mae, load_models


@pytest.fixture
def saved(tmp_path, tiny_dae, tiny_mae):
    tiny_dae.save_pretrained(tmp_path / "dae")
    tiny_mae.save_pretrained(tmp_path / "mae")
    return tmp_path


def test_load_both_in_eval_mode_with_eager_attention(saved, tiny_dae, mnist_batch):
    models = load_models(saved / "dae", saved / "mae")
    assert not models.dae.training and not models.mae.training
    assert models.mae.config._attn_implementation == "eager"
    x = mnist_batch[0][:2]
    attentions, _, _ = mae_attentions(models.mae, x)  # no switching needed, same weights
    assert len(attentions) == models.mae.config.num_hidden_layers
    torch.testing.assert_close(models.dae(x).reconstruction, tiny_dae.eval()(x).reconstruction)
    models.check_compatible()


def test_missing_folder_names_what_was_tried_and_the_flag(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_dae(tmp_path / "no-such-model")
    message = str(info.value)
    assert "no-such-model" in message and "Hub id" in message and "--dae" in message and "make models" in message


def test_swapped_folders_are_recognised(saved):
    with pytest.raises(ModelLoadError, match="holds a 'vit_mae' model, not the denoising autoencoder"):
        load_dae(saved / "mae")
    with pytest.raises(ModelLoadError, match="holds a 'conv_dae' model, not a masked autoencoder"):
        load_mae(saved / "dae")


def test_folder_without_weights(tmp_path):
    DAEConfig().save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="must hold config.json and model.safetensors"):
        load_dae(tmp_path)


def test_both_failures_are_reported_together(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_models(tmp_path / "a", tmp_path / "b")
    assert "(DAE)" in str(info.value) and "(MAE)" in str(info.value)


def test_cifar_model_is_refused_by_the_mnist_check(saved):
    models = load_models(saved / "dae", saved / "mae")
    models.dae = DAEModel(DAEConfig(image_size=32, num_channels=3))
    with pytest.raises(ModelLoadError, match=r"DAE takes 32×32×3 images; this app needs 28×28×1"):
        models.check_compatible()
