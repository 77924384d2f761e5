"""A bounded Schemathesis run against the live server's own OpenAPI schema: uvicorn on
127.0.0.1 with the shipped fakes as members. Every generated request must get a documented
status (never a 5xx), with the documented content type and a body matching the schema.
Bounded: 30 examples per operation, derandomized (about 20 s on 2 cores)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from conclave.providers.registry import ProviderRegistry
from conclave.providers.testing import FakeProvider
from conclave.server import ServerSettings, create_app

from .conftest import default_fakes, make_config, run_server


@pytest.fixture(scope="module")
def live_schema() -> Iterator[OpenApiSchema]:
    registry = ProviderRegistry(overrides={"openrouter": FakeProvider(default_fakes())})
    config = make_config(iterations=0)
    app = create_app(
        [(config.name, config)],
        settings=ServerSettings(_env_file=None, max_concurrent_runs=64),
        registry=registry,
    )
    server, thread, url = run_server(app)
    try:
        yield schemathesis.openapi.from_url(url + "/openapi.json")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_documented_operation_answers_as_documented(case: schemathesis.Case[Any]) -> None:
    # A body can fit the schema and still be refused with a 400 (a blank prompt, `tools`):
    # the schema cannot say everything, so "schema-valid means accepted" is not asked.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
