"""Jobs: submit, list, status, events, pause/resume/cancel, and a live WebSocket stream."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect

from learnloop.api.schemas import JobEventResponse, JobResponse, SubmitJobRequest
from learnloop.api.security import Reader, Writer, container_of
from learnloop.container import Container
from learnloop.core.auth import Permission, Principal
from learnloop.core.errors import Forbidden, LearnloopError, NotFound, Unauthorized
from learnloop.core.identifiers import Cursor, ObjectId, Text
from learnloop.core.records import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# WebSocket close codes mirror the HTTP statuses (4000 + status)
WS_CLOSE_CODES: dict[type[LearnloopError], int] = {
    Unauthorized: 4401,
    Forbidden: 4403,
    NotFound: 4404,
}


def submit_job(c: Container, body: SubmitJobRequest, actor: str) -> JobResponse:
    payload = body.payload
    if body.kind == "train":
        request = c.training.validate(c.training.parse(payload))
        payload = request.model_dump()
    elif body.kind == "batch_predict":  # the file rules hold however a batch job is submitted
        payload = c.batch.parse(payload).model_dump()
    job = c.jobs.submit(
        body.kind, payload, priority=body.priority, max_attempts=body.max_attempts, actor=actor
    )
    return JobResponse.of(job)


@router.post("", status_code=202)
def submit(body: SubmitJobRequest, request: Request, principal: Principal = Writer) -> JobResponse:
    """Queue a job. ``train`` payloads are validated before queueing."""
    return submit_job(container_of(request), body, principal.name)


@router.get("")
def list_jobs(
    request: Request,
    status: JobStatus | None = None,
    kind: Text | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Reader,
) -> list[JobResponse]:
    jobs = container_of(request).jobs.list(status=status, kind=kind, limit=limit)
    return [JobResponse.of(j) for j in jobs]


@router.get("/{job_id}")
def get_job(job_id: ObjectId, request: Request, principal: Principal = Reader) -> JobResponse:
    return JobResponse.of(container_of(request).jobs.get(job_id))


@router.get("/{job_id}/events")
def job_events(
    job_id: ObjectId, request: Request, after: Cursor = 0, principal: Principal = Reader
) -> list[JobEventResponse]:
    return [JobEventResponse.of(e) for e in container_of(request).jobs.events(job_id, after)]


@router.post("/{job_id}/pause")
def pause(job_id: ObjectId, request: Request, principal: Principal = Writer) -> JobResponse:
    return JobResponse.of(container_of(request).jobs.pause(job_id, actor=principal.name))


@router.post("/{job_id}/resume")
def resume(job_id: ObjectId, request: Request, principal: Principal = Writer) -> JobResponse:
    return JobResponse.of(container_of(request).jobs.resume(job_id, actor=principal.name))


@router.post("/{job_id}/cancel")
def cancel(job_id: ObjectId, request: Request, principal: Principal = Writer) -> JobResponse:
    return JobResponse.of(container_of(request).jobs.cancel(job_id, actor=principal.name))


@router.websocket("/{job_id}/stream")
async def stream(websocket: WebSocket, job_id: str) -> None:
    """Live progress: one JSON message per job event, then the final job; closes when done.

    Authenticate with the ``Authorization``/``X-API-Key`` header or ``?key=``."""
    c: Container = websocket.app.state.container
    token = websocket.query_params.get("key") or websocket.headers.get("x-api-key")
    auth = websocket.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    try:
        if c.settings.api.auth_enabled:
            c.keys.authenticate(token).require(Permission.READ)
        c.jobs.get(job_id)
    except LearnloopError as e:
        # accept first: a close before the handshake reaches clients as a bare HTTP 403
        await websocket.accept()
        await websocket.close(code=WS_CLOSE_CODES.get(type(e), 4400), reason=e.message)
        return
    await websocket.accept()
    seq = 0
    try:
        while True:
            events = await asyncio.to_thread(c.jobs.events, job_id, seq)
            for event in events:
                seq = event.seq
                await websocket.send_json(
                    {"type": "event", **JobEventResponse.of(event).model_dump(mode="json")}
                )
            job = await asyncio.to_thread(c.jobs.get, job_id)
            if job.status.finished or job.status is JobStatus.PAUSED:
                await websocket.send_json(
                    {"type": "job", **JobResponse.of(job).model_dump(mode="json")}
                )
                await websocket.close()
                return
            await asyncio.sleep(0.25)
    except WebSocketDisconnect:
        return
