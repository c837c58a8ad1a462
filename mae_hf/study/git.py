"""Committing a study's results as they are written: a long study survives the end of a session or a machine."""

import logging
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["commit_file"]


def commit_file(path: Path, message: str) -> None:
    """`git add` + `git commit` one file (when asked: a long study's analyses are committed as they finish)."""
    try:  # in the file's own folder (its repository), by name: a relative --results resolves the same anywhere
        subprocess.run(["git", "add", "--", path.name], check=True, capture_output=True, cwd=path.parent)
        subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", path.name], check=True, capture_output=True, cwd=path.parent
        )
        logger.info("committed %s", path)
    except (OSError, subprocess.CalledProcessError) as err:
        logger.warning("Could not commit %s (%s); commit it by hand.", path, err)
