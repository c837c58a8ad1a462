"""Pure analysis of the autoencoders (any registered kind, `mae_hf.registry`): arrays/tensors in, arrays/dicts
out. Figures live in `mae_hf.plotting`, files in `mae_hf.report` (and the cache of `mae_hf.pipeline`).

- `reconstruction`: every model under its own and the other corruption; PSNR/SSIM per image.
- `latents`: feature sets (raw pixels, and each model's: DAE bottleneck, MAE CLS / mean-pooled / the study's
  masked-flattened).
- `clustering`: radii (t-SNE and original space, scale-free), silhouette, t-SNE + trustworthiness, kNN, probe.
- `readout`: the field's protocol on frozen features — weighted cosine kNN (k=20, T=0.07; k=200, T=0.1) over the
  whole training set, linear and low-label (1%, 10%) probes with C chosen on the validation split.
- `attention`: CLS attention per layer/head and rollout on the patch grid.
- `saliency`: |∂‖latent‖/∂pixel| for either model.
- `weights`: per-layer histograms and near-zero fractions.
- `verdicts`: the study's claims H1–H3 judged under each measure.
- `factorial`: the architecture × corruption grid of `mae-hf study` — paired t-intervals over seeds,
  architecture / corruption / interaction and simple effects, and a verdict per claim and measure.
"""

from .attention import attention_rollout, cls_attention_maps, rollout_cls_map, study_attention_heatmap, tokens_to_grid
from .clustering import (
    class_radii,
    fit_tsne,
    knn_accuracy,
    linear_probe_accuracy,
    scale_free_radii,
    silhouette,
    trustworthiness,
    tsne_from_coordinates,
    tsne_transform,
)
from .latents import (
    extract_dae_latents,
    extract_features,
    extract_mae_features,
    extract_mae_masked_flat,
)
from .readout import (
    READOUT_MEASURES,
    linear_probe,
    low_label_probe,
    readout_scores,
    weighted_knn_accuracy,
    weighted_knn_predict,
)
from .reconstruction import cross_table, evaluate_reconstructions, model_pairs, summarize_metrics
from .saliency import dae_saliency, latent_saliency, mae_saliency, model_saliency
from .verdicts import compute_verdicts
from .weights import layer_parameters, near_zero_fraction, near_zero_table, weight_histograms

__all__ = [
    "READOUT_MEASURES",
    "attention_rollout",
    "class_radii",
    "cls_attention_maps",
    "compute_verdicts",
    "model_pairs",
    "model_saliency",
    "cross_table",
    "dae_saliency",
    "evaluate_reconstructions",
    "extract_dae_latents",
    "extract_features",
    "extract_mae_features",
    "extract_mae_masked_flat",
    "fit_tsne",
    "knn_accuracy",
    "latent_saliency",
    "layer_parameters",
    "linear_probe",
    "linear_probe_accuracy",
    "low_label_probe",
    "mae_saliency",
    "near_zero_fraction",
    "near_zero_table",
    "readout_scores",
    "rollout_cls_map",
    "scale_free_radii",
    "silhouette",
    "study_attention_heatmap",
    "summarize_metrics",
    "tokens_to_grid",
    "trustworthiness",
    "tsne_from_coordinates",
    "tsne_transform",
    "weight_histograms",
    "weighted_knn_accuracy",
    "weighted_knn_predict",
]
