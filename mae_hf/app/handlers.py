"""The page's handlers: plain functions over a `ModelService`, each turning its answer into gradio's terms — an
`AppError` into a `gr.Error` (its title, one log line, no traceback), a request made while the models load into a
toast and then the answer, the answer into `{component: value}` for the outputs it names (`mae_hf.app.outputs`; the
others stay as they are)."""

import logging
import time

import gradio as gr

from .outputs import PageOutputs
from .service import AppError, ModelService

logger = logging.getLogger(__name__)

__all__ = ["Handlers", "SERVER_ERROR"]

SERVER_ERROR = "The server could not answer this request: an error on its side, which it logged. Please try again."


def _refuse(message: str, title: str):
    """Refuse a request: one log line, and `gr.Error` (no traceback) with the message for the caller."""
    if title != "Server error":
        logger.info("Request refused (%s): %s", title, message)
    raise gr.Error(message, title=title, print_exception=False)


class Handlers:
    """The handlers of every tab; the public ones are the app's API (`api_name`), documented on each. They fill the
    output components that each tab puts in `outputs` as it builds them."""

    def __init__(self, service: ModelService):
        self.service = service
        self.outputs = PageOutputs()

    def _run(self, method, *args):
        """`method(*args)`; an `AppError` becomes a `gr.Error` with its message (one log line), anything else (a bug
        of ours) a `gr.Error` saying so, logged with its traceback: the caller always gets a message, never an
        exception's internals."""
        try:
            return method(*args)
        except AppError as err:
            message, title = str(err), err.title
        except Exception:  # noqa: BLE001 - see the docstring
            logger.exception("The request failed")
            message, title = SERVER_ERROR, "Server error"
        # Raised outside the `except`, so the gr.Error carries no chain back to the refused request's frames: gradio
        # keeps the errors it reports, and a chained one kept each refused upload's decoded pixels alive for good.
        _refuse(message, title)

    def _wait_for_models(self) -> None:
        status = self.service.status()
        if not status["ready"] and not status["failed"]:
            gr.Info(
                "The models are still loading (the app has just started): the answer comes as soon as they are "
                "ready, in a few seconds.",
                duration=6,
                title="Loading the models",
            )

    # -- the current digit -----------------------------------------------------------------------------------------

    def digit_from_sketch(self, sketch):
        """The drawing on the canvas → the model input as the dataset profile prepares it (uint8). A canvas that was
        just cleared (nothing in it at all) leaves the current picture as it is."""
        if sketch is None or not (sketch.get("composite") or sketch.get("background") or sketch.get("layers")):
            return gr.skip()
        return self._run(self.service.digit, sketch)

    def digit_from_upload(self, image):
        """An uploaded picture (any size or mode) → the model input as the dataset profile prepares it (uint8)."""
        if image is None:
            return gr.skip()
        return self._run(self.service.digit, image)

    def reconstruct(
        self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0, corruption: str = "own"
    ):
        """
        Corrupt the picture and reconstruct it with every model.

        `image`: a picture (one at the models' size is taken as formatted like the training data); `corruption`:
        "own" (each model under its own corruption: the MAE masked, the DAE noised), "mask" or "noise" (the same
        corruption for all). Returns, for each model, its input and reconstruction (and for the MAE its visible
        patches pasted back; PNGs enlarged 4×, hidden patches in blue), then the PSNR/SSIM table (Markdown). Called
        while the models are still loading, it waits for them.
        """
        noun = self.service.profile.noun
        if image is None:
            _refuse(f"There is no {noun} yet: draw, upload or pick one.", f"No {noun}")
        self._wait_for_models()
        images, table = self._run(self.service.reconstruct_by_model, image, mask_ratio, noise_factor, seed, corruption)
        return self.outputs.reconstruct.fill(images=images, table=table)

    def reconstruct_if_digit(self, image, mask_ratio, noise_factor, seed, corruption):
        """The page's reconstruction after the picture or a setting changed: nothing while there is none."""
        if image is None:
            return gr.skip()  # every output stays as it is
        return self.reconstruct(image, mask_ratio, noise_factor, seed, corruption)

    def attention(
        self, image, mask_ratio: float = 0.75, noise_factor: float = 0.5, seed: int = 0, corruption: str = "own"
    ):
        """
        The picture's MAE CLS attention per layer and head and its rollout (masking off, and under the Reconstruct
        tab's mask for this seed), and every model's saliency: two attention figures, the overlay row (PNGs) and a
        Markdown summary. `noise_factor` keeps the inputs those of `/reconstruct` (saliency is taken on the clean
        picture).
        """
        noun = self.service.profile.noun
        if image is None:
            _refuse(f"There is no {noun} yet: draw, upload or pick one on the Reconstruct tab.", f"No {noun}")
        self._wait_for_models()
        plain, masked, overlays, summary = self._run(self.service.attention, image, mask_ratio, seed, corruption)
        return self.outputs.attention.fill(plain=plain, masked=masked, overlays=overlays, summary=summary)

    def attention_if_digit(self, image, mask_ratio, noise_factor, seed, corruption):
        """`attention` when a picture is in place (opening the tab), else leave the outputs as they are."""
        if image is None:
            return gr.skip()
        return self.attention(image, mask_ratio, noise_factor, seed, corruption)

    def latent_space(self, image=None, second: str | None = None):
        """
        The t-SNE maps of the test images (the first model's features, e.g. the DAE bottleneck, and `second`, e.g.
        "mae_cls", "mae_mean" or "raw_pixels"; one PNG each), the picture placed into both as a star when given,
        its nearest training images, and the placement, radius and measure tables (Markdown). Before the dataset
        analysis is done: its status and empty outputs.
        """
        status, first, second_map, neighbours, placement, radii, measures = self._run(
            self.service.latent_space, image, second
        )
        return self.outputs.latent.fill(
            status=status,
            first_map=first,
            second_map=second_map,
            neighbours=neighbours,
            placement=placement,
            radii=radii,
            measures=measures,
        )

    def latent_space_if_ready(self, image, second):
        """The Latent tab after the picture changed: nothing while the analysis is running."""
        if not self.service.analysis_status()["ready"]:
            return gr.skip()
        return self.latent_space(image, second)

    # -- the test set and the models -------------------------------------------------------------------------------

    def analysis_status(self) -> dict:
        """The background analysis: `{"ready", "failed", "progress" (0–1), "stage", "message"}`."""
        return self.service.analysis_status()

    def metrics(self):
        """Test-set PSNR and SSIM histograms of every model under both corruptions, and the summary table (status
        Markdown, two PNGs, a Markdown table; None until the analysis is ready)."""
        status, psnr, ssim, table = self._run(self.service.metrics)
        return self.outputs.metrics.fill(status=status, psnr=psnr, ssim=ssim, table=table)

    def weights(self):
        """Per-layer weight histograms (trained vs init) of every model and the near-zero table (status Markdown, a
        PNG per model, a Markdown table; None until the analysis is ready)."""
        status, *histograms, table = self._run(self.service.weights)
        return self.outputs.weights.fill(
            status=status, histograms=dict(zip(self.service.names, histograms, strict=True)), table=table
        )

    def verdicts(self) -> str:
        """The study's claims H1–H3 with the verdict under each measure, as Markdown (the status until ready)."""
        return self._run(self.service.verdicts)

    def refresh(self, image, second):
        """Timer tick: the dataset tabs, filled in (and the timer stopped) once the analysis is over."""
        status, o = self.service.analysis_status(), self.outputs
        if not (status["ready"] or status["failed"]):
            message = status["message"]
            shown = (o.metrics.status, o.latent.status, o.weights.status, o.verdicts)
            return {**dict.fromkeys(shown, message), o.timer: gr.Timer(active=True)}
        return {
            **self.metrics(),
            **self.latent_space(image, second),
            **self.weights(),
            o.verdicts: self.verdicts(),
            o.timer: gr.Timer(active=False),
        }

    def watch_models(self):
        """Page load: the model-loading banner until the models are loaded (then hidden, or why they could not be),
        and the About tab's model summary once they are there."""
        status, o = self.service.status(), self.outputs
        while not status["ready"] and not status["failed"]:
            yield {o.banner: gr.Markdown(status["message"], visible=True)}
            time.sleep(0.5)
            status = self.service.status()
        yield {
            o.banner: gr.Markdown(status["message"], visible=status["failed"]),
            o.summary: self.service.model_summary(),
        }
