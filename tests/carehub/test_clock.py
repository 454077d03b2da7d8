"""`clock.replay`: services read a replayed time inside the block, the real one outside."""

from datetime import UTC, datetime, timedelta

import pytest

from carehub.core import clock


def test_replay_moves_and_ends() -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    before = clock.now()
    with clock.replay(start) as replayed:
        assert clock.now() == start
        replayed.move_to(start + timedelta(days=3))
        assert clock.now() == start + timedelta(days=3)
    assert clock.now() - before < timedelta(minutes=5)


def test_a_replay_moment_must_be_aware() -> None:
    naive = datetime(2026, 3, 1, 9, 0).replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"), clock.replay(naive):
        pass
