"""The REST API fuzzed from its own OpenAPI document (schemathesis, over real HTTPS): whatever a client
sends that the document allows, and much that it does not, the answer is never a server error, and its
status, content type and body are the ones the document names. Seeded and bounded (a few examples per
operation), with an admin token, which reaches every operation."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ServerThread, client_tls, start_server
from dizimail.model.tokens import Role


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api_schema(node: ServerThread) -> schemathesis.BaseSchema:
    url = f"https://127.0.0.1:{node.ports['https']}/api/v1/openapi.json"
    with urllib.request.urlopen(url, context=client_tls(), timeout=15) as response:
        document = json.load(response)
    return schemathesis.openapi.from_dict(document)


def test_no_server_error_and_every_answer_as_documented(node: ServerThread, api_schema: schemathesis.BaseSchema) -> None:
    base_url = f"https://127.0.0.1:{node.ports['https']}"
    session = requests.Session()
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 50  # the document names every route

    calls: list[str] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            # a fresh admin token per example: a generated DELETE /tokens/{id} may revoke any earlier one
            calls.append(case.operation.label)
            _token, secret = node.call(lambda s: s.tokens.create(Role.ADMIN, lifetime=600))
            # verify=False: the node's self-signed certificate, as client_tls() takes it (TLS is tested elsewhere)
            case.call_and_validate(base_url=base_url, session=session, headers={"Authorization": f"Bearer {secret}"},
                                   verify=False,
                                   checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                           response_schema_conformance])
        check()
    assert len(calls) > 10 * len(operations)  # the examples did reach the server
