"""The worker tests use the server tests' real-service fixtures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from service_fixtures import *  # noqa: E402,F401,F403
