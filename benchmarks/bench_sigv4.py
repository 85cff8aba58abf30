"""Micro-benchmark: µs per SigV4 verification, hearth's hand-rolled verifier vs botocore.

Run: ``.venv/bin/python benchmarks/bench_sigv4.py``. A benchmark, not a test: it prints
numbers and asserts only that both sides accept the request.

The request is what a boto3 Lambda client sends for ``invoke`` (POST with a small JSON body,
an ARN in the path). The botocore side does what a server would have to do to reuse
``SigV4Auth``: rebuild an ``AWSRequest`` from the wire, recompute the canonical request,
string to sign and signature, and compare.
"""

from __future__ import annotations

import hmac
import time
import timeit
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hearth.api.keys import AccessKey
from hearth.api.sigv4 import SigV4Verifier

KEY = AccessKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "000000000000")
HOST = "localhost:9001"
PATH = (
    "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello"
    "/invocations"
)
BODY = b'{"name": "world", "n": 42}'


def signed_request() -> tuple[str, str, str, dict[str, str], bytes]:
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{PATH}",
        data=BODY,
        headers={
            "X-Amz-Invocation-Type": "RequestResponse",
            "X-Amz-Log-Type": "None",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": "Boto3/1.43 md/Botocore#1.43 ua/2.1 os/linux lang/python#3.11",
        },
    )
    SigV4Auth(Credentials(KEY.key_id, KEY.secret), "lambda", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = HOST
    headers["content-length"] = str(len(BODY))
    return "POST", PATH, "", headers, BODY


def botocore_verify(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> bool:
    auth = headers["authorization"]
    credential = auth.split("Credential=")[1].split(",")[0]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    signature = auth.split("Signature=")[1]
    _, _, region, service, _ = credential.split("/")
    url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={h: headers[h] for h in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(KEY.key_id, KEY.secret), service, region)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return hmac.compare_digest(signer.signature(string_to_sign, request), signature)


def per_call_us(fn: Any, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    args = signed_request()
    verifier = SigV4Verifier({KEY.key_id: KEY}, clock=time.time)
    assert verifier.verify(*args).account_id == KEY.account_id
    assert botocore_verify(*args)

    ours = per_call_us(lambda: verifier.verify(*args), 20000)
    theirs = per_call_us(lambda: botocore_verify(*args), 2000)
    print(f"hearth SigV4Verifier.verify : {ours:6.2f} µs/verify")
    print(f"botocore SigV4Auth           : {theirs:6.2f} µs/verify")
    print(f"speed-up                     : {theirs / ours:6.1f}x")


if __name__ == "__main__":
    main()
