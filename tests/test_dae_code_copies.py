"""The DAE's code shipped next to its weights is the package's code.

`save_pretrained` exports a model registered for an Auto class (`DAEModel.register_for_auto_class`) by copying its
module and that module's relative imports into the folder: transformers' `custom_object_save`, a
`shutil.copyfile` of `mae_hf/modeling_dae.py` and `mae_hf/configuration_dae.py`, bytes unchanged. A folder loaded with
`trust_remote_code=True` runs those copies, not mae_hf, so a copy that lags behind the package would give a user of
the Hub folder another model than the one the package loads. Every `pretrained/*/` folder that carries code (an
`auto_map` in its config.json, or any `.py` file) is held here to exactly what `save_pretrained` writes today.
"""

import json
from pathlib import Path

import pytest

from mae_hf import DAEConfig, DAEModel

REPO = Path(__file__).resolve().parent.parent
PRETRAINED = REPO / "pretrained"
PACKAGE = REPO / "mae_hf"
# The code-export step of save_pretrained alone: weights, config.json and the card are not touched.
REFRESH = (
    '.venv/bin/python -c "from transformers.dynamic_module_utils import custom_object_save; '
    "from mae_hf import DAEModel; custom_object_save(DAEModel, '{folder}')\""
)


def code_folders() -> list[Path]:
    """The shipped folders with code for `trust_remote_code` (their top level: checkpoints are not shipped)."""
    with_auto_map = {
        config.parent for config in PRETRAINED.glob("*/config.json") if "auto_map" in json.loads(config.read_text())
    }
    with_code = {p.parent for p in PRETRAINED.glob("*/*.py")}
    return sorted(with_auto_map | with_code)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, bytes]:
    """What `save_pretrained` writes as code for a DAE: file name → bytes."""
    folder = tmp_path_factory.mktemp("dae-export")
    DAEModel(DAEConfig()).save_pretrained(folder)
    return {p.name: p.read_bytes() for p in folder.glob("*.py")}


def test_save_pretrained_copies_the_package_files_unchanged(exported):
    """The export is the identity on the package's files, so "equal to what save_pretrained writes" is "equal to
    mae_hf/<name>" byte for byte."""
    assert set(exported) == {"modeling_dae.py", "configuration_dae.py"}
    for name, data in exported.items():
        assert data == (PACKAGE / name).read_bytes(), f"save_pretrained rewrote {name}: the copies test must follow"


def test_the_bundled_dae_is_among_the_checked_folders():
    assert PRETRAINED / "dae-mnist" in code_folders()  # the test below cannot pass by finding nothing


@pytest.mark.parametrize("folder", code_folders(), ids=lambda folder: folder.name)
def test_shipped_code_equals_the_package(folder, exported):
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    modules = {f"{target.split('.')[0]}.py" for target in config.get("auto_map", {}).values()}
    assert modules <= set(exported), f"{folder.name}/config.json's auto_map names {sorted(modules - set(exported))}"
    shipped = {p.name: p.read_bytes() for p in folder.glob("*.py")}
    refresh = REFRESH.format(folder=folder.relative_to(REPO))
    missing, extra = sorted(set(exported) - set(shipped)), sorted(set(shipped) - set(exported))
    assert not missing and not extra, (
        f"pretrained/{folder.name} should hold exactly {sorted(exported)} (what save_pretrained writes); missing "
        f"{missing}, not written by save_pretrained {extra}. Remove the extra files and write the code with: {refresh}"
    )
    stale = [name for name in sorted(exported) if shipped[name] != exported[name]]
    assert not stale, (
        f"In pretrained/{folder.name}, {', '.join(stale)} differ from mae_hf/ (what save_pretrained writes, byte for "
        f"byte). Refresh the copies without touching the weights with: {refresh}"
    )
