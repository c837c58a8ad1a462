"""The analysis report: every analysis of `mae_hf.analysis` on both models, as numbers, tables, figures and text.

- `cache`: the one `AnalysisCache` (latents, t-SNE maps, decoded data, whole results) and fingerprints.
- `data`: the analysed images and the classifiers' training images.
- `pipeline`: `run_analysis` → `AnalysisResult`, pure apart from the cache (the app runs it too).
- `tables`: the tables both the report and the app show.
- `document`: the report's text, to Markdown and self-contained HTML.
- `writer`: `make_report` (what `mae-hf report` runs) and `write_report`.
"""

from .cache import DEFAULT_CACHE_DIR, AnalysisCache, array_fingerprint, model_fingerprint, to_jsonable
from .data import load_report_data
from .pipeline import STAGES, AnalysisResult, ReportSettings, compute_latent_maps, init_models, run_analysis
from .writer import REPORT_FILES, make_report, report_figures, write_report

__all__ = [
    "DEFAULT_CACHE_DIR",
    "REPORT_FILES",
    "STAGES",
    "AnalysisCache",
    "AnalysisResult",
    "ReportSettings",
    "array_fingerprint",
    "compute_latent_maps",
    "init_models",
    "load_report_data",
    "make_report",
    "model_fingerprint",
    "report_figures",
    "run_analysis",
    "to_jsonable",
    "write_report",
]
