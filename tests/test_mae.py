import pytest
import torch
from transformers import ViTMAEForPreTraining, ViTMAEModel
from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

from mae_hf import build_mae, extract_mae_latents, get_2d_sincos_pos_embed, mae_attentions, mae_config, reconstruct_mae
from mae_hf.corruption import mask_patches, random_patch_noise
from mae_hf.mae import forward_encoder, forward_mae

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


def test_sincos_matches_original_mae_and_transformers_layout():
    table = get_2d_sincos_pos_embed(32, 7)
    assert table.shape == (1, 50, 32)
    assert torch.all(table[0, 0] == 0)  # CLS row
    # transformers' builder is [sin_h|cos_h|sin_w|cos_w]; the original MAE (and pretrained weights) swap halves
    ref = build_2d_sinusoidal_position_embedding(7, 7, embed_dim=32, cls_token=True)
    ref = torch.cat([ref[:, 16:], ref[:, :16]], dim=-1)
    assert torch.allclose(table[0], ref, atol=1e-6)
    # patch (row 0, col 1): first half encodes the column → sin(1 * omega_0) = sin(1)
    assert table[0, 2, 0] == pytest.approx(torch.sin(torch.tensor(1.0)).item(), abs=1e-6)
    assert table[0, 2, 16] == pytest.approx(0.0, abs=1e-6)


def test_fresh_model_has_sincos_embeddings_and_nonzero_tokens(tiny_mae):
    grid = 7
    assert torch.equal(tiny_mae.vit.embeddings.position_embeddings, get_2d_sincos_pos_embed(32, grid))
    assert torch.equal(tiny_mae.decoder.decoder_pos_embed, get_2d_sincos_pos_embed(16, grid))
    assert not tiny_mae.vit.embeddings.position_embeddings.requires_grad
    assert tiny_mae.vit.embeddings.cls_token.abs().sum() > 0
    assert tiny_mae.decoder.mask_token.abs().sum() > 0
    # the trap this guards against: a config-built model has zeros
    broken = ViTMAEForPreTraining(mae_config("mnist", **TINY_MAE))
    assert broken.decoder.decoder_pos_embed.abs().sum() == 0


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
