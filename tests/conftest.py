"""Shared pytest fixtures for the whole project.

``emulator`` starts the local WEkEO emulator (HDA + EOCanvas) on a free port with fast job timing;
``emulator_factory`` starts one with custom settings; ``hda_client`` and ``eocanvas_api`` give the
unmodified official clients pointed at an emulator, with their sleeps shortened.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seasonal_c2rcc.emulator import EmulatorServer, FaultConfig

#: Job timing used by the default fixture: fast enough for tests, slow enough to see "running".
FAST_FAULTS = {"accept_delay": 0.1, "job_duration": 0.4}


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators: ``emulator_factory(faults=FaultConfig(...), seed=1, state_dir=...)``."""
    started: list[EmulatorServer] = []

    def make(**kwargs: Any) -> EmulatorServer:
        kwargs.setdefault("state_dir", tmp_path / f"emu{len(started)}")
        kwargs.setdefault("faults", FaultConfig(**FAST_FAULTS))
        kwargs.setdefault("port", 0)
        emu = EmulatorServer(**kwargs).start()
        started.append(emu)
        return emu

    yield make
    for emu in reversed(started):
        emu.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A running emulator with default (healthy, quota-on) settings and fast jobs."""
    return emulator_factory()


def _fast_time(max_sleep: float) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module whose sleep() is capped (clients sleep 1-120 s)."""
    return types.SimpleNamespace(
        time=time.time, sleep=lambda s: time.sleep(min(float(s), max_sleep)),
        monotonic=time.monotonic, perf_counter=time.perf_counter,
    )


@pytest.fixture
def hda_client_factory(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Build unmodified ``hda.Client`` objects for an emulator (sleeps capped at 20 ms)."""
    import hda.api

    monkeypatch.setattr(hda.api, "time", _fast_time(0.02))

    def make(emu: EmulatorServer, user: str = "tester", password: str = "secret",
             **client_kwargs: Any) -> Any:
        cfg = hda.api.Configuration(url=emu.hda_url, user=user, password=password)
        client_kwargs.setdefault("progress", False)
        client_kwargs.setdefault("timeout", 30)
        client_kwargs.setdefault("retry_max", 3)
        client_kwargs.setdefault("sleep_max", 1)
        return hda.api.Client(config=cfg, **client_kwargs)

    return make


@pytest.fixture
def hda_client(emulator: EmulatorServer, hda_client_factory: Callable[..., Any]) -> Any:
    """An ``hda.Client`` logged in to the default emulator."""
    return hda_client_factory(emulator)


@pytest.fixture
def eocanvas_api_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Build the eocanvas ``API`` singleton for an emulator (reset before and after)."""
    import eocanvas.api
    from eocanvas.utils import Singleton

    monkeypatch.setattr(eocanvas.api, "time", _fast_time(0.05))
    Singleton._instances.clear()

    def make(emu: EmulatorServer, user: str = "tester", password: str = "secret") -> Any:
        from eocanvas import API, Credentials
        from eocanvas.config import URLs

        Singleton._instances.clear()
        urls = URLs()
        urls.base_url = emu.eocanvas_url
        urls.token_url = emu.token_url
        return API(urls=urls, credentials=Credentials(user, password))

    yield make
    Singleton._instances.clear()


@pytest.fixture
def eocanvas_api(emulator: EmulatorServer, eocanvas_api_factory: Callable[..., Any]) -> Any:
    """The eocanvas ``API`` pointed at the default emulator."""
    return eocanvas_api_factory(emulator)
