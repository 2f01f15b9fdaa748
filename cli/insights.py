"""``clipstream insights VIDEO_ID [--gateway URL] [--key KEY] [--days N] [--json]``.

Asks the gateway's ``POST /v1/insights`` (the key from ``--key``, else ``CLIPSTREAM_API_KEY``, else the first of
``CLIPSTREAM_GATEWAY_API_KEYS``) and prints the reach forecast, best hours, cover candidates and suggestions.
"""

from __future__ import annotations

import json
import os
import sys

import httpx
from rich.console import Console
from rich.table import Table

from shared.insights import Insights
from shared.settings import GatewaySettings


def default_key() -> str:
    return os.environ.get("CLIPSTREAM_API_KEY") or GatewaySettings().api_keys[0].get_secret_value()


def render(out: Insights, console: Console) -> None:
    reach = out.reach
    figure = "withheld" if reach.users is None else f"{reach.users:,} users"
    console.print(f"[bold]{out.video_id}[/bold] by {out.creator_id} (topic {out.topic or '-'}): reach {figure}")
    console.print(f"  {reach.reason}")
    if reach.by_topic:
        table = Table("reached users' favourite topic", "users")
        for topic, n in reach.by_topic.items():
            table.add_row(topic, f"{n:,}")
        console.print(table)
    hours = ", ".join(f"{h:02d}:00" for h in out.best_time.hours_utc) or "-"
    console.print(f"best time to publish (UTC): {hours}  ({out.best_time.reason})")
    console.print("covers: " + (", ".join(out.covers) or "none kept by the encoder"))
    for name, items in (("tags", out.tags), ("title words", out.title_words)):
        shown = ", ".join(f"{s.text} (from {', '.join(s.evidence[:3])})" for s in items[:8])
        console.print(f"suggested {name}: {shown or '-'}")
    if out.partitions_missing:
        console.print(f"[yellow]partitions without an answer (their users are not counted): "
                      f"{out.partitions_missing}[/yellow]")


def run_insights(video_id: str, gateway: str, key: str | None, days: float | None, as_json: bool) -> int:
    body: dict = {"video_id": video_id}
    if days:
        body["window_days"] = days
    try:
        resp = httpx.post(gateway.rstrip("/") + "/v1/insights", json=body,
                          headers={"X-API-Key": key or default_key()}, timeout=30)
    except httpx.HTTPError as exc:
        print(f"error: gateway at {gateway} not reachable: {type(exc).__name__}", file=sys.stderr)
        return 1
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail", resp.text[:200])
        except ValueError:
            detail = resp.text[:200]
        print(f"error: HTTP {resp.status_code}: {detail}", file=sys.stderr)
        return 2 if 400 <= resp.status_code < 500 else 1
    out = Insights.model_validate_json(resp.content)
    if as_json:
        print(json.dumps(out.model_dump()))
    else:
        render(out, Console())
    return 0
