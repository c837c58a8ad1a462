"""The report's text: `report_document(metrics, meta)` builds a `Document` of headings, paragraphs, tables and
figures, rendered to Markdown (`report.md`) and to one self-contained HTML page (`report.html`)."""

import base64
import html
import re
from pathlib import Path

from ..answer import claim_answers
from ..labels import MEASURE_HELP
from ..registry import MODEL_KINDS, feature_label, model_label
from ..tables import (
    class_radius_table,
    digits_scored,
    fmt,
    latent_table,
    radius_table,
    reconstruction_table,
    verdict_summary,
    verdict_table,
    weights_table,
)

__all__ = ["Document", "report_document", "STUDY_NUMBERS"]

# The study's own numbers, quoted for context in the report text (not used in any computation).
STUDY_NUMBERS = {
    "tsne_radius": {"mae": (3.6, 11.6), "dae": (12.1, 21.1)},
    "original_radius": {"mae": (36.0, 45.0), "dae": (8.5, 10.7)},
}


class Document:
    """Blocks (headings, paragraphs, tables, images) rendered to Markdown and to self-contained HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows]))

    def img(self, filename: str, caption: str):
        self.blocks.append(("img", filename, caption))

    def ul(self, items: list[str]):
        self.blocks.append(("ul", list(items)))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append(
                    "\n".join(
                        ["| " + " | ".join(b[1]) + " |", "|" + " --- |" * len(b[1])]
                        + ["| " + " | ".join(r) + " |" for r in b[2]]
                    )
                )
            elif b[0] == "ul":
                out.append("\n".join(f"- {item}" for item in b[1]))
            else:
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _inline(text: str) -> str:
        t = html.escape(text)
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", t)

    def html(self, folder: Path) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{self._inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{self._inline(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{self._inline(c)}</th>" for c in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{self._inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
                body.append(
                    f"<div class='table'><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
                )
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{self._inline(item)}</li>" for item in b[1]) + "</ul>")
            else:
                data = base64.b64encode((folder / b[1]).read_bytes()).decode()
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                    f"<figcaption>{self._inline(b[2])}</figcaption></figure>"
                )
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
            ".table{overflow-x:auto;max-width:100%}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px}"
            "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:0.85em;color:#555}"
            "code{background:#f5f5f5;padding:0 3px}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>MAE vs DAE report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )


def report_document(metrics: dict, meta: dict) -> Document:
    """The report's text: the verdicts first, then each analysis with its tables and figures."""
    d = Document()
    wt = metrics["weights"]
    names = [k for k in wt if isinstance(wt[k], dict) and "trained" in wt[k]]  # the models, in order
    _header(d, metrics, meta, names)
    if "verdicts" in metrics:
        _verdicts_section(d, metrics, meta)
    _reconstruction_section(d, metrics, meta, names)
    _latent_section(d, metrics["settings"], metrics["latents"], names)
    if "attention" in metrics:
        _attention_section(d, metrics["attention"])
    _weights_section(d, wt, names)
    if "scorecard" in metrics:
        _scorecard_section(d, metrics, names)
    if metrics.get("learning_curves"):
        _learning_curves_section(d, metrics["learning_curves"])
    d.h(2, "Timings")
    d.table(["stage", "seconds"], [[k, f"{v:.2f}"] for k, v in metrics["timings_s"].items()])
    return d


def _header(d: Document, metrics: dict, meta: dict, names: list[str]) -> None:
    s = metrics["settings"]
    sources = meta.get("models") or {name: meta.get(name, "?") for name in names}
    d.h(1, " vs ".join(model_label(n) for n in names) + ": reconstruction, latent space, attention and weights")
    d.p(
        "; ".join(
            f"{model_label(n)}: `{sources.get(n, '?')}` (fingerprint `{metrics['models'].get(f'{n}_fingerprint')}`)"
            for n in names
        )
        + f". Data: `{meta['dataset']}`, split `{meta['split']}`, the first {s['n']} images; classifiers fit on "
        f"{s['n_train']} train images. Seed {s['seed']}. Every number is in `metrics.json`; per-image values in "
        "`per_image.csv`."
    )


def _verdicts_section(d: Document, metrics: dict, meta: dict) -> None:
    d.h(2, "Verdicts")
    d.p("In words (`mae-hf answer` adds the architecture × corruption study):")
    d.ul(list(claim_answers(metrics, models="these models").values()))
    d.p(
        "Each claim of the study, checked under every measure that bears on it, on the "
        f"{digits_scored(metrics['settings']['n'], meta['split'])}: whether these two models' numbers fall on the "
        "side the claim predicts. This is a comparison of these two models, one trained model of each method (one "
        "seed each), not of the methods: with one run per method there is no seed-to-seed spread, so no interval "
        "and no test. The methods are compared in the architecture × corruption study (docs/STUDY.md), whose "
        "verdicts rest on intervals over seeds."
    )
    for key, v in metrics["verdicts"].items():
        d.h(3, f"{key}: {v['claim']}")
        d.table(*verdict_table(v))
        d.p(verdict_summary(v))


def _reconstruction_section(d: Document, metrics: dict, meta: dict, names: list[str]) -> None:
    s, rc = metrics["settings"], metrics["reconstruction"]
    d.h(2, "1. Reconstruction quality")
    d.p(
        f"Every model on the same {s['n']} images, on [0, 1] with data range 1. Masking: {rc['mask_ratio']:.0%} of "
        f"patches (one mask shared by all models); noise: clamp(x + {rc['noise_factor']} · N(0, 1), 0, 1). Image i "
        "gets the mask and noise the model cards' evaluation gives test image i (`mae_hf.evaluation`). Under masking, "
        "whole-image scores are taken with the visible patches pasted back, for every model; a ViT on noisy input "
        f"runs with masking off. SSIM: {rc['ssim_settings']}. Each row names the digits it covers: a model card "
        "scores every test digit, so its figure for the same model differs a little from this one."
    )
    d.p(" ".join(MEASURE_HELP[k] for k in ("psnr", "ssim", "psnr_masked", "psnr_input")))
    d.img(
        "reconstructions.png",
        "Rows: the original; the masked input and each model's output on it (the visible patches pasted back, and "
        "the raw output of the model made for masking); the noisy input and each model's output on it. Column "
        "titles: PSNR (dB) of the first models, each under its own corruption.",
    )
    d.table(*reconstruction_table(rc, meta["split"]))
    d.img("psnr_hist.png", "Per-image PSNR, with the corrupted inputs' own PSNR.")
    d.img("ssim_hist.png", "Per-image SSIM.")
    dr = rc.get("data_range_check")
    if dr and {"dae", "mae"} <= set(names):
        _data_range_paragraph(d, dr)


def _learning_curves_section(d: Document, curves: dict) -> None:
    first = next(iter(curves.values()))[0]
    if first.get("split") == "validation":
        scored = (
            f"scored on the first {first['n_scored']:,} images of the training set's validation split "
            f"(`mae_hf.validation`), the classifiers fit on {first['n_fit']:,} of the other training images"
        )
    elif "split" in first:
        scored = f"scored on the first {first['n_scored']:,} images of the {first['split']} split"
    else:  # curves written before `mae-hf curve` recorded its split: they were scored on the test split
        scored = "scored on the first test images (written before `mae-hf curve` scored the validation split)"
    d.h(2, "6. Learning curves")
    d.p(
        f"Every checkpoint of each model's training run, {scored}: 5-NN and linear-probe accuracy (on the features "
        "its scorecard reads) and its own reconstruction PSNR, against the training images it had seen."
    )
    d.img("learning_curves.png", "Representation and reconstruction against the images seen (log scale).")


def _data_range_paragraph(d: Document, dr: dict) -> None:
    d.p(
        "Data range: the study's MAE images were in [-1, 1] and its DAE's in [0, 1]. The same MAE outputs mapped to "
        f"[-1, 1] give PSNR {dr['psnr_minus1_1_data_range_2']:.2f} dB with data range 2 (identical to "
        f"{dr['psnr_0_1_data_range_1']:.2f} dB on [0, 1]) but {dr['psnr_minus1_1_data_range_1']:.2f} dB if scored with "
        f"data range 1, and SSIM {dr['ssim_minus1_1_data_range_2']:.3f} vs {dr['ssim_0_1_data_range_1']:.3f} "
        "(SSIM's constants are not shift-invariant). Comparisons across models are only fair on one range."
    )


def _latent_section(d: Document, s: dict, lt: dict, names: list[str]) -> None:
    d.h(2, "2. Latent space")
    d.p(
        "Features: raw pixels (baseline), and each model's: "
        + "; ".join(feature_label(k) for k in lt if k != "raw_pixels")
        + ". A ViT's tokens with masking off, in spatial order; the study's masked-flattened MAE latent (only to "
        f"reproduce its table) is the output under {s['study_mask_ratio']:.0%} random masking with its shuffled "
        "tokens flattened, so feature j is a different patch in every image. t-SNE: openTSNE, PCA initialisation, "
        f"perplexity {s['tsne']['perplexity']}, seed {s['seed']}."
    )
    d.img("tsne.png", "t-SNE maps coloured by class.")
    if {"dae", "mae"} <= set(names):
        st = STUDY_NUMBERS
        d.p(
            f"The study's table: per-class radius in t-SNE space (it reported MAE {st['tsne_radius']['mae'][0]}–"
            f"{st['tsne_radius']['mae'][1]} vs DAE {st['tsne_radius']['dae'][0]}–{st['tsne_radius']['dae'][1]}; in "
            f"its original latent space the order reversed: MAE {st['original_radius']['mae'][0]:g}–"
            f"{st['original_radius']['mae'][1]:g} vs DAE {st['original_radius']['dae'][0]}–"
            f"{st['original_radius']['dae'][1]}). Ours, same measure:"
        )
    keys = (*(k for k in lt if k != "raw_pixels"), "raw_pixels")
    d.table(*class_radius_table(lt, "tsne_radius", keys))
    d.p(
        "A radius has the units of its space: t-SNE radii depend on the map's layout, original-space radii on each "
        "model's activation scale. The scale-free radius divides by the mean distance between class centroids of the "
        "same space; silhouette, kNN and linear-probe accuracy are scale-free too."
    )
    d.p(
        " ".join(
            MEASURE_HELP[k]
            for k in (
                "tsne_radius",
                "original_radius",
                "scale_free_radius",
                "silhouette",
                "trustworthiness",
                "knn_accuracy",
                "linear_probe_accuracy",
            )
        )
    )
    d.table(*radius_table(lt))
    d.table(*latent_table(lt))
    d.table(*class_radius_table(lt, "scale_free_radius", keys, digits=3))
    d.img(
        "radii.png", "Per-class radii: the study's t-SNE measure (left) and the scale-free latent-space radius (right)."
    )


def _attention_section(d: Document, at: dict) -> None:
    name = at.get("model", "mae")
    label = model_label(name)
    d.h(2, "3. Attention and saliency")
    d.p(
        f"{label}: attention from the CLS token per layer and head, and attention rollout (Abnar & Zuidema 2020: heads "
        "averaged, identity added for the residual path, rows renormalised, layers multiplied), on the patch grid, "
        'with masking off and under the shared mask (masked patches grey). The study\'s "attention heatmap" '
        "multiplied attention by the pixels, so it lights up wherever there is ink. Saliency = |∂‖latent‖/∂pixel| "
        "normalised to [0, 1] per image, for every model's latent."
    )
    d.img("attention_layers.png", "CLS attention per layer (rows) and head (columns), masking off; rollout at the end.")
    d.img("attention_layers_masked.png", "The same under the mask (masked patches grey).")
    d.img(
        "attention_saliency.png",
        "Overlays: rollout, rollout under the mask, the study's attention × pixels, each model's saliency, and "
        f"the {label}'s saliency under the mask.",
    )
    d.p(
        f"Share of each map's mass on patches with ink (mean pixel > {at['ink_threshold']}), over {at['n_images']} "
        f"images; ink covers {at['ink_area']:.3f} of the patches ({at['ink_area_visible']:.3f} of the visible ones "
        "under the mask), the share a map blind to content would give."
    )
    rows = [
        ["rollout (masking off)", fmt(at["rollout"]["ink_mass"])],
        ["rollout (masked; visible patches)", fmt(at["rollout"]["ink_mass_masked"])],
    ]
    rows += [[f"CLS attention, layer {i}", fmt(v)] for i, v in enumerate(at["cls_attention"]["ink_mass_per_layer"])]
    rows.append(["study: attention × pixels", fmt(at["study_heatmap"]["ink_mass"])])
    for m, v in at["saliency"].items():
        rows.append([f"{model_label(m)} saliency" + (" (masking off)" if m == name else ""), fmt(v["ink_mass"])])
    rows.append([f"{label} saliency (masked)", fmt(at["saliency"][name]["ink_mass_masked"])])
    d.table(["map", "ink mass"], rows)
    d.p(
        f"{label} saliency inside masked patches (must be 0: the encoder never sees them): "
        f"max {at['saliency'][name]['max_in_masked_patches']:.3g}."
    )


def _weights_section(d: Document, wt: dict, names: list[str]) -> None:
    d.h(2, "4. Weights")
    d.p(
        f"Near-zero: |w| < {wt['eps_abs']} (absolute) and |w| < {wt['eps_rel']} × the layer's std (relative), over "
        'conv/linear weight tensors (biases, norms, tokens and the fixed position tables excluded). "Init" is the '
        f"same architecture re-initialised with seed {wt['init_seed']} (each model kind's own initialisation: "
        "PyTorch's default for the DAE's convolutions, the original MAE's for the ViT), so a difference is judged "
        "against where training started."
    )
    d.table(*weights_table(wt))
    rows = []
    for name in names:
        for layer, e in wt[name]["trained"]["layers"].items():
            i = wt[name]["init"]["layers"][layer]
            rows.append(
                [
                    model_label(name),
                    f"`{layer}`",
                    f"{e['n']:,}",
                    f"{fmt(i['near_zero_fraction']['absolute'], 4)} → {fmt(e['near_zero_fraction']['absolute'], 4)}",
                    f"{fmt(i['near_zero_fraction']['relative'], 4)} → {fmt(e['near_zero_fraction']['relative'], 4)}",
                    f"{i['std']:.4f} → {e['std']:.4f}",
                ]
            )
    d.table(
        ["model", "layer", "weights", "absolute (init → trained)", "relative (init → trained)", "std (init → trained)"],
        rows,
    )
    for name in names:
        d.img(
            f"weights_{name}.png",
            f"{model_label(name)} weight histograms per layer, trained (filled) vs init (outline).",
        )


def _scorecard_section(d: Document, metrics: dict, names: list[str]) -> None:
    sc, s = metrics["scorecard"], metrics["settings"]
    d.h(2, "5. Scorecard")
    sets = ", ".join(f"{v:,} digits (`{k}`)" for k, v in sc["train_sets"].items())
    d.p(
        f"On the first {sc.get('n_test', s['n']):,} test digits; the 5-NN and the linear probe (standardised features, logistic "
        f"regression) are fit on {sets}. Features with masking off, in spatial order."
    )
    rows = [
        ["raw pixels", train, fmt(c["knn"]), fmt(c["probe"])] for train, c in sc["raw_pixels"]["classifiers"].items()
    ]
    for name in names:
        features = MODEL_KINDS[name].scorecard_features if name in MODEL_KINDS else {"classifiers": name}
        for key, feature_set in features.items():
            for train, c in sc[name].get(key, {}).items():
                rows.append([feature_label(feature_set), train, fmt(c["knn"]), fmt(c["probe"])])
    d.table(["features", "fit on", "5-NN accuracy", "linear-probe accuracy"], rows)
    own = []
    for name in names:
        c = sc[name]
        if "psnr_masked_0.75" in c:
            own.append(f"{model_label(name)} masked-region PSNR at mask ratio 0.75: {fmt(c['psnr_masked_0.75'], 2)} dB")
        if "psnr_noisy_0.5" in c:
            own.append(
                f"{model_label(name)} PSNR from noise std 0.5: {fmt(c['psnr_noisy_0.5'], 2)} dB (SSIM "
                f"{fmt(c['ssim_noisy_0.5'], 3)})"
            )
    d.p("Each under its own corruption (means over images): " + "; ".join(own) + ".")
    for name in names:
        if sc[name].get("sweep"):
            label = model_label(name)
            d.p(
                f"The {label} at every mask ratio: PSNR over all masked pixels of all digits (pooled), beside predicting "
                "black and predicting the training digits' mean image on the same pixels; the margin is over the "
                "better baseline."
            )
            d.table(
                [
                    "mask ratio",
                    f"{label}, pooled (dB)",
                    f"{label}, mean per digit (dB)",
                    "black (dB)",
                    "mean image (dB)",
                    "margin (dB)",
                ],
                [
                    [
                        f"{r['mask_ratio']:.2f}",
                        fmt(r["psnr_masked_pooled"], 2),
                        fmt(r["psnr_masked_mean"], 2),
                        fmt(r["black"], 2),
                        fmt(r["mean_image"], 2),
                        fmt(r["margin"], 2),
                    ]
                    for r in sc[name]["sweep"]
                ],
            )
