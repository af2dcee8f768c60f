"""The export formats, written once: the API's ``format`` choice, ``GET /options``, the
``kmine export`` command and the web UI read this list. Kept apart from
:mod:`server.services.export` so the command line reads it without importing the database
libraries (``kmine export --help`` must stay light)."""

from __future__ import annotations

# masks: a zip of masks/<stem>.png (0/255) and labels.json; coco: one COCO JSON file (RLE)
EXPORT_FORMATS = ("masks", "coco")
