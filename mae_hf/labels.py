"""The words the report, the study and the app show for each corruption, feature set and measure: defined once,
here, without importing torch (the app builds its page from them before the models load)."""

__all__ = [
    "CORRUPTION_LABELS",
    "COMPARE_MODE_VALUES",
    "compare_modes",
    "pair_label",
    "MEASURE_HELP",
    "MEASURE_LABELS",
    "CLAIM_DIRECTION_LABELS",
    "CORRUPTED",
]

# Each corruption, as a student reads it.
CORRUPTION_LABELS = {
    "mask": "patch masking (hidden 4×4 patches)",
    "noise": "Gaussian noise on every pixel",
}
# The app's choice of what each model is given; "own" = each model's own corruption.
COMPARE_MODE_VALUES = ("own", "mask", "noise")
CORRUPTION_SHORT = {"mask": "patch mask", "noise": "Gaussian noise"}


def compare_modes(own: dict[str, str]) -> list[tuple[str, str]]:
    """The app's choices of what each model is given, `(label, value)`, for models whose own corruptions are `own`
    (`{model name: "mask" | "noise"}`): "Each its own (MAE: patch mask, DAE: Gaussian noise)", ..."""
    from .registry import model_label

    every = "both" if len(own) == 2 else "all"
    each = ", ".join(f"{model_label(m)}: {CORRUPTION_SHORT[c]}" for m, c in own.items())
    return [
        (f"Each its own ({each})", "own"),
        (f"Same patch mask for {every}", "mask"),
        (f"Same Gaussian noise for {every}" + (" (a ViT unmasked)" if "mask" in own.values() else ""), "noise"),
    ]


# What each corruption makes of an image, in a pair's label ("MAE on masked digits").
CORRUPTED = {"mask": "masked", "noise": "noisy"}


def pair_label(model: str, corruption: str, own: bool, noun: str = "digits") -> str:
    """A (model, corruption) pair as the metrics tables and histograms name it: "MAE on masked digits (its own
    task)", with the model's short name (`model`: its registry key or label)."""
    from .registry import model_label

    return f"{model_label(model)} on {CORRUPTED[corruption]} {noun}" + (" (its own task)" if own else "")


# Two lines a student can follow, shown where each measure is shown.
MEASURE_HELP = {
    "psnr": "PSNR (dB): how close the output is to the clean digit, 10·log10(1 / mean squared error); higher is "
    "better, +3 dB halves the error.",
    "ssim": "SSIM: structural similarity with the clean digit (local contrast and structure), 1 = identical.",
    "psnr_masked": "Masked-region PSNR: PSNR over the hidden patches only, where the model had to invent the content.",
    "psnr_input": "Input PSNR: the corrupted input's own PSNR, so the gain of the model is visible.",
    "tsne_radius": "t-SNE radius: mean distance of a class's digits to their centre in the 2-D t-SNE map (the "
    "study's measure; it depends on the map's layout).",
    "original_radius": "Original-space radius: the same distance in the features themselves (depends on the "
    "model's scale).",
    "scale_free_radius": "Scale-free radius: the original-space radius divided by the mean distance between class "
    "centres; lower = tighter classes, comparable across models.",
    "silhouette": "Silhouette: how much closer a digit is to its own class than to the nearest other class, "
    "from -1 to 1; higher is better.",
    "trustworthiness": "Trustworthiness: how many neighbours in the t-SNE map are real neighbours in the features "
    "(1 = the map invents none).",
    "knn_accuracy": "5-NN accuracy: test digits classified by their 5 nearest training digits in the features.",
    "linear_probe_accuracy": "Linear-probe accuracy: a logistic regression fit on training features, scored on "
    "test features: is the class linearly readable?",
    "near_zero": "Near-zero weights: share of weights with |w| below a threshold (absolute, or relative to the "
    "layer's spread), trained vs the same network at initialisation.",
}
# Each measure's name as tables and sentences show it, for the report's verdicts (`mae_hf.analysis.verdicts`) and
# the study's (`mae_hf.analysis.factorial.MEASURES`); the keys stay in metrics.json and study.json.
MEASURE_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "psnr_masked": "masked-region PSNR (dB)",
    "psnr_input": "input PSNR (dB)",
    "psnr_noisy": "PSNR on the same noisy images (dB)",
    "tsne_radius": "t-SNE radius (the study's measure)",
    "original_radius": "radius in the features",
    "scale_free_radius": "scale-free radius",
    "silhouette": "silhouette",
    "trustworthiness": "t-SNE trustworthiness",
    "knn_accuracy": "5-NN accuracy",
    "linear_probe_accuracy": "linear-probe accuracy",
    "probe_accuracy": "linear-probe accuracy",
    "near_zero_fraction_absolute": "near-zero weights, absolute threshold",
    "near_zero_fraction_relative": "near-zero weights relative to the layer's spread",
    "near_zero_fraction_absolute_change_from_init": "near-zero weights gained in training, absolute threshold",
    "near_zero_fraction_relative_change_from_init": "near-zero weights gained in training, relative threshold",
    "near_zero_absolute": "near-zero weights, absolute threshold",
    "near_zero_relative": "near-zero weights relative to the layer's spread",
    "near_zero_relative_vs_init": "near-zero weights gained in training, relative threshold",
    "knn_cosine_k20": "weighted cosine 20-NN accuracy",
    "knn_cosine_k200": "weighted cosine 200-NN accuracy",
    "linear_probe": "validation-tuned linear-probe accuracy",
    "linear_probe_10pct": "linear-probe accuracy, 10% of the labels",
    "linear_probe_1pct": "linear-probe accuracy, 1% of the labels",
}
# What a claim predicts for one measure (the verdict rows' `claim`), in words.
CLAIM_DIRECTION_LABELS = {"mae < dae": "MAE lower", "mae > dae": "MAE higher", "dae > mae": "DAE higher"}
