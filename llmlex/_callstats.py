"""The reference library's per-stage call counters, :class:`APICallStats`, fed from a run.

Code written for the reference passes ``stats=APICallStats()`` to ``single_call`` and
prints it; llmlex counts the same things in :class:`~llmlex.genetic.RunStats`
(``run.stats``), and :meth:`APICallStats.add_run` carries those counts over.  The
stages map as: ``api`` -> ``api_call``, ``extraction`` -> ``ansatz_extraction``,
``parsing`` -> ``function_conversion``, ``fitting`` -> ``curve_fitting``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["APICallStats"]

#: The reference's stage names, and the llmlex stage each one counts.
STAGE_NAMES = {
    "api_call": "api",
    "ansatz_extraction": "extraction",
    "function_conversion": "parsing",
    "curve_fitting": "fitting",
}
#: The error type a failure at each llmlex stage is counted under (llmlex keeps the
#: messages, not a classification, so one type per stage).
_ERROR_TYPE = {
    "api": "api_connection",
    "extraction": "no_parameters",
    "parsing": "syntax_error",
    "fitting": "numerical_error",
}
_CATEGORIES = {
    "API Errors": ("rate_limit", "api_connection", "timeout"),
    "Extraction Errors": ("no_parameters", "invalid_response", "empty_response", "llm_refusal"),
    "Function Errors": ("syntax_error", "name_error", "type_error"),
    "Fitting Errors": ("convergence_error", "singular_matrix", "numerical_error"),
    "Other": ("other",),
}


class APICallStats:
    """Success and failure counts of proposal calls, by stage and error type.

    The attributes and methods of the reference library's class of the same name:
    ``success_count``, ``stages`` (``{stage: {"success": n, "failure": n}}``),
    ``error_types``, ``validation_issues``, ``fitting_warnings``; ``str()`` is its
    "API Call Statistics" report.
    """

    def __init__(self) -> None:
        self.success_count = 0
        self.stages: dict[str, dict[str, int]] = {
            name: {"success": 0, "failure": 0} for name in STAGE_NAMES
        }
        self.error_types: dict[str, int] = {t: 0 for ts in _CATEGORIES.values() for t in ts}
        self.validation_issues: dict[str, int] = dict.fromkeys(
            (
                "scalar_output",
                "shape_mismatch",
                "nan_values",
                "inf_values",
                "evaluation_error",
                "other_validation",
            ),
            0,
        )
        self.fitting_warnings: dict[str, int] = dict.fromkeys(
            (
                "invalid_sqrt",
                "covariance_estimation",
                "other_warnings",
                "invalid_log",
                "invalid_power",
            ),
            0,
        )
        self.validation_details: dict[str, list[Any]] = {}

    def add_success(self) -> None:
        """Count one call that gave a fitted ansatz."""
        self.success_count += 1

    def stage_success(self, stage: str) -> None:
        """Count a success at ``stage`` (one of :attr:`stages`)."""
        if stage in self.stages:
            self.stages[stage]["success"] += 1

    def stage_failure(self, stage: str, error: Any = None, error_type: str | None = None) -> None:
        """Count a failure at ``stage``, under ``error_type`` (``"other"`` if unknown)."""
        if stage in self.stages:
            self.stages[stage]["failure"] += 1
        key = error_type if error_type in self.error_types else "other"
        self.error_types[key] += 1

    def add_validation_issue(self, issue_type: str, details: Any = None) -> None:
        """Count a validation issue (``"other_validation"`` if the type is unknown)."""
        key = issue_type if issue_type in self.validation_issues else "other_validation"
        self.validation_issues[key] += 1
        if details:
            self.validation_details.setdefault(key, []).append(details)

    def add_fitting_warning(self, warning_type: str, details: Any = None) -> None:
        """Count a fitting warning (a new type gets its own counter)."""
        self.fitting_warnings[warning_type] = self.fitting_warnings.get(warning_type, 0) + 1

    def add_run(self, stats: Any) -> None:
        """Add the counts of a :class:`~llmlex.genetic.RunStats` (see the module)."""
        lost = {stage: int(n) for stage, n in dict(stats.failures).items()}
        calls, proposals = int(stats.calls), int(stats.proposals)
        passed = {
            "api": calls - lost.get("api", 0),
            "extraction": calls - lost.get("api", 0) - lost.get("extraction", 0),
            "parsing": proposals - lost.get("parsing", 0),
            "fitting": int(stats.fits),
        }
        for name, stage in STAGE_NAMES.items():
            self.stages[name]["success"] += max(passed[stage], 0)
            self.stages[name]["failure"] += lost.get(stage, 0)
            self.error_types[_ERROR_TYPE[stage]] += lost.get(stage, 0)
        self.success_count += int(stats.fits)

    def total_failures(self) -> int:
        """Failures of every type."""
        return sum(self.error_types.values())

    def total_validation_issues(self) -> int:
        """Validation issues of every type."""
        return sum(self.validation_issues.values())

    def total_fitting_warnings(self) -> int:
        """Fitting warnings of every type."""
        return sum(self.fitting_warnings.values())

    def get_stage_stats(self, stage: str) -> dict[str, float] | None:
        """``{"success", "failure", "total", "success_rate"}`` of a stage (rate in %)."""
        if stage not in self.stages:
            return None
        s = self.stages[stage]
        total = s["success"] + s["failure"]
        rate = 100.0 * s["success"] / total if total else 0.0
        return {
            "success": s["success"],
            "failure": s["failure"],
            "total": total,
            "success_rate": rate,
        }

    def __repr__(self) -> str:
        return f"APICallStats(success_count={self.success_count}, failures={self.total_failures()})"

    def __str__(self) -> str:
        total = self.success_count + self.total_failures()
        rate = 100.0 * self.success_count / total if total else 0.0
        lines = [
            "API Call Statistics:",
            f"  Successful calls (end-to-end): {self.success_count}",
            f"  Failed calls: {self.total_failures()}",
            f"  Success rate: {rate:.2f}%",
            "",
            "Breakdown by processing stage:",
        ]
        for name, s in self.stages.items():
            n = s["success"] + s["failure"]
            if n:
                lines.append(
                    f"  {name.replace('_', ' ').title()}: {s['success']} succeeded, "
                    f"{s['failure']} failed ({100.0 * s['success'] / n:.2f}% success)"
                )
        lines += ["", "Error types:"]
        errors = []
        for category, types in _CATEGORIES.items():
            found = [(t, self.error_types[t]) for t in types if self.error_types[t]]
            if found:
                errors.append(f"  {category}:")
                errors += [f"    - {t.replace('_', ' ')}: {n}" for t, n in found]
        lines += errors or ["  No errors"]
        for title, table in (
            ("Validation issues", self.validation_issues),
            ("Fitting warnings", self.fitting_warnings),
        ):
            if any(table.values()):
                lines += ["", f"{title}:"]
                lines += [f"  - {k.replace('_', ' ')}: {n}" for k, n in table.items() if n]
        return "\n".join(lines)
