"""Finding image/mask pairs on disk and reading them.

A dataset is a folder with ``images/`` and ``masks/``; an image and its mask share a
file stem (``images/X.jpg`` <-> ``masks/X.png``). :func:`scan_dataset` indexes such a
folder without decoding pixels and reports every problem it meets by file name, so a
broken file costs one line in a report instead of a crash mid-training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})

# Errors PIL raises for unreadable, truncated or hostile files.
_PIL_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


class DataError(ValueError):
    """An image or mask file could not be read; the message names the file."""


@dataclass(frozen=True)
class Sample:
    """One image and, when it has a usable one, its mask."""

    stem: str
    image_path: Path
    mask_path: Path | None = None

    @property
    def labelled(self) -> bool:
        return self.mask_path is not None


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file.

    kind: short code for filtering: ``unreadable``, ``size_mismatch``, ``missing_mask``,
        ``orphan_mask``, ``duplicate_stem``, ``ignored``, ``no_masks_folder``.
    """

    path: Path
    reason: str
    kind: str = "other"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class DatasetIndex:
    """The usable samples of a dataset folder and the problems met while scanning it."""

    root: Path
    samples: list[Sample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_stem = {s.stem: s for s in self.samples}

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __contains__(self, stem: object) -> bool:
        return stem in self._by_stem

    def __getitem__(self, stem: str) -> Sample:
        try:
            return self._by_stem[stem]
        except KeyError:
            raise KeyError(f"no image with stem {stem!r} in {self.root}") from None

    @property
    def stems(self) -> list[str]:
        """All usable image stems, sorted."""
        return [s.stem for s in self.samples]

    @property
    def labelled_stems(self) -> list[str]:
        """Stems whose image has a usable mask, sorted."""
        return [s.stem for s in self.samples if s.labelled]

    def report(self) -> str:
        """A human-readable summary: counts, then one line per problem."""
        lines = [
            f"{self.root}: {len(self.samples)} images, {len(self.labelled_stems)} with masks, "
            f"{len(self.problems)} problems"
        ]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _list_by_stem(folder: Path, problems: list[Problem]) -> dict[str, Path]:
    """Image files of ``folder`` by stem; duplicates and non-images go to ``problems``.

    Of duplicate stems the first file in sorted name order is kept, so the choice does not
    depend on directory order.
    """
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue  # hidden files (.DS_Store) and sub-folders are not data
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            problems.append(Problem(path, f"ignored {path.name}: not an image extension "
                                          f"({', '.join(sorted(IMAGE_EXTENSIONS))})", "ignored"))
            continue
        if path.stem in by_stem:
            problems.append(Problem(path, f"duplicate stem {path.stem!r}: {path.name} ignored, "
                                          f"{by_stem[path.stem].name} used", "duplicate_stem"))
            continue
        by_stem[path.stem] = path
    return by_stem


def _probe_size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the header, or the reason the file is unreadable.

    Decodes no pixels: ``verify()`` checks the container (PNG chunk CRCs, for example) but a
    truncated JPEG body only shows when :func:`load_image` decodes it.
    """
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
    except _PIL_ERRORS as err:
        return f"unreadable {path.name}: {err}"
    if size[0] < 1 or size[1] < 1:
        return f"unreadable {path.name}: empty image {size[0]}x{size[1]}"
    return size


def scan_dataset(root: str | Path) -> DatasetIndex:
    """Index ``root/images`` and ``root/masks`` by file stem without decoding pixels.

    Unreadable images are skipped; images whose mask is missing, unreadable or of another
    size are kept with ``mask_path=None`` (usable as unlabelled images); masks without an
    image and duplicate stems are reported. Raises ``ValueError`` if ``root/images`` is absent.
    """
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir} is not a folder: a dataset needs images/ (and masks/) "
                         f"whose files share stems")
    problems: list[Problem] = []
    images = _list_by_stem(images_dir, problems)
    if masks_dir.is_dir():
        masks = _list_by_stem(masks_dir, problems)
    else:
        masks = {}
        problems.append(Problem(masks_dir, "no masks/ folder: every image is unlabelled",
                                "no_masks_folder"))

    samples = []
    for stem, image_path in images.items():
        size = _probe_size(image_path)
        if isinstance(size, str):
            unused = f"; its mask {masks[stem].name} is unused" if stem in masks else ""
            problems.append(Problem(image_path, size + unused, "unreadable"))
            continue
        mask_path = masks.get(stem)
        if mask_path is None:
            if masks_dir.is_dir():
                problems.append(Problem(image_path, f"no mask for {image_path.name} in "
                                                    f"{masks_dir}: kept as unlabelled", "missing_mask"))
        else:
            mask_path = _check_mask(mask_path, size, image_path, problems)
        samples.append(Sample(stem, image_path, mask_path))

    for stem in sorted(masks.keys() - images.keys()):
        problems.append(Problem(masks[stem], f"mask {masks[stem].name} has no image "
                                             f"with stem {stem!r} in {images_dir}", "orphan_mask"))
    samples.sort(key=lambda s: s.stem)
    return DatasetIndex(root=root, samples=samples, problems=problems)


def _check_mask(mask_path: Path, image_size: tuple[int, int], image_path: Path,
                problems: list[Problem]) -> Path | None:
    """``mask_path`` if readable and the size of its image, else None with a problem."""
    size = _probe_size(mask_path)
    if isinstance(size, str):
        problems.append(Problem(mask_path, f"{size}; {image_path.name} kept as unlabelled",
                                "unreadable"))
        return None
    if size != image_size:
        problems.append(Problem(
            mask_path, f"mask {mask_path.name} is {size[0]}x{size[1]} but image "
                       f"{image_path.name} is {image_size[0]}x{image_size[1]} (WxH); "
                       f"image kept as unlabelled", "size_mismatch"))
        return None
    return mask_path


def _open_decoded(path: str | Path) -> Image.Image:
    """Open and fully decode ``path``; raise :class:`DataError` naming it on failure.

    EXIF orientation is deliberately NOT applied: masks are drawn on the raw pixel grid,
    and an EXIF rotation applied to an image but not to its (usually EXIF-less PNG) mask
    would misalign them.
    """
    try:
        with Image.open(path) as im:
            im.load()  # decoded pixels outlive the file handle closed on exit
    except _PIL_ERRORS as err:
        raise DataError(f"cannot read image file {path}: {err}") from err
    return im


def _to_255(array: np.ndarray, full_range_bits: int | None = None) -> np.ndarray:
    """Rescale an integer or float greyscale array to float64 on the [0, 255] scale.

    Integers above 255 are taken as 10/12/14/16-bit data: the smallest of those depths
    that holds the maximum (``full_range_bits`` forces one), because medical 16-bit PNGs
    often carry only 12 significant bits and dividing by 257 would leave them near black.
    Floats are taken as [0, 1] if their maximum is <= 1, else as [0, 255].
    """
    if np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array.astype(np.float64))
        return array * 255.0 if array.max(initial=0) <= 1.0 else array
    top = int(array.max(initial=0))
    if top <= 255 and full_range_bits is None:
        return array.astype(np.float64)
    bits = full_range_bits or next(b for b in (10, 12, 14, 16, 32) if top < 2 ** b)
    return np.clip(array, 0, None).astype(np.float64) * (255.0 / (2 ** bits - 1))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """:func:`_to_255`, rounded and clipped to uint8."""
    return np.clip(_to_255(array) + 0.5, 0, 255).astype(np.uint8)


def _is_high_depth(mode: str) -> bool:
    """PIL modes holding more than 8 bits per pixel (32-bit int, float, 16-bit variants)."""
    return mode in ("I", "F") or mode.startswith("I;16")


def load_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB.

    Returns (H, W, 3) uint8. Greyscale is repeated over 3 channels; alpha is dropped;
    16-bit greyscale is rescaled (see :func:`_to_uint8`). Raises :class:`DataError`.
    """
    im = _open_decoded(path)
    if _is_high_depth(im.mode):
        grey = _to_uint8(np.asarray(im))
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    # convert() handles L, LA, P, RGBA, CMYK, YCbCr, 1; RGBA loses its alpha, not composited.
    return np.asarray(im.convert("RGB")).copy()


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask; foreground is value >= 128 of its 8-bit greyscale (luma) version.

    Returns (H, W) bool. 16-bit masks are scaled by 255/65535 first (so foreground is
    >= 32896); 32-bit integer and float masks as :func:`_to_255` says. Raises :class:`DataError`.
    """
    im = _open_decoded(path)
    if _is_high_depth(im.mode):
        # Not rounded: 32895 of 65535 is 127.998, background, as documented.
        bits = 16 if im.mode.startswith("I;16") else None  # "I"/"F": judged by their values
        return _to_255(np.asarray(im), full_range_bits=bits) >= 128
    # JPEG masks carry compression noise, hence a threshold and never == 255.
    return np.asarray(im.convert("L")) >= 128


def mask_png(mask: np.ndarray) -> bytes:
    """A bool (H, W) mask as a greyscale PNG of 0/255 (what :func:`load_mask` reads back)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding. Raises :class:`DataError`."""
    size = _probe_size(Path(path))
    if isinstance(size, str):
        raise DataError(f"{Path(path)}: {size}")
    return size[1], size[0]


__all__ = [
    "IMAGE_EXTENSIONS", "DataError", "Sample", "Problem", "DatasetIndex",
    "scan_dataset", "load_image", "load_mask", "mask_png", "image_size",
]
