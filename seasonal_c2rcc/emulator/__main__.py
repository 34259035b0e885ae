"""``python -m seasonal_c2rcc.emulator``: run the WEkEO emulator until SIGTERM/SIGINT.

Prints exactly one line, ``listening on http://HOST:PORT``, once the port is bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .faults import FaultConfig
from .products import DEFAULT_PRODUCT_EXTENT, PRODUCT_PAYLOADS, parse_extent
from .server import EmulatorServer


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _extent(text: str) -> tuple[float, float, float, float]:
    try:
        return parse_extent(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The CLI parser: server options plus one ``--<fault-field>`` flag per FaultConfig field."""
    p = argparse.ArgumentParser(
        prog="python -m seasonal_c2rcc.emulator",
        description="Local WEkEO HDA + EOCanvas emulator (see docs/emulator.md).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-output-pixels", type=int, default=4_000_000)
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--product-payload", choices=PRODUCT_PAYLOADS, default="safe",
                   help="HDA downloads serve real SAFE zips (safe) or metadata-only stubs (stub)")
    p.add_argument("--product-extent", type=_extent, default=DEFAULT_PRODUCT_EXTENT,
                   metavar="X0,Y0,X1,Y1",
                   help="window of the served SAFE zips, metres east and south of the tile's "
                        "upper-left corner, multiples of 60 (default: the demo grid, "
                        + ",".join(f"{v:g}" for v in DEFAULT_PRODUCT_EXTENT) + ")")
    p.add_argument("--c2rcc-nets", type=Path, default=None,
                   help="SNAP's C2RCC-MSI nets: job results are then computed by the native "
                        "C2RCC on the served SAFE products instead of synthetic fields")
    p.add_argument("--tls", action="store_true",
                   help="serve https with a self-signed certificate made at start "
                        "(STATE_DIR/tls/cert.pem; clients trust it with REQUESTS_CA_BUNDLE)")
    defaults = FaultConfig()
    for f in dataclasses.fields(FaultConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.name == "token_lifetime":
            kind: Any = float
        elif isinstance(default, bool):
            kind = _bool
        else:
            kind = type(default)
        p.add_argument(flag, dest=f.name, type=kind, default=None,
                       help=f"fault/behaviour setting (default {default!r})")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(FaultConfig)
        if getattr(args, f.name) is not None
    }
    try:
        faults = FaultConfig().updated(changes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = EmulatorServer(state_dir=args.state_dir, host=args.host, port=args.port,
                            faults=faults, seed=args.seed,
                            max_output_pixels=args.max_output_pixels, tls=args.tls,
                            product_payload=args.product_payload,
                            product_extent=args.product_extent,
                            native_nets=args.c2rcc_nets)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
