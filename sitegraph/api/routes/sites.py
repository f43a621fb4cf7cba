"""Sites: search, the Site 360 profile, related sites and next-best tactics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from sitegraph.api.cache import reads_no_interactions
from sitegraph.api.deps import ReaderDep
from sitegraph.api.errors import error_responses
from sitegraph.api.precompute import PerSite
from sitegraph.api.schemas import RelatedSitesResponse, TacticsResponse
from sitegraph.errors import NotFoundError
from sitegraph.queries.profile import Site360, site_360
from sitegraph.queries.recommend import recommend_all, recommend_tactics
from sitegraph.queries.related import related_all, related_sites
from sitegraph.queries.search import MAX_LIMIT, SiteSearchResult, search_sites
from sitegraph.queries.snapshot import Snapshot

router = APIRouter(prefix="/sites", tags=["sites"], responses=error_responses(422, 500, 503))
reads_no_interactions(search_sites)  # names, places, studies and investigators only

SITE_EXAMPLE = "site:massachusetts-general-hospital-boston-massachusetts-unitedstates"
SiteId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The site's id (it contains ':'; no need to encode it).",
        examples=[SITE_EXAMPLE],
        openapi_examples={"Massachusetts General Hospital": {"value": SITE_EXAMPLE}},
    ),
]
ResultLimit = Annotated[int, Query(ge=1, le=50, description="How many results (1-50).")]
RELATED_LIMIT = 10
TACTICS_LIMIT = 5


def _related(snapshot: Snapshot, site_id: str, limit: int) -> RelatedSitesResponse:
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    return RelatedSitesResponse(site_id=site_id, items=related_sites(snapshot, site_id, limit))


def _tactics(snapshot: Snapshot, site_id: str, limit: int) -> TacticsResponse:
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    return TacticsResponse(site_id=site_id, items=recommend_tactics(snapshot, site_id, limit))


def _related_batch(snapshot: Snapshot, site_ids: list[str], limit: int | None) -> dict[str, RelatedSitesResponse]:
    """:func:`_related` for many sites (``related_all`` gives each site exactly ``related_sites``'s answer)."""
    n = RELATED_LIMIT if limit is None else limit
    return {s: RelatedSitesResponse(site_id=s, items=items) for s, items in related_all(snapshot, site_ids, n)}


def _tactics_batch(snapshot: Snapshot, site_ids: list[str], limit: int | None) -> dict[str, TacticsResponse]:
    """:func:`_tactics` for many sites (``recommend_all`` gives each site exactly ``recommend_tactics``'s answer)."""
    n = TACTICS_LIMIT if limit is None else limit
    return {s: TacticsResponse(site_id=s, items=items) for s, items in dict(recommend_all(snapshot, site_ids, n)).items()}


def _site_batch(snapshot: Snapshot, site_ids: list[str], limit: int | None) -> dict[str, Site360]:
    """:func:`site_360` for many sites."""
    return {s: site_360(snapshot, s) for s in site_ids}


PER_SITE = (
    PerSite("tactics", TacticsResponse, _tactics, TACTICS_LIMIT, _tactics_batch, depends="tactics"),
    PerSite("related", RelatedSitesResponse, _related, RELATED_LIMIT, _related_batch, depends="neighbours"),
    PerSite("site", Site360, site_360, None, _site_batch, depends="own", stamped=True),
)
"""What :mod:`sitegraph.api.precompute` answers ahead for every site: each route at its default limit
(the Site 360 profile too: under requests spread over every site, computing it per request would
hold up the other answers)."""


@router.get("", response_model=SiteSearchResult, summary="Search sites")
async def list_sites(
    read: ReaderDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words to find in the name, aliases or city.",
            examples=["general boston"],
            openapi_examples={"words": {"value": "general boston"}},
        ),
    ] = None,
    country: Annotated[
        str | None, Query(max_length=100, description="Exact country (case-insensitive).", examples=["United States"])
    ] = None,
    condition: Annotated[
        str | None,
        Query(
            max_length=200,
            description="A condition id, or text in a condition's name or therapeutic area.",
            examples=["nsclc"],
            openapi_examples={"text": {"value": "nsclc"}},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (1-{MAX_LIMIT}).")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="How many matches to skip.")] = 0,
) -> Response:
    """Sites matching every given filter, best match first, then by name and id: `{total, limit, offset, items}`."""
    return await read.json(SiteSearchResult, search_sites, q, country=country, condition=condition, limit=limit, offset=offset)


@router.get("/{site_id}", response_model=Site360, summary="Site 360 profile", responses=error_responses(404))
async def get_site(site_id: SiteId, read: ReaderDep) -> Response:
    """Identity and location, investigators with roles, studies with per-site facts, KPIs, active barriers,
    centrality, and a summary of recent interactions with their mean sentiment."""
    return await read.json(Site360, site_360, site_id)


@router.get("/{site_id}/related", response_model=RelatedSitesResponse, summary="Related sites", responses=error_responses(404))
async def get_related(site_id: SiteId, read: ReaderDep, limit: ResultLimit = RELATED_LIMIT) -> Response:
    """Sites most like this one, each with its score, the reasons (shared investigators, studies,
    conditions, barriers, network proximity) and the Cypher that shows them in Neo4j Browser."""
    return await read.json(RelatedSitesResponse, _related, site_id, limit)


@router.get("/{site_id}/tactics", response_model=TacticsResponse, summary="Next-best tactics", responses=error_responses(404))
async def get_tactics(site_id: SiteId, read: ReaderDep, limit: ResultLimit = TACTICS_LIMIT) -> Response:
    """Tactics most likely to remove the site's active barriers, with score, whom to engage and through
    which channel, explanation paths, evidence, and the Cypher to see each path in Neo4j Browser."""
    return await read.json(TacticsResponse, _tactics, site_id, limit)
