"""``python -m worker``: the local worker ``kmine serve`` starts in embedded mode."""

from server.core.settings import SettingsError, get_settings
from worker.main import run_worker

try:
    run_worker(get_settings())
except SettingsError as err:
    raise SystemExit(f"error: {err}") from None
