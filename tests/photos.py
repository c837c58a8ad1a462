"""Photo-like digits for tests: MNIST digits drawn as pen ink on unevenly lit, noisy, blurred paper."""

import numpy as np
from PIL import Image, ImageFilter

CONDITIONS = ("plain", "gradient", "shadow", "noise", "blur", "tinted", "ruled", "blue_ink", "small", "everything")


def photo_of(digit: np.ndarray, condition: str, rng: np.random.Generator) -> Image.Image:
    """A (28, 28) uint8 MNIST digit (white on black) as a photo of dark ink on paper, RGB, about 300×240."""
    h, w = 240, 320
    size = int(rng.integers(60, 90)) if condition in ("small", "everything") else int(rng.integers(120, 200))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC), np.float64) / 255.0
    top, left = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
    alpha = np.zeros((h, w))
    alpha[top : top + size, left : left + size] = np.clip(ink, 0, 1)
    yy, xx = np.mgrid[:h, :w]
    paper = np.full((h, w, 3), 215.0)
    if condition in ("gradient", "everything"):  # uneven light: +-20 grey levels across the page, at an angle
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * 2
        paper += 20 * ramp[..., None]
    if condition in ("shadow", "everything"):  # a soft shadow over a corner
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        paper -= 45 * np.exp(-(((yy - cy) / 90) ** 2 + ((xx - cx) / 120) ** 2))[..., None]
    if condition in ("tinted", "everything"):  # coloured paper
        paper *= np.array([1.0, 0.93, 0.78])
    if condition in ("ruled", "everything"):  # light blue lines every 24 px
        for y in range(12, h, 24):
            paper[y : y + 2] = paper[y : y + 2] * np.array([0.82, 0.88, 0.98])
    pen = np.array([30.0, 40.0, 120.0]) if condition in ("blue_ink", "everything") else np.array([25.0, 25.0, 25.0])
    img = paper * (1 - alpha[..., None]) + pen * alpha[..., None]
    if condition in ("noise", "everything"):
        img += rng.normal(0, 8, img.shape)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if condition in ("blur", "everything"):
        out = out.filter(ImageFilter.GaussianBlur(radius=2.0))
    return out
