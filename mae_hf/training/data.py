"""Training data: a split decoded once into a uint8 tensor, batches that carry each sample's dataset index (which
is what makes corruption a function of the sample, see `mae_hf.evaluation.sample_noise`)."""

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from ..data import to_pixel_values
from .config import ConfigurationError

__all__ = ["ImageTensorDataset", "collate_batch", "evaluation_dataloader", "image_shape"]


class ImageTensorDataset(torch.utils.data.Dataset):
    """
    A split decoded once into a uint8 tensor (N, C, H, W); an item is `{"pixel_values": (C, H, W) float in [0, 1],
    "index": int}`, the index being the image's position in its split (`indices`; a `subset` keeps them, so a
    validation image is corrupted exactly as in the training set). `__getitems__` builds a whole batch with one
    indexing op (see `collate_batch`).
    """

    def __init__(self, images: torch.Tensor, indices: torch.Tensor | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"`images` must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}.")
        self.images = images
        self.indices = torch.arange(len(images)) if indices is None else torch.as_tensor(indices, dtype=torch.long)

    def subset(self, positions) -> "ImageTensorDataset":
        """The images at `positions`, keeping their indices in the split."""
        positions = torch.as_tensor(positions, dtype=torch.long)
        return ImageTensorDataset(self.images[positions], self.indices[positions])

    @classmethod
    def from_dataset(
        cls, ds: Dataset, num_channels: int, image_size: int, max_samples: int | None = None, chunk_size: int = 2048
    ) -> "ImageTensorDataset":
        """Decode a `load_image_dataset` split (its first `max_samples` rows) at the model's size and channels."""
        n = len(ds) if max_samples is None else min(max_samples, len(ds))
        chunks = []
        for start in range(0, n, chunk_size):
            rows = ds.select(range(start, min(start + chunk_size, n)))["image"]
            pixels = to_pixel_values(rows, num_channels=num_channels, image_size=image_size)  # (b, C, H, W), k/255
            chunks.append((pixels * 255).round().to(torch.uint8))
        return cls(torch.cat(chunks))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.images[index].float() / 255, "index": int(self.indices[index])}

    def __getitems__(self, indices: list[int]) -> dict:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"pixel_values": self.images[idx].float() / 255, "index": self.indices[idx]}  # (B, C, H, W), (B,)


def collate_batch(batch) -> dict[str, torch.Tensor]:
    """Collate for `ImageTensorDataset`: passes through a batch built by `__getitems__`, stacks single items."""
    if isinstance(batch, dict):
        return batch
    return {
        "pixel_values": torch.stack([row["pixel_values"] for row in batch]),
        "index": torch.tensor([row["index"] for row in batch], dtype=torch.long),
    }


def evaluation_dataloader(split: Dataset, model, batch_size: int = 256, max_samples: int | None = None) -> DataLoader:
    """A deterministic (unshuffled) loader over a `load_image_dataset` split, decoded at `model`'s image size and
    channels, for `mae_hf.evaluation.evaluate`."""
    image_size, num_channels = model.config.image_size, model.config.num_channels
    data = ImageTensorDataset.from_dataset(split, num_channels, image_size, max_samples=max_samples)
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_batch)


def image_shape(split: Dataset) -> tuple[int, int]:
    """(image_size, num_channels) of a split's first image; raises for non-square images."""
    image = split[0]["image"]
    width, height = image.size
    if width != height:
        raise ConfigurationError(f"Images must be square; the dataset's first image is {width}x{height}.")
    return width, 1 if image.mode in ("L", "1", "I", "I;16", "F") else 3
