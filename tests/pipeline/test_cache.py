"""The analysis cache (mae_hf/pipeline/cache.py): entries keyed by what they depend on, damaged ones healed."""

import logging

import numpy as np
import pytest

from mae_hf.pipeline.cache import AnalysisCache


def _entry(cache_dir) -> list:
    files = sorted(cache_dir.glob("*.npz"))
    assert len(files) == 1, files
    return files


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),  # zipfile.BadZipFile
        pytest.param(lambda data: b"", id="empty"),  # EOFError
        pytest.param(lambda data: b"not a zip file at all", id="garbage"),  # ValueError (pickle refused)
        pytest.param(lambda data: data[:-40] + bytes(40), id="bad-directory"),  # BadZipFile in the central directory
        pytest.param(lambda data: data[:300] + bytes(200) + data[500:], id="bad-data"),  # BadZipFile: bad CRC-32
    ],
)
def test_a_damaged_entry_is_named_once_removed_and_recomputed(tmp_path, caplog, damage):
    cache = AnalysisCache(tmp_path)
    calls = []

    def compute():
        calls.append(True)
        return {"x": np.arange(1000, dtype=np.float32).reshape(10, 100), "y": np.array([3, 1, 4])}

    first = cache.arrays("latents-eval", ["model", 1], compute)
    (path,) = _entry(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(damage(whole))

    with caplog.at_level(logging.WARNING, logger="mae_hf.pipeline.cache"):
        again = cache.arrays("latents-eval", ["model", 1], compute)
    assert len(calls) == 2  # computed again, not trusted
    assert set(again) == {"x", "y"} and all(np.array_equal(again[k], first[k]) for k in first)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and path.name in warnings[0].getMessage()
    # the entry is whole again: the next call is a hit that computes nothing and warns nothing
    assert _entry(tmp_path) == [path] and path.read_bytes() == whole
    caplog.clear()
    third = cache.arrays("latents-eval", ["model", 1], compute)
    assert len(calls) == 2 and np.array_equal(third["x"], first["x"]) and not caplog.records


def test_a_damaged_entry_is_removed_even_when_the_computation_fails(tmp_path, caplog):
    cache = AnalysisCache(tmp_path)
    cache.arrays("tsne", [1], lambda: {"coordinates": np.zeros((4, 2))})
    (path,) = _entry(tmp_path)
    path.write_bytes(path.read_bytes()[:30])

    def fail():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.arrays("tsne", [1], fail)
    assert not path.exists()  # not read again at the next start
