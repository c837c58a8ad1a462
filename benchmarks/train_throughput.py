"""Training throughput (images/s) of our loop vs plain PyTorch, fp32, in one process.

- `mae`: `mae_hf.training.training_function` training the MAE preset (transformers' ViTMAEForPreTraining).
- `mae-reference`: a plain-PyTorch MAE of the same configuration, written here in the structure of the original
  MAE's `models_mae.py` (patchify, random_masking, forward_encoder, forward_decoder, forward_loss), trained by a
  plain loop (DataLoader, AdamW, clipping, cosine schedule).
- `dae`: our loop training the DAE; `dae-plain-loop`: the same DAEModel in a plain PyTorch loop (loop overhead only).

Each configuration runs `--repeats` times, interleaved, for `--steps` optimisation steps on the embedded MNIST; the
median images/s is reported with the ratio ours / reference. Our loop's time is the one it records itself
(`train_samples_per_second`: the training steps, without evaluation and checkpointing).

    python benchmarks/train_throughput.py [--steps 30] [--repeats 5] [--batch_size 64] [--threads N]
"""

import argparse
import math
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from transformers import ViTMAEForPreTraining

from mae_hf import DAEConfig, DAEModel, dataset_to_tensors, load_image_dataset, mae_config
from mae_hf.mae import initialize_mae_weights
from mae_hf.training import RunArgs, TrainingConfig, training_function

# ----------------------------------------------------------------------------------------------------------------
# A plain-PyTorch MAE (pre-norm ViT blocks; attention through F.scaled_dot_product_attention, as timm's blocks)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d/h)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, N, d/h)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ReferenceMAE(nn.Module):
    """The original MAE's structure, sized by a `ViTMAEConfig`."""

    def __init__(self, config):
        super().__init__()
        self.p, self.c, self.mask_ratio = config.patch_size, config.num_channels, config.mask_ratio
        grid = config.image_size // config.patch_size
        self.num_patches = grid * grid
        d, dd, eps = config.hidden_size, config.decoder_hidden_size, config.layer_norm_eps
        self.patch_embed = nn.Conv2d(self.c, d, kernel_size=self.p, stride=self.p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d).normal_(std=0.02))
        tables = initialize_mae_weights(
            ViTMAEForPreTraining(config)
        )  # the fixed sin-cos tables, as build_mae sets them
        self.register_buffer("pos_embed", tables.vit.embeddings.position_embeddings.detach().clone())  # (1, 1+L, D)
        self.blocks = nn.ModuleList(
            Block(d, config.num_attention_heads, config.intermediate_size, eps) for _ in range(config.num_hidden_layers)
        )
        self.norm = nn.LayerNorm(d, eps=eps)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd).normal_(std=0.02))
        self.register_buffer("decoder_pos_embed", tables.decoder.decoder_pos_embed.detach().clone())
        self.decoder_blocks = nn.ModuleList(
            Block(dd, config.decoder_num_attention_heads, config.decoder_intermediate_size, eps)
            for _ in range(config.decoder_num_hidden_layers)
        )
        self.decoder_norm = nn.LayerNorm(dd, eps=eps)
        self.decoder_pred = nn.Linear(dd, self.p * self.p * self.c)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, L, p*p*C)."""
        b, c, h, w = imgs.shape
        x = imgs.reshape(b, c, h // self.p, self.p, w // self.p, self.p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(b, -1, self.p * self.p * c)

    def random_masking(self, x: torch.Tensor, mask_ratio: float):
        """x: (B, L, D) → kept tokens (B, K, D), mask (B, L) with 0 keep / 1 remove, ids_restore (B, L)."""
        b, length, d = x.shape
        keep = int(length * (1 - mask_ratio))
        ids_shuffle = torch.argsort(torch.rand(b, length, device=x.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
        mask = torch.ones(b, length, device=x.device)
        mask[:, :keep] = 0
        return x_kept, torch.gather(mask, 1, ids_restore), ids_restore

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float):
        x = self.patch_embed(imgs).flatten(2).transpose(1, 2)  # (B, L, D)
        x = x + self.pos_embed[:, 1:]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)  # (B, 1+K, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(x)  # (B, 1+K, Dd)
        b, length = ids_restore.shape
        masked = self.mask_token.expand(b, length + 1 - x.shape[1], -1)
        tokens = torch.cat([x[:, 1:], masked], dim=1)  # (B, L, Dd), shuffled order
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, L, p*p*C)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_patch = ((pred - self.patchify(imgs)) ** 2).mean(dim=-1)  # (B, L)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        latent, mask, ids_restore = self.forward_encoder(imgs, self.mask_ratio)
        return self.forward_loss(imgs, self.forward_decoder(latent, ids_restore), mask)


# ----------------------------------------------------------------------------------------------------------------
# Runs


def plain_loop(model: nn.Module, images: torch.Tensor, steps: int, batch_size: int, loss_fn) -> float:
    """A plain PyTorch training loop; returns images/s over `steps` steps."""
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True, drop_last=True)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    done, start = 0, time.perf_counter()
    while done < steps:
        for (x,) in loader:
            loss = loss_fn(model, x)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            done += 1
            if done == steps:
                break
    return steps * batch_size / (time.perf_counter() - start)


def ours(model: str, data, steps: int, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        config = TrainingConfig(
            model=model, max_train_steps=steps, per_device_train_batch_size=batch_size, max_eval_samples=64
        )
        result = training_function(config, RunArgs(output_dir=out, logging_steps=10**9), data=data)
    return result["train"]["train_samples_per_second"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="optimisation steps per run (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration; the median is reported")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.disable(logging.WARNING)

    data = load_image_dataset("mnist")
    images, _ = dataset_to_tensors(data["train"])  # (4000, 1, 28, 28)
    config = mae_config("mnist")
    runs = {
        "mae": lambda: ours("mae", data, args.steps, args.batch_size),
        "mae-reference": lambda: plain_loop(
            ReferenceMAE(config), images, args.steps, args.batch_size, lambda m, x: m(x)
        ),
        "dae": lambda: ours("dae", data, args.steps, args.batch_size),
        "dae-plain-loop": lambda: plain_loop(
            DAEModel(DAEConfig()), images, args.steps, args.batch_size, lambda m, x: m(x).loss
        ),
    }
    n_ref = sum(p.numel() for p in ReferenceMAE(config).parameters())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU; batch {args.batch_size}, "
        f"{args.steps} steps x {args.repeats} repeats (interleaved); reference MAE {n_ref:,} parameters",
        file=sys.stderr,
    )
    results = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, fn in runs.items():
            results[name].append(fn())
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), file=sys.stderr)
    median = {name: statistics.median(values) for name, values in results.items()}
    print("| configuration | images/s (median) | runs |")
    print("| --- | --- | --- |")
    for name, values in results.items():
        print(f"| {name} | {median[name]:.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    print(f"\nMAE ratio ours / plain-PyTorch reference: {median['mae'] / median['mae-reference']:.3f}")
    print(f"DAE ratio ours / plain loop:               {median['dae'] / median['dae-plain-loop']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
