import os

# Tests never touch the network: set before huggingface_hub / datasets are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny configs in the style of transformers' tests: small, fast, still the real code paths.
TINY_MAE = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    decoder_hidden_size=16, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=32,
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
