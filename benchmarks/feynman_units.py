"""SI units of the variables of ``../shared/benchmarks/FeynmanEquations.csv``.

Written for this benchmark from the equations themselves (AI Feynman's own units table is
not on this machine): one unit per variable name, and per-equation overrides where a name
means another quantity there (``n`` is a refractive index, a count or a number density;
``alpha`` a ratio or a polarisability volume).  ``python benchmarks/feynman_units.py``
checks every equation for dimensional homogeneity numerically: each base unit rescaled by
a random factor, the inputs by their units' factors, the output must rescale by its own.
"""

from __future__ import annotations

import sys

import numpy as np

#: A variable name's units wherever no override says otherwise.
UNITS: dict[str, str] = {
    # geometry and kinematics
    **dict.fromkeys("x y z x1 x2 x3 y1 y2 y3 z1 z2 r r1 r2 d d1 d2 foc lambd".split(), "m"),
    **dict.fromkeys("v u w v1 c".split(), "m/s"),
    **dict.fromkeys("t t1".split(), "s"),
    **dict.fromkeys("omega omega_0".split(), "1/s"),
    "a": "m/s^2",
    "g": "m/s^2",
    "k": "1/m",
    "A": "m^2",
    "V": "m^3",
    "V1": "m^3",
    "V2": "m^3",
    # mechanics
    **dict.fromkeys("m m1 m2 m_0".split(), "kg"),
    **dict.fromkeys("F Nn".split(), "N"),
    **dict.fromkeys("K U E_n tau".split(), "J"),
    "p": "kg m/s",
    "L": "J s",
    "Jz": "J s",
    "h": "J s",
    "G": "m^3 kg^-1 s^-2",
    "k_spring": "N/m",
    "rho": "kg/m^3",
    "pr": "Pa",
    "Y": "Pa",
    "mu_S": "Pa",
    "Pwr": "W",
    "flux": "W/m^2",
    "Int": "W/m^2",
    "Int_0": "W/m^2",
    "I1": "W/m^2",
    "I2": "W/m^2",
    "L_rad": "J/m^2",
    "D": "m^2/s",
    "mob": "s/kg",
    "mu_drift": "s/kg",
    # heat
    **dict.fromkeys("T T1 T2".split(), "K"),
    "kb": "J/K",
    "kappa": "W/(m K)",
    # electromagnetism
    **dict.fromkeys("q q1 q2".split(), "C"),
    "epsilon": "F/m",
    "Ef": "V/m",
    **dict.fromkeys("B Bx By Bz H".split(), "T"),
    "Volt": "V",
    "C": "F",
    **dict.fromkeys("I I_0".split(), "A"),
    "p_d": "C m",
    "mom": "J/T",
    "M": "A/m",
    "A_vec": "T m",
    "Pol": "C/m^2",
    "sigma_den": "C/m^2",
    "rho_c": "C/m^3",
    "rho_c_0": "C/m^3",
    "j": "A/m^2",
    "E_den": "J/m^3",
    "n_rho": "m^-3",
    "n_0": "m^-3",
    # dimensionless: angles, ratios, counts, indices, probabilities
    **dict.fromkeys(
        "theta theta1 theta2 sigma delta alpha beta gamma chi mu n g_ f prob".split(), ""
    ),
}

#: Names that mean another quantity in one equation.
OVERRIDES: dict[str, dict[str, str]] = {
    "I.40.1": {"n": "m^-3"},  # number density, like n_0
    "II.11.17": {"n": "m^-3"},
    "II.35.18": {"n": "m^-3"},
    "II.11.27": {"n": "m^-3", "alpha": "m^3"},  # density times polarisability volume
    "II.11.28": {"n": "m^-3", "alpha": "m^3"},
}


def units_of(name: str, variables: list[str], output: str) -> tuple[list[str], str]:
    """The units of an equation's inputs (in order) and of its output."""
    table = {**UNITS, **OVERRIDES.get(name, {})}
    return [table[v] for v in variables], table[output]


def check(path: str | None = None) -> list[str]:
    """Equations of the table that are not homogeneous under :data:`UNITS` (names)."""
    from feynman_kan import CSV, load_equations, truth_expr

    from llmlex import _kan_sympy as ks
    from llmlex._dimensions import parse_units

    bad = []
    rng = np.random.default_rng(0)
    for eq in load_equations(CSV if path is None else path, tuple(range(1, 11))):
        truth, syms = truth_expr(eq)
        names = [v[0] for v in eq["vars"]]
        units, out = units_of(eq["name"], names, eq["output"])
        lo = np.array([v[1] for v in eq["vars"]])
        hi = np.array([v[2] for v in eq["vars"]])
        X = rng.uniform(lo, hi, size=(20, len(names)))
        scale = np.exp(rng.uniform(-0.7, 0.7, 7))  # one factor per base unit

        def factor(u: str, scale=scale) -> float:
            return float(np.prod(scale ** np.array([float(p) for p in parse_units(u)])))

        Xs = X * np.array([factor(u) for u in units])
        with np.errstate(all="ignore"):
            y, ys = ks.evaluate(truth, syms, X), ks.evaluate(truth, syms, Xs)
        ok = np.isfinite(y) & np.isfinite(ys)
        if not ok.any() or not np.allclose(ys[ok], y[ok] * factor(out), rtol=1e-9, atol=0):
            bad.append(eq["name"])
    return bad


if __name__ == "__main__":
    failed = check()
    print(f"{len(failed)} equations not homogeneous: {' '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)
