"""kmine's web UI: a Gradio client of the HTTP API (``python -m webui``, or ``/ui`` of ``kmine serve``)."""
