"""Small readers for SQL text that DuckDB itself generated.

DuckDB's catalog gives some facts only as SQL text: the column list of an index (``duckdb_indexes().sql``),
nested type names (``STRUCT(a INTEGER, b VARCHAR)``) and enum labels. That text is DuckDB's own canonical
rendering, so a tokenizer that respects quotes and parentheses reads it exactly; nothing here is meant for
SQL that a person wrote (revision SQL files are split by DuckDB's parser instead).
"""

from __future__ import annotations

import re

_BARE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _scan(text: str) -> list[tuple[int, str, int]]:
    """Return ``(position, character, depth)`` for every character outside quotes.

    ``depth`` is the parenthesis depth before the character is applied. Quoted runs ('...' and "...",
    with doubled quotes as escapes) are skipped as a whole.
    """
    out: list[tuple[int, str, int]] = []
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < len(text):
                if text[end] == ch:
                    if end + 1 < len(text) and text[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            i = end + 1
            continue
        out.append((i, ch, depth))
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        i += 1
    return out


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split ``text`` at ``separator`` characters that are outside quotes and parentheses."""
    parts: list[str] = []
    start = 0
    for pos, ch, depth in _scan(text):
        if ch == separator and depth == 0:
            parts.append(text[start:pos].strip())
            start = pos + 1
    tail = text[start:].strip()
    if tail or parts:
        parts.append(tail)
    return parts


def parenthesized(text: str) -> tuple[str, str] | None:
    """Split ``NAME(ARGS)rest`` into ``(NAME, ARGS)`` at the first top-level parenthesis.

    Returns None when the text has no parenthesis outside quotes.
    """
    opening = None
    for pos, ch, depth in _scan(text):
        if ch == "(" and depth == 0 and opening is None:
            opening = pos
        elif ch == ")" and depth == 1 and opening is not None:
            return text[:opening].strip(), text[opening + 1 : pos]
    return None


def strip_outer_parens(text: str) -> str:
    """Remove parentheses that wrap the whole expression, as DuckDB adds around index expressions."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        inner = parenthesized(text)
        if inner is None or inner[0] != "" or len(inner[1]) != len(text) - 2:
            break
        text = inner[1].strip()
    return text


def identifier(text: str) -> str | None:
    """Return the name if ``text`` is one identifier (bare or double-quoted), else None."""
    text = text.strip()
    if _BARE_IDENTIFIER.match(text):
        return text
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        body = text[1:-1]
        if '"' not in body.replace('""', ""):
            return body.replace('""', '"')
    return None


def string_literal(text: str) -> str | None:
    """Return the value of a single-quoted SQL string literal, else None."""
    text = text.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        body = text[1:-1]
        if "'" not in body.replace("''", ""):
            return body.replace("''", "'")
    return None


def unwrap_cast(text: str) -> str | None:
    """Return ``x`` for ``CAST(x AS type)`` or ``x::type`` spanning the whole text, else None."""
    text = text.strip()
    operand = _cast_call_operand(text)
    return operand if operand is not None else _cast_operator_operand(text)


def _cast_call_operand(text: str) -> str | None:
    """``x`` of a ``CAST(x AS type)`` that is the whole text: what comes before the last top-level `` AS ``
    (the type, unlike ``x``, never holds one)."""
    call = parenthesized(text)
    if call is None or call[0].lower() != "cast" or len(call[1]) != len(text) - len("cast()"):
        return None
    args = call[1]
    cuts = [pos for pos, _, depth in _scan(args) if depth == 0 and args[pos : pos + 4].lower() == " as "]
    return args[: cuts[-1]].strip() if cuts else None


def _cast_operator_operand(text: str) -> str | None:
    """``x`` of ``x::type``: what comes before the first top-level ``::``."""
    colon = next((pos for pos, _, depth in _scan(text) if depth == 0 and text.startswith("::", pos)), None)
    return text[:colon].strip() if colon is not None else None
