"""The fault suite: the platform's services as real processes on the real embedded broker, fed
hostile records, paused and killed brokers and killed services (issue 14, acceptance 3)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import broker, kafka_settings, media_root, gateway, group_id  # noqa: F401 (fixtures)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)
