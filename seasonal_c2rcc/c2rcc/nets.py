"""C2RCC ``.net`` files: parser, SNAP's tabulated-sigmoid feed-forward evaluation, net-set lookup.

The format is the ASCII output of H. Schiller's FFBP trainer, read by SNAP's
``org.esa.snap.core.nn.NNffbpAlphaTabFast``. This module re-implements that reader and its ``calc``
method for whole arrays of pixels at once. The net files themselves are GPL-3.0 resources of SNAP and
are *not* shipped with this project: :func:`find_nets_dir` locates them at run time (a configured
folder, ``$SEASONAL_C2RCC_NETS``, or an installed SNAP, whose jar holds them).
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from seasonal_c2rcc.errors import ConfigError

#: SNAP's ``NNffbpAlphaTabFast`` constants: table of NUM_ALPHA sigmoid values over [ALPHA_START, -ALPHA_START).
ALPHA_START: Final = -10.0
NUM_ALPHA: Final = 100_000

#: Net roles in the order of SNAP's ``C2rccMsiAlgorithm.IDX_*`` (and ``NNUtils.ALTERNATIVE_NET_DIR_NAMES``).
NET_ROLES: Final[tuple[str, ...]] = (
    "rtosa_aann",
    "rtosa_rw",
    "rw_iop",
    "iop_rw",
    "rw_kd",
    "iop_unciop",
    "iop_uncsumiop_unckd",
    "rw_rwnorm",
    "rtosa_trans",
    "rtosa_rpath",
)

#: ``netSet`` value -> sub-directory of ``auxdata/nets/msi/`` (``msi/NnPaths.java``).
NET_SET_DIRS: Final[dict[str, str]] = {
    "C2RCC-Nets": "std_s2_20160502",
    "C2X-Nets": "ext_s2_elbetsm_20170320",
    "C2X-COMPLEX-Nets": "complex_20200321",
}

#: The exact file SNAP loads for each role of each set (``msi/NnPaths.java``); a folder may hold
#: more than one ``.net`` per role only if it holds these.
NET_FILES: Final[dict[str, dict[str, str]]] = {
    "C2RCC-Nets": {
        "rtosa_aann": "31x7x31_78.0.net",
        "rtosa_rw": "33x73x53x33_291140.4.net",
        "rw_iop": "97x77x37_17515.9.net",
        "iop_rw": "17x97x47_125.5.net",
        "rw_kd": "97x77x7_306.8.net",
        "iop_unciop": "17x77x37_11486.7.net",
        "iop_uncsumiop_unckd": "17x77x37_9113.1.net",
        "rw_rwnorm": "27x7x27_28.0.net",
        "rtosa_trans": "31x77x57x37_37537.6.net",
        "rtosa_rpath": "31x77x57x37_1564.4.net",
    },
    "C2X-Nets": {
        "rtosa_aann": "31x7x31_7.2.net",
        "rtosa_rw": "77x77x77x77_10688.3.net",
        "rw_iop": "77x77x77_785.6.net",
        "iop_rw": "77x77x77_28.3.net",
        "rw_kd": "77x77x77_61.6.net",
        "iop_unciop": "17x77x37_11486.7.net",
        "iop_uncsumiop_unckd": "17x77x37_9113.1.net",
        "rw_rwnorm": "27x7x27_28.0.net",
        "rtosa_trans": "77x77x77_7809.2.net",
        "rtosa_rpath": "37x37x37_175.7.net",
    },
    "C2X-COMPLEX-Nets": {
        "rtosa_aann": "55x7x55_51.2.net",
        "rtosa_rw": "99x99x99_9210.2.net",
        "rw_iop": "39x39x39_1935.5.net",
        "iop_rw": "55x55x55_2775.5.net",
        "rw_kd": "55x55x55_315.5.net",
        "iop_unciop": "55x55x55_23294.6.net",
        "iop_uncsumiop_unckd": "55x55x55_23199.4.net",
        "rw_rwnorm": "27x7x27_28.0.net",
        "rtosa_trans": "55x55x55_107567.4.net",
        "rtosa_rpath": "55x55x55_1247.8.net",
    },
}

#: Environment variable naming a folder that holds ``std_s2_20160502/`` etc. (or ``msi/``).
NETS_ENV_VAR: Final = "SEASONAL_C2RCC_NETS"

#: Where the nets come from when none are found; repeated in every "not found" message.
NETS_SOURCE_HINT: Final = (
    "The C2RCC-MSI nets are GPL-3.0 resources of ESA SNAP and are not shipped with seasonal-c2rcc. "
    "Run `seasonal-c2rcc fetch-data` (downloads them with pinned checksums), or get them from a "
    "SNAP installation (SNAP >= 10: <SNAP_HOME>/opttbx/modules/"
    "eu-esa-opt-opttbx-c2rcc.jar; SNAP <= 9: <SNAP_HOME>/s3tbx/modules/org-esa-s3tbx-s3tbx-c2rcc.jar; "
    "both are found automatically via $SNAP_HOME, gpt on PATH or the default install folders), or "
    "copy the folder opttbx-c2rcc/src/main/resources/auxdata/nets/msi/ of "
    "https://github.com/senbox-org/optical-toolbox at commit "
    "92d5522312eff5366056a9d39f50018cba85d53e and point "
    f"${NETS_ENV_VAR} (or the nets_dir argument / alternativeNNPath) at it."
)

_JAR_NET_PREFIX: Final = "auxdata/nets/msi/"


def _sigmoid_table() -> tuple[npt.NDArray[np.float64], float]:
    """Return SNAP's activation table and the reciprocal of its step.

    ``makeAlphaTab`` accumulates the abscissa with repeated ``sum += delta``; ``np.cumsum`` adds in
    the same sequential order, so the table is bit-identical to SNAP's (up to ``exp`` rounding).
    """
    delta = (-2.0 * ALPHA_START) / (NUM_ALPHA - 1.0)
    steps = np.full(NUM_ALPHA, delta)
    steps[0] = ALPHA_START + 0.5 * delta
    x = np.cumsum(steps)
    return 1.0 / (1.0 + np.exp(-x)), 1.0 / delta


SIGMOID_TABLE, REC_DELTA_ALPHA = _sigmoid_table()
SIGMOID_TABLE.flags.writeable = False
_SIGMOID_TABLE_F32: Final = SIGMOID_TABLE.astype(np.float32)


def tabulated_sigmoid(x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """SNAP's ``activation``: table lookup at ``trunc((x + 10) / delta)``, clamped to the table.

    Kept as a readable reference; :meth:`NeuralNet.calc_t` uses a fused, pre-scaled variant.
    ``fmax``/``fmin`` map NaN to index 0 and +inf to the top, as Java's ``(int)`` cast does.
    """
    pos = np.fmin(np.fmax((x - ALPHA_START) * REC_DELTA_ALPHA, 0.0), NUM_ALPHA - 1.0)
    idx = pos.astype(np.intp)
    table = _SIGMOID_TABLE_F32 if x.dtype == np.float32 else SIGMOID_TABLE
    return table[idx]


@dataclass(frozen=True)
class NeuralNet:
    """One feed-forward net of a ``.net`` file.

    ``weights[k]`` has shape ``(size[k], size[k+1])`` (input-major, ready for ``a @ W``),
    ``biases[k]`` shape ``(size[k+1],)``. Ranges are the training ranges of inputs and outputs.
    """

    name: str
    inmin: npt.NDArray[np.float64]
    inmax: npt.NDArray[np.float64]
    outmin: npt.NDArray[np.float64]
    outmax: npt.NDArray[np.float64]
    sizes: tuple[int, ...]
    weights: tuple[npt.NDArray[np.float64], ...]
    biases: tuple[npt.NDArray[np.float64], ...]
    _scaled: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_in(self) -> int:
        """Number of inputs."""
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        """Number of outputs."""
        return self.sizes[-1]

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds per evaluated pixel (sum of the layer products)."""
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    @property
    def neurons(self) -> int:
        """Number of activations (table look-ups) per evaluated pixel."""
        return sum(self.sizes[1:])

    def _prepared(self, dtype: np.dtype) -> list[np.ndarray]:
        """Per layer, ``(n_out, n_in + 1)`` matrices with the bias as last column, pre-scaled.

        SNAP computes ``idx = trunc((b + W.a - ALPHA_START) * rec)``. Multiplying ``W`` and
        ``b - ALPHA_START`` by ``rec`` beforehand, and feeding the bias through a constant row of
        ones, makes the GEMM output the table position itself, so the per-element work after
        the GEMM is one cast and one gather. The input normalisation ``(x - inmin) / (inmax -
        inmin)`` is folded into the first layer the same way. In float64 the reassociation moves
        a pre-activation by ~1e-11 table steps, so an index differs from SNAP's only when the
        value lies that close to a step boundary.
        """
        key = np.dtype(dtype).str
        if key not in self._scaled:
            mats: list[np.ndarray] = []
            for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                w2 = w * REC_DELTA_ALPHA
                b2 = (b - ALPHA_START) * REC_DELTA_ALPHA
                if k == 0:
                    # ((x - min) / span) @ W2 == x @ (W2 / span) - (min / span) @ W2
                    span = self.inmax - self.inmin
                    b2 = b2 - (self.inmin / span) @ w2
                    w2 = w2 / span[:, None]
                mats.append(np.ascontiguousarray(np.vstack([w2, b2[None, :]]).T, dtype=dtype))
            self._scaled[key] = mats
        return self._scaled[key]

    def calc_t(
        self,
        x: npt.NDArray[np.floating],
        dtype: npt.DTypeLike = np.float64,
        outputs: slice | None = None,
    ) -> npt.NDArray[np.floating]:
        """Evaluate on feature-major input ``(n_in, n)`` or ``(n_in + 1, n)``; returns ``(n_out, n)``.

        ``outputs`` (a slice of the output neurons) skips the output-layer rows the caller does
        not use; each output neuron depends only on its own row, so the kept ones are unchanged.

        With ``n_in + 1`` rows the last row must be ones (it carries the biases); callers that
        feed several nets from one input build it once. Feature-major keeps each GEMM a wide
        ``(n_out, k) @ (k, n)`` product, which BLAS runs several times faster than the tall-skinny
        pixel-major one for these small layers.

        Same steps as SNAP's ``NNffbpAlphaTabFast.calc``: normalise inputs, every layer
        *including the output layer* through the tabulated sigmoid, output scaled back to its
        range. Indices are truncated like Java's ``(int)`` cast and clamped to the table; a NaN
        pre-activation gives index 0 as in Java (numpy casts NaN to the most negative integer,
        which ``mode="clip"`` maps to 0), -inf gives 0 and +inf the last entry, as Java's
        saturating cast does (an input reflectance of exactly 0 reaches the first layer as -inf).
        """
        dt = np.dtype(dtype)
        a = self._input(x, dt)
        w0 = self._prepared(dt)[0]
        n = a.shape[1]
        z0 = _scratch("first", w0.shape[0] * n, dt)[: w0.shape[0] * n].reshape(-1, n)
        np.matmul(w0, a, out=z0)
        return self._forward(z0, dt, outputs)

    def _input(self, x: npt.NDArray[np.floating], dt: np.dtype) -> np.ndarray:
        """``x`` with the row of ones the folded biases need (copied only when missing)."""
        if x.ndim != 2 or x.shape[0] not in (self.n_in, self.n_in + 1):
            raise ValueError(f"net {self.name}: expected input ({self.n_in}, n), got {x.shape}")
        if x.shape[0] == self.n_in + 1 and x.dtype == dt:
            return x
        n = x.shape[1]
        a = _scratch("input", (self.n_in + 1) * n, dt)[: (self.n_in + 1) * n].reshape(-1, n)
        a[: self.n_in] = x[: self.n_in]
        a[self.n_in] = 1.0
        return a

    def _forward(
        self, z_first: np.ndarray, dt: np.dtype, outputs: slice | None
    ) -> npt.NDArray[np.floating]:
        """Activations from the first layer's GEMM output on (see :meth:`calc_t`)."""
        n = z_first.shape[1]
        table = _SIGMOID_TABLE_F32 if dt == np.float32 else SIGMOID_TABLE
        mats = self._prepared(dt)
        width = max(self.sizes) + 1
        # per-thread scratch buffers: fresh multi-MB arrays per layer would cost page faults
        ping, pong = _scratch("ping", width * n, dt), _scratch("pong", width * n, dt)
        z_buf, idx_buf = _scratch("z", width * n, dt), _scratch("idx", width * n, np.intp)
        a: np.ndarray = z_first
        for k, w in enumerate(mats):
            last = k + 1 == len(mats)
            if outputs is not None and last:
                w = w[outputs]
            rows = w.shape[0]
            if k == 0:
                z = z_first if not last or outputs is None else z_first[outputs]
            else:
                z = z_buf[: rows * n].reshape(rows, n)
                np.matmul(w, a, out=z)
            if k == 0:
                # Only the first layer can see an infinite input (a reflectance of exactly 0 gives
                # log(0) = -inf). Java's (int) cast saturates +inf to the top of the table; numpy's
                # cast of +inf gives the most negative integer (entry 0), so cap it first. NaN
                # passes through np.minimum and still maps to entry 0, as (int) NaN = 0 in Java.
                np.minimum(z, float(NUM_ALPHA), out=z)
            idx = idx_buf[: rows * n].reshape(rows, n)
            # trunc toward zero like Java's (int); out-of-range and NaN are clamped by take
            with np.errstate(invalid="ignore"):
                np.copyto(idx, z, casting="unsafe")
            if not last:
                nxt = (pong if k % 2 == 0 else ping)[: (rows + 1) * n].reshape(rows + 1, n)
                table.take(idx, mode="clip", out=nxt[:-1])
                nxt[-1] = 1.0
                a = nxt
            else:
                a = table.take(idx, mode="clip")
        lo, hi = self.outmin, self.outmax
        if outputs is not None:
            lo, hi = lo[outputs], hi[outputs]
        return a * (hi - lo).astype(dt)[:, None] + lo.astype(dt)[:, None]

    def calc(
        self, x: npt.NDArray[np.floating], dtype: npt.DTypeLike = np.float64, exact: bool = False
    ) -> npt.NDArray[np.floating]:
        """Evaluate on pixel-major input ``(n, n_in)``; returns ``(n, n_out)``.

        ``exact=True`` runs SNAP's operation order literally (normalise, ``b + W.a``, then
        ``(z + 10) * rec``, clamp, look up) as a reference; the default uses :meth:`calc_t`.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"net {self.name}: expected input (n, {self.n_in}), got {x.shape}")
        if not exact:
            return self.calc_t(np.ascontiguousarray(x.T), dtype).T
        dt = np.dtype(dtype)
        a = ((x - self.inmin) / (self.inmax - self.inmin)).astype(dt)
        for w, b in zip(self.weights, self.biases, strict=True):
            a = tabulated_sigmoid(b.astype(dt) + a @ w.astype(dt))
        return a * (self.outmax - self.outmin).astype(dt) + self.outmin.astype(dt)


def calc_group_t(
    nets: Sequence[NeuralNet],
    x: npt.NDArray[np.floating],
    dtype: npt.DTypeLike = np.float64,
    outputs: Sequence[slice | None] | None = None,
) -> list[npt.NDArray[np.floating]]:
    """Evaluate several nets on the same feature-major input; one GEMM for all first layers.

    The first layers of nets that share an input (the atmospheric nets, the water nets, the two
    uncertainty nets) are stacked into one matrix: one wide GEMM instead of several thin ones
    with 11-16-long dot products, where BLAS is least efficient. Every output row is still its
    own dot product, so results equal separate :meth:`NeuralNet.calc_t` calls. Members that are
    not :class:`NeuralNet` (stand-ins in tests) or differ in input count are evaluated one by one.
    """
    dt = np.dtype(dtype)
    outs = list(outputs) if outputs is not None else [None] * len(nets)
    if not nets:
        return []
    n_in = nets[0].n_in if isinstance(nets[0], NeuralNet) else -1
    if len(nets) == 1 or not all(isinstance(m, NeuralNet) and m.n_in == n_in for m in nets):
        return [m.calc_t(x, dt, o) for m, o in zip(nets, outs, strict=True)]
    key = (tuple(id(m) for m in nets), dt.str)
    entry = _GROUPS.get(key)
    if entry is None:
        # the entry keeps the nets alive, so their ids in the key cannot be reused
        entry = (tuple(nets), np.ascontiguousarray(np.vstack([m._prepared(dt)[0] for m in nets])))
        _GROUPS[key] = entry
    stacked = entry[1]
    a = nets[0]._input(x, dt)
    n = a.shape[1]
    z_all = _scratch("group", stacked.shape[0] * n, dt)[: stacked.shape[0] * n].reshape(-1, n)
    np.matmul(stacked, a, out=z_all)
    results = []
    row = 0
    for m, o in zip(nets, outs, strict=True):
        rows = m.sizes[1]
        results.append(m._forward(z_all[row : row + rows], dt, o))
        row += rows
    return results


#: stacked first-layer matrices per group of nets (keyed by the nets' identities and dtype)
_GROUPS: dict[tuple[tuple[int, ...], str], tuple[tuple[NeuralNet, ...], np.ndarray]] = {}

_LOCAL = threading.local()


def _scratch(name: str, size: int, dtype: npt.DTypeLike) -> np.ndarray:
    """A flat per-thread buffer of at least ``size`` elements, reused across calls."""
    key = (name, np.dtype(dtype).str)
    bufs: dict[tuple[str, str], np.ndarray] = _LOCAL.__dict__.setdefault("bufs", {})
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        bufs[key] = buf
    return buf


def parse_net(text: str, name: str = "<net>") -> NeuralNet:
    """Parse the text of a ``.net`` file the way ``NNffbpAlphaTabFast.readNeuralNetFromString`` does.

    The header is free text up to the first ``#``; after that line come n_in, n_in ``min max``
    lines, n_out and n_out ``min max`` lines; the layer sizes follow the first ``=`` after them
    (``#planes=N s0 ... s(N-1)``); then one ``bias k n`` block per layer and one ``wgt k n_in n_out``
    block per layer (output-major). Raises :class:`ConfigError` on a malformed file.
    """
    try:
        hash_pos = text.index("#")
        pos = text.index("\n", hash_pos) + 1
        eq_pos = text.index("=", pos)
        ranges = text[pos : text.rindex("$", pos, eq_pos) if "$" in text[pos:eq_pos] else eq_pos]
        rng_tokens = ranges.split()
        n_in = int(rng_tokens[0])
        rng = np.array(rng_tokens[1 : 1 + 2 * n_in], dtype=np.float64).reshape(n_in, 2)
        k = 1 + 2 * n_in
        n_out = int(rng_tokens[k])
        out_rng = np.array(rng_tokens[k + 1 : k + 1 + 2 * n_out], dtype=np.float64).reshape(
            n_out, 2
        )

        lines = text[eq_pos + 1 :].splitlines()
        planes = [int(t) for t in lines[0].split()]
        nplanes, sizes = planes[0], tuple(planes[1 : 1 + planes[0]])
        if len(sizes) != nplanes or sizes[0] != n_in or sizes[-1] != n_out:
            raise ValueError(f"layer sizes {sizes} do not match {n_in} inputs / {n_out} outputs")

        # the blocks are: header line ("bias k n" / "wgt k a b") followed by whitespace-separated
        # numbers; read them as one token stream, dropping the header words.
        blocks: list[np.ndarray] = []
        current: list[str] | None = None
        for line in lines[1:]:
            head = line.split(None, 1)[0] if line.strip() else ""
            if head in ("bias", "wgt"):
                if current is not None:
                    blocks.append(np.array(current, dtype=np.float64))
                current = []
            elif current is not None:
                current.extend(line.split())
        if current is not None:
            blocks.append(np.array(current, dtype=np.float64))
        n_layers = nplanes - 1
        if len(blocks) != 2 * n_layers:
            raise ValueError(f"expected {2 * n_layers} bias/wgt blocks, found {len(blocks)}")
        biases = []
        weights = []
        for layer in range(n_layers):
            b = blocks[layer]
            w = blocks[n_layers + layer]
            n_a, n_b = sizes[layer], sizes[layer + 1]
            if b.size != n_b or w.size != n_a * n_b:
                raise ValueError(
                    f"layer {layer}: {b.size} biases / {w.size} weights for {n_a}x{n_b}"
                )
            biases.append(b)
            # file order is output-major (wgt[pl][i][j], i output, j input); store input-major
            weights.append(np.ascontiguousarray(w.reshape(n_b, n_a).T))
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"cannot parse C2RCC net file {name}: {exc}") from exc
    return NeuralNet(
        name=name,
        inmin=rng[:, 0].copy(),
        inmax=rng[:, 1].copy(),
        outmin=out_rng[:, 0].copy(),
        outmax=out_rng[:, 1].copy(),
        sizes=sizes,
        weights=tuple(weights),
        biases=tuple(biases),
    )


@dataclass(frozen=True)
class NetSet:
    """The ten nets of one C2RCC-MSI set, by role (see :data:`NET_ROLES`), plus where they came from."""

    name: str
    nets: Mapping[str, NeuralNet]
    sources: Mapping[str, str]

    def __getitem__(self, role: str) -> NeuralNet:
        return self.nets[role]


# --------------------------------------------------------------------------------------------------
# locating nets


def _snap_homes() -> list[Path]:
    """Candidate SNAP installation folders: $SNAP_HOME, gpt on PATH, then the installers' defaults."""
    homes: list[Path] = []
    if os.environ.get("SNAP_HOME"):
        homes.append(Path(os.environ["SNAP_HOME"]))
    gpt = shutil.which("gpt")
    if gpt:
        homes.append(Path(gpt).resolve().parent.parent)
    home = Path.home()
    homes += [
        home / "esa-snap",  # SNAP >= 10 installer default (Linux)
        home / "snap",  # SNAP <= 9 installer default (Linux)
        Path("/opt/esa-snap"),
        Path("/opt/snap"),
        Path("/usr/local/esa-snap"),
        Path("/usr/local/snap"),
        Path("/Applications/esa-snap"),
        Path("/Applications/snap"),
        Path("C:/Program Files/esa-snap"),
        Path("C:/Program Files/snap"),
        # modules updated through SNAP's update centre land in the user directory
        home / ".snap" / "system",
    ]
    return homes


def _snap_c2rcc_jars(homes: Iterable[Path] | None = None) -> list[Path]:
    """The C2RCC module jars (optical-toolbox first, then s3tbx) under the candidate SNAP folders."""
    jars: list[Path] = []
    for home in homes if homes is not None else _snap_homes():
        for rel in (
            "opttbx/modules/eu-esa-opt-opttbx-c2rcc.jar",
            "optical-toolbox/modules/eu-esa-opt-opttbx-c2rcc.jar",
            "s3tbx/modules/org-esa-s3tbx-s3tbx-c2rcc.jar",
        ):
            p = home / rel
            if p.is_file() and p not in jars:
                jars.append(p)
        # other cluster or module names (renamed in some release): any C2RCC module jar
        if home.is_dir():
            for p in sorted(home.glob("*/modules/*c2rcc*.jar")):
                if p not in jars:
                    jars.append(p)
    return [j for j in jars if _jar_has_msi_nets(j)]


def _jar_has_msi_nets(jar: Path) -> bool:
    try:
        with zipfile.ZipFile(jar) as zf:
            return any(n.startswith(_JAR_NET_PREFIX) for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _is_nets_root(path: Path) -> bool:
    return any((path / d).is_dir() for d in NET_SET_DIRS.values())


def find_nets_dir(nets_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate a folder or SNAP jar holding the MSI nets.

    Order: ``nets_dir`` (a folder holding ``std_s2_20160502/`` etc., or its parent ``msi/`` /
    ``nets/``, or a C2RCC jar), ``$SEASONAL_C2RCC_NETS``, then an installed SNAP's C2RCC jar
    (optical-toolbox, then s3tbx), then the folder ``seasonal-c2rcc fetch-data`` fills by default.
    Raises :class:`ConfigError` saying where to get them.
    """
    tried: list[str] = []
    candidates: list[tuple[str, Path]] = []
    if nets_dir is not None:
        candidates.append(("nets_dir", Path(nets_dir)))
    elif os.environ.get(NETS_ENV_VAR):
        candidates.append((f"${NETS_ENV_VAR}", Path(os.environ[NETS_ENV_VAR])))
    for label, cand in candidates:
        for p in (cand, cand / "msi", cand / "nets" / "msi", cand / "auxdata" / "nets" / "msi"):
            if p.is_dir() and _is_nets_root(p):
                return p
        if cand.is_file() and cand.suffix == ".jar":
            return cand
        tried.append(f"{label}={cand}")
        # an explicit setting that does not hold nets is an error, not a reason to look elsewhere
        raise ConfigError(
            f"no C2RCC-MSI nets under {cand} ({label}): expected sub-folders "
            f"{', '.join(NET_SET_DIRS.values())}. {NETS_SOURCE_HINT}"
        )
    jars = _snap_c2rcc_jars()
    if jars:
        return jars[0]
    # where `seasonal-c2rcc fetch-data` puts them by default: no variable to set afterwards
    from ..snap_data import NETS_SUBDIR, default_dest

    fetched = default_dest() / NETS_SUBDIR
    if fetched.is_dir() and _is_nets_root(fetched):
        return fetched
    tried.append(f"seasonal-c2rcc fetch-data's folder {fetched}")
    tried.append("SNAP installs: " + ", ".join(str(h) for h in _snap_homes()))
    raise ConfigError(
        f"C2RCC-MSI nets not found (looked at {'; '.join(tried)}). {NETS_SOURCE_HINT}"
    )


def _read_role_from_dir(role_dir: Path, wanted: str | None) -> tuple[str, str]:
    if not role_dir.is_dir():
        raise ConfigError(f"C2RCC nets folder {role_dir.parent} lacks sub-folder {role_dir.name!r}")
    if wanted is not None and (role_dir / wanted).is_file():
        path = role_dir / wanted
    else:
        # SNAP's alternativeNNPath rule (NNUtils.getNNFilePaths): exactly one *.net per folder
        found = sorted(p for p in role_dir.iterdir() if p.suffix.lower() == ".net" and p.is_file())
        if len(found) != 1:
            raise ConfigError(
                f"{role_dir} must contain exactly 1 '*.net' file, but contains {len(found)}"
            )
        path = found[0]
    return path.read_text(encoding="latin-1"), str(path)


def load_nets(
    net_set: str = "C2RCC-Nets",
    nets_dir: str | os.PathLike[str] | None = None,
    alternative_nn_path: str | os.PathLike[str] | None = None,
) -> NetSet:
    """Load the ten nets of ``net_set`` (``C2RCC-Nets``, ``C2X-Nets`` or ``C2X-COMPLEX-Nets``).

    ``alternative_nn_path`` mirrors SNAP's ``alternativeNNPath``: a folder with the ten role
    sub-folders, each holding exactly one ``.net``; it overrides ``net_set``. Otherwise the set is
    read from :func:`find_nets_dir` (``nets_dir``, the env var, or a SNAP jar). Results are cached
    per location.
    """
    if alternative_nn_path:
        root = Path(alternative_nn_path)
        if not root.is_dir():
            raise ConfigError(
                f"The path '{root}' for alternative neuronal nets is not a valid path"
            )
        texts = {role: _read_role_from_dir(root / role, None) for role in NET_ROLES}
        return _build_set(f"alternative:{root}", texts)
    if net_set not in NET_SET_DIRS:
        raise ConfigError(
            f"Unknown set '{net_set}' of neural nets specified; valid: {', '.join(NET_SET_DIRS)}"
        )
    where = find_nets_dir(nets_dir)
    key = (net_set, str(where.resolve()))
    if key not in _CACHE:
        texts: dict[str, tuple[str, str]] = {}
        if where.is_file():
            with zipfile.ZipFile(where) as jar:
                for role in NET_ROLES:
                    member = f"{_JAR_NET_PREFIX}{NET_SET_DIRS[net_set]}/{role}/{NET_FILES[net_set][role]}"
                    try:
                        data = jar.read(member)
                    except KeyError as exc:
                        raise ConfigError(f"{where} lacks {member}. {NETS_SOURCE_HINT}") from exc
                    texts[role] = (
                        io.TextIOWrapper(io.BytesIO(data), "latin-1").read(),
                        f"{where}!/{member}",
                    )
        else:
            set_dir = where / NET_SET_DIRS[net_set]
            if not set_dir.is_dir():
                raise ConfigError(
                    f"{where} lacks the {net_set} folder {set_dir.name}. {NETS_SOURCE_HINT}"
                )
            for role in NET_ROLES:
                texts[role] = _read_role_from_dir(set_dir / role, NET_FILES[net_set][role])
        _CACHE[key] = _build_set(net_set, texts)
    return _CACHE[key]


_CACHE: dict[tuple[str, str], NetSet] = {}


def _build_set(name: str, texts: Mapping[str, tuple[str, str]]) -> NetSet:
    nets = {role: parse_net(text, name=src) for role, (text, src) in texts.items()}
    return NetSet(name=name, nets=nets, sources={role: src for role, (_, src) in texts.items()})
