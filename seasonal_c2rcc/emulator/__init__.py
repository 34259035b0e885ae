"""Local WEkEO emulator: HDA broker + EOCanvas (Serverless Functions) on one port.

``EmulatorServer`` runs it in-process (pytest fixture, benchmarks); ``python -m
seasonal_c2rcc.emulator`` runs it as a process. See ``docs/emulator.md``.
"""

from .faults import FaultConfig
from .server import EmulatorApp, EmulatorServer

__all__ = ["EmulatorApp", "EmulatorServer", "FaultConfig"]
