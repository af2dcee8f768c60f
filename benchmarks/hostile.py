"""Hostile inputs against the real API: per request, the server's resident-memory growth, its
CPU seconds, the wall time, the status and the one-line answer. All figures come from one run.

    python benchmarks/hostile.py --out benchmarks/results/hostile-cpu2.json --markdown
    python benchmarks/hostile.py --only bomb,thin            # the cases whose name holds a word
    python benchmarks/hostile.py --list                      # the cases, without running
    python benchmarks/hostile.py --table-from benchmarks/results/hostile-cpu2.json   # markdown again

It starts ``python -m server.cli serve --no-worker --no-demo --no-ui`` (this checkout's code,
embedded mode, a fresh KMINE_DATA_DIR in a temporary folder) on a free loopback port, uploads
a small random-weight student checkpoint (no training) and a setup dataset, warms the student
and SAM once, then sends every case one at a time. Every input is made here, in memory (numpy,
PIL, zipfile), before its request starts; the request body is streamed from memory in 1-MiB
pieces, with a Content-Length or chunked.

Per request: RSS growth = the highest resident memory during the request (VmHWM, reset just
before it through /proc/<pid>/clear_refs, and VmRSS sampled every 20 ms) less VmRSS before it;
CPU = the server's utime + stime (with its children's, if any) over the request; wall = from
the first byte sent to the answer read. The server is idle before each request (it waits for
its CPU to settle). A request with no answer within ``--timeout`` (or a server that died)
restarts the server before the next case.

Targets (issue 13): for every input up to the upload limit, the API's resident memory grows by
at most 500 MB (10^6 bytes) and the server spends at most 10 s of CPU before it answers or
refuses. The script exits 0 whether they are met or not, and says which are not.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6
TARGET_RSS_MB = 500.0
TARGET_CPU_S = 10.0
SIDE = 5000  # a square image at the server's default pixel limit (KMINE_MAX_IMAGE_PIXELS, 25 MP)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Inputs, made in memory


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8: a smooth blob on noise, something a student can see."""
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((xx - w / 2) / (w / 4 + 1)) ** 2 + ((yy - h / 2) / (h / 4 + 1)) ** 2))
    base = (blob[..., None] * 180 + _rng(seed).integers(0, 60, (h, w, 3))).clip(0, 255)
    return base.astype(np.uint8)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png(arr_or_im, **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    return encode(im, "PNG", **kw)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def bomb_png(w: int, h: int, rows: int = 16) -> bytes:
    """A PNG header claiming w x h RGB pixels, with only ``rows`` rows of (zero) data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * w) * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def bomb_jpeg(w: int, h: int) -> bytes:
    """A small baseline JPEG whose frame header (SOF0) claims w x h pixels."""
    data = bytearray(encode(Image.fromarray(picture(64, 64)), "JPEG", quality=90))
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def noise_png(w: int, h: int, seed: int = 0) -> bytes:
    """Incompressible RGB noise, PNG without deflate (the file is about 3 bytes a pixel)."""
    return png(_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8), compress_level=0)


def zeros_png(w: int, h: int) -> bytes:
    """w x h black RGB: a tiny file (about 1000:1) that decodes to 3 bytes a pixel."""
    return png(Image.new("RGB", (w, h)), compress_level=9)


def multipage_tiff(pages: int = 3, size: int = 256) -> bytes:
    frames = [Image.fromarray(picture(size, size, seed=i)) for i in range(pages)]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def animated_gif(frames: int = 5, size: int = 256) -> bytes:
    ims = [Image.fromarray(picture(size, size, seed=i)).convert("P") for i in range(frames)]
    return encode(ims[0], "GIF", save_all=True, append_images=ims[1:], duration=100, loop=0)


def float_tiff(size: int = 256) -> bytes:
    arr = _rng().normal(0, 1e3, (size, size)).astype(np.float32)
    arr[0, :8] = [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, 0.0, -0.0]
    return encode(Image.fromarray(arr), "TIFF")  # float32: mode F


def i16(size: int = 256) -> Image.Image:
    return Image.fromarray(_rng().integers(0, 65536, (size, size), dtype=np.uint16))


def zip_bytes(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def zip_ratio_bomb(ratio: int = 1000) -> bytes:
    """One entry of zeros deflated about ``ratio``-fold (100 MB unpacked at 1000:1)."""
    return zip_bytes([("images/a.png", bytes(100_000 * ratio))])


def zip_many_entries(n: int = 10_001) -> bytes:
    tiny = png(picture(8, 8))
    return zip_bytes([(f"images/{i:05d}.png", tiny) for i in range(n)], zipfile.ZIP_STORED)


def zip_noise_images(total_bytes: int, side: int = 2048, seed: int = 0) -> list[bytes]:
    """A stored zip of noise PNGs (side x side, about 12.6 MB each) adding up to about
    ``total_bytes``: a real, incompressible dataset. As pieces, to stream without one big copy."""
    per = 3 * side * side
    n = max(1, total_bytes // per)
    return [zip_bytes([(f"images/noise{i:03d}.png", noise_png(side, side, seed + i)) for i in range(n)],
                      zipfile.ZIP_STORED)]


def zip_random_bytes(total_bytes: int, piece: int = 32 << 20) -> list[bytes]:
    """A stored zip of random-byte entries under images/ adding up to ``total_bytes`` (zip
    overhead included): what a client can send at the upload limit. Built as pieces."""
    rng = _rng(7)
    sizes, left = [], total_bytes - 64 * 1024
    while left > 0:
        sizes.append(min(piece, left))
        left -= piece
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i, size in enumerate(sizes):
            z.writestr(f"images/random{i:03d}.png", rng.bytes(size))
    data = buf.getvalue()
    return [data]


# --------------------------------------------------------------------------------------------
# Requests: multipart bodies streamed from memory


@dataclass
class Part:
    field: str
    filename: str
    data: bytes | list[bytes]


@dataclass
class Req:
    method: str
    path: str                                  # may hold {dataset}, {image}, {big_image}, {model}
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Part] = field(default_factory=list)
    chunked: bool = False                      # no Content-Length: Transfer-Encoding chunked


def multipart(fields: dict[str, str], files: list[Part]) -> tuple[str, list[bytes]]:
    boundary = "kmine-hostile-" + os.urandom(8).hex()
    pieces: list[bytes] = []
    for name, value in fields.items():
        pieces.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for part in files:
        pieces.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{part.field}"; '
                      f'filename="{part.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        pieces.extend(part.data if isinstance(part.data, list) else [part.data])
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", pieces


def _stream(pieces: list[bytes], size: int = 1 << 20) -> Iterator[memoryview]:
    for piece in pieces:
        view = memoryview(piece)
        for i in range(0, len(view), size):
            yield view[i:i + size]


@dataclass
class Case:
    name: str
    endpoint: str                              # a label for the table
    make: Callable[[], Req]
    expect: str | None = None                  # "2xx", "4xx" or None (either)
    note: str = ""


def predict(mode: str, name: str, data: Callable[[], bytes]) -> Callable[[], Req]:
    return lambda: Req("POST", "/api/v1/predict", {"mode": mode, "model_id": "{model}"}, [Part("image", name, data())])


def dataset_zip(name: str, pieces: Callable[[], bytes | list[bytes]], chunked: bool = False) -> Callable[[], Req]:
    return lambda: Req("POST", "/api/v1/datasets", {"name": name}, [Part("archive", f"{name}.zip", pieces())], chunked)


def dataset_files(name: str, files: Callable[[], list[tuple[str, bytes]]]) -> Callable[[], Req]:
    return lambda: Req("POST", "/api/v1/datasets", {"name": name}, [Part("images", n, d) for n, d in files()])


def put_mask(name: str, data: Callable[[], bytes], image: str = "{image}") -> Callable[[], Req]:
    return lambda: Req("PUT", f"/api/v1/datasets/{{dataset}}/images/{image}/mask", {}, [Part("mask", name, data())])


# The images sent to POST /predict (each in student mode, then in refine mode): name, file name,
# bytes, expected outcome. Add a line to add a case.
IMAGES: list[tuple[str, str, Callable[[], bytes], str | None]] = [
    ("normal-512-png (baseline)", "n.png", lambda: png(picture(512, 512, seed=3)), "2xx"),
    ("thin-1x128-png", "t.png", lambda: png(picture(1, 128)), "4xx"),
    ("thin-1x4000-png", "t.png", lambda: png(picture(1, 4000)), "4xx"),
    ("thin-8x80-png (10:1)", "t.png", lambda: png(picture(8, 80)), "2xx"),
    ("ratio-10to1-100x1000-png", "t.png", lambda: png(picture(100, 1000)), "2xx"),
    ("ratio-11to1-100x1100-png", "t.png", lambda: png(picture(100, 1100)), "4xx"),
    ("bomb-header-png-30000x30000", "b.png", lambda: bomb_png(30000, 30000), "4xx"),
    ("bomb-header-jpeg-60000x60000", "b.jpg", lambda: bomb_jpeg(60000, 60000), "4xx"),
    (f"noise-{SIDE}x{SIDE}-png (at the pixel limit)", "n.png", lambda: noise_png(SIDE, SIDE), None),
    (f"zeros-{SIDE}x{SIDE}-png (at the pixel limit)", "z.png", lambda: zeros_png(SIDE, SIDE), None),
    ("noise-8000x8000-png (64 MP, over the limit)", "o.png", lambda: noise_png(8000, 8000), "4xx"),
    ("rgba-png", "a.png", lambda: png(Image.fromarray(picture(256, 256)).convert("RGBA")), "2xx"),
    ("rgba-tiff (4 channels)", "a.tif", lambda: encode(Image.fromarray(picture(256, 256)).convert("RGBA"), "TIFF"), "2xx"),
    ("la-png (2 channels)", "a.png", lambda: png(Image.fromarray(picture(256, 256)).convert("LA")), "2xx"),
    ("multipage-tiff (3 pages)", "m.tif", lambda: multipage_tiff(), None),
    ("animated-gif (5 frames)", "g.gif", lambda: animated_gif(), "4xx"),
    ("i16-png (16-bit grey)", "i.png", lambda: png(i16()), None),
    ("i16-tiff (16-bit grey)", "i.tif", lambda: encode(i16(), "TIFF"), None),
    ("float-tiff (mode F, nan/inf)", "f.tif", lambda: float_tiff(), None),
    ("palette-png", "p.png", lambda: png(Image.fromarray(picture(256, 256)).convert("P")), "2xx"),
    ("1bit-png", "b.png", lambda: png(Image.fromarray(picture(256, 256)).convert("1")), "2xx"),
    ("cmyk-jpeg", "c.jpg", lambda: encode(Image.fromarray(picture(256, 256)).convert("CMYK"), "JPEG"), "2xx"),
    ("truncated-png (half)", "t.png", lambda: (lambda b: b[: len(b) // 2])(png(picture(256, 256))), "4xx"),
]


def cases(big_bytes: int, limit: int) -> list[Case]:
    out = []
    for name, filename, data, expect in IMAGES:
        for mode in ("student", "refine"):
            out.append(Case(name, f"predict {mode}", predict(mode, filename, data), expect))
    ok = lambda: png(picture(256, 256, seed=5))  # noqa: E731
    thin = lambda: png(picture(1, 4000))  # noqa: E731
    mib = big_bytes / (1 << 20)
    out += [
        Case("zip-normal (baseline)", "datasets zip", dataset_zip("normal", lambda: zip_bytes([("images/ok.png", ok())])), "2xx"),
        Case("zip-ratio-1000to1 (100 MB entry)", "datasets zip", dataset_zip("ratio", zip_ratio_bomb), "4xx"),
        Case("zip-10001-entries", "datasets zip", dataset_zip("many", zip_many_entries), "4xx"),
        Case("zip-nested (bomb inside)", "datasets zip", dataset_zip(
            "nested", lambda: zip_bytes([("images/ok.png", ok()), ("images/inner.zip", zip_ratio_bomb())])), "4xx"),
        Case("zip-thin-image (1x4000)", "datasets zip", dataset_zip(
            "thin", lambda: zip_bytes([("images/ok.png", ok()), ("images/thin.png", thin())])), "4xx"),
        Case("zip-bomb-header-png", "datasets zip", dataset_zip(
            "bombhdr", lambda: zip_bytes([("images/bomb.png", bomb_png(30000, 30000))])), "4xx"),
        Case(f"zip-zeros-{SIDE}x{SIDE} (at the pixel limit)", "datasets zip", dataset_zip(
            "zeros", lambda: zip_bytes([("images/z.png", zeros_png(SIDE, SIDE))], zipfile.ZIP_STORED)), None),
        Case(f"zip-noise-pngs-{mib:.0f}MiB", "datasets zip",
             dataset_zip("noise", lambda: zip_noise_images(big_bytes, seed=100)), None),
        Case(f"zip-noise-pngs-{mib:.0f}MiB chunked", "datasets zip", dataset_zip(
            "noisec", lambda: zip_noise_images(big_bytes, seed=200), chunked=True), None),
        Case(f"zip-random-{(limit - (1 << 20)) / (1 << 20):.0f}MiB (limit - 1 MiB)", "datasets zip",
             dataset_zip("random", lambda: zip_random_bytes(limit - (1 << 20))), "4xx"),
        Case(f"upload-{(limit + (1 << 20)) / (1 << 20):.0f}MiB chunked (limit + 1 MiB)", "datasets zip",
             dataset_zip("over", lambda: [_rng(9).bytes(limit + (1 << 20))], chunked=True), "4xx",
             note="over the limit: outside the targets, shown for the refusal's cost"),
        Case("files-normal (baseline)", "datasets files", dataset_files("f-normal", lambda: [("ok.png", ok())]), "2xx"),
        Case("files-thin-image (1x4000)", "datasets files",
             dataset_files("f-thin", lambda: [("ok.png", ok()), ("thin.png", thin())]), "4xx"),
        Case("files-bomb-header-png", "datasets files",
             dataset_files("f-bomb", lambda: [("b.png", bomb_png(30000, 30000))]), "4xx"),
        Case(f"files-noise-{SIDE}x{SIDE}-png", "datasets files",
             dataset_files("f-noise", lambda: [("n.png", noise_png(SIDE, SIDE, seed=1))]), None),
        Case("files-multipage-tiff+float-tiff", "datasets files", dataset_files(
            "f-tiff", lambda: [("m.tif", multipage_tiff()), ("f.tif", float_tiff())]), None),
        Case("files-1001-parts", "datasets files", dataset_files(
            "f-many", lambda: [(f"{i:04d}.png", png(picture(8, 8, seed=i))) for i in range(1001)]), "4xx"),
        Case("mask-normal-256 (baseline)", "put mask", put_mask("m.png", lambda: png(picture(256, 256)[..., 0])), "2xx"),
        Case("mask-bomb-header-png", "put mask", put_mask("m.png", lambda: bomb_png(30000, 30000)), "4xx"),
        Case("mask-thin-1x4000", "put mask", put_mask("m.png", thin), "4xx"),
        Case(f"mask-noise-{SIDE}x{SIDE} (wrong size)", "put mask",
             put_mask("m.png", lambda: noise_png(SIDE, SIDE, seed=2)), "4xx"),
        Case(f"mask-zeros-{SIDE}x{SIDE} (an image at the limit)", "put mask",
             put_mask("m.png", lambda: zeros_png(SIDE, SIDE), "{big_image}"), "2xx"),
        Case("mask-float-tiff-256", "put mask", put_mask("m.tif", float_tiff), None),
        Case("mask-i16-png-256", "put mask", put_mask("m.png", lambda: png(i16())), None),
        Case("mask-multipage-tiff-256", "put mask", put_mask("m.tif", multipage_tiff), None),
        Case("mask-truncated-png-256", "put mask", put_mask("m.png", lambda: png(picture(256, 256))[:20000]), "4xx"),
    ]
    return out


# --------------------------------------------------------------------------------------------
# The server and its process's figures


def _proc_cpu(pid: int) -> float:
    """utime + stime (+ waited-for children) of ``pid`` and of its live children, in seconds."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / CLK_TCK
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class Sampler(threading.Thread):
    """VmRSS of ``pid`` every ``period`` seconds until stopped; the highest seen."""

    def __init__(self, pid: int, period: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.period, self.peak_kb = pid, period, 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            try:
                self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self._done.wait(self.period)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_kb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, work: Path, weights: Path):
        self.work, self.weights = work, weights
        self.data_dir = work / "data"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def start(self, wait: float = 180) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KMINE_")}
        env.update(KMINE_DATA_DIR=str(self.data_dir), KMINE_WEIGHTS_DIR=str(self.weights), KMINE_DEVICE="cpu",
                   PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                   PYTHONUNBUFFERED="1")
        self.log = self.work / f"serve-{self.starts}.log"
        self.starts += 1
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--no-worker", "--no-demo", "--no-ui"],
                cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.call("GET", "/health/live", timeout=5)[0] == 200:
                    self.token = (self.data_dir / "admin_token").read_text().strip()
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer /health/live within {wait:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def call(self, method: str, path: str, req: Req | None = None, timeout: float = 120,
             json_body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {getattr(self, 'token', '')}"}
        body: object = None
        if req is not None:
            ctype, pieces = multipart(req.fields, req.files)
            headers["Content-Type"] = ctype
            if not req.chunked:
                headers["Content-Length"] = str(sum(len(p) for p in pieces))
            body = _stream(pieces)
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers, encode_chunked=req is not None and req.chunked)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def settle(self, quiet: float = 0.05, window: float = 0.3, most: float = 10.0) -> None:
        """Wait until the server spends under ``quiet`` CPU seconds in ``window`` seconds."""
        deadline = time.monotonic() + most
        while time.monotonic() < deadline and self.alive():
            before = _proc_cpu(self.proc.pid)
            time.sleep(window)
            if _proc_cpu(self.proc.pid) - before < quiet:
                return


def _json(status: int, body: bytes, what: str) -> dict:
    if not 200 <= status < 300:
        raise RuntimeError(f"{what}: {status} {body[:300]!r}")
    return json.loads(body)


def tiny_checkpoint(path: Path) -> None:
    """A random-weight EfficientNet-Lite0 student (no training; the figures here are the
    server's, not the model's), 224 px, MobileSAM as teacher."""
    import torch

    from kmine.student import build_student, save_student

    torch.manual_seed(0)
    save_student(build_student(pretrained=False), path, extra={"config": {"size": 224, "teacher": "mobilesam"}})


def setup(server: Server, checkpoint: Path) -> dict:
    """A dataset (a 256-px image with a mask, and a black one at the pixel limit), the student
    uploaded and activated; returns the ids cases refer to, and the server's limits."""
    ok = png(picture(256, 256, seed=11))
    mask = png((picture(256, 256, seed=11)[..., 0] > 128).astype(np.uint8) * 255)
    archive = zip_bytes([("images/ok.png", ok), ("masks/ok.png", mask), ("images/big.png", zeros_png(SIDE, SIDE))],
                      zipfile.ZIP_STORED)  # deflating the PNG again would pass the zip-ratio limit
    req = Req("POST", "/api/v1/datasets", {"name": "setup"}, [Part("archive", "s.zip", archive)])
    ds = _json(*server.call("POST", req.path, req), "setup dataset")
    items = _json(*server.call("GET", f"/api/v1/datasets/{ds['id']}/images"), "images")["items"]
    by = {i["stem"]: i["id"] for i in items}
    req = Req("POST", "/api/v1/models", {"dataset_id": str(ds["id"]), "name": "tiny"},
              [Part("checkpoint", "tiny.pt", checkpoint.read_bytes())])
    model = _json(*server.call("POST", req.path, req), "model upload")
    _json(*server.call("POST", f"/api/v1/models/{model['id']}/activate"), "activate")
    limits = _json(*server.call("GET", "/api/v1/options"), "options")["limits"]
    return {"dataset": ds["id"], "image": by["ok"], "big_image": by["big"], "model": model["id"], "limits": limits}


def warm(server: Server, ids: dict) -> None:
    """Load the student and SAM once (not measured): each case then measures its own work."""
    image = png(picture(320, 240, seed=99))
    for mode in ("student", "refine"):
        req = Req("POST", "/api/v1/predict", {"mode": mode, "model_id": str(ids["model"])}, [Part("image", "w.png", image)])
        _json(*server.call("POST", req.path, req, timeout=300), f"warm-up {mode}")


def summary_of(status: int, body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").replace("\n", " ")
    if not isinstance(data, dict):
        return str(data)[:200]
    if "detail" in data:
        return str(data["detail"]).replace("\n", " ")
    if "mask_png" in data:
        return (f"ok: {data.get('width')}x{data.get('height')}, {len(data.get('prompts') or [])} prompt sets, "
                f"refined={data.get('refined')}, timings_ms={ {k: round(v) for k, v in (data.get('timings_ms') or {}).items()} }")
    if "counts" in data:
        return f"ok: dataset {data['id']}, {data['counts']['images']} images, ignored {len(data.get('ignored', []))}"
    if "kind" in data and "image_id" in data:
        return f"ok: mask {data['id']} ({data['kind']}) on image {data['image_id']}"
    return json.dumps(data)[:200]


def measure(server: Server, case: Case, ids: dict, timeout: float) -> dict:
    t_make = time.perf_counter()
    req = case.make()
    req.path = req.path.format(**ids)
    req.fields = {k: v.format(**ids) for k, v in req.fields.items()}
    body_bytes = sum(len(p) for part in req.files for p in (part.data if isinstance(part.data, list) else [part.data]))
    make_s = time.perf_counter() - t_make
    server.settle()
    pid = server.proc.pid
    rss_before = _status_kb(pid, "VmRSS")
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
        hwm_reset = True
    except OSError:
        hwm_reset = False
    sampler = Sampler(pid)
    cpu0 = _proc_cpu(pid)
    sampler.start()
    t0 = time.perf_counter()
    status, message = None, ""
    try:
        status, body = server.call(req.method, req.path, req, timeout=timeout)
        message = summary_of(status, body)
    except (OSError, http.client.HTTPException) as err:
        message = f"no answer: {err.__class__.__name__}: {err}"
    wall = time.perf_counter() - t0
    peak_kb = sampler.stop()
    alive = server.alive()
    cpu = _proc_cpu(pid) - cpu0 if alive else None
    if alive:
        rss_after = _status_kb(pid, "VmRSS")
        if hwm_reset:
            peak_kb = max(peak_kb, _status_kb(pid, "VmHWM"))
    else:
        rss_after = None
        message = f"server died (exit {server.proc.returncode}); {message}"
    growth = (peak_kb - rss_before) * 1024 / MB
    met = status is not None and alive and growth <= TARGET_RSS_MB and cpu is not None and cpu <= TARGET_CPU_S
    ok_status = None
    if case.expect and status is not None:
        ok_status = str(status)[0] == case.expect[0]
    return {
        "name": case.name, "endpoint": case.endpoint, "status": status, "message": message,
        "rss_before_mb": round(rss_before * 1024 / MB, 1), "rss_peak_mb": round(peak_kb * 1024 / MB, 1),
        "rss_after_mb": None if rss_after is None else round(rss_after * 1024 / MB, 1),
        "rss_growth_mb": round(growth, 1), "cpu_s": None if cpu is None else round(cpu, 2), "wall_s": round(wall, 2),
        "upload_bytes": body_bytes, "chunked": req.chunked, "make_s": round(make_s, 2),
        "met": met, "expected": case.expect, "status_as_expected": ok_status, "note": case.note,
        "peak_from": "VmHWM after clear_refs, and VmRSS every 20 ms" if hwm_reset else "VmRSS every 20 ms",
    }


# --------------------------------------------------------------------------------------------
# Report


def row_text(r: dict) -> str:
    cpu = "-" if r["cpu_s"] is None else f"{r['cpu_s']:.2f}"
    return (f"{r['name'][:40]:40} {r['endpoint']:15} {str(r['status'] or '-'):>4} {r['message'][:60]:60} "
            f"{r['rss_growth_mb']:8.1f} {cpu:>7} {r['wall_s']:7.2f}  {'met' if r['met'] else 'NOT MET'}")


def markdown(results: list[dict]) -> str:
    lines = ["| input | endpoint | status | answer (truncated) | RSS growth (MB) | CPU (s) | wall (s) | targets |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        msg = r["message"][:90].replace("|", "\\|")
        cpu = "–" if r["cpu_s"] is None else f"{r['cpu_s']:.2f}"
        verdict = "met" if r["met"] else "**not met**"
        if r.get("note"):
            verdict += " (over the limit)"
        lines.append(f"| {r['name']} | {r['endpoint']} | {r['status'] or '–'} | {msg} | {r['rss_growth_mb']:.0f} | "
                     f"{cpu} | {r['wall_s']:.2f} | {verdict} |")
    return "\n".join(lines)


def summarize(results: list[dict]) -> dict:
    judged = [r for r in results if not r.get("note")]
    missed = [r["name"] + " / " + r["endpoint"] for r in judged if not r["met"]]
    unexpected = [f"{r['name']} / {r['endpoint']}: {r['status']} (expected {r['expected']})"
                  for r in results if r["status_as_expected"] is False]
    errors = [f"{r['name']} / {r['endpoint']}: {r['status']}" for r in results if r["status"] is None or r["status"] >= 500]
    return {
        "requests": len(results), "judged": len(judged), "met": len(judged) - len(missed), "not_met": missed,
        "unexpected_status": unexpected, "server_errors_or_no_answer": errors,
        "max_rss_growth_mb": max((r["rss_growth_mb"] for r in judged), default=None),
        "max_cpu_s": max((r["cpu_s"] or 0 for r in judged), default=None),
    }


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return f"{model}, nproc {os.cpu_count()}, {mem} MiB RAM, Python {platform.python_version()}, {platform.platform()}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hostile.json", help="the JSON report")
    parser.add_argument("--only", default="", help="comma-separated words: run only the cases whose name or endpoint holds one")
    parser.add_argument("--big-mib", type=float, default=200, help="size of the noise-image dataset zips (MiB)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for one answer")
    parser.add_argument("--total-minutes", type=float, default=30, help="skip the cases left after this long")
    parser.add_argument("--weights-dir", type=Path, default=ROOT.parent / "shared" / "weights")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--table-from", type=Path, help="print the markdown table of an earlier report and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server logs, data)")
    args = parser.parse_args()

    if args.table_from:
        print(markdown(json.loads(args.table_from.read_text())["results"]))
        return
    all_cases = cases(int(args.big_mib * (1 << 20)), 512 << 20)
    if args.list:
        for c in all_cases:
            print(f"{c.name:45} {c.endpoint:15} expect {c.expect or 'either'}")
        return
    words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kmine-hostile-"))
    server = Server(work, args.weights_dir)
    results: list[dict] = []
    skipped: list[str] = []
    limit = None
    try:
        tiny_checkpoint(work / "tiny.pt")
        server.start()
        ids = setup(server, work / "tiny.pt")
        limit = ids.pop("limits")["max_upload_bytes"]
        all_cases = cases(int(args.big_mib * (1 << 20)), limit)  # at the server's own limit
        selected = [c for c in all_cases if not words or any(w in (c.name + " " + c.endpoint).lower() for w in words)]
        warm(server, ids)
        print(f"server pid {server.proc.pid} on port {server.port}; {len(selected)} cases; upload limit {limit} bytes")
        print(f"{'input':40} {'endpoint':15} {'code':>4} {'answer':60} {'RSS+ MB':>8} {'CPU s':>7} {'wall s':>7}  targets")
        for case in selected:
            if time.monotonic() - start > args.total_minutes * 60:
                skipped.append(f"{case.name} / {case.endpoint}")
                continue
            if not server.alive():
                server.start()
                warm(server, ids)
            r = measure(server, case, ids, args.timeout)
            if r["status"] is None or r["status"] >= 500:
                r["server_log_tail"] = server.log_tail()
            results.append(r)
            print(row_text(r), flush=True)
            if r["status"] is None and server.alive():  # still busy with it: start afresh
                server.stop()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    summary = summarize(results)
    summary["skipped_for_time"] = skipped
    missed = len(summary["not_met"])
    verdict = f"targets NOT met by {missed} of {summary['judged']}" if missed else "all targets met"
    print(f"\nsummary: {summary['requests']} requests; {verdict}; largest RSS growth {summary['max_rss_growth_mb']} MB "
          f"(target <= {TARGET_RSS_MB:.0f}), most CPU {summary['max_cpu_s']} s (target <= {TARGET_CPU_S:.0f}); "
          f"{len(summary['unexpected_status'])} unexpected status(es), "
          f"{len(summary['server_errors_or_no_answer'])} 5xx/no answer, "
          f"{len(skipped)} skipped for time; server starts {server.starts}")
    for line in summary["not_met"]:
        print(f"  not met: {line}")
    for line in summary["unexpected_status"] + summary["server_errors_or_no_answer"]:
        print(f"  check: {line}")
    argv = " ".join(sys.argv[1:])
    report = {
        "command": f"python benchmarks/hostile.py {argv}".strip(),
        "machine": machine(), "commit": commit(), "upload_limit_bytes": limit,
        "targets": {"rss_growth_mb": f"<= {TARGET_RSS_MB:.0f} (MB = 10^6 bytes)", "cpu_s": f"<= {TARGET_CPU_S:.0f}"},
        "elapsed_s": round(time.monotonic() - start, 1), "summary": summary, "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    if args.markdown:
        print()
        print(markdown(results))


if __name__ == "__main__":
    main()
