"""The server's API fuzzed from its own OpenAPI document (issue 5, "Bad input").

Schemathesis generates requests for every operation in the running server's ``/openapi.json``
(positive cases, which follow the schema, and negative ones, which break it), sends them over
loopback with a valid token of a user made only for this test, and checks every answer:

- never a 5xx (``not_a_server_error``);
- the answer matches the schema: a documented status code, a documented content type, a body that
  validates against the documented response schema.

The test hooks (``/api/v1/_test/...``) are left out: they are not part of the API and fuzzing them
would inject faults into the fuzz run itself. The number of cases run is printed (``-s`` shows it)
and written to ``$ORIONFS_REPORT_DIR/fuzz_api.json`` when that variable is set.

Cost: a few examples per operation and mode in CI (< 60 s); ``ORIONFS_LONG=1`` or
``ORIONFS_FUZZ_EXAMPLES=N`` runs more.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

LONG = os.environ.get("ORIONFS_LONG") == "1"
EXAMPLES = int(os.environ.get("ORIONFS_FUZZ_EXAMPLES", "100" if LONG else "8"))
TEST_HOOKS_PATH = r"^/api/v1/_test/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _report(name: str, figures: dict) -> None:
    folder = os.environ.get("ORIONFS_REPORT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\n[{name}] {json.dumps(figures)}")


@pytest.fixture(scope="module")
def fuzz_user(server):
    """A user with a project of its own, so that what the fuzzer deletes or leaves is its own."""
    return server.add_user("fuzzer", password="fuzzer-password-1")


@pytest.mark.timeout(3600 if LONG else 300)
def test_api_fuzzed_from_openapi_has_no_server_errors_and_matches_schema(server, fuzz_user):
    auth = {"Authorization": f"Token {fuzz_user['token']}"}
    schema = schemathesis.openapi.from_url(f"{server.url.rstrip('/')}/openapi.json", headers=auth)
    schema = schema.exclude(path_regex=TEST_HOOKS_PATH)
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())  # an operation the schema cannot describe fails here
    assert operations, "the OpenAPI document lists no operations"

    http = requests.Session()
    cases = 0
    by_status: dict[int, int] = {}
    failures: list[str] = []
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=not LONG,  # CI runs are reproducible; long runs explore
                phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                nonlocal cases
                cases += 1
                response = case.call(
                    base_url=server.url.rstrip("/"), session=http, headers=auth, timeout=30
                )
                by_status[response.status_code] = by_status.get(response.status_code, 0) + 1
                case.validate_response(response, checks=CHECKS, headers=auth)

            try:
                run()
            except Exception as exc:  # one failing operation must not hide the others
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:2000])
    elapsed = time.monotonic() - started
    _report(
        "fuzz_api",
        {
            "operations": len(operations),
            "cases": cases,
            "examples_per_operation_and_mode": EXAMPLES,
            "status_counts": dict(sorted(by_status.items())),
            "failing_operations": len(failures),
            "seconds": round(elapsed, 1),
        },
    )
    assert cases >= len(operations), "schemathesis generated fewer cases than operations"
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
