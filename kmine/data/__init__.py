"""Data: finding image/mask pairs, preprocessing, augmentation, splits, torch datasets.

The names below are imported on first use (see :mod:`kmine._lazy`): ``from kmine.data import
SUBSETS`` does not import torch or Pillow."""

from typing import TYPE_CHECKING

from kmine._lazy import lazy_exports

if TYPE_CHECKING:
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
        MAX_ASPECT,
        MAX_WORK_PIXELS,
        MIN_SIDE,
        PadMeta,
        as_rgb_uint8,
        check_image_shape,
        resize,
        resize_mask_shortest_center_crop,
        resize_shortest_center_crop,
        resize_shortest_pad,
        uncrop_mask,
        unpad_resize,
        upscale_mask,
        work_copy,
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
else:
    __all__, __getattr__, __dir__ = lazy_exports(__name__, {
        "augment": ("ALL_OPS", "IDENTITY", "UNIQUE_OPS", "DihedralOps", "apply_dihedral", "dihedral_views",
                    "draw_dihedral", "invert_dihedral", "random_dihedral"),
        "dataset": ("IMAGE_EXTENSIONS", "DataError", "DatasetIndex", "Problem", "Sample", "image_size",
                    "load_image", "load_mask", "mask_png", "scan_dataset"),
        "preprocess": ("MAX_ASPECT", "MAX_WORK_PIXELS", "MIN_SIDE", "PadMeta", "as_rgb_uint8", "check_image_shape",
                       "resize", "resize_mask_shortest_center_crop", "resize_shortest_center_crop",
                       "resize_shortest_pad", "uncrop_mask", "unpad_resize", "upscale_mask", "work_copy"),
        "splits": ("SUBSETS", "Split", "SplitError", "check_split_against", "load_split", "make_split", "save_split"),
        "torch_dataset": ("SegmentationSet", "collate_segmentation"),
    })
