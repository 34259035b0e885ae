"""``seasonal-c2rcc``: the offline demo, the bill, job maintenance and fetching SNAP's data.

The pipeline itself is run with ``snakemake``; these commands cover what happens around it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .errors import SeasonalC2rccError

ROOT = Path(__file__).resolve().parent.parent


class Emulator:
    """The WEkEO emulator as a child process (started and stopped by the demo)."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seasonal_c2rcc.emulator", "--host", "127.0.0.1", "--port", "0",
             "--state-dir", str(state_dir), *args],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise SeasonalC2rccError(f"the WEkEO emulator did not start (said {line!r})")
        self.url = line.removeprefix("listening on ")

    def stop(self) -> None:
        """SIGTERM, then wait; kill if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _snakemake(args: list[str], cwd: Path, env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "snakemake", *args]
    print("+ snakemake " + " ".join(args), flush=True)
    return subprocess.call(cmd, cwd=cwd, env=env)


#: What every figure and the report of the demo say about its data.
DEMO_DATA_NOTE = "synthetic data from the WEkEO emulator"
DEMO_CONFIG_HEADER = """\
# Written by `seasonal-c2rcc demo`: the demo's campaign. Its paths are relative to this folder
# (the grid and the graph are copied here), so no output names a local directory. The emulator's
# URLs are not kept (its port changes each run): `seasonal-c2rcc demo` starts an emulator and
# adds them to run or resume the demo. Alone, this file is enough to rebuild the report
# (`seasonal-c2rcc demo --report`, or `snakemake --directory <this folder> --configfile
# <this file> --report <this folder>/report.html` from the repository), but running the workflow
# with it alone would talk to the real WEkEO.
"""


def _demo_campaign(workdir: Path) -> tuple[Path, dict]:
    """Make ``workdir`` a self-contained campaign folder: copy the demo grid and the graph in,
    write ``demo-config.yaml`` with paths relative to it. Returns the config path and config."""
    from .atomic import atomic_path

    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    # the graph is the schema default (graphs/s2_c2rcc.xml), resolved in the working directory
    for rel in (cfg["subtiles"], "graphs/s2_c2rcc.xml"):
        src, dst = ROOT / rel, workdir / rel
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            with atomic_path(dst) as tmp:
                tmp.write_bytes(src.read_bytes())
    cfg["figures"] = {**cfg.get("figures", {}), "data_source_note": DEMO_DATA_NOTE}
    demo_cfg = workdir / "demo-config.yaml"
    with atomic_path(demo_cfg) as tmp:
        tmp.write_text(DEMO_CONFIG_HEADER + yaml.safe_dump(cfg, sort_keys=False))
    return demo_cfg, cfg


def _demo_backend(workdir: Path, backend: str) -> Path:
    """A config file choosing a local backend for the demo (native: with the nets found)."""
    from .c2rcc import find_nets_dir

    doc: dict = {"backend": backend, "product_cache": "cache/products"}
    if backend == "native":
        # a clear one-line error (where to get the nets) before the emulator starts
        doc["native"] = {"nets": str(find_nets_dir())}
    path = workdir / "emulator-state" / f"backend-{backend}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cmd_demo(ns: argparse.Namespace) -> int:
    """Run the whole pipeline offline on the demo grid against a local emulator (or, with
    ``--report``, only rebuild the report of a demo run)."""
    from . import paths

    workdir = Path(ns.directory).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    demo_cfg, cfg = _demo_campaign(workdir)
    # The emulator accepts any account; never hand it the user's real credentials.
    env = dict(os.environ, HDA_USER="demo-user", HDA_PASSWORD="demo-password")
    env["HDA_RC"] = str(workdir / "no-hdarc")
    common = [
        "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--workflow-profile", str(ROOT / "profiles" / "demo"),
    ]  # fmt: skip
    report = workdir / "report.html"
    if ns.report:
        # building the report reads local files only: no emulator needed
        if not (workdir / paths.RESULTS).is_dir():
            print(
                f"seasonal-c2rcc: no demo results in {workdir}: run `seasonal-c2rcc demo` first",
                file=sys.stderr,
            )
            return 1
        configs = ["--configfile", str(demo_cfg)]
        if ns.backend != "eocanvas":  # the report's methods text names the backend the demo used
            configs.append(str(_demo_backend(workdir, ns.backend)))
        rc = _snakemake([*common, *configs, "--report", str(report)], ROOT, env)
        if rc == 0:
            print(f"report {report}: open it in a web browser")
        return rc
    backend_cfg = _demo_backend(workdir, ns.backend) if ns.backend != "eocanvas" else None
    emu = Emulator(workdir / "emulator-state", "--job-duration", str(ns.job_duration))
    print(f"WEkEO emulator: {emu.url}", flush=True)
    try:
        # the running emulator's URLs, valid while this command runs, in a config file of their own
        emu_cfg = workdir / "emulator-state" / "emulator-urls.yaml"
        emu_cfg.write_text(
            "# the URLs of the emulator `seasonal-c2rcc demo` started; dead once it ends\n"
            + yaml.safe_dump(
                {
                    "wekeo": {
                        "hda_url": f"{emu.url}/hda-broker/",
                        "eocanvas_url": f"{emu.url}/serverless",
                    }
                }
            )
        )
        configs = ["--configfile", str(demo_cfg), str(emu_cfg)]
        if backend_cfg is not None:
            configs.append(str(backend_cfg))
            cfg = {**cfg, "backend": ns.backend}
        from .bill import bill_from_config, render_bill

        print("The bill before anything is spent (what `seasonal-c2rcc bill` prints):", flush=True)
        print(render_bill(bill_from_config(cfg, workdir, paths.CATALOGUE_DIR)), flush=True)
        t0 = time.monotonic()
        rc = _snakemake([*common, *configs, "--cores", str(ns.cores)], ROOT, env)
        if rc != 0:
            print(
                f"demo failed (exit {rc}); logs under {workdir / 'logs'}; re-run the same command "
                "to resume (finished remote jobs are not repeated)",
                file=sys.stderr,
            )
            return rc
        rc = _snakemake([*common, *configs, "--report", str(report)], ROOT, env)
        print(
            f"demo finished in {time.monotonic() - t0:.0f} s: results in {workdir / 'results'}, "
            f"report {report} (rebuild it with `seasonal-c2rcc demo --report`)"
        )
        return rc
    finally:
        emu.stop()


def cmd_bill(ns: argparse.Namespace) -> int:
    """Print the campaign's bill (searches, orders, jobs, bytes, time) for every packing mode."""
    from .bill import bill_from_config, render_bill
    from .config import load_config_file

    config: dict = {}
    for path in ns.configfile:
        config.update(load_config_file(path))
    bill = bill_from_config(config, ".", Path(ns.results) / "catalog")
    print(render_bill(bill, "markdown" if ns.markdown else "text"))
    return 0


def cmd_preflight(ns: argparse.Namespace) -> int:
    """Check a campaign as `snakemake` does before its first job (exit 1 with one line per problem)."""
    from . import preflight
    from .config import load_config_file

    config: dict = {}
    try:
        for path in ns.configfile:
            config.update(load_config_file(path))
    except SeasonalC2rccError as exc:
        preflight.fail(exc)
    campaign = preflight.campaign_or_exit(config)
    if ns.offline:
        print(f"config, grid ({len(campaign.subtiles)} sub-tiles) and graph are fine; not online")
        return 0
    preflight.access_or_exit(campaign)
    print(
        f"config, grid ({len(campaign.subtiles)} sub-tiles), graph and WEkEO login are fine; "
        "nothing was spent"
    )
    return 0


def cmd_reset_job(ns: argparse.Namespace) -> int:
    """Let a job that gave up (or was rejected for a cause since fixed) be tried again."""
    from .atomic import write_json_atomic
    from .integrity import read_job_record

    for key in ns.keys:
        path = Path(ns.results) / "state" / "jobs" / f"{key}.json"
        if not path.exists():
            print(f"no job record {path}", file=sys.stderr)
            return 1
        rec = read_job_record(path)  # a corrupt record: StateError naming the file and the fix
        if rec.get("state") not in ("gave_up", "rejected"):
            print(f"{key}: state is {rec.get('state')}, not gave_up or rejected; left as it is")
            continue
        rec["state"] = "failed"
        rec["attempts"] = []
        write_json_atomic(path, rec)
        print(f"{key}: will be submitted again on the next run")
    return 0


def cmd_remote_jobs(ns: argparse.Namespace) -> int:
    """List remote EOCanvas jobs no job record owns; adopt one for a record, or dismiss one."""
    from . import remote_jobs, wekeo
    from .config import load_config_file, validate_schema
    from .quota import QuotaLedger, ledger_path

    config: dict = {}
    for path in ns.configfile:
        config.update(load_config_file(path))
    config = validate_schema(config)
    state_dir = Path(ns.results) / "state"
    with QuotaLedger(ledger_path(config["quota"], state_dir)) as ledger:
        if ns.adopt:
            print(remote_jobs.adopt(state_dir, ledger, ns.adopt[0], ns.adopt[1]))
            return 0
        endpoints = wekeo.Endpoints.from_config(config["wekeo"])
        canvas = wekeo.EOCanvas(
            endpoints, wekeo.load_credentials(), timeout=config["wekeo"]["http_timeout"]
        )
        if ns.dismiss:
            print(remote_jobs.dismiss(canvas, state_dir, ns.dismiss))
            return 0
        jobs = remote_jobs.unowned_jobs(canvas, state_dir, ledger)
    if not jobs:
        print("every remote job on the account belongs to a job record")
        return 0
    print(f"{len(jobs)} remote job(s) no job record owns:")
    for j in jobs:
        hint = f"  (fits the lost submission of {j.likely_for})" if j.likely_for else ""
        print(f"  {j.job_id}  {j.status or '?':10}  created {j.created}{hint}")
    print("adopt one: --adopt KEY JOB_ID; dismiss one on the service: --dismiss JOB_ID")
    return 0


def cmd_fetch_data(ns: argparse.Namespace) -> int:
    """Fetch SNAP's C2RCC-MSI nets and test product (GPL-3.0) with pinned checksums."""
    from . import snap_data

    dest = Path(ns.dest) if ns.dest else snap_data.default_dest()
    source = snap_data.base_url(ns.base_url)
    print(f"Fetching {len(snap_data.FILES)} files of SNAP (GPL-3.0) from {source} into {dest}")
    snap_data.fetch(dest, source)
    print(f"All {len(snap_data.FILES)} files verified in {dest.resolve()}.")
    print("Point seasonal-c2rcc and its tests at them (e.g. in your shell profile):")
    for name, value in snap_data.env_exports(dest).items():
        print(f"  export {name}={shlex.quote(value)}")
    return 0


def cmd_cache(ns: argparse.Namespace) -> int:
    """List or prune the L1C product cache (backends native and gpt)."""
    from . import download

    cache = (
        download.ProductCache(Path(ns.cache).expanduser())
        if ns.cache
        else download.cache_from_config_files(ns.configfile)
    )
    catalogs = [Path(r) / "catalog" for r in ns.results if (Path(r) / "catalog").is_dir()]
    now = time.time()
    entries = download.list_cache(cache, catalogs)
    if ns.cache_command == "list":
        print(download.render_cache_list(entries, cache, now))
        return 0
    plan = download.prune_plan(entries, now=now, older_than_days=ns.older_than, unused=ns.unused)
    n, freed = download.prune_cache(cache, plan, dry_run=ns.dry_run)
    verb = "would delete" if ns.dry_run else "deleted"
    print(f"{verb} {n} file(s), {freed / 1e9:.2f} GB, from {cache.root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``seasonal-c2rcc`` command."""
    p = argparse.ArgumentParser(prog="seasonal-c2rcc", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the pipeline offline against the bundled WEkEO emulator")
    d.add_argument("--directory", default="demo", help="working directory for results (demo/)")
    d.add_argument("--cores", type=int, default=8)
    d.add_argument("--job-duration", type=float, default=2.0, help="emulated job run time (s)")
    d.add_argument(
        "--backend", choices=["eocanvas", "native", "gpt"], default="eocanvas",
        help="where C2RCC runs: the emulated EOCanvas (default), or locally on the SAFE products "
        "the emulator's HDA serves (native needs SNAP's nets: seasonal-c2rcc fetch-data; gpt "
        "needs SNAP's gpt)",
    )  # fmt: skip
    d.add_argument(
        "--report", action="store_true",
        help="only rebuild the report of a finished demo (<directory>/report.html; give the "
        "demo's --backend too); no emulator",
    )  # fmt: skip
    d.set_defaults(func=cmd_demo)
    b = sub.add_parser("bill", help="what a campaign will cost, before spending anything")
    b.add_argument(
        "--configfile", nargs="+", default=["config/config.yaml"],
        help="config file(s), later ones override earlier ones, as in snakemake",
    )  # fmt: skip
    b.add_argument("--markdown", action="store_true", help="print a Markdown table")
    b.add_argument("--results", default="results")
    b.set_defaults(func=cmd_bill)
    pf = sub.add_parser(
        "preflight",
        help="check config, grid, graph, credentials (one login) as snakemake does; spends nothing",
    )
    pf.add_argument(
        "--configfile", nargs="+", default=["config/config.yaml"],
        help="config file(s), later ones override earlier ones",
    )  # fmt: skip
    pf.add_argument("--offline", action="store_true", help="skip the credentials and the login")
    pf.set_defaults(func=cmd_preflight)
    r = sub.add_parser("reset-job", help="allow a job that gave up to be submitted again")
    r.add_argument("keys", nargs="+")
    r.add_argument("--results", default="results")
    r.set_defaults(func=cmd_reset_job)
    rj = sub.add_parser(
        "remote-jobs", help="remote EOCanvas jobs no job record owns: list, adopt or dismiss"
    )
    rj.add_argument(
        "--configfile", nargs="+", default=["config/config.yaml"],
        help="config file(s) giving the WEkEO endpoints and the quota ledger",
    )  # fmt: skip
    rj.add_argument("--results", default="results")
    rj_what = rj.add_mutually_exclusive_group()
    rj_what.add_argument("--adopt", nargs=2, metavar=("KEY", "JOB_ID"), help="give JOB_ID to KEY")
    rj_what.add_argument("--dismiss", metavar="JOB_ID", help="cancel/delete it on the service")
    rj.set_defaults(func=cmd_remote_jobs)
    f = sub.add_parser(
        "fetch-data",
        help="download SNAP's C2RCC-MSI nets and S2Ref_Product.zip (GPL-3.0), checksums pinned",
    )
    f.add_argument(
        "--dest", help="folder to put them in (default: ~/.local/share/seasonal-c2rcc/snap-data)"
    )
    f.add_argument(
        "--base-url",
        help="mirror of the optical-toolbox repository at the pinned commit "
        "(default: $SEASONAL_C2RCC_DATA_URL, else raw.githubusercontent.com)",
    )
    f.set_defaults(func=cmd_fetch_data)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache", help="the product cache folder (default: product_cache of the config files)"
    )
    common.add_argument(
        "--configfile", nargs="+", default=["config/config.yaml"],
        help="config file(s) naming product_cache (later ones win)",
    )  # fmt: skip
    common.add_argument(
        "--results", nargs="*", default=["results"],
        help="results folders of campaigns whose frozen catalogues count as users, besides "
        "those registered in the cache by their downloads",
    )  # fmt: skip
    c = sub.add_parser("cache", help="list or prune the downloaded L1C products (native, gpt)")
    csub = c.add_subparsers(dest="cache_command", required=True)
    csub.add_parser(
        "list", parents=[common], help="products, sizes, age and the campaigns using them"
    )
    cp = csub.add_parser(
        "prune", parents=[common], help="delete old or unused products and leftovers"
    )
    cp.add_argument("--older-than", type=float, metavar="DAYS", help="downloaded over DAYS ago")
    cp.add_argument("--unused", action="store_true", help="used by no known campaign's catalogue")
    cp.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    c.set_defaults(func=cmd_cache)
    ns = p.parse_args(argv)
    try:
        return int(ns.func(ns))
    except SeasonalC2rccError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # a schema error: one per problem
            print(f"seasonal-c2rcc: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
