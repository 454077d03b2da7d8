"""A web process prepares what every first request would otherwise pay for (the URL conf, the
pathway definitions, the diagram layouts, the templates) when gunicorn has loaded it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from carehub.pathways.registry import registry
from carehub.web import diagram, warmup


def test_warm_up_lays_out_every_published_track(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagram, "_LAYOUTS", {})
    warmup.warm_up()
    expected = {(d.ref, track) for d in registry() for track in d.tracks}
    assert set(diagram._LAYOUTS) == expected
    assert all(layout is not None for layout in diagram._LAYOUTS.values())


def test_gunicorn_warms_each_worker_up_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[bool] = []
    monkeypatch.setattr(warmup, "warm_up", lambda: called.append(True))
    monkeypatch.setattr("gc.freeze", lambda: None)  # not in the test process
    conf = runpy.run_path(str(Path(__file__).parents[2] / "config" / "gunicorn.conf.py"))
    conf["post_worker_init"](object())
    assert called == [True]
