"""Train the DAE or the MAE: `accelerate launch train_accelerate.py --model {dae,mae} --output_dir DIR [...]`.

argparse (`HfArgumentParser` over `TrainingConfig` + `RunArgs`) → `mae_hf.training.training_function`; see `--help`
and docs/training.md. Also runs as `python train_accelerate.py ...` and `mae-hf train ...`.
"""

import sys

from mae_hf.training.arguments import main

if __name__ == "__main__":
    sys.exit(main(prog="train_accelerate.py"))
