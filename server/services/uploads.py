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
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image

from kmine.data import DataError, check_image_shape, load_image, load_mask
from kmine.text import shown
from server.core.errors import BadInput
from server.core.settings import Settings

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_STEM = re.compile(r"^[\w][\w .()+,\-]{0,199}$")


def check_filename(name: str) -> tuple[str, str]:
    """(stem, lower-case extension) of a plain file name; refuses paths and odd names."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise BadInput(f"file name {shown(name) or '(empty)'} is not a plain file name")
    path = PurePosixPath(name)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise BadInput(f"{shown(name)}: not an image file name (allowed: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if not _STEM.match(path.stem):
        raise BadInput(f"{shown(name)}: file stems may hold letters, digits, space and . _ - ( ) + , only (at most 200)")
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
        try:
            return fn(f.name)
        except DataError as err:  # its message names the file read: the temporary one, not the client's
            raise DataError(str(err).replace(f.name, name)) from None


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
    name = shown(name, 200)
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
    name = shown(name, 200)
    w, h = _header_size(data, name, settings)
    if size is not None and (w, h) != tuple(size):
        raise BadInput(f"{name}: mask is {w}x{h} but its image is {size[0]}x{size[1]}; a mask must match its image's size")
    try:
        return _via_temp(data, name, load_mask)
    except (DataError, Image.DecompressionBombError) as err:
        raise BadInput(f"{name}: not a decodable mask image ({err})") from None


Content = bytes | Callable[[], bytes]
"""A file's bytes, or a function that reads them when needed (a zip entry, an upload spooled to
disk): an import then holds one file at a time in memory, not the whole upload."""


def content_bytes(content: Content) -> bytes:
    return content() if callable(content) else content


def read_zip(source: bytes | BinaryIO, settings: Settings) -> list[tuple[str, Content]]:
    """Members of a zip (bytes, or a file read where it lies) as (posix path, reader of its
    bytes), refusing absolute paths, ``..``, links, encryption, damaged entries, too many
    entries and excessive expansion (total size or compression ratio). Each entry is read
    through once here (its CRC checked) without being kept; the readers read it again."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except zipfile.BadZipFile as err:
        raise BadInput(f"the upload is not a readable zip file ({err})") from None
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > settings.max_files:
        raise BadInput(f"the zip holds {len(infos)} files; at most {settings.max_files} are accepted", 413)
    total = 0
    out: list[tuple[str, Content]] = []
    for info in infos:
        name = shown(info.filename, 200)
        if info.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", info.filename) or "\\" in info.filename:
            raise BadInput(f"zip entry {name} has an absolute or non-POSIX path; refused")
        if ".." in PurePosixPath(info.filename).parts:
            raise BadInput(f"zip entry {name} contains '..'; refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BadInput(f"zip entry {name} is a symbolic link; refused")
        if info.flag_bits & 0x1:
            raise BadInput(f"zip entry {name} is encrypted; refused")
        total += info.file_size
        if total > settings.max_unpacked_bytes:
            raise BadInput(f"the zip expands to more than {settings.max_unpacked_bytes} bytes; refused", 413)
        if info.compress_size and info.file_size / info.compress_size > settings.max_zip_ratio:
            raise BadInput(f"zip entry {name} expands {info.file_size / info.compress_size:.0f}-fold "
                           f"(more than {settings.max_zip_ratio:.0f}); refused", 413)
        if _entry_size(archive, info) != info.file_size:
            raise BadInput(f"zip entry {name} does not match its declared size; refused")
        out.append((info.filename, partial(_read_entry, archive, info)))
    return out


# What zipfile raises for an entry it cannot read: a CRC or header mismatch (BadZipFile), a
# corrupt deflate stream (zlib.error), an unknown method (NotImplementedError), a truncation.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError, OSError)


@contextmanager
def _reading(info: zipfile.ZipInfo):
    """Turns what zipfile raises while an entry is read into a 422 naming the entry and the problem."""
    name = shown(info.filename, 200)
    try:
        yield
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


def _entry_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """The entry read through in 1 MiB pieces, none kept (zipfile checks the CRC at its end):
    how many bytes it holds, counting at most one past its declared size."""
    size = 0
    with _reading(info), archive.open(info) as f:
        while size <= info.file_size and (chunk := f.read(1 << 20)):
            size += len(chunk)
    return size


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One entry's bytes (checked by :func:`read_zip` before)."""
    with _reading(info), archive.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise BadInput(f"zip entry {shown(info.filename, 200)} does not match its declared size; refused")
    return data


Named = dict[str, tuple[str, Content]]  # by stem: (file name, content)


def classify(entries: Sequence[tuple[str, Content]]) -> tuple[Named, Named, list[str]]:
    """Split entries into images and masks by folder (``images/``, ``masks/``, optionally
    under one top folder); returns (images by stem, masks by stem, ignored names)."""
    images: Named = {}
    masks: Named = {}
    ignored = []
    for path, content in entries:
        parts = PurePosixPath(path).parts
        if len(parts) >= 2 and parts[-2] in ("images", "masks") and len(parts) <= 3 and not parts[-1].startswith("."):
            target = images if parts[-2] == "images" else masks
            stem, _ = check_filename(parts[-1])
            if stem in target:
                raise BadInput(f"two {parts[-2]} share the stem {stem}: {target[stem][0]} and {parts[-1]}")
            target[stem] = (parts[-1], content)
        else:
            ignored.append(path)
    return images, masks, ignored
