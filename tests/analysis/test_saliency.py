import torch

from mae_hf.analysis.saliency import dae_saliency, latent_saliency, mae_saliency


def test_dae_saliency_zero_outside_the_receptive_field(tiny_dae):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    # Latent unit (0, 0) of the 3-level DAE sees input rows/cols 0..14 only (3×3 convs, 2×2 pools: 0..1 → 0..5 → 0..14).
    corner = latent_saliency(lambda z: tiny_dae.encode(z)[:, :, :1, :1], x)
    assert corner.shape == (4, 28, 28)
    assert torch.all(corner[:, 15:, :] == 0) and torch.all(corner[:, :, 15:] == 0)
    assert torch.all(corner[:, :15, :15].flatten(1).amax(1) == 1.0)
    whole = dae_saliency(tiny_dae, x)
    assert whole.min() >= 0 and torch.allclose(whole.flatten(1).amax(1), torch.ones(4))
    assert (whole[:, 15:, 15:] > 0).any()  # the full bottleneck does see the far corner


def test_mae_saliency_zero_in_masked_patches(tiny_mae, mnist_batch):
    x = mnist_batch[0][:3]
    sal = mae_saliency(tiny_mae, x, mask_ratio=0.75, seed=0)
    noise = torch.rand(3, 49, generator=torch.Generator().manual_seed(0))
    keep = torch.argsort(noise, 1)[:, : int(49 * 0.25)]
    mask = torch.ones(3, 49)
    mask.scatter_(1, keep, 0)
    pixel_mask = mask.reshape(3, 7, 7).repeat_interleave(4, 1).repeat_interleave(4, 2).bool()
    assert torch.all(sal[pixel_mask] == 0)
    for b in range(3):  # every visible patch gets gradient
        visible = sal[b].reshape(7, 4, 7, 4).sum((1, 3)).flatten()[keep[b]]
        assert (visible > 0).all()
    assert torch.equal(sal, mae_saliency(tiny_mae, x, mask_ratio=0.75, noise=noise))
    off = mae_saliency(tiny_mae, x)
    assert (off.reshape(3, 7, 4, 7, 4).sum((2, 4)) > 0).all()  # masking off: every patch is seen


def test_saliency_restores_training_mode(tiny_dae):
    tiny_dae.train()
    dae_saliency(tiny_dae, torch.rand(1, 1, 28, 28))
    assert tiny_dae.training
