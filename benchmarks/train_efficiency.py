"""How close the training loop comes to the machine: the loop's images/s against a bare training step's, and the
bare step's achieved FLOP/s against the machine's measured fp32 GEMM rate; and what a few settings change.

Measured, all fp32 on CPU, the MAE `mnist` preset (or `--config_overrides`), batch `--batch_size`:

- **GEMM rate**: `torch.mm` of two 1024×1024 matrices, repeated; the rate the CPU reaches on dense work.
- **FLOPs per image**: `torch.utils.flop_counter.FlopCounterMode` over one forward + backward at mask ratio 0.75.
- **bare step**: ViTMAE forward + backward + fused AdamW on a fixed batch, nothing else.
- **loop**: `training_function` end to end on `--train_images` digits for `--epochs` epochs, with its per-epoch
  evaluation on `--eval_images` test digits and its checkpoints; `train_samples_per_second` (the steps alone) and the
  wall time of the whole call.
- **variants** of the bare step: torch threads, and `torch.compile` (inductor) of the stock model.

Every figure is a median of `--repeats` interleaved runs; speed is never asserted in a test.

    python benchmarks/train_efficiency.py [--threads 1 2] [--repeats 3] [--compile]
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import torch

os.environ.setdefault("TQDM_DISABLE", "1")


def gemm_rate(threads: int, n: int = 1024, seconds: float = 2.0) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def build(overrides: dict):
    from mae_hf import build_mae

    return build_mae("mnist", seed=0, **overrides).train()


def flops_per_image(overrides: dict, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model, x = build(overrides), torch.rand(batch, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(pixel_values=x).loss.backward()
    return counter.get_total_flops() / batch


def bare_step(overrides: dict, batch: int, threads: int, steps: int, compiled: bool = False) -> float:
    torch.set_num_threads(threads)
    model = build(overrides)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.rand(batch, 1, 28, 28)
    forward = torch.compile(model) if compiled else model
    for _ in range(3):  # warm-up (and compilation)
        forward(pixel_values=x).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    start = time.perf_counter()
    for _ in range(steps):
        forward(pixel_values=x).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return steps * batch / (time.perf_counter() - start)


def loop(data, overrides: dict, batch: int, threads: int, epochs: int) -> tuple[float, float]:
    from mae_hf.training import RunArgs, TrainingConfig, training_function

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        config = TrainingConfig(
            model="mae", config_overrides=overrides, num_train_epochs=epochs, per_device_train_batch_size=batch
        )
        start = time.perf_counter()
        result = training_function(config, RunArgs(output_dir=out, logging_steps=10**9), data=data)
        wall = time.perf_counter() - start
    train = result["train"]
    return train["train_samples_per_second"], train["train_samples"] / wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="bare-step iterations per measurement")
    parser.add_argument("--dataset", default="mnist", help="the loop's data (an IDX folder for the 60,000 digits)")
    parser.add_argument("--train_images", type=int, default=4000)
    parser.add_argument("--eval_images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--config_overrides", default="", help="ViTMAE fields, key=value,...")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor) of the bare step")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    from datasets import DatasetDict

    from mae_hf import load_image_dataset
    from mae_hf.training import ConfigOverrides

    overrides = dict(ConfigOverrides(args.config_overrides))
    full = load_image_dataset(args.dataset)
    data = DatasetDict(
        train=full["train"].select(range(min(args.train_images, len(full["train"])))),
        test=full["test"].select(range(min(args.eval_images, len(full["test"])))),
    )
    flops = flops_per_image(overrides, args.batch_size)
    print(
        f"torch {torch.__version__}; MAE overrides {overrides or 'none'}; batch {args.batch_size}; "
        f"{flops / 1e6:.1f} MFLOP per image (forward + backward, mask 0.75)"
    )
    for threads in args.threads:
        rows = {"gemm": [], "bare": [], "loop_train": [], "loop_wall": [], "compiled": []}
        for _ in range(args.repeats):
            rows["gemm"].append(gemm_rate(threads))
            rows["bare"].append(bare_step(overrides, args.batch_size, threads, args.steps))
            if args.compile:
                rows["compiled"].append(bare_step(overrides, args.batch_size, threads, args.steps, compiled=True))
            train, wall = loop(data, overrides, args.batch_size, threads, args.epochs)
            rows["loop_train"].append(train)
            rows["loop_wall"].append(wall)
        m = {k: statistics.median(v) for k, v in rows.items() if v}
        print(f"\n{threads} thread(s), medians of {args.repeats}:")
        print(f"  GEMM rate               {m['gemm'] / 1e9:7.1f} GFLOP/s")
        print(
            f"  bare step               {m['bare']:7.0f} images/s = {m['bare'] * flops / 1e9:5.1f} GFLOP/s "
            f"({m['bare'] * flops / m['gemm']:.0%} of the GEMM rate)"
        )
        if "compiled" in m:
            print(f"  bare step, compiled     {m['compiled']:7.0f} images/s ({m['compiled'] / m['bare']:.2f}x)")
        print(
            f"  loop, training steps    {m['loop_train']:7.0f} images/s ({m['loop_train'] / m['bare']:.2f} of the "
            "bare step)"
        )
        print(
            f"  loop, wall time         {m['loop_wall']:7.0f} images/s ({m['loop_wall'] / m['bare']:.2f} of the "
            f"bare step; {args.train_images} train / {args.eval_images} test images per epoch)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
