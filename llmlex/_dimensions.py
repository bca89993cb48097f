"""Dimensional analysis: physical units of the columns turned into dimensionless groups.

A law between physical quantities does not depend on the units they are measured in, so
(Buckingham's pi theorem) ``y = P(x) * f(pi_1, ..., pi_k)``: ``P`` a product of powers
of the inputs with the target's units, each ``pi_j`` a dimensionless product of powers
of the inputs, ``k`` the number of inputs less the rank of their dimension matrix.  The
search then looks for ``f`` of ``k`` variables instead of a law of all of them, as AI
Feynman does (Udrescu & Tegmark 2020).

Units are given per column as text (``"kg*m/s**2"``, ``"m s^-2"``, ``"J/K"``; ``""`` or
``"1"`` for a dimensionless column), a mapping of unit names to exponents
(``{"m": 1, "s": -2}``) or the seven exponents over the SI base units (m, kg, s, A, K,
mol, cd).  Only the dimension matters: ``"mm"`` is a length like ``"m"``.

Of the many equivalent choices of ``P`` and of the groups, the simplest are taken: every
set of columns whose dimensions are minimally dependent gives a candidate group, fewer
columns and smaller exponents first, kept greedily while independent; ``P`` uses the
fewest columns and smallest exponents.  A column that holds zeros (or negative values) is
used only with positive (or integer) exponents, so that the groups are finite on the
data.  Pure Python and numpy, exact rational arithmetic.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from llmlex.exceptions import UnitsError

__all__ = ["BASE_UNITS", "Reduction", "parse_units", "reduce_dimensions", "units_by_column"]

#: The SI base units, in the order of a dimension vector.
BASE_UNITS = ("m", "kg", "s", "A", "K", "mol", "cd")

Dim = tuple[Fraction, ...]


def _dim(**powers: int) -> Dim:
    return tuple(Fraction(powers.get(b, 0)) for b in BASE_UNITS)


#: Named units (their dimensions only: a prefix or a factor does not change them).
_NAMED: dict[str, Dim] = {
    **{b: _dim(**{b: 1}) for b in BASE_UNITS},
    "g": _dim(kg=1),
    "t": _dim(kg=1),
    "u": _dim(kg=1),
    "Da": _dim(kg=1),
    "min": _dim(s=1),
    "h": _dim(s=1),
    "day": _dim(s=1),
    "yr": _dim(s=1),
    "Hz": _dim(s=-1),
    "N": _dim(kg=1, m=1, s=-2),
    "J": _dim(kg=1, m=2, s=-2),
    "eV": _dim(kg=1, m=2, s=-2),
    "cal": _dim(kg=1, m=2, s=-2),
    "W": _dim(kg=1, m=2, s=-3),
    "Pa": _dim(kg=1, m=-1, s=-2),
    "bar": _dim(kg=1, m=-1, s=-2),
    "atm": _dim(kg=1, m=-1, s=-2),
    "C": _dim(A=1, s=1),
    "V": _dim(kg=1, m=2, s=-3, A=-1),
    "F": _dim(kg=-1, m=-2, s=4, A=2),
    "ohm": _dim(kg=1, m=2, s=-3, A=-2),
    "S": _dim(kg=-1, m=-2, s=3, A=2),
    "Wb": _dim(kg=1, m=2, s=-2, A=-1),
    "T": _dim(kg=1, s=-2, A=-1),
    "H": _dim(kg=1, m=2, s=-2, A=-2),
    "L": _dim(m=3),
    "l": _dim(m=3),
    "rad": _dim(),
    "sr": _dim(),
    "deg": _dim(),
}
_PREFIXES = ("da", "Y", "Z", "E", "P", "G", "M", "k", "h", "d", "c", "m", "u", "µ", "n", "p", "f")
_TOKEN = re.compile(r"\s*(?:(\*\*|[*/^()])|([A-Za-zµΩ]+)|(-?\d+(?:\.\d+)?))")


def _unit(name: str) -> Dim:
    if name == "Ω":
        name = "ohm"
    if name in _NAMED:
        return _NAMED[name]
    for prefix in _PREFIXES:
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest in _NAMED:
            return _NAMED[rest]
    raise UnitsError(
        f"unknown unit {name!r} (known: {', '.join(sorted(_NAMED))}, with SI prefixes)"
    )


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UnitsError(f"cannot read units {text!r} at {text[pos:]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


class _Parser:
    """``product := factor (('*' | '/' | juxtaposition) factor)*``,
    ``factor := (name | number | '(' product ')') (('^' | '**') exponent)?``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise UnitsError(f"units {self.text!r} end too early")
        self.pos += 1
        return token

    def product(self) -> Dim:
        dim = self.factor()
        while (token := self.peek()) is not None and token != ")":
            if token in ("*", "/"):
                self.take()
                other = self.factor()
                sign = 1 if token == "*" else -1
            else:  # juxtaposition: "kg m s^-2"
                other, sign = self.factor(), 1
            dim = tuple(a + sign * b for a, b in zip(dim, other, strict=True))
        return dim

    def factor(self) -> Dim:
        token = self.take()
        if token == "(":
            dim = self.product()
            if self.take() != ")":
                raise UnitsError(f"unbalanced parentheses in units {self.text!r}")
        elif token[0].isalpha() or token[0] in "µΩ":
            dim = _unit(token)
        elif token == "1":
            dim = _dim()
        else:
            raise UnitsError(f"unexpected {token!r} in units {self.text!r}")
        if self.peek() in ("^", "**"):
            self.take()
            power = self.exponent()
            dim = tuple(power * d for d in dim)
        return dim

    def exponent(self) -> Fraction:
        token = self.take()
        if token == "(":
            num = Fraction(self.take())
            if self.peek() == "/":
                self.take()
                num /= Fraction(self.take())
            if self.take() != ")":
                raise UnitsError(f"unbalanced parentheses in units {self.text!r}")
            return num
        try:
            return Fraction(token)
        except ValueError:
            raise UnitsError(f"bad exponent {token!r} in units {self.text!r}") from None


def parse_units(spec: object) -> Dim:
    """The dimension of a units specification, as exponents over :data:`BASE_UNITS`.

    Parameters
    ----------
    spec : str, mapping or sequence of 7 numbers
        ``"kg*m/s**2"``, ``"kg m s^-2"``, ``"m^(1/2)"``, ``"J/K"`` (``""``, ``"1"`` or
        ``None``: dimensionless); ``{"m": 1, "s": -2}``; ``(1, 0, -2, 0, 0, 0, 0)``.

    Returns
    -------
    tuple of Fraction

    Raises
    ------
    UnitsError
        For an unknown unit or unreadable text.
    """
    if spec is None:
        return _dim()
    if isinstance(spec, str):
        if not spec.strip():
            return _dim()
        parser = _Parser(spec)
        dim = parser.product()
        if parser.peek() is not None:
            raise UnitsError(f"unexpected {parser.peek()!r} in units {spec!r}")
        return dim
    if isinstance(spec, Mapping):
        total = _dim()
        for name, power in spec.items():
            unit = _unit(str(name))
            total = tuple(
                t + Fraction(power).limit_denominator(12) * u
                for t, u in zip(total, unit, strict=True)
            )
        return total
    if isinstance(spec, Sequence) and len(spec) == len(BASE_UNITS):
        try:
            return tuple(Fraction(v).limit_denominator(12) for v in spec)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    raise UnitsError(
        f"units must be text such as 'kg*m/s**2', a mapping such as {{'m': 1, 's': -2}} "
        f"or {len(BASE_UNITS)} exponents over {BASE_UNITS}, got {spec!r}"
    )


def _nullspace(columns: Sequence[Sequence[Fraction]]) -> list[list[Fraction]]:
    """A basis of the null space of the matrix with these columns (exact elimination)."""
    n = len(columns)
    rows = [[Fraction(col[i]) for col in columns] for i in range(len(columns[0]))] if n else []
    pivots: list[int] = []
    r = 0
    for c in range(n):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    basis = []
    for free in (c for c in range(n) if c not in pivots):
        v = [Fraction(0)] * n
        v[free] = Fraction(1)
        for i, p in enumerate(pivots):
            v[p] = -rows[i][free]
        basis.append(v)
    return basis


def _rank(vectors: Sequence[Sequence[Fraction]]) -> int:
    """The rank of a set of vectors of one length."""
    return len(vectors) - len(_nullspace(vectors)) if vectors else 0


def _integral(v: Sequence[Fraction]) -> tuple[Fraction, ...]:
    """``v`` scaled to coprime integers."""
    lcm = math.lcm(*(f.denominator for f in v))
    ints = [int(f * lcm) for f in v]
    g = math.gcd(*ints) or 1
    return tuple(Fraction(i, g) for i in ints)


@dataclass(frozen=True)
class Reduction:
    """``y = prod(x**prefactor) * f(pi)`` with ``pi_j = prod(x**groups[j])``.

    Attributes
    ----------
    prefactor : tuple of Fraction
        Exponents of the inputs in ``P``, the product with the target's units.
    groups : tuple of tuple of Fraction
        Exponents of the inputs in each dimensionless group.
    """

    prefactor: tuple[Fraction, ...]
    groups: tuple[tuple[Fraction, ...], ...]

    @property
    def trivial(self) -> bool:
        """Whether the reduction leaves the problem as it is (every input its own group,
        ``P = 1``)."""
        n = len(self.prefactor)
        identity = {tuple(Fraction(int(i == j)) for i in range(n)) for j in range(n)}
        return all(p == 0 for p in self.prefactor) and set(self.groups) == identity

    def factor(self, X: np.ndarray) -> np.ndarray:
        """``P`` on the rows of ``X``."""
        return _monomial(X, self.prefactor)

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """The groups on the rows of ``X``, one column each."""
        cols = [_monomial(X, g) for g in self.groups]
        return np.column_stack(cols) if cols else np.empty((X.shape[0], 0))

    def group_names(self, taken: Sequence[str]) -> list[str]:
        """Names ``pi0, pi1, ...`` of the groups, prefixed with ``_`` past any in ``taken``."""
        names = []
        for j in range(len(self.groups)):
            name = f"pi{j}"
            while name in taken:
                name = "_" + name
            names.append(name)
        return names

    def describe(self, names: Sequence[str]) -> str:
        """``P`` and the groups in the inputs' names, for logs and reports."""
        groups = ", ".join(f"pi{j} = {_text(g, names)}" for j, g in enumerate(self.groups))
        return f"y = {_text(self.prefactor, names)} * f({groups or ''})"


def _monomial(X: np.ndarray, powers: Sequence[Fraction]) -> np.ndarray:
    out = np.ones(X.shape[0])
    with np.errstate(all="ignore"):
        for col, p in zip(X.T, powers, strict=True):
            if p == 0:
                continue
            if p.denominator == 1:
                out = out * col ** int(p) if p > 0 else out / col ** int(-p)
            else:
                out = out * np.power(col, float(p))
    return out


def _text(powers: Sequence[Fraction], names: Sequence[str]) -> str:
    def power(name: str, p: Fraction) -> str:
        if p == 1:
            return name
        return f"{name}**{p}" if p.denominator == 1 else f"{name}**({p})"

    num = [power(n, p) for n, p in zip(names, powers, strict=True) if p > 0]
    den = [power(n, -p) for n, p in zip(names, powers, strict=True) if p < 0]
    top = "*".join(num) or "1"
    if not den:
        return top
    bottom = den[0] if len(den) == 1 else "(" + "*".join(den) + ")"
    return f"{top}/{bottom}"


#: Most columns of one candidate group or prefactor (bounds the enumeration).
_MAX_SUPPORT = 6


def _allowed(powers: Sequence[Fraction], signs: Sequence[str]) -> bool:
    """Whether the product is finite and real on the data: no negative power of a column
    holding zeros, no fractional power of one holding negative values."""
    for p, s in zip(powers, signs, strict=True):
        if p == 0:
            continue
        if p < 0 and s in ("zero", "mixed"):
            return False
        if p.denominator != 1 and s in ("negative", "mixed"):
            return False
    return True


def _cost(powers: Sequence[Fraction], large: bool = False) -> tuple:
    # fewer columns, smaller exponents, integers, more positive exponents, the earliest
    # columns; of a group's two orientations, the one of order one or less on the data
    # (v/c, not c/v: small parameters are the natural variables of a law), else the ratio
    # to the earlier column (x2/x1 rather than x1/x2)
    nonzero = [p for p in powers if p != 0]
    support = [j for j, p in enumerate(powers) if p != 0]
    return (
        len(nonzero),
        sum((abs(p) for p in nonzero), Fraction(0)),
        max((p.denominator for p in nonzero), default=1),
        sum(1 for p in nonzero if p < 0),
        support,
        large,
        nonzero[-1] < 0 if nonzero else False,
    )


#: A group whose median magnitude on the data is above this is "large": its inverse is
#: preferred.
_LARGE = 1.5


def units_by_column(units: object, columns: Sequence[str]) -> list[object]:
    """One units entry per column, from a sequence or a mapping from column name.

    Raises
    ------
    UnitsError
        If a mapping does not name every column exactly, or a sequence (or a single
        string) does not give one entry per column.
    """
    if isinstance(units, Mapping):
        unknown = set(map(str, units)) - set(columns)
        missing = [c for c in columns if c not in units]
        if unknown or missing:
            raise UnitsError(
                f"units must name every column ({', '.join(columns)}): "
                f"missing {missing or 'none'}, unknown {sorted(unknown) or 'none'}"
            )
        return [units[c] for c in columns]
    if isinstance(units, str) or not hasattr(units, "__len__") or len(units) != len(columns):
        raise UnitsError(f"units must give one entry per column ({len(columns)}), got {units!r}")
    return list(units)  # type: ignore[call-overload]


def reduce_dimensions(
    units: Sequence[object], target_units: object, X: np.ndarray | None = None
) -> Reduction:
    """The simplest dimensionless form of a problem (see the module's docstring).

    Parameters
    ----------
    units : sequence
        The units of each input column (see :func:`parse_units`).
    target_units : object
        The units of the target.
    X : ndarray of shape (n_samples, n_inputs), optional
        The inputs: a column holding zeros is used only with positive exponents, one
        holding negative values only with integer exponents.

    Returns
    -------
    Reduction

    Raises
    ------
    UnitsError
        When no product of powers of the inputs has the target's units (a dimensional
        constant such as ``G`` or ``c`` is missing from the columns), or a unit cannot
        be read.
    """
    dims = [parse_units(u) for u in units]
    target = parse_units(target_units)
    n = len(dims)
    signs = ["positive"] * n
    if X is not None:
        for j in range(n):
            col = X[:, j]
            has_zero, has_neg, has_pos = (
                bool(np.any(col == 0)),
                bool(np.any(col < 0)),
                bool(np.any(col > 0)),
            )
            signs[j] = (
                "mixed"
                if has_zero or (has_neg and has_pos)
                else ("negative" if has_neg else "positive")
            )
            if has_zero and not has_neg:
                signs[j] = "zero"
    rank = _rank(dims)
    k = n - rank

    def large(g: tuple[Fraction, ...]) -> bool:
        if X is None:
            return False
        with np.errstate(all="ignore"):
            return bool(np.median(np.abs(_monomial(X, g))) > _LARGE)

    # Every minimally dependent set of columns gives one group; the groups are taken
    # greedily, cheapest first, while independent.  The cost ranks the number of columns
    # first, so the sets are enumerated by size and the enumeration stops once it has
    # enough groups.
    groups: list[tuple[Fraction, ...]] = []
    for size in range(1, min(n, rank + 1, _MAX_SUPPORT) + 1):
        if len(groups) == k:
            break
        candidates: set[tuple[Fraction, ...]] = set()
        for subset in itertools.combinations(range(n), size):
            basis = _nullspace([dims[j] for j in subset])
            if len(basis) != 1 or any(v == 0 for v in basis[0]):
                continue
            full = [Fraction(0)] * n
            for j, v in zip(subset, _integral(basis[0]), strict=True):
                full[j] = v
            for sign in (1, -1):
                powers = tuple(sign * v for v in full)
                if _allowed(powers, signs):
                    candidates.add(powers)
        for g in sorted(candidates, key=lambda g: _cost(g, large(g))):
            if len(groups) == k:
                break
            if _rank([*groups, g]) == len(groups) + 1:
                groups.append(g)
    if len(groups) < k:
        raise UnitsError(
            f"found {len(groups)} of the {k} dimensionless groups finite on the data "
            "(columns holding zeros or negative values cannot be divided by or take roots)"
        )

    # the prefactor: fewest columns, smallest exponents
    best: tuple[Fraction, ...] | None = None
    if all(t == 0 for t in target):
        best = tuple(Fraction(0) for _ in range(n))
    else:
        for size in range(1, min(n, rank, _MAX_SUPPORT) + 1):
            found = []
            for subset in itertools.combinations(range(n), size):
                solution = _solve([dims[j] for j in subset], target)
                if solution is None or any(v == 0 for v in solution):
                    continue
                powers = [Fraction(0)] * n
                for j, v in zip(subset, solution, strict=True):
                    powers[j] = v
                if _allowed(powers, signs):
                    found.append(tuple(powers))
            if found:
                best = min(found, key=_cost)
                break
    if best is None:
        raise UnitsError(
            f"no product of powers of the inputs has the target's units {target_units!r}: "
            "a dimensional constant (such as G, c or k_B) may be missing from the columns"
        )
    return Reduction(prefactor=best, groups=tuple(groups))


def _solve(columns: Sequence[Dim], target: Dim) -> list[Fraction] | None:
    """The unique exact solution of ``sum(p_j * columns[j]) = target``, if any."""
    if _nullspace(columns):  # dependent columns: not unique
        return None
    augmented = _nullspace([*columns, tuple(-t for t in target)])
    if len(augmented) != 1 or augmented[0][-1] == 0:
        return None
    v = augmented[0]
    return [c / v[-1] for c in v[:-1]]
