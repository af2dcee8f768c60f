"""Real-service fixtures: see service_fixtures.py (importable through pytest's ``pythonpath``)."""

from service_fixtures import *
