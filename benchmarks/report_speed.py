"""Time `mae-hf report` per stage on 1,000 test digits, cold (empty cache) and warm (cache filled), against the
report's promise: about 60 s per 1,000 images on 2 cores, cold, for the default report (no scorecard).

The models are freshly built with the real MNIST architectures (the study's DAE, `build_mae("mnist")`), not
trained: every stage does the same work for trained and untrained weights, so the timing holds for trained ones.
Pass `--dae`/`--mae` to time your own checkpoints instead, and `--scorecard` to time the report with the scorecard
(`mae-hf report --scorecard`, what `make report` runs), which the promise does not cover.

    .venv/bin/python benchmarks/report_speed.py [--n 1000] [--dae DIR --mae DIR] [--scorecard]
"""

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from mae_hf import DAEConfig, DAEModel, build_mae
from mae_hf.pipeline import DataSettings, ReportSettings
from mae_hf.report import make_report

TARGET_S_PER_1000 = 60.0  # the default report's promise on 2 cores, cold (docs/benchmarks.md)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n_train", type=int, default=ReportSettings.n_train)
    parser.add_argument("--dae")
    parser.add_argument("--mae")
    parser.add_argument("--scorecard", action="store_true", help="also time the scorecard (not in the promise)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dae, mae = args.dae, args.mae
        if dae is None or mae is None:
            torch.manual_seed(0)
            DAEModel(DAEConfig()).save_pretrained(tmp / "dae")
            build_mae("mnist", seed=0).save_pretrained(tmp / "mae")
            dae, mae = str(tmp / "dae"), str(tmp / "mae")
        load1 = os.getloadavg()[0]
        print(
            f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load average before: {load1:.2f}; "
            f"n {args.n}, n_train {args.n_train}, scorecard {'on' if args.scorecard else 'off'}"
        )
        for run in ("cold", "warm"):
            wall, cpu = time.perf_counter(), cpu_seconds()
            res = make_report(
                {"dae": dae, "mae": mae},
                DataSettings(n=args.n, n_train=args.n_train),
                tmp / run,
                ReportSettings(scorecard=args.scorecard),
                cache_dir=tmp / "cache",
                progress=False,
            )
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            stages = "  ".join(f"{k} {v:.1f}" for k, v in res.metrics["timings_s"].items())
            per_1000 = wall * 1000 / args.n
            print(
                f"{run}: total {wall:.1f} s wall, {cpu:.1f} s CPU | {per_1000:.1f} s per 1,000 images = "
                f"{per_1000 / TARGET_S_PER_1000:.2f} x the {TARGET_S_PER_1000:.0f} s target | per stage (s): {stages}"
            )
        print(f"load average after: {os.getloadavg()[0]:.2f} (other processes on the machine slow every number)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
