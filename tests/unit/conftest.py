"""Fixtures shared by the unit tests of the deployment files."""

from __future__ import annotations

import pytest

from shared.config_catalog import all_env_names


@pytest.fixture
def settings_env(monkeypatch):
    """Makes the settings classes read exactly the given environment (a compose service's or a container's);
    this process's own is restored after the test."""
    def apply(env: dict[str, str]) -> None:
        for name in all_env_names():
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
    return apply
