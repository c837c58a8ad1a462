import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

from mae_hf import DAEConfig, DAEModel


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
