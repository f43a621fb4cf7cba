"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sitegraph import __version__
from sitegraph.api.deps import StoreDep
from sitegraph.api.errors import error_responses
from sitegraph.api.precompute import Precomputer
from sitegraph.api.schemas import Health, Precomputed, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers", responses=error_responses(500))
def health() -> Health:
    """Always 200 while the process runs; says nothing about the store (see `/ready`)."""
    return Health(version=__version__)


@router.get(
    "/ready",
    response_model=Ready,
    response_model_exclude_none=True,
    summary="Readiness: the store answers",
    responses=error_responses(500, 503),
)
def ready(store: StoreDep, request: Request) -> Ready:
    """200 when the store answers a query, else 503 with the error shape (retry later). With
    `precomputed`: how far the answers computed ahead for every site are."""
    store.ping()
    precomputer: Precomputer | None = request.app.state.precomputer
    status = precomputer.status() if precomputer is not None else None
    return Ready(
        store=store.kind,
        data_version=store.version(),
        precomputed=Precomputed.model_validate(status) if status is not None else None,
    )
