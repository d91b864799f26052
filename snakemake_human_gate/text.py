"""Text the store writes: Unicode scalar values only, as JSON.

Python strings may hold lone surrogates (U+D800..U+DFFF): JSON's ``\\udc00`` escapes
decode to them, and so do bytes of argv that are not UTF-8. Such text cannot be encoded
as UTF-8, so a page, a list or a terminal that shows it fails. Writers refuse it
(:func:`check_text`, :func:`check_values`); what reaches an output anyway (a store
written by an earlier version) is shown with U+FFFD in place of each lone surrogate
(:func:`scrub`).
"""

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_unicode(text: str) -> bool:
    """Whether ``text`` is made of Unicode scalar values (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text: str, what: str) -> str:
    """``text``, or InvalidInput naming ``what`` when it holds a lone surrogate."""
    if not is_unicode(text):
        shown = ascii(text[:60])
        raise InvalidInput(
            f"{what} is not valid Unicode text: {shown} holds a lone surrogate "
            "(send UTF-8 text; in JSON, \\uD800-\\uDFFF escapes only as pairs)"
        )
    return text


def check_values(values: Mapping[str, Any], what: str = "field") -> None:
    """Every name and every string value of ``values`` is Unicode (InvalidInput if not)."""
    for name, value in values.items():
        check_text(name, f"{what} name")
        if isinstance(value, str):
            check_text(value, f"{what} '{name}'")


def scrub(value: Any) -> Any:
    """``value`` with each lone surrogate of its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value if is_unicode(value) else _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def json_line(data: Any) -> bytes:
    """``data`` as one line of compact JSON with sorted keys, UTF-8, ending in a newline;
    a lone surrogate that got this far is written as U+FFFD, never stored."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json_line(scrub(data))


def json_text(data: Any) -> str:
    """``data`` as JSON with one top-level key per line: readable, and written by the C
    encoder (``indent`` would switch to the pure-Python one, several times slower)."""
    if not isinstance(data, dict) or not data:
        return json.dumps(data, sort_keys=True) + "\n"
    items = (f"{json.dumps(k)}: {json.dumps(data[k], sort_keys=True)}" for k in sorted(data))
    return "{\n " + ",\n ".join(items) + "\n}\n"
