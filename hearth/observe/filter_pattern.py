"""CloudWatch Logs *term* filter patterns, parsed into a :class:`TermFilter`.

Supported (the subset that covers ``aws logs tail --filter-pattern`` in practice):

* ``""`` / only whitespace: every event matches.
* ``ERROR Exception``: every term must occur in the message (case-sensitive substring).
* ``"exact phrase"``: a double-quoted term may contain spaces and punctuation.
* ``?ERROR ?WARN``: at least one of the ``?`` terms must occur.
* ``-DEBUG``: the term must *not* occur (combinable with the two forms above).

JSON patterns (``{ $.level = "x" }``) are compiled by :mod:`json_pattern`; here they
and space-delimited (``[ip, user, ...]``) patterns are rejected with
:class:`FilterPatternError` rather than silently matching everything: a caller who asked
for structured matching must not get unfiltered data back.

Matching is done by the store in SQL (``instr(message, term)``), so the parsed form is
plain data with no behaviour beyond :meth:`TermFilter.matches`, which the tests use as
the reference semantics.
"""

from __future__ import annotations

from dataclasses import dataclass


class FilterPatternError(ValueError):
    """The pattern is malformed or uses a syntax Hearth does not implement."""


@dataclass(frozen=True, slots=True)
class TermFilter:
    """Conjunction of: all ``required`` terms, one of ``any_of`` (if non-empty), no ``excluded``."""

    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.required or self.any_of or self.excluded)

    def matches(self, message: str) -> bool:
        if any(term not in message for term in self.required):
            return False
        if self.any_of and not any(term in message for term in self.any_of):
            return False
        return not any(term in message for term in self.excluded)


def _tokens(pattern: str) -> list[str]:
    """Split on whitespace; a double-quoted run (after an optional ``?``/``-``) is one token.

    Inside quotes, ``\\"`` stands for a literal quote. Quotes are kept on the token so
    the caller can tell ``"-x"`` (literal) from ``-x`` (exclusion).
    """
    tokens: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i].isspace():
            i += 1
            continue
        start = i
        if pattern[i] in "?-" and i + 1 < n and pattern[i + 1] == '"':
            i += 1
        if pattern[i] == '"':
            i += 1
            while i < n and pattern[i] != '"':
                i += 2 if pattern[i] == "\\" else 1
            if i >= n:
                raise FilterPatternError("Invalid filter pattern: unterminated quoted term.")
            i += 1
            if i < n and not pattern[i].isspace():
                raise FilterPatternError("Invalid filter pattern: text after a quoted term.")
        else:
            while i < n and not pattern[i].isspace():
                i += 1
        tokens.append(pattern[start:i])
    return tokens


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return token


def parse_filter_pattern(pattern: str | None) -> TermFilter:
    """Parse *pattern*; raise :class:`FilterPatternError` for unsupported or bad syntax."""
    text = (pattern or "").strip()
    if not text:
        return TermFilter()
    if text[0] in "{[":
        raise FilterPatternError(
            "Invalid filter pattern: space-delimited filter patterns are not supported by "
            "this server; use term or JSON patterns."
            if text[0] == "["
            else "Invalid filter pattern: JSON patterns are compiled by json_pattern."
        )
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    for token in _tokens(text):
        bucket = required
        if token[0] == "?" and len(token) > 1:
            bucket, token = any_of, token[1:]
        elif token[0] == "-" and len(token) > 1:
            bucket, token = excluded, token[1:]
        term = _unquote(token)
        if term:
            bucket.append(term)
    return TermFilter(tuple(required), tuple(any_of), tuple(excluded))
