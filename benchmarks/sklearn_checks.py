"""scikit-learn's ``check_estimator`` on the estimator as a user builds it, check by check.

Runs every check of ``sklearn.utils.estimator_checks.check_estimator`` on
``LLMLExRegressor(random_state=0)`` (its defaults: sparse generators and the KAN, the
default time budget) and prints each check's status and wall time, the slowest checks and
the total.  The checks fit the estimator about 80 times on small random data sets (21 to
200 rows, up to 30 columns), so this measures what a fit costs when no law is there to
find.  The test suite runs the same checks on a tiny network (tests/test_estimator.py).

Run:  python benchmarks/sklearn_checks.py [--time-budget 60 | none] [--top 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.utils.estimator_checks import check_estimator

from llmlex.estimator import LLMLExRegressor

# The one check the estimator fails by design (see tests/test_estimator.py).
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": "a held-out split of the samples",
}


def _budget(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = LLMLExRegressor().time_budget
    ap.add_argument(
        "--time-budget",
        type=_budget,
        default=default,
        help=f"the estimator's time_budget (default: its own, {default}; 'none': no clock)",
    )
    ap.add_argument("--top", type=int, default=10, help="slowest checks to list")
    args = ap.parse_args()

    rows: list[tuple[str, str, float]] = []
    t0 = time.perf_counter()
    last = [t0]

    def record(*, check_name: str, status: str, **_: object) -> None:
        now = time.perf_counter()
        rows.append((check_name, status, now - last[0]))
        print(f"{now - last[0]:8.1f} s  {status:8s} {check_name}", flush=True)
        last[0] = now

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(
            LLMLExRegressor(random_state=0, time_budget=args.time_budget),
            expected_failed_checks=EXPECTED_FAILURES,
            on_fail=None,
            callback=record,
        )
    total = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for _, status, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    print()
    print(f"time_budget {args.time_budget}: {len(rows)} checks in {total:.0f} s")
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print(f"slowest {args.top}:")
    for name, status, dt in sorted(rows, key=lambda r: -r[2])[: args.top]:
        print(f"  {dt:7.1f} s  {status:8s} {name}")


if __name__ == "__main__":
    main()
