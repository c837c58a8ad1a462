"""Cold start of the app: process start to the first page, to the first answered `/reconstruct`, and to every tab
filled (the dataset analysis ready), on a fresh machine's empty cache.

Starts `python app.py --port N` (bundled models unless `--dae`/`--mae`, `HF_HUB_OFFLINE=1`) as a fresh process,
polls http://127.0.0.1:N/ with urllib every 50 ms until it answers HTTP 200 (**page**), then connects with
`gradio_client` and calls `/reconstruct` on an example digit until it returns (**first answer**: the models load in
a background thread once the page is served, and the call waits for them). Both are measured from `Popen`; the
process is stopped after each run. Repeated `--repeats` times; prints each run, the medians and the load
average (1 min) before each run, the CPU time (user + system) of the app at both moments, and when the models were
loaded (its log).

Then it polls every set's `/analysis_status*` until the dataset analysis behind the Metrics, Latent, Weights and
About tabs is ready (**tabs filled**: with the bundled models, MNIST's and Fashion-MNIST's), and reads from the app's log when the models were loaded: **tabs after the models** is the
difference. Every run has an empty analysis cache (`MAE_HF_CACHE` in a new temporary folder), as a fresh machine or
a Space's cold start has: with the bundled models the app uses their shipped analysis (`pretrained/app-analysis.npz`).

Targets: page ≤ 6 s, first answer ≤ 15 s, every tab filled ≤ 20 s after the models loaded, on 2 CPU cores (median
of 5). Measure on a quiet machine: `--max-load 0.5` waits (up to
`--wait` s) before each run until the 1-minute load average is at most 0.5, and the load is printed either way.

    python benchmarks/app_cold_start.py [--repeats 5] [--max-load 0.5] [--dae DIR --mae DIR]
    python benchmarks/app_cold_start.py --app app.py --app ../main/app.py   # before / after, alternating

"Cold" is a new Python process with the operating system's file cache warm (as for any restart) and an empty
analysis cache.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = sorted((REPO / "examples").glob("mnist-test-*.png"))[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_quiet(max_load: float | None, wait: float) -> float:
    """The 1-minute load average, after waiting (up to `wait` s) for it to drop to `max_load`."""
    start = time.perf_counter()
    while max_load is not None and os.getloadavg()[0] > max_load and time.perf_counter() - start < wait:
        time.sleep(5)
    return os.getloadavg()[0]


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its children have used so far (Linux; nan
    elsewhere)."""
    try:
        pids = [pid] + [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != pid and _ppid(int(p.name)) == pid
        ]
        return sum(int(f[11]) + int(f[12]) for f in map(_stat, pids)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _ppid(pid: int) -> int | None:
    try:
        return int(_stat(pid)[1])
    except (OSError, ValueError, IndexError):
        return None


def _poll_page(url: str, process: subprocess.Popen, start: float, timeout: float) -> float:
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"The app exited with code {process.returncode} before serving.")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"No HTTP 200 from {url} within {timeout:.0f} s.")


def run_once(app: str, args, Client, handle_file) -> dict:
    """Start `app`, time the first page and the first `/reconstruct` answer, stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, app, "--port", str(port)]
    if args.dae:
        command += ["--dae", args.dae]
    if args.mae:
        command += ["--mae", args.mae]
    cache = tempfile.TemporaryDirectory(prefix="mae_hf-cold-cache-")
    env = dict(os.environ, HF_HUB_OFFLINE="1", MAE_HF_CACHE=cache.name)
    with cache, tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=Path(app).parent, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            page = _poll_page(url, process, start, args.timeout)
            page_cpu = _cpu_seconds(process.pid)
            client = Client(url, verbose=False, download_files=False)
            out = client.predict(handle_file(str(EXAMPLE)), 0.75, 0.5, 0, "own", api_name="/reconstruct")
            answer = time.perf_counter() - start
            answer_cpu = _cpu_seconds(process.pid)
            if len(out) not in (6, 7):  # 7: the app of before, which also returned the model input
                raise SystemExit(f"/reconstruct returned {len(out)} outputs, expected 6: {out}")
            api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            sets = sorted(name for name in api if name.startswith("/analysis_status"))  # one per set of models
            for endpoint in sets:
                while not (status := client.predict(api_name=endpoint))["ready"]:
                    if status["failed"] or time.perf_counter() - start > args.timeout:
                        raise SystemExit(f"The dataset analysis did not get ready: {status['message']}")
                    time.sleep(0.2)
            tabs = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(timeout=30)
        log.seek(0)
        text = log.read()
    loaded = re.search(r"(?:Models loaded in|Model process ready) ([0-9.]+) s", text)
    analyses = re.findall(r"Dataset analysis ready in ([0-9.]+) s \((\w+)\)", text)  # one per set of models
    return {
        "page": page,
        "answer": answer,
        "tabs": tabs,
        "page_cpu": page_cpu,
        "answer_cpu": answer_cpu,
        "models_s": float(loaded.group(1)) if loaded else float("nan"),
        # the analysis starts when the models are loaded, and its log line says how long it took and from where
        "tabs_after_models": max(float(a[0]) for a in analyses) if analyses else float("nan"),
        "analysis_from": "+".join(a[1] for a in analyses) or "?",
        "sets": len(sets),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per app")
    parser.add_argument("--dae", help="DAE folder (default: the app's default, the bundled pretrained/dae-mnist)")
    parser.add_argument("--mae", help="MAE folder (default: the bundled pretrained/mae-mnist)")
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="before each run, wait until the 1-minute load average is at most this",
    )
    parser.add_argument("--wait", type=float, default=600.0, help="longest wait for --max-load per run (s)")
    parser.add_argument(
        "--app",
        action="append",
        help="an app.py to start (default: this checkout's). Give it twice, e.g. another checkout's "
        "to compare: the runs alternate, so both see the same machine",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on a run after this many seconds")
    args = parser.parse_args()
    apps = [str(Path(a).resolve()) for a in args.app or [REPO / "app.py"]]

    # Imported before any app starts, so the client's own imports do not compete with the app being timed.
    from gradio_client import Client, handle_file

    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    runs: dict[str, list[dict]] = {app: [] for app in apps}
    for i in range(args.repeats):
        for app in apps:
            load = _wait_until_quiet(args.max_load, args.wait)
            r = run_once(app, args, Client, handle_file) | {"load": load}
            runs[app].append(r)
            print(
                f"{app} run {i + 1}: page (first HTTP 200) {r['page']:5.2f} s   first /reconstruct answer "
                f"{r['answer']:5.2f} s   every tab filled {r['tabs']:5.2f} s ({r['tabs_after_models']:.1f} s after "
                f"the models, analysis {r['analysis_from']})   app CPU time {r['page_cpu']:.1f} / "
                f"{r['answer_cpu']:.1f} s   models ready after {r['models_s']:.1f} s   load average before {load:.2f}",
                flush=True,
            )
    for app, rs in runs.items():
        page, answer, tabs, after = (
            statistics.median(r[k] for r in rs) for k in ("page", "answer", "tabs", "tabs_after_models")
        )
        cpu = [statistics.median(r[k] for r in rs) for k in ("page_cpu", "answer_cpu")]
        loads = [r["load"] for r in rs]
        print(
            f"{app}, median of {len(rs)}: page {page:.2f} s, first answer {answer:.2f} s, every tab filled "
            f"{tabs:.2f} s ({after:.1f} s after the models); the app's CPU time by the first answer {cpu[0]:.1f} s / "
            f"{cpu[1]:.1f} s (load average before the runs {min(loads):.2f}–{max(loads):.2f})"
        )
        print(
            f"  targets: page <= 6 s {'met' if page <= 6 else 'NOT met'}, "
            f"first answer <= 15 s {'met' if answer <= 15 else 'NOT met'}, "
            f"every tab <= 20 s after the models {'met' if after <= 20 else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
