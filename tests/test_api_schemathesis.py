"""Property-based tests of the API against its own OpenAPI schema (schemathesis, in-process ASGI).

On the embedded store loaded with the demo data (the bundled ClinicalTrials.gov records, the
packaged ontology and generated engagement history), schemathesis generates requests for every
operation and checks that none gives a server error (5xx) and that every response matches the
schema the API documents for it. Examples are bounded so the run takes well under two minutes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sitegraph.api.main import create_app
from sitegraph.graph.memory import MemoryStore
from sitegraph.settings import Settings

API_KEY = "schemathesis-key"
MAX_EXAMPLES = 30


def load_demo(store: MemoryStore) -> None:
    """The demo data: real sites from the bundled ClinicalTrials.gov records, the ontology, a seeded history."""
    from sitegraph.loaders.ctgov import DEMO_CTGOV_DIR, read_ctgov
    from sitegraph.loaders.generate import GeneratorConfig, generate
    from sitegraph.ontology.sync import sync

    store.write(read_ctgov([DEMO_CTGOV_DIR]).batch)
    sync(store)
    generate(store, GeneratorConfig(seed=11, per_site=2))


# The app is built at import (schemathesis reads its schema while collecting) on an embedded store in
# a temporary folder; the fixture below fills that store with the demo data before the first request.
HOME = Path(tempfile.mkdtemp(prefix="sitegraph-schemathesis-"))
APP = create_app(
    settings=Settings(_env_file=None, sitegraph_home=HOME, sitegraph_store="memory", sitegraph_api_keys=SecretStr(API_KEY))  # type: ignore[call-arg]
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def demo_data() -> Iterator[None]:
    store = MemoryStore(HOME / "memory")
    try:
        load_demo(store)
    finally:
        store.close()
    yield
    APP.state.store_holder.close()
    shutil.rmtree(HOME, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(
        headers={"X-API-Key": API_KEY},
        checks=[not_a_server_error, response_schema_conformance],
    )
