"""A stand-in for SNAP's ``gpt`` (tests only; the fixture copies it to ``<tmp>/bin/gpt`` with a
shebang naming this Python, made executable).

It parses its command line as SNAP's ``CommandLineArgs`` does (``-q <int>``, ``-c <size>``,
``-P<name>=<value>``, ``-e``, ``--diag``, ``-h``; ``-J<jvm option>`` as gpt's launcher takes it),
substitutes ``$name`` / ``${name}`` in the graph from the ``-P`` values as gpt's TemplateReader does,
and checks the graph the way the project needs it: Read/Subset/Resample/c2rcc.msi/Write present,
no placeholder left, the Read file is the ``img1`` product, the Subset region is lon/lat. Then it
writes what EOCanvas's emulator writes for that product and region (the same NetCDF4-BEAM C2RCC
file), under ``-Poutput`` plus the format's extension, as SNAP does.

``FAKE_GPT_RECORD=<file>``: the parsed invocation is written there as JSON (argv, options, params,
substituted graph). ``FAKE_GPT_MODE`` reproduces gpt's failures, printing gpt's own log lines:

* ``unknown-operator``: SNAP has no such operator (NodeContext);
* ``heap``: OutOfMemoryError after starting to write (a partial result is left);
* ``crash``: an exception in the writer after a partial result (exit 1);
* ``killed``: a partial result, then the process is killed by SIGKILL (the OOM killer);
* ``hang``: a partial result, a child process (the JVM under the launcher) writes its pid to
  ``FAKE_GPT_CHILD_PID`` and both sleep, ignoring SIGTERM;
* ``no-output``: exits 0 without writing anything.

Unknown c2rcc.msi parameters and regions outside the product fail as gpt does, from the graph
itself (through the emulator's model of gpt).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SIZE_RE = re.compile(r"^[0-9]+[KMGkmg]?$")
PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}|\$([A-Za-z_][A-Za-z0-9_.]*)")
REQUIRED_OPERATORS = ("Read", "Subset", "Resample", "c2rcc.msi", "Write")
EXTENSIONS = {"NetCDF4-BEAM": ".nc", "NetCDF4-CF": ".nc", "BEAM-DIMAP": ".dim"}


def fail(*lines: str, code: int = 1) -> None:
    for line in lines:
        print(line, flush=True)
    sys.exit(code)


def parse(argv: list[str]) -> dict:
    opts: dict = {"jvm": [], "params": {}, "graph": None, "q": None, "c": None, "e": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-J"):
            if not arg.startswith("-J-X"):
                fail(f"Error: unexpected launcher option '{arg}'")
            opts["jvm"].append(arg[2:])
        elif arg.startswith("-P"):
            if "=" not in arg:
                fail(f"Error: Missing '=' in '{arg}'")
            name, value = arg[2:].split("=", 1)
            opts["params"][name.strip()] = value.strip()
        elif arg == "-q":
            i += 1
            if i == len(argv) or not argv[i].isdigit() or int(argv[i]) < 1:
                fail("Error: -q needs a positive integer")
            opts["q"] = int(argv[i])
        elif arg == "-c":
            i += 1
            if i == len(argv) or not SIZE_RE.match(argv[i]):
                fail("Error: -c needs a size (bytes, or K/M/G)")
            opts["c"] = argv[i]
        elif arg == "-e":
            opts["e"] = True
        elif arg in ("--diag", "-h"):
            opts[arg.lstrip("-")] = True
        elif arg.startswith("-"):
            fail(f"Error: Unknown option '{arg}'")
        elif opts["graph"] is None:
            opts["graph"] = arg
        else:
            fail(f"Error: unexpected source product argument '{arg}' (the graph reads $img1)")
        i += 1
    for opt in opts["jvm"]:
        if opt.startswith("-Xmx") and not SIZE_RE.match(opt[4:]):
            fail(f"Invalid maximum heap size: {opt}", "Error: Could not create the Java VM.")
    return opts


def partial(target: Path) -> None:
    """What a writer interrupted half-way leaves: a truncated file (DIMAP: .dim + .data/)."""
    if target.suffix == ".dim":
        target.write_text("<Dimap_Document")
        data = target.with_suffix(".data")
        data.mkdir(exist_ok=True)
        (data / "conc_chl.img").write_bytes(b"\0" * 1024)
    else:
        target.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 2048)


def main() -> None:
    opts = parse(sys.argv[1:])
    if opts.get("diag"):
        print("SNAP Release version 10.0.0\nSNAP home: /opt/fake-snap\nJava version: 21.0.4")
        return
    if opts["graph"] is None or not opts["graph"].endswith(".xml"):
        fail("Error: Either operator name or graph XML file must be given")
    params = opts["params"]
    for needed in ("img1", "output"):
        if needed not in params:
            fail(f"Error: the graph needs -P{needed}=... (gpt would leave ${needed} unresolved)")
    text = Path(opts["graph"]).read_text()
    graph = PLACEHOLDER_RE.sub(lambda m: params.get(m[1] or m[2], m[0]), text)
    record = os.environ.get("FAKE_GPT_RECORD")
    if record:
        Path(record).write_text(json.dumps({"argv": sys.argv[1:], **opts, "graph_text": graph}))
    left = sorted({a or b for a, b in PLACEHOLDER_RE.findall(graph)})
    if left:
        fail(f"Error: [NodeId: graph] Value is invalid: '${left[0]}' (unresolved graph variable)")

    from seasonal_c2rcc.emulator.catalogue import product_by_id
    from seasonal_c2rcc.emulator.graph import parse_graph, trace, write_nodes
    from seasonal_c2rcc.emulator.jobs import plan_chain, write_output

    nodes = parse_graph(graph.encode())
    operators = {n.operator for n in nodes.values()}
    missing = [op for op in REQUIRED_OPERATORS if op not in operators]
    if missing:
        fail(f"Error: fake gpt: the graph lacks {missing}")
    mode = os.environ.get("FAKE_GPT_MODE", "ok")
    if mode == "unknown-operator":
        fail("Error: [NodeId: c2rcc_msi] Operator SPI not found for operator 'c2rcc.msi'")
    (write,) = write_nodes(nodes)
    chain = trace(nodes, write)
    product_path = Path(params["img1"])
    if chain.read is None or chain.read.params.get("file") != str(product_path):
        fail("Error: [NodeId: Read] the Read node does not read $img1")
    if not product_path.exists():
        fail(f"Error: [NodeId: Read] Specified 'file' [{product_path}] does not exist.")
    print(f"INFO: org.esa.snap.core.gpf.operators.tooladapter: reading {product_path.name}")
    stem = product_path.name.removesuffix(".zip").removesuffix(".SAFE")
    product = product_by_id(stem + ".SAFE")
    if product is None:
        fail(f"Error: [NodeId: Read] No reader found for {product_path}")
    fmt = write.params.get("formatName") or "BEAM-DIMAP"
    out = Path(params["output"])
    target = out if out.suffix == EXTENSIONS[fmt] else Path(str(out) + EXTENSIONS[fmt])

    if mode == "heap":
        partial(target)
        fail(
            'Exception in thread "SunTileScheduler0Standard1" java.lang.OutOfMemoryError: '
            "Java heap space",
            "\tat java.base/java.nio.HeapByteBuffer.<init>(HeapByteBuffer.java:71)",
            "Error: Java heap space",
        )
    if mode == "crash":
        partial(target)
        fail(
            "Writing target product...",
            "org.esa.snap.core.gpf.OperatorException: java.io.IOException: NetCDF: HDF error",
            "\tat org.esa.snap.core.gpf.common.WriteOp.computeTile(WriteOp.java:395)",
            "Error: java.io.IOException: NetCDF: HDF error",
        )
    if mode == "killed":
        partial(target)
        print("Writing target product...", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "hang":
        partial(target)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
        )  # fmt: skip
        pid_file = os.environ.get("FAKE_GPT_CHILD_PID")
        if pid_file:
            Path(pid_file).write_text(str(child.pid))
        print("Writing target product...", flush=True)
        time.sleep(600)
    if mode == "no-output":
        print("Processing completed in 1 seconds")
        return

    try:
        plan = plan_chain(chain, "img1", product, 50_000_000, target.stem)
    except Exception as exc:  # the emulator's model of gpt's own failures (_Fail)
        for line in getattr(exc, "warnings", []):
            print(line)
        fail(*getattr(exc, "lines", [str(exc)]))
    print("Executing processing graph\n....10%....20%....30%....40%....50%....60%....70%....80%"
          "....90%.... done.")  # fmt: skip
    write_output(plan, target)
    print(f"Processing completed in 1 seconds: {target.name}")


if __name__ == "__main__":
    main()
