"""The app's process: its private temporary folder (and the stale ones of app processes that were killed), a stop
on SIGTERM or Ctrl-C that is quick and clean whatever the background threads are doing, and memory that goes back
to the system after large uploads. Standard library only (called before gradio is imported)."""

import ctypes
import logging
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["TEMP_PREFIX", "private_temp_dir", "remove_stale_temp_dirs", "stop_cleanly_on_signals", "give_memory_back"]

TEMP_PREFIX = "mae_hf-app-"
LOCK_NAME = ".owner.lock"
# A folder without an owner lock may be one a starting app has just made: left alone until it is this old.
UNLOCKED_GRACE_S = 60.0

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so no stale-folder clean-up either
    fcntl = None


def _owned(folder: Path) -> bool:
    """Whether a live process holds `folder`'s owner lock (an unlocked folder younger than the grace counts too)."""
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime < UNLOCKED_GRACE_S
        except OSError:
            return True
    except OSError:
        return True  # not ours to judge (another user's folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True  # locked: its process is alive
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def remove_stale_temp_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the temporary folders of app processes that are gone (killed, so their clean-up never ran): every
    `mae_hf-app-*` folder in `root` (default the system's temporary folder) whose owner lock no live process holds.
    Returns the folders removed."""
    if fcntl is None:
        return []
    removed = []
    for folder in sorted(Path(root or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*")):
        if folder.is_dir() and not folder.is_symlink() and not _owned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info("Removed %d temporary folder(s) left by app processes that were killed", len(removed))
    return removed


def private_temp_dir() -> Path | None:
    """
    Give this process a temporary folder of its own for uploads, drawings and served images (`GRADIO_TEMP_DIR`,
    read by gradio when it is imported), held by an owner lock for as long as the process lives, after removing
    the stale ones. None (and nothing done) when `GRADIO_TEMP_DIR` is already set: that folder is the caller's.
    """
    if os.environ.get("GRADIO_TEMP_DIR"):
        return None
    remove_stale_temp_dirs()
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    if fcntl is not None:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the process ends, however it ends (the fd is never closed)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def stop_cleanly_on_signals(folder: Path | None) -> None:
    """
    On SIGTERM or SIGINT: stop the process's worker processes, remove `folder` (its own temporary folder, if any),
    flush the logs and exit 0 at once. The models load and the dataset analysis runs in daemon threads inside torch;
    letting the interpreter finalise around them took seconds and could abort the process ("terminate called without
    an active exception"), so the process ends without finalising (`os._exit`), after the only clean-up it needs.
    """

    def stop(signum, _frame):
        children = multiprocessing.active_children()  # the request workers (`mae_hf.app.workers`)
        for child in children:
            child.terminate()
        if children:  # multiprocessing's own folder (its fork server's socket), which its exit hook would remove
            shutil.rmtree(multiprocessing.util.get_temp_dir(), ignore_errors=True)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        logger.info("Stopped (%s)", signal.Signals(signum).name)
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def give_memory_back() -> None:
    """
    Memory freed after a large upload goes back to the system. glibc's malloc serves a large block from its own
    heap once a block of that size was freed (its mmap threshold rises with every free, up to 32 MB) and keeps it:
    a burst of large images left the server gigabytes larger for good. A fixed threshold (glibc's documented
    `mallopt(M_MMAP_THRESHOLD)`, the same as `MALLOC_MMAP_THRESHOLD_=1048576` in the environment) maps every block
    over 1 MB and unmaps it when freed. Not glibc (macOS, musl): nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_mmap_threshold = -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, 1 << 20)
