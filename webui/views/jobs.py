"""Jobs: launch a training, watch the queue and a job's progress and curves, cancel one, and
Table 1 of the finished runs (best validation Dice / IoU by method and labelled fraction)."""

from __future__ import annotations

import json

import gradio as gr

from webui import plots
from webui.client import ApiClient, ApiError
from webui.views.common import error_md, fmt, preferred, safe, splits_update, table

# Preferred starting values, used when the server offers them (else its first choice).
START_SCHEDULE = "continuous"
START_PROMPTS = "per-component"
ENGINE_PROMPT_KINDS = "points+box"  # the engine's PromptConfig default, for jobs that set none
# Each phase ends at early stopping or at this cap. Continuous mining's second phase still gained
# at its 12th epoch (BENCHMARKS.md, session 15), so the cap leaves it room.
START_EPOCHS = 30


def prompt_settings(choice: str) -> dict:
    """A prompt-kinds choice as the jobs API's ``prompts`` settings: "per-component" is the
    one choice that is not a kind (points+box, one set per component; the engine's
    PromptConfig.parse), every other is a kind prompted once around everything."""
    if choice == "per-component":
        return {"kinds": ENGINE_PROMPT_KINDS, "per_component": True}
    return {"kinds": choice, "per_component": False}


def prompt_label(prompts) -> str:
    """A job's prompt settings named as the launcher's choices (the engine's defaults when
    unset: points+box per component)."""
    if not isinstance(prompts, dict):
        return str(prompts or "per-component")
    kinds = prompts.get("kinds", ENGINE_PROMPT_KINDS)
    if prompts.get("per_component", True):
        return "per-component" if kinds == ENGINE_PROMPT_KINDS else f"{kinds} per component"
    return kinds


def schedule_label(options: dict) -> str:
    mining = " / ".join(options.get("mining_schedules", [])) or "mining schedules"
    return f"Schedule ({mining} mine SAM for pseudo-labels)"


def option_values(options: dict) -> dict:
    """The launcher's choices and starting values from the server's options."""
    schedules, teachers, kinds = (options.get(k, []) for k in ("schedules", "teachers", "prompt_kinds"))
    return {"schedule": {"choices": schedules, "value": preferred(schedules, START_SCHEDULE)},
            "teacher": {"choices": teachers, "value": preferred(teachers, options.get("default_teacher"))},
            "kinds": {"choices": kinds, "value": preferred(kinds, START_PROMPTS)}}


class JobsView:
    def __init__(self, api: ApiClient, options: dict):
        self.api = api
        self.default_teacher = options.get("default_teacher", "")  # Table 1 names it for jobs that set none
        self._layout(options)
        self._wire()

    def _layout(self, options: dict):
        values = option_values(options)
        self.selected = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Launch a training")
                self.dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="jobs-dataset")
                self.split = gr.Dropdown(label="Split", choices=[], elem_id="jobs-split")
                self.schedule = gr.Radio(**values["schedule"], label=schedule_label(options), elem_id="jobs-schedule")
                with gr.Row():
                    fraction = gr.Number(0, label="Labelled fraction (0: the split's own)", minimum=0, maximum=1,
                                         step=0.05)
                    self.teacher = gr.Dropdown(**values["teacher"], label="Teacher")
                self.kinds = gr.Dropdown(**values["kinds"], label="Prompt kinds")
                with gr.Row():
                    epochs = gr.Number(START_EPOCHS, label="Max epochs per phase", precision=0, minimum=1, elem_id="jobs-epochs")
                    # 0 leaves the API's default (the second phase capped by max epochs); 12 is the
                    # length the few-labels benchmarks measured (BENCHMARKS.md, issue 17)
                    mining_epochs = gr.Number(0, label="Mining epochs (0: as max epochs)", precision=0, minimum=0,
                                              elem_id="jobs-mining-epochs")
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                    size = gr.Number(224, label="Image size", precision=0, minimum=32, elem_id="jobs-size")
                paper = gr.Checkbox(False, label="The paper's recipe (SAM's mask as the pseudo-label, λ 0.25, no "
                                                 "perturbation; default: kmine's, measured better)", elem_id="jobs-paper")
                self.launch_inputs = [self.split, self.schedule, fraction, self.teacher, self.kinds, epochs, mining_epochs, seed,
                                      size, paper]
                self.launch = gr.Button("Launch", variant="primary", elem_id="jobs-launch")
                self.message = gr.Markdown(elem_id="jobs-message")
            with gr.Column(scale=3, min_width=420):
                gr.Markdown("### Queue (refreshes every 2 s; select a row for its curves)")
                # rows reach the handlers as lists (the job id first), not as a pandas frame
                self.queue = gr.Dataframe(interactive=False, elem_id="jobs-table", wrap=True, type="array")
                self.detail = gr.Markdown(elem_id="jobs-detail")
                with gr.Row():
                    self.cancel = gr.Button("Cancel selected job", size="sm", variant="stop", scale=0,
                                            elem_id="jobs-cancel")
                    self.cancel_message = gr.Markdown(elem_id="jobs-cancel-message")
        with gr.Row():
            self.plots = [gr.Image(type="pil", show_label=False, interactive=False, elem_id=e, height=250,
                                   show_download_button=False, show_fullscreen_button=False)
                          for e in ("plot-loss", "plot-val", "plot-pseudo")]
        gr.Markdown("### Finished runs (Table 1: best validation Dice / IoU by method and labelled fraction)")
        self.table1 = gr.Dataframe(interactive=False, elem_id="jobs-table1", wrap=True)
        self.timer = gr.Timer(2.0, active=False)  # the app turns it on while the Jobs tab is shown

    def _wire(self):
        outputs = [self.queue, self.detail, *self.plots, self.table1]
        self.dataset.change(safe(lambda d: splits_update(self.api, d)), self.dataset, self.split)
        self.launch.click(self.do_launch, self.launch_inputs, [self.message, self.selected]) \
            .then(self.refresh, self.selected, outputs)
        self.queue.select(select_row, self.queue, self.selected).then(self.refresh, self.selected, outputs)
        self.cancel.click(self.do_cancel, self.selected, self.cancel_message)
        last_tick = gr.State(None)
        # Outside Gradio's queue (one plain request, no event stream opened and closed) and
        # without a progress overlay: queued, the ticks of an idle Jobs tab cost Chromium about
        # 4 CPU-s a minute, plain 0.8 (benchmarks/label_clicks.py)
        self.timer.tick(self.tick, [self.selected, last_tick], [*outputs, last_tick], show_progress="hidden",
                        queue=False)

    # the server's options, when they could only be read after the UI was built
    def option_fields(self) -> list:
        return [self.schedule, self.teacher, self.kinds]

    def option_updates(self, options: dict) -> list:
        self.default_teacher = options.get("default_teacher", "")  # server-wide, so shared by every page
        values = option_values(options)
        return [gr.update(**values["schedule"], label=schedule_label(options)),
                gr.update(**values["teacher"]), gr.update(**values["kinds"])]

    # ---- handlers ----
    def do_launch(self, split_id, schedule, fraction, teacher, kinds, epochs, mining_epochs, seed, size, paper=False):
        if not split_id:
            return error_md("Choose a dataset and a split (make one in Datasets)."), gr.update()
        config = {"schedule": schedule, "teacher": teacher, "max_epochs": int(epochs or START_EPOCHS), "seed": int(seed or 0),
                  "size": int(size or 224), "prompts": prompt_settings(kinds)}
        if fraction:
            config["labelled_fraction"] = float(fraction)
        if mining_epochs:
            config["mining_epochs"] = int(mining_epochs)
        if paper:
            config["paper"] = True
        try:
            job = self.api.submit("train", int(split_id), config)
        except ApiError as err:
            return error_md(err), gr.update()
        recipe = ", the paper's recipe" if paper else ""
        return f"Queued job **#{job['id']}** ({schedule}, {teacher}, {kinds}{recipe}).", job["id"]

    def refresh(self, job_id):
        """Redraw now (after a launch or a row selection)."""
        return self.tick(job_id, None)[:-1]

    def tick(self, job_id, last):
        """The timer's refresh: nothing is redrawn (no plots rendered or sent) while neither
        the queue nor the selected job changed since this page's last tick."""
        try:
            jobs = self.api.jobs()
        except ApiError as err:
            return (gr.update(), error_md(err), *(gr.update() for _ in range(4)), last)
        seen = fingerprint(jobs, job_id)
        if seen == last:
            return (*(gr.skip() for _ in range(6)), last)
        return (*self.draw(jobs, job_id), seen)

    def draw(self, jobs: list[dict], job_id):
        """The queue, the selected job (else the newest), its three charts, and Table 1."""
        finished = [j for j in jobs if j["kind"] == "train" and j["status"] == "succeeded"]
        best = table1(finished, self.default_teacher)
        if job_id is None and jobs:
            job_id = jobs[0]["id"]
        if job_id is None:
            return queue_table(jobs), "No jobs yet.", None, None, None, best
        try:
            job = self.api.job(int(job_id))
        except ApiError as err:
            return queue_table(jobs), error_md(err), None, None, None, best
        return (queue_table(jobs), job_md(job), *curves(job), best)

    def do_cancel(self, job_id):
        if not job_id:
            return error_md("Select a job in the queue first.")
        try:
            self.api.cancel(int(job_id))
        except ApiError as err:
            return error_md(err)
        return f"Asked job #{job_id} to cancel."


def select_row(evt: gr.SelectData, rows):
    """The job id of the selected queue row (its first column)."""
    try:
        return int(rows[evt.index[0]][0])
    except (TypeError, ValueError, IndexError):
        return None


def fingerprint(jobs: list[dict], job_id) -> str:
    """What the view shows of the queue and the selection: equal means nothing to redraw."""
    return json.dumps([job_id, [(j["id"], j["status"], j["progress"], j["finished_at"]) for j in jobs]],
                      sort_keys=True, default=str)


def queue_table(jobs: list[dict]) -> dict:
    rows = []
    for j in jobs:
        p, c = j["progress"] or {}, j["config"] or {}
        eta = p.get("eta_seconds")
        rows.append({"job": j["id"], "kind": j["kind"], "status": j["status"], "schedule": c.get("schedule", ""),
                     "phase": p.get("phase") or "", "epoch": p.get("epoch") if p.get("epoch") is not None else "",
                     "progress": f"{100 * (p.get('fraction') or 0):.0f}%",
                     "ETA": eta_text(eta) if eta and j["status"] == "running" else "",
                     "model": j["model_id"] or ""})
    return table(rows)


def eta_text(seconds: float) -> str:
    """Time left in the units a person plans with: minutes, and hours past the hour."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def job_md(job: dict) -> str:
    """A job's status line with a text progress bar, and the end of its error if it failed."""
    p = job["progress"] or {}
    bar = int(20 * (p.get("fraction") or 0))
    text = (f"**Job #{job['id']}** · {job['kind']} · **{job['status']}** · phase {p.get('phase') or '–'} · "
            f"epoch {p.get('epoch') if p.get('epoch') is not None else '–'}  \n"
            f"`{'█' * bar}{'░' * (20 - bar)}` {100 * (p.get('fraction') or 0):.0f}%")
    if job.get("error"):
        text += f"\n\n<div class='kmine-error'>{job['error'][-600:]}</div>"
    return text


def series(records: list[dict], keys, where) -> dict:
    """``{name: [(x, value), ...]}`` for each (record key, series name) in ``keys``; x is
    ``where(n, record)`` for the n-th record (from 1)."""
    out: dict = {}
    for n, r in enumerate(records, 1):
        for key, name in keys:
            if r.get(key) is not None:
                out.setdefault(name, []).append((where(n, r), r[key]))
    return out


def curves(job: dict):
    """Three charts over one x axis: epochs counted across phases, a dashed mark where
    mining starts; pseudo-label quality sits at the epoch it was measured in."""
    metrics = job.get("metrics") or []
    index = {(m["phase"], m["epoch"]): i for i, m in enumerate(metrics, 1)}
    marks = [(i, m["phase"]) for i, m in enumerate(metrics, 1) if i > 1 and m["phase"] != metrics[i - 2]["phase"]]

    def by_position(n, r):
        return n

    def by_epoch(n, r):
        return index.get((r.get("phase"), r.get("epoch")), n)

    loss = series(metrics, (("train_loss", "train"), ("val_loss", "validation")), by_position)
    val = series(metrics, (("val_dice", "Dice"), ("val_iou", "IoU")), by_position)
    pl = series(job.get("pseudo_label_quality") or [], (("student_dice", "student's mask"),
                                                        ("teacher_dice", "SAM's mask"),
                                                        ("pseudo_dice", "pseudo-label")), by_epoch)
    return (plots.line_chart(loss, "Loss (Dice + k·BCE)", marks=marks, y_title="loss", bounds=(0, None)),
            plots.line_chart(val, "Validation Dice / IoU", marks=marks, y_title="score", bounds=(0, 1)),
            plots.line_chart(pl, "Pseudo-label Dice vs. truth", marks=marks, y_title="Dice", bounds=(0, 1)))


def table1(finished: list[dict], default_teacher: str) -> dict:
    """Best validation Dice / IoU of the finished trainings, a row per method (schedule ·
    teacher · prompts) and a column per labelled fraction."""
    rows: dict = {}
    for j in finished:
        c, best = j["config"] or {}, ((j.get("result") or {}).get("best") or {})
        method = c.get("schedule", "?") if c.get("schedule") == "supervised" else \
            f"{c.get('schedule')} · {c.get('teacher', default_teacher)} · {prompt_label(c.get('prompts'))}"
        frac = c.get("labelled_fraction")
        col = f"{100 * frac:.0f}% labelled" if frac else "split's labelled"
        rows.setdefault(method, {}).setdefault(col, []).append((best.get("val_dice") or 0.0, best.get("val_iou"), j["id"]))
    if not rows:
        return table([{"method": "no finished training yet"}])
    return table([{"method": method, **{col: table1_cell(runs) for col, runs in cols.items()}}
                  for method, cols in rows.items()])


def table1_cell(runs: list[tuple]) -> str:
    """The best run of a cell by validation Dice, and how many runs it was chosen from."""
    dice, iou, job_id = max(runs)
    more = f", best of {len(runs)}" if len(runs) > 1 else ""
    return f"{fmt(dice)} / {fmt(iou)}  (#{job_id}{more})"
