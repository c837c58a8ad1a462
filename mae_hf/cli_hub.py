"""The `mae-hf push` and `mae-hf push-space` subcommands: a trained model folder, or the app with every bundled model,
published on the Hugging Face Hub (`mae_hf.hub` does the work)."""

import argparse
import logging
from pathlib import Path

logger = logging.getLogger("mae_hf.cli")

__all__ = ["add_hub_commands"]


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import check_push_access, push_model

    try:
        repo_id = check_push_access(args.repo_id, token=args.token, action="mae-hf push")
        url = push_model(args.model_dir, repo_id, token=args.token, private=args.private)
    except ValueError as err:
        logger.error("%s", err)
        return 2
    print(f"Pushed {args.model_dir} to {url}")
    return 0


def cmd_push_space(args: argparse.Namespace) -> int:
    from .app.sources import bundled_model_dir, bundled_pairs
    from .hub import check_push_access, push_space

    try:
        repo_id = check_push_access(args.repo_id, token=args.token, action="mae-hf push-space")
        owner = repo_id.split("/")[0]
        bundled = bundled_pairs(bundled_model_dir(args.repo_root))
        models = args.models or [f"{owner}/{Path(p).name}" for pair in bundled.values() for p in pair.values()]
        url = push_space(args.repo_root, repo_id, models, token=args.token, private=args.private)
    except ValueError as err:
        logger.error("%s", err)
        return 2
    print(f"Pushed the app to {url} (models: {', '.join(models)})")
    return 0


def add_hub_commands(sub, shows_defaults: dict, repo_root: Path) -> None:
    """Add `push` and `push-space` to the `mae-hf` subparsers `sub`; `repo_root`: the checkout `push-space` uploads."""
    p_push = sub.add_parser(
        "push", **shows_defaults, help="upload a trained model folder to the Hub, its card rendered for the repo id"
    )
    p_push.add_argument("model_dir", help="a finished --output_dir of train_accelerate.py")
    p_push.add_argument(
        "--repo-id",
        "--repo_id",
        dest="repo_id",
        required=True,
        help="user/name or org/name (a bare name is put under your user)",
    )
    p_push.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN or the `hf auth login` token)")
    p_push.add_argument("--private", action="store_true", help="create the repo as private")
    p_push.set_defaults(func=cmd_push)
    p_space = sub.add_parser(
        "push-space", **shows_defaults, help="upload the Gradio app with the bundled models as a Hugging Face Space"
    )
    p_space.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="user/space-name")
    p_space.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="Hub ids of the pushed models, listed in the Space's front matter (default: OWNER/<folder> for every "
        "bundled model, e.g. OWNER/dae-mnist OWNER/mae-mnist OWNER/dae-fashion OWNER/mae-fashion)",
    )
    p_space.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN or the `hf auth login` token)")
    p_space.add_argument("--private", action="store_true", help="create the Space as private")
    p_space.set_defaults(func=cmd_push_space)
    p_space.set_defaults(repo_root=repo_root)
