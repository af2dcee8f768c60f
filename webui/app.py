"""The Gradio front end: Predict, Label, Jobs and Datasets tabs, one module each under
:mod:`webui.views`, composed here. Every call goes to the HTTP API through
:class:`webui.client.ApiClient`, with the signed-in visitor's own token (:mod:`webui.signin`,
:mod:`webui.sessions`); API errors are shown as readable messages.

The choices the views offer (modes, prompt kinds, schedules, teachers, export formats) are the server's
``/options``, read once when the UI is built. If that read fails the UI still comes up, with
those choices empty and the reason in its status line, and each page load tries again (and
fills them) until the server answers: the UI is built once, but a page is loaded often."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from fastapi import FastAPI

from webui import screen, signin
from webui.client import ApiClient, ApiError
from webui.sessions import Sessions
from webui.views.common import error_md, read_options
from webui.views.datasets import DatasetsView, dataset_rows
from webui.views.jobs import JobsView
from webui.views.label import LabelView
from webui.views.label_canvas import head as canvas_head
from webui.views.predict import PredictView

WATCH_S = 10.0  # how often a page looks whether a job finished (one small API call)
SIGN_OUT = ("<form method='post' action='{action}' style='text-align:right'>"
            "<button id='sign-out' type='submit' class='kmine-sign-out'>Sign out</button></form>")

CSS = """
.kmine-legend span {display:inline-block; padding:2px 10px; border-radius:4px; margin-right:6px; color:#111; font-weight:600}
.kmine-error {color:#b42318; font-weight:600}
#predict-metrics table, #jobs-table table {font-variant-numeric: tabular-nums}
footer {display:none !important}
.kmine-sign-out {padding:4px 14px; border:1px solid #94a3b8; border-radius:6px; background:#fff; cursor:pointer}
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
    """The UI against the server at ``api_url`` (its root or its ``/api/v1``), acting with one
    fixed ``token`` (tests and tools; a served UI is :func:`mount`'s, with a token per visitor)."""
    return compose(ApiClient(api_url, token))


def mount(app: FastAPI, api_url: str, path: str = "/ui", hint: str = "") -> Sessions:
    """The UI served on ``app`` at ``path``, behind a sign-in page: each visitor signs in with
    their own API token (admin or user), and every call made for them uses it. ``hint``: where
    the sign-in page says a token can be found. Answers the sessions (e.g. for one-time links)."""
    sessions = Sessions(api_url)
    signin.install(app, sessions, path, hint)
    ui = compose(ApiClient(api_url, sessions.current_token), sign_out=f"{path}/sign-out")
    gr.mount_gradio_app(app, ui, path=path, show_api=False, ssr_mode=False, auth_dependency=signin.gate(sessions))
    return sessions


def compose(api: ApiClient, sign_out: str | None = None) -> gr.Blocks:
    """The four tabs over one client, what a page load fills in, and what keeps it true after.
    ``sign_out``: the sign-out address, for a UI whose client acts for a signed-in visitor (its
    choices are then read at each page load, with that visitor's token)."""
    options, options_error = ({}, None) if sign_out else read_options(api)
    theme = gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
    with gr.Blocks(title="kmine", theme=theme, css=CSS, head=SHORTCUTS + canvas_head(), analytics_enabled=False) as ui:
        with gr.Row(equal_height=True):
            status = gr.Markdown(error_md(options_error) if options_error else "", elem_id="kmine-status")
            if sign_out:
                gr.HTML(SIGN_OUT.format(action=sign_out), elem_id="kmine-sign-out", min_height=0)
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

        late = (predict, jobs, datasets) if options_error or sign_out else ()  # the views waiting for the options
        fields = [field for view in late for field in view.option_fields()]
        screen = Screen(api, predict, label, jobs, datasets, status)
        seen = gr.State(None)  # the finished jobs the screen was last drawn with

        def on_load(*values):
            head, updates, finished = screen.refresh(*values)
            extra, problem = late_options(api, late)
            if problem:
                head += "\n\n" + error_md(problem)
            return head, *updates, finished, *extra

        ui.load(on_load, screen.inputs, [*screen.outputs, seen, *fields])
        screen.wire(seen, label)
    return ui


class Screen:
    """The header and the pickers of the server's lists, refreshed together (:mod:`webui.screen`)."""

    def __init__(self, api: ApiClient, predict: PredictView, label: LabelView, jobs: JobsView,
                 datasets: DatasetsView, status):
        self.api = api
        self.dataset_pickers = [predict.dataset, label.dataset, jobs.dataset]
        self.split_pickers = [(label.dataset, label.split), (jobs.dataset, jobs.split)]
        self.inputs = [*self.dataset_pickers, label.split, jobs.split, predict.model, datasets.chosen]
        self.outputs = [status, *self.dataset_pickers, label.split, jobs.split, predict.model, datasets.table,
                        datasets.chosen]
        self.datasets = datasets
        self.watch = gr.Timer(WATCH_S)  # a finished job may have made a model: look every WATCH_S

    def refresh(self, *values) -> tuple[str, list, list | None]:
        """The header and each output's update, from the pickers' current ``values``, and the
        finished jobs seen; on an API error, the error as the header and the rest unchanged."""
        n = len(self.dataset_pickers)
        picked = {"datasets": list(values[:n]),
                  "splits": [(values[1], values[n]), (values[2], values[n + 1])],
                  "model": values[n + 2], "chosen": values[n + 3]}
        try:
            head, up = screen.refresh(self.api, dataset_rows, picked)
            finished = screen.finished_jobs(self.api)
        except ApiError as err:
            return error_md(err), [gr.update() for _ in self.outputs[1:]], None
        return head, [*up["datasets"], *up["splits"], up["model"], up["table"], up["chosen"]], finished

    def wire(self, seen, label: LabelView) -> None:
        """Refresh after the Datasets view's changes (upload, split, activation, Refresh), after a
        label is saved or its save undone (the note beside Save changes), and when a job finished."""
        def redraw(*values):
            head, updates, _ = self.refresh(*values)
            return head, *updates

        for event in self.datasets.changes:
            event.then(redraw, self.inputs, self.outputs, show_progress="hidden")
        label.save_note.change(redraw, self.inputs, self.outputs, show_progress="hidden")

        def on_watch(last, *values):
            try:
                finished = screen.finished_jobs(self.api)
            except ApiError:
                return (*(gr.skip() for _ in self.outputs), last)
            if finished == last:
                return (*(gr.skip() for _ in self.outputs), last)
            head, updates, _ = self.refresh(*values)
            return head, *updates, finished

        self.watch.tick(on_watch, [seen, *self.inputs], [*self.outputs, seen], show_progress="hidden")


def late_options(api: ApiClient, views) -> tuple[list, str | None]:
    """The option fields' updates for the views built without the server's options: filled
    when the server answers now, else left as they are with the reason."""
    if not views:
        return [], None
    options, problem = read_options(api)
    if problem:
        return [gr.update() for view in views for _ in view.option_fields()], problem
    return [update for view in views for update in view.option_updates(options)], None


def _timer_switch(on: bool):
    return lambda: gr.Timer(active=on)
