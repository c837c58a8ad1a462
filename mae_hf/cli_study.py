"""The `mae-hf study-across` subcommand: each claim of the study on several datasets, as Markdown
(`mae_hf.across_datasets` does the work)."""

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger("mae_hf.cli")

__all__ = ["add_across_command"]


def cmd_study_across(args: argparse.Namespace) -> int:
    from .across_datasets import across_markdown

    studies = {}
    for pair in args.studies:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            logger.error("Give each study as NAME=PATH (e.g. MNIST=docs/study/study.json), got %r.", pair)
            return 2
        try:  # a study that has not written its study.json yet is shown as not run
            studies[name] = json.loads(Path(path).read_text()) if Path(path).is_file() else None
        except (OSError, ValueError) as err:
            logger.error("%s is not a study.json (%s); write it again with `mae-hf study --no_train`.", path, err)
            return 2
    sys.stdout.write(across_markdown(studies))  # Markdown, for `make study` to open docs/STUDY.md with
    return 0


def add_across_command(sub) -> None:
    """Add `study-across` to the `mae-hf` subparsers `sub`."""
    p_across = sub.add_parser("study-across", help="each claim of the study on several datasets (Markdown)")
    p_across.add_argument(
        "studies", nargs="+", metavar="NAME=PATH", help="a dataset's name and its study.json (missing: no results yet)"
    )
    p_across.set_defaults(func=cmd_study_across)
