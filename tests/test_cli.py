import argparse
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mae_hf.cli import build_parser, main


def test_info_lists_versions_sources_and_model_dir(capsys, tmp_path, monkeypatch):
    (tmp_path / "dae-mnist").mkdir()
    (tmp_path / "dae-mnist" / "config.json").write_text("{}")
    monkeypatch.setenv("MAE_HF_PRETRAINED", str(tmp_path))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("transformers", "torch", "mlxtend", "embedded, no network: mnist", str(tmp_path), "found: dae-mnist"):
        assert word in out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "mae_hf.cli", "info"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "MAE presets: mnist, cifar10" in result.stdout


def test_unknown_command_exits_2(capsys):

    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_mae_hf_keeps_opentsne_notes_off_the_console(caplog):
    """openTSNE logs a note at INFO for every map; between the report's progress lines they only got in the way."""
    from mae_hf.analysis.clustering import fit_tsne

    assert main(["info"]) == 0  # configures logging as every mae-hf command does
    with caplog.at_level(logging.INFO):
        fit_tsne(np.random.default_rng(0).random((60, 5)))
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("openTSNE")]


def _subcommands() -> dict:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: p for name, p in sub.choices.items() if name != "train"}  # train's --help is its own parser's


def test_every_subcommand_help_shows_its_defaults():
    """An option with a real default shows it in --help: argparse's own "(default: ...)", or the help's words where
    the default is computed (None: "the MAE's config")."""
    for name, p in _subcommands().items():
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
                continue
            assert "default" in (action.help or "") or f"(default: {action.default})" in text, (name, action.dest)


def test_report_and_study_flags_are_their_settings_fields(capsys):
    """`mae-hf report` and `mae-hf study` are built from their settings dataclasses, as training is: every field is
    a flag, so a field added is a flag with no CLI code."""
    from dataclasses import fields

    from mae_hf.pipeline import DataSettings, ReportSettings
    from mae_hf.study import StudySettings

    for command, types in (("report", (DataSettings, ReportSettings)), ("study", (StudySettings,))):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        for field in (f for t in types for f in fields(t)):
            assert f"--{field.name} " in text or f"--{field.name}," in text, (command, field.name)


def test_study_flags_fill_the_settings_over_the_quick_budgets(monkeypatch, capsys):
    import mae_hf.study

    seen = []

    def record(settings, *args, **kwargs):
        seen.append(settings)
        raise ValueError("recorded")

    monkeypatch.setattr(mae_hf.study, "run_study", record)
    argv = ["study", "--quick", "--epochs", "3", "--learning_rate", "vit=2e-3", "--vit_overrides", "hidden_size=16"]
    assert main(argv + ["--budget_steps", "2", "5"]) == 2
    s = seen[-1]
    assert (s.num_train_epochs, s.budget_epochs, s.budget_steps, s.n, s.n_train) == (3, [1, 3], [2, 5], 120, 300)
    assert s.learning_rate == {"vit": 2e-3, "cnn": 1e-2} and s.vit_overrides == {"hidden_size": 16}
    assert main(["study"]) == 2 and seen[-1] == mae_hf.study.StudySettings()  # no flag: the defaults
    with pytest.raises(SystemExit):
        main(["study", "--learning_rate", "vit"])
    assert "argument --learning_rate/--learning-rate: 'vit' is not key=value" in capsys.readouterr().err


def test_a_light_subcommand_does_not_import_torch():
    """The report's and the study's settings live in modules that import torch; their flags are added only when
    that subcommand runs, so `mae-hf answer` and `mae-hf --help` start at once."""
    code = "import sys; from mae_hf.cli import build_parser; build_parser('answer'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


class _Recorded:
    def __init__(self):
        self.calls = []

    def __call__(self, models, data, out, settings, **kwargs):
        self.calls.append({"models": models, "data": data, "out": out, "settings": settings, **kwargs})
        return SimpleNamespace(metrics={"timings_s": {"load": 1.0, "reconstruction": 2.0}})


def test_report_prints_a_clean_path_and_leaves_the_scorecard_to_its_flag(monkeypatch, capsys):
    """`--out report/` (the README's form) is printed as report/report.md; the scorecard runs only with
    --scorecard (make report passes it), so the default report stays fast."""
    import mae_hf.report

    record = _Recorded()
    monkeypatch.setattr(mae_hf.report, "make_report", record)
    assert main(["report", "--dae", "d", "--mae", "m", "--out", "report/"]) == 0
    out = capsys.readouterr().out
    assert "report/report.md" in out and "//" not in out and out.count("Report written") == 1
    assert record.calls[-1]["settings"].scorecard is False
    assert main(["report", "--dae", "d", "--mae", "m", "--scorecard", "--scorecard_n", "50"]) == 0
    assert record.calls[-1]["settings"].scorecard is True and record.calls[-1]["data"].scorecard_n == 50
    assert main(["report", "--dae", "d", "--mae", "m", "--model", "ae=a"]) == 0  # a model of any registered kind
    assert record.calls[-1]["models"] == {"dae": "d", "mae": "m", "ae": "a"}


def test_scorecard_options_without_the_scorecard_are_refused(tmp_path, caplog):
    code = main(["report", "--dae", "d", "--mae", "m", "--full_train", "mnist", "--out", str(tmp_path)])
    assert code == 2 and "add --scorecard" in caplog.text


def test_report_folder_is_ignored_by_git():
    """`mae-hf report --out report/` in a checkout writes nothing git would offer to commit."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", "report/report.md"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, "add /report/ to .gitignore"
