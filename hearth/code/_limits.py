"""Limits applied to uploaded deployment packages.

The size limits are AWS Lambda's published quotas. The entry-count and ratio caps are
Hearth's own (AWS does not document any); they exist because the archive is hostile
input and every entry costs memory while parsing, an inode and a few syscalls while
extracting.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeLimits:
    """What a deployment package may be. Frozen so one instance can be shared freely.

    ``max_zipped``
        Largest zip accepted in a request, inclusive (AWS: 50 MB, 52,428,800 bytes).
    ``max_unzipped``
        The total extracted size must be *smaller* than this, exactly as AWS words its
        error ("Unzipped size must be smaller than 262144000 bytes").
    ``max_entries``
        Most entries (files, directories, symlinks) an archive may hold, counting the
        directories its paths imply without listing them. 65,535 is the
        most a classic, non-Zip64 archive can declare: generous for ``node_modules``
        trees, which routinely pass 20,000 files, while it bounds the parse to some
        tens of MB of memory and the extraction to a few seconds.
    ``max_ratio``
        Largest expansion factor (uncompressed / compressed) of a single entry and of
        the whole archive. Ordinary code, text and binaries deflate at 2-20:1. A
        deflate bomb runs at ~1000:1. 200 leaves ten times headroom above ordinary
        content and still stops bombs. The archive-wide ratio is measured against the
        real byte count of the upload, not against anything a header claims.
    ``ratio_floor``
        Entries (and archives) that expand to no more than this many bytes are exempt
        from the ratio check. A 100 KB file of zeros is harmless, and small files have
        meaningless ratios.
    """

    max_zipped: int = 52_428_800
    max_unzipped: int = 262_144_000
    max_entries: int = 65_535
    max_ratio: int = 200
    ratio_floor: int = 1_048_576
