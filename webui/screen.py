"""What keeps the screen true: the header (who is signed in, the server's datasets and models,
each dataset's active model with its Dice) and every picker of the server's lists (dataset,
split and model dropdowns, the datasets table), read again after a page load, an upload, a
split, a save, a model activation and a finished job. A refresh keeps what each picker shows
when the server still has it, so nobody's choice jumps under them."""

from __future__ import annotations

import gradio as gr

from webui.client import ApiClient
from webui.views.common import dataset_choices, model_choices, split_choices

FINISHED = ("succeeded", "failed", "cancelled")


def kept(value, choices: list[tuple[str, int]]):
    """``value`` when it is still among ``choices`` (label, id), else the first choice (None: none)."""
    ids = [c[1] for c in choices]
    if value in ids:
        return value
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        as_int = None
    return as_int if as_int in ids else (ids[0] if ids else None)


def dice_text(model: dict | None) -> str:
    if model is None:
        return "none yet"
    dice = (model.get("metrics") or {}).get("val_dice")
    return f"#{model['id']} {model['name']}" + (f" · val Dice {dice:.3f}" if dice is not None else "")


def active_models(datasets: list[dict], models: list[dict]) -> str:
    """Each dataset's active model (the one prediction and labelling use), with its Dice."""
    by_id = {m["id"]: m for m in models}
    return "; ".join(f"{d['name']} → {dice_text(by_id.get(d['active_model_id']))}" for d in datasets)


def header(api: ApiClient, me: dict, datasets: list[dict], models: list[dict]) -> str:
    head = (f"## kmine · semi-supervised segmentation by mining SAM\n"
            f"Signed in as **{me['name']}** ({me['role']}) · server `{api.api_url}` · {len(datasets)} dataset(s) · "
            f"{len(models)} model(s)")
    if not models:
        return head + " · " + no_model_note(api)
    return head + "  \n**Active model**: " + (active_models(datasets, models) or "–")


def no_model_note(api: ApiClient) -> str:
    """Without a model, say whether one is on its way (the first start queues a demo training)."""
    active = [j for j in api.jobs() if j["kind"] == "train" and j["status"] not in FINISHED]
    if not active:
        return "no model yet: launch a training in **Jobs**"
    job = active[0]
    done = round(100 * ((job.get("progress") or {}).get("fraction") or 0))
    return f"no model yet: training job #{job['id']} is making one ({job['status']}, {done}%); watch it in **Jobs**"


def finished_jobs(api: ApiClient) -> list[int]:
    """The ids of the finished jobs the server lists: when they change, a model may have come."""
    return sorted(j["id"] for j in api.jobs() if j["status"] in FINISHED)


def refresh(api: ApiClient, dataset_rows, values: dict) -> tuple[str, dict]:
    """The header and each picker's update, keyed as ``values`` (the pickers' current values:
    ``datasets`` a list of dataset dropdown values, ``splits`` a list of (dataset, split) value
    pairs, ``model`` and ``chosen``). ``dataset_rows``: the datasets table of those datasets."""
    datasets, models = api.datasets(), api.models()
    choices = dataset_choices(api, datasets)
    shown = [kept(v, choices) for v in values["datasets"]]
    splits = []
    for dataset, split in values["splits"]:
        options = split_choices(api, kept(dataset, choices))
        splits.append(gr.update(choices=options, value=kept(split, options) if split else
                                (options[-1][1] if options else None)))
    model_opts = model_choices(api, models)
    model = values["model"] if values["model"] in [m[1] for m in model_opts] else "active"
    return header(api, api.me(), datasets, models), {
        "datasets": [gr.update(choices=choices, value=v) for v in shown],
        "splits": splits,
        "model": gr.update(choices=model_opts, value=model),
        "table": dataset_rows(datasets, models),
        "chosen": gr.update(choices=choices, value=kept(values["chosen"], choices)),
    }
