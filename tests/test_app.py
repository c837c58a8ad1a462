"""The Gradio app: its model service in process, `python app.py` launched on localhost and called through
gradio_client and raw HTTP (as a caller who is not the page would), and driven in a real headless Chromium."""

import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from mae_hf.app.inputs import UploadRefused, allowed_upload
from mae_hf.app.service import AppError, ModelService
from mae_hf.app.sources import check_model_source
from mae_hf.app.workers import default_workers
from mae_hf.digits import unreadable
from mae_hf.loading import load_models

from .conftest import TINY_MAE

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "build" / "screenshots"
# The background analysis on few digits, so it finishes in seconds with tiny models.
N_TEST, N_TRAIN = 120, 300


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    import torch

    from mae_hf import DAEConfig, DAEModel, build_mae

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    DAEModel(DAEConfig()).save_pretrained(root / "dae")
    build_mae("mnist", seed=0, **TINY_MAE).save_pretrained(root / "mae")
    return root / "dae", root / "mae"


@pytest.fixture(scope="module")
def service(model_dirs, tmp_path_factory):
    from mae_hf.app.background import AnalysisSettings

    settings = AnalysisSettings(n=N_TEST, n_train=N_TRAIN, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return ModelService.loaded(load_models(dict(zip(("dae", "mae"), model_dirs))), settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _table_rows(markdown: str) -> int:
    """The body rows of a Markdown table (the tables of every tab are Markdown)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(lines) >= 2 and set(lines[1].replace("|", "").split()) == {"---"}, markdown
    return len(lines) - 2


def _bar_image(size=(200, 100), ink=0, paper=255) -> Image.Image:
    arr = np.full(size[::-1], paper, np.uint8)
    arr[10:70, 20:50] = ink
    return Image.fromarray(arr)


def _huge_png(path: Path, side: int = 10_000) -> str:
    """A valid PNG header announcing `side`² pixels (100 megapixels), a few bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)


# --- the model service, in process ---------------------------------------------------------------------------------


def test_the_reconstruct_and_attention_tabs_use_one_mask(service):
    """Both call `mae_hf.evaluation.draw_noise(mae, "mask", [0], seed)`: the same patches are hidden."""
    digit = str(app.example_files(app.EXAMPLES_DIR)[3])
    _, _, mae_input, *_ = service.reconstruct(digit, 0.6, 0.5, 7, "own")  # the DAE's two images, then the MAE's
    blue = (mae_input == (46, 84, 150)).all(-1)[::4, ::4]  # (28, 28): the hidden pixels, drawn in blue
    from mae_hf.analysis.explanation import explain_digit

    x = service._digit_tensor(digit)
    maps = explain_digit(service.models.models, x, 0.6, 7)
    np.testing.assert_array_equal(blue, maps["pixel_mask"] > 0)
    _, _, other, *_ = service.reconstruct(digit, 0.6, 0.5, 8, "own")
    assert not np.array_equal(other, mae_input)


def test_concurrent_requests_each_get_their_own_mask_ratio_and_none_waits_for_another(service):
    """Request A is held inside the shared MAE (a test hook) until request B, at another mask ratio, has finished:
    with a global model lock B could not finish and A's wait would time out. Each gets its own ratio's mask, and
    the shared models are never written to."""
    import threading

    digit = str(app.example_files(app.EXAMPLES_DIR)[5])
    mae = service.models["mae"]
    config_before = mae.config.to_dict()
    a_inside, b_done, waited = threading.Event(), threading.Event(), []
    results = {}

    def hold_a(module, args):
        if threading.current_thread().name == "request-a" and not waited:
            a_inside.set()
            waited.append(b_done.wait(timeout=60))  # False if B never finished

    def request(name, ratio):
        results[name] = service.reconstruct(digit, ratio, 0.5, 3, "own")
        if name == "b":
            b_done.set()

    hook = mae.decoder.register_forward_pre_hook(hold_a)
    try:
        a = threading.Thread(target=request, args=("a", 0.3), name="request-a")
        a.start()
        assert a_inside.wait(60)
        b = threading.Thread(target=request, args=("b", 0.8), name="request-b")
        b.start()
        a.join(120)
        b.join(120)
    finally:
        hook.remove()
    assert waited == [True], "request B could not finish while request A was inside the model"
    hidden = {
        k: int((r[2] == (46, 84, 150)).all(-1)[::4, ::4].sum()) // 16 for k, r in results.items()
    }  # the MAE's input
    assert hidden == {"a": 49 - int(49 * 0.7), "b": 49 - int(49 * 0.2)}, hidden  # 15 and 40 of the 49 patches
    for name, ratio in (("a", 0.3), ("b", 0.8)):  # the same images as the request made alone
        alone = service.reconstruct(digit, ratio, 0.5, 3, "own")
        assert all(np.array_equal(x, y) for x, y in zip(alone[:5], results[name][:5]))
    assert mae.config.to_dict() == config_before and not mae.training


def test_request_workers_answer_as_the_apps_own_process_and_in_parallel(model_dirs, service):
    """The Reconstruct tab's requests in worker processes (`mae_hf.app.workers`, app.py's default on more than one
    core): the same images and table as in the app's process, each request its own mask ratio when two run at once,
    a bad setting the same message; until the workers are ready, the app's process answers."""
    import threading

    from mae_hf.app.workers import RequestPool

    sources = {"dae": str(model_dirs[0]), "mae": str(model_dirs[1])}
    pool = RequestPool([sources], workers=2)
    pooled = ModelService(sources, analysis=False, pool=pool).start()
    try:
        digit = str(app.example_files(app.EXAMPLES_DIR)[5])
        assert not pool.serves(sources)
        before = pooled.reconstruct(digit, 0.3, 0.5, 3, "own")  # not started: answered in this process
        pool.start()
        assert pool.wait(300), pool.error
        assert pool.serves(sources) and not pool.serves({"dae": sources["dae"]})
        results = {}

        def request(ratio):
            results[ratio] = pooled.reconstruct(digit, ratio, 0.5, 3, "own")

        threads = [threading.Thread(target=request, args=(r,)) for r in (0.3, 0.8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for ratio in (0.3, 0.8):
            alone = service.reconstruct(digit, ratio, 0.5, 3, "own")  # the in-process service on the same models
            assert all(np.array_equal(x, y) for x, y in zip(alone[:5], results[ratio][:5]))
            assert results[ratio][5] == alone[5]  # the PSNR/SSIM table
        assert all(np.array_equal(x, y) for x, y in zip(before[:5], results[0.3][:5]))
        with pytest.raises(AppError, match=r"The mask ratio must be in \[0, 1\), got 1.5"):
            pooled.reconstruct(digit, 1.5, 0.5, 3, "own")
        assert pool.serves(sources)  # a refused request does not break the pool
    finally:
        pool.shutdown()


def test_service_outputs_and_user_errors(service, tmp_path):
    digit = str(app.example_files(app.EXAMPLES_DIR)[0])
    out = service.reconstruct(digit, 0.75, 0.5, 0, "mask")
    assert [o.shape for o in out[:5]] == [(112, 112, 3)] * 5 and _table_rows(out[5]) == 3
    assert service.digit(digit).shape == (28, 28)
    for bad, message in ((Image.new("L", (64, 64), 255), "blank"), (None, "no digit yet")):
        with pytest.raises(AppError, match=message):
            service.reconstruct(bad)
    with pytest.raises(AppError, match="must be one of"):
        service.reconstruct(digit, 0.75, 0.5, 0, "blur")
    nan = np.full((28, 28), np.nan, np.float32)
    with pytest.raises(AppError, match="not numbers"):
        service.digit(nan)


def test_a_huge_image_is_refused_from_its_header_before_decoding(service, tmp_path):
    import tracemalloc

    path = _huge_png(tmp_path / "huge.png")
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(AppError, match="too large: 10000×10000"):
        service.digit(path)
    with pytest.raises(AppError, match="too large"):
        service.digit({"background": None, "layers": [], "composite": Path(path).read_bytes()})
    seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB allocated: the image was decoded"
    assert seconds < 5


def test_dataset_tabs_show_progress_then_fill_in(service):
    assert service.analysis.wait(240), service.analysis.status()
    status, psnr, ssim, rows = service.metrics()
    assert "Computed on the first 120" in status and psnr.ndim == 3 and _table_rows(rows) == 4
    latent = service.latent_space(str(app.example_files(app.EXAMPLES_DIR)[2]), "mae_mean")
    assert latent[1].ndim == latent[2].ndim == 3 and len(latent[3]) == 16 and _table_rows(latent[4]) == 2
    assert "H1" in service.verdicts() and "✅" not in service.verdicts()  # words every font shows


def test_the_apps_own_tables_take_their_headers_from_report_tables(service):
    """The placement table and the models' summary are written by `markdown_table` under the headers defined in
    `mae_hf.tables`, beside every other table's, not retyped in the app."""
    from mae_hf.app.views import model_summary
    from mae_hf.tables import MODEL_SOURCE_HEADERS, PLACEMENT_HEADERS, markdown_table

    assert service.analysis.wait(240), service.analysis.status()
    placement = service.latent_space(str(app.example_files(app.EXAMPLES_DIR)[2]), "mae_mean")[4]
    assert placement.startswith(markdown_table(PLACEMENT_HEADERS, []) + "\n") and _table_rows(placement) == 2
    summary = model_summary(service.models)
    assert (
        summary.startswith(markdown_table(MODEL_SOURCE_HEADERS, []) + "\n")
        and _table_rows(summary.split("\n\n")[0]) == 2
    )


def test_a_shipped_analysis_fills_the_tabs_without_computing_it_and_only_for_its_models(
    service, model_dirs, tmp_path, monkeypatch, caplog
):
    """The analysis written beside its models is used on a fresh machine (an empty cache) without running the
    analysis again, and a digit is placed as before; other settings (or models) compute as usual."""
    import logging

    import mae_hf.pipeline
    from mae_hf.app.background import AnalysisSettings

    assert service.analysis.wait(240), service.analysis.status()
    shipped = service.analysis.write_shipped(tmp_path / "app-analysis.npz")
    assert shipped.stat().st_size < 5 * 2**20  # the features are recomputed at start, not shipped
    models = service.models

    def no_analysis(*args, **kwargs):
        raise AssertionError("the shipped analysis should have been used")

    monkeypatch.setattr(mae_hf.pipeline, "run_analysis", no_analysis)
    settings = AnalysisSettings(n=N_TEST, n_train=N_TRAIN, cache_dir=str(tmp_path / "empty"), shipped=str(shipped))
    fresh = ModelService.loaded(models, settings)
    assert fresh.analysis.wait(240), fresh.analysis.status()
    assert fresh.analysis.source == "shipped" and "shipped with the models" in fresh.analysis_status()["message"]
    assert fresh.metrics()[3] == service.metrics()[3]
    digit = str(app.example_files(app.EXAMPLES_DIR)[2])
    placed, before = fresh.latent_space(digit, "mae_cls"), service.latent_space(digit, "mae_cls")
    assert placed[4] == before[4] and len(placed[3]) == 16  # the same place and neighbours

    # it holds its images: a dataset that cannot be loaded here (no network, not shipped) is not needed
    offline = AnalysisSettings(
        n=N_TEST, n_train=N_TRAIN, dataset=str(tmp_path / "no-such-dataset"), cache_dir=None, shipped=str(shipped)
    )
    held = ModelService.loaded(models, offline)
    assert held.analysis.wait(240), held.analysis.status()
    assert held.analysis.source == "shipped"
    assert np.array_equal(held.analysis.train_x.numpy(), service.analysis.train_x.numpy())
    assert held.metrics()[3] == service.metrics()[3]

    monkeypatch.undo()
    other = AnalysisSettings(n=N_TEST + 10, n_train=N_TRAIN, cache_dir=str(tmp_path / "empty2"), shipped=str(shipped))
    with caplog.at_level(logging.INFO, logger="mae_hf.app.background"):
        computed = ModelService.loaded(models, other)
        assert computed.analysis.wait(240), computed.analysis.status()
    assert computed.analysis.source == "computed"
    assert "is for other models or settings" in caplog.text


def test_bad_analysis_settings_are_shown_and_the_models_still_answer(model_dirs, monkeypatch):
    monkeypatch.setenv("MAE_HF_APP_N", "many")
    s = ModelService.loaded(load_models(dict(zip(("dae", "mae"), model_dirs))))
    assert "MAE_HF_APP_N='many' must be a whole number" in s.analysis_status()["message"]
    assert s.reconstruct(str(app.example_files(app.EXAMPLES_DIR)[0]))[0].shape == (112, 112, 3)


def test_models_load_in_the_background_and_failures_say_why(model_dirs, tmp_path):
    s = ModelService(dict(zip(("dae", "mae"), model_dirs))).start()
    assert s.wait(120) and s.status()["ready"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text((model_dirs[0] / "config.json").read_text())
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"not weights")
    bad = ModelService({"dae": tmp_path / "broken", "mae": model_dirs[1]}).start()
    with pytest.raises(AppError, match="Could not load the denoising autoencoder"):
        bad.wait(120)
    assert bad.status()["failed"] and "broken" in bad.status()["message"]
    assert str(tmp_path) not in bad.status()["message"]  # the folder's name, not its server path


# --- the inputs: only uploaded files are opened --------------------------------------------------------------------


def test_only_files_in_the_upload_folder_are_opened(tmp_path, monkeypatch):
    upload = tmp_path / "gradio"
    (upload / "abc").mkdir(parents=True)
    mine = upload / "abc" / "digit.png"
    _bar_image().save(mine)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload))
    assert allowed_upload(str(mine)) == str(mine.resolve())
    secret = tmp_path / "secret.png"
    _bar_image().save(secret)
    secret.chmod(0o600)
    messages = set()
    for path in (secret, tmp_path / "missing.png", upload / "abc" / ".." / ".." / "secret.png", "/etc/passwd"):
        with pytest.raises(UploadRefused) as err:
            allowed_upload(str(path))
        messages.add(err.value.message)
    assert messages == {unreadable()}  # one message: it never tells whether a file exists


def test_model_sources_are_checked_without_loading_them(model_dirs, tmp_path, monkeypatch):
    assert check_model_source(str(model_dirs[0]), "dae") is None
    assert "holds a 'vit_mae' model" in check_model_source(str(model_dirs[1]), "dae")
    assert "no config.json" in check_model_source(str(tmp_path), "mae")
    assert "Unknown model kind 'vae'" in check_model_source(str(model_dirs[0]), "vae")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert "not in the local cache" in check_model_source("nobody/nothing", "mae")


def test_building_the_page_imports_neither_torch_nor_transformers():
    code = (
        "import sys, app; from mae_hf.app.service import ModelService; "
        "app.build_demo(ModelService({'dae': 'a', 'mae': 'b'})); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("[]"), out.stdout


# The endpoints no page event triggers: the page computes attention on opening its tab and fills the dataset tabs by
# a timer.
API_ONLY = ("attention", "metrics", "weights", "verdicts", "analysis_status")


def test_the_api_only_endpoints_have_no_hidden_button_behind_them():
    """Each set of models' `/attention`, `/metrics`, `/weights`, `/verdicts` and `/analysis_status` is an event with no
    trigger (`gr.api` for the two that return plain values; `gr.on` with no trigger over the tab's own components for
    those that take a checked picture or return images): the page holds no hidden button or component for them."""
    from mae_hf.profiles import profile_for

    services = [ModelService({"dae": "a", "mae": "b"}), ModelService({"dae": "c", "mae": "d"}, profile_for("clothing"))]
    config = app.build_demo(services).get_config_file()
    hidden = [c for c in config["components"] if c["type"] in ("button", "json") and c["props"].get("visible") is False]
    assert hidden == []
    named = {d["api_name"]: d for d in config["dependencies"] if d.get("api_name")}
    types = {c["id"]: c["type"] for c in config["components"]}
    ids = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
    for suffix in ("", "_clothing"):
        for name in API_ONLY:
            assert named[name + suffix]["targets"] == [], name + suffix
        for name in ("verdicts", "analysis_status"):
            assert [types[i] for i in named[name + suffix]["outputs"]] == ["api"], name + suffix
        # the others answer through the tabs' own components
        tab = suffix.replace("_", "-")
        shown = [f"metrics-status{tab}", f"psnr-hist{tab}", f"ssim-hist{tab}", f"metrics-table{tab}"]
        assert [ids[i] for i in named["metrics" + suffix]["outputs"]] == shown


def test_handlers_fill_their_outputs_by_name_in_the_endpoints_order(service):
    """Each handler answers `{component: value}` for the outputs it names; the endpoint's answer, in its outputs'
    order, is the service's. Outputs that stay as they are (no picture yet) are left out, not counted out in skips."""
    import gradio as gr

    with gr.Blocks() as demo:
        lab = app.page(demo, service, "")
    o = lab.outputs
    digit = str(app.example_files(app.EXAMPLES_DIR)[3])
    answer = lab.reconstruct(digit, 0.6, 0.5, 4, "own")
    assert (
        list(answer)
        == o.reconstruct.components
        == [*o.reconstruct.images["dae"].values(), *o.reconstruct.images["mae"].values(), o.reconstruct.table]
    )
    expected = service.reconstruct(digit, 0.6, 0.5, 4, "own")
    shown = [answer[c] for c in o.reconstruct.components]
    assert (
        all(np.array_equal(a, b) for a, b in zip(shown[:-1], expected[:-1], strict=True)) and shown[-1] == expected[-1]
    )
    assert lab.reconstruct_if_digit(None, 0.6, 0.5, 4, "own") == gr.skip()
    assert lab.attention_if_digit(None, 0.6, 0.5, 4, "own") == gr.skip()
    attention = lab.attention(digit, 0.6, 0.5, 4, "own")
    assert list(attention) == o.attention.components and "Rollout" in attention[o.attention.summary]
    assert service.analysis.wait(240), service.analysis.status()
    refreshed = lab.refresh(digit, "mae_mean")
    assert set(refreshed) == {*o.metrics.components, *o.latent.components, *o.weights.components, o.verdicts, o.timer}
    assert refreshed[o.weights.histograms["mae"]].ndim == 3 and "H1" in refreshed[o.verdicts]
    assert len(refreshed[o.latent.neighbours]) == 16 and refreshed[o.timer].active is False


def test_while_the_models_load_the_handlers_fill_only_the_status_lines():
    import gradio as gr

    service = ModelService({"dae": "a", "mae": "b"})  # never started: the models are "loading"
    with gr.Blocks() as demo:
        lab = app.page(demo, service, "")
    o = lab.outputs
    message = service.analysis_status()["message"]
    refreshed = lab.refresh(None, "mae_cls")
    assert refreshed == {
        o.metrics.status: message,
        o.latent.status: message,
        o.weights.status: message,
        o.verdicts: message,
        o.timer: refreshed[o.timer],
    }
    assert refreshed[o.timer].active is True
    assert lab.latent_space_if_ready(None, "mae_cls") == gr.skip()
    assert list(next(lab.watch_models())) == [o.banner]


def test_readme_front_matter_configures_a_space():
    import gradio as gr
    import yaml

    meta = yaml.safe_load((REPO / "README.md").read_text().split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gr.__version__  # pinned to what the tests ran
    assert meta["python_version"] == "3.11" and (REPO / meta["app_file"]).is_file()
    assert len(meta["short_description"]) <= 60


def test_space_requirements_match_the_package():
    import configparser
    import re

    def names(lines):
        return {
            re.split(r"[<>=\[ ;]", line.strip())[0].lower().replace("_", "-")
            for line in lines
            if line.strip() and not line.strip().startswith(("#", "-"))
        }

    required = names((REPO / "requirements.txt").read_text().splitlines())
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    # The Space provides gradio (the app extra); training-only packages are not needed to serve the app.
    assert required == names(setup["options"]["install_requires"].splitlines()) - {"accelerate", "tqdm"}
    assert names(setup["options.extras_require"]["app"].splitlines()) == {"gradio"}
    torch_pin = re.search(r"TORCH_SPEC \?= (\S+)", (REPO / "Makefile").read_text()).group(1)
    assert torch_pin in (REPO / "requirements.txt").read_text().splitlines()


def test_examples_are_real_mnist_test_digits_one_per_class(mnist):
    files = app.example_files(app.EXAMPLES_DIR)
    assert sorted(int(p.stem[-1]) for p in files) == list(range(10))
    for p in files:
        index = int(p.stem.split("-")[2])
        expected = np.asarray(mnist["test"][index]["image"])
        np.testing.assert_array_equal(np.asarray(Image.open(p)), expected)


# --- python app.py, on localhost -----------------------------------------------------------------------------------


def _launch(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )


@pytest.fixture(scope="module")
def launched(model_dirs, tmp_path_factory):
    """`python app.py` on the test models (its analysis on `N_TEST` / `N_TRAIN` digits): (URL, log file, temp dir)."""
    from gradio_client import Client

    tmp = tmp_path_factory.mktemp("launched")
    port = _free_port()
    env = dict(
        os.environ,
        MAE_HF_CACHE=str(tmp / "cache"),
        MAE_HF_APP_N=str(N_TEST),
        MAE_HF_APP_N_TRAIN=str(N_TRAIN),
        TMPDIR=str(tmp / "tmp"),
    )
    (tmp / "tmp").mkdir()
    env.pop("GRADIO_TEMP_DIR", None)
    log = tmp / "app.log"
    process = _launch(["--dae", str(model_dirs[0]), "--mae", str(model_dirs[1]), "--port", str(port)], env, log)
    try:
        for _ in range(1200):
            assert process.poll() is None, log.read_text()
            try:
                Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", log, tmp / "tmp", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(launched):
    from gradio_client import Client

    return Client(launched[0], verbose=False)


@pytest.mark.slow
def test_every_endpoint_through_gradio_client(client):
    from gradio_client import handle_file

    example = handle_file(str(app.example_files(app.EXAMPLES_DIR)[9]))
    digit = client.predict(example, api_name="/digit_from_upload")
    np.testing.assert_array_equal(
        np.asarray(Image.open(digit)), np.asarray(Image.open(app.example_files(app.EXAMPLES_DIR)[9]))
    )
    out = client.predict(example, 0.75, 0.5, 0, "own", api_name="/reconstruct")
    assert all(Image.open(p).size == (112, 112) for p in out[:5]) and _table_rows(out[5]) == 3
    att = client.predict(example, 0.5, 0.5, 1, "own", api_name="/attention")
    assert Image.open(att[2]).size[0] > 300 and "Rollout" in att[3]
    deadline = time.monotonic() + 240
    while not client.predict(api_name="/analysis_status")["ready"]:
        assert time.monotonic() < deadline, "the analysis did not finish"
        time.sleep(1)
    status, psnr, ssim, table = client.predict(api_name="/metrics")
    assert "Computed on the first 120" in status and _table_rows(table) == 4
    latent = client.predict(example, "mae_mean", api_name="/latent_space")
    assert len(latent[3]) == 16 and _table_rows(latent[4]) == 2
    assert "H3" in client.predict(api_name="/verdicts")
    assert _table_rows(client.predict(api_name="/weights")[3]) == 4
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    page_events = ("digit_from_sketch", "digit_from_upload", "reconstruct", "latent_space")
    assert set(endpoints) == {f"/{name}" for name in (*page_events, *API_ONLY)}
    settings = ["image", "mask_ratio", "noise_factor", "seed", "corruption"]
    assert [p["parameter_name"] for p in endpoints["/attention"]["parameters"]] == settings
    assert all(endpoints[f"/{name}"]["parameters"] == [] for name in API_ONLY[1:])


def _join(url: str, fn_index: int, data: list) -> dict:
    """One event through gradio's queue, as the page sends it (raw HTTP): the completed message."""
    import httpx

    session = os.urandom(6).hex()
    httpx.post(
        f"{url}gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
    ).raise_for_status()
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("no answer")


def test_start_up_prints_no_progress_bars_and_no_library_notes(launched, client):
    """Loading two small models and analysing the test digits: the console shows our lines, not bars or notes."""
    from gradio_client import handle_file

    client.predict(
        handle_file(str(app.example_files(app.EXAMPLES_DIR)[2])), 0.75, 0.5, 0, "own", api_name="/reconstruct"
    )
    deadline = time.monotonic() + 240
    while not client.predict(api_name="/analysis_status")["ready"]:
        assert time.monotonic() < deadline, "the analysis did not finish"
        time.sleep(1)
    log = launched[1].read_text()
    assert "Running on local URL" in log or "127.0.0.1" in log, log
    for noise in ("Loading weights", "it/s]", "%|", "openTSNE", "Traceback"):
        assert noise not in log, f"{noise!r} on the console:\n{log}"


@pytest.mark.slow
def test_no_caller_can_read_a_local_file_through_the_app(launched, client, tmp_path):
    """A 0600 image outside the upload folder, sent as a path to every endpoint that takes an image: refused, with
    one message whether the file exists or not, and the secret's pixels never come back."""
    import httpx

    url = launched[0]
    secret = tmp_path / "secret.png"
    _bar_image((28, 28), ink=255, paper=0).save(secret)
    secret.chmod(0o600)
    config = httpx.get(f"{url}config").json()
    fns = {d.get("api_name"): i for i, d in enumerate(config["dependencies"]) if d.get("api_name")}
    inputs = {
        "digit_from_upload": [],
        "reconstruct": [0.75, 0.5, 0, "own"],
        "attention": [0.75, 0.5, 0, "own"],
        "latent_space": ["mae_cls"],
    }
    for api_name, rest in inputs.items():
        answers = set()
        for path in (str(secret), str(tmp_path / "missing.png")):
            for payload in ({"path": path}, {"path": path, "meta": {"_type": "gradio.FileData"}}):
                message = _join(url, fns[api_name], [payload, *rest])
                assert message["success"] is False, (api_name, message)
                answers.add((bool(payload.get("meta")), json.dumps(message["output"].get("error"))))
        # one answer for the existing file and the missing one (ours without meta, gradio's own refusal with it),
        # naming no path
        assert len(answers) == 2 and json.dumps(unreadable()) in {a[1] for a in answers}, (api_name, answers)
        assert str(tmp_path) not in json.dumps(sorted(answers))
    # a Sketchpad value pointing at the file
    sketch = {"background": None, "layers": [], "composite": {"path": str(secret)}, "id": None}
    assert _join(url, fns["digit_from_sketch"], [sketch])["success"] is False
    # no direct HTTP call around the queue
    r = httpx.post(f"{url}gradio_api/run/reconstruct", json={"data": [{"path": str(secret)}, 0.75, 0.5, 0, "own"]})
    assert r.status_code == 404


@pytest.mark.slow
def test_every_refusal_reaches_the_caller_as_a_short_message_with_one_short_log_line(launched, client):
    """Raw HTTP, as a caller who is not the page: wrong types, values out of range or not offered, a 1 MB string, an
    image as a number or a bare string, a drawing of the wrong shape. Each answer names the problem in a short
    message (gradio's own refusals used to reach the caller as `{"error": null}` and log a traceback)."""
    import httpx

    url, log = launched[0], launched[1]
    config = httpx.get(f"{url}config").json()
    fns = {d.get("api_name"): i for i, d in enumerate(config["dependencies"]) if d.get("api_name")}
    with open(app.example_files(app.EXAMPLES_DIR)[4], "rb") as f:
        uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": ("4.png", f, "image/png")}).json()[0]
    digit = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    huge = "x" * 1_000_000
    cases = [
        ("reconstruct", [digit, "abc", 0.5, 0, "own"], "MAE mask ratio takes a number from 0.1 to 0.8; got 'abc'"),
        ("reconstruct", [digit, 5.0, 0.5, 0, "own"], "MAE mask ratio takes a number from 0.1 to 0.8; got 5.0"),
        ("reconstruct", [digit, 0.75, None, 0, "own"], "DAE noise takes a number from 0 to 1.5; got None"),
        ("reconstruct", [digit, 0.75, 0.5, "abc", "own"], "Seed takes a whole number from 0; got 'abc'"),
        ("reconstruct", [digit, 0.75, 0.5, 0, huge], "What each model is given takes one of 'own', 'mask', 'noise'"),
        ("reconstruct", [42, 0.75, 0.5, 0, "own"], "The image must be an uploaded file"),
        ("attention", ["/etc/passwd", 0.75, 0.5, 0, "own"], "The image must be an uploaded file"),
        ("latent_space", [digit, "nope"], "Second map takes one of 'mae_cls', 'mae_mean', 'raw_pixels'; got 'nope'"),
        ("digit_from_upload", [{"url": "http://example.com/digit.png"}], "The image must be an uploaded file"),
        ("digit_from_sketch", ["abc"], "A drawing must be"),
        ("digit_from_sketch", [{"background": None, "layers": 5, "composite": None}], "A drawing must be"),
    ]
    before = log.read_text()
    for api_name, data, expected in cases:
        message = _join(url, fns[api_name], data)
        error = message["output"].get("error")
        assert message["success"] is False and error and expected in error, (api_name, expected, error)
        assert len(error) < 300, (api_name, len(error))
    new = log.read_text()[len(before) :]
    assert "Traceback" not in new and new.count("Request refused") == len(cases), new[-3000:]
    assert max(len(line) for line in new.splitlines()) < 400
    assert huge[:1000] not in new


@pytest.mark.slow
def test_bad_inputs_get_clear_messages_one_log_line_and_the_server_keeps_serving(launched, client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError as ClientError

    buf = io.BytesIO()
    _bar_image().save(buf, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[:100])
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("L", (64, 64), 255).save(tmp_path / "white.png")
    cases = {
        "white.png": "blank",
        "huge.png": "too large: 10000×10000",
        "notes.png": "is not an image",
        "truncated.png": "corrupt or truncated",
    }
    _huge_png(tmp_path / "huge.png")
    log_before = launched[1].read_text()
    for name, message in cases.items():
        with pytest.raises(ClientError, match=message):
            client.predict(handle_file(str(tmp_path / name)), api_name="/digit_from_upload")
    new = launched[1].read_text()[len(log_before) :]
    assert "Traceback" not in new and new.count("Request refused") == len(cases), new
    assert len(client.predict(handle_file(str(app.example_files(app.EXAMPLES_DIR)[1])), api_name="/reconstruct")) == 6


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_barrage_of_heavy_inputs_is_bounded_and_its_memory_given_back(launched, client, tmp_path):
    """Large blank uploads and many-layered drawings, four at a time, each just inside the per-request budget or
    over it: every one is answered with the app's message, and afterwards the server's memory is back within a few
    hundred MB of what it was before (a barrage once left it 3 GB higher)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError as ClientError

    process = launched[3]
    big = tmp_path / "big.png"
    Image.new("RGBA", (6300, 6300)).save(big)  # 39.7 MP of nothing: 160 MB once decoded, 150 KB on disk
    layer = tmp_path / "layer.png"
    Image.new("RGBA", (3600, 3600)).save(layer)  # 13 MP
    deadline = time.monotonic() + 240
    while not client.predict(api_name="/analysis_status")["ready"]:
        assert time.monotonic() < deadline
        time.sleep(1)
    client.predict(handle_file(str(app.example_files(app.EXAMPLES_DIR)[1])), api_name="/reconstruct")
    idle = _rss_mb(process.pid)
    clients = [Client(launched[0], verbose=False) for _ in range(4)]

    def upload(k):
        with pytest.raises(ClientError, match="fully transparent"):
            clients[k].predict(handle_file(str(big)), api_name="/digit_from_upload")

    def sketch(k, n_layers):
        value = {
            "background": handle_file(str(layer)),
            "layers": [handle_file(str(layer))] * n_layers,
            "composite": None,
            "id": None,
        }
        with pytest.raises(ClientError, match="canvas is empty|the limit is"):
            clients[k].predict(value, api_name="/digit_from_sketch")

    peak = idle
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            jobs = [pool.submit(upload, k) for k in range(2)] + [
                pool.submit(sketch, 2 + k, 2 + 22 * k) for k in range(2)
            ]
            for job in jobs:
                job.result()
            peak = max(peak, _rss_mb(process.pid))
    time.sleep(1)
    after = _rss_mb(process.pid)
    assert after - idle < 300, f"RSS {idle:.0f} MB idle, {peak:.0f} MB after a round, {after:.0f} MB after all"
    assert len(client.predict(handle_file(str(app.example_files(app.EXAMPLES_DIR)[1])), api_name="/reconstruct")) == 6


@pytest.mark.slow
def test_app_py_with_a_bad_model_source_exits_2_at_once(tmp_path):
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--dae", str(tmp_path / "nowhere")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "nowhere" in out.stderr and "Traceback" not in out.stderr
    assert time.perf_counter() - start < 30


@pytest.mark.slow
def test_a_busy_port_is_one_line_naming_port(launched, model_dirs, tmp_path):
    port = launched[0].rsplit(":", 1)[1].strip("/")
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "app.py"),
            "--dae",
            str(model_dirs[0]),
            "--mae",
            str(model_dirs[1]),
            "--port",
            port,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # no stale app folders to clean up (that would be a line)
    )
    assert out.returncode == 1, out.stderr
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "--port" in lines[0] and "Traceback" not in out.stderr, lines


# --- a real browser ----------------------------------------------------------------------------------------------


def _chromium():
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: install Debian's chromium (.ci/run does).")
        pytest.skip("needs Debian's chromium (`apt-get install chromium`); CI installs it")
    return path


def _browser(p):
    return p.chromium.launch(
        executable_path=_chromium(),
        args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
    )


def _stroke(page, x_from=0.3, x_to=0.7):
    """A "7" on the canvas: across the top, then down to the bottom left."""
    from playwright.sync_api import expect

    canvas = page.locator("#sketchpad canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    box = canvas.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + x_from * w, y0 + 0.25 * h)
    page.mouse.down()
    for t in np.linspace(0, 1, 12):
        page.mouse.move(x0 + (x_from + (x_to - x_from) * t) * w, y0 + 0.25 * h)
    for t in np.linspace(0, 1, 16):
        page.mouse.move(x0 + (x_to - 0.25 * t) * w, y0 + (0.25 + 0.5 * t) * h)
    page.mouse.up()


# The Sketchpad's tools, found by place (their labels follow the visitor's language): is one of them selected?
TOOL_SELECTED_JS = """
() => [...document.querySelectorAll('#sketchpad .toolbar-wrap .half-container button')].slice(0, 2)
        .some(b => b.classList.contains('highlight'))
"""
CURRENT_DIGIT_JS = "() => { const i = document.querySelector('#model-input img'); return i ? i.src : null; }"


@pytest.mark.slow
def test_draw_a_stroke_in_chromium_and_see_both_reconstructions(launched):
    """As a visitor: a stroke on the canvas becomes the current digit and is reconstructed by itself; the Latent
    tab places it by itself."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(launched[0])
            _stroke(page)
            metrics = page.locator("#metrics")
            expect(metrics).to_contain_text("DAE reconstruction", timeout=120_000)  # no button: it follows the stroke
            expect(metrics).to_contain_text("MAE, visible patches pasted")
            page.wait_for_function(
                "() => { const i = document.querySelector('#model-input img');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=30_000,
            )
            assert page.locator("#model-input img").bounding_box()["width"] > 100  # shown enlarged
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "app-reconstruct.png"), full_page=True)

            _open_tab(page, "Latent space")
            expect(page.locator("#latent-status")).to_contain_text("Computed on the first", timeout=240_000)
            expect(page.locator("#neighbours img").nth(15)).to_be_visible(timeout=60_000)  # placed without a click
            expect(page.locator("#measures-table")).to_contain_text("raw pixels")
            expect(page.locator("#placement-table")).to_contain_text("DAE bottleneck")
            page.wait_for_function("() => !document.querySelector('.pending')", timeout=30_000)
            page.screenshot(path=str(SCREENSHOTS / "app-latent-space.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("width, locale", [(1400, "en-US"), (420, "es-ES")])
def test_the_draw_tool_is_active_whenever_the_canvas_is_shown(launched, width, locale):
    """On a fresh page and after picking an example (which clears the canvas), in any language: the brush is
    selected, so a stroke draws and becomes the current digit (gradio's editor said "select the draw tool to
    start" and ignored strokes)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1300}, locale=locale)
            page.goto(launched[0])
            page.wait_for_function(TOOL_SELECTED_JS, timeout=30_000)
            page.locator("#examples img").nth(3).click()
            page.wait_for_function("() => (document.querySelector('#model-input img') || {}).src", timeout=30_000)
            example = page.evaluate(CURRENT_DIGIT_JS)
            page.wait_for_timeout(500)  # the canvas is cleared after the example is placed
            page.wait_for_function(TOOL_SELECTED_JS, timeout=30_000)
            _stroke(page)
            page.wait_for_function(f"() => ({CURRENT_DIGIT_JS})() !== {json.dumps(example)}", timeout=60_000)
        finally:
            browser.close()


@pytest.mark.slow
def test_a_bad_upload_gets_one_toast_and_keeps_the_current_digit(launched, tmp_path):
    """A corrupt file uploaded over a digit: one message, the digit stays (no error badge over it), the upload box is
    emptied (no broken image)."""
    from playwright.sync_api import expect, sync_playwright

    bad = tmp_path / "bad.png"
    bad.write_bytes(app.example_files(app.EXAMPLES_DIR)[0].read_bytes()[:60])
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(launched[0])
            page.locator("#examples img").first.click()
            expect(page.locator("#metrics")).to_contain_text("DAE reconstruction", timeout=120_000)
            digit = page.evaluate(CURRENT_DIGIT_JS)
            page.get_by_role("tab", name="Upload").click()
            page.locator("#upload input[type=file]").set_input_files(str(bad))
            toast = page.locator(".toast-body")
            expect(toast.first).to_contain_text("could not be decoded", timeout=30_000)
            page.wait_for_timeout(2000)  # a second toast would be here by now
            assert toast.count() == 1
            assert page.evaluate(CURRENT_DIGIT_JS) == digit
            expect(page.locator("#model-input")).not_to_contain_text("Error")
            assert page.locator("#upload img").count() == 0
        finally:
            browser.close()


def _serving(port: int, process: subprocess.Popen, log: Path):
    from gradio_client import Client

    for _ in range(1200):
        assert process.poll() is None, log.read_text()
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:  # noqa: BLE001 - not serving yet
            time.sleep(0.1)
    raise AssertionError("the app did not serve")


@pytest.mark.slow
def _gone(pids: list[int], message: str, timeout: float = 10.0) -> None:
    """Wait until none of `pids` is running (a zombie no longer runs)."""

    def running():
        out = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                out.append(pid)
        return out

    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(), (message, running())


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, and theirs (Linux's /proc)."""
    found, parents = [], {pid}
    for _ in range(3):
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            child = int(stat.parent.name)
            if int(fields[1]) in parents and child not in found:
                found.append(child)
        parents |= set(found)
    return found


def test_a_killed_apps_uploads_are_removed_at_the_next_start_and_sigterm_stops_at_once(model_dirs, tmp_path):
    """SIGKILL leaves an app's temporary folder (visitors' uploads) behind: the next start removes it, and only
    folders no live process owns. SIGTERM, while the dataset analysis runs in its thread, stops the app at once,
    exit code 0, nothing left (it took ~10 s and once aborted with "terminate called without an active
    exception")."""
    import fcntl

    from gradio_client import handle_file

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    live = tmp / "mae_hf-app-live"  # held by a live process (this one)
    live.mkdir()
    held = os.open(live / ".owner.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    young = tmp / "mae_hf-app-young"  # no lock yet: an app that is starting right now
    young.mkdir()
    other = tmp / "someone-else"
    other.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), MAE_HF_CACHE=str(tmp_path / "cache"), MAE_HF_APP_N="3000")
    env.pop("GRADIO_TEMP_DIR", None)
    args = ["--dae", str(model_dirs[0]), "--mae", str(model_dirs[1]), "--port"]
    digit = handle_file(str(app.example_files(app.EXAMPLES_DIR)[0]))
    try:
        port = _free_port()
        killed = _launch([*args, str(port)], env, tmp_path / "killed.log")
        _serving(port, killed, tmp_path / "killed.log").predict(digit, api_name="/reconstruct")
        orphans = _children(killed.pid)  # its request workers and their fork server
        assert len(orphans) >= min(default_workers(), 1), orphans
        killed.kill()
        killed.wait(timeout=30)
        _gone(orphans, "the killed app's worker processes outlived it")
        # multiprocessing's own folder of the killed app (its fork server's socket) is left as by any killed program
        killed_mp = sorted(p.name for p in tmp.glob("pymp-*"))
        left = [p for p in tmp.glob("mae_hf-app-*") if p not in (live, young)]
        assert len(left) == 1 and any(left[0].rglob("*.png")), "the killed app left no uploads behind"

        port = _free_port()
        log = tmp_path / "app.log"
        process = _launch([*args, str(port)], env, log)
        client = _serving(port, process, log)
        client.predict(digit, api_name="/reconstruct")
        assert not left[0].exists(), "the killed app's folder is still there"
        assert live.is_dir() and young.is_dir() and other.is_dir()
        status = client.predict(api_name="/analysis_status")
        assert not status["ready"] and not status["failed"], status  # the analysis is running
        children = _children(process.pid)  # its request workers and their fork server (`mae_hf.app.workers`)
        assert len(children) >= default_workers(), children
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, log.read_text()[-2000:]
        stopped_in = time.monotonic() - start
        _gone(children, "worker processes outlived the app")
    finally:
        os.close(held)
    text = log.read_text()
    assert "terminate called" not in text and "Aborted" not in text and "Traceback" not in text, text[-2000:]
    assert "Removed 1 temporary folder" in text
    assert sorted(p.name for p in tmp.iterdir()) == ["mae_hf-app-live", "mae_hf-app-young", *killed_mp, "someone-else"]
    print(f"stopped {stopped_in:.2f} s after SIGTERM")


# The page's geometry, checked in the browser: label badges over images, tables wider than their box.
LAYOUT_JS = """
() => {
  const boxes = el => { const r = el.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom,
                                                                      w: r.width, h: r.height}; };
  const visible = el => { const b = boxes(el); return b.w > 2 && b.h > 2 && el.offsetParent !== null; };
  const overlap = (a, b) => Math.max(0, Math.min(a.r, b.r) - Math.max(a.l, b.l)) *
                            Math.max(0, Math.min(a.b, b.b) - Math.max(a.t, b.t));
  const labels = [...document.querySelectorAll('[data-testid="block-label"]')].filter(visible);
  const images = [...document.querySelectorAll('img')].filter(visible).filter(i => i.naturalWidth > 0);
  const covered = [];
  for (const label of labels) for (const img of images) {
    if (overlap(boxes(label), boxes(img)) > 4) covered.push(label.innerText + ' over ' + (img.alt || img.src.slice(-30)));
  }
  const tables = [...document.querySelectorAll('table')].filter(visible);
  const hidden = [];
  for (const t of tables) {
    let box = t.parentElement, scrollable = false;
    while (box && box !== document.body) {
      const s = getComputedStyle(box);
      if (['auto', 'scroll'].includes(s.overflowX) && box.clientWidth < box.scrollWidth) { scrollable = true; break; }
      if (box.clientWidth < t.scrollWidth - 2 && s.overflowX === 'hidden') break;
      box = box.parentElement;
    }
    const fits = t.getBoundingClientRect().right <= window.innerWidth + 1;
    if (!fits && !scrollable) hidden.push(t.innerText.slice(0, 40));
    hidden.push(...[...t.querySelectorAll('th, td')].filter(c => c.scrollWidth > c.clientWidth + 2 &&
                                                          getComputedStyle(c).textOverflow === 'ellipsis')
                                                  .map(c => 'cut: ' + c.innerText.slice(0, 30)));
  }
  const captions = [...document.querySelectorAll('.caption-label')].filter(visible)
                     .filter(c => c.scrollWidth > c.clientWidth + 2).map(c => c.innerText);
  const overflow = document.documentElement.scrollWidth > window.innerWidth + 1;
  // a table cell may wrap between words only: letters of a word or digits of a number are never split
  const breaks_words = [...document.querySelectorAll('th, td')].filter(visible).filter(c => {
    const s = getComputedStyle(c); return s.overflowWrap !== 'normal' || !['normal', 'keep-all'].includes(s.wordBreak);
  }).map(c => c.innerText.slice(0, 30)).slice(0, 5);
  const tabs_in_menu = document.querySelectorAll('button[aria-label="More tabs"]').length;
  return {covered, hidden, captions, overflow, breaks_words, tabs_in_menu, tables: tables.length,
          images: images.length};
}
"""


GALLERY_JS = """
() => { const g = document.querySelector('#neighbours'), c = g.querySelector('.grid-container');
        return {fits: c.scrollWidth <= c.clientWidth + 1 && g.getBoundingClientRect().right <= window.innerWidth + 1,
                gap: g.getBoundingClientRect().height - c.getBoundingClientRect().height}; }
"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 420])
def test_nothing_is_covered_or_cut_off_at_1400_and_420_px(launched, client, width):
    """Every tab at both widths, each reachable without a menu: no label badge over an image, no table column out of
    reach, no word or number split across lines in a table, the neighbours gallery inside the page with no empty
    band under it, no cut caption at 1400 px; a screenshot of each tab goes to build/screenshots/."""
    from playwright.sync_api import expect, sync_playwright

    deadline = time.monotonic() + 240
    while not client.predict(api_name="/analysis_status")["ready"]:
        assert time.monotonic() < deadline
        time.sleep(1)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.goto(launched[0])
            page.locator("#examples img").first.click()  # a current digit, so every tab has something to show
            expect(page.locator("#metrics")).to_contain_text("DAE reconstruction", timeout=120_000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for tab in ("Reconstruct", "Metrics", "Latent space", "Attention & saliency", "Weights", "About"):
                _open_tab(page, tab)
                if tab == "Latent space":
                    expect(page.locator("#neighbours img").nth(15)).to_be_visible(timeout=60_000)
                    grid = page.evaluate(GALLERY_JS)
                    assert grid["fits"] and grid["gap"] < 60, (width, grid)  # in the page, no empty band below
                if tab == "Attention & saliency":
                    expect(page.locator("#attention-summary")).to_contain_text("Rollout", timeout=60_000)
                page.wait_for_timeout(800)
                page.wait_for_function("() => !document.querySelector('.pending')", timeout=60_000)
                found = page.evaluate(LAYOUT_JS)
                name = tab.lower().replace(" & ", "-").replace(" ", "-")
                page.screenshot(path=str(SCREENSHOTS / f"app-{name}-{width}.png"), full_page=True)
                assert not found["covered"], (tab, width, found["covered"])
                assert not found["hidden"], (tab, width, found["hidden"])
                assert not found["breaks_words"], (tab, width, found["breaks_words"])
                assert found["tabs_in_menu"] == 0, (tab, width, "a tab is folded into a menu")
                if width >= 1400:
                    assert not found["captions"] and not found["overflow"], (tab, width, found)
        finally:
            browser.close()


def _open_tab(page, name):
    page.get_by_role("tab", name=name).click()


@pytest.fixture(scope="module")
def bundled_app(tmp_path_factory):
    """`python app.py` as a Space runs it: every bundled set of models (MNIST and Fashion-MNIST), each with the
    dataset analysis shipped beside it: (URL, log)."""
    tmp = tmp_path_factory.mktemp("bundled")
    (tmp / "tmp").mkdir()
    env = dict(os.environ, MAE_HF_CACHE=str(tmp / "cache"), TMPDIR=str(tmp / "tmp"))
    for name in ("GRADIO_TEMP_DIR", "MAE_HF_DAE", "MAE_HF_MAE", "MAE_HF_PRETRAINED", "MAE_HF_APP_ANALYSIS"):
        env.pop(name, None)
    port, log = _free_port(), tmp / "app.log"
    process = _launch(["--port", str(port)], env, log)
    try:
        client = _serving(port, process, log)
        deadline = time.monotonic() + 300
        for endpoint in ("/analysis_status", "/analysis_status_clothing"):
            while not client.predict(api_name=endpoint)["ready"]:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 420])
def test_the_bundled_app_serves_mnist_and_fashion_mnist_at_1400_and_420_px(bundled_app, width):
    """A tab per dataset; on the Fashion-MNIST one, its own test images as examples, words about clothing, both of its
    models reconstructing the picked item, its dataset tabs filled from its shipped analysis (clothing classes), and
    nothing covered or cut off; the MNIST tab still shows digits."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.goto(bundled_app[0])
            expect(page.get_by_role("tab", name="MNIST digits")).to_be_visible(timeout=60_000)
            expect(page.locator("#examples img")).to_have_count(10)
            page.get_by_role("tab", name="Fashion-MNIST clothing").click()
            expect(page.get_by_text("Draw, upload or pick a clothing item").first).to_be_visible()
            examples = page.locator("#examples-clothing img")
            expect(examples).to_have_count(10)
            examples.first.click()
            expect(page.locator("#metrics-clothing")).to_contain_text("DAE reconstruction", timeout=120_000)
            expect(page.locator("#model-input-clothing img")).to_be_visible()
            for tab in ("Reconstruct", "Latent space"):
                _open_tab(page, tab)
                if tab == "Latent space":
                    expect(page.locator("#neighbours-clothing img").nth(15)).to_be_visible(timeout=60_000)
                    expect(page.locator("#placement-table-clothing")).to_contain_text("Most common class")
                    text = page.locator("#placement-table-clothing").inner_text()
                    assert any(name in text for name in ("Ankle boot", "T-shirt/top", "Sneaker", "Bag", "Sandal")), text
                page.wait_for_timeout(800)
                page.wait_for_function("() => !document.querySelector('.pending')", timeout=60_000)
                found = page.evaluate(LAYOUT_JS)
                page.screenshot(path=str(SCREENSHOTS / f"app-fashion-{tab.lower().replace(' ', '-')}-{width}.png"))
                assert not found["covered"], (tab, width, found["covered"])
                assert not found["hidden"], (tab, width, found["hidden"])
                assert found["tabs_in_menu"] == 0, (tab, width, "a tab is folded into a menu")
        finally:
            browser.close()
