"""Latency of the app's `reconstruct` endpoint (both models on one digit) under concurrent clients.

Starts `python app.py` as a real server on localhost, then N clients (default 4) call `/reconstruct` through
`gradio_client` at the same time, each with its own digits and seeds, and prints two figures per request:

- handler: the app's `reconstruct` handler (`ModelService.reconstruct`, what gradio runs for the event) called by
  1 thread and by N threads at once in this process, with the app's settings (its request worker processes,
  `--workers`, default one per core; 1 torch thread each; no lock), alternating 1 and N for `--rounds` rounds, so
  the two are measured under the same conditions (gradio's own pre- and post-processing is not in it);
- round trip: what a client of the real server waits, including gradio_client's upload, queue join and event
  stream (output files are not downloaded). On a quiet 2-core machine gradio's own queue round trip for a no-op is
  already ~30–60 ms.

Targets: with 4 concurrent clients, handler p50 ≤ 50 ms and ≤ 2× the handler p50 of 1 client (medians over the
rounds), p95 ≤ 150 ms. Timing starts after the
warm-up requests and once the app's background dataset analysis is ready (a few seconds from its cache), unless
`--during-analysis`.

    python benchmarks/app_latency.py [--dae DIR] [--mae DIR] [--clients 4] [--workers N] [--requests 40]
        [--rounds 3] [--during-analysis]

Without bundled models (`pretrained/`), it builds untrained models of the shipped sizes (DAE and the `mnist`
MAE preset) in a temporary folder: latency does not depend on the weights' values.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_dirs(args, tmp: Path) -> tuple[str, str]:
    from mae_hf.cli import pretrained_dir

    dae, mae = args.dae or pretrained_dir() / "dae-mnist", args.mae or pretrained_dir() / "mae-mnist"
    if Path(dae).is_dir() and Path(mae).is_dir():
        return str(dae), str(mae)
    import torch

    from mae_hf import DAEConfig, DAEModel, build_mae

    print(f"No bundled models at {dae} / {mae}: using untrained models of the same size (same latency).")
    torch.manual_seed(0)
    DAEModel(DAEConfig()).save_pretrained(tmp / "dae")
    build_mae("mnist", seed=0).save_pretrained(tmp / "mae")
    return str(tmp / "dae"), str(tmp / "mae")


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float = 120.0):
    from gradio_client import Client

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"The app exited with code {process.returncode} before serving.")
        try:
            return Client(url, verbose=False), time.perf_counter() - start
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise SystemExit(f"The app did not answer at {url} within {timeout:.0f} s.")


def _wait_for_analysis(client, timeout: float = 600.0) -> float:
    """Wait until the app's background dataset analysis is ready (or failed); returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        status = client.predict(api_name="/analysis_status")
        if status["ready"] or status["failed"]:
            return time.perf_counter() - start
        time.sleep(0.2)
    raise SystemExit(f"The app's dataset analysis was not ready within {timeout:.0f} s.")


def _concurrently(clients: int, requests: int, warmup: int, call, before_timing=None) -> tuple[np.ndarray, float]:
    """`clients` threads each make `warmup` untimed calls, then (after `before_timing()`, once) `requests` timed
    ones, all at once; `call(k, i, seed)` is thread k's i-th call. Returns the seconds of every timed call and the
    wall seconds of the timed part."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients)
    start = [0.0]

    def run(k: int):
        for i in range(warmup):
            call(k, i, i)
        if barrier.wait() == 0:
            if before_timing is not None:
                before_timing()
            start[0] = time.perf_counter()
        barrier.wait()
        for i in range(requests):
            t = time.perf_counter()
            call(k, i, 1000 * k + i)
            latencies[k].append(time.perf_counter() - t)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array([x for per_client in latencies for x in per_client]), time.perf_counter() - start[0]


def _handler_latencies(
    dae: str, mae: str, examples: list[Path], clients: int, requests: int, warmup: int, rounds: int, workers: int
):
    """`ModelService.reconstruct` (the app's handler, the app's settings: `workers` request processes, or none)
    called from 1 thread and from `clients` threads at once, alternately for `rounds` rounds:
    `{1: [per round: (seconds of each call, wall)], clients: ...}`."""
    from mae_hf.app.service import ModelService
    from mae_hf.app.workers import RequestPool

    sources = {"dae": dae, "mae": mae}
    pool = RequestPool([sources], workers).start() if workers else None
    service = ModelService(sources, analysis=False, pool=pool).start()
    service.wait()
    if pool is not None and not pool.wait(300):
        raise SystemExit(f"The request workers did not start: {pool.error}")

    def call(k: int, i: int, seed: int):
        service.reconstruct(str(examples[(k + i) % len(examples)]), 0.75, 0.5, seed, "own")

    out = {1: [], clients: []}
    for _ in range(rounds):
        for n in out:
            out[n].append(_concurrently(n, requests, warmup, call))
    return out


def _summary(name: str, ms: np.ndarray) -> str:
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    return f"  {name:<12} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   mean {ms.mean():6.1f} ms   max {ms.max():6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dae", help="DAE folder (default: the bundled pretrained/dae-mnist)")
    parser.add_argument("--mae", help="MAE folder (default: the bundled pretrained/mae-mnist)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="request worker processes, as app.py's --workers (default: the app's, one per core); 0: none",
    )
    parser.add_argument("--requests", type=int, default=40, help="timed requests per client")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per client first")
    parser.add_argument("--rounds", type=int, default=3, help="handler rounds of 1 and of --clients clients")
    parser.add_argument(
        "--during-analysis",
        action="store_true",
        help="start timing right after the warm-up, while the app's dataset analysis may still run "
        "(default: wait until it is ready)",
    )
    args = parser.parse_args()
    if args.workers is None:
        from mae_hf.app.workers import default_workers

        args.workers = default_workers()

    from gradio_client import Client, handle_file

    import app

    files = app.example_files(app.EXAMPLES_DIR)
    examples = [handle_file(str(p)) for p in files]
    with tempfile.TemporaryDirectory() as tmp:
        dae, mae = _model_dirs(args, Path(tmp))
        handler_rounds = _handler_latencies(
            dae, mae, files, args.clients, args.requests, args.warmup, args.rounds, args.workers
        )
        port = _free_port()
        url = f"http://127.0.0.1:{port}/"
        process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--dae", dae, "--mae", mae, "--port", str(port)]
            + ["--workers", str(args.workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _, startup = _wait_for_server(url, process)
            print(
                f"app up in {startup:.1f} s (process start to the page; the models load in a background thread, "
                f"the warm-up requests wait for them); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
                "before the run"
            )
            # The clients cost more CPU per request than the server (httpx, event streams): on a 2-core machine
            # they would starve the server they measure, so they run at a lower priority than the app.
            os.nice(10)
            clients = [Client(url, verbose=False, download_files=False) for _ in range(args.clients)]
            waited = [None]

            def call(k: int, i: int, seed: int):
                clients[k].predict(examples[(k + i) % len(examples)], 0.75, 0.5, seed, "own", api_name="/reconstruct")

            def steady_state():  # the background dataset analysis is done
                waited[0] = _wait_for_analysis(clients[0])

            round_trip, wall = _concurrently(
                args.clients, args.requests, args.warmup, call, None if args.during_analysis else steady_state
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    round_trip = round_trip * 1000
    print(
        f"handler: 1 and {args.clients} concurrent clients x {args.requests} requests of `reconstruct` (both models, "
        f"one digit, PSNR/SSIM, 5 images; {args.workers} worker processes), {args.rounds} rounds alternating; "
        f"round trip: {args.clients} clients through the server, {len(round_trip) / wall:.1f} requests/s"
    )
    if waited[0] is not None:
        print(
            f"  (round trips timed once the app's background dataset analysis was ready, {waited[0]:.1f} s after the "
            "warm-up; --during-analysis times them while it runs)"
        )
    p50 = {}
    for n, results in handler_rounds.items():
        per_round = [np.percentile(ms * 1000, 50) for ms, _ in results]
        p50[n] = float(np.median(per_round))
        rates = [len(ms) / w for ms, w in results]
        print(
            f"  handler, {n} client{'s' if n > 1 else ''}: p50 per round {', '.join(f'{x:.1f}' for x in per_round)} ms"
            f" (median {p50[n]:.1f}), {np.median(rates):.1f} requests/s"
        )
        print(_summary(f"handler x{n}", np.concatenate([ms for ms, _ in results]) * 1000))
    print(_summary("round trip", round_trip))
    many = np.concatenate([ms for ms, _ in handler_rounds[args.clients]]) * 1000
    ratio = p50[args.clients] / p50[1]
    ok = p50[args.clients] <= 50 and ratio <= 2 and np.percentile(many, 95) <= 150
    print(
        f"  {args.clients} clients vs 1: handler p50 ratio {ratio:.2f} (target <= 2), p50 {p50[args.clients]:.1f} ms "
        f"(target <= 50), p95 {np.percentile(many, 95):.1f} ms (target <= 150): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
