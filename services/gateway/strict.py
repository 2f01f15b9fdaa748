"""Request bodies validated as what the OpenAPI document says: strict JSON, nothing coerced.

FastAPI validates a body after ``json.loads``, in pydantic's lax Python mode, which turns ``false``
into ``0``, ``"3"`` into ``3`` and ``0`` into 1970-01-01. The routes here first validate the raw
bytes with ``model_validate_json(strict=True)``: JSON types must match the schema (a string where
the schema says date-time, an integer where it says integer), while enum values and date-times
written as JSON strings are accepted as JSON allows, and so is ``3.0`` for an integer, as JSON Schema
allows. The parser's own limits (nesting depth, invalid UTF-8, NaN) become 422 too, never a 400 or a 500.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
import pydantic_core
from pydantic import BaseModel, ValidationError


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body with this content type as JSON (no header counts as JSON)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def request_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports them: located under ``prefix``, JSON syntax named as such."""
    out = []
    for err in exc.errors(include_url=False, include_context=True, include_input=False):
        item = {"type": err["type"], "loc": (*prefix, *err["loc"]), "msg": err["msg"]}
        if err["type"] == "json_invalid":
            item["msg"] = f"JSON decode error: {err.get('ctx', {}).get('error', err['msg'])}"
        out.append(item)
    return out


def integral_floats_as_ints(value: Any) -> Any:
    """``3.0`` becomes ``3`` anywhere in parsed JSON: JSON Schema counts 3.0 as an integer, strict pydantic does not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integral_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: integral_floats_as_ints(v) for k, v in value.items()}
    return value


def validate_strict(model: type[BaseModel], raw: bytes | str, prefix: tuple[str | int, ...] = ("body",)) -> BaseModel:
    """``model`` from raw JSON in strict mode; a RequestValidationError (422) otherwise."""
    try:
        data = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:  # syntax, nesting deeper than the parser's limit, invalid UTF-8, NaN
        raise RequestValidationError([{"type": "json_invalid", "loc": prefix, "msg": f"JSON decode error: {exc}"}]) from None
    try:
        return model.model_validate_json(json.dumps(integral_floats_as_ints(data)), strict=True)
    except ValidationError as exc:
        raise RequestValidationError(request_errors(exc, prefix)) from None


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body is checked strictly (see the module docstring) before FastAPI reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field_info = getattr(self.body_field, "field_info", None)
        model = getattr(field_info, "annotation", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handler

        async def strict_handler(request: Request) -> Response:
            raw = await request.body()  # cached on the request: FastAPI reads the same bytes
            if raw and is_json(request.headers.get("content-type")):
                validate_strict(model, raw)
            return await handler(request)

        return strict_handler
