"""EncodingCache: keys, LRU bounds, the disk store, and the teacher encoding each image once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kmine.teacher import (
    Encoding,
    EncodingCache,
    build_teacher,
    cache_key,
    image_digest,
)
from teacher_helpers import disc_image


def fake_encoding(key: str, channels: int = 4) -> Encoding:
    return Encoding(torch.randn(channels, 64, 64), (100, 120), (853, 1024), key, "fake:teacher")


def test_key_depends_on_content_teacher_and_preprocessing():
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    base = cache_key(image, "mobilesam:mobile_sam.pt:6dbb", "S=1024")
    assert cache_key(image.copy(), "mobilesam:mobile_sam.pt:6dbb", "S=1024") == base
    assert cache_key(image, "litemedsam:lite_medsam.pth:79d8", "S=1024") != base
    assert cache_key(image, "mobilesam:mobile_sam.pt:6dbb", "S=256") != base
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert cache_key(changed, "mobilesam:mobile_sam.pt:6dbb", "S=1024") != base
    # same bytes, different shape or dtype
    assert image_digest(image.reshape(30, 20, 3)) != image_digest(image)
    assert image_digest(image.view(np.int8)) != image_digest(image)


def test_lru_eviction_at_max_items():
    cache = EncodingCache(max_items=2)
    a, b, c = (fake_encoding(k) for k in "abc")
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recently used
    cache.put("c", c)  # evicts b, the least recently used
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is a and cache.get("c") is c
    assert (cache.hits, cache.misses) == (3, 1)


def test_max_bytes_bound():
    one = fake_encoding("x").embedding.nelement() * 4
    cache = EncodingCache(max_items=100, max_bytes=2 * one)
    for key in "abcd":
        cache.put(key, fake_encoding(key))
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert "a" not in cache and "d" in cache


def test_disk_round_trip(tmp_path):
    encoding = fake_encoding("k1")
    EncodingCache(disk_dir=tmp_path).put("k1", encoding)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.pt"]  # no temp file left behind

    fresh = EncodingCache(disk_dir=tmp_path)
    loaded = fresh.get("k1")
    assert loaded is not None and fresh.hits == 1
    assert torch.equal(loaded.embedding, encoding.embedding)
    assert (loaded.original_size, loaded.input_size, loaded.key, loaded.teacher_id) == (
        (100, 120),
        (853, 1024),
        "k1",
        "fake:teacher",
    )
    assert fresh.get("other") is None and fresh.misses == 1


def test_unreadable_disk_entry_is_a_miss(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    cache = EncodingCache(disk_dir=tmp_path)
    assert cache.get("bad") is None and cache.misses == 1


def test_teacher_encodes_each_image_once(litemedsam, covid_samples):
    # The session teacher is shared with the mask tests, so its images may already be
    # cached: count encoder runs relative to what the cache held (this keeps the suite fast).
    image_a, _ = disc_image((180, 300), (60, 220), 35)
    image_b = covid_samples[1][1]
    cached = [litemedsam.cache_key(image) in litemedsam.cache for image in (image_a, image_b)]
    calls = litemedsam.encode_calls

    first = litemedsam.encode([image_a, image_a, image_a.copy()])
    assert litemedsam.encode_calls - calls == (0 if cached[0] else 1)
    assert first[0] is first[1] is first[2]
    misses = litemedsam.cache.misses
    again = litemedsam.encode([image_a.copy()])
    assert again[0] is first[0] and litemedsam.cache.misses == misses
    assert litemedsam.encode_calls - calls == (0 if cached[0] else 1)

    second = litemedsam.encode([image_b])  # a different image misses
    assert litemedsam.encode_calls - calls == (0 if cached[0] else 1) + (0 if cached[1] else 1)
    assert second[0].key != first[0].key
    assert first[0].input_size == (154, 256) and second[0].input_size == (256, 256)
    assert not first[0].embedding.is_inference()  # usable outside inference mode


def test_disk_store_spares_the_encoder(weights_dir, litemedsam, tmp_path):
    image, _ = disc_image((180, 300), (60, 220), 35)
    (encoding,) = litemedsam.encode([image])
    EncodingCache(disk_dir=tmp_path).put(encoding.key, encoding)

    # A new run: a new teacher with an empty memory cache over the same disk store.
    reloaded = build_teacher("litemedsam", weights_dir=weights_dir, cache=EncodingCache(disk_dir=tmp_path))
    assert reloaded.model is litemedsam.model and reloaded.encode_calls == 0
    (restored,) = reloaded.encode([image])
    assert reloaded.encode_calls == 0 and reloaded.cache.hits == 1
    assert torch.equal(restored.embedding, encoding.embedding)
    assert (restored.original_size, restored.input_size) == ((180, 300), (154, 256))


def test_teacher_id_is_part_of_the_key(mobilesam, litemedsam):
    image, _ = disc_image((64, 64), (32, 32), 10)
    assert mobilesam.cache_key(image) != litemedsam.cache_key(image)
    assert mobilesam.teacher_id.startswith("mobilesam:mobile_sam.pt:")
    # A cache shared by two teachers keeps their encodings apart.
    shared = EncodingCache()
    shared.put(litemedsam.cache_key(image), fake_encoding(litemedsam.cache_key(image)))
    assert shared.get(mobilesam.cache_key(image)) is None


def test_decoding_another_teachers_encoding_is_refused(mobilesam):
    with pytest.raises(ValueError, match="cannot be decoded"):
        mobilesam.decode([fake_encoding("k")], [[]])
