"""Run the real workflow (``python -m snakemake``) in a temporary directory against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_config(workdir: Path, emulator_url: str, **overrides: Any) -> Path:
    """The demo config pointed at ``emulator_url``, with fast polling and ``overrides`` applied."""
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    cfg["subtiles"] = str(ROOT / cfg["subtiles"])
    cfg["graph"] = str(ROOT / "graphs" / "s2_c2rcc.xml")
    cfg["wekeo"] = {
        "hda_url": f"{emulator_url}/hda-broker/",
        "eocanvas_url": f"{emulator_url}/serverless",
        "http_timeout": 20,
    }
    cfg["eocanvas"] = {"poll_interval": 0.2, "poll_max_interval": 0.5, "retry_backoff": 0.2}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "test-config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def env() -> dict[str, str]:
    """Environment for the workflow: emulator credentials, no user rc file."""
    e = dict(os.environ, HDA_USER="test-user", HDA_PASSWORD="test-password")
    e["HDA_RC"] = "/nonexistent/.hdarc"
    return e


def snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    """The command line, as a user would type it (default profile, our Snakefile)."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(config),
        "--workflow-profile", str(ROOT / "profiles" / "default"),
        *args,
    ]  # fmt: skip


def run(
    workdir: Path, config: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run snakemake to completion and return the finished process (output captured)."""
    return subprocess.run(
        snakemake_cmd(workdir, config, *args),
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(workdir: Path, config: Path, *args: str) -> subprocess.Popen:
    """Start snakemake in its own process group (so a test can SIGKILL the whole workflow)."""
    log = open(workdir / "snakemake-run.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        snakemake_cmd(workdir, config, *args),
        env=env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def composites(
    years: list[int], seasons: list[str], subtiles: tuple[str, ...] = ("0", "1")
) -> list[str]:
    """Composite targets of the demo grid: enough to drive every remote job, without the figures."""
    return [
        f"results/composites/30UUA/{y}/{s}/{sid}.nc"
        for y in years
        for s in seasons
        for sid in subtiles
    ]
