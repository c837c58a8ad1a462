"""`mae-hf study`: the architecture × corruption grid, trained for several seeds, analysed at several training
budgets from the checkpoints of each run, aggregated.

The study compares a ViT trained with patch masking (the MAE) against a CNN trained with Gaussian noise (the DAE),
so a difference could come from either factor. The grid adds the two missing cells — a ViT trained on noisy images
(masking off) and the DAE's CNN trained on masked images — trains all four through the one training loop on the same
data and budget for every seed, analyses each run at every budget the same way, and splits every difference into
an architecture effect, a corruption effect and their interaction (and, where they cross, the simple effects), per
budget, with paired t-intervals over seeds; a budget with fewer than three seeds gets numbers and no verdict.

- `run`: `run_study` (`mae-hf study`); `git`: committing each analysis as it is written.
- `grid`: cells (entries: `register_cell`), settings, budgets, training a run (skipped when done, resumed from its
  checkpoints).
- `measure`: every measure of one model, and of every budget of one run (one `.npz` per run, committed).
- `aggregate`: intervals over seeds, effects and verdicts (with their sentences) per budget; where each verdict
  starts.
- `page`: `study.md`, `study.json`, figures.

Layout: `--out` holds the runs (`runs/{cell}/seed{k}/`, model folders with cards and checkpoints; not committed);
`--results` holds the analyses (`runs/{cell}-seed{k}.npz`) and the page (committed). A rerun skips every run whose
analysis is in `--results`, even on a machine without the runs, and resumes an interrupted training from its last
checkpoint.
"""

from .aggregate import aggregate
from .git import commit_file
from .grid import QUICK, STUDY_CELLS, StudyCell, StudySettings, register_cell
from .page import STUDY_FILES, study_markdown
from .run import run_study, settings_from_args

__all__ = [
    "aggregate",
    "STUDY_CELLS",
    "StudyCell",
    "register_cell",
    "QUICK",
    "STUDY_FILES",
    "StudySettings",
    "commit_file",
    "run_study",
    "settings_from_args",
    "study_markdown",
]
