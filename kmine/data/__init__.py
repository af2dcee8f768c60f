"""Data: finding image/mask pairs, preprocessing, augmentation, splits, torch datasets."""

from .augment import (
                      ALL_OPS,
                      IDENTITY,
                      UNIQUE_OPS,
                      DihedralOps,
                      apply_dihedral,
                      dihedral_views,
                      draw_dihedral,
                      invert_dihedral,
                      random_dihedral,
)
from .dataset import (
                      IMAGE_EXTENSIONS,
                      DataError,
                      DatasetIndex,
                      Problem,
                      Sample,
                      image_size,
                      load_image,
                      load_mask,
                      mask_png,
                      scan_dataset,
)
from .preprocess import (
                      PadMeta,
                      as_rgb_uint8,
                      resize,
                      resize_mask_shortest_center_crop,
                      resize_shortest_center_crop,
                      resize_shortest_pad,
                      uncrop_mask,
                      unpad_resize,
)
from .splits import (
                      SUBSETS,
                      Split,
                      SplitError,
                      check_split_against,
                      load_split,
                      make_split,
                      save_split,
)
from .torch_dataset import SegmentationSet, collate_segmentation

__all__ = [
    "ALL_OPS", "IDENTITY", "UNIQUE_OPS", "DihedralOps", "apply_dihedral", "dihedral_views",
    "draw_dihedral", "invert_dihedral", "random_dihedral",
    "IMAGE_EXTENSIONS", "DataError", "DatasetIndex", "Problem", "Sample", "image_size",
    "load_image", "load_mask", "mask_png", "scan_dataset",
    "PadMeta", "as_rgb_uint8", "resize", "resize_mask_shortest_center_crop", "resize_shortest_center_crop",
    "resize_shortest_pad", "uncrop_mask", "unpad_resize",
    "SUBSETS", "Split", "SplitError", "check_split_against", "load_split", "make_split", "save_split",
    "SegmentationSet", "collate_segmentation",
]
