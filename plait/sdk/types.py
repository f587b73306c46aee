"""Value types carried on AgentGraph edges, and how Python annotations map onto them."""

from __future__ import annotations

import typing
from typing import Any, Literal, get_args, get_origin

ValueType = Literal["text", "vec", "docs", "audio", "bool", "texts", "json"]
VALUE_TYPES: tuple[ValueType, ...] = ("text", "vec", "docs", "audio", "bool", "texts", "json")


def type_of_annotation(annotation: Any) -> ValueType:
    """The value type of a parameter or return annotation.

    str -> text, bool -> bool, bytes -> audio, list[str] -> texts; dict, Any, numbers,
    other lists and a missing annotation -> json (any value).
    """
    if annotation is str:
        return "text"
    if annotation is bool:
        return "bool"
    if annotation is bytes:
        return "audio"
    if get_origin(annotation) is list and get_args(annotation) in ((str,),):
        return "texts"
    return "json"


def accepts(expected: ValueType, got: ValueType) -> bool:
    """Whether a value of type `got` may flow into a slot that takes `expected`.

    Types must be equal, except: json takes anything, and texts takes docs (documents are texts).
    """
    return expected == got or expected == "json" or (expected == "texts" and got == "docs")


def hints(fn: Any) -> dict[str, Any]:
    """`fn`'s resolved annotations, or its raw ones when a forward reference cannot be resolved."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a string annotation naming something not importable: fall back
        return dict(getattr(fn, "__annotations__", {}))
