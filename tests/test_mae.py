from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import ViTMAEConfig, ViTMAEForPreTraining, ViTMAEModel
from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

from mae_hf import MAE_PRESETS, build_mae, extract_mae_latents, mae_attentions, mae_config, reconstruct_mae
from mae_hf.corruption import mask_patches, random_patch_noise
from mae_hf.data import dataset_to_tensors
from mae_hf.loading import load_mae
from mae_hf.mae import forward_encoder, forward_mae, mae_loss_target, masked_patch_loss

from .conftest import TINY_MAE


def test_presets_shapes():
    for preset, shape in (("mnist", (2, 1, 28, 28)), ("cifar10", (2, 3, 32, 32))):
        model = build_mae(preset, seed=0, **TINY_MAE)
        assert model.config.layer_norm_eps == 1e-6
        assert model.config.image_size % model.config.patch_size == 0
        x = torch.rand(shape)
        out = model(pixel_values=x)
        length = (shape[2] // model.config.patch_size) ** 2
        assert out.logits.shape == (2, length, model.config.patch_size**2 * shape[1])
        assert out.mask.shape == (2, length)
        rec = reconstruct_mae(model, x, seed=0)
        assert rec.reconstruction.shape == rec.pasted.shape == x.shape
        assert extract_mae_latents(model, x).shape == (2, 1 + length, 32)


PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def original_mae_pos_embed(embed_dim: int, grid_size: int) -> torch.Tensor:
    """The oracle: facebookresearch/mae `util/pos_embed.py`'s `get_2d_sincos_pos_embed(embed_dim, grid_size,
    cls_token=True)` step for step (its meshgrid puts w first, so the first half of a row encodes the column)."""

    def one_axis(dim: int, pos: np.ndarray) -> np.ndarray:  # get_1d_sincos_pos_embed_from_grid
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))  # (D/4,)
        out = np.einsum("m,d->md", pos.reshape(-1), omega)  # (G*G, D/4)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (G*G, D/2)

    axis = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), axis=0)  # (2, G, G): grid[0] is w, grid[1] is h
    table = np.concatenate([one_axis(embed_dim // 2, grid[0]), one_axis(embed_dim // 2, grid[1])], axis=1)
    table = np.concatenate([np.zeros([1, embed_dim]), table], axis=0)  # (1+G*G, D), a zero row for CLS
    return torch.from_numpy(table).float().unsqueeze(0)


def test_sincos_matches_original_mae_and_transformers_layout(tiny_mae):
    """A fresh build's encoder and decoder tables are the original MAE's (the layout the pretrained facebook/vit-mae
    weights, and ours, were trained with), i.e. transformers' builder with its halves swapped, as ViTMAE's own
    `initialize_weights` swaps them."""
    for table, dim in ((tiny_mae.vit.embeddings.position_embeddings, 32), (tiny_mae.decoder.decoder_pos_embed, 16)):
        assert table.shape == (1, 50, dim) and torch.all(table[0, 0] == 0)  # CLS row
        torch.testing.assert_close(table, original_mae_pos_embed(dim, 7), rtol=0, atol=1e-6)
        canonical = build_2d_sinusoidal_position_embedding(7, 7, embed_dim=dim, cls_token=True)  # [h | w]
        assert torch.equal(table[0], torch.cat([canonical[:, dim // 2 :], canonical[:, : dim // 2]], dim=-1))
        assert not torch.allclose(table[0], canonical)  # unswapped, the halves would encode the wrong axes
        # patch (row 0, col 1) is token 2, patch (row 1, col 0) token 8: the first half encodes the column
        sin1 = torch.sin(torch.tensor(1.0)).item()
        assert table[0, 2, 0].item() == pytest.approx(sin1, abs=1e-6) and table[0, 2, dim // 2].item() == 0
        assert table[0, 8, 0].item() == 0 and table[0, 8, dim // 2].item() == pytest.approx(sin1, abs=1e-6)


def test_shipped_models_tables_are_a_fresh_builds():
    """The bundled MAEs' saved position tables equal, bit for bit, those `build_mae` gives today for their config:
    the tables they were trained with are the ones a new run starts from."""
    folders = sorted(p.parent for p in PRETRAINED.glob("mae-*/model.safetensors"))
    assert PRETRAINED / "mae-mnist" in folders
    for folder in folders:
        config = ViTMAEConfig.from_pretrained(folder)
        fresh = build_mae("mnist", seed=0, **{k: getattr(config, k) for k in MAE_PRESETS["mnist"]})
        saved = load_file(folder / "model.safetensors")
        assert torch.equal(saved["vit.embeddings.position_embeddings"], fresh.vit.embeddings.position_embeddings)
        assert torch.equal(saved["decoder.decoder_pos_embed"], fresh.decoder.decoder_pos_embed)


def test_fresh_model_has_frozen_tables_and_nonzero_tokens(tiny_mae):
    assert not tiny_mae.vit.embeddings.position_embeddings.requires_grad
    assert not tiny_mae.decoder.decoder_pos_embed.requires_grad
    assert tiny_mae.vit.embeddings.cls_token.abs().sum() > 0
    assert tiny_mae.decoder.mask_token.abs().sum() > 0
    # the trap this guards against: a config-built model has no sin-cos tables and zero tokens
    broken = ViTMAEForPreTraining(mae_config("mnist", **TINY_MAE))
    assert not torch.allclose(broken.vit.embeddings.position_embeddings, original_mae_pos_embed(32, 7), atol=1e-3)
    assert broken.decoder.decoder_pos_embed.abs().sum() == 0 and broken.decoder.mask_token.abs().sum() == 0


def test_build_is_seeded():
    a, b = build_mae(seed=1, **TINY_MAE), build_mae(seed=1, **TINY_MAE)
    c = build_mae(seed=2, **TINY_MAE)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["vit.layers.0.attention.q_proj.weight"], sc["vit.layers.0.attention.q_proj.weight"])


def test_bad_configs():
    with pytest.raises(ValueError, match="preset"):
        mae_config("imagenet")
    with pytest.raises(ValueError, match="divide"):
        mae_config("mnist", patch_size=5)
    with pytest.raises(ValueError, match="mask_ratio"):
        mae_config("mnist", mask_ratio=1.0)


def test_reconstruct_determinism_and_mask(tiny_mae, mnist_batch):
    x = mnist_batch[0][:4]
    a = reconstruct_mae(tiny_mae, x, mask_ratio=0.5, seed=7)
    b = reconstruct_mae(tiny_mae, x, mask_ratio=0.5, seed=7)
    c = reconstruct_mae(tiny_mae, x, mask_ratio=0.5, seed=8)
    assert torch.equal(a.reconstruction, b.reconstruction) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, c.mask)
    assert torch.all(a.mask.sum(1) == 49 - int(49 * 0.5))
    # visible patches are pasted from the input, masked ones from the reconstruction
    vis = a.pixel_mask == 0
    assert torch.equal(a.pasted[vis.expand_as(x)], x[vis.expand_as(x)])
    assert torch.equal(a.pasted[~vis.expand_as(x)], a.reconstruction[~vis.expand_as(x)])
    assert tiny_mae.config.mask_ratio == 0.75  # restored
    # the same noise gives the corruption module the same mask
    _, mask, _ = mask_patches(x, 4, 0.5, noise=a.noise)
    assert torch.equal(mask, a.mask)
    # mask ratio 0: no NaN loss
    assert reconstruct_mae(tiny_mae, x, mask_ratio=0.0, seed=0).loss == pytest.approx(
        float(((reconstruct_mae(tiny_mae, x, mask_ratio=0.0, seed=0).reconstruction - x) ** 2).mean()), rel=1e-4
    )


def test_the_one_mae_loss_against_a_formula_written_out_here():
    """`masked_patch_loss` per image: the mean over its masked patches of each patch's MSE; all patches where none is
    masked."""
    g = torch.Generator().manual_seed(0)
    prediction, target = torch.rand(3, 5, 4, generator=g), torch.rand(3, 5, 4, generator=g)
    mask = torch.tensor([[1.0, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    expected = []
    for b in range(3):
        counted = [i for i in range(5) if mask[b, i] == 1] or list(range(5))
        expected.append(sum(float(((prediction[b, i] - target[b, i]) ** 2).mean()) for i in counted) / len(counted))
    np.testing.assert_allclose(masked_patch_loss(prediction, target, mask).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_the_one_mae_loss_is_vitmaes_own(mnist_batch, norm_pix_loss):
    """Over images it is the loss `ViTMAEForPreTraining` computes itself, with and without `norm_pix_loss` (whose
    target, every patch at zero mean and unit variance, is `mae_loss_target`)."""
    model = build_mae("mnist", seed=0, norm_pix_loss=norm_pix_loss, **TINY_MAE).eval()
    x = mnist_batch[0][:4]
    noise = random_patch_noise(4, 49, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(pixel_values=x, noise=noise)
    target = mae_loss_target(model, x)
    patches = model.patchify(x).double().numpy()  # (B, L, p*p*C)
    if norm_pix_loss:
        patches = (patches - patches.mean(-1, keepdims=True)) / np.sqrt(patches.var(-1, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(target.double().numpy(), patches, rtol=1e-5, atol=1e-5)
    losses = masked_patch_loss(out.logits, target, out.mask)
    assert losses.shape == (4,)
    torch.testing.assert_close(losses.mean(), out.loss)


def test_reconstruct_mae_loss_is_the_masked_pixels_mse_and_unchanged(mnist, mnist_batch):
    """`MAEReconstruction.loss` is the one MAE loss in pixel space: the squared error of the (clamped) reconstruction
    over the masked pixels, and the bundled MAE gives the value it gave before the loss had one definition."""
    model = build_mae("mnist", seed=0, **TINY_MAE)
    x = mnist_batch[0][:6]
    rec = reconstruct_mae(model, x, mask_ratio=0.75, seed=3)
    by_pixel = float((((rec.reconstruction - x) ** 2) * rec.pixel_mask).sum() / rec.pixel_mask.sum())
    assert rec.loss == pytest.approx(by_pixel, rel=1e-5)
    test = dataset_to_tensors(mnist["test"], n=64)[0]
    bundled = reconstruct_mae(load_mae(Path(__file__).parent.parent / "pretrained/mae-mnist"), test, 0.75, seed=5)
    assert bundled.loss == pytest.approx(0.023090165108442307, rel=1e-5)  # before: a second copy of the rule


def test_latents_are_unmasked_and_in_spatial_order(tiny_mae, mnist_batch):
    x = mnist_batch[0][:4]
    lat = extract_mae_latents(tiny_mae, x)
    assert lat.shape == (4, 50, 32)
    # permuting images in the batch permutes latents: no per-batch randomness
    assert torch.allclose(extract_mae_latents(tiny_mae, x.flip(0)), lat.flip(0), atol=1e-5)
    # spatial order: equals a plain ViTMAEModel forward whose noise keeps identity order
    torch.manual_seed(0)
    assert torch.allclose(extract_mae_latents(tiny_mae, x), lat)
    # tokens depend on their own patch: changing only the last patch changes the last token the most
    y = x.clone()
    y[:, :, 24:, 24:] = 1.0
    diff = (extract_mae_latents(tiny_mae, y) - lat).norm(dim=-1).mean(0)  # (50,)
    assert diff[1:].argmax().item() == 48


def test_attentions_without_reloading(tiny_mae, mnist_batch):
    x = mnist_batch[0][:2]
    assert tiny_mae.config._attn_implementation == "sdpa"
    attn, ids_keep, mask = mae_attentions(tiny_mae, x)
    assert len(attn) == 2 and attn[0].shape == (2, 4, 50, 50)
    assert torch.allclose(attn[0].sum(-1), torch.ones(2, 4, 50))
    assert torch.equal(ids_keep, torch.arange(49).expand(2, 49))
    assert tiny_mae.config._attn_implementation == "sdpa"  # restored
    attn, ids_keep, mask = mae_attentions(tiny_mae, x, mask_ratio=0.75, seed=0)
    assert attn[0].shape == (2, 4, 13, 13) and ids_keep.shape == (2, 12)
    assert torch.all(mask.gather(1, ids_keep) == 0)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_the_explicit_ratio_forward_is_vitmaes_own(tiny_mae, mnist_batch, implementation):
    """At the config's mask ratio, `forward_encoder` / `forward_mae` give exactly what ViTMAE's own forward gives
    (attention maps included, with eager attention); at another ratio they keep that many tokens; and the model's
    config and parameters are never written to."""
    model = tiny_mae.eval()
    model.set_attn_implementation(implementation)
    x = mnist_batch[0][:3]
    noise = random_patch_noise(3, 49, torch.Generator().manual_seed(1))
    config_before = model.config.to_dict()
    params_before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        own = model(pixel_values=x, noise=noise, output_attentions=implementation == "eager")
        enc = forward_encoder(model, x, noise, model.config.mask_ratio, output_attentions=implementation == "eager")
        full = forward_mae(model, x, noise, model.config.mask_ratio)
        vit = model.vit(pixel_values=x, noise=noise)
    assert torch.equal(enc.latent, vit.last_hidden_state) and torch.equal(enc.mask, own.mask)
    assert torch.equal(enc.ids_restore, own.ids_restore) and torch.equal(full.logits, own.logits)
    if implementation == "eager":
        with torch.no_grad():
            maps = model.vit(pixel_values=x, noise=noise, output_attentions=True).attentions
        assert len(enc.attentions) == len(maps) and all(torch.equal(a, b) for a, b in zip(enc.attentions, maps))
    for ratio, kept in ((0.0, 49), (0.5, 24), (0.9, 4)):
        out = forward_mae(model, x, noise, ratio)
        assert out.latent.shape == (3, 1 + kept, 32) and out.logits.shape == (3, 49, 16)
        assert torch.all(out.mask.sum(1) == 49 - kept) and torch.equal(out.ids_keep, noise.argsort(1)[:, :kept])
    assert model.config.to_dict() == config_before
    assert all(torch.equal(v, params_before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        forward_encoder(model, x, noise, 1.0)
    with pytest.raises(ValueError, match="`noise` must have shape"):
        forward_encoder(model, x, noise[:, :10], 0.5)


def test_save_and_load_with_plain_transformers(tmp_path, tiny_mae):
    x = torch.rand(2, 1, 28, 28)
    noise = random_patch_noise(2, 49, torch.Generator().manual_seed(0))
    tiny_mae.eval()
    before = tiny_mae(pixel_values=x, noise=noise)
    tiny_mae.save_pretrained(tmp_path)
    loaded = ViTMAEForPreTraining.from_pretrained(tmp_path).eval()
    after = loaded(pixel_values=x, noise=noise)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(loaded.vit.embeddings.position_embeddings, tiny_mae.vit.embeddings.position_embeddings)
    assert torch.equal(loaded.decoder.decoder_pos_embed, tiny_mae.decoder.decoder_pos_embed)
    encoder = ViTMAEModel.from_pretrained(tmp_path)
    assert encoder.config.layer_norm_eps == 1e-6


@pytest.mark.slow
def test_learns_patch_positions(mnist):
    """~120 steps drive the loss clearly below the best position-blind predictor (one mean patch everywhere)."""
    from mae_hf import dataset_to_tensors

    x, _ = dataset_to_tensors(mnist["train"])
    patches = x.reshape(-1, 1, 7, 4, 7, 4).permute(0, 2, 4, 3, 5, 1).reshape(-1, 16)
    mean_patch_mse = float(((patches - patches.mean(0)) ** 2).mean())

    def train(model):
        torch.manual_seed(0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        losses = []
        for _ in range(120):
            out = model(pixel_values=x[torch.randint(0, len(x), (64,), generator=g)])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            losses.append(out.loss.item())
        return sum(losses[-20:]) / 20

    kw = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=256)
    fixed = train(build_mae(seed=0, **kw))
    assert fixed < 0.92 * mean_patch_mse, (fixed, mean_patch_mse)
    torch.manual_seed(0)
    broken = train(ViTMAEForPreTraining(mae_config("mnist", **kw)))
    assert broken > 0.97 * mean_patch_mse  # the trap: position-blind, stalls at the mean patch
