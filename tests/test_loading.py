import pytest
import torch

from mae_hf import DAEConfig, DAEModel, mae_attentions
from mae_hf.loading import ModelLoadError, load_dae, load_mae, load_model, load_models


@pytest.fixture
def saved(tmp_path, tiny_dae, tiny_mae):
    tiny_dae.save_pretrained(tmp_path / "dae")
    tiny_mae.save_pretrained(tmp_path / "mae")
    return tmp_path


def test_load_both_in_eval_mode_with_eager_attention(saved, tiny_dae, mnist_batch):
    models = load_models({"dae": saved / "dae", "mae": saved / "mae"})
    dae, mae = models["dae"], models["mae"]
    assert not dae.training and not mae.training and list(models.models) == ["dae", "mae"]
    assert mae.config._attn_implementation == "eager"
    x = mnist_batch[0][:2]
    attentions, _, _ = mae_attentions(mae, x)  # no switching needed, same weights
    assert len(attentions) == mae.config.num_hidden_layers
    torch.testing.assert_close(dae(x).reconstruction, tiny_dae.eval()(x).reconstruction)
    assert models.check_compatible() == (28, 1) and models.sources["mae"] == str(saved / "mae")


def test_missing_folder_names_what_was_tried_and_the_flag(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_dae(tmp_path / "no-such-model")
    message = str(info.value)
    assert "no-such-model" in message and "Hub id" in message and "--dae" in message and "make models" in message


def test_swapped_folders_are_recognised(saved):
    with pytest.raises(ModelLoadError, match=r"holds a 'vit_mae' model, not a denoising autoencoder \(CNN\)"):
        load_dae(saved / "mae")
    with pytest.raises(ModelLoadError, match=r"holds a 'conv_dae' model, not a masked autoencoder \(ViT\)"):
        load_mae(saved / "dae")
    with pytest.raises(ModelLoadError, match="Unknown model kind 'vae'"):
        load_model("vae", saved / "dae")


def test_folder_without_weights(tmp_path):
    DAEConfig().save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="must hold config.json and model.safetensors"):
        load_dae(tmp_path)


def test_both_failures_are_reported_together(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_models({"dae": tmp_path / "a", "mae": tmp_path / "b"})
    assert "(DAE)" in str(info.value) and "(MAE)" in str(info.value)


def test_models_of_other_images_are_refused_by_the_check(saved):
    models = load_models({"dae": saved / "dae", "mae": saved / "mae"})
    with pytest.raises(ModelLoadError, match=r"takes 28×28×1 images; the other models \(or this app\) 32×32×3"):
        models.check_compatible(32, 3)
    models.models["dae"] = DAEModel(DAEConfig(image_size=32, num_channels=3))
    with pytest.raises(ModelLoadError, match=r"The MAE takes 28×28×1 images; the other models \(or this app\) 32×32×3"):
        models.check_compatible()
