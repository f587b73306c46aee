"""The AgentDeployment CustomResourceDefinition, its openAPIV3Schema generated from cluster.spec's models.

Kubernetes wants a *structural* schema: every node typed, no `$ref`, no `anyOf` with null (an optional
field is `nullable: true`), and OpenAPI 3.0's boolean `exclusiveMinimum`. Pydantic emits JSON Schema
2020-12, so `structural_schema` inlines the definitions and rewrites those forms. The 1.20 test server
has no CEL, so every rule lives in these keywords or in the operator.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from plait.cluster.spec import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    AgentDeploymentSpec,
    AgentDeploymentStatus,
)

# Keywords a structural schema may carry over from pydantic's output as they are.
_KEPT = ("description", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern",
         "format")


class SchemaError(ValueError):
    """A model uses a JSON-schema form that has no structural equivalent (say which field, and why)."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema (camelCase aliases) as a Kubernetes structural schema."""
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, model.__name__)


def _convert(node: dict[str, Any], defs: dict[str, Any], where: str) -> dict[str, Any]:
    if "$ref" in node:
        target = _convert(defs[node["$ref"].rsplit("/", 1)[-1]], defs, where)
        if "description" in node:
            target["description"] = node["description"]
        return target
    if "allOf" in node and len(node["allOf"]) == 1:
        return _convert({**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}, defs, where)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"{where}: a union of {len(options)} types has no structural schema; "
                              "use one type (optionally None)")
        optional = _convert(options[0], defs, where)
        optional["nullable"] = True
        if "description" in node:
            optional["description"] = node["description"]
        return optional
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    if "exclusiveMinimum" in node:   # JSON Schema's number form -> OpenAPI 3.0's boolean form
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node:
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    kind = node.get("type")
    if kind is None and "enum" in node:
        kind = "string"
    if kind is None:
        raise SchemaError(f"{where}: an untyped field has no structural schema")
    out["type"] = kind
    if kind == "object":
        props = node.get("properties", {})
        if props:
            out["properties"] = {name: _convert(sub, defs, f"{where}.{name}") for name, sub in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = _convert(extra, defs, f"{where}[*]")
        elif not props:   # a free-form object: keep it rather than let the server prune it
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = _convert(node.get("items", {}), defs, f"{where}[]")
    return out


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition of AgentDeployment (apiextensions.k8s.io/v1)."""
    status = structural_schema(AgentDeploymentStatus)
    # kopf records handler progress under status.kopf: keep what the schema does not name.
    status["x-kubernetes-preserve-unknown-fields"] = True
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                      "shortNames": SHORT_NAMES},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
                    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": structural_schema(AgentDeploymentSpec),
                        "status": status,
                    },
                }},
            }],
        },
    }
