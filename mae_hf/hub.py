"""The publish seam: the only code that talks to the Hugging Face Hub.

`check_push_access` runs before training (so `--push_to_hub` without a token or network fails before any work);
`publish` creates the repository and uploads a finished output folder in one commit, leaving checkpoints out;
`push_model` (`mae-hf push`) uploads a folder with its card rendered for the repo id; `push_space`
(`mae-hf push-space`) uploads the app as a Gradio Space. A Hub token never reaches a recorded file: `redact` and
`redact_values` hide it, and nothing is uploaded from a folder that holds one.
"""

import logging
import os
from pathlib import Path

from huggingface_hub import HfApi, get_token

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORE_PATTERNS",
    "LOCAL_ONLY",
    "REDACTED",
    "check_push_access",
    "publish",
    "files_to_upload",
    "known_tokens",
    "redact",
    "redact_values",
    "files_containing",
    "push_model",
    "space_files",
    "space_readme",
    "push_space",
    "SPACE_SOURCES",
    "SPACE_OPTIONAL",
]

# Checkpoints, TensorBoard logs and staging folders stay local (also written as the folder's .gitignore).
IGNORE_PATTERNS = ("step_*", "epoch_*", ".tmp-*", "runs/*")
# Files that are not uploaded either, but are not in the folder's .gitignore.
LOCAL_ONLY = (".gitignore",)
# What a token is replaced with wherever it would be recorded, as transformers' TrainingArguments does.
REDACTED = "<HUB_TOKEN>"
TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def known_tokens(*explicit: str | None) -> list[str]:
    """Every Hub token this process could use: the ones given, `$HF_TOKEN` (and its old name), the saved login."""
    tokens = [t for t in explicit if t]
    tokens += [os.environ[name] for name in TOKEN_ENV if os.environ.get(name)]
    try:
        saved = get_token()
    except Exception:  # noqa: BLE001 - an unreadable token file is not ours to report here
        saved = None
    tokens += [saved] if saved else []
    return sorted({t.strip() for t in tokens if len(t.strip()) >= 4}, key=len, reverse=True)


def redact(text: str, tokens: list[str] | None = None) -> str:
    """`text` with every `--hub_token VALUE` / `--hub_token=VALUE` and every known token replaced by `REDACTED`."""
    import re

    text = re.sub(r"(--hub_token(?:=|\s+))(?:'[^']*'|\"[^\"]*\"|\S+)", rf"\g<1>{REDACTED}", text)
    for token in known_tokens() if tokens is None else tokens:
        text = text.replace(token, REDACTED)
    return text


def redact_values(obj, tokens: list[str] | None = None):
    """`obj` (dicts, lists, strings, ...) with `redact` applied to every string in it."""
    tokens = known_tokens() if tokens is None else tokens
    if isinstance(obj, str):
        return redact(obj, tokens)
    if isinstance(obj, dict):
        return {k: redact_values(v, tokens) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_values(v, tokens) for v in obj)
    return obj


def files_containing(folder: str | os.PathLike, tokens: list[str], names: list[str] | None = None) -> list[str]:
    """The files of `folder` (relative paths; all files, or `names`) whose bytes contain any of `tokens`."""
    root = Path(folder)
    names = names if names is not None else [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    needles = [t.encode() for t in tokens if t]
    return [name for name in names if needles and any(n in (root / name).read_bytes() for n in needles)]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def check_push_access(
    repo_id: str, token: str | None = None, api: HfApi | None = None, action: str = "--push_to_hub"
) -> str:
    """
    Make sure a later `publish` can work: a token, a network, and a user to own a bare repo name.

    Args:
        repo_id: `"user/name"`, `"org/name"`, or a bare `"name"` (prefixed with the token's user).
        token: a Hub token; defaults to the saved login (`hf auth login`) or `$HF_TOKEN`.
        api: an `HfApi` to use (tests pass a mock).
        action: what needs the access, as the messages name it (`--push_to_hub`, `mae-hf push`, ...).

    Returns:
        The full repo id.

    Raises:
        ValueError: offline, no token, or the token is rejected, with a message naming the fix.
    """
    later = (
        "Train without --push_to_hub and upload the finished folder later with "
        "`mae-hf push OUTPUT_DIR --repo-id REPO_ID`"
        if action == "--push_to_hub"
        else "Try again when online"
    )
    if _offline():
        raise ValueError(f"{action} needs the network, but HF_HUB_OFFLINE is set. {later}, or unset HF_HUB_OFFLINE.")
    token = token or get_token()
    if not token:
        flag = "--hub_token" if action == "--push_to_hub" else "--token"
        raise ValueError(f"{action} needs a Hugging Face token: pass {flag}, set $HF_TOKEN, or run `hf auth login`.")
    api = api or HfApi(token=token)
    try:
        user = api.whoami(token=token)["name"]
    except Exception as err:  # network down, invalid token
        raise ValueError(
            f"{action}: cannot reach the Hub or the token was rejected ({type(err).__name__}). Check the network and "
            f"the token. {later}."
        ) from err
    return repo_id if "/" in repo_id else f"{user}/{repo_id}"


def files_to_upload(folder: str | os.PathLike) -> list[str]:
    """The files `publish` uploads from `folder` (relative POSIX paths), i.e. all but `IGNORE_PATTERNS`."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(folder)
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=[*IGNORE_PATTERNS, *LOCAL_ONLY]))


def publish(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload model trained with mae_hf",
    api: HfApi | None = None,
) -> str:
    """
    Create `repo_id` (if needed) and upload `folder` to it in one commit, without checkpoints and logs.

    Args:
        folder: a finished output folder of `training_function`.
        repo_id: the full repo id, e.g. from `check_push_access`.
        token: a Hub token (default: the saved login).
        private: create the repository as private.
        api: an `HfApi` to use (tests pass `create_autospec(HfApi)`).

    Returns:
        The repository URL.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "README.md").is_file():
        raise ValueError(f"{str(folder)!r} is not a finished output folder (config.json and README.md missing).")
    leaking = files_containing(folder, known_tokens(token), files_to_upload(folder))
    if leaking:
        raise ValueError(
            f"Refusing to upload {str(folder)!r}: {', '.join(leaking)} contain(s) a Hub token. Remove it "
            "from those files (or retrain with this version, which never writes one) and try again."
        )
    api = api or HfApi(token=token)
    url = api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        token=token,
        commit_message=commit_message,
        ignore_patterns=[*IGNORE_PATTERNS, *LOCAL_ONLY],
    )
    logger.info(f"Uploaded {folder} to {url}")
    return str(url)


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    api: HfApi | None = None,
) -> str:
    """
    `mae-hf push`: upload a finished training folder as the model repo `repo_id`, with its card rendered again for
    that id (its snippet loads `repo_id`), without checkpoints, logs, `.gitignore` or anything holding a token.

    Returns:
        The repository URL.
    """
    import shutil
    import tempfile

    from .cards import card_for_folder

    folder = Path(folder)
    card = card_for_folder(folder, repo_id)
    with tempfile.TemporaryDirectory(prefix="mae_hf-push-") as tmp:
        staging = Path(tmp) / folder.name
        for name in files_to_upload(folder):
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, staging / name)
        card.save(staging / "README.md")
        return publish(
            staging, repo_id, token=token, private=private, api=api, commit_message=f"Upload {folder.name} (mae_hf)"
        )


# The Space: what `app.py` needs at run time, nothing else. Binary files go through LFS, as the Hub requires.
SPACE_SOURCES = (
    "app.py",
    "requirements.txt",
    "mae_hf",
    "examples",
    "pretrained",
    "model_cards",
    "docs/study/study.json",
    "docs/results/metrics.json",  # with study.json, the About tab's answer to each claim
    "docs/results-fashion/metrics.json",  # the same for the Fashion-MNIST models
)
# Uploaded where the checkout has them: a study that has not finished a budget on every cell has no study.json yet.
SPACE_OPTIONAL = ("docs/study-fashion/study.json",)
SPACE_LFS = ("*.png", "*.jpg", "*.safetensors", "*.bin", "*.gz", "*.npz", "*.pt")
# .pyi: the stubs gradio writes next to modules that subclass its components (the Space writes its own)
SPACE_SKIP = ("__pycache__", ".pyc", ".pyi", ".DS_Store")


def space_files(root: str | os.PathLike) -> dict[str, Path]:
    """
    The files `push_space` uploads from a checkout at `root`: `{path in the Space: source file}` — the app, the
    package, the bundled models (as `files_to_upload` gives them: no checkpoints or logs) and their dataset analysis,
    the examples, the card templates and the results the About tab shows (`SPACE_OPTIONAL` where there); README.md and .gitattributes are written
    by `push_space`.
    """
    root = Path(root)
    missing = [s for s in SPACE_SOURCES if not (root / s).exists()]
    if missing:
        raise ValueError(
            f"{str(root)!r} is not an mae_hf checkout with trained models: {', '.join(missing)} "
            "missing (`make models` trains the bundled models)."
        )
    out: dict[str, Path] = {s: root / s for s in SPACE_OPTIONAL if (root / s).is_file()}
    for source in SPACE_SOURCES:
        path = root / source
        if path.is_file():
            out[source] = path
            continue
        if source == "pretrained":
            for model in sorted(p for p in path.iterdir() if (p / "config.json").is_file()):
                for name in files_to_upload(model):
                    out[f"pretrained/{model.name}/{name}"] = model / name
            for shipped in sorted(path.glob("app-analysis-*.npz")):  # each set's dataset analysis: tabs fill at once
                out[f"pretrained/{shipped.name}"] = shipped
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            if not any(skip in rel for skip in SPACE_SKIP):
                out[rel] = file
    return out


def space_readme(readme: str | os.PathLike, model_ids: list[str]):
    """The Space's README: the checkout's README (its front matter configures the Space) with `models:` set."""
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(readme)
    card.data.models = list(model_ids)
    if len(card.data.get("short_description") or "") > 60:
        raise ValueError(
            f"The Space's short_description must be at most 60 characters (the Hub's limit), got "
            f"{len(card.data.short_description)}: shorten it in {str(readme)!r}."
        )
    return card


def push_space(
    root: str | os.PathLike,
    repo_id: str,
    model_ids: list[str],
    token: str | None = None,
    private: bool = False,
    api: HfApi | None = None,
) -> str:
    """
    `mae-hf push-space`: upload the app of the checkout at `root` as the Gradio Space `repo_id`: `space_files`,
    the README with `models:` listing `model_ids`, and a `.gitattributes` that stores binary files with LFS.

    Returns:
        The Space's URL.
    """
    import shutil
    import tempfile

    files = space_files(root)
    card = space_readme(Path(root) / "README.md", model_ids)
    with tempfile.TemporaryDirectory(prefix="mae_hf-space-") as tmp:
        staging = Path(tmp)
        for dest, source in files.items():
            (staging / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / dest)
        card.save(staging / "README.md")
        (staging / ".gitattributes").write_text(
            "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in SPACE_LFS)
        )
        names = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        leaking = files_containing(staging, known_tokens(token), names)
        if leaking:
            raise ValueError(f"Refusing to upload the Space: {', '.join(leaking)} contain(s) a Hub token.")
        api = api or HfApi(token=token)
        url = api.create_repo(
            repo_id, token=token, private=private, repo_type="space", space_sdk="gradio", exist_ok=True
        )
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(staging),
            repo_type="space",
            token=token,
            commit_message="Upload the mae_hf demo",
        )
        logger.info("Uploaded the Space to %s", url)
        return str(url)
