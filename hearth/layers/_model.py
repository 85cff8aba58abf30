"""Layer versions: the record, ARNs as AWS forms them, and the wire shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: ``LayerName`` (botocore's model): 1..2048 characters, a name or a layer ARN whose name
#: part is 1..140 characters.
LAYER_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
    r":\d{12}:layer:[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})"
)
LAYER_NAME_MAX = 2048
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
    r":\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12})"
    r":layer:(?P<name>[a-zA-Z0-9-_]+)(?::(?P<version>[0-9]+))?"
)


def layer_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:layer:{name}"


@dataclass(frozen=True, slots=True)
class ParsedArn:
    region: str
    account_id: str
    name: str
    version: int | None


def parse_layer_arn(arn: str) -> ParsedArn | None:
    """Split a layer (version) ARN; None if it is not one."""
    m = _ARN.fullmatch(arn)
    if m is None:
        return None
    version = m.group("version")
    return ParsedArn(
        m.group("region"), m.group("account"), m.group("name"), int(version) if version else None
    )


@dataclass(frozen=True, slots=True)
class LayerVersion:
    """One published, immutable layer version (content lives in the layer code store)."""

    account_id: str
    region: str
    name: str
    version: int
    sha256_hex: str
    sha256_b64: str
    code_size: int
    unzipped_size: int
    description: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    license_info: str
    created: str

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account_id, self.name)

    @property
    def arn(self) -> str:
        return f"{self.layer_arn}:{self.version}"

    def list_item(self) -> dict[str, Any]:
        """``LayerVersionsListItem``."""
        doc: dict[str, Any] = {
            "LayerVersionArn": self.arn,
            "Version": self.version,
            "Description": self.description,
            "CreatedDate": self.created,
        }
        if self.runtimes:
            doc["CompatibleRuntimes"] = list(self.runtimes)
        if self.architectures:
            doc["CompatibleArchitectures"] = list(self.architectures)
        if self.license_info:
            doc["LicenseInfo"] = self.license_info
        return doc

    def doc(self, location: str) -> dict[str, Any]:
        """``GetLayerVersionResponse`` / ``PublishLayerVersionResponse``."""
        doc = self.list_item()
        doc.pop("LayerVersionArn")
        doc.update(
            {
                "Content": {
                    "Location": location,
                    "CodeSha256": self.sha256_b64,
                    "CodeSize": self.code_size,
                },
                "LayerArn": self.layer_arn,
                "LayerVersionArn": self.arn,
            }
        )
        return doc
