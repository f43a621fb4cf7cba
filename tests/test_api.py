"""The HTTP API on both stores: every endpoint, its error paths, auth, durability, outages and recovery.

Each test gets an app built with ``create_app(store=...)`` on a store of each kind (embedded and a
real Neo4j), holding a small hand-made graph whose KPIs are known exactly. The loaded store is shared
by the tests of this module and reloaded whenever a test changed it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sitegraph.api.main import create_app
from sitegraph.errors import StoreUnavailableError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.settings import Settings

KEYS = "test-key-1,test-key-2"
BARRIER = "https://w3id.org/sitegraph/barrier/"
TACTIC = "https://w3id.org/sitegraph/tactic/"
MGH = "site:mass-general-boston-us"
DFCI = "site:dana-farber-boston-us"
CHARITE = "site:charite-berlin-de"
MAYO = "site:mayo-rochester-us"


def api_settings(keys: str = KEYS, **kw: Any) -> Settings:
    return Settings(_env_file=None, sitegraph_api_keys=SecretStr(keys), **kw)  # type: ignore[call-arg]


def build_demo_batch() -> GraphBatch:
    """A small graph covering every node and relationship type the API reads."""
    b = GraphBatch()
    b.add_node(
        "Site",
        MGH,
        {
            "name": "Massachusetts General Hospital",
            "aliases": ["MGH", "Mass General"],
            "city": "Boston",
            "state": "Massachusetts",
            "zip": "02114",
            "country": "United States",
            "lat": 42.3626,
            "lon": -71.0685,
            "pagerank": 0.31,
            "degree": 5,
            "betweenness": 0.5,
        },
    )
    b.add_node("Site", DFCI, {"name": "Dana-Farber Cancer Institute", "city": "Boston", "country": "United States"})
    b.add_node("Site", CHARITE, {"name": "Charité – Universitätsmedizin Berlin", "city": "Berlin", "country": "Germany"})
    b.add_node("Site", MAYO, {"name": "Mayo Clinic", "city": "Rochester", "country": "United States"})
    b.add_node("Investigator", "inv:jane-doe", {"name": "Jane Doe", "degrees": ["MD", "PhD"], "pagerank": 0.2})
    b.add_node("Investigator", "inv:john-smith", {"name": "John Smith"})
    b.add_node("Investigator", "inv:max-mustermann", {"name": "Max Mustermann"})
    b.add_node("Study", "NCT00000001", {"title": "A breast cancer trial", "phase": "PHASE3", "overall_status": "RECRUITING"})
    b.add_node("Study", "NCT00000002", {"title": "A diabetes trial", "phase": "PHASE2", "overall_status": "COMPLETED"})
    b.add_node("Sponsor", "sponsor:acme", {"name": "Acme Pharma"})
    b.add_node("Condition", "cond:breast-cancer", {"name": "Breast Cancer", "therapeutic_area": "Oncology"})
    b.add_node("Condition", "cond:t2d", {"name": "Type 2 Diabetes", "therapeutic_area": "Metabolism"})
    b.add_rel("STUDIES", "Study", "NCT00000001", "Condition", "cond:breast-cancer")
    b.add_rel("STUDIES", "Study", "NCT00000002", "Condition", "cond:t2d")
    b.add_rel("SPONSORED_BY", "Study", "NCT00000001", "Sponsor", "sponsor:acme", {"role": "lead"})
    b.add_rel(
        "PARTICIPATES_IN",
        "Site",
        MGH,
        "Study",
        "NCT00000001",
        {
            "status": "recruiting",
            "activation_days": 120,
            "enrolled": 30,
            "target": 40,
            "screened": 50,
            "screen_failures": 10,
            "contract_revisions": 3,
            "ethics_approval_days": 45,
            "open_queries": 12,
            "surveys_received": 2,
        },
    )
    b.add_rel(
        "PARTICIPATES_IN",
        "Site",
        MGH,
        "Study",
        "NCT00000002",
        {
            "status": "completed",
            "activation_days": 80,
            "enrolled": 10,
            "target": 40,
            "screened": 20,
            "screen_failures": 2,
            "contract_revisions": 1,
            "ethics_approval_days": 30,
            "open_queries": 3,
            "surveys_received": 1,
        },
    )
    b.add_rel("PARTICIPATES_IN", "Site", DFCI, "Study", "NCT00000001", {"status": "recruiting", "activation_days": 90})
    b.add_rel("PARTICIPATES_IN", "Site", CHARITE, "Study", "NCT00000002", {"status": "completed"})
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", MGH)
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", DFCI)
    b.add_rel("WORKS_AT", "Investigator", "inv:john-smith", "Site", MGH)
    b.add_rel("WORKS_AT", "Investigator", "inv:max-mustermann", "Site", CHARITE)
    b.add_rel(
        "INVESTIGATOR_ON",
        "Investigator",
        "inv:jane-doe",
        "Study",
        "NCT00000001",
        {"role": "PRINCIPAL_INVESTIGATOR", "site_id": MGH},
    )
    b.add_rel(
        "INVESTIGATOR_ON", "Investigator", "inv:jane-doe", "Study", "NCT00000001", {"role": "SUB_INVESTIGATOR", "site_id": DFCI}
    )
    b.add_rel(
        "INVESTIGATOR_ON",
        "Investigator",
        "inv:john-smith",
        "Study",
        "NCT00000002",
        {"role": "PRINCIPAL_INVESTIGATOR", "site_id": MGH},
    )
    # ontology
    b.add_node("Barrier", BARRIER + "contracting", {"id": "contracting", "label": "Contracting", "kind": "category"})
    b.add_node(
        "Barrier",
        BARRIER + "slow-contract-negotiation",
        {
            "id": "slow-contract-negotiation",
            "label": "Slow contract negotiation",
            "alt_labels": ["contract delay", "legal review"],
            "definition": "The clinical trial agreement takes long to agree.",
            "kind": "barrier",
            "severity": 0.7,
        },
    )
    b.add_node(
        "Barrier",
        BARRIER + "stalled-ethics-approval",
        {
            "id": "stalled-ethics-approval",
            "label": "Stalled ethics approval",
            "alt_labels": ["ethics delay", "IRB backlog"],
            "kind": "barrier",
        },
    )
    b.add_rel("BROADER", "Barrier", BARRIER + "slow-contract-negotiation", "Barrier", BARRIER + "contracting")
    b.add_node(
        "Tactic", TACTIC + "contracting-support", {"id": "contracting-support", "label": "Contracting support", "kind": "group"}
    )
    b.add_node(
        "Tactic",
        TACTIC + "contract-template",
        {
            "id": "contract-template",
            "label": "Pre-agreed contract template",
            "kind": "tactic",
            "role": "contracts-lead",
            "channel": "email",
        },
    )
    b.add_node("Tactic", TACTIC + "irb-reliance", {"id": "irb-reliance", "label": "Central IRB reliance", "kind": "tactic"})
    b.add_rel("BROADER", "Tactic", TACTIC + "contract-template", "Tactic", TACTIC + "contracting-support")
    b.add_rel(
        "MITIGATES",
        "Tactic",
        TACTIC + "contract-template",
        "Barrier",
        BARRIER + "slow-contract-negotiation",
        {"evidence_level": "moderate", "source": "CTTI recommendations", "effect": "shorter negotiation"},
    )
    b.add_rel(
        "MITIGATES",
        "Tactic",
        TACTIC + "irb-reliance",
        "Barrier",
        BARRIER + "stalled-ethics-approval",
        {"evidence_level": "strong"},
    )
    # interactions
    b.add_node(
        "Interaction",
        "int:0001",
        {
            "channel": "call",
            "occurred_at": "2025-01-10T10:00:00+00:00",
            "note": "Contract delay again; legal review slow.",
            "sentiment": -0.5,
        },
    )
    b.add_node(
        "Interaction",
        "int:0002",
        {
            "channel": "email",
            "occurred_at": "2025-02-01T09:30:00+00:00",
            "note": "Sent the template.",
            "sentiment": 0.2,
            "outcome": "improved",
        },
    )
    b.add_rel("WITH_SITE", "Interaction", "int:0001", "Site", MGH)
    b.add_rel("WITH_SITE", "Interaction", "int:0002", "Site", MGH)
    b.add_rel("WITH_INVESTIGATOR", "Interaction", "int:0001", "Investigator", "inv:jane-doe")
    b.add_rel(
        "CONCERNS",
        "Interaction",
        "int:0001",
        "Barrier",
        BARRIER + "slow-contract-negotiation",
        {"source": "observed", "severity": 0.8},
    )
    b.add_rel("APPLIED", "Interaction", "int:0002", "Tactic", TACTIC + "contract-template", {"outcome": "improved"})
    return b


def interaction_count(store: GraphStore) -> int:
    return store.stats().nodes["Interaction"]


IN_CI = os.environ.get("CI", "").lower() == "true"
STORES = [s for s in os.environ.get("SITEGRAPH_TEST_STORES", "memory,neo4j").split(",") if s]
STORE_PARAMS = [
    *([pytest.param("memory")] if "memory" in STORES or IN_CI else []),
    *([pytest.param("neo4j", marks=pytest.mark.neo4j)] if "neo4j" in STORES or IN_CI else []),
]
_loaded_at: dict[int, int] = {}


@pytest.fixture(scope="module", params=STORE_PARAMS)
def shared_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    """One store of each kind for the module (loading Neo4j for every test would be slow)."""
    if request.param == "memory":
        mem = MemoryStore(tmp_path_factory.mktemp("api") / "memory")
        yield mem
        mem.close()
        return
    yield request.getfixturevalue("neo4j_session_store")


@pytest.fixture
def demo_store(shared_store: GraphStore) -> GraphStore:
    """The shared store holding exactly the demo graph: reloaded whenever a test changed it."""
    if _loaded_at.get(id(shared_store)) != shared_store.version():
        shared_store.clear(confirm=True)
        shared_store.write(build_demo_batch())
        _loaded_at[id(shared_store)] = shared_store.version()
    return shared_store


@pytest.fixture
def client(demo_store: GraphStore) -> Iterator[TestClient]:
    app = create_app(store=demo_store, settings=api_settings(sitegraph_cors_origins="https://crm.example"))
    with TestClient(app) as c:
        yield c


def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "code", "message", "details"}
    assert err["status"] == status
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in resp.text
    if code:
        assert err["code"] == code
    return dict(err)


# --- health -----------------------------------------------------------------------------------------


def test_health_and_ready(client: TestClient, demo_store: GraphStore) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "store": demo_store.kind, "data_version": demo_store.version()}


# --- search -----------------------------------------------------------------------------------------


def test_search_lists_every_site_in_a_stable_order(client: TestClient) -> None:
    r = client.get("/sites")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 4 and body["limit"] == 20 and body["offset"] == 0
    assert [s["id"] for s in body["items"]] == [CHARITE, DFCI, MGH, MAYO]
    mgh = next(s for s in body["items"] if s["id"] == MGH)
    assert mgh == {
        "id": MGH,
        "name": "Massachusetts General Hospital",
        "city": "Boston",
        "state": "Massachusetts",
        "country": "United States",
        "studies": 2,
        "investigators": 2,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "mgh"}, [MGH]),
        ({"q": "Mass General"}, [MGH]),
        ({"q": "boston"}, [DFCI, MGH]),
        ({"q": "charite"}, [CHARITE]),
        ({"q": "dana farber"}, [DFCI]),
        ({"q": "dana-farber"}, [DFCI]),
        ({"q": "mayo clinic"}, [MAYO]),
        ({"country": "germany"}, [CHARITE]),
        ({"country": "United States", "q": "clinic"}, [MAYO]),
        ({"condition": "breast"}, [DFCI, MGH]),
        ({"condition": "cond:t2d"}, [CHARITE, MGH]),
        ({"condition": "oncology", "country": "United States"}, [DFCI, MGH]),
        ({"q": "nowhere"}, []),
    ],
)
def test_search_filters(client: TestClient, params: dict[str, str], expected: list[str]) -> None:
    r = client.get("/sites", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["id"] for s in body["items"]] == expected
    assert body["total"] == len(expected)


def test_search_ranks_name_matches_before_city_matches(client: TestClient) -> None:
    r = client.get("/sites", params={"q": "massachusetts"})
    assert [s["id"] for s in r.json()["items"]] == [MGH]
    r = client.get("/sites", params={"q": "b"})
    ids = [s["id"] for s in r.json()["items"]]
    assert ids[0] == CHARITE  # 'b' in the name ("Berlin") beats 'b' only in the city


def test_search_paginates_with_total(client: TestClient) -> None:
    pages = [client.get("/sites", params={"limit": 3, "offset": off}).json() for off in (0, 3, 6)]
    assert [p["total"] for p in pages] == [4, 4, 4]
    assert [len(p["items"]) for p in pages] == [3, 1, 0]
    ids = [s["id"] for p in pages for s in p["items"]]
    assert ids == [CHARITE, DFCI, MGH, MAYO]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": "ten"}, "limit"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_search_rejects_bad_parameters(client: TestClient, params: dict[str, Any], field: str) -> None:
    err = assert_error(client.get("/sites", params=params), 422, "validation_error")
    assert err["details"][0]["field"] == field
    assert err["details"][0]["location"] == "query"
    assert field in err["message"]


# --- site 360 ---------------------------------------------------------------------------------------


def test_site_360(client: TestClient, demo_store: GraphStore) -> None:
    r = client.get(f"/sites/{MGH}")
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["site"]["name"] == "Massachusetts General Hospital"
    assert p["site"]["aliases"] == ["MGH", "Mass General"]
    assert p["site"]["lat"] == pytest.approx(42.3626)
    assert p["centrality"] == {"betweenness": 0.5, "degree": 5.0, "pagerank": 0.31}
    k = p["kpis"]
    assert k["studies"] == 2 and k["active_studies"] == 1
    assert k["activation_days_median"] == 100.0 and k["activation_days_mean"] == 100.0
    assert (k["enrolled"], k["target"], k["enrollment_vs_target"]) == (40, 80, 0.5)
    assert (k["screened"], k["screen_failures"]) == (70, 12)
    assert k["screen_failure_rate"] == pytest.approx(12 / 70, abs=1e-4)
    assert (k["open_queries"], k["contract_revisions"], k["contract_revisions_mean"]) == (15, 4, 2.0)
    assert k["ethics_approval_days_median"] == 37.5 and k["surveys_received"] == 3
    studies = {s["id"]: s for s in p["studies"]}
    assert set(studies) == {"NCT00000001", "NCT00000002"}
    s1 = studies["NCT00000001"]
    assert s1["conditions"] == [{"id": "cond:breast-cancer", "name": "Breast Cancer", "therapeutic_area": "Oncology"}]
    assert s1["sponsors"] == ["Acme Pharma"]
    assert s1["facts"]["enrollment_vs_target"] == 0.75 and s1["facts"]["screen_failure_rate"] == 0.2
    invs = {i["id"]: i for i in p["investigators"]}
    assert set(invs) == {"inv:jane-doe", "inv:john-smith"}
    assert invs["inv:jane-doe"]["roles"] == [{"study_id": "NCT00000001", "role": "PRINCIPAL_INVESTIGATOR"}]
    assert invs["inv:jane-doe"]["interactions"] == 1
    assert invs["inv:john-smith"]["roles"] == [{"study_id": "NCT00000002", "role": "PRINCIPAL_INVESTIGATOR"}]
    assert [b["iri"] for b in p["barriers"]][:1] == [BARRIER + "slow-contract-negotiation"]
    assert p["barriers"][0]["label"] == "Slow contract negotiation"
    s = p["interactions"]
    assert s["total"] == 2 and s["by_channel"] == {"call": 1, "email": 1}
    assert s["mean_sentiment"] == pytest.approx(-0.15)
    assert [i["id"] for i in s["recent"]] == ["int:0002", "int:0001"]
    assert s["recent"][0]["tactic_iri"] == TACTIC + "contract-template" and s["recent"][0]["outcome"] == "improved"
    assert s["recent"][1]["tags"] == [BARRIER + "slow-contract-negotiation"]
    assert s["last_at"] == "2025-02-01T09:30:00+00:00"
    assert p["data_version"] == demo_store.version()


def test_site_ids_with_colons_work_encoded_or_not(client: TestClient) -> None:
    plain = client.get(f"/sites/{MGH}")
    encoded = client.get("/sites/" + quote(MGH, safe=""))
    assert plain.status_code == encoded.status_code == 200
    assert plain.json() == encoded.json()


def test_site_without_facts_has_empty_kpis(client: TestClient) -> None:
    p = client.get(f"/sites/{MAYO}").json()
    assert p["kpis"]["studies"] == 0 and p["kpis"]["enrollment_vs_target"] is None
    assert p["interactions"]["total"] == 0 and p["interactions"]["mean_sentiment"] is None
    assert p["barriers"] == [] and p["investigators"] == []


@pytest.mark.parametrize(
    "path", ["/sites/site:nowhere", "/sites/site:nowhere/related", "/sites/site:nowhere/tactics", "/investigators/inv:nobody"]
)
def test_unknown_ids_are_404(client: TestClient, path: str) -> None:
    err = assert_error(client.get(path), 404, "not_found")
    assert "nowhere" in err["message"] or "nobody" in err["message"]


# --- related sites and tactics ----------------------------------------------------------------------


def test_related_sites(client: TestClient) -> None:
    r = client.get(f"/sites/{MGH}/related", params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["site_id"] == MGH
    assert len(body["items"]) <= 2
    ids = [s["site_id"] for s in body["items"]]
    assert MGH not in ids
    assert ids and ids[0] == DFCI  # shares an investigator, a study and a condition
    for item in body["items"]:
        assert item["reasons"] and item["cypher"]
    assert_error(client.get(f"/sites/{MGH}/related", params={"limit": 0}), 422)


def test_tactics(client: TestClient) -> None:
    r = client.get(f"/sites/{MGH}/tactics", params={"limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["site_id"] == MGH
    assert len(body["items"]) <= 3
    for rank, item in enumerate(body["items"], start=1):
        assert item["rank"] == rank
        assert item["tactic_iri"].startswith(TACTIC)
    assert_error(client.get(f"/sites/{MGH}/tactics", params={"limit": 51}), 422)


# --- investigators ----------------------------------------------------------------------------------


def test_investigator_profile(client: TestClient) -> None:
    r = client.get("/investigators/inv:jane-doe")
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["name"] == "Jane Doe" and p["degrees"] == ["MD", "PhD"]
    assert [s["id"] for s in p["sites"]] == [DFCI, MGH]
    assert [(s["study_id"], s["role"], s["site_id"]) for s in p["studies"]] == [
        ("NCT00000001", "SUB_INVESTIGATOR", DFCI),
        ("NCT00000001", "PRINCIPAL_INVESTIGATOR", MGH),
    ]
    assert p["centrality"] == {"pagerank": 0.2}
    assert p["interactions"] == 1 and p["last_interaction_at"] == "2025-01-10T10:00:00+00:00"


# --- ontology ---------------------------------------------------------------------------------------


def test_barrier_list(client: TestClient) -> None:
    body = client.get("/barriers").json()
    assert body["total"] == 3
    assert [c["id"] for c in body["items"]] == ["contracting", "slow-contract-negotiation", "stalled-ethics-approval"]
    slow = body["items"][1]
    assert slow["broader"] == [BARRIER + "contracting"] and slow["alt_labels"] == ["contract delay", "legal review"]


@pytest.mark.parametrize(
    "ref",
    [
        "slow-contract-negotiation",
        "sgb:slow-contract-negotiation",
        BARRIER + "slow-contract-negotiation",
        quote(BARRIER + "slow-contract-negotiation", safe=""),
    ],
)
def test_barrier_by_iri_or_compact_id(client: TestClient, ref: str) -> None:
    r = client.get(f"/barriers/{ref}")
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["iri"] == BARRIER + "slow-contract-negotiation" and b["severity"] == 0.7
    assert [c["id"] for c in b["broader_concepts"]] == ["contracting"]
    assert [c["id"] for c in b["ancestors"]] == ["contracting"]
    assert b["narrower"] == []
    assert b["mitigated_by"] == [
        {
            "concept": {"iri": TACTIC + "contract-template", "id": "contract-template", "label": "Pre-agreed contract template"},
            "evidence_level": "moderate",
            "source": "CTTI recommendations",
            "citation": None,
            "effect": "shorter negotiation",
            "certainty": None,
            "note": None,
        }
    ]


def test_barrier_category_lists_narrower(client: TestClient) -> None:
    b = client.get("/barriers/contracting").json()
    assert [c["id"] for c in b["narrower"]] == ["slow-contract-negotiation"] and b["kind"] == "category"


def test_tactics_by_iri_or_compact_id(client: TestClient) -> None:
    body = client.get("/tactics").json()
    assert [c["id"] for c in body["items"]] == ["contract-template", "contracting-support", "irb-reliance"]
    for ref in ("contract-template", TACTIC + "contract-template", quote(TACTIC + "contract-template", safe="")):
        t = client.get(f"/tactics/{ref}").json()
        assert t["iri"] == TACTIC + "contract-template" and t["channel"] == "email" and t["role"] == "contracts-lead"
        assert [m["concept"]["id"] for m in t["mitigates"]] == ["slow-contract-negotiation"]
        assert [c["id"] for c in t["broader_concepts"]] == ["contracting-support"]
    group = client.get("/tactics/contracting-support").json()
    assert [c["id"] for c in group["narrower"]] == ["contract-template"]


@pytest.mark.parametrize("path", ["/barriers/no-such-barrier", "/tactics/no-such-tactic", f"/barriers/{TACTIC}contract-template"])
def test_unknown_concepts_are_404(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


# --- interactions -----------------------------------------------------------------------------------


def new_interaction(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": MGH,
        "investigator_id": "inv:jane-doe",
        "channel": "call",
        "occurred_at": "2025-03-14T15:30:00+01:00",
        "note": "The contract delay continues: legal review is stuck and the PI is frustrated.",
        "tactic_id": "contract-template",
        "outcome": "pending",
    }
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


def test_post_interaction_with_bearer_key(client: TestClient, demo_store: GraphStore) -> None:
    before = interaction_count(demo_store)
    r = client.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["id"].startswith("interaction:")
    assert r.headers["location"] == f"/interactions/{rec['id']}"
    assert rec["site_id"] == MGH and rec["investigator_id"] == "inv:jane-doe" and rec["channel"] == "call"
    assert rec["occurred_at"] == "2025-03-14T14:30:00+00:00"  # stored in UTC
    assert rec["tactic_iri"] == TACTIC + "contract-template" and rec["tactic_id"] == "contract-template"
    assert rec["outcome"] == "pending" and rec["source"] == "api" and rec["recorded_at"]
    assert rec["sentiment"] is not None and -1 <= rec["sentiment"] < 0
    assert all(t["source"] == "tagged" for t in rec["tags"])
    assert interaction_count(demo_store) == before + 1
    # readable at once, and visible in the Site 360 (no stale cache)
    assert client.get(r.headers["location"]).json() == rec
    recent = client.get(f"/sites/{MGH}").json()["interactions"]
    assert recent["total"] == 3 and recent["recent"][0]["id"] == rec["id"]


def test_post_interaction_tags_barriers_from_the_note(client: TestClient) -> None:
    r = client.post("/interactions", json=new_interaction(), headers={"X-API-Key": "test-key-2"})
    assert r.status_code == 201, r.text
    assert BARRIER + "slow-contract-negotiation" in [t["iri"] for t in r.json()["tags"]]


def test_post_interaction_with_x_api_key_and_naive_time(client: TestClient) -> None:
    body = new_interaction(occurred_at="2024-12-01T08:00:00", investigator_id=None, tactic_id=None, outcome=None, channel="fax")
    r = client.post("/interactions", json=body, headers={"X-API-Key": "test-key-2"})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["occurred_at"] == "2024-12-01T08:00:00+00:00"  # no timezone: taken as UTC
    assert rec["investigator_id"] is None and rec["tactic_iri"] is None and rec["channel"] == "fax"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": "Basic dGVzdC1rZXktMTp4"},
        {"X-API-Key": ""},
    ],
)
def test_post_without_a_valid_key_is_401_and_stores_nothing(
    client: TestClient, demo_store: GraphStore, headers: dict[str, str]
) -> None:
    before = interaction_count(demo_store)
    version = demo_store.version()
    r = client.post("/interactions", json=new_interaction(), headers=headers)
    err = assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "key" in err["message"].lower()
    assert interaction_count(demo_store) == before and demo_store.version() == version


def test_post_without_a_key_is_401_even_with_an_invalid_body(client: TestClient) -> None:
    assert_error(client.post("/interactions", json={"site_id": 3}), 401)


def test_writes_are_refused_when_no_keys_are_configured(demo_store: GraphStore) -> None:
    app = create_app(store=demo_store, settings=api_settings(keys=" , "))
    with TestClient(app) as c:
        before = interaction_count(demo_store)
        for headers in ({}, {"X-API-Key": ""}, {"Authorization": "Bearer anything"}):
            err = assert_error(c.post("/interactions", json=new_interaction(), headers=headers), 503, "writes_disabled")
            assert "SITEGRAPH_API_KEYS" in err["message"]
        assert interaction_count(demo_store) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"site_id": "site:nowhere"}, "site_id"),
        ({"investigator_id": "inv:nobody"}, "investigator_id"),
        ({"study_id": "NCT99999999"}, "study_id"),
        ({"tactic_id": "no-such-tactic"}, "tactic_id"),
        ({"channel": "pigeon"}, "channel"),
        ({"outcome": "great"}, "outcome"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"note": ""}, "note"),
        ({"note": "   "}, "note"),
        ({"note": "x" * 4001}, "note"),
        ({"site_id": ""}, "site_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_post_invalid_interaction_is_422_naming_the_field(
    client: TestClient, demo_store: GraphStore, changes: dict[str, Any], field: str
) -> None:
    before = interaction_count(demo_store)
    r = client.post("/interactions", json=new_interaction(**changes), headers={"X-API-Key": "test-key-1"})
    err = assert_error(r, 422)
    assert field in [d["field"] for d in err["details"]]
    assert field in err["message"]
    assert interaction_count(demo_store) == before


@pytest.mark.parametrize("field", ["site_id", "channel", "occurred_at", "note"])
def test_post_missing_required_field_is_422(client: TestClient, field: str) -> None:
    body = new_interaction()
    del body[field]
    err = assert_error(client.post("/interactions", json=body, headers={"X-API-Key": "test-key-1"}), 422)
    assert err["details"][0]["field"] == field and err["details"][0]["type"] == "missing"


def test_post_malformed_json_is_422(client: TestClient) -> None:
    r = client.post(
        "/interactions", content=b"{not json", headers={"X-API-Key": "test-key-1", "Content-Type": "application/json"}
    )
    assert_error(r, 422, "validation_error")


def test_unknown_interaction_is_404(client: TestClient) -> None:
    assert_error(client.get("/interactions/interaction:nope"), 404, "not_found")


def _reopen(store: GraphStore, request: pytest.FixtureRequest) -> GraphStore:
    if isinstance(store, MemoryStore):
        store.close()
        return MemoryStore(store.home)
    from sitegraph.graph.neo4j_store import Neo4jStore

    server = request.getfixturevalue("neo4j_server")
    return Neo4jStore(server.uri, "neo4j", server.password)


def test_posted_interaction_survives_a_restart(store: GraphStore, request: pytest.FixtureRequest) -> None:
    store.write(build_demo_batch())
    demo_store = store
    with TestClient(create_app(store=demo_store, settings=api_settings())) as c:
        r = c.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-2"})
        assert r.status_code == 201, r.text
        rec = r.json()
    reopened = _reopen(demo_store, request)
    try:
        with TestClient(create_app(store=reopened, settings=api_settings())) as c2:
            again = c2.get(f"/interactions/{rec['id']}")
            assert again.status_code == 200 and again.json() == rec
            assert rec["id"] in [i["id"] for i in c2.get(f"/sites/{MGH}").json()["interactions"]["recent"]]
    finally:
        if isinstance(reopened, MemoryStore) or reopened is not demo_store:
            reopened.close()


# --- the per-snapshot response cache ----------------------------------------------------------------


def _cache_hits(store: GraphStore) -> int:
    from sitegraph.api.cache import response_cache
    from sitegraph.queries.snapshot import get_snapshot

    return response_cache(get_snapshot(store)).hits


def _outside_interaction(i: int) -> GraphBatch:
    b = GraphBatch()
    b.add_node("Interaction", f"int:outside-{i}", {"channel": "visit", "occurred_at": "2025-04-01T08:00:00+00:00", "note": "x"})
    b.add_rel("WITH_SITE", "Interaction", f"int:outside-{i}", "Site", MGH)
    return b


def test_cached_answers_follow_api_and_outside_writes(
    client: TestClient, demo_store: GraphStore, request: pytest.FixtureRequest
) -> None:
    """Reads are served from the snapshot's response cache, and a write through the API or from
    another process is seen by the very next read."""
    first = client.get(f"/sites/{MGH}")
    hits = _cache_hits(demo_store)
    again = client.get(f"/sites/{MGH}")
    assert again.content == first.content
    assert _cache_hits(demo_store) == hits + 1  # the second answer came from the cache
    assert first.json()["interactions"]["total"] == 2
    tactics = client.get(f"/sites/{MGH}/tactics").content
    assert client.get(f"/sites/{MGH}/tactics").content == tactics

    # a write through the API: the next read is fresh
    r = client.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
    assert r.status_code == 201, r.text
    after_post = client.get(f"/sites/{MGH}").json()
    assert after_post["interactions"]["total"] == 3 and after_post["interactions"]["recent"][0]["id"] == r.json()["id"]
    assert after_post["data_version"] == demo_store.version()

    # a write by someone else (another connection to the same store, as `sitegraph load` in another process)
    client.get(f"/sites/{MGH}")  # cached again
    if isinstance(demo_store, MemoryStore):
        other: GraphStore = MemoryStore(demo_store.home)
    else:
        other = _reopen(demo_store, request)
    try:
        other.write(_outside_interaction(1))
    finally:
        other.close()
    after_outside = client.get(f"/sites/{MGH}").json()
    assert after_outside["interactions"]["total"] == 4
    assert "int:outside-1" in [i["id"] for i in after_outside["interactions"]["recent"]]
    assert after_outside["data_version"] == demo_store.version()


def test_cached_bodies_are_what_fastapi_would_send(client: TestClient, demo_store: GraphStore) -> None:
    """The pre-serialised bodies equal FastAPI's own validation and serialisation of the response model."""
    from fastapi.encoders import jsonable_encoder

    from sitegraph.api.schemas import TacticsResponse
    from sitegraph.queries.profile import Site360, site_360
    from sitegraph.queries.recommend import recommend_tactics
    from sitegraph.queries.snapshot import get_snapshot

    snapshot = get_snapshot(demo_store)
    for _ in range(2):  # computed, then from the cache
        body = client.get(f"/sites/{MGH}").json()
        assert body == jsonable_encoder(Site360.model_validate(site_360(snapshot, MGH)))
        tactics = client.get(f"/sites/{MGH}/tactics", params={"limit": 3}).json()
        expected = TacticsResponse(site_id=MGH, items=recommend_tactics(snapshot, MGH, 3))
        assert tactics == jsonable_encoder(expected)


def test_response_cache_is_bounded() -> None:
    from sitegraph.api.cache import ResponseCache

    cache = ResponseCache(max_bytes=10, max_entry_bytes=6)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now the most recently used
    cache.put("c", b"cccc")  # over 10 bytes: the least recently used ("b") goes
    assert cache.get("b") is None and cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    cache.put("big", b"x" * 7)  # larger than one entry may be: not kept
    assert cache.get("big") is None
    assert cache.size <= 10 and len(cache) == 2


# --- answers computed ahead for every site (sitegraph.api.precompute) -------------------------------------

STALE = b'{"site_id": "stale", "items": []}'


@pytest.fixture
def drop_answers(demo_store: GraphStore) -> Iterator[None]:
    """Answers computed ahead by a test stay with the shared store's snapshot: drop them afterwards."""
    yield
    from sitegraph.api.precompute import PRECOMPUTED_KEY
    from sitegraph.queries.snapshot import get_snapshot

    get_snapshot(demo_store).cache.pop(PRECOMPUTED_KEY, None)


def _precomputer(store: GraphStore, **kw: Any) -> Any:
    from sitegraph.api.precompute import Precomputer
    from sitegraph.api.routes.sites import PER_SITE
    from sitegraph.api.state import warm_up_snapshot
    from sitegraph.queries.snapshot import get_snapshot

    return Precomputer(PER_SITE, lambda: get_snapshot(store), version=store.version, warm_up=warm_up_snapshot, freeze=False, **kw)


def _precompute_now(store: GraphStore) -> Any:
    """Every site's answers for the store's current snapshot, computed here (no thread)."""
    from sitegraph.queries.snapshot import get_snapshot

    pre = _precomputer(store)
    snapshot = get_snapshot(store)
    pre.offer(snapshot)
    answers = pre.run(snapshot)
    assert answers.finished is not None and not answers.abandoned
    return answers


def _spec(name: str) -> Any:
    from sitegraph.api.routes.sites import PER_SITE

    return next(s for s in PER_SITE if s.name == name)


def test_precomputed_answers_are_the_requests_own(client: TestClient, demo_store: GraphStore, drop_answers: None) -> None:
    """Byte for byte what the route computes, for every site and both endpoints, and served from there."""
    from sitegraph.api.deps import to_json
    from sitegraph.queries.snapshot import get_snapshot

    answers = _precompute_now(demo_store)
    snapshot = get_snapshot(demo_store)
    sites = [k for k, _ in snapshot.nodes("Site")]
    assert answers.sites == len(sites) == 4 and answers.done == answers.total == 12
    for name, path in (("tactics", "/tactics"), ("related", "/related"), ("site", "")):
        spec = _spec(name)
        for site in sites:
            expected = to_json(spec.model, spec.fn(snapshot, *spec.args(site)))
            assert answers.get(spec.fn, spec.model, spec.args(site), {}) == expected
            hits = answers.hits
            r = client.get(f"/sites/{quote(site, safe=':')}{path}")
            assert r.status_code == 200 and r.content == expected
            assert answers.hits == hits + 1  # served from the precomputed answers
    assert json.loads(client.get(f"/sites/{MGH}/tactics").content)["items"]  # MGH has recommendations
    # other limits are not precomputed: computed by the request, same as before
    hits = answers.hits
    assert (
        client.get(f"/sites/{MGH}/tactics", params={"limit": 2}).json()["items"]
        == client.get(f"/sites/{MGH}/tactics").json()["items"][:2]
    )
    assert answers.hits == hits + 1  # only the default-limit request


def test_precomputed_answers_are_never_served_after_a_write(
    client: TestClient, demo_store: GraphStore, request: pytest.FixtureRequest, drop_answers: None
) -> None:
    """Answers belong to the snapshot they were computed on: after a write through the API or from
    outside, requests read the new snapshot, never the old answers (marked here so they would show)."""
    from sitegraph.api.deps import to_json
    from sitegraph.api.precompute import answers_of
    from sitegraph.queries.snapshot import get_snapshot

    spec = _spec("tactics")
    answers = _precompute_now(demo_store)
    answers.put(spec, MGH, STALE)  # a marker: served only from these answers
    assert client.get(f"/sites/{MGH}/tactics").content == STALE

    r = client.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
    assert r.status_code == 201, r.text
    fresh = client.get(f"/sites/{MGH}/tactics")
    snapshot = get_snapshot(demo_store)
    assert snapshot.version == demo_store.version() and answers_of(snapshot) is not answers
    assert fresh.status_code == 200 and fresh.content == to_json(spec.model, spec.fn(snapshot, *spec.args(MGH)))

    answers = _precompute_now(demo_store)
    answers.put(spec, MGH, STALE)
    assert client.get(f"/sites/{MGH}/tactics").content == STALE
    other: GraphStore = MemoryStore(demo_store.home) if isinstance(demo_store, MemoryStore) else _reopen(demo_store, request)
    try:
        other.write(_outside_interaction(2))
    finally:
        other.close()
    after = client.get(f"/sites/{MGH}/tactics")
    assert after.status_code == 200 and after.content != STALE
    snapshot = get_snapshot(demo_store)
    assert after.content == to_json(spec.model, spec.fn(snapshot, *spec.args(MGH)))


def test_precompute_stops_when_the_data_moves(demo_store: GraphStore, drop_answers: None) -> None:
    from sitegraph.queries.snapshot import get_snapshot

    snapshot = get_snapshot(demo_store)
    versions = iter([snapshot.version, snapshot.version + 1])
    pre = _precomputer(demo_store, block=1)
    pre.version = lambda: next(versions, snapshot.version + 1)
    pre.offer(snapshot)
    answers = pre.run(snapshot)
    assert answers.abandoned and answers.finished is None and answers.done == 3  # one block of one site
    other = get_snapshot(demo_store)
    assert other is snapshot  # nothing was written: only the probe said so
    pre2 = _precomputer(demo_store, block=1)
    pre2.offer(snapshot)
    pre2.offer(object())  # a newer snapshot was offered by a request
    assert pre2.run(snapshot).abandoned


def test_precompute_thread_follows_writes(demo_store: GraphStore, drop_answers: None) -> None:
    """The app's background thread answers every site, /ready reports it, and after a write it answers
    the new version (requests in between are computed, never taken from the old answers)."""
    import time

    def wait_finished(c: TestClient, version: int) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = c.get("/ready").json().get("precomputed")
            if status and status["data_version"] == version and status["finished"]:
                return dict(status)
            c.get(f"/sites/{MGH}/related")  # requests tell the thread which snapshot is current
            time.sleep(0.05)
        raise AssertionError(f"precompute of version {version} did not finish: {c.get('/ready').json()}")

    with TestClient(create_app(store=demo_store, settings=api_settings(), precompute=True)) as c:
        status = wait_finished(c, demo_store.version())
        assert status["answers"] == status["total"] == 12 and status["sites"] == 4 and not status["abandoned"]
        assert status["phase"] == "finished"
        before = c.get(f"/sites/{MGH}/tactics").content
        r = c.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
        assert r.status_code == 201, r.text
        wait_finished(c, demo_store.version())
        after = c.get(f"/sites/{MGH}/tactics")
        assert after.status_code == 200
        assert c.get("/ready").json()["precomputed"]["hits"] >= 1
        from sitegraph.api.deps import to_json
        from sitegraph.queries.snapshot import get_snapshot

        spec = _spec("tactics")
        assert after.content == to_json(spec.model, spec.fn(get_snapshot(demo_store), *spec.args(MGH)))
        assert before  # (the write may or may not change MGH's tactics; the answer is the new snapshot's either way)


def test_precompute_follows_writes_before_any_request(
    demo_store: GraphStore, request: pytest.FixtureRequest, drop_answers: None
) -> None:
    """After a write through the API (which wakes the thread) and after one from outside (which the idle
    thread finds by looking at the store's version), the new version's answers are computed ahead with
    no read request in between: only /ready is asked."""
    import time

    def wait_finished(c: TestClient, version: int) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = c.get("/ready").json().get("precomputed")
            if status and status.get("data_version") == version and status["finished"]:
                return dict(status)
            time.sleep(0.05)
        raise AssertionError(f"precompute of version {version} did not finish: {c.get('/ready').json()}")

    with TestClient(create_app(store=demo_store, settings=api_settings(), precompute=True)) as c:
        wait_finished(c, demo_store.version())
        r = c.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
        assert r.status_code == 201, r.text
        status = wait_finished(c, demo_store.version())
        assert status["answers"] == status["total"] == 12
        other: GraphStore = MemoryStore(demo_store.home) if isinstance(demo_store, MemoryStore) else _reopen(demo_store, request)
        try:
            other.write(_outside_interaction(3))
        finally:
            other.close()
        assert c.get("/ready").json()["data_version"] == demo_store.version()
        status = wait_finished(c, demo_store.version())
        assert status["answers"] == status["total"] == 12 and status["hits"] == 0


def test_precompute_failures_are_left_to_the_requests(client: TestClient, demo_store: GraphStore, drop_answers: None) -> None:
    import dataclasses

    from sitegraph.api.precompute import Precomputer
    from sitegraph.api.routes.sites import PER_SITE
    from sitegraph.queries.snapshot import get_snapshot

    def boom(*a: object) -> dict[str, Any]:
        raise RuntimeError("batch failed")

    specs = tuple(dataclasses.replace(s, batch=boom) if s.name == "tactics" else s for s in PER_SITE)
    snapshot = get_snapshot(demo_store)
    pre = Precomputer(specs, lambda: snapshot, freeze=False)
    pre.offer(snapshot)
    answers = pre.run(snapshot)
    assert answers.finished is not None and answers.failed == 4 and answers.done == 8
    tactics = _spec("tactics")
    assert answers.get(tactics.fn, tactics.model, tactics.args(MGH), {}) is None
    r = client.get(f"/sites/{MGH}/tactics")  # computed by the request
    assert r.status_code == 200 and r.json()["site_id"] == MGH and r.json()["items"]


def test_precompute_freezes_what_it_left_behind(demo_store: GraphStore, drop_answers: None) -> None:
    """Objects the answers leave in the snapshot (caches made while computing them) go to the collector's
    permanent generation once the precompute is done: a full collection no longer walks them (at medium
    scale those passes had put p99 at 131-137 ms; 15 ms once frozen)."""
    import dataclasses
    import gc

    from sitegraph.api.precompute import Precomputer
    from sitegraph.api.routes.sites import PER_SITE
    from sitegraph.queries.snapshot import get_snapshot

    left: list[dict[str, list[int]]] = []

    def leaves_a_cache(batch: Any) -> Any:
        def run(snapshot: Any, sites: list[str], limit: int | None) -> Any:
            left.append(snapshot.cache.setdefault("test.left-behind", {"kept with the snapshot": []}))
            return batch(snapshot, sites, limit)

        return run

    specs = tuple(dataclasses.replace(s, batch=leaves_a_cache(s.batch)) for s in PER_SITE)
    snapshot = get_snapshot(demo_store)
    pre = Precomputer(specs, lambda: snapshot, freeze=True)
    pre.offer(snapshot)
    try:
        answers = pre.run(snapshot)
        assert answers.finished is not None and left
        marker = left[0]
        assert gc.is_tracked(marker) and not any(o is marker for o in gc.get_objects())  # frozen, not collected
    finally:
        gc.unfreeze()  # back to the collector (this test's freezes only cost it time)


def test_ready_without_precompute_has_no_progress(client: TestClient) -> None:
    assert "precomputed" not in client.get("/ready").json()


# --- errors, CORS, logging, OpenAPI -----------------------------------------------------------------


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    r = client.delete("/sites")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


def test_internal_errors_hide_details(demo_store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import sitegraph.api.routes.sites as sites_routes

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(sites_routes, "site_360", boom)
    with TestClient(create_app(store=demo_store, settings=api_settings()), raise_server_exceptions=False) as c:
        r = c.get(f"/sites/{MGH}")
        err = assert_error(r, 500, "internal_error")
        assert "secret" not in r.text and "RuntimeError" not in r.text
        assert "incident" in err["message"]


def test_cors(client: TestClient) -> None:
    r = client.options(
        "/interactions",
        headers={
            "Origin": "https://crm.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://crm.example"
    r = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_requests_are_logged_with_timing(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sitegraph.api.access"):
        client.get("/sites/site:nowhere")
    line = next(r.getMessage() for r in caplog.records if r.name == "sitegraph.api.access")
    assert line.startswith("GET /sites/site:nowhere 404 ") and line.endswith("ms")


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/health",
        "/ready",
        "/sites",
        "/sites/{site_id}",
        "/sites/{site_id}/related",
        "/sites/{site_id}/tactics",
        "/investigators/{investigator_id}",
        "/barriers",
        "/barriers/{barrier_id}",
        "/tactics",
        "/tactics/{tactic_id}",
        "/interactions",
        "/interactions/{interaction_id}",
    ):
        assert path in spec["paths"], path
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                assert schema, f"{method} {path} {status} has no response schema"
                assert schema != {}, f"{method} {path} {status} returns Any"
    post = spec["paths"]["/interactions"]["post"]
    assert {"401", "422", "503"} <= set(post["responses"]) and post["security"]
    assert client.get("/docs").status_code == 200


# --- store down and recovery ------------------------------------------------------------------------


def test_memory_store_down_gives_503_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded store failing (the Neo4j outage is tested through a proxy below)."""
    demo_store = MemoryStore(tmp_path / "m")
    demo_store.write(build_demo_batch())
    app = create_app(store=demo_store, settings=api_settings())
    with TestClient(app) as c:
        assert c.get(f"/sites/{MGH}").status_code == 200

        def down(*a: object, **k: object) -> None:
            raise StoreUnavailableError("disk gone")

        before = interaction_count(demo_store)
        for method in ("ping", "version", "existing_keys", "get_node", "iter_nodes", "write", "neighbors"):
            monkeypatch.setattr(demo_store, method, down)
        r = c.get("/ready")
        assert_error(r, 503, "store_unavailable")
        assert r.headers["retry-after"]
        assert "disk gone" not in r.text
        assert_error(c.get(f"/sites/{MGH}"), 503, "store_unavailable")
        assert_error(c.get("/sites", params={"q": "mgh"}), 503, "store_unavailable")
        assert_error(c.post("/interactions", json=new_interaction(), headers={"X-API-Key": "test-key-1"}), 503)
        monkeypatch.undo()
        assert interaction_count(demo_store) == before
        assert c.get("/ready").status_code == 200
        assert c.get(f"/sites/{MGH}").status_code == 200


def test_sqlite_errors_are_503(tmp_path: Path) -> None:
    mem = MemoryStore(tmp_path / "m")
    mem.write(build_demo_batch())
    mem.close()  # every query now raises sqlite3.ProgrammingError
    with TestClient(create_app(store=mem, settings=api_settings())) as c:
        assert_error(c.get("/ready"), 503, "store_unavailable")
        assert_error(c.get("/sites"), 503, "store_unavailable")


def test_store_opened_in_lifespan_and_closed_on_shutdown(tmp_path: Path) -> None:
    settings = api_settings(sitegraph_home=tmp_path / "home", sitegraph_store="memory")
    app = create_app(settings=settings)
    with TestClient(app) as c:
        holder = app.state.store_holder
        assert c.get("/ready").json()["store"] == "memory"
        store = holder.get()
    assert holder._store is None
    with pytest.raises(Exception, match="closed"):
        store.version()


def test_a_write_of_interactions_keeps_the_cached_answers_that_read_none(client: TestClient, demo_store: GraphStore) -> None:
    """Site search and the ontology lookups read no interaction: after `POST /interactions` the new
    snapshot starts with their cached bodies (equal to a fresh computation), and with no other."""
    from sitegraph.api.cache import response_cache
    from sitegraph.api.concepts import list_concepts
    from sitegraph.queries.profile import site_360
    from sitegraph.queries.search import search_sites
    from sitegraph.queries.snapshot import build_snapshot, get_snapshot

    searched = client.get("/sites", params={"q": "general"})
    barriers = client.get("/barriers")
    assert searched.status_code == barriers.status_code == client.get(f"/sites/{MGH}").status_code == 200
    before = get_snapshot(demo_store)
    r = client.post("/interactions", json=new_interaction(), headers={"Authorization": "Bearer test-key-1"})
    assert r.status_code == 201, r.text
    after = get_snapshot(demo_store)
    assert after.version == before.version + 1
    kept = {key[0] for key in response_cache(after)._items}  # before any request reads the new snapshot
    assert search_sites in kept and list_concepts in kept and site_360 not in kept
    assert client.get("/sites", params={"q": "general"}).content == searched.content
    assert client.get("/barriers").content == barriers.content
    fresh = build_snapshot(demo_store)
    assert searched.json() == search_sites(fresh, "general").model_dump(mode="json")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _fast_neo4j_store(uri: str, password: str) -> GraphStore:
    from neo4j import GraphDatabase

    from sitegraph.graph.neo4j_store import Neo4jStore

    driver = GraphDatabase.driver(uri, auth=("neo4j", password), connection_timeout=2, max_transaction_retry_time=1)
    return Neo4jStore(uri, "neo4j", password, driver=driver)


@pytest.mark.neo4j
def test_neo4j_unreachable_gives_503() -> None:
    store = _fast_neo4j_store(f"bolt://127.0.0.1:{_closed_port()}", "irrelevant")
    try:
        with TestClient(create_app(store=store, settings=api_settings())) as c:
            assert_error(c.get("/ready"), 503, "store_unavailable")
            assert_error(c.get(f"/sites/{MGH}"), 503, "store_unavailable")
            assert c.get("/health").status_code == 200
    finally:
        store.close()


@pytest.mark.neo4j
def test_neo4j_unreachable_at_startup_then_recovers(tmp_path: Path, neo4j_server: Any) -> None:
    """The app starts with Neo4j down (503s), and serves once it is reachable, without a restart."""
    proxy = TcpProxy(int(neo4j_server.bolt_port))
    settings = api_settings(
        sitegraph_home=tmp_path,
        sitegraph_store="neo4j",
        neo4j_uri=f"bolt://127.0.0.1:{proxy.port}",
        neo4j_password=SecretStr(neo4j_server.password),
    )
    import sitegraph.api.state as state

    original = state.RETRY_INTERVAL
    state.RETRY_INTERVAL = 0.0
    try:
        with TestClient(create_app(settings=settings)) as c:
            assert_error(c.get("/ready"), 503, "store_unavailable")
            proxy.start()
            r = c.get("/ready")
            assert r.status_code == 200, r.text
            assert r.json()["store"] == "neo4j"
    finally:
        state.RETRY_INTERVAL = original
        proxy.stop()


@pytest.mark.neo4j
def test_neo4j_outage_gives_503_and_recovers(neo4j_server: Any, neo4j_session_store: GraphStore) -> None:
    neo4j_session_store.clear(confirm=True)
    neo4j_session_store.write(build_demo_batch())
    proxy = TcpProxy(int(neo4j_server.bolt_port))
    proxy.start()
    store = _fast_neo4j_store(f"bolt://127.0.0.1:{proxy.port}", neo4j_server.password)
    try:
        with TestClient(create_app(store=store, settings=api_settings())) as c:
            assert c.get(f"/sites/{MGH}").status_code == 200
            proxy.stop()
            assert_error(c.get("/ready"), 503, "store_unavailable")
            assert_error(c.get(f"/sites/{MGH}"), 503, "store_unavailable")
            proxy.start()
            assert c.get("/ready").status_code == 200
            r = c.get(f"/sites/{MGH}")
            assert r.status_code == 200 and r.json()["site"]["id"] == MGH
    finally:
        store.close()
        proxy.stop()


class TcpProxy:
    """A loopback TCP forwarder that can be stopped and started again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _closed_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the blocked accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# --- both stores answer alike -----------------------------------------------------------------------


@pytest.mark.neo4j
def test_both_stores_give_identical_answers(tmp_path: Path, neo4j_session_store: GraphStore) -> None:
    mem = MemoryStore(tmp_path / "mem")
    neo4j_session_store.clear(confirm=True)
    for st in (mem, neo4j_session_store):
        st.write(build_demo_batch())
    paths = [
        "/sites",
        "/sites?q=boston",
        "/sites?condition=breast&limit=1&offset=1",
        f"/sites/{MGH}",
        f"/sites/{CHARITE}",
        "/investigators/inv:jane-doe",
        "/barriers",
        "/barriers/slow-contract-negotiation",
        "/tactics",
        "/tactics/contract-template",
        "/interactions/int:0001",
    ]
    try:
        answers = []
        for st in (mem, neo4j_session_store):
            with TestClient(create_app(store=st, settings=api_settings())) as c:
                got = {}
                for p in paths:
                    r = c.get(p)
                    assert r.status_code == 200, (st.kind, p, r.text)
                    body = r.json()
                    body.pop("data_version", None)
                    got[p] = body
                answers.append(got)
        for p in paths:
            assert answers[0][p] == answers[1][p], p
    finally:
        mem.close()


# --- serving ----------------------------------------------------------------------------------------


def test_module_level_app_is_built_on_first_access(monkeypatch: pytest.MonkeyPatch) -> None:
    import sitegraph.api.main as main

    monkeypatch.setattr(main, "_app", None)
    app = main.app
    assert app is main.app and app.title == "sitegraph API"


def test_serve_prints_urls_and_runs_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    import uvicorn
    from typer.testing import CliRunner

    from sitegraph.cli.serve_cmd import serve
    from sitegraph.settings import get_settings

    mem = MemoryStore(tmp_path / "memory")
    mem.write(build_demo_batch())
    mem.close()
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("SITEGRAPH_STORE", "neo4j")  # --store overrides it
    monkeypatch.setenv("SITEGRAPH_API_KEYS", "")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"target": target, **kw}))
    cli = typer.Typer()
    cli.command()(serve)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["--port", "8123", "--store", "memory"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/docs" in result.output
    assert "http://127.0.0.1:8123/health" in result.output
    assert f"http://127.0.0.1:8123/sites/{MGH}" in result.output
    assert "SITEGRAPH_API_KEYS" in result.output
    assert len(calls) == 1
    call = calls[0]
    assert {k: call[k] for k in ("target", "factory", "host", "port", "reload", "workers", "log_level", "access_log")} == {
        "target": "sitegraph.api.main:create_app",
        "factory": True,
        "host": "127.0.0.1",
        "port": 8123,
        "reload": False,
        "workers": 1,
        "log_level": "info",
        "access_log": False,
    }
    assert call["log_config"]["loggers"]["sitegraph"]["level"] == "INFO"
    assert os.environ["SITEGRAPH_STORE"] == "memory"


def test_oversized_body_is_413_and_stores_nothing(client: TestClient, demo_store: GraphStore) -> None:
    before = interaction_count(demo_store)
    big = b'{"site_id": "' + MGH.encode() + b'", "note": "' + b"x" * 70_000 + b'"}'
    headers = {"X-API-Key": "test-key-1", "Content-Type": "application/json"}
    assert_error(client.post("/interactions", content=big, headers=headers), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield big[:1000]
        yield big[1000:]

    assert_error(client.post("/interactions", content=chunks(), headers=headers), 413, "payload_too_large")
    assert interaction_count(demo_store) == before


def test_precompute_setting_turns_the_thread_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SITEGRAPH_API_PRECOMPUTE=0 (or `sitegraph serve --no-precompute`) serves without the thread."""
    monkeypatch.setenv("SITEGRAPH_API_PRECOMPUTE", "0")
    settings = Settings(_env_file=None, sitegraph_home=tmp_path)  # type: ignore[call-arg]
    assert settings.sitegraph_api_precompute is False
    assert create_app(settings=settings).state.precomputer is None
    monkeypatch.setenv("SITEGRAPH_API_PRECOMPUTE", "true")
    settings = Settings(_env_file=None, sitegraph_home=tmp_path)  # type: ignore[call-arg]
    assert settings.sitegraph_api_precompute is True
    assert create_app(settings=settings).state.precomputer is not None


def test_precompute_with_the_batch_related_sites(demo_store: GraphStore, drop_answers: None) -> None:
    """The precompute with ``/related`` answered by ``related_all`` (the batch path) keeps the route's own bodies."""
    import dataclasses

    from sitegraph.api.deps import to_json
    from sitegraph.api.precompute import Precomputer
    from sitegraph.api.routes.sites import PER_SITE
    from sitegraph.api.schemas import RelatedSitesResponse
    from sitegraph.queries.related import related_all
    from sitegraph.queries.snapshot import get_snapshot

    def batch(snapshot: Any, site_ids: list[str], limit: int | None) -> dict[str, Any]:
        return {s: RelatedSitesResponse(site_id=s, items=items) for s, items in related_all(snapshot, site_ids, limit or 10)}

    specs = tuple(dataclasses.replace(s, batch=batch) if s.name == "related" else s for s in PER_SITE)
    snapshot = get_snapshot(demo_store)
    pre = Precomputer(specs, lambda: snapshot, freeze=False, block=3)
    pre.offer(snapshot)
    answers = pre.run(snapshot)
    assert answers.finished is not None and answers.failed == 0 and answers.done == answers.total
    spec = next(s for s in specs if s.name == "related")
    for site in [k for k, _ in snapshot.nodes("Site")]:
        expected = to_json(spec.model, spec.fn(snapshot, *spec.args(site)))
        assert answers.get(spec.fn, spec.model, spec.args(site), {}) == expected


def test_the_indexes_of_a_new_snapshot_are_built_once_however_many_threads_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a write the query threads and the precompute thread all need the new snapshot's indexes at
    once: one of them builds them, the others wait for it (each building its own copy held the GIL for
    seconds at sponsor scale)."""
    import threading
    import time

    import networkx as nx

    from sitegraph.api import state
    from sitegraph.queries.snapshot import Snapshot

    builds: list[int] = []
    inside = threading.Event()

    def slow_build(snapshot: Snapshot) -> None:
        builds.append(snapshot.version)
        inside.set()
        time.sleep(0.2)
        snapshot.cache["test.index"] = "built"

    monkeypatch.setattr(state, "warm_up_snapshot", slow_build)
    snapshot = Snapshot(graph=nx.MultiDiGraph(), version=7)
    seen: list[object] = []

    def ask() -> None:
        state.ensure_warm(snapshot)
        seen.append(snapshot.cache.get("test.index"))  # never before the build is done

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert builds == [7] and seen == ["built"] * 6
    state.ensure_warm(snapshot)
    assert builds == [7]
    # a new snapshot (the next data version) is built anew
    state.ensure_warm(Snapshot(graph=nx.MultiDiGraph(), version=8))
    assert builds == [7, 8] and inside.is_set()


def test_a_failed_warm_up_leaves_the_queries_to_build_their_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import networkx as nx

    from sitegraph.api import state
    from sitegraph.queries.snapshot import Snapshot

    calls: list[int] = []

    def broken(snapshot: Snapshot) -> None:
        calls.append(1)
        raise ValueError("an odd graph")

    monkeypatch.setattr(state, "warm_up_snapshot", broken)
    snapshot = Snapshot(graph=nx.MultiDiGraph(), version=3)
    with caplog.at_level("WARNING", logger="sitegraph.api.state"):
        state.ensure_warm(snapshot)
        state.ensure_warm(snapshot)
    assert calls == [1]  # not retried by every request
    assert "warm-up of data version 3 failed" in caplog.text and "an odd graph" in caplog.text


# --- a write of interactions only: the next snapshot extends or reuses the previous one's indexes ----------


def test_indexes_carried_over_a_write_of_interactions_equal_a_full_build(
    demo_store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `POST /interactions` the engagement index is the previous one plus the new records, and the
    search index and network proximity are the previous ones (they read no interaction): each equal to
    what a full build of the new data gives, and so is every answer, for writes before the newest
    interaction, after it at the reference date (the end of its UTC day, which stays) and days later
    (which moves the reference day), with a tactic and outcome, and at a site that had no interactions.
    The effectiveness index, the pair counts and the country rates are kept when the write adds no
    application, the activity tables updated row by row when the reference day stays, and the block
    operands keep their walk: each equal to a full build."""
    import random

    import numpy as np

    from sitegraph.api.record import log_interaction
    from sitegraph.api.schemas import InteractionCreate
    from sitegraph.api.state import ensure_warm
    from sitegraph.queries import recommend, related, search, signals
    from sitegraph.queries.effectiveness import effectiveness_index
    from sitegraph.queries.recommend import RECURRENCE_HALF_LIFE_DAYS
    from sitegraph.queries.snapshot import LINEAGE_KEY, Lineage, build_snapshot, get_snapshot
    from tests.conftest import site_answers

    full_builds: list[Any] = []
    build = signals._build_engagement_index
    monkeypatch.setattr(signals, "_build_engagement_index", lambda snap: (full_builds.append(snap), build(snap))[1])
    snapshot = get_snapshot(demo_store)
    ensure_warm(snapshot)
    eng = signals.engagement_index(snapshot)
    sites = [k for k, _ in snapshot.nodes("Site")]
    quiet = next(s for s in sites if not eng.records(s))
    ref = signals.day_to_iso(eng.reference_day)
    later = signals.day_to_iso(eng.reference_day + 2.5)
    writes = [
        dict(site_id=MGH, channel="call", occurred_at="2024-01-10T09:00:00Z", note="The contract is stuck in legal review."),
        dict(
            site_id=MGH,
            channel="email",
            occurred_at=ref,
            note="Budget talks stalled.",
            tactic_id="contract-template",
            outcome="improved",
        ),
        dict(site_id=quiet, channel="visit", occurred_at=later, note="Screen failures on eligibility keep piling up."),
        dict(site_id=MGH, channel="call", occurred_at=later, note="The budget is agreed; the contract is with legal."),
    ]
    # (the reference day stays, the applications stay) for each write: the first is dated before MGH's
    # tactics, the second applies one, the third moves the reference day, the fourth changes neither
    stays = [(True, False), (True, False), (False, True), (True, True)]
    rng = random.Random(5)
    for n, body in enumerate(writes):
        previous = get_snapshot(demo_store)
        ensure_warm(previous)
        log_interaction(demo_store, InteractionCreate.model_validate(body), recorded_by="test")
        after = get_snapshot(demo_store)
        lineage = after.cache.get(LINEAGE_KEY)
        assert isinstance(lineage, Lineage) and lineage.interactions_only, n
        fresh = build_snapshot(demo_store)  # the same data, no lineage: every index built from scratch
        assert LINEAGE_KEY not in fresh.cache and fresh.version == after.version

        full_builds.clear()
        extended = signals.engagement_index(after)
        assert full_builds == []  # extended from the previous snapshot's, not rebuilt
        full = signals.engagement_index(fresh)
        assert full_builds == [fresh]
        assert extended.by_site == full.by_site and extended.reference_day == full.reference_day, n
        same_day, same_applications = stays[n]
        assert (extended.reference_day == signals.engagement_index(previous).reference_day) == same_day, n
        delta = signals.engagement_delta(after)
        assert delta is not None and (delta.sites, delta.same_reference, delta.same_applications) == (
            frozenset({body["site_id"]}),
            same_day,
            same_applications,
        ), n
        assert extended.barrier_meta == full.barrier_meta
        assert extended.records(body["site_id"])[-1 if n != 0 else 0] in full.records(body["site_id"])
        assert search._index(after) is search._index(previous)  # carried as it is
        assert [e.summary for e in search._index(after).entries] == [e.summary for e in search._index(fresh).entries]
        st, st_full = related.site_structure(after), related.site_structure(fresh)
        assert st.site_inv is related.site_structure(previous).site_inv  # the incidence matrices carried
        for name in ("site_inv", "site_study", "site_cond", "inv_site", "study_site", "cond_site", "barrier_unit_sparse"):
            assert (getattr(st, name) != getattr(st_full, name)).nnz == 0, name
        for name in ("barrier_unit", "activity", "n_std", "n_cond"):
            assert np.array_equal(getattr(st, name), getattr(st_full, name)), name
        assert (st.sites, st.index, st.investigators, st.studies, st.conditions, st.barriers) == (
            st_full.sites, st_full.index, st_full.investigators, st_full.studies, st_full.conditions, st_full.barriers
        )  # fmt: skip
        prox, prox_full = related._proximity(after), related._proximity(fresh)
        assert prox is related._proximity(previous)
        for name in ("indptr", "indices", "data", "site_rows"):
            assert np.array_equal(getattr(prox, name), getattr(prox_full, name)), name

        # the indexes built from the engagement index: kept, or updated row by row, when the write allows it
        eff = effectiveness_index(after)
        assert (eff is effectiveness_index(previous)) == same_applications, n
        assert eff == effectiveness_index(fresh), n
        for half_life in (signals.HALF_LIFE_DAYS, RECURRENCE_HALF_LIFE_DAYS):
            table, table_full = (signals.activity_table(x, half_life_days=half_life) for x in (after, fresh))
            assert (table.sites, table.barriers) == (table_full.sites, table_full.barriers)
            for name in ("indptr", "cols", "values"):
                assert np.array_equal(getattr(table, name), getattr(table_full, name)), (n, half_life, name)
        pc, pc_full = recommend._pair_counts(after), recommend._pair_counts(fresh)
        assert (pc is recommend._pair_counts(previous)) == same_applications, n
        assert (pc.tactics, pc.keys) == (pc_full.tactics, pc_full.keys) and (pc.counts != pc_full.counts).nnz == 0
        assert recommend.country_rates(after) == recommend.country_rates(fresh)
        assert recommend.ontology_index(after) is recommend.ontology_index(previous)
        ops, ops_full = related._block_operands(after), related._block_operands(fresh)
        assert ops.walk is related._block_operands(previous).walk
        assert (ops.unit_t != ops_full.unit_t).nnz == 0 and np.array_equal(ops.unit_cols, ops_full.unit_cols)

        sample = sorted({body["site_id"], *rng.sample(sites, min(40, len(sites)))})
        assert site_answers(after, sample) == site_answers(fresh, sample), n
        ensure_warm(after)
        assert LINEAGE_KEY not in after.cache  # what it held of the previous snapshot is let go


def test_other_writes_give_no_lineage(demo_store: GraphStore) -> None:
    """A write that changes anything besides new interactions (here a site's property) builds every index anew."""
    from sitegraph.graph.store import GraphBatch
    from sitegraph.queries.snapshot import LINEAGE_KEY, get_snapshot, interactions_only, write_through

    snapshot = get_snapshot(demo_store)
    batch = GraphBatch()
    batch.add_node("Site", MGH, {"city": "Boston, MA"})
    assert not interactions_only(snapshot.graph, batch)
    existing = next(k for k, _ in snapshot.nodes("Interaction"))
    again = GraphBatch()
    again.add_node("Interaction", existing, {"note": "edited"})
    assert not interactions_only(snapshot.graph, again)  # an existing interaction changed
    dangling = GraphBatch()
    dangling.add_node("Interaction", "interaction:new", {"occurred_at": "2025-01-01T00:00:00Z", "channel": "call"})
    dangling.add_rel("WITH_SITE", "Interaction", "interaction:new", "Site", "site:not-there")
    assert not interactions_only(snapshot.graph, dangling)  # would create a bare site
    write_through(demo_store, batch)
    after = get_snapshot(demo_store)
    lineage = after.cache.get(LINEAGE_KEY)
    assert lineage is None or not lineage.interactions_only


def test_ontology_lookups_do_not_wait_for_the_indexes(demo_store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads that need none of the derived indexes answer at once after a write; the others wait for them."""
    from sitegraph.api import deps
    from sitegraph.api.concepts import barrier_detail, list_concepts, tactic_detail
    from sitegraph.queries.profile import site_360
    from sitegraph.queries.snapshot import get_snapshot

    warmed: list[object] = []
    monkeypatch.setattr(deps, "ensure_warm", warmed.append)
    snapshot = get_snapshot(demo_store)
    barriers = deps._warm_then(list_concepts, snapshot, "Barrier")
    tactics = deps._warm_then(list_concepts, snapshot, "Tactic")
    deps._warm_then(barrier_detail, snapshot, barriers.items[0].id)
    deps._warm_then(tactic_detail, snapshot, tactics.items[0].id)
    assert warmed == []
    deps._warm_then(site_360, snapshot, MGH)
    assert warmed == [snapshot]
