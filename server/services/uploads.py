"""Checking what users send before anything is stored: zips, images, masks, names.

Every refusal raises :class:`BadInput` with a message naming the file and the problem.
"""

from __future__ import annotations

import io
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from kmine.data import DataError, check_image_shape, load_image, load_mask
from server.core.errors import BadInput
from server.core.settings import Settings

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_STEM = re.compile(r"^[\w][\w .()+,\-]{0,199}$")


def check_filename(name: str) -> tuple[str, str]:
    """(stem, lower-case extension) of a plain file name; refuses paths and odd names."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise BadInput(f"file name {name!r} is not a plain file name")
    path = PurePosixPath(name)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise BadInput(f"{name}: not an image file name (allowed: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if not _STEM.match(path.stem):
        raise BadInput(f"{name}: file stems may hold letters, digits, space and . _ - ( ) + , only (at most 200)")
    return path.stem, suffix


@dataclass
class DecodedImage:
    width: int
    height: int
    rgb: np.ndarray | None = None


_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def _via_temp(data: bytes, name: str, fn):
    """``fn`` on a temporary file holding ``data``, named with ``name``'s extension when that
    is a plain one (the loaders pick a decoder by it); a client's file name is never a path here."""
    suffix = Path(name).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix if _SUFFIX.match(suffix) else ".img") as f:
        f.write(data)
        f.flush()
        return fn(f.name)


def _header_size(data: bytes, name: str, settings: Settings) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            fmt = im.format
    except Image.UnidentifiedImageError:
        raise BadInput(f"{name}: not a decodable image (not a known image format)") from None
    except Exception as err:  # PIL raises many kinds for hostile input
        raise BadInput(f"{name}: not a decodable image ({err.__class__.__name__}: {err})") from None
    if fmt not in ("PNG", "JPEG", "TIFF", "BMP", "MPO"):
        raise BadInput(f"{name}: image format {fmt} is not accepted (PNG, JPEG, TIFF, BMP)")
    if size[0] < 1 or size[1] < 1 or size[0] * size[1] > settings.max_image_pixels:
        raise BadInput(f"{name}: {size[0]}x{size[1]} pixels is outside the accepted range "
                       f"(at most {settings.max_image_pixels} pixels)")
    return size


def decode_image(data: bytes, name: str, settings: Settings, keep: bool = False) -> DecodedImage:
    """Fully decode ``data`` (refusing what is not an accepted image); (W, H) and, if ``keep``, RGB."""
    w, h = _header_size(data, name, settings)
    try:
        check_image_shape(h, w)
    except ValueError as err:
        raise BadInput(f"{name}: {err}") from None
    try:
        rgb = _via_temp(data, name, load_image)
    except (DataError, Image.DecompressionBombError) as err:
        raise BadInput(f"{name}: not a decodable image ({err})") from None
    return DecodedImage(w, h, rgb if keep else None)


def decode_mask(data: bytes, name: str, size: tuple[int, int] | None, settings: Settings) -> np.ndarray:
    """(H, W) bool foreground (value >= 128); refuses a mask whose (W, H) differs from ``size``."""
    w, h = _header_size(data, name, settings)
    if size is not None and (w, h) != tuple(size):
        raise BadInput(f"{name}: mask is {w}x{h} but its image is {size[0]}x{size[1]}; a mask must match its image's size")
    try:
        return _via_temp(data, name, load_mask)
    except (DataError, Image.DecompressionBombError) as err:
        raise BadInput(f"{name}: not a decodable mask image ({err})") from None


def read_zip(data: bytes, settings: Settings) -> list[tuple[str, bytes]]:
    """Members of a zip as (posix path, bytes), refusing absolute paths, ``..``, links,
    too many entries and excessive expansion (total size or compression ratio)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise BadInput(f"the upload is not a readable zip file ({err})") from None
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > settings.max_files:
        raise BadInput(f"the zip holds {len(infos)} files; at most {settings.max_files} are accepted", 413)
    total = 0
    out = []
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
            raise BadInput(f"zip entry {name!r} has an absolute or non-POSIX path; refused")
        if ".." in PurePosixPath(name).parts:
            raise BadInput(f"zip entry {name!r} contains '..'; refused")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BadInput(f"zip entry {name!r} is a symbolic link; refused")
        total += info.file_size
        if total > settings.max_unpacked_bytes:
            raise BadInput(f"the zip expands to more than {settings.max_unpacked_bytes} bytes; refused", 413)
        if info.compress_size and info.file_size / info.compress_size > settings.max_zip_ratio:
            raise BadInput(f"zip entry {name!r} expands {info.file_size / info.compress_size:.0f}-fold "
                           f"(more than {settings.max_zip_ratio:.0f}); refused", 413)
        content = _read_entry(archive, info)
        if len(content) != info.file_size:
            raise BadInput(f"zip entry {name!r} does not match its declared size; refused")
        out.append((name, content))
    return out


# What zipfile raises for an entry it cannot read: a CRC or header mismatch (BadZipFile), a
# corrupt deflate stream (zlib.error), an unknown method (NotImplementedError), a truncation.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError, OSError)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One entry's bytes (at most one past its declared size), or a 422 naming what is wrong."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise BadInput(f"zip entry {name} is encrypted; refused")
    try:
        with archive.open(info) as f:
            return f.read(info.file_size + 1)
    except NotImplementedError:
        raise BadInput(f"zip entry {name} uses a compression method this server does not read; "
                       "store or deflate it") from None
    except zlib.error:
        raise BadInput(f"zip entry {name} has corrupt compressed data") from None
    except zipfile.BadZipFile as err:
        problem = "its CRC-32 checksum does not match its data" if "CRC" in str(err) else "its headers disagree"
        raise BadInput(f"zip entry {name} cannot be read: {problem}") from None
    except _UNREADABLE:
        raise BadInput(f"zip entry {name} cannot be read: the archive is damaged") from None


def classify(entries: list[tuple[str, bytes]]) -> tuple[dict[str, tuple[str, bytes]], dict[str, tuple[str, bytes]], list[str]]:
    """Split entries into images and masks by folder (``images/``, ``masks/``, optionally
    under one top folder); returns (images by stem, masks by stem, ignored names)."""
    images: dict[str, tuple[str, bytes]] = {}
    masks: dict[str, tuple[str, bytes]] = {}
    ignored = []
    for path, content in entries:
        parts = PurePosixPath(path).parts
        if len(parts) >= 2 and parts[-2] in ("images", "masks") and len(parts) <= 3 and not parts[-1].startswith("."):
            target = images if parts[-2] == "images" else masks
            stem, _ = check_filename(parts[-1])
            if stem in target:
                raise BadInput(f"two {parts[-2]} share the stem {stem!r}: {target[stem][0]} and {parts[-1]}")
            target[stem] = (parts[-1], content)
        else:
            ignored.append(path)
    return images, masks, ignored
