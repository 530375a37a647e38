"""Quality gates for pipelines: `--min quality=0.8 --max rule_violations=0` pass or fail a run.

A gate names a key of `EvaluationReport.scores`; a name the schema can never produce is bad input
(exit 2), a missed gate exits 1 with every failing score on one line.
"""

from __future__ import annotations

import difflib
import math

from shopgen.errors import ShopgenError


class GatesFailed(ShopgenError):
    """A score missed its `--min` / `--max` gate; the message lists every failing score."""

    exit_code = 1


def check_names(gates: dict[str, float], valid: list[str], option: str = "--min") -> None:
    """Raise (exit 2) on a gate naming no score; the one-line message lists the valid names."""
    for name in gates:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ShopgenError(f"{option} names unknown score {name!r}{hint}; valid names: {', '.join(valid)}")


def _num(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:.0f}"


def missed(scores: dict[str, float], minimum: dict[str, float], maximum: dict[str, float]) -> list[str]:
    """Each missed gate as 'quality 0.71 < 0.8'; a score that could not be computed misses its gate."""
    out = []
    for gates, bad, sign, need in ((minimum, lambda s, g: s < g, "<", ">="), (maximum, lambda s, g: s > g, ">", "<=")):
        for name, gate in gates.items():
            score = scores.get(name, math.nan)
            if score is None or not math.isfinite(score):
                out.append(f"{name} not computable for this data (needs {need} {_num(gate)})")
            elif bad(score, gate):
                out.append(f"{name} {_num(score)} {sign} {_num(gate)}")
    return out
