"""The Gradio front end: Predict, Label, Jobs and Datasets tabs, one module each under
:mod:`webui.views`, composed here. Every call goes to the HTTP API through
:class:`webui.client.ApiClient`; API errors are shown as readable messages.

The choices the views offer (modes, prompt kinds, schedules, teachers, export formats) are the server's
``/options``, read once when the UI is built. If that read fails the UI still comes up, with
those choices empty and the reason in its status line, and each page load tries again (and
fills them) until the server answers: the UI is built once, but a page is loaded often."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from webui.client import ApiClient, ApiError
from webui.views.common import dataset_choices, error_md, model_choices, read_options
from webui.views.datasets import DatasetsView
from webui.views.jobs import JobsView
from webui.views.label import LabelView
from webui.views.label_canvas import head as canvas_head
from webui.views.predict import PredictView

FINISHED = ("succeeded", "failed", "cancelled")

CSS = """
.kmine-legend span {display:inline-block; padding:2px 10px; border-radius:4px; margin-right:6px; color:#111; font-weight:600}
.kmine-error {color:#b42318; font-weight:600}
#predict-metrics table, #jobs-table table {font-variant-numeric: tabular-nums}
footer {display:none !important}
"""

# N: next image, S: save (Label view), unless typing in a field.
SHORTCUTS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target; const tag = (t && t.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || (t && t.isContentEditable)) return;
  const id = {'n': 'label-next', 's': 'label-save'}[e.key.toLowerCase()];
  if (!id || e.ctrlKey || e.metaKey || e.altKey) return;
  const button = document.getElementById(id);
  if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
});
</script>
"""


def build_ui(api_url: str, token: str) -> gr.Blocks:
    """The UI against the server at ``api_url`` (its root or its ``/api/v1``), acting with ``token``."""
    return compose(ApiClient(api_url, token))


def compose(api: ApiClient) -> gr.Blocks:
    """The four tabs over one client, and what a page load fills in."""
    options, options_error = read_options(api)
    theme = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
    with gr.Blocks(title="kmine", theme=theme, css=CSS, head=SHORTCUTS + canvas_head(), analytics_enabled=False) as ui:
        status = gr.Markdown(error_md(options_error) if options_error else "", elem_id="kmine-status")
        with gr.Tabs():
            with gr.Tab("Predict", id="predict") as predict_tab:
                predict = PredictView(api, options)
            with gr.Tab("Label", id="label") as label_tab:
                label = LabelView(api)
            with gr.Tab("Jobs", id="jobs") as jobs_tab:
                jobs = JobsView(api, options)
            with gr.Tab("Datasets", id="datasets") as datasets_tab:
                datasets = DatasetsView(api, options)
        # The queue polls only while it is on screen.
        for t in (predict_tab, label_tab, jobs_tab, datasets_tab):
            t.select(_timer_switch(t is jobs_tab), None, jobs.timer)

        optioned = (predict, jobs, datasets) if options_error else ()  # the views still waiting for the server's options
        pickers = [predict.dataset, label.dataset, jobs.dataset, predict.model, datasets.table, datasets.chosen]
        fields = [field for view in optioned for field in view.option_fields()]

        def on_load():
            head, updates = page_state(api, datasets)
            late, problem = late_options(api, optioned)
            if problem:
                head += "\n\n" + error_md(problem)
            return head, *updates, *late

        ui.load(on_load, None, [status, *pickers, *fields])
    return ui


def page_state(api: ApiClient, datasets: DatasetsView) -> tuple[str, list]:
    """The status line and the pickers' choices (three dataset dropdowns, the model dropdown,
    the datasets table and its dropdown), the first dataset chosen."""
    try:
        choices = dataset_choices(api)
        models = model_choices(api)
        table, _ = datasets.list_all()
    except ApiError as err:
        return error_md(err), [gr.update() for _ in range(6)]
    first = choices[0][1] if choices else None
    n_models = len(models) - 1  # less the "active model" entry
    head = (f"## kmine · semi-supervised segmentation by mining SAM\n"
            f"Server `{api.api_url}` · {len(choices)} dataset(s) · {n_models} model(s)"
            + ("" if n_models else " · " + no_model_note(api)))
    # one update per output: Gradio consumes an update dict as it applies it
    return head, [*(gr.update(choices=choices, value=first) for _ in range(3)),
                  gr.update(choices=models, value="active"), table, gr.update(choices=choices, value=first)]


def late_options(api: ApiClient, views) -> tuple[list, str | None]:
    """The option fields' updates for the views built without the server's options: filled
    when the server answers now, else left as they are with the reason."""
    if not views:
        return [], None
    options, problem = read_options(api)
    if problem:
        return [gr.update() for view in views for _ in view.option_fields()], problem
    return [update for view in views for update in view.option_updates(options)], None


def no_model_note(api: ApiClient) -> str:
    """Without a model, say whether one is on its way (the first start queues a demo training)."""
    active = [j for j in api.jobs() if j["kind"] == "train" and j["status"] not in FINISHED]
    if not active:
        return "no model yet: launch a training in **Jobs**"
    job = active[0]
    done = round(100 * ((job.get("progress") or {}).get("fraction") or 0))
    return f"no model yet: training job #{job['id']} is making one ({job['status']}, {done}%); watch it in **Jobs**, then reload"


def _timer_switch(on: bool):
    return lambda: gr.Timer(active=on)
