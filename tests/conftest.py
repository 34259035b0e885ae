"""Shared pytest fixtures for the whole project.

``emulator`` starts the local WEkEO emulator (HDA + EOCanvas) on a free port with fast job timing;
``emulator_factory`` starts one with custom settings; ``hda_client`` and ``eocanvas_api`` give the
unmodified official clients pointed at an emulator, with their sleeps shortened.

``nets_dir`` and ``snap_test_product`` locate SNAP's C2RCC-MSI nets and its test product
``S2Ref_Product.zip`` (GPL-3.0 SNAP material, never copied into this repository): in the shared data
folder next to the checkout (``<repo>/../shared/data``), where ``SEASONAL_C2RCC_NETS`` and
``SEASONAL_C2RCC_SNAP_TEST`` point, or where ``seasonal-c2rcc fetch-data`` puts them by default. Where they are
absent the tests that need them are skipped with the reason; with
``SEASONAL_C2RCC_REQUIRE_SNAP_DATA=1`` (CI) they fail instead, so CI always runs them.
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seasonal_c2rcc.emulator import EmulatorServer, FaultConfig

#: The shared data folder next to the checkout (only some machines have it).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_SNAP_DATA = "SEASONAL_C2RCC_REQUIRE_SNAP_DATA"


def _snap_data(path: Path, what: str, env: str) -> Path:
    if path.exists():
        return path
    msg = (
        f"{what} not found at {path}: put SNAP's data there or set ${env} "
        "(`seasonal-c2rcc fetch-data`, docs/c2rcc.md 'Getting the nets')"
    )
    if os.environ.get(REQUIRE_SNAP_DATA) == "1":
        pytest.fail(f"{msg}; ${REQUIRE_SNAP_DATA}=1 requires it", pytrace=False)
    pytest.skip(msg)


def _shared_or_fetched(relative: str) -> Path:
    """``relative`` in the shared data folder, else where `seasonal-c2rcc fetch-data` puts it."""
    from seasonal_c2rcc.snap_data import default_dest

    shared = SHARED_DATA / relative
    fetched = default_dest() / relative
    return fetched if not shared.exists() and fetched.exists() else shared


def find_nets_dir() -> Path:
    """Where the tests look for the C2RCC-MSI nets (the ``msi`` folder)."""
    env = os.environ.get("SEASONAL_C2RCC_NETS")
    base = Path(env) if env else _shared_or_fetched("c2rcc-nets/msi")
    return base / "msi" if (base / "msi").is_dir() else base


def find_snap_test_product() -> Path:
    """Where the tests look for SNAP's S2Ref_Product.zip."""
    env = os.environ.get("SEASONAL_C2RCC_SNAP_TEST")
    return Path(env) if env else _shared_or_fetched("snap-test/S2Ref_Product.zip")


@pytest.fixture(scope="session")
def nets_dir() -> Path:
    """The folder holding std_s2_20160502/, ext_s2_elbetsm_20170320/, complex_20200321/."""
    return _snap_data(find_nets_dir(), "C2RCC-MSI nets", "SEASONAL_C2RCC_NETS")


@pytest.fixture(scope="session")
def snap_test_product() -> Path:
    """SNAP's real BEAM-DIMAP test subset S2Ref_Product.zip."""
    return _snap_data(find_snap_test_product(), "S2Ref_Product.zip", "SEASONAL_C2RCC_SNAP_TEST")


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
