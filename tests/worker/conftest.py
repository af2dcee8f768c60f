"""The worker tests use the server tests' real-service fixtures (tests/server/service_fixtures.py,
importable through pytest's ``pythonpath``)."""

from service_fixtures import *
