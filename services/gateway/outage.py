"""What the gateway knows about the event bus, and quiet logs while it is away.

A publish that fails marks the bus down. While it is down, write requests are answered 503 with
``Retry-After`` at once instead of each waiting ``CLIPSTREAM_KAFKA_REQUEST_TIMEOUT_MS`` for the
broker; a probe (the same ping as ``/ready``) runs every ``PROBE_INTERVAL_S`` and marks the bus up
again as soon as the broker answers. A 503 means nothing was acknowledged: a client retries with
the same ``event_id`` / ``video_id`` / ``request_id`` (see the README, HTTP API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from shared.metrics import counter, gauge

SERVICE = "gateway"
PROBE_INTERVAL_S = 1.0
LOG_INTERVAL_S = 30.0
log = logging.getLogger("clipstream.gateway")


class BusState:
    """Up, or down since a failed publish until a probe answers."""

    def __init__(self, ping: Callable[[float], Awaitable[bool]], request_timeout_s: float,
                 probe_interval_s: float = PROBE_INTERVAL_S) -> None:
        self.ping = ping
        self.request_timeout_s = request_timeout_s
        self.probe_interval_s = probe_interval_s
        self.down_since: float | None = None
        self.reason = ""
        self.refused = 0
        self._probe: asyncio.Task | None = None
        self._up = gauge(SERVICE, "event_bus_up", "", "1 while the gateway can publish to the event bus, 0 while "
                                                       "it answers 503 at once.")
        self._up.set(1)
        self._outages = counter(SERVICE, "event_bus_outages", "Times the gateway found the event bus unavailable.")

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def retry_after_s(self) -> int:
        """What a client should wait: the probe's period plus one publish's timeout, whole seconds."""
        return max(1, math.ceil(self.probe_interval_s + self.request_timeout_s))

    def mark_down(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since, self.reason, self.refused = time.monotonic(), reason, 0
            self._up.set(0)
            self._outages.inc()
            log.error("event bus unavailable (%s): answering 503 with Retry-After %d s until the broker answers",
                      reason, self.retry_after_s)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._wait_until_up())

    def mark_up(self) -> None:
        if self.down_since is not None:
            log.warning("event bus back after %.1f s (%s); %d requests were refused with 503 meanwhile",
                        time.monotonic() - self.down_since, self.reason, self.refused)
            self.down_since = None
            self._up.set(1)

    async def _wait_until_up(self) -> None:
        while self.down:
            await asyncio.sleep(self.probe_interval_s)
            try:
                ok = await self.ping(self.request_timeout_s)
            except Exception:  # a probe that cannot even ask is a no
                ok = False
            if ok:
                self.mark_up()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, level, message template) through every ``interval_s``.

    The next one let through after a quiet spell says how many identical lines were held back,
    so an outage writes a few lines a minute instead of one per request or per reconnect.
    """

    def __init__(self, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        suppressed = last[1] if last is not None else 0
        if len(self.seen) > 1000:  # templates are few; bound the table anyway
            self.seen.clear()
        self.seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} identical lines suppressed in the last {now - last[0]:.0f} s]"
        return True


@contextlib.contextmanager
def repeated_logs_suppressed(interval_s: float = LOG_INTERVAL_S):
    """Install a :class:`RepeatFilter` on every handler of the root logger for the duration."""
    root = logging.getLogger()
    flt = RepeatFilter(interval_s)
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(flt)
    try:
        yield flt
    finally:
        for handler in handlers:
            handler.removeFilter(flt)
