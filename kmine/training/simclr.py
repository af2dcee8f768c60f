"""Self-supervised pretraining of the student's encoder with SimCLR (Chen et al., 2020).

The paper's Table 1 has "SimCLR + ..." rows: the encoder first learns from every train image,
labelled and unlabelled alike (no mask is read), then the usual schedules train the whole
student from it. Two random views of each image go through the encoder; its deepest feature
map, pooled and projected, should pick out its own twin among the batch's other views
(NT-Xent loss). The result is a student checkpoint whose encoder is pretrained and whose
decoder is untouched; ``TrainConfig.encoder_init`` starts a run from it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from kmine.fileio import save_json
from kmine.student import DEFAULT_ENCODER, build_student, save_student
from kmine.training.config import TrainConfig
from kmine.training.setup import load_run_data, resolve_device

log = logging.getLogger(__name__)

METHOD = "simclr"


@dataclass
class SimCLRConfig:
    """data / split: as :class:`TrainConfig` (the split's train images, labelled and
    unlabelled, are used; val and test never). encoder / pretrained: the student's encoder
    and whether it starts from ImageNet weights. size: view side in pixels. batch_size:
    images per step (each gives 2 views: 2·batch_size − 2 negatives per view).
    temperature: NT-Xent's τ. projection_dim: output of the 2-layer projection head
    (discarded after pretraining)."""

    data: str = ""
    split: str | None = None
    encoder: str = DEFAULT_ENCODER
    pretrained: bool = True
    size: int = 128
    batch_size: int = 32
    epochs: int = 10
    lr: float = 1e-3
    temperature: float = 0.5
    projection_dim: int = 128
    seed: int = 0
    device: str = "auto"
    weights_dir: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (a view needs other images as negatives), got {self.batch_size}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def augmentation(size: int) -> v2.Compose:
    """SimCLR's view: random crop (20–100 % of the area), flips (medical images have no
    upright), colour jitter and greyscale. Input and output (3, S, S) uint8."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
        ]
    )


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, float]:
    """NT-Xent over (B, D) projections of the two views; returns the loss and the share of
    views whose most similar other view is their twin (chance: 1 / (2B − 1))."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))  # a view is not its own negative
    twins = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    accuracy = float((sim.argmax(dim=1) == twins).float().mean())
    return F.cross_entropy(sim, twins), accuracy


class SimCLRModel(nn.Module):
    """The student's encoder, global-average-pooled deepest features, projection head."""

    def __init__(self, student, projection_dim: int):
        super().__init__()
        self.student = student
        channels = student.model.encoder.out_channels[-1]
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, projection_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) [0, 255] -> (B, projection_dim)."""
        features = self.student.model.encoder(self.student.normalise(images))[-1]
        return self.head(features.mean(dim=(2, 3)))


def pretrain(config: SimCLRConfig, out_dir: str | Path) -> Path:
    """Pretrain; writes ``encoder.pt`` (a student checkpoint) and ``history.json`` to
    ``out_dir`` and returns the checkpoint's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)  # the views are drawn from torch's generator
    device = resolve_device(config.device)
    images = _train_images(config)
    if len(images) < 2:
        raise ValueError(f"{config.data}: SimCLR needs at least 2 train images, found {len(images)}")
    student = build_student(config.encoder, pretrained=config.pretrained, weights_dir=config.weights_dir)
    model = SimCLRModel(student, config.projection_dim).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    view = augmentation(config.size)
    order_rng = np.random.default_rng(config.seed)
    history = []
    for epoch in range(config.epochs):
        start = time.perf_counter()
        losses, accuracies = [], []
        order = order_rng.permutation(len(images))
        for first in range(0, len(order) - 1, config.batch_size):
            chunk = torch.from_numpy(images[order[first : first + config.batch_size]]).permute(0, 3, 1, 2)
            if len(chunk) < 2:
                continue  # a lone image has no negatives
            a = torch.stack([view(x) for x in chunk]).to(device)
            b = torch.stack([view(x) for x in chunk]).to(device)
            loss, accuracy = nt_xent(model(a), model(b), config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            accuracies.append(accuracy)
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "twin_accuracy": float(np.mean(accuracies)),
                  "seconds": time.perf_counter() - start}
        history.append(record)
        log.info("simclr epoch %d: %s", epoch + 1, record)
    path = out / "encoder.pt"
    save_student(student, path, {"method": METHOD, "simclr": dataclasses.asdict(config), "history": history,
                                 "n_images": len(images)})
    save_json({"config": dataclasses.asdict(config), "history": history, "n_images": len(images)}, out / "history.json")
    return path


def _train_images(config: SimCLRConfig) -> np.ndarray:
    """(N, S, S, 3) uint8: the split's labelled and unlabelled train images, un-augmented."""
    tc = TrainConfig(data=config.data, split=config.split, size=config.size, seed=config.seed, augment=False)
    data = load_run_data(tc, keep_truth=False)
    return np.concatenate([data.labelled.images, data.unlabelled.images])
