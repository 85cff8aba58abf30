"""CloudWatch Logs *JSON* filter patterns (``{ $.level = "ERROR" }``), compiled to SQL.

Supported, as CloudWatch Logs documents them ("Using filter patterns to match terms in
JSON log events"):

* ``{ SELECTOR = VALUE }`` and ``!=``: a string (quoted, or a bare word) compared with a
  JSON string, ``*`` matching any run of characters; a number compared numerically.
* ``{ SELECTOR < NUMBER }``, ``>``, ``<=``, ``>=``: numeric comparisons.
* ``{ SELECTOR IS TRUE }`` / ``IS FALSE`` / ``IS NULL`` and ``{ SELECTOR NOT EXISTS }``.
* Expressions joined with ``&&`` and ``||`` (``&&`` binds tighter), grouped by ``( )``.

A selector is ``$`` followed by ``.key`` and ``[index]`` steps. An event whose message is
not JSON never matches. Matching runs in SQLite (``json_extract``/``json_type``), inside a
``CASE WHEN json_valid(...)`` so a plain-text line never reaches the JSON functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hearth.observe.filter_pattern import FilterPatternError

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | (?P<logic>&&|\|\|)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<quoted>"(?:[^"\\]|\\.)*")
      | (?P<word>[^\s()=!<>&|"]+)
    )""",
    re.VERBOSE,
)
_STEP = re.compile(r"\.([A-Za-z0-9_\-@:$]+)|\[(\d+)\]")


def _bad(detail: str) -> FilterPatternError:
    return FilterPatternError(f"Invalid filter pattern: {detail}")


@dataclass(frozen=True, slots=True)
class JsonFilter:
    """A compiled JSON pattern: an SQL condition on the column ``e.message``."""

    sql: str
    args: tuple[object, ...]

    @property
    def is_empty(self) -> bool:
        return False


def _path(selector: str) -> str:
    if not selector.startswith("$"):
        raise _bad(f"selector {selector!r} must start with '$'.")
    out, pos = ["$"], 1
    while pos < len(selector):
        m = _STEP.match(selector, pos)
        if m is None:
            raise _bad(f"invalid selector {selector!r}.")
        out.append(f'."{m.group(1)}"' if m.group(1) is not None else f"[{m.group(2)}]")
        pos = m.end()
    return "".join(out)


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _glob(text: str) -> str:
    """A CloudWatch ``*`` wildcard string as a GLOB pattern (other GLOB syntax escaped)."""
    return "".join({"[": "[[]", "?": "[?]"}.get(ch, ch) for ch in text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise _bad(f"unexpected text at {text[pos:].strip()[:20]!r}.")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise _bad("unexpected end of pattern.")
        self.i += 1
        return tok

    def expr(self) -> tuple[str, list[object]]:
        sql, args = self.conj()
        while self.peek() == ("logic", "||"):
            self.take()
            rsql, rargs = self.conj()
            sql, args = f"({sql} OR {rsql})", args + rargs
        return sql, args

    def conj(self) -> tuple[str, list[object]]:
        sql, args = self.atom()
        while self.peek() == ("logic", "&&"):
            self.take()
            rsql, rargs = self.atom()
            sql, args = f"({sql} AND {rsql})", args + rargs
        return sql, args

    def atom(self) -> tuple[str, list[object]]:
        kind, text = self.take()
        if (kind, text) == ("paren", "("):
            inner = self.expr()
            if self.take() != ("paren", ")"):
                raise _bad("missing ')'.")
            return inner
        if kind != "word":
            raise _bad(f"expected a selector, got {text!r}.")
        path = _path(text)
        kind, op = self.take()
        if kind == "word" and op.upper() in ("IS", "NOT"):
            return self.keyword(path, op.upper())
        if kind != "op":
            raise _bad(f"expected an operator after {text!r}.")
        vkind, value = self.take()
        if vkind not in ("word", "quoted"):
            raise _bad(f"expected a value after {op!r}.")
        typ, val = "json_type(e.message, ?)", "json_extract(e.message, ?)"
        num = _number(value) if vkind == "word" else None
        if num is not None:
            sql_op = "<>" if op == "!=" else op
            return f"({typ} IN ('integer', 'real') AND {val} {sql_op} ?)", [path, path, num]
        if op not in ("=", "!="):
            raise _bad(f"{op!r} compares numbers only.")
        if vkind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        cond = f"{val} GLOB ?" if "*" in value else f"{val} = ?"
        arg = _glob(value) if "*" in value else value
        neg = "NOT " if op == "!=" else ""
        return f"({typ} = 'text' AND {neg}({cond}))", [path, path, arg]

    def keyword(self, path: str, first: str) -> tuple[str, list[object]]:
        _, word = self.take()
        word = word.upper()
        typ = "json_type(e.message, ?)"
        if first == "NOT" and word == "EXISTS":
            return f"({typ} IS NULL)", [path]
        if first == "IS" and word in ("TRUE", "FALSE", "NULL"):
            return f"({typ} = ?)", [path, word.lower()]
        raise _bad(f"unknown condition {first} {word}.")


def parse_json_pattern(pattern: str) -> JsonFilter:
    """Compile ``{ ... }``; raise :class:`FilterPatternError` for bad or unsupported syntax."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise _bad("a JSON pattern is enclosed in { }.")
    parser = _Parser(text[1:-1])
    sql, args = parser.expr()
    if parser.peek() is not None:
        raise _bad(f"unexpected {parser.peek()[1]!r}.")  # type: ignore[index]
    return JsonFilter(f"(CASE WHEN json_valid(e.message) THEN {sql} ELSE 0 END)", tuple(args))
