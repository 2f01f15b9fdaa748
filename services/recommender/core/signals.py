"""How much one watch event says about a user's taste: positive, negative, or nothing."""

from __future__ import annotations

from shared.events import WatchAction, WatchEvent

BASE = {
    WatchAction.IMPRESSION: 0.0,
    WatchAction.PLAY: 0.1,
    WatchAction.PROGRESS: 0.3,
    WatchAction.COMPLETE: 1.0,
    WatchAction.LIKE: 1.5,
    WatchAction.SHARE: 2.0,
    WatchAction.SKIP: -0.5,
    WatchAction.DISLIKE: -2.0,
}
DWELL_MS = 3000  # a play or progress held this long counts a little more


def completion(event: WatchEvent) -> float | None:
    if not event.duration_ms:
        return None
    return min(1.0, event.watch_ms / event.duration_ms)


def signal_weight(event: WatchEvent) -> float:
    """> 0: the user liked it this much; < 0: disliked; 0: no taste signal (an impression)."""
    base = BASE[event.action]
    ratio = completion(event)
    if event.action in (WatchAction.PROGRESS, WatchAction.COMPLETE) and ratio is not None:
        base *= 0.5 + ratio  # a half-watched progress is worth less than a full one
    if event.action == WatchAction.SKIP and ratio is not None:
        base *= 1.0 - ratio  # skipping late says less than skipping at once
    if event.action in (WatchAction.PLAY, WatchAction.PROGRESS) and event.watch_ms >= DWELL_MS:
        base += 0.1
    return base


def marks_seen(event: WatchEvent) -> bool:
    """Everything but a bare impression means the user has watched (part of) the video."""
    return event.action != WatchAction.IMPRESSION
