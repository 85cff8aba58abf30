"""Function name forms Lambda accepts: name, ARN, partial ARN, each with a qualifier."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from hearth.api.wire import validation_error
from hearth.errors import InvalidParameterValue, ResourceNotFound

FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
#: botocore's ``UnqualifiedFunctionName`` (Get/PutFunctionRecursionConfig): no qualifier.
UNQUALIFIED_FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)"
)
#: botocore's ``FunctionUrlFunctionName``: an alias may follow, never a version or $LATEST.
FUNCTION_URL_FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]{1,64})(:((?!\d+$)[0-9a-zA-Z-_]+))?"
)
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
_QUALIFIER = re.compile(QUALIFIER_PATTERN)
_ARN = re.compile(
    r"^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9-_]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?$"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str
    qualifier: str | None


def parse_function_name(
    raw: str,
    account_id: str,
    *,
    member: str = "functionName",
    max_len: int = 140,
    region: str | None = None,
) -> FunctionRef:
    """Parse the ``{FunctionName}`` of a path (already percent-decoded by the caller).

    An ARN of another region, with the caller's ``region`` given, is AWS's 404
    ``Functions from '<there>' are not reachable in this region ('<here>')``.
    """
    if len(raw) > max_len:
        raise validation_error(raw, member, f"have length less than or equal to {max_len}")
    m = _ARN.match(raw)
    if m is None:
        raise validation_error(
            raw, member, f"satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
    name = m.group("name")
    if len(name) > 64:
        raise validation_error(raw, member, "have length less than or equal to 64")
    there = m.group("region")
    if region is not None and there is not None and there != region:
        raise ResourceNotFound(
            f"Functions from '{there}' are not reachable in this region ('{region}')"
        )
    account = m.group("account")
    if account is not None and account != account_id:
        # Another account's function is invisible: it does not exist for this caller.
        raise ResourceNotFound(f"Function not found: {raw}")
    return FunctionRef(name, m.group("qualifier"))


def unqualified_function_name(raw: str, account_id: str, *, region: str | None = None) -> str:
    """The function of an ``UnqualifiedFunctionName``: a ``:qualifier`` fails the model's
    pattern (a ValidationException, as AWS's front end validates it)."""
    ref = parse_function_name(raw, account_id, region=region)
    if ref.qualifier is not None:
        raise validation_error(
            raw,
            "functionName",
            f"satisfy regular expression pattern: {UNQUALIFIED_FUNCTION_NAME_PATTERN}",
        )
    return ref.name


def function_url_target(raw: str, account_id: str, *, region: str | None = None) -> FunctionRef:
    """The function (and alias) of a ``FunctionUrlFunctionName``: a version or ``$LATEST``
    after the name fails the model's pattern."""
    ref = parse_function_name(raw, account_id, region=region)
    if ref.qualifier is not None and (ref.qualifier.isdigit() or ref.qualifier == "$LATEST"):
        raise validation_error(
            raw,
            "functionName",
            f"satisfy regular expression pattern: {FUNCTION_URL_FUNCTION_NAME_PATTERN}",
        )
    return ref


def path_param(segment: str) -> str:
    return unquote(segment)


def qualified_ref(
    segment: str, query: str, account_id: str, *, max_len: int = 140, region: str | None = None
) -> FunctionRef:
    """The function of a ``{FunctionName}`` path segment (percent-encoded) and its
    qualifier, from the name or ``?Qualifier=`` (which must agree)."""
    ref = parse_function_name(path_param(segment), account_id, max_len=max_len, region=region)
    given = dict(parse_qsl(query, keep_blank_values=True)).get("Qualifier")
    return FunctionRef(ref.name, merge_qualifier(ref, given))


def merge_qualifier(ref: FunctionRef, query_qualifier: str | None) -> str | None:
    """The qualifier from the name and from ``?Qualifier=`` must agree if both are given.

    A ``?Qualifier=`` outside the model's pattern (or past 128 characters) is the model's
    ValidationException, as on AWS, not a 404 for a version that cannot exist.
    """
    if query_qualifier and (
        len(query_qualifier) > 128 or _QUALIFIER.fullmatch(query_qualifier) is None
    ):
        if len(query_qualifier) > 128:
            raise validation_error(
                query_qualifier, "qualifier", "have length less than or equal to 128"
            )
        raise validation_error(
            query_qualifier, "qualifier", f"satisfy regular expression pattern: {QUALIFIER_PATTERN}"
        )
    if query_qualifier and ref.qualifier and query_qualifier != ref.qualifier:
        raise InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return query_qualifier or ref.qualifier
