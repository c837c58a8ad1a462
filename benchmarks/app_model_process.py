"""What the app's model process costs a request: `/reconstruct`'s computation in the app's process vs through it.

Loads the models twice: a `DigitLab` in this process, and `app.ModelProcess` (`python -m mae_hf.app_backend`, as
`python app.py` runs it). Waits until the process's dataset analysis is done, then alternates rounds of sequential
`call("reconstruct", ...)` on each (one torch thread each, as in the app) and prints the medians and their ratio
per round: the difference is the trip of the request and its five images through the local socket (pickling).

    python benchmarks/app_model_process.py [--dae DIR] [--mae DIR] [--rounds 3] [--calls 60]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _median_ms(backend, example: str, calls: int) -> float:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        reply = backend.call("reconstruct", (example, 0.75, 0.5, i, "own"))
        times.append(time.perf_counter() - start)
        if reply[0] != "ok":
            raise SystemExit(f"/reconstruct failed: {reply}")
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dae", default=str(REPO / "pretrained" / "dae-mnist"))
    parser.add_argument("--mae", default=str(REPO / "pretrained" / "mae-mnist"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=60, help="sequential calls per round and side")
    args = parser.parse_args()

    import torch

    import app
    from mae_hf.app_backend import DigitLab
    from mae_hf.loading import load_models

    torch.set_num_threads(1)
    example = str(app.example_files()[3])
    here = DigitLab(load_models(args.dae, args.mae))
    process = app.ModelProcess(args.dae, args.mae).start()
    try:
        if process.call("reconstruct", (example,))[0] != "ok":
            raise SystemExit("The model process did not answer.")
        while not any(process.call("analysis_status")[1][k] for k in ("ready", "failed")):
            time.sleep(0.2)
        for r in range(args.rounds):
            a, b = _median_ms(here, example, args.calls), _median_ms(process, example, args.calls)
            print(f"round {r + 1}: median of {args.calls} /reconstruct computations: in this process {a:.1f} ms, "
                  f"through the model process {b:.1f} ms (ratio {b / a:.2f})", flush=True)
    finally:
        process.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
