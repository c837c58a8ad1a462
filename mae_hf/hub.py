"""The publish seam: the only code that talks to the Hugging Face Hub.

`check_push_access` runs before training (so `--push_to_hub` without a token or network fails before any work);
`publish` creates the repository and uploads a finished output folder in one commit, leaving checkpoints out.
"""

import logging
import os
from pathlib import Path

from huggingface_hub import HfApi, get_token

logger = logging.getLogger(__name__)

__all__ = ["IGNORE_PATTERNS", "LOCAL_ONLY", "REDACTED", "check_push_access", "publish", "files_to_upload",
           "known_tokens", "redact", "redact_values", "files_containing"]

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


def check_push_access(repo_id: str, token: str | None = None, api: HfApi | None = None) -> str:
    """
    Make sure a later `publish` can work: a token, a network, and a user to own a bare repo name.

    Args:
        repo_id: `"user/name"`, `"org/name"`, or a bare `"name"` (prefixed with the token's user).
        token: a Hub token; defaults to the saved login (`hf auth login`) or `$HF_TOKEN`.
        api: an `HfApi` to use (tests pass a mock).

    Returns:
        The full repo id.

    Raises:
        ValueError: offline, no token, or the token is rejected, with a message naming the fix.
    """
    if _offline():
        raise ValueError(
            "--push_to_hub needs the network, but HF_HUB_OFFLINE is set. Train without --push_to_hub and upload the "
            "finished folder later with `hf upload REPO_ID OUTPUT_DIR`, or unset HF_HUB_OFFLINE."
        )
    token = token or get_token()
    if not token:
        raise ValueError(
            "--push_to_hub needs a Hugging Face token: pass --hub_token, set $HF_TOKEN, or run `hf auth login`."
        )
    api = api or HfApi(token=token)
    try:
        user = api.whoami(token=token)["name"]
    except Exception as err:  # network down, invalid token
        raise ValueError(
            f"--push_to_hub: cannot reach the Hub or the token was rejected ({type(err).__name__}: {err}). Check the "
            "network and the token, or train without --push_to_hub and upload later with `hf upload`."
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
        raise ValueError(f"Refusing to upload {str(folder)!r}: {', '.join(leaking)} contain(s) a Hub token. Remove it "
                         "from those files (or retrain with this version, which never writes one) and try again.")
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
