"""A request's JSON body, read as OpenAI's API reads it: sent as `application/json`, strict
JSON (no NaN), strict types (`"stream": "yes"` is not true, `1.5` is not an integer), and
every problem answered with a 400 in the caller's terms (see `validation_messages`).

Routes take their body through `json_body(Model)`, a FastAPI dependency, instead of a body
parameter: FastAPI would parse any JSON leniently and say "not valid JSON" of a body it could
not parse for any reason (too deeply nested, not UTF-8, no Content-Type)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from email.message import Message as MimeHeader
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from conclave.server.api_errors import ApiError, invalid_request
from conclave.server.validation_messages import json_type

M = TypeVar("M", bound=BaseModel)

_JSON_HINT = "send one JSON object with `Content-Type: application/json`"


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the request's body as `model` (ApiError 400 otherwise)."""

    async def read(request: Request) -> M:
        check_content_type(request.headers.get("content-type"))
        return parse_body(model, await request.body())

    read.__name__ = f"{model.__name__}_body"
    return read


def body_openapi(model: type[BaseModel]) -> dict[str, object]:
    """The `openapi_extra` that documents `model` as a route's JSON body (the app adds the
    model's schema to the document's components)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def check_content_type(content_type: str | None) -> None:
    """400 unless the body is declared as JSON (`application/json`, or any `+json` type)."""
    if not content_type:
        raise ApiError(
            400,
            f"The request has no Content-Type header: {_JSON_HINT}.",
            code="invalid_content_type",
        )
    if content_type == "application/json" or content_type.startswith("application/json;"):
        return  # what nearly every client sends, without parsing the header
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    if header.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        raise ApiError(
            400,
            f"The request body is sent as {header.get_content_type()}: {_JSON_HINT}.",
            code="invalid_content_type",
        )


def parse_body(model: type[M], raw: bytes) -> M:
    """`raw` parsed as strict JSON and validated as `model` in strict mode."""
    return validate(model, parse_json(raw))


def parse_json(raw: bytes) -> object:
    """Strict JSON (NaN and Infinity are not JSON); ApiError 400 saying what is wrong."""
    if not raw.strip():
        raise ApiError(400, f"The request body is empty: {_JSON_HINT}.", code="invalid_json")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except _NotJsonError as exc:
        raise ApiError(
            400,
            f"We could not parse the JSON body of your request: {exc.constant} is not a JSON "
            f"value (JSON numbers are finite). {_JSON_HINT[0].upper()}{_JSON_HINT[1:]}.",
            code="invalid_json",
        ) from None
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            f"The request body is not UTF-8 text (byte {exc.start} cannot be decoded): "
            f"{_JSON_HINT}.",
            code="invalid_json",
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"We could not parse the JSON body of your request: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}. {_JSON_HINT[0].upper()}{_JSON_HINT[1:]}.",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise ApiError(
            400,
            "The request body is JSON nested too deeply to be read (arrays and objects inside "
            "each other about a thousand levels deep); no parameter of this API needs that.",
            code="json_too_deep",
        ) from None


def validate(model: type[M], data: object) -> M:
    """`data` as `model`, with strict types; ApiError 400 naming every problem."""
    if not isinstance(data, dict):
        raise ApiError(
            400,
            f"The request body must be a JSON object, not {json_type(data)}: {_JSON_HINT}.",
            code="invalid_type",
        )
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False)) from None


class _NotJsonError(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> object:
    """`json` reads NaN, Infinity and -Infinity, which JSON has not: refuse them."""
    raise _NotJsonError(constant)
