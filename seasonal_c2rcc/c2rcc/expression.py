"""A vectorised evaluator for the subset of SNAP band-maths used in valid-pixel expressions.

SNAP's ``validPixelExpression`` of ``c2rcc.msi`` (default ``B8 > 0 && B8 < 0.1``) is a band-maths
expression over the source bands. This module parses it without ``eval`` into a small tree and
evaluates it on numpy arrays, in float64 as SNAP's ``Term.evalD`` does.

Supported: numbers, band names, ``true``/``false``, ``PI``, ``E``, ``NaN``; ``+ - * / %``, unary
``- + ! not``; ``< <= > >= == !=``; ``&& and || or``; ``c ? a : b`` and ``if c then a else b``;
functions ``abs sqrt sqr exp exp10 log log10 pow min max sin cos tan asin acos atan atan2 floor
ceil round rint sign deg rad feq fneq nan inf``. Anything else raises :class:`ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from seasonal_c2rcc.errors import ConfigError

Array = npt.NDArray[np.float64]

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op>&&|\|\||<=|>=|==|!=|[-+*/%<>!?:(),]))"
)

_FUNCS: Final[dict[str, tuple[int, Callable[..., Array]]]] = {
    "abs": (1, np.abs),
    "sqrt": (1, np.sqrt),
    "sqr": (1, np.square),
    "exp": (1, np.exp),
    "exp10": (1, lambda a: np.power(10.0, a)),
    "log": (1, np.log),
    "log10": (1, np.log10),
    "pow": (2, np.power),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "tan": (1, np.tan),
    "asin": (1, np.arcsin),
    "acos": (1, np.arccos),
    "atan": (1, np.arctan),
    "atan2": (2, np.arctan2),
    "floor": (1, np.floor),
    "ceil": (1, np.ceil),
    "round": (1, lambda a: np.floor(a + 0.5)),  # Java Math.round: half up
    "rint": (1, np.rint),
    "sign": (1, np.sign),
    "deg": (1, np.degrees),
    "rad": (1, np.radians),
    "feq": (2, lambda a, b: np.abs(a - b) < 1e-6),
    "fneq": (2, lambda a, b: np.abs(a - b) >= 1e-6),
    "nan": (1, np.isnan),
    "inf": (1, np.isinf),
}
_CONSTS: Final[dict[str, float]] = {
    "true": 1.0,
    "false": 0.0,
    "PI": float(np.pi),
    "E": float(np.e),
    "NaN": float("nan"),
}
_WORD_OPS: Final[dict[str, str]] = {"and": "&&", "or": "||", "not": "!"}


@dataclass(frozen=True)
class Expression:
    """A parsed band-maths expression; call :meth:`evaluate` with the band arrays."""

    text: str
    bands: frozenset[str]
    _fn: Callable[[Mapping[str, Array]], Array]

    def evaluate(
        self, bands: Mapping[str, npt.ArrayLike], shape: tuple[int, ...]
    ) -> npt.NDArray[np.bool_]:
        """Evaluate as a boolean mask of ``shape`` (non-zero is true, NaN is false)."""
        missing = self.bands - set(bands)
        if missing:
            raise ConfigError(
                f"valid-pixel expression {self.text!r} uses band(s) {', '.join(sorted(missing))} "
                "that are not in the input"
            )
        values = {k: np.asarray(bands[k], dtype=np.float64) for k in self.bands}
        out = np.asarray(self._fn(values), dtype=np.float64)
        # NaN compares unequal to 0 but SNAP converts a NaN condition to false
        return np.broadcast_to((out != 0.0) & ~np.isnan(out), shape)


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raises :class:`ConfigError` with the position of a syntax error."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text_s = text.rstrip()
    while pos < len(text_s):
        m = _TOKEN.match(text_s, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"cannot parse valid-pixel expression {text!r} at position {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value in _WORD_OPS:
            kind, value = "op", _WORD_OPS[value]
        tokens.append((kind, value))
        pos = m.end()
    parser = _Parser(text, tokens)
    fn = parser.conditional()
    if parser.i != len(tokens):
        raise ConfigError(f"unexpected {tokens[parser.i][1]!r} in valid-pixel expression {text!r}")
    return Expression(text=text, bands=frozenset(parser.bands), _fn=fn)


Node = Callable[[Mapping[str, Array]], Array]


class _Parser:
    """Recursive descent, precedence as in SNAP's jexp: ?: < || < && < comparison < + - < * / %."""

    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.bands: set[str] = set()

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ConfigError(f"valid-pixel expression {self.text!r} ends unexpectedly")
        tok = self.tokens[self.i]
        if expected is not None and tok[1] != expected:
            raise ConfigError(f"expected {expected!r} but found {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    def conditional(self) -> Node:
        if self._peek() == "if":
            self._take()
            c = self.conditional()
            self._take("then")
            a = self.conditional()
            self._take("else")
            b = self.conditional()
            return lambda v: np.where(_truth(c(v)), a(v), b(v))
        c = self.logical_or()
        if self._peek() == "?":
            self._take()
            a = self.conditional()
            self._take(":")
            b = self.conditional()
            return lambda v: np.where(_truth(c(v)), a(v), b(v))
        return c

    def logical_or(self) -> Node:
        left = self.logical_and()
        while self._peek() == "||":
            self._take()
            right = self.logical_and()
            left = (lambda lf, rf: lambda v: _truth(lf(v)) | _truth(rf(v)))(left, right)
        return left

    def logical_and(self) -> Node:
        left = self.comparison()
        while self._peek() == "&&":
            self._take()
            right = self.comparison()
            left = (lambda lf, rf: lambda v: _truth(lf(v)) & _truth(rf(v)))(left, right)
        return left

    def comparison(self) -> Node:
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}  # fmt: skip
        left = self.additive()
        while self._peek() in ops:
            op = ops[self._take()[1]]
            right = self.additive()
            left = (lambda lf, rf, f: lambda v: f(lf(v), rf(v)))(left, right, op)
        return left

    def additive(self) -> Node:
        ops = {"+": np.add, "-": np.subtract}
        left = self.multiplicative()
        while self._peek() in ops:
            op = ops[self._take()[1]]
            right = self.multiplicative()
            left = (lambda lf, rf, f: lambda v: f(lf(v), rf(v)))(left, right, op)
        return left

    def multiplicative(self) -> Node:
        ops = {"*": np.multiply, "/": np.divide, "%": np.fmod}
        left = self.unary()
        while self._peek() in ops:
            op = ops[self._take()[1]]
            right = self.unary()
            left = (lambda lf, rf, f: lambda v: f(lf(v), rf(v)))(left, right, op)
        return left

    def unary(self) -> Node:
        tok = self._peek()
        if tok == "-":
            self._take()
            inner = self.unary()
            return lambda v: np.negative(inner(v))
        if tok == "+":
            self._take()
            return self.unary()
        if tok == "!":
            self._take()
            inner = self.unary()
            return lambda v: ~_truth(inner(v))
        return self.primary()

    def primary(self) -> Node:
        kind, value = self._take()
        if kind == "num":
            const = float(value)
            return lambda v: np.float64(const)
        if value == "(":
            inner = self.conditional()
            self._take(")")
            return inner
        if kind == "name":
            if value in _FUNCS and self._peek() == "(":
                n_args, fn = _FUNCS[value]
                self._take("(")
                args = [self.conditional()]
                while self._peek() == ",":
                    self._take()
                    args.append(self.conditional())
                self._take(")")
                if len(args) != n_args:
                    raise ConfigError(f"{value}() takes {n_args} argument(s) in {self.text!r}")
                return lambda v: fn(*(a(v) for a in args))
            if value in _CONSTS:
                const = _CONSTS[value]
                return lambda v: np.float64(const)
            self.bands.add(value)
            return lambda v: v[value]
        raise ConfigError(f"unexpected {value!r} in valid-pixel expression {self.text!r}")


def _truth(a: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        return arr
    return (arr != 0) & ~np.isnan(arr)
