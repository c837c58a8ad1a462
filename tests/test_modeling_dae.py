import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

from mae_hf import DAEConfig, DAEModel
from mae_hf.modeling_dae import reconstruction_loss


@pytest.mark.parametrize("size,channels,latent", [(28, 1, (8, 3, 3)), (32, 3, (8, 4, 4))])
def test_shapes(size, channels, latent):
    model = DAEModel(DAEConfig(image_size=size, num_channels=channels)).eval()
    x = torch.rand(5, channels, size, size)
    out = model(x, corrupt=True, generator=torch.Generator().manual_seed(0))
    assert out.latent.shape == (5, *latent)
    assert out.reconstruction.shape == x.shape
    assert out.corrupted.shape == x.shape
    assert 0 <= out.reconstruction.min() and out.reconstruction.max() <= 1
    assert out.loss.ndim == 0
    assert model.encode(x).shape == (5, *latent)
    assert model.decode(model.encode(x)).shape == x.shape


def test_default_architecture_is_the_studys():
    model = DAEModel(DAEConfig())
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.padding) for m in model.encoder]
    assert convs == [(1, 32, (3, 3), (1, 1)), (32, 16, (3, 3), (1, 1)), (16, 8, (3, 3), (1, 1))]
    assert all(m.kernel_size == (3, 3) and m.stride == (2, 2) for m in model.decoder)
    assert model.config.noise_factor == 0.5


def test_corruption_train_vs_eval_and_noise_semantics():
    model = DAEModel(DAEConfig())
    x = torch.rand(4, 1, 28, 28) * 0.5 + 0.25
    model.eval()
    assert torch.equal(model(x).corrupted, x)  # eval: no noise unless asked
    noise = torch.randn_like(x)
    out = model(x, noise=noise)
    assert torch.allclose(out.corrupted, (x + 0.5 * noise).clamp(0, 1))
    model.train()
    assert not torch.equal(model(x).corrupted, x)  # training: noisy
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(model(x, generator=g1).corrupted, model(x, generator=g2).corrupted)


def test_loss_mask_and_bce():
    torch.manual_seed(0)
    model = DAEModel(DAEConfig(loss="bce")).eval()
    x = torch.rand(2, 1, 28, 28)
    out = model(x)
    expected = torch.nn.functional.binary_cross_entropy(out.reconstruction, x)
    assert torch.allclose(out.loss, expected)
    mask = torch.zeros(2, 1, 28, 28)
    mask[:, :, :4] = 1
    masked = model(x, loss_mask=mask)
    per = torch.nn.functional.binary_cross_entropy(out.reconstruction, x, reduction="none")
    assert torch.allclose(masked.loss, per[:, :, :4].mean())


def _bce_by_hand(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -(y * p.log() + (1 - y) * (1 - p).log())  # p in (0, 1): no clamping of the logs comes into play


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_the_one_dae_loss_is_the_per_pixel_loss_averaged_over_the_counted_pixels(loss):
    """`reconstruction_loss` against a formula written out here: the per-image values (the objective, evaluation)
    and the batch value (the model's `loss`), with images that count different numbers of pixels, or none."""
    g = torch.Generator().manual_seed(0)
    rec = torch.rand(4, 1, 6, 6, generator=g) * 0.9 + 0.05
    x = torch.rand(4, 1, 6, 6, generator=g)
    per_pixel = _bce_by_hand(rec, x) if loss == "bce" else (rec - x) ** 2  # (4, 1, 6, 6)
    mask = torch.zeros(4, 1, 6, 6)
    mask[0, :, :1] = 1  # 6 pixels
    mask[1, :, :3] = 1  # 18 pixels
    mask[3] = 1  # every pixel; image 2 counts none
    per_image = reconstruction_loss(rec, x, loss, mask, reduction="none")
    expected = [per_pixel[0, :, :1].mean(), per_pixel[1, :, :3].mean(), per_pixel[2].mean(), per_pixel[3].mean()]
    torch.testing.assert_close(per_image, torch.stack(expected))
    pooled = reconstruction_loss(rec, x, loss, mask)  # over the 6 + 18 + 36 counted pixels of the batch
    torch.testing.assert_close(
        pooled, (per_pixel[0, :, :1].sum() + per_pixel[1, :, :3].sum() + per_pixel[3].sum()) / 60
    )
    assert not torch.isclose(pooled, per_image.mean())  # pooled, not a mean of the images' means
    torch.testing.assert_close(reconstruction_loss(rec, x, loss, reduction="none"), per_pixel.mean(dim=(1, 2, 3)))
    torch.testing.assert_close(reconstruction_loss(rec, x, loss), per_pixel.mean())
    assert reconstruction_loss(rec, x, loss, torch.zeros_like(mask)) == 0  # nothing counts: 0, not a division by 0


def test_the_dae_loss_is_nan_for_diverged_weights_and_checks_its_arguments():
    x = torch.rand(2, 1, 4, 4)
    diverged = torch.full_like(x, float("nan"))
    assert torch.isnan(reconstruction_loss(diverged, x, "bce"))
    assert torch.isnan(reconstruction_loss(diverged, x, "bce", reduction="none")).all()
    with pytest.raises(ValueError, match="`loss`"):
        reconstruction_loss(x, x, "l1")
    with pytest.raises(ValueError, match="`reduction`"):
        reconstruction_loss(x, x, "mse", reduction="sum")


@pytest.mark.parametrize("corruption", ["noise", "mask"])
def test_the_models_loss_is_the_one_dae_loss(corruption):
    """The forward's `loss` is `reconstruction_loss` over the pixels its corruption scores: every pixel under noise,
    the masked ones under masking, a caller's `loss_mask` (pooled over the batch) where given."""
    torch.manual_seed(0)
    model = DAEModel(DAEConfig(hidden_channels=[8, 8, 4], corruption=corruption, loss="bce")).eval()
    x = torch.rand(3, 1, 28, 28)
    out = model(x, corrupt=True, generator=torch.Generator().manual_seed(1))
    own_mask = out.pixel_mask if corruption == "mask" else None
    assert torch.equal(out.loss, reconstruction_loss(out.reconstruction, x, "bce", own_mask))
    uneven = (
        torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        < torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1, 1)
    ).float()
    given = model(x, corrupted_pixel_values=out.corrupted, loss_mask=uneven)
    per_pixel = torch.nn.functional.binary_cross_entropy(given.reconstruction, x, reduction="none")
    torch.testing.assert_close(given.loss, (per_pixel * uneven).sum() / uneven.sum())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(hidden_channels=[]), "hidden_channels"),
        (dict(kernel_size=4), "odd"),
        (dict(image_size=4), "too small"),
        (dict(noise_factor=-1), "noise_factor"),
        (dict(loss="l1"), "loss"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DAEConfig(**kwargs)


def test_bad_input_shape():
    model = DAEModel(DAEConfig())
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0]])
    with pytest.raises(ValueError, match="latent"):
        model.decode(torch.rand(2, 8, 4, 4))


def test_auto_classes_registered(tmp_path):
    config = AutoConfig.for_model("conv_dae")
    assert isinstance(config, DAEConfig)
    model = AutoModel.from_config(config)
    assert isinstance(model, DAEModel)


def test_save_load_roundtrip(tmp_path, tiny_dae):
    tiny_dae.eval()
    x = torch.rand(3, 1, 28, 28)
    noise = torch.randn_like(x)
    before = tiny_dae(x, noise=noise)
    tiny_dae.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_dae.py", "configuration_dae.py"} <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "conv_dae"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_dae.DAEConfig",
        "AutoModel": "modeling_dae.DAEModel",
    }
    loaded = DAEModel.from_pretrained(tmp_path).eval()
    after = loaded(x, noise=noise)
    assert torch.equal(before.reconstruction, after.reconstruction)
    assert torch.equal(before.latent, after.latent)
    auto = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(auto.eval()(x, noise=noise).reconstruction, before.reconstruction)


def test_trust_remote_code_in_fresh_process_without_mae_hf(tmp_path, tiny_dae):
    """A process that never imports mae_hf (and cannot) loads the folder with AutoModel + trust_remote_code."""
    tiny_dae.eval()
    torch.manual_seed(1)
    x = torch.rand(3, 1, 28, 28)
    noise = torch.randn_like(x)
    expected = tiny_dae(x, noise=noise)
    model_dir = tmp_path / "dae"
    tiny_dae.save_pretrained(model_dir)
    torch.save({"x": x, "noise": noise}, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys, os
        os.environ["HF_HUB_OFFLINE"] = "1"
        sys.modules["mae_hf"] = None  # any import of mae_hf now fails
        import torch
        torch.set_num_threads({torch.get_num_threads()})  # same kernels as the parent, for bit-identity
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        out = model(inputs["x"], noise=inputs["noise"])
        torch.save({{"reconstruction": out.reconstruction, "latent": out.latent, "loss": out.loss}},
                   {str(tmp_path / "out.pt")!r})
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt")
    assert torch.equal(out["reconstruction"], expected.reconstruction)  # bit-identical
    assert torch.equal(out["latent"], expected.latent)
    assert torch.equal(out["loss"], expected.loss)
