"""A smaller copy of an images/ + masks/ dataset, for machines that take few bytes (the lent
GPU takes 64 MiB with everything else): images to at most ``--max-side`` px on the long side as
JPEG, masks resized to match and re-thresholded at 128, saved as 1-bit PNG; split.json copied.

    python benchmarks/downscale_dataset.py ../shared/data/kvasir-seg .gpu/shared/data/kvasir-seg

(the copy the GPU rows of BENCHMARKS.md were trained on: 384 px, quality 85, about 21 MB).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from kmine.data import scan_dataset


def downscale(src: Path, dst: Path, max_side: int, quality: int) -> int:
    """Write the copy; returns the number of images."""
    index = scan_dataset(src)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    for sample in index.samples:
        # Plain PIL reads, not kmine's load_image/load_mask: those give a slightly different copy
        # (masks thresholded before resizing, other decoding of a few images), and this must
        # reproduce, byte for byte, the copy the GPU rows were trained on.
        image = Image.open(sample.image_path).convert("RGB")
        scale = min(1.0, max_side / max(image.size))
        size = (round(image.width * scale), round(image.height * scale))
        image.resize(size, Image.BILINEAR).save(dst / "images" / f"{sample.stem}.jpg", quality=quality)
        if sample.mask_path is not None:
            mask = Image.open(sample.mask_path).convert("L").resize(size, Image.BILINEAR)
            mask.point(lambda v: 255 if v >= 128 else 0).convert("1").save(dst / "masks" / f"{sample.stem}.png", optimize=True)
    if (src / "split.json").is_file():
        shutil.copy(src / "split.json", dst / "split.json")
    return len(index.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()
    print(f"{downscale(args.src, args.dst, args.max_side, args.quality)} images -> {args.dst}")


if __name__ == "__main__":
    main()
