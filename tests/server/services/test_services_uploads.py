"""server/services/uploads.py with real images (COVID-QU-Ex PNGs, Kvasir-SEG JPEGs): file
names, decoding, masks, zips and their refusals, each a one-line message naming the file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from service_fixtures import covid_zip, make_zip
from shared_data import COVID, KVASIR, require


@pytest.fixture(scope="module")
def limits():
    from server.core.settings import Settings

    return Settings(_env_file=None, data_dir="/tmp/kmine-upload-tests")


def smallest(folder):
    return min(folder.iterdir(), key=lambda p: p.stat().st_size)


def one_line(message: str) -> bool:
    return "\n" not in message and " at 0x" not in message


@pytest.mark.parametrize("name, stem, suffix", [("a.png", "a", ".png"), ("Normal (1).PNG", "Normal (1)", ".png"),
                                                ("x-y_z+1,2.jpeg", "x-y_z+1,2", ".jpeg")])
def test_plain_file_names(name, stem, suffix):
    from server.services.uploads import check_filename

    assert check_filename(name) == (stem, suffix)


@pytest.mark.parametrize("name, words", [("", "plain file name"), ("../a.png", "plain file name"),
                                         ("a\\b.png", "plain file name"), ("a\x00.png", "plain file name"),
                                         ("a.txt", "not an image file name"), ("b\x01.png", "file stems may hold"),
                                         (".png", "not an image file name")])
def test_odd_file_names_refused(name, words):
    from server.core.errors import BadInput
    from server.services.uploads import check_filename

    with pytest.raises(BadInput, match=words):
        check_filename(name)


def test_real_images_decode(limits):
    from server.services.uploads import decode_image, decode_mask

    require(COVID)
    require(KVASIR)
    for path in (sorted((COVID / "images").iterdir())[0], smallest(KVASIR / "images")):
        data = path.read_bytes()
        with PILImage.open(path) as im:
            size = im.size
        header = decode_image(data, path.name, limits)
        assert (header.width, header.height) == size and header.rgb is None
        full = decode_image(data, path.name, limits, keep=True)
        assert full.rgb.shape == (size[1], size[0], 3) and full.rgb.dtype == np.uint8
        # a client's odd file name is never used as a path: the bytes still decode
        assert decode_image(data, "x.p\x00ng/../../etc", limits).width == size[0]
    mask_path = COVID / "masks" / sorted((COVID / "images").iterdir())[0].name
    mask = decode_mask(mask_path.read_bytes(), mask_path.name, size=(256, 256), settings=limits)
    assert mask.shape == (256, 256) and mask.dtype == bool and mask.any() and not mask.all()


def test_bad_images_and_masks_refused(limits):
    from server.core.errors import BadInput
    from server.services.uploads import decode_image, decode_mask

    require(COVID)
    png = sorted((COVID / "images").iterdir())[0].read_bytes()
    gif = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(gif, format="GIF")
    thin = io.BytesIO()  # 74 bytes that the student would have scaled to 224 x 28 672 pixels
    PILImage.new("L", (128, 1)).save(thin, format="PNG")
    cases = [
        (lambda: decode_image(thin.getvalue(), "thin.png", limits), "thin.png: the image is 128x1 pixels; each side needs at least 8"),
        (lambda: decode_image(b"not an image", "a.png", limits), "not a decodable image"),
        (lambda: decode_image(png[:200], "cut.png", limits), "cut.png"),
        (lambda: decode_image(gif.getvalue(), "g.png", limits), "format GIF is not accepted"),
        (lambda: decode_image(png, "big.png", limits.model_copy(update={"max_image_pixels": 100})), "outside the accepted range"),
        (lambda: decode_mask(png, "m.png", (255, 256), limits), "must match its image's size"),
    ]
    for call, words in cases:
        with pytest.raises(BadInput) as err:
            call()
        assert words in str(err.value) and one_line(str(err.value)), str(err.value)
        assert err.value.status == 422


def test_real_zip_read_and_classified(limits):
    from server.services.uploads import classify, content_bytes, read_zip

    entries = read_zip(covid_zip("sample"), limits)
    images, masks, ignored = classify(entries)
    assert len(images) == len(masks) == 12 and ignored == ["sample/README.txt"]
    stem = sorted(images)[0]
    assert content_bytes(images[stem][1]) == (COVID / "images" / images[stem][0]).read_bytes()


@pytest.mark.parametrize("case", ["dotdot", "absolute", "backslash", "symlink", "ratio", "total", "count", "garbage"])
def test_bad_zips_refused(limits, case):
    from server.core.errors import BadInput
    from server.services.uploads import read_zip

    data, settings, status, words = {
        "dotdot": (make_zip({"images/../../x.png": b"x"}), limits, 422, "'..'"),
        "absolute": (make_zip({"/images/x.png": b"x"}), limits, 422, "absolute"),
        "backslash": (make_zip({"images\\x.png": b"x"}), limits, 422, "non-POSIX"),
        "symlink": (make_zip({}, link="images/x.png"), limits, 422, "symbolic link"),
        "ratio": (make_zip({"images/x.png": b"\0" * 1_000_000}, compression=zipfile.ZIP_DEFLATED), limits, 413, "expands"),
        "total": (make_zip({"a": b"1" * 600, "b": b"2" * 600}), limits.model_copy(update={"max_unpacked_bytes": 1000}), 413, "expands to more"),
        "count": (make_zip({f"images/{i}.png": b"x" for i in range(4)}), limits.model_copy(update={"max_files": 3}), 413, "at most 3"),
        "garbage": (b"PK\x03\x04 not really", limits, 422, "not a readable zip"),
    }[case]
    with pytest.raises(BadInput) as err:
        read_zip(data, settings)
    assert err.value.status == status and words in str(err.value) and one_line(str(err.value))


def _damaged_zip(how: str) -> bytes:
    """A one-entry zip (``images/a.png``) damaged the way a broken or hostile upload is."""
    text = b"kmine " * 40  # compressible, so the deflated entry has a real stream to corrupt
    method = zipfile.ZIP_DEFLATED if how == "deflate" else zipfile.ZIP_STORED
    data = bytearray(make_zip({"images/a.png": text}, compression=method))
    local, central = 0, data.rindex(b"PK\x01\x02")
    name_at = local + 30  # the local header is 30 bytes, then the name
    if how == "crc":  # one byte of stored data changed
        data[name_at + len("images/a.png") + 3] ^= 0xFF
    elif how == "deflate":  # garbage in the middle of the compressed stream
        size = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0].compress_size
        middle = name_at + len("images/a.png") + size // 2
        data[middle - 1:middle + 1] = b"\xff\xff"
    elif how == "encrypted":  # the "encrypted" flag in both headers
        data[local + 6] |= 1
        data[central + 8] |= 1
    elif how == "method":  # compression method 99 (AES), in both headers
        data[local + 8:local + 10] = data[central + 10:central + 12] = (99).to_bytes(2, "little")
    elif how == "name":  # the local header names another file than the directory
        data[name_at] = ord("x")
    elif how == "undersized":  # the directory declares 3 bytes of a 240-byte entry
        data[central + 20:central + 28] = (3).to_bytes(4, "little") * 2
    return bytes(data)


@pytest.mark.parametrize("how, words", [
    ("crc", "CRC-32 checksum does not match"), ("deflate", "images/a.png"), ("encrypted", "is encrypted"),
    ("method", "compression method"), ("name", "headers disagree"), ("undersized", "CRC-32 checksum does not match"),
])
def test_damaged_zips_are_refused_with_the_reason(limits, how, words):
    """Each of these was a 500 (issue 13): now a one-line 422 naming the entry and the problem."""
    from server.core.errors import BadInput
    from server.services.uploads import read_zip

    with pytest.raises(BadInput) as err:
        read_zip(_damaged_zip(how), limits)
    assert err.value.status == 422 and words in str(err.value) and one_line(str(err.value)), str(err.value)


def test_undamaged_zip_reads():
    import zipfile as zf

    for method in (zf.ZIP_STORED, zf.ZIP_DEFLATED):
        assert zf.ZipFile(io.BytesIO(make_zip({"images/a.png": b"kmine " * 40}, compression=method))).read("images/a.png")


def test_duplicate_stems_refused():
    from server.core.errors import BadInput
    from server.services.uploads import classify

    with pytest.raises(BadInput, match="share the stem"):
        classify([("images/a.png", b"1"), ("images/a.jpg", b"2")])
    images, masks, ignored = classify([("top/images/a.png", b"1"), ("top/masks/a.png", b"2"), ("deep/er/images/b.png", b"3")])
    assert list(images) == ["a"] and list(masks) == ["a"] and ignored == ["deep/er/images/b.png"]
