"""Every environment variable the settings classes read: for docs, deploy checks and config tables."""

from __future__ import annotations

import json

from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from shared import settings as s

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    s.KafkaSettings, s.QdrantSettings, s.ServiceSettings, s.GatewaySettings, s.FetchSettings, s.MediaSettings, s.ModelSettings, s.EncoderSettings, s.RecommenderSettings,
    s.StylizationSettings, s.GenerationSettings,
)


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, for one settings class."""
    prefix = cls.model_config.get("env_prefix", "")
    out = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            out.update({str(choice): name for choice in alias.choices})
        else:
            out[(prefix + name).upper()] = name
    return out


def all_env_names() -> set[str]:
    return {env for cls in SETTINGS_CLASSES for env in env_names(cls)}


def catalog() -> list[dict]:
    """One row per variable: for the README's configuration table."""
    rows = []
    for cls in SETTINGS_CLASSES:
        for env, name in env_names(cls).items():
            field = cls.model_fields[name]
            default = field.default if field.default_factory is None else field.default_factory()
            rows.append({"env": env, "settings": cls.__name__, "field": name, "default": default,
                         "doc": (field.description or "").strip()})
    return rows


ROOT = Path(__file__).resolve().parents[1]


def _shown(value: object) -> str:
    if isinstance(value, Path) and value.is_absolute() and ROOT in value.parents:
        return f"<checkout>/{value.relative_to(ROOT)}"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    if isinstance(value, list):
        return ",".join(_shown(v) for v in value) or "(empty)"
    if isinstance(value, dict):  # set as JSON in the environment
        return json.dumps(value)
    return "(unset)" if value is None else str(value)


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    seen = set()
    for row in catalog():
        if row["env"] in seen:
            continue
        seen.add(row["env"])
        doc = " ".join(row["doc"].split())  # a docstring of several lines is one table cell
        lines.append(f"| `{row['env']}` | `{_shown(row['default'])}` | {doc} |")
    return "\n".join(lines)
