"""Ontology lookups: barriers and tactics with their hierarchy and mitigation links.

Ids are IRIs or compact ids. IRIs contain '/', so the id is a ``path`` parameter:
``/barriers/https://w3id.org/sitegraph/barrier/stalled-ethics-approval`` and the percent-encoded
``/barriers/https%3A%2F%2Fw3id.org%2F...`` both work, as does ``/barriers/stalled-ethics-approval``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from sitegraph.api.concepts import barrier_detail, list_concepts, tactic_detail
from sitegraph.api.deps import ReaderDep
from sitegraph.api.errors import error_responses
from sitegraph.api.schemas import BarrierDetail, ConceptList, TacticDetail

router = APIRouter(tags=["ontology"], responses=error_responses(500, 503))


def _concept_id(kind: str, compact: str) -> Any:
    return Path(
        min_length=1,
        max_length=500,
        description=f"The {kind}'s IRI (as is or percent-encoded) or its compact id.",
        examples=[compact, f"https://w3id.org/sitegraph/{kind}/{compact}"],
        openapi_examples={
            "compact id": {"value": compact},
            "IRI": {"value": f"https://w3id.org/sitegraph/{kind}/{compact}"},
        },
    )


BarrierId = Annotated[str, _concept_id("barrier", "stalled-ethics-approval")]
TacticId = Annotated[str, _concept_id("tactic", "fair-market-value-budget")]


@router.get("/barriers", response_model=ConceptList, summary="List barriers")
async def get_barriers(read: ReaderDep) -> Response:
    """Every barrier concept (categories included), ordered by compact id."""
    return await read.json(ConceptList, list_concepts, "Barrier")


@router.get(
    "/barriers/{barrier_id:path}", response_model=BarrierDetail, summary="One barrier", responses=error_responses(404, 422)
)
async def get_barrier(barrier_id: BarrierId, read: ReaderDep) -> Response:
    """The barrier with its broader and narrower concepts and the tactics that mitigate it, with evidence."""
    return await read.json(BarrierDetail, barrier_detail, barrier_id)


@router.get("/tactics", response_model=ConceptList, summary="List tactics")
async def get_tactics(read: ReaderDep) -> Response:
    """Every tactic concept (groups included), ordered by compact id."""
    return await read.json(ConceptList, list_concepts, "Tactic")


@router.get("/tactics/{tactic_id:path}", response_model=TacticDetail, summary="One tactic", responses=error_responses(404, 422))
async def get_tactic(tactic_id: TacticId, read: ReaderDep) -> Response:
    """The tactic with its hierarchy and the barriers it mitigates, with evidence."""
    return await read.json(TacticDetail, tactic_detail, tactic_id)
