"""The package as a user installs it: a wheel (not an editable install) in a fresh virtual environment outside the
repository, with `mae-hf info`, `mae-hf train` (its model card comes from the templates shipped in the wheel) and
`mae-hf report`. The new environment borrows the third-party packages of this one (a `.pth` file), never `mae_hf`.
"""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import TINY_MAE

REPO = Path(__file__).resolve().parent.parent


def _run(cmd, cwd, timeout=600, **env):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": "",
        **env,
    }
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel, and the build's output with the build backend's own messages (pip --verbose)."""
    out = tmp_path_factory.mktemp("wheel")
    # A build folder of its own: files left in the working tree's build/lib by an earlier build (a module since
    # renamed, a stub) would ship in the wheel too, and hide what setup.cfg puts there.
    extra_config = out / "build.cfg"
    extra_config.write_text(f"[build]\nbuild_base = {out / 'build'}\n")
    result = _run(
        [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "-w", str(out), str(REPO)],
        cwd=out,
        DIST_EXTRA_CONFIG=str(extra_config),
    )
    (path,) = out.glob("mae_hf-*.whl")
    return path, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(built) -> Path:
    return built[0]


def test_building_prints_no_deprecation_warning_from_our_packaging_files(built):
    """No setuptools deprecation box about our setup.cfg or pyproject.toml in the build backend's output."""
    log = built[1]
    assert "running bdist_wheel" in log or "Building wheel" in log, log[-2000:]
    assert "Deprecat" not in log and "!!" not in log, log[-4000:]


def test_the_wheel_holds_the_package_and_its_card_templates_and_no_app_dependencies(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {"mae_hf/model_cards/mae.md", "mae_hf/model_cards/dae.md", "mae_hf/cli.py"} <= set(names)
    assert not any(n.startswith(("tests/", "pretrained/", "app.py")) for n in names)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in requires if "extra ==" not in line]
    for optional in ("gradio", "tensorboard", "playwright", "pytest"):
        assert not any(optional in line for line in core), optional
    assert any("gradio" in line and 'extra == "app"' in line for line in requires)


def test_the_wheel_ships_every_subpackage_once_with_its_data_and_the_command(wheel):
    """setup.cfg lists the packages by name (model_cards/ maps to mae_hf.model_cards, which `find:` cannot do), so a
    new subpackage fails here until it is listed. The top-level card templates are in the wheel once, under mae_hf/;
    the shipped MNIST test set, the README (as the long description), the license and `mae-hf` come with it."""
    sources = [p for p in (REPO / "mae_hf").rglob("*.py") if "__pycache__" not in p.parts]
    expected = {p.relative_to(REPO).as_posix() for p in sources}
    expected |= {f"mae_hf/model_cards/{p.name}" for p in (REPO / "model_cards").glob("*.md")}
    expected |= {f"mae_hf/mnist/{p.name}" for p in (REPO / "mae_hf" / "mnist").glob("*.gz")}
    assert len(expected) > 40 and "mae_hf/model_cards/mae.md" in expected
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        metadata = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert sorted(set(expected) - set(names)) == []
    assert len(names) == len(set(names))
    assert [n for n in names if "model_cards/" in n and not n.startswith("mae_hf/model_cards/")] == []
    assert not any(n.startswith("tests/") or n.endswith(".pyi") for n in names)
    assert "mae-hf = mae_hf.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in metadata and "Requires-Python: >=3.11" in metadata
    assert "Version: 0.1.0" in metadata and (REPO / "README.md").read_text().strip() in metadata


@pytest.mark.slow
def test_the_installed_wheel_trains_writes_a_card_and_reports_outside_the_repository(wheel, tmp_path, idx_dataset):
    env_dir = tmp_path / "env"
    _run([sys.executable, "-m", "venv", str(env_dir)], cwd=tmp_path)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path
        ).stdout.strip()
    )
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import mae_hf; print(mae_hf.__file__)"], cwd=work).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the repository's

    mae_hf = str(env_dir / "bin" / "mae-hf")
    info = _run([mae_hf, "info"], cwd=work).stdout
    assert "mae_hf 0.1.0" in info
    common = ["--dataset", idx_dataset, "--max_train_steps", "3", "--per_device_train_batch_size", "8"]
    _run([mae_hf, "train", "--model", "dae", *common, "--output_dir", "dae"], cwd=work)
    _run(
        [mae_hf, "train", "--model", "mae", *common, "--config_overrides", json.dumps(TINY_MAE), "--output_dir", "mae"],
        cwd=work,
    )
    for name in ("dae", "mae"):
        card = (work / name / "README.md").read_text()
        assert "## How to use" in card and "{{" not in card
        assert (work / name / "preprocessor_config.json").is_file()
    _run(
        [
            mae_hf,
            "report",
            "--dae",
            "dae",
            "--mae",
            "mae",
            "--dataset",
            idx_dataset,
            "--n",
            "30",
            "--n_train",
            "40",
            "--out",
            "report",
            "--no_cache",
            "--no_progress",
        ],
        cwd=work,
    )
    metrics = json.loads((work / "report" / "metrics.json").read_text())
    assert metrics["settings"]["n"] == 30 and (work / "report" / "report.html").is_file()


def test_the_first_make_demo_says_what_it_installs(tmp_path):
    """`make demo` on a fresh machine sets up .venv for minutes: every install step is announced, and pip is not
    silenced (it shows what it downloads), so the first run is never silent (a dry run of the recipe)."""
    venv = tmp_path / "venv"
    result = _run(["make", "-n", "demo", f"VENV={venv}"], cwd=REPO)
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    installs = [i for i, line in enumerate(lines) if " -m pip install " in line and "--upgrade pip" not in line]
    assert len(installs) == 3, lines
    for i in installs:
        assert "--quiet" not in lines[i] and " -q " not in lines[i], lines[i]
        assert lines[i - 1].startswith("echo") and "==>" in lines[i - 1], (lines[i - 1], lines[i])
    assert any(line.startswith("echo") and "ready" in line for line in lines[installs[-1] :])


def test_the_readme_says_where_its_snippets_run_and_they_run_there():
    """The README's snippets use folders relative to the repository root: each such block says so just above it,
    and the Python one runs from there (as a new user pastes it)."""
    import re

    text = (REPO / "README.md").read_text()
    blocks = list(re.finditer(r"```(\w+)\n(.*?)```", text, re.S))
    relative = [b for b in blocks if re.search(r"pretrained/|train_accelerate\.py|--out report", b.group(2))]
    assert relative
    for block in relative:
        above = text[: block.start()].rstrip().rsplit("\n\n", 1)[-1]
        assert "repository root" in above, block.group(2)[:80]
    (python,) = [b.group(2) for b in relative if b.group(1) == "python"]
    _run([sys.executable, "-c", python], cwd=REPO, timeout=300)
