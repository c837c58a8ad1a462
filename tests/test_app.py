"""The Gradio app: built without launching, launched on localhost and called through gradio_client, and driven in
a real headless Chromium."""

import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from mae_hf import load_image_dataset
from mae_hf.app_backend import DISPLAY_SCALE, BackgroundModels, DigitLab
from mae_hf.loading import load_models

from .conftest import TINY_MAE

REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "build" / "screenshots" / "app-reconstruct.png"
SCREENSHOT_LATENT = REPO / "build" / "screenshots" / "app-latent-space.png"
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
def models(model_dirs):
    return load_models(*model_dirs)


@pytest.fixture(scope="module")
def lab(models):
    return app.Handlers(DigitLab(models))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from mae_hf.explorer import ExplorerSettings

    return ExplorerSettings(n=N_TEST, n_train=N_TRAIN, cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def server(models, settings):
    demo = app.build_demo(models, analysis=settings)
    _, url, _ = app.serve(demo, host="127.0.0.1", port=_free_port(), block=False)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def _png(path: Path, image: Image.Image) -> str:
    image.save(path)
    return str(path)


def _bar_image(size=(200, 100), ink=0, paper=255) -> Image.Image:
    arr = np.full(size[::-1], paper, np.uint8)
    arr[10:70, 20:50] = ink
    return Image.fromarray(arr)


# --- without launching -------------------------------------------------------------------------------------------


def test_blocks_build_with_named_endpoints(models):
    demo = app.build_demo(models, start_analysis=False)
    assert isinstance(demo, gr.Blocks)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert {"reconstruct", "digit_from_sketch", "digit_from_upload", "metrics", "latent_space", "attention",
            "weights", "verdicts", "analysis_status"} <= names


def test_about_tab_shows_the_architecture_x_corruption_grid(models, tmp_path):
    demo = app.build_demo(models, start_analysis=False)
    grid = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "study-grid"]
    assert len(grid) == 1
    text = grid[0].value
    study = json.loads(app.STUDY_JSON.read_text())  # the committed results of `make study`
    for cell in study["cells"].values():
        assert cell["label"] in text
    psnr = study["summary"]["vit_mask"]["psnr"]
    assert f"{psnr['estimate']:.2f} [{psnr['ci_low']:.2f}, {psnr['ci_high']:.2f}]" in text
    assert "H3" in text and study["verdicts"]["H3"]["verdict"] in text
    missing = app.study_grid_markdown(tmp_path / "none.json")
    assert "No study results" in missing and "make study" in missing
    (tmp_path / "bad.json").write_text("{not json")
    assert "No study results" in app.study_grid_markdown(tmp_path / "bad.json")


def test_dataset_tabs_show_progress_until_the_analysis_is_ready(models, settings):
    from mae_hf.explorer import BackgroundAnalysis

    lab = app.Handlers(DigitLab(models, BackgroundAnalysis(models.dae, models.mae, settings)))  # never started
    status, *rest = lab.metrics()
    assert "Computing the dataset analysis" in status and rest == [None, None, None]
    assert lab.latent_space_if_ready(str(app.example_files()[0]), "mae_cls") == [gr.skip()] * 6
    assert "Computing" in lab.verdicts()
    assert lab.analysis_status()["ready"] is False


def test_bad_analysis_settings_are_shown_and_the_models_still_answer(models, monkeypatch):
    monkeypatch.setenv("MAE_HF_APP_N", "5")
    lab = app.Handlers(DigitLab(models))
    status, *rest = lab.metrics()
    assert "cannot run" in status and "MAE_HF_APP_N" in status and rest == [None, None, None]
    assert lab.analysis_status()["failed"]
    assert len(lab.reconstruct(str(app.example_files()[1]))) == 7


def test_attention_handler_on_the_current_digit(lab):
    example = str(app.example_files()[2])
    plain, masked, overlays, summary = lab.attention(example, 0.5, 0.5, 3, "own")
    assert plain.ndim == 3 and plain.shape[2] == 3 and plain.std() > 0
    assert not np.array_equal(plain, masked)  # the mask changes the attention maps
    assert "50%" in summary and "saliency inside hidden patches is 0" in summary
    *_, unmasked_summary = lab.attention(example, 0.5, 0.5, 3, "noise")  # the MAE sees everything under "noise"
    assert "0%: 0 of" in unmasked_summary
    with pytest.raises(gr.Error, match="no digit"):
        lab.attention(None)


def test_examples_are_real_mnist_test_digits_one_per_class():
    files = app.example_files()
    assert [p.stem.rsplit("-", 1)[-1] for p in files] == [str(d) for d in range(10)]
    test = load_image_dataset("mnist")["test"]
    for path in files:
        index, label = int(path.stem.split("-")[2]), int(path.stem.rsplit("-", 1)[-1])
        assert test[index]["label"] == label
        np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(test[index]["image"]))


def test_reconstruct_handler_outputs(lab):
    example = app.example_files()[7]
    digit, mae_in, mae_rec, mae_pasted, dae_in, dae_rec, table = lab.reconstruct(str(example), 0.5, 0.3, 1, "own")
    np.testing.assert_array_equal(digit, np.asarray(Image.open(example)))  # test digits reach the models unchanged
    for image in (mae_in, mae_rec, mae_pasted, dae_in, dae_rec):
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
    assert [row[0] for row in table] == ["MAE reconstruction", "MAE, visible patches pasted", "DAE reconstruction"]
    assert all(float(v) == float(v) for row in table for v in row[1:4])  # numbers, not placeholders


def test_handlers_turn_bad_images_into_user_errors(lab, tmp_path):
    with pytest.raises(gr.Error, match="blank"):
        lab.reconstruct(_png(tmp_path / "white.png", Image.new("L", (50, 50), 255)))
    with pytest.raises(gr.Error, match="canvas is empty"):
        lab.digit_from_sketch(None)
    with pytest.raises(gr.Error, match="Invalid setting|must be one of"):
        lab.reconstruct(str(app.example_files()[0]), corruption="blur")
    assert lab.reconstruct_if_ready(None, 0.75, 0.5, 0, "own") == [gr.skip()] * 7


def test_command_line_and_environment(monkeypatch):
    monkeypatch.setenv("MAE_HF_DAE", "some/dae")
    monkeypatch.setenv("PORT", "9001")
    args = app.parse_args(["--mae", "my-mae"])
    assert (args.dae, args.mae, args.port, args.share) == ("some/dae", "my-mae", 9001, False)
    monkeypatch.delenv("PORT")
    monkeypatch.delenv("MAE_HF_DAE")
    args = app.parse_args([])
    assert args.port == 7860 and args.dae.endswith("pretrained/dae-mnist") and args.mae.endswith("pretrained/mae-mnist")


def test_main_with_missing_models_says_what_was_tried(tmp_path, caplog):
    assert app.main(["--dae", str(tmp_path / "nope-dae"), "--mae", str(tmp_path / "nope-mae")]) == 2
    assert "nope-dae" in caplog.text and "nope-mae" in caplog.text and "make models" in caplog.text
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "--mae", str(tmp_path / "nope-mae")],
                          capture_output=True, text=True, timeout=120)  # `python app.py` stops before importing gradio
    assert done.returncode == 2 and "nope-mae" in done.stderr and "make models" in done.stderr


def test_app_constants_match_the_package():
    from mae_hf.app_backend import AUTHKEY_ENV, FEATURE_NAMES
    from mae_hf.cli import pretrained_dir
    from mae_hf.comparison import CORRUPTIONS

    assert {value: label for label, value in app.CORRUPTION_CHOICES} == CORRUPTIONS
    assert all(FEATURE_NAMES[value] == label for label, value in app.MAE_FEATURE_CHOICES)
    assert app.AUTHKEY_ENV == AUTHKEY_ENV
    assert app.bundled_model_dir() == pretrained_dir()


def test_model_sources_are_checked_without_loading_them(model_dirs, tmp_path, monkeypatch):
    dae, mae = map(str, model_dirs)
    assert app.check_model_source(dae, "--dae") is None and app.check_model_source(mae, "--mae") is None
    assert app.check_model_source(str(app.bundled_model_dir() / "mae-mnist"), "--mae") is None
    assert "holds a 'vit_mae' model, not a denoising" in app.check_model_source(mae, "--dae")  # swapped flags
    missing = app.check_model_source(str(tmp_path / "nope"), "--mae")
    assert str(tmp_path / "nope") in missing and "make models" in missing and "--mae" in missing
    (tmp_path / "empty").mkdir()
    assert "no config.json" in app.check_model_source(str(tmp_path / "empty"), "--dae")
    (tmp_path / "config-only").mkdir()
    config = json.loads((model_dirs[0] / "config.json").read_text())
    (tmp_path / "config-only" / "config.json").write_text(json.dumps(config))
    assert "no weights" in app.check_model_source(str(tmp_path / "config-only"), "--dae")
    (tmp_path / "cifar").mkdir()
    (tmp_path / "cifar" / "config.json").write_text(json.dumps(config | {"image_size": 32, "num_channels": 3}))
    assert "takes 32×32×3 images" in app.check_model_source(str(tmp_path / "cifar"), "--dae")
    monkeypatch.chdir(tmp_path)
    assert "nor a Hub id" in app.check_model_source("not/a/hub/id", "--dae")
    assert "HF_HUB_OFFLINE=1" in app.check_model_source("someone/uncached-mae", "--mae")  # the tests run offline


@pytest.mark.slow
def test_building_the_app_imports_neither_torch_nor_transformers(model_dirs):
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import app\n"
            f"app.build_demo(app.ModelProcess({str(model_dirs[0])!r}, {str(model_dirs[1])!r}))\n"
            "print(sorted(m for m in ('torch', 'transformers', 'mae_hf', 'datasets') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_handlers_wait_for_models_loading_in_the_background(model_dirs, models, settings):
    from mae_hf.explorer import BackgroundAnalysis

    loader = BackgroundModels(*model_dirs)
    backend = DigitLab(loader, settings)
    lab = app.Handlers(backend)
    status = lab.analysis_status()
    assert status["stage"] == "loading the models" and not status["ready"] and not status["failed"]
    assert "Loading the models" in lab.metrics()[0] and "Loading the models" in loader.status()
    example = str(app.example_files()[4])
    answer = {}
    waiting = threading.Thread(target=lambda: answer.update(out=lab.reconstruct(example, 0.5, 0.3, 2, "mask")))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not answer  # nothing can answer before the models are loaded
    loader.start()
    waiting.join(120)
    assert loader.ready and "Models loaded" in loader.status()
    expected = app.Handlers(DigitLab(models, settings)).reconstruct(example, 0.5, 0.3, 2, "mask")
    for got, want in zip(answer["out"], expected):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert isinstance(backend.analysis, BackgroundAnalysis) and backend.analysis.settings is settings  # made once loaded
    banner, summary = list(lab.watch_models())[-1]
    assert banner.visible is False and "loaded from" in summary


def test_models_that_fail_to_load_in_the_background_say_why(model_dirs, tmp_path):
    bad = tmp_path / "bad-dae"
    shutil.copytree(model_dirs[0], bad)
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    assert app.check_model_source(str(bad), "--dae") is None  # only loading can tell
    loader = BackgroundModels(bad, model_dirs[1]).start()
    lab = app.Handlers(DigitLab(loader))
    assert loader.wait(120) and loader.failed and str(bad) in loader.error
    with pytest.raises(gr.Error, match="bad-dae"):
        lab.reconstruct(str(app.example_files()[0]))
    status = lab.analysis_status()
    assert status["failed"] and "could not be loaded" in status["message"] and "bad-dae" in status["message"]
    banner, summary = list(lab.watch_models())[-1]
    assert banner.visible is True and "bad-dae" in banner.value and "bad-dae" in summary


def _analysis_env(monkeypatch, tmp_path) -> None:
    """A model process's own dataset analysis: on a few digits, cached in `tmp_path`."""
    monkeypatch.setenv("MAE_HF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MAE_HF_APP_N", "20")
    monkeypatch.setenv("MAE_HF_APP_N_TRAIN", "20")


@pytest.mark.slow
def test_model_process_answers_as_the_lab_in_this_process(model_dirs, models, tmp_path, monkeypatch):
    _analysis_env(monkeypatch, tmp_path)
    process = app.ModelProcess(*model_dirs)
    assert process.offline_status()["failed"] and "not running" in process.offline_status()["message"]
    lab = app.Handlers(process.start())
    try:
        starting = process.offline_status()  # importing torch takes seconds: nothing answers yet
        assert starting is not None and not starting["failed"] and "starting the model process" in starting["message"]
        status, *rest = lab.metrics()
        assert "starting the model process" in status and rest == [None, None, None]
        example = str(app.example_files()[6])
        expected = app.Handlers(DigitLab(models)).reconstruct(example, 0.5, 0.3, 2, "mask")
        answers = [None] * 4  # four requests at once while the process starts: each waits, then gets the answer
        threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, lab.reconstruct(example, 0.5, 0.3, 2,
                                                                                               "mask")))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        for answer in answers:
            for got, want in zip(answer, expected):
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert lab.models_status()["ready"] and process.offline_status() is None
        with pytest.raises(gr.Error, match="blank"):
            lab.reconstruct(_png(tmp_path / "white.png", Image.new("L", (50, 50), 255)))
        assert process.call("no_such_request")[0] == "error"
        process.process.kill()  # the model process dies: every request says so, and the app keeps serving
        process.process.wait()
        with pytest.raises(gr.Error, match="stopped with exit code"):
            lab.reconstruct(example)
        status = lab.models_status()
        assert status["failed"] and "stopped with exit code" in status["message"]
        assert "stopped with exit code" in lab.metrics()[0] and lab.analysis_status()["failed"]
    finally:
        process.close()
    assert process.process is None and not Path(process.address).exists()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"  # a zombie has ended
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_model_process_reports_models_it_cannot_load_and_ends_with_the_app(model_dirs, tmp_path, monkeypatch):
    _analysis_env(monkeypatch, tmp_path)
    bad = tmp_path / "bad-dae"
    shutil.copytree(model_dirs[0], bad)
    (bad / "model.safetensors").write_bytes(b"not safetensors")
    script = (
        f"import json, sys, time; sys.path.insert(0, {str(REPO)!r}); import app, gradio as gr\n"
        f"process = app.ModelProcess({str(bad)!r}, {str(model_dirs[1])!r}).start()\n"
        "lab = app.Handlers(process)\n"
        "try:\n    lab.reconstruct(str(app.example_files()[0]))\nexcept gr.Error as err:\n    error = err.message\n"
        "print(json.dumps({'pid': process.process.pid, 'error': error, 'status': lab.models_status()}), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        report = json.loads(next(line for line in parent.stdout if line.startswith("{")))  # after gradio's toasts
    finally:
        parent.kill()  # no chance to clean up: the model process must notice by itself
        parent.wait()
    assert "bad-dae" in report["error"]
    assert report["status"]["failed"] and "could not be loaded" in report["status"]["message"]
    for _ in range(300):
        if _gone(report["pid"]):
            break
        time.sleep(0.1)
    assert _gone(report["pid"]), "the model process outlived the app"


@pytest.fixture(scope="module")
def launched(model_dirs, tmp_path_factory):
    """`python app.py` on the test models (its analysis on `N_TEST` / `N_TRAIN` digits): (URL, log file)."""
    from gradio_client import Client

    tmp = tmp_path_factory.mktemp("launched")
    port = _free_port()
    env = dict(os.environ, MAE_HF_CACHE=str(tmp / "cache"), MAE_HF_APP_N=str(N_TEST), MAE_HF_APP_N_TRAIN=str(N_TRAIN))
    log = tmp / "app.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--dae", str(model_dirs[0]), "--mae",
                                    str(model_dirs[1]), "--port", str(port)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            assert process.poll() is None, log.read_text()
            try:
                Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_python_app_py_serves_the_page_and_answers_from_its_model_process(launched):
    from gradio_client import Client, handle_file

    url, log = launched
    client = Client(url, verbose=False)
    example = app.example_files()[9]
    out = client.predict(handle_file(str(example)), 0.75, 0.5, 0, "own", api_name="/reconstruct")
    np.testing.assert_array_equal(np.asarray(Image.open(out[0])), np.asarray(Image.open(example)))
    assert len(out[6]["data"]) == 3
    text = log.read_text()
    assert "the models are loading in their own process" in text and "Model process ready" in text, text


def test_readme_front_matter_configures_a_space():
    import yaml

    text = (REPO / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gr.__version__  # pinned to what the tests ran
    assert meta["python_version"] == "3.11" and (REPO / meta["app_file"]).is_file()


def test_space_requirements_match_the_package():
    import re
    import tomllib

    names = lambda lines: {re.split(r"[<>=\[ ;]", line.strip())[0].lower().replace("_", "-")  # noqa: E731
                           for line in lines if line.strip() and not line.strip().startswith(("#", "-"))}
    required = names((REPO / "requirements.txt").read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    package = names(project["dependencies"])
    # The Space provides gradio (the app extra); training-only packages are not needed to serve the app.
    assert required == package - {"accelerate", "tqdm"}
    assert names(project["optional-dependencies"]["app"]) == {"gradio"}
    torch_pin = re.search(r"TORCH_SPEC \?= (\S+)", (REPO / "Makefile").read_text()).group(1)
    assert torch_pin in (REPO / "requirements.txt").read_text().splitlines()


# --- launched on localhost, called through gradio_client ---------------------------------------------------------


@pytest.mark.slow
def test_every_endpoint_through_gradio_client(client, tmp_path):
    from gradio_client import handle_file

    example = app.example_files()[3]
    out = client.predict(handle_file(str(example)), 0.75, 0.5, 0, "mask", api_name="/reconstruct")
    assert len(out) == 7
    np.testing.assert_array_equal(np.asarray(Image.open(out[0])), np.asarray(Image.open(example)))
    assert all(Image.open(path).size == (112, 112) for path in out[1:6])
    assert out[6]["headers"][2] == "Output PSNR (dB)" and len(out[6]["data"]) == 3
    same_mask_in = [np.asarray(Image.open(p)) for p in (out[1], out[4])]
    np.testing.assert_array_equal(*same_mask_in)  # "same corruption": the DAE got exactly the MAE's masked input

    digit = client.predict(handle_file(_png(tmp_path / "bar.png", _bar_image())), api_name="/digit_from_upload")
    assert Image.open(digit).size == (28, 28)

    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[40:240, 130:150, 3] = 255  # a "1" drawn on a transparent canvas
    stroke = _png(tmp_path / "stroke.png", Image.fromarray(rgba))
    sketch = {"background": None, "layers": [handle_file(stroke)], "composite": handle_file(stroke)}
    digit = np.asarray(Image.open(client.predict(sketch, api_name="/digit_from_sketch")))
    assert digit.shape[:2] == (28, 28) and np.ptp(np.nonzero(digit)[0]) == 19


def _wait_until_ready(client, timeout: float = 240.0) -> dict:
    import time

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        status = client.predict(api_name="/analysis_status")
        assert not status["failed"], status["message"]
        if status["ready"]:
            return status
        time.sleep(1.0)
    raise AssertionError(f"The background analysis did not finish in {timeout:.0f} s: {status}")


def _numbers(rows: list[list[str]]) -> list[float]:
    return [float(tok) for row in rows for cell in row[1:] for tok in str(cell).replace(",", "").split()
            if tok.replace(".", "", 1).replace("-", "", 1).isdigit()]


@pytest.mark.slow
def test_background_analysis_fills_the_dataset_tabs(client, models, settings, mnist):
    from gradio_client import handle_file

    from mae_hf import dataset_to_tensors
    from mae_hf.explorer import BackgroundAnalysis

    status = _wait_until_ready(client)
    assert f"first {N_TEST}" in status["message"] and status["progress"] == 1.0

    message, psnr, ssim, table = client.predict(api_name="/metrics")
    assert f"{N_TEST}" in message
    for path in (psnr, ssim):
        image = np.asarray(Image.open(path))
        assert image.shape[0] > 200 and image.std() > 10  # a drawn figure, not a blank
    assert [row[:2] for row in table["data"]][0] == ["MAE", "masking (own)"] and len(table["data"]) == 4
    # mean ± std in every cell, except the masked-region PSNR under noise (nothing is masked there)
    assert len(_numbers(table["data"])) == 4 * 4 * 2 - 2 * 2
    assert [row[4] for row in table["data"]] == [table["data"][0][4], "—", table["data"][2][4], "—"]

    _, dae_hist, mae_hist, weights = client.predict(api_name="/weights")
    assert all(np.asarray(Image.open(p)).std() > 10 for p in (dae_hist, mae_hist))
    counts = {row[0]: int(row[2].replace(",", "")) for row in weights["data"]}
    assert counts["DAE"] > 1000 and counts["MAE"] > 1000
    assert all(0.0 <= float(row[3]) <= 1.0 for row in weights["data"])

    verdicts = client.predict(api_name="/verdicts")
    assert all(f"#### {h}:" in verdicts for h in ("H1", "H2", "H3")) and "holds" in verdicts

    example = app.example_files()[5]
    out = client.predict(handle_file(str(example)), "mae_mean", api_name="/latent_space")
    _, maps, gallery, placement, radii, measures = out
    assert np.asarray(Image.open(maps)).std() > 10
    coords = [(float(r[1]), float(r[2])) for r in placement["data"]]
    assert [r[0] for r in placement["data"]] == ["DAE bottleneck", "MAE mean patch token"]
    assert np.all(np.isfinite(coords))
    # the neighbours are real training digits: the image shown is the train digit its caption names
    train_x, train_y = dataset_to_tensors(mnist["train"].select(range(N_TRAIN)))
    assert len(gallery) == 16
    for item in gallery[:3] + gallery[-2:]:
        index = int(item["caption"].split("train ")[1].split(",")[0])
        shown = np.asarray(Image.open(item["image"]).convert("L"))[::DISPLAY_SCALE, ::DISPLAY_SCALE]
        np.testing.assert_array_equal(shown, np.round(train_x[index, 0].numpy() * 255))
        assert f"label {int(train_y[index])}" in item["caption"]
    assert {r[0] for r in radii["data"]} >= {"DAE bottleneck", "MAE CLS token", "raw pixels"}
    assert len(_numbers(radii["data"])) == 4 * len(radii["data"])
    raw = next(r for r in measures["data"] if r[0] == "raw pixels")
    assert raw[1] == "784" and 0.0 < float(raw[4]) <= 1.0  # the kNN baseline on pixels is a real accuracy

    # a second start with the same models, data and settings comes from the cache
    again = BackgroundAnalysis(models.dae, models.mae, settings).start()
    assert again.wait(60) and again.from_cache and again.seconds < 15


@pytest.mark.slow
def test_attention_endpoint_through_gradio_client(client):
    from gradio_client import handle_file

    plain, masked, overlays, summary = client.predict(handle_file(str(app.example_files()[8])), 0.75, 0.5, 0, "own",
                                                      api_name="/attention")
    images = [np.asarray(Image.open(p)) for p in (plain, masked, overlays)]
    assert all(im.std() > 10 for im in images) and not np.array_equal(images[0], images[1])
    assert "75%" in summary


def _huge_png(path: Path) -> str:
    ihdr = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)


@pytest.mark.slow
def test_bad_inputs_get_clear_messages_and_the_server_keeps_serving(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    buf = io.BytesIO()
    _bar_image().save(buf, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buf.getvalue()[:100])
    (tmp_path / "notes.png").write_text("not a picture")
    cases = {
        "all-white": (_png(tmp_path / "white.png", Image.new("L", (64, 64), 255)), "blank"),
        "all-black": (_png(tmp_path / "black.png", Image.new("RGB", (64, 64))), "blank"),
        "1x1": (_png(tmp_path / "one.png", Image.new("L", (1, 1), 128)), "blank"),
        "10000x10000": (_huge_png(tmp_path / "huge.png"), "too large: 10000×10000"),
        "text file": (str(tmp_path / "notes.png"), "is not an image"),
        "corrupt PNG": (str(tmp_path / "truncated.png"), "corrupt or truncated"),
    }
    for name, (path, message) in cases.items():
        for api_name in ("/reconstruct", "/digit_from_upload"):
            with pytest.raises(AppError, match=message):
                client.predict(handle_file(path), api_name=api_name)
    empty = _png(tmp_path / "empty.png", Image.new("RGBA", (280, 280)))
    with pytest.raises(AppError, match="canvas is empty"):
        client.predict({"background": None, "layers": [], "composite": handle_file(empty)}, api_name="/digit_from_sketch")
    with pytest.raises(AppError):
        client.predict(handle_file(str(app.example_files()[0])), 0.75, 0.5, 0, "blur", api_name="/reconstruct")

    # odd but valid: 16-bit grayscale and palette images are converted, and the server is still serving
    sixteen = Image.fromarray((255 - np.asarray(_bar_image())).astype(np.uint16) * 257)
    for image in (sixteen, _bar_image().convert("P")):
        out = client.predict(handle_file(_png(tmp_path / f"{image.mode}.png", image)), api_name="/reconstruct")
        assert Image.open(out[0]).size == (28, 28)


# --- a real browser ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (`apt-get install chromium`)")
def test_draw_a_stroke_in_chromium_and_see_both_reconstructions(launched):
    """In the app as `python app.py` runs it: the page's process and the model process."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(launched[0])
            canvas = page.locator("#sketchpad canvas").first
            expect(canvas).to_be_visible(timeout=30_000)
            box = canvas.bounding_box()
            x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
            # a "7": across the top, then down to the bottom left
            page.mouse.move(x0 + 0.3 * w, y0 + 0.25 * h)
            page.mouse.down()
            for t in np.linspace(0, 1, 12):
                page.mouse.move(x0 + (0.3 + 0.4 * t) * w, y0 + 0.25 * h)
            for t in np.linspace(0, 1, 16):
                page.mouse.move(x0 + (0.7 - 0.25 * t) * w, y0 + (0.25 + 0.5 * t) * h)
            page.mouse.up()
            page.locator("#reconstruct-drawing").click()
            metrics = page.locator("#metrics")
            expect(metrics).to_contain_text("DAE reconstruction", timeout=120_000)  # the models may be loading
            expect(metrics).to_contain_text("MAE, visible patches pasted")
            text = metrics.inner_text()
            numbers = [float(tok) for tok in text.split() if tok.replace(".", "", 1).isdigit()]
            assert len(numbers) >= 6, text
            results = page.locator("img[src*='image.png']")
            expect(results.nth(5)).to_be_visible(timeout=10_000)  # model input + five result images
            page.wait_for_function(  # every image decoded: the 28×28 input and the five 112×112 results
                "() => { const imgs = [...document.querySelectorAll(\"img[src*='image.png']\")];"
                " return imgs.length >= 6 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                timeout=10_000,
            )
            model_input = page.locator("#model-input img").bounding_box()
            assert model_input["width"] > 100 and model_input["height"] > 100  # shown enlarged, not 28 px
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # an analysis tab: the test-set maps with the drawn digit placed, and its training neighbours
            page.get_by_role("tab", name="Latent space").click()
            expect(page.locator("#latent-status")).to_contain_text("Computed on the first", timeout=240_000)
            page.get_by_role("button", name="Place the current digit").click()
            expect(page.locator("#neighbours img").nth(15)).to_be_visible(timeout=30_000)
            expect(page.locator("#measures-table")).to_contain_text("raw pixels")
            page.wait_for_function(
                "() => { const i = document.querySelector('#tsne-maps img'); return i && i.complete && i.naturalWidth > 0; }",
                timeout=10_000,
            )
            page.wait_for_function("() => !document.querySelector('.pending')", timeout=30_000)  # every event done
            page.screenshot(path=str(SCREENSHOT_LATENT), full_page=True)
        finally:
            browser.close()
