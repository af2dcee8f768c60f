"""Strong perturbations for the second phase (the FixMatch/UniMatch remedy).

A pseudo-label is made on the weak view of an image (dihedral flips, the teacher on the clean
crop); the student then trains on a *strongly* perturbed view of it, so it has to reproduce
the label from pixels that look different, instead of re-learning its own answer. Every
image of the second phase gets the same perturbation, the labelled ones too, so the
same-compute control trains under it as well and the comparison stays fair.

The perturbation is photometric (it keeps every pixel where it was, so a target stays
aligned) plus CutMix between images of one kind (labelled with labelled, pseudo-labelled with
pseudo-labelled), which moves a box of one image and its target into another.
Draws come from a ``torch.Generator`` seeded per (seed, epoch, step): a resumed run repeats them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Ranges of the photometric draws (each image draws its own).
BRIGHTNESS = (0.75, 1.25)
CONTRAST = (0.75, 1.25)
SATURATION = (0.75, 1.25)
GAMMA = (0.7, 1.4)
BLUR_P, BLUR_SIGMA = 0.3, (0.3, 1.5)
NOISE_P, NOISE_STD = 0.3, (2.0, 8.0)  # grey levels of 255
CUTMIX_P, CUTMIX_AREA = 0.5, (0.1, 0.4)  # chance per image, share of the image pasted


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """One image (3, H, W) through a separable 5-tap Gaussian of ``sigma`` pixels."""
    taps = torch.arange(-2, 3, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    image = F.pad(x[None], (2, 2, 2, 2), mode="reflect")
    image = F.conv2d(image, kernel.view(1, 1, 1, 5).expand(3, 1, 1, 5), groups=3)
    return F.conv2d(image, kernel.view(1, 1, 5, 1).expand(3, 1, 5, 1), groups=3)[0]


def photometric(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) [0, 255] (uint8 or float) -> float32 (B, 3, H, W) in [0, 255]: brightness,
    contrast, saturation and gamma jitter for every image; blur and noise for some."""
    x = images.float()
    n = x.shape[0]
    view = (n, 1, 1, 1)
    x = x * _uniform(gen, n, *BRIGHTNESS).view(view)
    mean = _grey(x).mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * _uniform(gen, n, *CONTRAST).view(view) + mean
    grey = _grey(x)
    x = grey + (x - grey) * _uniform(gen, n, *SATURATION).view(view)
    x = 255 * (x.clamp(0, 255) / 255) ** _uniform(gen, n, *GAMMA).view(view)
    blur = torch.rand(n, generator=gen) < BLUR_P
    sigmas = _uniform(gen, n, *BLUR_SIGMA)
    for i in torch.nonzero(blur).flatten().tolist():
        x[i] = _blur(x[i], float(sigmas[i]))
    noisy = (torch.rand(n, generator=gen) < NOISE_P).float() * _uniform(gen, n, *NOISE_STD)
    x = x + torch.randn(x.shape, generator=gen) * noisy.view(view)
    return x.clamp(0, 255)


def cutmix(images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paste a random box of another image of the group (and its target and pixel weights)
    into each chosen image. images (B, 3, H, W), targets and weights (B, 1, H, W); returns
    new tensors, the inputs untouched. A group of one image is returned as it is."""
    n, _, h, w = images.shape
    if n < 2:
        return images, targets, weights
    images, targets, weights = images.clone(), targets.clone(), weights.clone()
    sources = (torch.arange(n) + torch.randint(1, n, (n,), generator=gen)) % n  # never itself
    chosen = torch.rand(n, generator=gen) < CUTMIX_P
    areas = _uniform(gen, n, *CUTMIX_AREA)
    corners = torch.rand(n, 2, generator=gen)
    originals = images.clone(), targets.clone(), weights.clone()
    for i in torch.nonzero(chosen).flatten().tolist():
        bh = max(1, int(round(h * float(areas[i]) ** 0.5)))
        bw = max(1, int(round(w * float(areas[i]) ** 0.5)))
        y0, x0 = int(corners[i, 0] * (h - bh)), int(corners[i, 1] * (w - bw))
        box = (slice(None), slice(y0, y0 + bh), slice(x0, x0 + bw))
        j = int(sources[i])
        for out, source in zip((images, targets, weights), originals):
            out[i][box] = source[j][box]
    return images, targets, weights


def step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """The draws of one training step (repeatable, independent of torch's global stream)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + step + 17)
