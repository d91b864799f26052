"""Schemathesis against the live server's /openapi.json: generated requests (valid and
invalid) never get a 5xx, and every answer conforms to the published schema (status
codes, content types, bodies, headers)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from snakemake_human_gate import gate
from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.links import LinkSigner
from snakemake_human_gate.store import GateStore
from tests.integration.gateserver import ask, live_server

EXAMPLES = 40  # per operation and mode
# invalid requests may also be refused as too large (413) or be bad links (410)
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "429"]
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_conform_to_the_schema(tmp_path, mode):
    store = GateStore(tmp_path / "gates")
    ask(store, tmp_path, files={"plot.png": b"\x89PNG", "m.json": b"{}"})
    ask(store, tmp_path, gate("Typed?", fields={"lr": (float, 0, 1)}), run="2")
    token = TokenStore(store.root, store.share).create("alice")
    LinkSigner(store.root, store.share)
    headers = {"Authorization": f"Bearer {token}"}
    # no lock-out: schemathesis also sends requests without credentials, on purpose
    with live_server(store.root, max_failures=10**6) as url:
        config = SchemathesisConfig.from_dict(CONFIG)
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
        failures = []
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 8

        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case):
                # a query parameter whose value is [] or {} is never sent (requests drops
                # it): a "negative" case that reaches the server as a valid request
                assume(not any(v in ([], {}) for v in (case.query or {}).values()))
                case.call_and_validate(headers=headers)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (a lone string path parameter)
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no valid request could be made")
            except Exception as e:  # collect them all: one report for every operation
                failures.append(f"{operation.label}:\n{e}")
        assert not failures, "\n\n".join(failures)
    assert store.audit.verify().ok
