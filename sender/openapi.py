"""The sender's OpenAPI schema says what the API enforces: no other form fields.

FastAPI describes the multipart body of ``POST /transmit`` as ``allOf`` the parameter
model plus the file fields, which allows any further field; the sender refuses unknown
fields (422). :func:`strict_transmit_schema` flattens the body schema into one object
with every field and ``additionalProperties: false``, and describes optional fields
without "or null" (an optional form field is absent; a multipart body has no null), so that clients and
schema-driven tools (schemathesis) see the real contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def strict_transmit_schema(app: FastAPI, path: str = "/transmit") -> None:
    """Override ``app.openapi`` so that the multipart body of ``POST path`` forbids other fields."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.get("components", {}).get("schemas", {})
        body = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        name = body["$ref"].rsplit("/", 1)[-1]
        target = components[name]
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in target.pop("allOf", []):
            ref = components[part["$ref"].rsplit("/", 1)[-1]] if "$ref" in part else part
            properties.update(ref.get("properties", {}))
            required += ref.get("required", [])
        properties.update(target.get("properties", {}))
        for prop in properties.values():
            # an optional field is absent, never "null", in a multipart body
            kinds = [a for a in prop.get("anyOf", []) if a.get("type") != "null"]
            if len(kinds) == 1 and len(prop["anyOf"]) == 2:
                prop.pop("anyOf")
                prop.update(kinds[0])
                if prop.get("default", "") is None:
                    prop.pop("default")
            if prop.get("contentMediaType"):
                prop["format"] = "binary"
        target["properties"] = properties
        target["required"] = sorted(set(required + target.get("required", [])))
        target["additionalProperties"] = False
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
