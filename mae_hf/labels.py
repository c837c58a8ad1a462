"""The words the report, the study and the app show for each corruption, feature set and measure: defined once,
here, without importing torch (the app builds its page from them before the models load)."""

__all__ = [
    "CORRUPTION_LABELS",
    "COMPARE_MODES",
    "FEATURE_LABELS",
    "FEATURE_SETS",
    "PLACEABLE_FEATURES",
    "MEASURE_HELP",
    "MEASURE_LABELS",
    "CLAIM_DIRECTION_LABELS",
    "PAIR_LABELS",
]

# Each corruption, as a student reads it.
CORRUPTION_LABELS = {
    "mask": "patch masking (hidden 4×4 patches)",
    "noise": "Gaussian noise on every pixel",
}
# The app's choice of what each model is given: (label, value); "own" = each model's own corruption.
COMPARE_MODES = [
    ("Each its own (MAE: patch mask, DAE: Gaussian noise)", "own"),
    ("Same patch mask for both", "mask"),
    ("Same Gaussian noise for both (MAE unmasked)", "noise"),
]
# (model, corruption) pairs as the metrics tables and histograms name them.
PAIR_LABELS = {
    ("mae", "mask"): "MAE on masked digits (its own task)",
    ("mae", "noise"): "MAE on noisy digits",
    ("dae", "noise"): "DAE on noisy digits (its own task)",
    ("dae", "mask"): "DAE on masked digits",
}
# Feature sets of `mae_hf.analysis.latents`, by key.
FEATURE_SETS = ("raw_pixels", "dae", "mae_cls", "mae_mean", "mae_masked_flat")
FEATURE_LABELS = {
    "raw_pixels": "raw pixels (baseline)",
    "dae": "DAE bottleneck",
    "mae_cls": "MAE CLS token",
    "mae_mean": "MAE mean patch token",
    "mae_masked_flat": "MAE 75% masked, flattened (the study's way)",
}
# Feature sets a new digit can be placed into: deterministic, so one digit always lands on the same point (the
# study's masked-flattened latent depends on a random mask).
PLACEABLE_FEATURES = ("dae", "mae_cls", "mae_mean", "raw_pixels")
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
    "psnr_noisy": "PSNR on the same noisy digits (dB)",
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
}
# What a claim predicts for one measure (the verdict rows' `claim`), in words.
CLAIM_DIRECTION_LABELS = {"mae < dae": "MAE lower", "mae > dae": "MAE higher", "dae > mae": "DAE higher"}
