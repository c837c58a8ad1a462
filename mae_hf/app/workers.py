"""Requests served on every core: a pool of worker processes (the standard library's `concurrent.futures`), each
with its own copy of the models, for the handler that runs most often (the Reconstruct tab, at every slider move).

Most of a request's few milliseconds is Python (module calls, small tensor ops, SciPy's SSIM), which holds the GIL:
threads in one process take turns at it, so four concurrent requests on two cores waited for each other (8.6× the
latency of one). Processes do not share a GIL. A worker loads a set of models the first time it is asked for it and
keeps it; it receives a picture already checked and decoded (a small array) and returns the images and the table.

The workers start from a fork server that has imported torch and this package once (`forkserver`, the start method
that is safe in a process that runs threads), so each starts in well under a second; `RequestPool.warm` starts them
and loads the models in the background, and until it has, requests run in the app's own process.
"""

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["RequestPool", "default_workers"]

# What the fork server imports once, so that no worker imports it again.
PRELOAD = ["torch", "transformers", "mae_hf.loading", "mae_hf.comparison", "mae_hf.app.views"]

_models: dict[tuple, dict] = {}  # in a worker: {sources as a tuple of items: {kind name: model}}
# How long warming up may take: every worker starting and loading every set of models.
WARM_TIMEOUT_S = 300.0


def default_workers() -> int:
    """The app's worker processes: one per core the process may use, none on a single core (requests then run in
    the app's own process, as they would in one worker)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if cores > 1 else 0


def _exit_with_the_app() -> None:
    """Wait for the app's process to end, however it ends, then end this worker: a pool's worker waits for work
    on a queue it also holds the writing end of, so it would outlive an app that was killed (SIGKILL) for good."""
    multiprocessing.parent_process().join()
    os._exit(0)


def _start_worker(sources_sets: tuple) -> None:
    """A worker's start: a watch on the app's process, one torch thread (one request per worker, one worker per
    core), every set of models loaded. A worker takes no request before it has."""
    import torch

    from ..loading import load_models

    threading.Thread(target=_exit_with_the_app, name="mae_hf-app-watch", daemon=True).start()
    torch.set_num_threads(1)
    for sources in sources_sets:
        _models[sources] = load_models(dict(sources)).models


def _pid() -> int:
    return os.getpid()


def _reconstruct(sources: tuple, pixels: np.ndarray, settings: dict):
    """In a worker: `views.reconstruct_views` on its copy of the models (raises `ValueError` for a bad setting)."""
    import torch

    from .views import reconstruct_views

    return reconstruct_views(_models[sources], torch.from_numpy(pixels), **settings)


class RequestPool:
    """
    `workers` processes that answer `reconstruct` requests for the sets of models they were started with
    (`[{kind name: folder or Hub id}, ...]`).

    `start()` starts them in a daemon thread, each loading every set; `ready` says when one has answered (until then,
    and if they could not start, the app answers in its own process; a worker still loading takes no request).
    `reconstruct` blocks until its worker answers. `shutdown` stops the workers (the app's SIGTERM handler stops them
    through `multiprocessing.active_children`; each also ends by itself when the app's process is gone).
    """

    def __init__(self, sources_sets: list[dict], workers: int):
        if workers < 1:
            raise ValueError(f"A request pool needs at least one worker, got {workers}.")
        self.workers = workers
        self.sets = tuple(tuple(sources.items()) for sources in sources_sets)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._executor = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(self.sets,)
        )
        self._done = threading.Event()
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    def serves(self, sources: dict) -> bool:
        """Whether the workers are ready and hold these models."""
        return self.ready and tuple(sources.items()) in self.sets

    def start(self) -> "RequestPool":
        """Start every worker (each loads every set of models) in a daemon thread; returns self at once."""

        def run():
            try:
                # with a start method other than fork, the pool starts a process for each job no idle one takes
                jobs = [self._executor.submit(_pid) for _ in range(self.workers)]
                pids = {job.result(WARM_TIMEOUT_S) for job in jobs}
                logger.info("Request workers ready: %d started, %d answered", self.workers, len(pids))
            except Exception as err:  # noqa: BLE001 - the app keeps answering in its own process
                self.error = f"{type(err).__name__}: {err}"
                logger.error("The request workers could not start (%s); requests run in the app's process", err)
            self._done.set()

        threading.Thread(target=run, name="mae_hf-workers", daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until `start` is done; whether the workers are ready."""
        self._done.wait(timeout)
        return self.ready

    def reconstruct(self, sources: dict, pixel_values, **settings):
        """`views.reconstruct_views` for the models of `sources`, in a worker: `(shown, table)`."""
        pixels = np.ascontiguousarray(pixel_values.numpy())
        return self._executor.submit(_reconstruct, tuple(sources.items()), pixels, settings).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
