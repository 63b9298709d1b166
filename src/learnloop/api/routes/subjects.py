"""Data-subject rights: where a subject's data is, export it (access), erase it (GDPR)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from learnloop.api.security import Admin, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import SubjectId

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])


@router.get("/{subject_id}")
def find_subject(
    subject_id: SubjectId, request: Request, principal: Principal = Admin
) -> dict[str, Any]:
    """How many rows of each store hold the subject (all zero after an erasure)."""
    return {"subject_id": subject_id, "found": container_of(request).subjects.find(subject_id)}


@router.get("/{subject_id}/export")
def export_subject(
    subject_id: SubjectId, request: Request, principal: Principal = Admin
) -> dict[str, Any]:
    """Right of access: every prediction, feedback event, labelling task and dataset row held
    about the subject, as JSON."""
    return container_of(request).subjects.export(subject_id)


@router.delete("/{subject_id}")
def forget_subject(
    subject_id: SubjectId, request: Request, principal: Principal = Admin
) -> dict[str, Any]:
    """Erase the subject everywhere (ledger, feedback, labelling queue, dataset snapshots,
    caches, indexes); flag model versions trained on its data "retrain required"; write an
    audit tombstone (an HMAC of the id, never the id)."""
    return container_of(request).subjects.forget(subject_id, actor=principal.name)
