"""``seasonal-c2rcc fetch-data`` offline: a local HTTP mirror (and file://) built in tmp_path.

The real source (raw.githubusercontent.com) cannot be reached here; the mirrors serve the same
repository-relative paths, made from SNAP's reference copies (``nets_dir``/``snap_test_product``)
or from deliberately wrong bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seasonal_c2rcc import cli, snap_data
from seasonal_c2rcc.c2rcc.nets import NET_FILES, NET_SET_DIRS, load_nets


class _Mirror:
    """A folder served over HTTP on 127.0.0.1, counting the files it was asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror_factory(tmp_path: Path) -> Iterator[Callable[[Path], _Mirror]]:
    started: list[_Mirror] = []

    def make(root: Path) -> _Mirror:
        m = _Mirror(root)
        started.append(m)
        return m

    yield make
    for m in started:
        m.close()


@pytest.fixture
def snap_mirror_root(tmp_path: Path, nets_dir: Path, snap_test_product: Path) -> Path:
    """Upstream layout (``opttbx-c2rcc/src/...``) filled from SNAP's reference copies."""
    root = tmp_path / "mirror"
    for item in snap_data.FILES:
        if item.local.startswith(snap_data.NETS_SUBDIR + "/"):
            src = nets_dir / item.local.removeprefix(snap_data.NETS_SUBDIR + "/")
        else:
            src = snap_test_product
        target = root / item.upstream
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return root


def _leftovers(dest: Path) -> list[Path]:
    """Temporary files a download could leave behind (atomic_path names them .<name>.<pid>.tmp*)."""
    return [p for p in dest.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]


def test_manifest_covers_exactly_the_nets_the_code_loads() -> None:
    """Every net find_nets_dir/load_nets reads is pinned, plus the test product, nothing else."""
    wanted = {
        f"{snap_data.NETS_SUBDIR}/{NET_SET_DIRS[s]}/{role}/{name}"
        for s, roles in NET_FILES.items()
        for role, name in roles.items()
    } | {snap_data.TEST_PRODUCT}
    assert {f.local for f in snap_data.FILES} == wanted
    assert len(snap_data.FILES) == 31
    assert all(len(f.sha256) == 64 and f.size > 0 for f in snap_data.FILES)
    product = next(f for f in snap_data.FILES if f.local == snap_data.TEST_PRODUCT)
    assert product.upstream == (
        "opttbx-c2rcc/src/test/resources/auxdata/refProducts/S2Ref_Product.zip"
    )
    assert snap_data.DEFAULT_BASE_URL == (
        "https://raw.githubusercontent.com/senbox-org/optical-toolbox/"
        "92d5522312eff5366056a9d39f50018cba85d53e/"
    )


def test_pins_match_snap_reference_copies(nets_dir: Path, snap_test_product: Path) -> None:
    """The pinned sizes and SHA-256 are those of the reference copies the tests validate against."""
    for item in snap_data.FILES:
        if item.local == snap_data.TEST_PRODUCT:
            path = snap_test_product
        else:
            path = nets_dir / item.local.removeprefix(snap_data.NETS_SUBDIR + "/")
        assert path.stat().st_size == item.size, item.local
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256, item.local


def test_fetch_over_http_then_nets_load(
    tmp_path: Path,
    snap_mirror_root: Path,
    mirror_factory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mirror = mirror_factory(snap_mirror_root)
    monkeypatch.setenv(snap_data.BASE_URL_ENV, mirror.url)
    dest = tmp_path / "my data"
    assert cli.main(["fetch-data", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert len(mirror.requests) == 31
    for item in snap_data.FILES:
        assert hashlib.sha256((dest / item.local).read_bytes()).hexdigest() == item.sha256
    assert _leftovers(dest) == []
    # the command tells the user which variables to set, quoted for the shell
    nets = (dest / "c2rcc-nets" / "msi").resolve()
    product = (dest / "snap-test" / "S2Ref_Product.zip").resolve()
    assert f"export SEASONAL_C2RCC_NETS='{nets}'" in out
    assert f"export SEASONAL_C2RCC_SNAP_TEST='{product}'" in out
    assert "GPL-3.0" in out
    # what it fetched is usable as it is: all three net sets load from the printed folder
    monkeypatch.setenv("SEASONAL_C2RCC_NETS", str(nets))
    for net_set in NET_SET_DIRS:
        assert len(load_nets(net_set).nets) == 10

    # a second run downloads nothing: every file is already there and verified
    assert cli.main(["fetch-data", "--dest", str(dest)]) == 0
    assert len(mirror.requests) == 31
    assert capsys.readouterr().out.count("already there, checksum verified") == 31


def test_fetch_from_file_url_replaces_a_corrupt_local_copy(
    tmp_path: Path, snap_mirror_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    first = dest / snap_data.FILES[0].local
    first.parent.mkdir(parents=True)
    first.write_text("not a net")
    assert (
        cli.main(["fetch-data", "--dest", str(dest), "--base-url", snap_mirror_root.as_uri()]) == 0
    )
    assert "checksum differs from the pin; fetching it again" in capsys.readouterr().out
    assert hashlib.sha256(first.read_bytes()).hexdigest() == snap_data.FILES[0].sha256


def test_checksum_mismatch_leaves_nothing_under_the_final_name(
    tmp_path: Path,
    mirror_factory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a mirror with the right paths and sizes but the wrong bytes in the second file
    good = b"good net\n"
    bad_item = snap_data.FILES[1]
    first = snap_data.DataFile(
        snap_data.FILES[0].local, len(good), hashlib.sha256(good).hexdigest()
    )
    monkeypatch.setattr(snap_data, "FILES", (first, bad_item, *snap_data.FILES[2:]))
    root = tmp_path / "mirror"
    (root / first.upstream).parent.mkdir(parents=True)
    (root / first.upstream).write_bytes(good)
    (root / bad_item.upstream).parent.mkdir(parents=True)
    (root / bad_item.upstream).write_bytes(b"x" * bad_item.size)
    mirror = mirror_factory(root)
    dest = tmp_path / "dest"

    rc = cli.main(["fetch-data", "--dest", str(dest), "--base-url", mirror.url])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("seasonal-c2rcc: ") and len(err.strip().splitlines()) == 1
    assert bad_item.local in err and mirror.url + bad_item.upstream in err
    assert "does not match the pinned " + bad_item.sha256 in err
    assert "re-run `seasonal-c2rcc fetch-data" in err
    assert "Traceback" not in err
    assert not (dest / bad_item.local).exists()
    assert _leftovers(dest) == []
    # the file verified before the failure is kept, and the run stopped at the bad one
    assert (dest / first.local).read_bytes() == good
    assert len(mirror.requests) == 2


def test_missing_file_on_the_mirror_names_the_url(
    tmp_path: Path, mirror_factory, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = mirror_factory(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    dest = tmp_path / "dest"
    assert cli.main(["fetch-data", "--dest", str(dest), "--base-url", mirror.url]) == 2
    err = capsys.readouterr().err
    assert f"{mirror.url}{snap_data.FILES[0].upstream}: HTTP 404" in err
    assert not (dest / snap_data.FILES[0].local).exists()
    assert not dest.exists() or _leftovers(dest) == []


def test_bad_base_url_is_refused_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(snap_data.BASE_URL_ENV, "ftp://mirror.example/snap")
    dest = tmp_path / "dest"
    assert cli.main(["fetch-data", "--dest", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "ftp://mirror.example/snap" in err and "$SEASONAL_C2RCC_DATA_URL" in err
    assert not dest.exists()


def test_default_dest_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert snap_data.default_dest() == tmp_path / "xdg" / "seasonal-c2rcc" / "snap-data"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        snap_data.default_dest()
        == tmp_path / "home" / ".local" / "share" / "seasonal-c2rcc" / "snap-data"
    )
