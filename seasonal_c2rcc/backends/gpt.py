"""Run SNAP's ``gpt`` locally on one downloaded L1C product: the ``gpt`` backend's processor.

:func:`run_gpt` runs the project's filled graph (``$polygon`` already replaced by
:func:`seasonal_c2rcc.graph.fill_graph`) the way EOCanvas does, with gpt's own template parameters
``-Pimg1=<product> -Poutput=<file>``, plus ``-q`` (threads), ``-c`` (tile cache) and ``-J-Xmx``
(Java heap) from the ``gpt`` config section. gpt's whole output is kept in ``log_path``; the result
is written under a temporary name next to ``output_path`` and renamed only after
:func:`seasonal_c2rcc.verify.verify_c2rcc_netcdf` accepted it, so ``output_path`` is either absent
or a verified C2RCC product. Any failure removes what gpt left (``.nc``; ``.dim`` + ``.data`` for
DIMAP) and raises one of:

========================================  ======================================================
failure (gpt's log)                       error
========================================  ======================================================
gpt not found / not executable            :class:`ConfigError` (before anything runs)
unknown parameter / operator / option     :class:`ConfigError` (the graph or settings are wrong)
empty subset, "No intersection"           :class:`NotCoveredError` (permanent for this product
                                          and region: the product has no data there)
Java heap space / OutOfMemoryError        :class:`ResourceError` (raise ``gpt.max_heap`` or lower
                                          ``gpt.threads`` / ``gpt.tile_cache``)
killed by a signal, time-out              :class:`TransientBackendError` (worth another attempt)
any other non-zero exit                   :class:`JobFailedError` with the last log lines
exit 0, result missing or not C2RCC       :class:`OutputError`
the product file is missing               :class:`DownloadError` (before gpt runs)
========================================  ======================================================

Every message is one line naming the product, what to do, and the log path.
:func:`check_gpt` is the preflight: it finds gpt and asks it for its version (``gpt --diag``) so a
missing or broken SNAP install is a config error before any product is downloaded.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import (
    ConfigError,
    DownloadError,
    JobFailedError,
    NotCoveredError,
    OutputError,
    ResourceError,
    TransientBackendError,
)
from ..graph import placeholders
from ..verify import verify_c2rcc_netcdf

#: gpt's -c / -J-Xmx size syntax (CommandLineArgs.parseOptionArgumentBytes: bytes, or K/M/G).
_SIZE_RE = re.compile(r"^[1-9][0-9]*[KMGkmg]?$")
_SIZE_FACTOR = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
#: Seconds gpt gets to exit after SIGTERM before the whole process group is SIGKILLed.
_TERM_GRACE_S = 10.0
#: Memory a JVM needs beyond its heap (metaspace, thread stacks, native buffers of the JP2 and
#: NetCDF libraries), added to ``gpt.max_heap`` for the job's declared memory.
JVM_OVERHEAD_MB = 1536
#: How many of gpt's last log lines a failure message quotes.
_TAIL_LINES = 8

# gpt's log text for each failure class. Sources (snap-engine): ceres DefaultDomConverter
# ("Unknown element"), NodeContext ("SPI not found for operator"), CommandLineArgs ("Unknown
# option"), SubsetOp ("No intersection with source product boundary", an empty "Empty_<name>"
# product that Write then refuses), the JVM (OutOfMemoryError; "Cannot construct DataBuffer" is
# JAI's heap failure).
_HEAP = re.compile(
    r"OutOfMemoryError|Java heap space|GC overhead limit exceeded|Cannot construct DataBuffer"
)
_UNKNOWN = re.compile(
    r"Unknown element '[^']*'|Unknown parameter[^\n]*|SPI not found for operator '[^']*'|"
    r"Unknown operator[^\n]*|Unknown option '[^']*'|Operator '[^']*' not found"
)
_EMPTY = re.compile(
    r"No intersection with source product boundary|product is empty|raster size 0 x 0|"
    r"Empty_\S+|[Ss]ubset region is empty"
)


@dataclass(frozen=True)
class GptSettings:
    """The validated ``gpt`` config section."""

    path: str
    threads: int | None
    tile_cache: str | None
    max_heap: str | None
    timeout: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> GptSettings:
        """Build from the validated ``gpt`` section; check the sizes fit together."""
        s = cls(
            path=str(section["path"]),
            threads=None if section["threads"] is None else int(section["threads"]),
            tile_cache=None if section["tile_cache"] is None else str(section["tile_cache"]),
            max_heap=None if section["max_heap"] is None else str(section["max_heap"]),
            timeout=float(section["timeout"]),
        )
        _check_settings(s.threads, s.tile_cache, s.max_heap, s.timeout)
        return s

    @property
    def job_mem_mb(self) -> int | None:
        """Memory (MB) a processing job running this gpt should declare: the Java heap plus
        :data:`JVM_OVERHEAD_MB` (None when the heap is left to gpt.vmoptions)."""
        if self.max_heap is None:
            return None
        return _size_bytes(self.max_heap) // 1024**2 + JVM_OVERHEAD_MB

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`run_gpt`."""
        return {
            "gpt": self.path,
            "threads": self.threads,
            "tile_cache": self.tile_cache,
            "max_heap": self.max_heap,
            "timeout": self.timeout,
        }


def _size_bytes(text: str) -> int:
    unit = text[-1].upper() if text[-1].isalpha() else ""
    return int(text[: len(text) - len(unit)]) * _SIZE_FACTOR[unit]


def _check_settings(
    threads: int | None, tile_cache: str | None, max_heap: str | None, timeout: float
) -> None:
    if threads is not None and threads < 1:
        raise ConfigError(f"gpt.threads is {threads}; use 1 or more (gpt -q), or null")
    for key, value in (("tile_cache", tile_cache), ("max_heap", max_heap)):
        if value is not None and not _SIZE_RE.match(value):
            raise ConfigError(
                f"gpt.{key} is {value!r}; use a size such as 2048M or 4G (bytes, or K/M/G), or null"
            )
    if tile_cache and max_heap and _size_bytes(tile_cache) >= _size_bytes(max_heap):
        raise ConfigError(
            f"gpt.tile_cache ({tile_cache}) must be smaller than gpt.max_heap ({max_heap}); SNAP "
            "needs heap beyond its tile cache (about 70 % of the heap is usual)"
        )
    if timeout <= 0:
        raise ConfigError(f"gpt.timeout is {timeout}; use a positive number of seconds")


def find_gpt(gpt: str = "gpt") -> Path:
    """The gpt executable: ``gpt`` itself if it is a path, else looked up on ``PATH``, else
    ``$SNAP_HOME/bin/gpt``. Raise :class:`ConfigError` saying how to point at SNAP."""
    candidate = Path(os.path.expanduser(gpt))
    if os.sep in gpt or candidate.is_absolute():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        why = "does not exist" if not candidate.exists() else "is not an executable file"
        raise ConfigError(
            f"gpt not found: gpt.path {gpt!r} {why}; set gpt.path to SNAP's bin/gpt "
            "(e.g. ~/esa-snap/bin/gpt)"
        )
    found = shutil.which(gpt)
    if found:
        return Path(found)
    snap_home = os.environ.get("SNAP_HOME")
    if snap_home:
        in_home = Path(snap_home) / "bin" / gpt
        if in_home.is_file() and os.access(in_home, os.X_OK):
            return in_home
    raise ConfigError(
        f"gpt not found: {gpt!r} is not on PATH"
        + (f" nor in $SNAP_HOME/bin ({snap_home})" if snap_home else " and $SNAP_HOME is not set")
        + "; install ESA SNAP and set gpt.path to its bin/gpt, or use backend: native"
    )


def check_gpt(gpt: str = "gpt", *, timeout: float = 120.0) -> str:
    """Preflight before any download: find gpt and return its version (``gpt --diag``).

    Raises :class:`ConfigError` when gpt is missing, does not start, or does not answer within
    ``timeout`` seconds (a JVM start takes a few seconds; a broken install hangs or fails)."""
    exe = find_gpt(gpt)
    try:
        proc = subprocess.run(
            [str(exe), "--diag"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"gpt at {exe} did not answer `gpt --diag` within {timeout:.0f} s; check the SNAP "
            "install (run `gpt --diag` by hand)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"gpt at {exe} cannot be started: {exc}") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise ConfigError(
            f"gpt at {exe} failed `gpt --diag` (exit {proc.returncode}): {tail or 'no output'}"
        )
    m = re.search(r"SNAP Release version\s+(\S+)", out)
    if not m:
        raise ConfigError(
            f"{exe} answered `--diag` without 'SNAP Release version': is it SNAP's gpt? "
            "(GNU parted also installs a `gpt`-like name on some systems)"
        )
    return m.group(1)


def _partials(tmp: Path) -> list[Path]:
    """What gpt may have written for the target ``tmp`` (``.<name>.<pid>.tmp.nc``): the file,
    the file with an extension SNAP appended, DIMAP's ``.dim`` + ``.data``: every sibling whose
    name starts like ``tmp``'s (the pid makes that prefix this run's own)."""
    prefix = tmp.name[: -len(tmp.suffix)] if tmp.suffix else tmp.name
    return sorted(tmp.parent.glob(glob.escape(prefix) + "*"))


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _remove_stale(output_path: Path) -> None:
    """Temporaries of an earlier run killed with SIGKILL (only one writer per output runs at a
    time: the workflow locks its outputs)."""
    stale = re.compile(rf"\.{re.escape(output_path.name)}\.\d+\.tmp.*")
    for p in output_path.parent.glob(f".{output_path.name}.*.tmp*"):
        if stale.fullmatch(p.name):
            _remove([p])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM gpt's process group (the launcher script, the JVM and anything they started),
    then SIGKILL what is left after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=_TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(text: str, n: int = _TAIL_LINES) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) if lines else "(gpt printed nothing)"


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(rc).name
    except ValueError:
        return f"signal {rc}"


def classify_failure(
    log_text: str, returncode: int | None, *, product: str, log_path: Path, timed_out: float | None
) -> Exception:
    """The error for a gpt run that did not produce a result (see the module's table).

    ``returncode`` is gpt's exit status (negative: killed by that signal; None: no exit seen);
    ``timed_out`` the time-out in seconds when run_gpt killed gpt for running too long."""
    where = f"log: {log_path}"
    if timed_out is not None:
        return TransientBackendError(
            f"gpt on {product} ran longer than gpt.timeout ({timed_out:.0f} s) and was killed; "
            f"retried on the next run; if it keeps timing out raise gpt.timeout or lower "
            f"pixel_budget ({where})"
        )
    heap = _HEAP.search(log_text)
    if heap:
        return ResourceError(
            f"gpt on {product} ran out of Java heap ({heap.group(0)}); raise gpt.max_heap or "
            f"lower gpt.threads / gpt.tile_cache, then re-run ({where})"
        )
    if returncode is not None and returncode < 0:
        return TransientBackendError(
            f"gpt on {product} was killed by {_signal_name(-returncode)} (the kernel's "
            f"out-of-memory killer, the batch scheduler or a user); retried on the next run "
            f"({where})"
        )
    unknown = _UNKNOWN.search(log_text)
    if unknown:
        return ConfigError(
            f"gpt refused the graph for {product}: {unknown.group(0)}; this SNAP does not know "
            f"that name: fix the graph (config `graph`) or gpt settings, or update SNAP ({where})"
        )
    empty = _EMPTY.search(log_text)
    if empty:
        return NotCoveredError(
            f"{product} has no data over the job's region ({empty.group(0)}): the sub-tiles are "
            f"not covered by this product; it is skipped for them ({where})"
        )
    return JobFailedError(
        f"gpt on {product} failed (exit {returncode}); last lines: {_tail(log_text)} ({where})",
        log_path=str(log_path),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_gpt(
    graph_text: str,
    product_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    log_path: str | os.PathLike[str],
    gpt: str = "gpt",
    threads: int | None = None,
    tile_cache: str | None = None,
    max_heap: str | None = None,
    timeout: float = 3600.0,
    report: Callable[[str], None] | None = None,
    progress_every: float = 60.0,
) -> Path:
    """Run gpt on one product and return ``output_path``, a verified C2RCC NetCDF.

    ``graph_text`` is a filled graph whose only placeholders are ``$img1`` (Read) and ``$output``
    (Write); gpt substitutes them from ``-Pimg1=product_path`` and ``-Poutput=<temporary name>``.
    ``output_path`` should end in ``.nc`` (the graph writes NetCDF4-BEAM). gpt's full output goes
    to ``log_path`` (overwritten; a header records the command and the graph). ``report`` gets a
    progress line every ``progress_every`` seconds while gpt runs. Raises the errors listed in the
    module docstring; on any failure no file is left at ``output_path`` or under a temporary name.
    """
    product_path, output_path, log_path = Path(product_path), Path(output_path), Path(log_path)
    product = product_path.name
    say = report or (lambda msg: None)
    _check_settings(threads, tile_cache, max_heap, timeout)
    left = placeholders(graph_text)
    if left != {"img1", "output"}:
        raise ConfigError(
            f"graph for {product}: gpt's graph must use exactly $img1 and $output as "
            f"placeholders ($polygon filled first); found {sorted('$' + p for p in left)}"
        )
    exe = find_gpt(gpt)
    if not product_path.exists():
        raise DownloadError(
            f"{product_path}: the downloaded product is missing; re-run the workflow to download "
            "it again"
        )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(output_path)

    with tempfile.TemporaryDirectory(prefix="seasonal-c2rcc-gpt-") as gdir:
        graph_file = Path(gdir) / "graph.xml"
        graph_file.write_text(graph_text)
        with atomic_path(output_path) as tmp, _sigterm_as_exit():
            try:
                _run(exe, graph_file, graph_text, product_path, tmp, log_path, threads,
                     tile_cache, max_heap, timeout, say, progress_every)  # fmt: skip
            except BaseException:
                _remove(_partials(tmp))
                raise
    return output_path


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While gpt runs, SIGTERM (Snakemake or a scheduler stopping the job) raises SystemExit,
    so gpt's process group is killed and partial outputs removed instead of gpt living on.
    Only the main thread can install signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(
    exe: Path,
    graph_file: Path,
    graph_text: str,
    product_path: Path,
    tmp: Path,
    log_path: Path,
    threads: int | None,
    tile_cache: str | None,
    max_heap: str | None,
    timeout: float,
    say: Callable[[str], None],
    progress_every: float,
) -> None:
    product = product_path.name
    cmd = [str(exe)]
    if max_heap:
        cmd.append(f"-J-Xmx{max_heap}")  # a JVM option for gpt's launcher (gpt.vmoptions)
    cmd.append(str(graph_file))
    if threads:
        cmd += ["-q", str(threads)]
    if tile_cache:
        cmd += ["-c", tile_cache]
    # -e: full stack traces in the log, which the failure classes below are read from.
    # absolute paths: a launcher that changes directory must still find them
    cmd += ["-e", f"-Pimg1={product_path.resolve()}", f"-Poutput={tmp.resolve()}"]

    header = (
        f"# {_now()} seasonal-c2rcc gpt backend: {product}\n# command: {' '.join(cmd)}\n"
        + "# graph:\n"
        + "".join(f"#   {ln}\n" for ln in graph_text.splitlines())
    ).encode()
    with open(log_path, "wb") as log:
        log.write(header)
        log.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        timed_out: float | None = None
        try:
            while True:
                elapsed = time.monotonic() - t0
                if elapsed >= timeout:
                    timed_out = timeout
                    _kill_group(proc)
                    break
                try:
                    proc.wait(timeout=min(progress_every, timeout - elapsed))
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() - t0 < timeout:
                        say(f"gpt on {product}: running for {time.monotonic() - t0:.0f} s "
                            f"(log {log_path})")  # fmt: skip
        except BaseException as exc:
            # Interrupted (Ctrl-C, the job stopped by Snakemake or SLURM): never leave gpt running.
            _kill_group(proc)
            log.write(
                f"\n# {_now()} interrupted ({type(exc).__name__}) after "
                f"{time.monotonic() - t0:.1f} s: gpt's process group killed, gpt exit status "
                f"{proc.returncode}\n".encode()
            )
            raise
        rc = proc.returncode
        log.flush()
        # gpt's own output, without our header, is what failures are classified and quoted from
        text = log_path.read_bytes()[len(header) :].decode(errors="replace")
        log.write(
            f"\n# {_now()} gpt exit status {rc} after {time.monotonic() - t0:.1f} s\n".encode()
        )

    if timed_out is not None or rc != 0:
        raise classify_failure(text, rc, product=product, log_path=log_path, timed_out=timed_out)
    if not tmp.exists():
        # Some writers append their extension even to a name that has one.
        appended = [p for p in _partials(tmp) if p != tmp and p.is_file() and p.suffix == ".nc"]
        if not appended:
            empty = _EMPTY.search(text)
            if empty:
                raise classify_failure(text, rc, product=product, log_path=log_path,
                                       timed_out=None)  # fmt: skip
            raise OutputError(
                f"gpt on {product} exited 0 but wrote no NetCDF result (is the Write node's "
                f"formatName NetCDF4-BEAM?) (log: {log_path})"
            )
        appended[0].rename(tmp)
    try:
        verify_c2rcc_netcdf(tmp)
    except OutputError as exc:
        if "empty grid" in str(exc) or _EMPTY.search(text):
            raise NotCoveredError(
                f"{product} has no data over the job's region (gpt wrote an empty product): the "
                f"sub-tiles are not covered by this product (log: {log_path})"
            ) from None
        raise OutputError(f"gpt on {product}: result rejected: {exc} (log: {log_path})") from None
    say(f"gpt on {product}: done in {time.monotonic() - t0:.0f} s -> verified result")
