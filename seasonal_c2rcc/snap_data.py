"""``seasonal-c2rcc fetch-data``: SNAP's C2RCC-MSI nets and test product, from their public source.

The native C2RCC-MSI (:mod:`seasonal_c2rcc.c2rcc`) needs SNAP's 30 neural-net files, and its tests
also need SNAP's test product ``S2Ref_Product.zip``. Both are GPL-3.0 material of ESA SNAP that this
project does not ship. They live in the public repository ``senbox-org/optical-toolbox``; every file
is fetched from one pinned commit and checked against a pinned SHA-256 before it gets its final
name, so a changed upstream file, a wrong mirror or a truncated transfer can never pass for the
real thing.

The folder written mirrors the layout the tests and :func:`seasonal_c2rcc.c2rcc.find_nets_dir`
understand::

    <dest>/c2rcc-nets/msi/<set>/<role>/<file>.net   -> $SEASONAL_C2RCC_NETS=<dest>/c2rcc-nets/msi
    <dest>/snap-test/S2Ref_Product.zip              -> $SEASONAL_C2RCC_SNAP_TEST=<that file>

Mirrors: ``$SEASONAL_C2RCC_DATA_URL`` (or ``--base-url``) replaces the upstream base URL; a mirror
serves the same repository-relative paths (``opttbx-c2rcc/src/...``). ``file://`` URLs work too.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from .atomic import atomic_path
from .errors import ConfigError, DownloadError

#: The public repository and commit every file is pinned to (SNAP 13 development line, 2026-07-02).
UPSTREAM_REPO: Final = "senbox-org/optical-toolbox"
UPSTREAM_COMMIT: Final = "92d5522312eff5366056a9d39f50018cba85d53e"
#: GitHub's raw-file host serves any path of the repository at that commit.
DEFAULT_BASE_URL: Final = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"
#: Environment variable that replaces :data:`DEFAULT_BASE_URL` (a mirror with the same paths).
BASE_URL_ENV: Final = "SEASONAL_C2RCC_DATA_URL"
#: Environment variables the code and the tests read (see ``tests/conftest.py``, ``c2rcc.nets``).
NETS_ENV: Final = "SEASONAL_C2RCC_NETS"
SNAP_TEST_ENV: Final = "SEASONAL_C2RCC_SNAP_TEST"

#: Local folder (under ``--dest``) -> folder of the upstream repository it is copied from.
_UPSTREAM_DIRS: Final[dict[str, str]] = {
    "c2rcc-nets/msi/": "opttbx-c2rcc/src/main/resources/auxdata/nets/msi/",
    "snap-test/": "opttbx-c2rcc/src/test/resources/auxdata/refProducts/",
}

#: Local path under ``--dest``, size in bytes and SHA-256 of every file. Computed from the reference
#: copies the project's CI tests against; each is byte-identical (same git blob) to the upstream
#: path of :data:`_UPSTREAM_DIRS` at :data:`UPSTREAM_COMMIT`.
_PINS: Final[tuple[tuple[str, int, str], ...]] = (
    ("c2rcc-nets/msi/complex_20200321/iop_rw/55x55x55_2775.5.net", 70277, "dccc0579167c09bb4c500b94fa278e65967b81a505131f0862b0e7d67ef8c837"),
    ("c2rcc-nets/msi/complex_20200321/iop_unciop/55x55x55_23294.6.net", 64748, "d63534db470cbc75dfe099606d2a831ae4f8898ecd701f9e4a22fe5e0696356e"),
    ("c2rcc-nets/msi/complex_20200321/iop_uncsumiop_unckd/55x55x55_23199.4.net", 64780, "f30897d4cb67ac6d487e6764691699f7a1c1e2aa4a4d85040f7962b386147ec2"),
    ("c2rcc-nets/msi/complex_20200321/rtosa_aann/55x7x55_51.2.net", 22641, "39db3c7e416ce7c8252068814e0584b1f0749d75a8a5e901053b8a40a8869e94"),
    ("c2rcc-nets/msi/complex_20200321/rtosa_rpath/55x55x55_1247.8.net", 73184, "3057d6486db156f353b705e868d45e1db3245ea68719f4634788a82ea5a8990d"),
    ("c2rcc-nets/msi/complex_20200321/rtosa_rw/99x99x99_9210.2.net", 211720, "da69cd747ff11c7b531f3e9f22aa6aab2f511667c4b46b06ec521931fc57b3fa"),
    ("c2rcc-nets/msi/complex_20200321/rtosa_trans/55x55x55_107567.4.net", 79325, "5228c685246b07ab9aee098c48430adaae8a2b6523b9ad90ba4ab5d0f730680a"),
    ("c2rcc-nets/msi/complex_20200321/rw_iop/39x39x39_1935.5.net", 38391, "5fbf5d45df6d0683e60dea08e13800c1443a3c02e4ec3096fb847a28e0272b06"),
    ("c2rcc-nets/msi/complex_20200321/rw_kd/55x55x55_315.5.net", 68396, "f43997d58b12f94b67ad92f7946e0c4fd488b88c00996b1f424e3af857189aeb"),
    ("c2rcc-nets/msi/complex_20200321/rw_rwnorm/27x7x27_28.0.net", 10283, "0c97ac6b8f7b7320dc63d9f62ccd504d1b1a808ca1abd86eaa217db36ef27d33"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/iop_rw/77x77x77_28.3.net", 129761, "a5596abdd171e77c0167f72cf2ce27efaafc7f629aa59239a4417d2a8b51b8aa"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/iop_unciop/17x77x37_11486.7.net", 44573, "7236b9ae5adc6d5d5ca786c009a2e7c436f01c83b36a4e6d0d2aa03e21c03a48"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/iop_uncsumiop_unckd/17x77x37_9113.1.net", 44383, "3a12fbbdb31364af893e62668ba1b7065557f2d79685f7ce30bc692b4aaf8830"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rtosa_aann/31x7x31_7.2.net", 13726, "882db7b0cd9cbadad0989bc3530670ca0e4be3599100c6308617692642e02fa0"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rtosa_rpath/37x37x37_175.7.net", 37313, "256a5ca27839b2c55084ff78c3cd2449f65a1fe70c431a0c9e88f46fd989860b"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rtosa_rw/77x77x77x77_10688.3.net", 188549, "6aaf93d43754d4488336811175c0c2fcccb61db26f907ade60d49fe5741b5844"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rtosa_trans/77x77x77_7809.2.net", 138894, "e4b947a33d7beca63a4522960524426d8fb7c1f8e21255ed62c05347c57cd75a"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rw_iop/77x77x77_785.6.net", 129353, "b2c1f88d214fb375e32b10659de16705c9b6d065df91fef1389308234b87ac5f"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rw_kd/77x77x77_61.6.net", 127285, "2620112cb7dd7afd314673433c2f05cffe3cb14e21c6b5921cf6c1b8c1d443ae"),
    ("c2rcc-nets/msi/ext_s2_elbetsm_20170320/rw_rwnorm/27x7x27_28.0.net", 10283, "0c97ac6b8f7b7320dc63d9f62ccd504d1b1a808ca1abd86eaa217db36ef27d33"),
    ("c2rcc-nets/msi/std_s2_20160502/iop_rw/17x97x47_125.5.net", 66475, "26de9a1da386e86ac68f270cfcf89cd727aec116a72455cf2794be6af7d60cbf"),
    ("c2rcc-nets/msi/std_s2_20160502/iop_unciop/17x77x37_11486.7.net", 44573, "7236b9ae5adc6d5d5ca786c009a2e7c436f01c83b36a4e6d0d2aa03e21c03a48"),
    ("c2rcc-nets/msi/std_s2_20160502/iop_uncsumiop_unckd/17x77x37_9113.1.net", 44383, "3a12fbbdb31364af893e62668ba1b7065557f2d79685f7ce30bc692b4aaf8830"),
    ("c2rcc-nets/msi/std_s2_20160502/rtosa_aann/31x7x31_78.0.net", 13778, "5da8bc155e50305cd11da1690194923540100323e8a2c80a413f2d2969eedc30"),
    ("c2rcc-nets/msi/std_s2_20160502/rtosa_rpath/31x77x57x37_1564.4.net", 95715, "69abcb234efd086cfcd527f2ff8e9dc137692f8cec2d05b07e495dfb1b57bd93"),
    ("c2rcc-nets/msi/std_s2_20160502/rtosa_rw/33x73x53x33_291140.4.net", 86936, "750c22b6064162b5c3caa256f793811841cc3fbfffc286856c13010c9732c81b"),
    ("c2rcc-nets/msi/std_s2_20160502/rtosa_trans/31x77x57x37_37537.6.net", 98780, "5a2ad6e96960e0c1a151c61053ed2c192ed090da3cffa58f2bd315c5bae908f7"),
    ("c2rcc-nets/msi/std_s2_20160502/rw_iop/97x77x37_17515.9.net", 113307, "c2b750634de790348b2fff3632b6d3a0b50a1060df8ecb555154932e3114190f"),
    ("c2rcc-nets/msi/std_s2_20160502/rw_kd/97x77x7_306.8.net", 89471, "561f41504632cec4e5da8d57c4d2bf4819f5f1f3d04cf5b77b9514c894d34a4c"),
    ("c2rcc-nets/msi/std_s2_20160502/rw_rwnorm/27x7x27_28.0.net", 10283, "0c97ac6b8f7b7320dc63d9f62ccd504d1b1a808ca1abd86eaa217db36ef27d33"),
    ("snap-test/S2Ref_Product.zip", 1155876, "3208137206014e24c50f446bc0ef00d9ef417297b01d418caca069002d447b98"),
)  # fmt: skip

#: Local names of the two things users point the code at.
NETS_SUBDIR: Final = "c2rcc-nets/msi"
TEST_PRODUCT: Final = "snap-test/S2Ref_Product.zip"


@dataclass(frozen=True)
class DataFile:
    """One pinned file: where it goes under ``--dest``, where it is upstream, size and SHA-256."""

    local: str
    size: int
    sha256: str

    @property
    def upstream(self) -> str:
        """Its path in :data:`UPSTREAM_REPO` at :data:`UPSTREAM_COMMIT`."""
        for local_dir, upstream_dir in _UPSTREAM_DIRS.items():
            if self.local.startswith(local_dir):
                return upstream_dir + self.local.removeprefix(local_dir)
        raise AssertionError(f"no upstream folder for {self.local}")  # the table above is closed


FILES: Final[tuple[DataFile, ...]] = tuple(DataFile(*pin) for pin in _PINS)


def default_dest() -> Path:
    """``$XDG_DATA_HOME/seasonal-c2rcc/snap-data`` (``~/.local/share/...`` without the variable)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "seasonal-c2rcc" / "snap-data"


def base_url(override: str | None = None) -> str:
    """The base URL to fetch from: ``override``, else ``$SEASONAL_C2RCC_DATA_URL``, else upstream.

    Always ends with ``/``. Raises :class:`ConfigError` for anything but http(s):// or file://.
    """
    url = override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        source = (
            "--base-url"
            if override
            else (f"${BASE_URL_ENV}" if os.environ.get(BASE_URL_ENV) else "default")
        )
        raise ConfigError(
            f"SNAP data base URL {url!r} ({source}) must start with https://, http:// or file://; "
            f"unset {BASE_URL_ENV} to use {DEFAULT_BASE_URL}"
        )
    return url if url.endswith("/") else url + "/"


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, tmp: Path, item: DataFile, timeout: float) -> str:
    """Stream ``url`` into ``tmp``; return the SHA-256 of what arrived."""
    digest = hashlib.sha256()
    got = 0
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as resp,
            open(tmp, "wb") as fh,
        ):  # scheme checked in base_url
            for block in iter(lambda: resp.read(1 << 16), b""):
                fh.write(block)
                digest.update(block)
                got += len(block)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(f"{url}: transfer failed after {got} bytes: {reason}") from exc
    if got != item.size:
        raise DownloadError(f"{url}: got {got} bytes, expected {item.size}")
    return digest.hexdigest()


def fetch(
    dest: Path,
    url: str | None = None,
    *,
    timeout: float = 60.0,
    out: TextIO | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Fetch every pinned file into ``dest``; return the verified paths.

    A file already present with the pinned SHA-256 is kept as it is (re-running resumes). Each
    download goes to a temporary name next to its destination, is checked for size and SHA-256,
    and only then renamed; on any failure nothing is left under the final name and the files
    verified so far stay. Raises :class:`DownloadError` naming the file, the URL and the fix.
    """
    base = base_url(url)
    say = progress or (lambda line: print(line, file=out or sys.stdout, flush=True))
    dest = Path(dest)
    done: list[Path] = []
    width = len(str(len(FILES)))
    for i, item in enumerate(FILES, 1):
        final = dest / item.local
        tag = f"[{i:>{width}}/{len(FILES)}] {item.local}"
        if final.is_file():
            if sha256_of(final) == item.sha256:
                say(f"{tag}: already there, checksum verified")
                done.append(final)
                continue
            say(f"{tag}: present but its checksum differs from the pin; fetching it again")
        src = base + item.upstream
        try:
            with atomic_path(final) as tmp:
                got = _download(src, tmp, item, timeout)
                if got != item.sha256:
                    raise DownloadError(
                        f"{src}: SHA-256 {got} does not match the pinned {item.sha256} "
                        f"({UPSTREAM_REPO}@{UPSTREAM_COMMIT[:8]}:{item.upstream})"
                    )
        except DownloadError as exc:
            raise DownloadError(
                f"{item.local}: {exc}. Nothing was written to {final}; the {len(done)} files "
                f"verified so far are kept. Check the source ({BASE_URL_ENV}, default "
                f"{DEFAULT_BASE_URL}) and re-run `seasonal-c2rcc fetch-data --dest {dest}` to resume"
            ) from exc
        say(f"{tag}: {item.size / 1024:.0f} KiB, checksum verified")
        done.append(final)
    return done


def env_exports(dest: Path) -> dict[str, str]:
    """The environment variables that point the code and the tests at a fetched ``dest``."""
    dest = Path(dest).resolve()
    return {NETS_ENV: str(dest / NETS_SUBDIR), SNAP_TEST_ENV: str(dest / TEST_PRODUCT)}
