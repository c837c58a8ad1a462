"""Models as data: a third kind of model, registered from this file alone (no package file knows it), goes through
the evaluation engine, the report's tables, the scorecard and the app's endpoints like the two of the study."""

import json
import socket

import pytest
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

import app
from mae_hf import DAEConfig, DAEModel, build_mae
from mae_hf.registry import MODEL_KINDS, ModelKind, kind_of, register_model_kind

from .conftest import TINY_MAE


class PlainAEConfig(PretrainedConfig):
    model_type = "plain_ae_test"

    def __init__(self, image_size: int = 28, num_channels: int = 1, patch_size: int = 4, width: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.num_channels, self.patch_size, self.width = image_size, num_channels, patch_size, width


class PlainAE(PreTrainedModel):
    """An autoencoder trained without corruption: conv down to a 7×7 bottleneck and back up."""

    config_class = PlainAEConfig
    main_input_name = "pixel_values"

    def __init__(self, config: PlainAEConfig):
        super().__init__(config)
        c, w = config.num_channels, config.width
        self.down = nn.Sequential(nn.Conv2d(c, w, 3, 2, 1), nn.ReLU(), nn.Conv2d(w, 4, 3, 2, 1))
        self.up = nn.Sequential(nn.ConvTranspose2d(4, w, 2, 2), nn.ReLU(), nn.ConvTranspose2d(w, c, 2, 2))
        self.post_init()

    def _init_weights(self, module):
        pass  # PyTorch's default initialisation

    def encode(self, pixel_values):
        return self.down(pixel_values)

    def forward(self, pixel_values):
        return torch.sigmoid(self.up(self.encode(pixel_values)))


def _fresh(model, seed):
    torch.manual_seed(seed)
    return PlainAE(model.config).eval()


def _features(model, pixel_values, keys=None, seed=0, study_mask_ratio=0.75):
    with torch.no_grad():
        return {"ae": model.encode(pixel_values).flatten(1).numpy()}


AE = ModelKind(
    name="ae",
    label="AE",
    description="plain autoencoder (CNN, no corruption in training)",
    model_type="plain_ae_test",
    matches=lambda m: isinstance(m, PlainAE),
    load=lambda source: PlainAE.from_pretrained(source).eval(),
    build_like=_fresh,
    reconstruct=lambda m, corrupted: m(corrupted),
    latent=lambda m, x: m.encode(x),
    features=_features,
    feature_labels={"ae": "AE bottleneck"},
    placeable=("ae",),
    scorecard_features={"classifiers": "ae"},
    default_corruption="noise",
)


@pytest.fixture(scope="module")
def three_models(tmp_path_factory):
    """The DAE, the MAE and the plain AE (registered for this module only), saved as folders."""
    register_model_kind(AE)
    root = tmp_path_factory.mktemp("three")
    torch.manual_seed(0)
    DAEModel(DAEConfig()).save_pretrained(root / "dae")
    build_mae("mnist", seed=0, **TINY_MAE).save_pretrained(root / "mae")
    PlainAE(PlainAEConfig()).save_pretrained(root / "ae")
    yield {name: str(root / name) for name in ("dae", "mae", "ae")}
    del MODEL_KINDS["ae"]


def test_the_third_kind_is_in_the_report_tables_and_the_scorecard(three_models, tmp_path):
    from mae_hf.pipeline import DataSettings, ReportSettings
    from mae_hf.report import make_report

    data, settings = DataSettings(n=60, n_train=120), ReportSettings(n_attention=4, n_show=3, scorecard=True)
    result = make_report(three_models, data, tmp_path, settings, cache_dir=None, progress=False)
    assert kind_of(PlainAE(PlainAEConfig())).name == "ae"
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["reconstruction"]["models"] == ["dae", "mae", "ae"]
    assert set(m["reconstruction"]["ae"]) == {"noise", "mask"}
    assert "ae" in m["latents"] and m["latents"]["ae"]["dim"] == 4 * 7 * 7
    assert "ae" in m["weights"] and set(m["attention"]["saliency"]) == {"dae", "mae", "ae"}
    assert set(m["scorecard"]["ae"]["classifiers"]["train"]) == {"knn", "probe"}
    assert "verdicts" in m  # the study's two models are there too
    report = (tmp_path / "report.md").read_text()
    for words in ("AE on noisy digits (its own task)", "AE on masked digits", "AE bottleneck", "| AE | init |"):
        assert words in report, words
    assert (tmp_path / "weights_ae.png").is_file() and "ae" in result.weights


def test_the_third_kind_is_on_the_apps_endpoints(three_models):
    from gradio_client import Client, handle_file

    from mae_hf.app.service import ModelService
    from mae_hf.loading import load_models

    service = ModelService.loaded(load_models(three_models), analysis=False)
    digit = str(app.example_files(app.EXAMPLES_DIR)[3])
    out = service.reconstruct(digit, 0.75, 0.5, 0, "own")
    assert len(out) == 2 + 3 + 2 + 1  # DAE: input, output; MAE: input, output, pasted; AE: input, output; table
    assert "| AE reconstruction |" in out[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_demo(service)
    app.serve(demo, port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        answer = client.predict(handle_file(digit), 0.75, 0.5, 0, "own", api_name="/reconstruct")
        assert len(answer) == 8 and "AE reconstruction" in answer[-1]
        weights = client.predict(api_name="/weights")
        assert len(weights) == 1 + 3 + 1  # status, a histogram per model, the table
        info = client.view_api(return_format="dict", print_info=False)
        assert "/reconstruct" in info["named_endpoints"]
    finally:
        demo.close()
