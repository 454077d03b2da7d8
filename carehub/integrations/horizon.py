"""The feed's horizon: the lowest transaction id that may still commit a change event.

A change event carries the id of the transaction that wrote it (`ChangeEvent.txid`). Readers
(the pull feed, the webhook sender) take only events below the horizon, ordered by (txid, id):
every transaction that could still add an event below it has finished, so a reader that moved
past an event never misses one that commits later.

The horizon is the snapshot's oldest running transaction id, ignoring transactions positively
known to run in another database of the same server (a long transaction of another
application, or of a parallel test run, does not hold carehub's feed back); a transaction that
ends while the horizon is computed counts as ours, which can only lower it. With nothing running
it is the snapshot's next transaction id. A long-running writing transaction in carehub's own
database holds the feed back until it ends (`idle_in_transaction_session_timeout` bounds a
forgotten one).
"""

from __future__ import annotations

HORIZON_SQL = """(
  WITH snap AS (SELECT pg_current_snapshot() AS s),
  elsewhere AS (
    SELECT l.transactionid::text::bigint AS xid32
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
      AND a.datname IS DISTINCT FROM current_database()
  )
  SELECT coalesce(
    (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
     WHERE mod(x::text::bigint, 4294967296) NOT IN (SELECT xid32 FROM elsewhere)),
    (SELECT pg_snapshot_xmax(snap.s)::text::bigint FROM snap))
)"""
