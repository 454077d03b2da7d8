"""The fault scenarios' code at tiny scale (ADR 0016): the private PostgreSQL cluster they stop
and restart, and the figures they read after a burst (no wall-clock limits asserted)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bench import faults, generate
from bench.scenarios import burst, fault_beats
from bench.servers import PrivatePostgres, PrivateRedis, port_base

pytestmark = pytest.mark.django_db


def test_a_private_postgres_cluster_stops_and_starts() -> None:
    # Ports of its own (base + 20, + 21): the scenarios use base to base + 3.
    cluster = PrivatePostgres(port_base() + 20).init()
    try:
        cluster.start()
        assert cluster.accepts()
        cluster.stop("fast")
        assert not cluster.accepts()
        cluster.start()
        assert cluster.accepts()
    finally:
        cluster.remove()
    assert not cluster.root.exists()
    redis = PrivateRedis(port_base() + 21)
    redis.start()
    redis.restart()
    redis.remove()


@pytest.mark.db_owner  # the generator bulk-loads (TRUNCATE), as `make bench` does as the owner
def test_the_figures_of_a_burst_delivered_once() -> None:
    from carehub.checkins.services import checkins_open_due
    from carehub.messaging.delivery import messages_dispatch_due, messages_send
    from carehub.messaging.models import Message

    generate.generate_clinic(patients=12, months=1, seed=5)
    patients = burst.prepare_patients(6)
    checkins = burst.insert_checkins(
        patients, first_due=datetime.now(UTC) - timedelta(seconds=5), spread=1
    )
    assert checkins_open_due() == 6
    keys = [f"checkin:{pk}:request" for pk in checkins]
    messages_dispatch_due()  # a second dispatcher finds nothing left to queue
    log = faults.FaultLog()
    in_flight = faults.in_flight_ids(checkins)
    assert sorted(in_flight) == sorted(
        Message.objects.filter(idempotency_key__in=keys).values_list("pk", flat=True)
    )
    log.fault("test fault", 0.0, in_flight)
    log.stranded["test fault"] = faults.in_flight_ids(checkins, ("sending",))
    origin = datetime.now(UTC) - timedelta(seconds=5)
    log.recovered("test fault", time.time() - origin.timestamp())
    messages_send(message_ids=in_flight)
    messages_send(message_ids=in_flight)  # a redelivered task changes nothing
    figures = burst.measure(checkins)
    once, text = faults.exactly_once_target(figures)
    assert once, text
    recovery = faults.recovery_figures(log, origin)
    assert recovery["test fault"]["in_flight"] == 6
    assert recovery["test fault"]["missing"] == 0
    assert recovery["test fault"]["picked_up_after_recovery_seconds"]["n"] == 6
    assert recovery["test fault"]["claimed_when_killed"]["messages"] == 0
    assert fault_beats._duplicates(checkins) == {
        "opened_twice": 0, "never_opened": 0, "queued_twice_by_dispatchers": 0,
        "claimed_for_sending_twice": 0,
    }  # fmt: skip
    assert set(faults.delivery_events_summary(checkins).values()) == {0}
