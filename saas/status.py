"""What the dispatcher and the queues are doing right now: for `flask --app wsgi status` and operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from redis import Redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from saas import dispatcher
from saas.cli import QUEUES
from tenants.scoping import system_session

TARGETS_SQL = sa.text("""
SELECT count(*) FILTER (WHERE state = 'scheduled' AND due_at <= now())                      AS due,
       count(*) FILTER (WHERE state = 'scheduled' AND due_at > now())                       AS waiting,
       count(*) FILTER (WHERE state IN ('queued', 'publishing'))                            AS in_flight,
       count(*) FILTER (WHERE state IN ('queued', 'publishing') AND claimed_until < now())  AS expired_leases,
       count(*) FILTER (WHERE state = 'unconfirmed')                                        AS unconfirmed,
       min(claimed_until) FILTER (WHERE state IN ('queued', 'publishing'))                  AS next_lease_end
FROM post_targets
""")
WEBHOOKS_SQL = sa.text("""
SELECT count(*) FILTER (WHERE state = 'pending' AND next_attempt_at <= now())                 AS due,
       count(*) FILTER (WHERE state = 'pending' AND attempt_count > 0)                        AS retrying,
       count(*) FILTER (WHERE state = 'delivering')                                           AS in_flight,
       count(*) FILTER (WHERE state = 'delivering' AND claimed_until < now())                 AS expired_leases,
       count(*) FILTER (WHERE state = 'failed')                                               AS gave_up,
       (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled)                             AS endpoints_off,
       (SELECT count(*) FROM webhook_endpoints WHERE enabled AND failing_since IS NOT NULL)  AS endpoints_failing
FROM webhook_deliveries
""")


def snapshot(connection: Redis) -> dict[str, Any]:
    """Counts from PostgreSQL (the truth about what is due) and RQ (what is carried), as plain JSON values."""
    with system_session() as session:  # counts across every workspace, read-only
        targets = dict(session.execute(TARGETS_SQL).mappings().one())
        webhooks = dict(session.execute(WEBHOOKS_SQL).mappings().one())
    tick = dispatcher.last_tick(connection)
    queues = {}
    for name in QUEUES:
        queue = Queue(name, connection=connection, serializer=JSONSerializer)
        queues[name] = {
            "queued": queue.count,
            "started": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "failed": FailedJobRegistry(queue=queue).count,
        }
    workers = [
        {"name": w.name, "state": str(w.get_state()), "queues": w.queue_names(), "current_job": w.get_current_job_id()}
        for w in Worker.all(connection=connection)
    ]
    lease_end = targets.pop("next_lease_end")
    return {
        "at": datetime.now(UTC).isoformat(),
        "dispatcher": {
            "last_tick": tick.isoformat() if tick else None,
            "seconds_since_tick": round((datetime.now(UTC) - tick).total_seconds(), 1) if tick else None,
        },
        "targets": {**targets, "next_lease_end": lease_end.isoformat() if lease_end else None},
        "webhook_deliveries": webhooks,
        "queues": queues,
        "workers": workers,
    }
