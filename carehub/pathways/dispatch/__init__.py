"""The dispatch of pathway events behind one store (ADR 0030).

- `store.py`: `PathwayStore` (`store`): the one way to lock an enrolment, read its snapshot and
  write a decision or a lifecycle step; takes and returns the engine's values (`workflows`) and
  does its own encoding.
- `service.py`: `pathway_dispatch` and the scheduler's `dispatch_in_transaction`: one event to
  one enrolment, exactly once per idempotency key, in three statements.
- `sql.py`: those three statements, written by hand (names from the models' metadata).
- `codec.py`: JSON <-> engine values (configurations, explanations, snapshots).
- `cursor.py`: the one function that reaches into Django's and psycopg's internals (prepared
  statements bound on the server).

Nothing here is imported by this `__init__`: import the module you need.
"""
