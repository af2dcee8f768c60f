"""What the views share: errors as one line, guarded handlers, the server's options, the
dataset / split / model pickers' choices, image bytes and table values."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import gradio as gr
import numpy as np
from PIL import Image

from webui.client import ApiClient, ApiError


def error_md(err: Exception | str) -> str:
    """An error as one line of markdown, in the UI's error style."""
    return f"<div class='kmine-error'>⚠ {err}</div>"


def safe(fn: Callable, n_out: int = 1) -> Callable:
    """Wrap a handler so an API error becomes a Gradio warning instead of a trace, and leaves
    its ``n_out`` outputs as they were."""

    def wrapped(*args):
        try:
            return fn(*args)
        except ApiError as err:
            gr.Warning(str(err))
            return gr.update() if n_out == 1 else tuple(gr.update() for _ in range(n_out))

    return wrapped


# ------------------------------------------------------------------ the server's options

def read_options(api: ApiClient) -> tuple[dict, str | None]:
    """The server's ``/options`` and no error, or ``{}`` and why not: a UI built while the server
    does not answer still comes up, with empty choices and this line in its status."""
    try:
        return api.options(), None
    except ApiError as err:
        return {}, f"cannot read the server's choices (schedules, teachers, prompt kinds): {err}"


def preferred(choices: Sequence[str], wanted: str | None) -> str | None:
    """``wanted`` when the server offers it, else its first choice (None when it offers none)."""
    if wanted in choices:
        return wanted
    return choices[0] if choices else None


# ------------------------------------------------------------------ pickers

def choice_id(choice) -> int | None:
    """Dropdown choices are ``(label, id)`` pairs; the value is the id ("active": the server's
    active model, sent as no id)."""
    if choice in (None, "", "active"):
        return None
    return int(choice)


def dataset_choices(api: ApiClient, datasets: list[dict] | None = None) -> list[tuple[str, int]]:
    """The dataset dropdown's choices (of ``datasets`` when already read)."""
    rows = api.datasets() if datasets is None else datasets
    return [(f"{d['name']} (#{d['id']}, {d['counts'].get('images', '?')} images)", d["id"]) for d in rows]


def split_choices(api: ApiClient, dataset_id) -> list[tuple[str, int]]:
    if not dataset_id:
        return []
    out = []
    for s in api.splits(int(dataset_id)):
        f = s.get("fractions") or {}
        out.append((f"split #{s['id']} · labelled fraction {f.get('labelled', '?')} · seed {s['seed']}", s["id"]))
    return out


def splits_update(api: ApiClient, dataset_id):
    """A split dropdown's choices for a dataset, the newest split chosen."""
    choices = split_choices(api, dataset_id)
    return gr.update(choices=choices, value=choices[-1][1] if choices else None)


def model_label(m: dict) -> str:
    """A model as its choice names it: id, name, validation Dice, ★ when active."""
    dice = (m.get("metrics") or {}).get("val_dice")
    label = f"#{m['id']} {m['name']}" + (f" · val Dice {dice:.3f}" if dice is not None else "")
    return label + (" ★ active" if m["active"] else "")


def model_choices(api: ApiClient, models: list[dict] | None = None) -> list[tuple[str, int | str]]:
    """The Predict model dropdown: its dataset's active model first, then each model, newest first."""
    rows = api.models() if models is None else models
    return [("active model", "active"), *((model_label(m), m["id"]) for m in reversed(rows))]


# ------------------------------------------------------------------ values

def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict]) -> dict:
    """Rows as a ``gr.Dataframe`` value: columns in the order they first appear, a missing cell
    blank. A plain dict, so the UI needs no pandas."""
    headers = list(dict.fromkeys(key for row in rows for key in row))
    return {"headers": headers, "data": [[row.get(key, "") for key in headers] for row in rows]}


def png_bytes(image) -> bytes:
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
