"""Production refuses to start on settings it must not use."""

from __future__ import annotations

import secrets

import pytest

from server.core.settings import Settings, SettingsError, secret_bits

PRODUCTION = {"mode": "production", "database_url": "postgresql+psycopg://kmine@db/kmine",
              "broker_url": "redis://redis:6379/0"}


@pytest.mark.parametrize("secret", ["change-me-kmine-default-secret", "a" * 16, "a" * 200, "abcdefgh12345678", "short"])
def test_guessable_secrets_are_refused(tmp_path, secret):
    with pytest.raises(SettingsError, match="too guessable"):
        Settings(data_dir=tmp_path, secret_key=secret, **PRODUCTION).check_production()


@pytest.mark.parametrize("secret", [secrets.token_hex(32), secrets.token_urlsafe(32)])
def test_random_secrets_start(tmp_path, secret):
    Settings(data_dir=tmp_path, secret_key=secret, **PRODUCTION).check_production()


def test_secret_bits():
    assert secret_bits("a" * 16) == 0 and secret_bits("0123456789abcdef" * 4) == 256


def test_embedded_mode_needs_no_secret(tmp_path):
    Settings(data_dir=tmp_path).check_production()  # the default secret is fine on one machine


def test_the_api_and_its_local_worker_share_the_cores():
    """kmine serve gives torch in the API and in its local worker a share each, not every core
    each (OpenMP threads of two busy processes spinning against each other slow both)."""
    from server.core.runtime import cores, torch_threads
    from server.serve import split_threads

    n = cores()
    api, worker = split_threads()
    assert api >= 1 and worker >= 1 and (api + worker == n or n == 1)
    assert split_threads(1) == (1, max(1, n - 1))
    assert torch_threads(Settings(threads=3)) == 3 and torch_threads(Settings()) == n


def test_a_worker_given_the_api_url_needs_a_worker_token(tmp_path):
    secret = "0123456789abcdef" * 4
    with pytest.raises(SettingsError, match="KMINE_WORKER_TOKEN"):
        Settings(data_dir=tmp_path, secret_key=secret, api_url="http://api:8000", **PRODUCTION).check_production()
    Settings(data_dir=tmp_path, secret_key=secret, api_url="http://api:8000", worker_token="t",
             **PRODUCTION).check_production()
