import atexit
import os
import shutil
import tempfile

# Tests never write into the user's real cache (~/.cache/mae_hf): one temporary cache for the whole run.
os.environ["MAE_HF_CACHE"] = tempfile.mkdtemp(prefix="mae_hf-test-cache-")
atexit.register(shutil.rmtree, os.environ["MAE_HF_CACHE"], ignore_errors=True)
# Tests never touch the network: set before huggingface_hub / datasets are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny configs in the style of transformers' tests: small, fast, still the real code paths.
TINY_MAE = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=4,
    decoder_intermediate_size=32,
)


@pytest.fixture(scope="session")
def mnist():
    from mae_hf import load_image_dataset

    return load_image_dataset("mnist")


@pytest.fixture(scope="session")
def mnist_batch(mnist):
    from mae_hf import dataset_to_tensors

    return dataset_to_tensors(mnist["test"], n=16)


@pytest.fixture
def tiny_mae():
    from mae_hf import build_mae

    return build_mae("mnist", seed=0, **TINY_MAE)


@pytest.fixture
def tiny_dae():
    from mae_hf import DAEConfig, DAEModel

    torch.manual_seed(0)
    return DAEModel(DAEConfig())


def _write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST IDX files: magic 0x0803 / 0x0801, big-endian sizes, unsigned bytes."""
    prefix = "train" if split == "train" else "t10k"
    n, h, w = images.shape
    header = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + h.to_bytes(4, "big") + w.to_bytes(4, "big")
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.astype(np.uint8).tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    )


@pytest.fixture(scope="session")
def idx_dataset(tmp_path_factory, mnist) -> str:
    """A folder of MNIST IDX files with 96 training and 40 test digits (loads in well under a second)."""
    folder = tmp_path_factory.mktemp("idx")
    for split, n in (("train", 96), ("test", 40)):
        from mae_hf import dataset_to_tensors

        x, y = dataset_to_tensors(mnist[split], n=n)
        _write_idx(folder, split, (x[:, 0] * 255).round().numpy(), y.numpy())
    return str(folder)
