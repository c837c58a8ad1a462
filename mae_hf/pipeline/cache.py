"""The one analysis cache and the one way results are serialised.

`AnalysisCache` stores arrays (`.npz`) keyed by a hash of everything they depend on: decoded data, latents, t-SNE
maps, and whole `AnalysisResult`s (which the app reloads on its next start). Nested results are flattened to
`a/b/c` array names plus one JSON document (`flatten` / `unflatten`); `to_jsonable` turns numbers that JSON cannot
hold into strings. A damaged cache file (a copy cut short, a full disk) is named in one warning, removed and
recomputed, never trusted.
"""

import hashlib
import json
import logging
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "AnalysisCache",
    "model_fingerprint",
    "array_fingerprint",
    "source_fingerprint",
    "to_jsonable",
    "flatten",
    "unflatten",
]

CACHE_VERSION = 2
# What reading a damaged `.npz` raises: a cut or overwritten zip (BadZipFile, zlib.error), an empty file (EOFError),
# bytes that are not an array (ValueError), an unreadable file (OSError), a member the directory lists but lacks
# (KeyError).
DAMAGED_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)


def default_cache_dir() -> Path:
    """`$MAE_HF_CACHE`, else `~/.cache/mae_hf` (read when asked, so tests can point it elsewhere)."""
    return Path(os.environ.get("MAE_HF_CACHE", Path.home() / ".cache" / "mae_hf"))


DEFAULT_CACHE_DIR = default_cache_dir()


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short sha256 of the model's class and every state-dict tensor (names, shapes, values)."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def array_fingerprint(*arrays) -> str:
    """A short sha256 of arrays or tensors (dtype, shape, bytes)."""
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def source_fingerprint(dataset: str) -> list:
    """What identifies a dataset source's content: its name, plus sizes and mtimes of local files."""
    path = Path(dataset).expanduser()
    if not path.exists():
        return [dataset]
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return [str(path.resolve())] + [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def to_jsonable(obj):
    """Floats JSON cannot hold (inf, nan) become "inf", "-inf", "nan"; numpy → Python; tuple keys → "a/b"."""
    if isinstance(obj, dict):
        return {("/".join(map(str, k)) if isinstance(k, tuple) else str(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays/tensors → `{"a/b/c": array}` (for `np.savez`); other leaves are stored as JSON."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}/")
        elif isinstance(value, torch.Tensor):
            out[name] = value.detach().cpu().numpy()
        elif isinstance(value, np.ndarray):
            out[name] = value
        else:
            out[f"{name}.json"] = np.array(json.dumps(to_jsonable(value)))
    return out


def unflatten(arrays: dict[str, np.ndarray]) -> dict:
    """The inverse of `flatten`."""
    tree: dict = {}
    for name, value in arrays.items():
        *parents, leaf = name.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        if leaf.endswith(".json"):
            node[leaf[: -len(".json")]] = json.loads(str(value))
        else:
            node[leaf] = value
    return tree


class AnalysisCache:
    """
    Arrays cached as `.npz` under `cache_dir`, keyed by a hash of everything they depend on. `cache_dir=None`
    disables caching (every `arrays` call computes). A damaged file is named in one warning, removed and
    recomputed.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR):
        self.dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts) -> str:
        return hashlib.sha256(json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[
            :24
        ]

    def arrays(self, name: str, key_parts: list, compute) -> dict[str, np.ndarray]:
        """`compute()` → `{name: array}`, loaded from the cache when the same `key_parts` were computed before."""
        if self.dir is None:
            self.misses += 1
            return compute()
        path = self.dir / f"{name}-{self.key(*key_parts)}.npz"
        if path.is_file():
            try:
                return self._load(path)
            except DAMAGED_ENTRY_ERRORS as err:
                reason = f"{type(err).__name__}: {err}".replace("\n", " ")
                logger.warning("Analysis cache entry %s is damaged (%s); removed it and recomputing.", path, reason)
                path.unlink(missing_ok=True)
        out = compute()
        self.misses += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)
        return out

    def _load(self, path: Path) -> dict[str, np.ndarray]:
        """Every array of one entry, read in full (a damaged member fails here, not later in the caller)."""
        with np.load(path) as f:
            out = {k: f[k] for k in f.files}
        self.hits += 1
        return out

    def tree(self, name: str, key_parts: list, compute) -> dict:
        """Like `arrays`, for a nested dict (`flatten` / `unflatten`)."""
        return unflatten(self.arrays(name, key_parts, lambda: flatten(compute())))
