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
