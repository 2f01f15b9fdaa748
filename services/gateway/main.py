"""Entry point: ``clipstream run gateway``."""

from __future__ import annotations

import ipaddress

from shared.settings import GatewaySettings, ServiceSettings
from shared.service import serve
from services.gateway.app import create_app


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def refuse_exposed_default_key(settings: GatewaySettings) -> None:
    """Exit (non-zero, with the reason) when a gateway reachable from other hosts has no keys of its own.

    Without ``CLIPSTREAM_GATEWAY_API_KEYS`` the gateway would accept the built-in demo key, which is
    fine on loopback (the demo, tests) and nowhere else.
    """
    keys = [k.get_secret_value() for k in settings.api_keys]
    if "api_keys" in settings.model_fields_set and keys:
        return
    if is_loopback(settings.host):
        return
    reason = "is empty" if "api_keys" in settings.model_fields_set else "is not set"
    raise SystemExit(f"refusing to start: CLIPSTREAM_GATEWAY_API_KEYS {reason}, and the gateway would listen on "
                     f"{settings.host!r}, which other hosts can reach, with the built-in demo key. Set "
                     "CLIPSTREAM_GATEWAY_API_KEYS to a comma-separated list of keys, or listen on 127.0.0.1.")


async def run(port: int | None = None) -> None:
    settings = GatewaySettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    refuse_exposed_default_key(settings)
    await serve(create_app(settings), ServiceSettings(host=settings.host, port=settings.port))
