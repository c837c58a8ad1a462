"""The analysis report: every analysis of `mae_hf.analysis` on the models given, as figures, tables and text, over
the shared analysis layer (`mae_hf.pipeline`: the images, the cache, `run_analysis`) and its tables (`mae_hf.tables`).

- `document`: the report's text, to Markdown and self-contained HTML.
- `writer`: `make_report` (what `mae-hf report` runs) and `write_report`.
"""

from .writer import REPORT_FILES, make_report, report_figures, write_report

__all__ = ["REPORT_FILES", "make_report", "report_figures", "write_report"]
