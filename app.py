"""mae_hf's Gradio app: draw a digit and watch a masked and a denoising autoencoder rebuild it.

    python app.py [--dae DIR_OR_HUB_ID] [--mae DIR_OR_HUB_ID] [--model KIND=DIR_OR_HUB_ID ...] [--port N] [--share]

The same through environment variables on a Space: MAE_HF_DAE, MAE_HF_MAE, PORT / GRADIO_SERVER_PORT,
GRADIO_SHARE. Defaults: the bundled models in `pretrained/`, one set per dataset (`dae-mnist` and `mae-mnist`,
`dae-fashion` and `mae-fashion`, ...), each with a tab of its own; `--dae`, `--mae` and `--model` change the first.

This file only assembles the tabs of `mae_hf.app.tabs`. The page is served first; the models load in a background
thread of the same process (`mae_hf.app.service.ModelService`), then the dataset analysis runs in another. A
request made meanwhile waits for the models and says so.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    from mae_hf.app import lifecycle

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Before gradio is imported: it reads GRADIO_TEMP_DIR then.
    lifecycle.stop_cleanly_on_signals(lifecycle.private_temp_dir())
    lifecycle.give_memory_back()

import gradio as gr  # noqa: E402

from mae_hf.app.handlers import Handlers  # noqa: E402
from mae_hf.app.service import ModelService  # noqa: E402
from mae_hf.app.sources import (  # noqa: E402
    bundled_model_dir,
    bundled_pairs,
    check_model_source,
    profile_of_sources,
)
from mae_hf.app.tabs import (  # noqa: E402
    about_tab,
    attention_tab,
    example_files,
    latent_tab,
    metrics_tab,
    reconstruct_tab,
    weights_tab,
)
from mae_hf.app.views import across_datasets_markdown, answer_from_results, study_grid_markdown  # noqa: E402
from mae_hf.app.workers import RequestPool, default_workers  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
STUDY_JSON = HERE / "docs" / "study" / "study.json"
RESULTS_JSON = HERE / "docs" / "results" / "metrics.json"
# Each dataset profile's committed results, for its About tab: the shipped models' report and the study.
RESULTS_BY_PROFILE = {
    "digits": (RESULTS_JSON, STUDY_JSON),
    "clothing": (HERE / "docs" / "results-fashion" / "metrics.json", HERE / "docs" / "study-fashion" / "study.json"),
}
# The study on each dataset, for the About tab's table of each claim across datasets (docs/STUDY.md opens with it).
STUDY_BY_DATASET = {"MNIST": STUDY_JSON, "Fashion-MNIST": RESULTS_BY_PROFILE["clothing"][1]}
logger = logging.getLogger("mae_hf.app")

# Tables scroll sideways in their own box rather than squeeze: a cell breaks only between words, a header or a
# number never (gradio's Markdown breaks anywhere, "D AE", "240,00 / 0"). The neighbours gallery keeps its eight
# columns in the page's width (four on a phone) instead of running off the edge, and is as tall as its two rows.
CSS = """
.pixelated img { image-rendering: pixelated; object-fit: contain; }
#examples img { image-rendering: pixelated; }
.explain { font-size: 0.9em; opacity: 0.85; }
.caption p { margin: 0.2em 0; }
.prose table { display: block; max-width: 100%; overflow-x: auto; }
.prose th, .prose td { overflow-wrap: normal; word-break: normal; }
.neighbours .grid-wrap { min-height: 0 !important; height: auto !important; }
.neighbours .grid-container { grid-template-columns: repeat(8, minmax(0, 1fr)) !important; }
@media (max-width: 640px) { .neighbours .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; } }
"""
# The draw tool is active whenever the canvas is shown: gradio's editor starts (and restarts, whenever its value is
# cleared, e.g. by picking an example) with no tool, and says "select the draw tool to start". Whenever neither of
# the Sketchpad's two tools (brush, eraser: the first two toolbar buttons, found by place, not by their labels,
# which follow the visitor's language) is selected, the brush is.
SELECT_BRUSH_JS = """
() => {
  let queued = false;
  const pick = () => {
    queued = false;
    for (const pad of document.querySelectorAll('.sketchpad')) {
      const tools = [...pad.querySelectorAll('.toolbar-wrap .half-container button')].slice(0, 2);
      if (tools.length && !tools.some(b => b.classList.contains('highlight'))) { tools[0].click(); }
    }
  };
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(pick); } };
  new MutationObserver(soon).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['class']});
  soon();
}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    models = bundled_model_dir(HERE)
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--dae",
        default=env.get("MAE_HF_DAE"),
        help=f"DAE folder or Hub id (env MAE_HF_DAE; default the bundled ones, {models}/dae-<dataset>)",
    )
    parser.add_argument(
        "--mae",
        default=env.get("MAE_HF_MAE"),
        help=f"MAE folder or Hub id (env MAE_HF_MAE; default the bundled ones, {models}/mae-<dataset>)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="KIND=SOURCE",
        help="one more model of a registered kind (mae_hf.registry) beside the DAE and the MAE; repeatable",
    )
    parser.add_argument(
        "--host",
        default=env.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to listen on; 0.0.0.0 on a Space (env GRADIO_SERVER_NAME)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("PORT", env.get("GRADIO_SERVER_PORT", 7860))),
        help="port (env PORT or GRADIO_SERVER_PORT)",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        default=env.get("GRADIO_SHARE", "") in ("1", "true", "True"),
        help="also serve through a public gradio.live link (env GRADIO_SHARE=1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(env.get("MAE_HF_CONCURRENCY", 4)),
        help="requests processed at once (env MAE_HF_CONCURRENCY)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env.get("MAE_HF_WORKERS", default_workers())),
        help="worker processes that serve the Reconstruct tab, each with its own copy of the models; 0: in the "
        "app's process (env MAE_HF_WORKERS; default one per core, 0 on one core)",
    )
    return parser.parse_args(argv)


def model_sets(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The sets of models to serve, by dataset: the ones `--dae`, `--mae` and `--model KIND=SOURCE` name (with the
    bundled MNIST models for the kinds not named), else every complete bundled set (`pretrained/<kind>-<dataset>`,
    two models or more), MNIST first."""
    bundled = bundled_pairs(bundled_model_dir(HERE))
    named = {k: v for k, v in (("dae", args.dae), ("mae", args.mae)) if v}
    for item in args.model:
        kind, _, source = item.partition("=")
        named[kind.strip()] = source.strip()
    if named:
        defaults = bundled.get("mnist") or {k: str(bundled_model_dir(HERE) / f"{k}-mnist") for k in ("dae", "mae")}
        return {"mnist": {**defaults, **named}}
    sets = {dataset: sources for dataset, sources in bundled.items() if len(sources) >= 2}
    return sets or {"mnist": {k: str(bundled_model_dir(HERE) / f"{k}-mnist") for k in ("dae", "mae")}}


def build_demo(services, examples_dir: Path | None = None) -> gr.Blocks:
    """The whole app as `gr.Blocks` (not launched) on `services` (one `ModelService` per set of models; a list or
    one): with several, a tab per set, each with the tabs of `page`."""
    services = services if isinstance(services, (list, tuple)) else [services]
    with gr.Blocks(title="mae_hf: masked vs denoising autoencoders") as demo:
        gr.Markdown("# Masked vs denoising autoencoders")
        if len(services) == 1:
            page(demo, services[0], "", examples_dir)
        else:
            with gr.Tabs(overflow_behavior="wrap"):
                for i, service in enumerate(services):
                    with gr.Tab(service.profile.title, id=f"set-{service.profile.name}"):
                        suffix = "" if i == 0 else f"-{service.profile.name}"
                        page(demo, service, suffix, examples_dir if i == 0 else None)
        demo.load(None, js=SELECT_BRUSH_JS)
    return demo


def page(demo: gr.Blocks, service: ModelService, suffix: str, examples_dir: Path | None = None) -> Handlers:
    """The tabs of one set of models (`suffix` keeps its element ids and endpoint names apart from the others');
    returns their handlers, which fill the tabs' outputs."""
    lab = Handlers(service)
    status, profile = service.status(), service.profile
    gr.Markdown(
        f"Draw, upload or pick a {profile.noun} ({profile.title}). The **MAE** sees only some patches and fills in the "
        f"rest; the **DAE** sees the whole {profile.noun} under noise and cleans it up. Same {profile.noun}, same "
        "seed, side by side."
    )
    lab.outputs.banner = gr.Markdown(status["message"], visible=not status["ready"], elem_id=f"model-status{suffix}")
    with gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Reconstruct", id=f"reconstruct{suffix}"):
            controls = reconstruct_tab(lab, example_files(examples_dir or profile.examples), suffix)
        with gr.Tab("Metrics", id=f"metrics-tab{suffix}"):
            metrics_tab(lab, suffix)
        with gr.Tab("Latent space", id=f"latent-tab{suffix}"):
            second = latent_tab(lab, controls, suffix)
        with gr.Tab("Attention & saliency", id=f"attention-tab{suffix}") as attention:
            attention_tab(lab, controls, attention, suffix)
        with gr.Tab("Weights", id=f"weights-tab{suffix}"):
            weights_tab(lab, suffix)
        with gr.Tab("About", id=f"about{suffix}"):
            results, study = RESULTS_BY_PROFILE.get(profile.name, (None, None))
            grid = across_datasets_markdown(STUDY_BY_DATASET) + "\n" + study_grid_markdown(study)
            about_tab(lab, answer_from_results(results, study), grid, suffix)
    gr.api(lab.analysis_status, api_name=f"analysis_status{suffix.replace('-', '_')}")
    # The dataset tabs are filled in by the timer, the About tab's model summary once the models are loaded.
    o = lab.outputs
    o.timer = gr.Timer(2.0)
    refreshed = [*o.metrics.components, *o.latent.components, *o.weights.components, o.verdicts, o.timer]
    o.timer.tick(lab.refresh, [controls.digit, second], refreshed, api_visibility="private", show_progress="hidden")
    demo.load(lab.watch_models, None, [o.banner, o.summary], api_visibility="private", show_progress="hidden")
    return lab


def serve(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    concurrency: int = 4,
    block: bool = True,
):
    """Queue every handler (at most `concurrency` at once, 64 waiting; no direct HTTP calls around the queue), refuse
    uploads over 10 MB, show visitors the messages of the app's own errors only (never an exception's internals),
    then launch; `block=False` returns at once."""
    demo.queue(default_concurrency_limit=concurrency, max_size=64, api_open=False)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        theme=gr.themes.Soft(),
        css=CSS,
        show_error=False,
        max_file_size="10mb",
        prevent_thread_lock=not block,
        quiet=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Check the model sources (exit 2 with a message when one is plainly unusable), serve the page, then load the
    models in the background. A busy port exits 1 with one line naming --port. Logs at INFO (as `python app.py`
    sets it up), without the libraries' chatter."""
    for noisy in ("httpx", "transformers", "huggingface_hub", "openTSNE"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    if args.workers < 0:
        logger.error("--workers must be 0 (no worker processes) or more, got %d.", args.workers)
        return 2
    services, problems = [], []
    sets = model_sets(args)
    pool = RequestPool(list(sets.values()), args.workers) if args.workers else None
    for dataset, sources in sets.items():
        problems += [p for p in (check_model_source(source, name) for name, source in sources.items()) if p]
        profile, problem = profile_of_sources(sources)
        if problem:
            problems.append(problem)
            continue
        # A set's dataset analysis ships with it (`make report`): used when it belongs to these models.
        shipped = bundled_model_dir(HERE) / f"app-analysis-{dataset}.npz"
        services.append(ModelService(sources, profile, shipped=str(shipped), pool=pool))
    if problems:
        logger.error("%s", "\n".join(problems))
        return 2
    demo = build_demo(services, EXAMPLES_DIR)
    try:
        serve(demo, host=args.host, port=args.port, share=args.share, concurrency=args.concurrency, block=False)
    except OSError as err:
        logger.error(
            "Port %d is not free (%s): pass another with --port N (or set PORT).", args.port, type(err).__name__
        )
        return 1
    print(f"Serving on http://{args.host}:{args.port} (the models are loading)", flush=True)
    for service in services:
        service.start()
    if pool is not None:
        pool.start()
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
