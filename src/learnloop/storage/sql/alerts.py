"""Alerts raised by monitors, the channels they go to, and their deliveries.

An alert is stored once per distinct ``key`` (repeats are not raised again). In the same
transaction one delivery row is queued for every enabled channel whose kinds and minimum
severity match, so an alert is never raised without its deliveries (or the other way round).
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from learnloop.core.errors import Conflict, NotFound
from learnloop.core.ids import new_id
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import AlertChannelRow, AlertDeliveryRow, AlertRow, utcnow

SEVERITIES = ("info", "warning", "critical")


def _alert(r: AlertRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "model": r.model,
        "severity": r.severity,
        "message": r.message,
        "details": r.details,
        "created_at": r.created_at.isoformat(),
    }


def _channel(r: AlertChannelRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "url": r.url,
        "kinds": r.kinds.get("kinds"),
        "min_severity": r.min_severity,
        "enabled": r.enabled,
        "created_at": r.created_at.isoformat(),
    }


def _delivery(r: AlertDeliveryRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "alert_id": r.alert_id,
        "channel_id": r.channel_id,
        "status": r.status,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "next_attempt_at": r.next_attempt_at.isoformat(),
        "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
    }


class SqlAlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = sqlite if db.is_sqlite else postgresql
        self._insert = dialect.insert(AlertRow.__table__).on_conflict_do_nothing(
            index_elements=["key"]
        )

    # -- alerts -----------------------------------------------------------------------------

    def raise_alert(
        self,
        key: str,
        kind: str,
        model: str | None,
        severity: str,
        message: str,
        details: dict[str, Any],
    ) -> bool:
        """Store the alert unless one with ``key`` exists, and queue its deliveries; True when
        it is new."""
        alert_id, now = new_id(), utcnow()
        with self.db.write() as s:
            result = s.connection().execute(
                self._insert,
                {
                    "id": alert_id,
                    "key": key,
                    "kind": kind,
                    "model": model,
                    "severity": severity,
                    "message": message,
                    "details": details,
                    "created_at": now,
                },
            )
            if not result.rowcount:
                return False
            rank = SEVERITIES.index(severity) if severity in SEVERITIES else 1
            for channel in s.scalars(sa.select(AlertChannelRow).where(AlertChannelRow.enabled)):
                kinds = channel.kinds.get("kinds")
                if kinds is not None and kind not in kinds:
                    continue
                if rank < SEVERITIES.index(channel.min_severity):
                    continue
                s.add(
                    AlertDeliveryRow(
                        id=new_id(),
                        alert_id=alert_id,
                        channel_id=channel.id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
            return True

    def list(
        self, model: str | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        q = sa.select(AlertRow).order_by(AlertRow.created_at.desc()).limit(limit)
        if model is not None:
            q = q.where(AlertRow.model == model)
        if kind is not None:
            q = q.where(AlertRow.kind == kind)
        with self.db.read() as s:
            alerts = [_alert(r) for r in s.scalars(q)]
            ids = [a["id"] for a in alerts]
            deliveries = s.scalars(
                sa.select(AlertDeliveryRow).where(AlertDeliveryRow.alert_id.in_(ids))
            ).all()
        by_alert: dict[str, builtins.list[dict[str, Any]]] = {}
        for d in deliveries:
            by_alert.setdefault(d.alert_id, []).append(_delivery(d))
        for a in alerts:
            a["deliveries"] = by_alert.get(a["id"], [])
        return alerts

    def get(self, alert_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise NotFound("alert", alert_id)
            return _alert(row)

    # -- channels ---------------------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        kind: str,
        url: str | None,
        kinds: builtins.list[str] | None,
        min_severity: str,
    ) -> dict[str, Any]:
        row = AlertChannelRow(
            id=new_id(),
            name=name,
            kind=kind,
            url=url,
            kinds={"kinds": kinds},
            min_severity=min_severity,
            enabled=True,
            created_at=utcnow(),
        )
        with self.db.write() as s:
            if s.scalar(sa.select(AlertChannelRow.id).where(AlertChannelRow.name == name)):
                raise Conflict(f"alert channel {name!r} exists; delete it first")
            s.add(row)
            s.flush()
            return _channel(row)

    def channels(self) -> builtins.list[dict[str, Any]]:
        with self.db.read() as s:
            rows = s.scalars(sa.select(AlertChannelRow).order_by(AlertChannelRow.created_at))
            return [_channel(r) for r in rows]

    def channel(self, channel_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = s.get(AlertChannelRow, channel_id)
            if row is None:
                raise NotFound("alert channel", channel_id)
            return _channel(row)

    def delete_channel(self, channel_id: str) -> None:
        with self.db.write() as s:
            row = s.get(AlertChannelRow, channel_id)
            if row is None:
                raise NotFound("alert channel", channel_id)
            s.delete(row)
            s.execute(
                sa.delete(AlertDeliveryRow).where(
                    AlertDeliveryRow.channel_id == channel_id,
                    AlertDeliveryRow.status == "pending",
                )
            )

    # -- deliveries -------------------------------------------------------------------------

    def due(self, now: datetime, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """Pending deliveries whose time has come, with their alert and channel."""
        q = (
            sa.select(AlertDeliveryRow, AlertRow, AlertChannelRow)
            .join(AlertRow, AlertRow.id == AlertDeliveryRow.alert_id)
            .join(AlertChannelRow, AlertChannelRow.id == AlertDeliveryRow.channel_id)
            .where(AlertDeliveryRow.status == "pending", AlertDeliveryRow.next_attempt_at <= now)
            .order_by(AlertDeliveryRow.next_attempt_at)
            .limit(limit)
        )
        with self.db.read() as s:
            return [
                {"delivery": _delivery(d), "alert": _alert(a), "channel": _channel(c)}
                for d, a, c in s.execute(q)
            ]

    def record_attempt(
        self, delivery_id: str, *, ok: bool, error: str | None, retry_in: timedelta | None
    ) -> dict[str, Any]:
        """Delivered; or failed now and retried after ``retry_in``; or (None) failed for good."""
        now = utcnow()
        with self.db.write() as s:
            row = s.get(AlertDeliveryRow, delivery_id)
            if row is None:
                raise NotFound("alert delivery", delivery_id)
            row.attempts += 1
            if ok:
                row.status, row.delivered_at, row.last_error = "delivered", now, None
            else:
                row.last_error = (error or "")[:2000]
                if retry_in is None:
                    row.status = "failed"
                else:
                    row.next_attempt_at = now + retry_in
            s.flush()
            return _delivery(row)

    def deliveries(
        self, status: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        q = sa.select(AlertDeliveryRow).order_by(AlertDeliveryRow.next_attempt_at.desc())
        if status is not None:
            q = q.where(AlertDeliveryRow.status == status)
        with self.db.read() as s:
            return [_delivery(r) for r in s.scalars(q.limit(limit))]
