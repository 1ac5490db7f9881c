"""``/openapi.json``: an OpenAPI 3.0.3 document generated from the route table and the models.

Pydantic writes JSON Schema 2020-12; OpenAPI 3.0 (what oapi-codegen and most Go generators
read) differs in a few places (``nullable``, ``const``, ``exclusiveMinimum``). The small
conversion below covers exactly the constructs pydantic emits for our models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker import __version__
from worker.http.auth.scopes import DESCRIPTIONS, Scope
from worker.http.schemas import ErrorBody

REF = "#/components/schemas/{model}"
STATIC_SCHEME = "bearerAuth"
JWT_SCHEME = "jwt"
SECURITY_SCHEMES = {
    STATIC_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "A static token of WORKER_AUTH_TOKENS: every scope.",
    },
    # OpenAPI 3.0 lets only an oauth2 or openIdConnect requirement name scopes, so the JWT is
    # described as an OAuth 2 client-credentials token, which is what a Go backend would get
    # from its identity provider. The worker verifies tokens and issues none: tokenUrl is a
    # placeholder (the reserved .invalid domain) for the provider's own.
    JWT_SCHEME: {
        "type": "oauth2",
        "description": "A JWT, sent as `Authorization: Bearer <token>`, signed by a key of "
        "WORKER_JWT_SECRET (HS256), WORKER_JWT_PUBLIC_KEY_FILE or WORKER_JWT_JWKS_FILE, with "
        "the iss and aud of WORKER_JWT_ISSUER and WORKER_JWT_AUDIENCE; its space-separated "
        "`scope` claim grants the scopes below. A token without an operation's scope gets 403 "
        "insufficient_scope.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "https://issuer.invalid/token",
                "scopes": {str(scope): text for scope, text in DESCRIPTIONS.items()},
            }
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One documented operation of the HTTP API."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    request_required: bool = True
    """False when the body may be left out (the request model's defaults apply)."""
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    content_types: dict[int, str] = field(default_factory=dict)
    public: bool = False
    scope: Scope | None = None
    """The scope a JWT needs (a static token has them all). None on a public operation, and on
    the two documents, which any valid token may read."""
    parameters: tuple[dict[str, Any], ...] = ()
    """Query and header parameters, as OpenAPI parameter objects. Path ones are implied (any
    string); one given here replaces its implied one (to document its pattern)."""


def _to_oas30(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_oas30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_oas30(v) for k, v in node.items() if k not in {"$schema"}}
    for key in ("anyOf", "oneOf"):
        variants = out.get(key)
        if isinstance(variants, list) and {"type": "null"} in variants:
            rest = [v for v in variants if v != {"type": "null"}]
            del out[key]
            if len(rest) == 1 and "$ref" not in rest[0]:
                out.update(rest[0])
            elif len(rest) == 1:
                out["allOf"] = rest
            else:
                out[key] = rest
            out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[bound.replace("exclusiveM", "m")] = out[bound]
            out[bound] = True
    if "examples" in out and isinstance(out["examples"], list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


def build_openapi(operations: Sequence[Operation], *, title: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for ``operations``."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for op in operations:
        if op.request is not None:
            models.append((op.request, "validation"))
        models.extend((m, "serialization") for m in op.responses.values() if m is not None)
    models.append((ErrorBody, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas = _to_oas30(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        schema: dict[str, Any] = _to_oas30(refs[(model, mode)])
        return schema

    error = {"application/json": {"schema": ref(ErrorBody, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            entry: dict[str, Any] = {"description": _reason(status)}
            ctype = op.content_types.get(status, "application/json")
            if model is not None:
                entry["content"] = {ctype: {"schema": ref(model, "serialization")}}
            elif status != 204:
                entry["content"] = {ctype: {"schema": {"type": "string"}}}
            responses[str(status)] = entry
        responses["default"] = {"description": "Error", "content": error}
        spec: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        given = {p["name"] for p in op.parameters if p.get("in") == "path"}
        params = [p for p in re.findall(r"\{(\w+)\}", op.path) if p not in given]
        if params:
            spec["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if op.parameters:
            spec.setdefault("parameters", []).extend(op.parameters)
        if op.request is not None:
            spec["requestBody"] = {
                "required": op.request_required,
                "content": {"application/json": {"schema": ref(op.request, "validation")}},
            }
        spec["security"] = _security(op)
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{STATIC_SCHEME: []}, {JWT_SCHEME: []}],
    }


def _security(op: Operation) -> list[dict[str, list[str]]]:
    """A static token, or a JWT with the operation's scope (nothing for a public one)."""
    if op.public:
        return []
    scopes = [] if op.scope is None else [str(op.scope)]
    return [{STATIC_SCHEME: []}, {JWT_SCHEME: scopes}]


def _reason(status: int) -> str:
    return HTTPStatus(status).phrase
