"""Splits: reproducibility, fractions, partitions, JSON round trip, kvasir's split.json."""

from __future__ import annotations

import json

import pytest

from kmine.data import (
    Split,
    SplitError,
    load_split,
    make_split,
    save_split,
    scan_dataset,
)

STEMS = [f"img{i:03d}" for i in range(200)]


def test_reproducible_and_order_independent():
    a = make_split(STEMS, seed=1)
    assert a == make_split(list(reversed(STEMS)), seed=1)
    b = make_split(STEMS, seed=2)
    assert a.val != b.val and a.test != b.test


def test_parts_partition_the_stems():
    split = make_split(STEMS, val_fraction=0.1, test_fraction=0.15, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (150, 20, 30)
    assert sorted(split.train + split.val + split.test) == STEMS
    assert split.labelled == split.train and split.unlabelled == []


@pytest.mark.parametrize("fraction,expected", [(1.0, 160), (0.75, 120), (0.5, 80), (0.001, 1)])
def test_labelled_fraction_counts(fraction, expected):
    split = make_split(STEMS, labelled_fraction=fraction, seed=3)
    assert len(split.labelled) == expected and split.labelled_fraction == fraction
    assert sorted(split.labelled + split.unlabelled) == sorted(split.train)
    assert not set(split.labelled) & set(split.unlabelled)


def test_labelled_subsets_are_nested_and_seeded():
    split = make_split(STEMS, seed=0)
    half, three_quarters = split.with_labelled_fraction(0.5), split.with_labelled_fraction(0.75)
    assert set(half.labelled) < set(three_quarters.labelled)
    assert half.train == split.train and half.val == split.val
    assert split.with_labelled_fraction(0.5, seed=9).labelled != half.labelled
    with pytest.raises(SplitError, match=r"\(0, 1\]"):
        split.with_labelled_fraction(0.0)


def test_save_load_round_trip(tmp_path):
    split = make_split(STEMS, labelled_fraction=0.5, seed=4)
    path = tmp_path / "sub" / "split.json"
    save_split(split, path)
    loaded = load_split(path)
    for name in ("train", "val", "test", "labelled", "unlabelled", "seed", "labelled_fraction"):
        assert getattr(loaded, name) == getattr(split, name), name
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temp file left


def test_kvasir_split_json_loads_as_is(kvasir_root):
    split = load_split(kvasir_root / "split.json")
    assert (len(split.train), len(split.val), split.test) == (800, 100, [])
    assert split.labelled == split.train and split.unlabelled == []
    assert split.seed == 2026 and split.source["dataset"] == "kvasir-seg"
    assert len(split.with_labelled_fraction(0.75).labelled) == 600
    assert split.check_against(scan_dataset(kvasir_root)) == []


def test_overlap_is_an_error_naming_the_stems(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"train": ["a", "b", "c"], "val": ["c", "d"]}))
    with pytest.raises(SplitError, match="1 stems are in both train and val: c$"):
        load_split(path)
    with pytest.raises(SplitError, match="these stems break that: x$"):
        Split(train=["a"], val=[], labelled=["x"])
    path.write_text(json.dumps({"train": ["a"]}))
    with pytest.raises(SplitError, match="val"):
        load_split(path)


def test_check_split_against_reports_missing_stems(covid_root):
    index = scan_dataset(covid_root)
    split = Split(train=index.stems[:6] + ["ghost"], val=index.stems[6:], test=["phantom"])
    messages = split.check_against(index)
    assert any("train" in m and m.endswith(": ghost") for m in messages)
    assert any("test" in m and m.endswith(": phantom") for m in messages)


def test_labelled_fraction_draws_only_annotated_stems():
    """A server's split keeps images without masks in its train (unlabelled) part: a new
    labelled fraction is drawn among the annotated ones only, and counted against them."""
    split = make_split([f"s{i}" for i in range(20)], val_fraction=0.1, test_fraction=0.1, seed=0)
    annotated = set(split.train[:8])
    again = split.with_labelled_fraction(0.5, seed=1, annotated=annotated)
    assert set(again.labelled) <= annotated and len(again.labelled) == 4
    assert sorted(again.labelled + again.unlabelled) == sorted(split.train)
    with pytest.raises(SplitError, match="no train image has a mask"):
        split.with_labelled_fraction(0.5, annotated=set())
