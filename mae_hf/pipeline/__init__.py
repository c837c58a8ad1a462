"""The analysis layer the report, the app and the study share: which images are analysed and their decoding
(`data`), the one on-disk cache of computed arrays and its fingerprints (`cache`), and every analysis of
`mae_hf.analysis` on a set of models as numbers and arrays (`run`: `run_analysis` → `AnalysisResult`). Pure apart
from the cache: no figures, no files (`mae_hf.report` writes those; the app shows them).
"""

from .cache import (
    DEFAULT_CACHE_DIR,
    AnalysisCache,
    array_fingerprint,
    model_fingerprint,
    source_fingerprint,
    to_jsonable,
)
from .data import DataSettings, load_analysis_data
from .run import STAGES, AnalysisResult, ReportSettings, compute_latent_maps, init_models, run_analysis

__all__ = [
    "DEFAULT_CACHE_DIR",
    "STAGES",
    "AnalysisCache",
    "AnalysisResult",
    "DataSettings",
    "ReportSettings",
    "array_fingerprint",
    "compute_latent_maps",
    "init_models",
    "load_analysis_data",
    "model_fingerprint",
    "run_analysis",
    "source_fingerprint",
    "to_jsonable",
]
