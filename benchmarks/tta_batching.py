"""Is the 8-view TTA faster with all views in one batch? Times kmine's view-by-view
``tta_probs`` against the same mean computed from one batched forward pass.

    python benchmarks/tta_batching.py

Prints the median of 4 interleaved timings per setting (ImageNet Lite0 student, random images:
the cost does not depend on the pixels). Run it with the cores to itself.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from kmine.data.augment import UNIQUE_OPS, apply_dihedral, invert_dihedral
from kmine.student import build_student, tta_probs


def batched_tta(student: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The 8 views of all images in one forward pass; the same mean as :func:`tta_probs`."""
    views = torch.cat([apply_dihedral(images, ops) for ops in UNIQUE_OPS])
    with torch.inference_mode():
        probs = torch.sigmoid(student(views)).split(images.shape[0])
    return sum(invert_dihedral(p, ops)[:, 0] for p, ops in zip(probs, UNIQUE_OPS)) / len(UNIQUE_OPS)


def main() -> None:
    torch.manual_seed(0)
    student = build_student("timm-tf_efficientnet_lite0", pretrained=True).eval()
    ways = {"view by view": lambda x: tta_probs(student, x), "batched": lambda x: batched_tta(student, x)}
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for size, n in ((160, 4), (160, 8), (224, 4)):
        x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
        torch.testing.assert_close(ways["batched"](x), ways["view by view"](x), rtol=0, atol=1e-4)
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(4):
            for name, way in ways.items():
                start = time.perf_counter()
                way(x)
                times[name].append(time.perf_counter() - start)
        print(f"{n} images at {size} px: " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
