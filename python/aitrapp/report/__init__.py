"""Daily report, burn-in check and LIVE gate, all judged from the database.

- :mod:`aitrapp.report.data`: :func:`load_daily_report` -> :class:`DailyReport`;
- :mod:`aitrapp.report.render_terminal` / :mod:`aitrapp.report.render_html`
  (imports matplotlib: import it only when writing files);
- :mod:`aitrapp.report.burnin`: :func:`check_session` -> :class:`Verdict`;
- :mod:`aitrapp.report.live_gate`: :func:`evaluate_live_gate` -> :class:`GateDecision`.
"""

from aitrapp.report.burnin import (
    BurninCriteria,
    CriterionResult,
    Verdict,
    check_session,
    evaluate_session,
    load_criteria,
    store_verdict,
)
from aitrapp.report.data import DailyReport, load_daily_report
from aitrapp.report.errors import ReportError
from aitrapp.report.live_gate import (
    GateDecision,
    LiveGateConfig,
    VerifyCredentials,
    evaluate_live_gate,
    load_gate_config,
)

__all__ = [
    "BurninCriteria",
    "CriterionResult",
    "DailyReport",
    "GateDecision",
    "LiveGateConfig",
    "ReportError",
    "Verdict",
    "VerifyCredentials",
    "check_session",
    "evaluate_live_gate",
    "evaluate_session",
    "load_criteria",
    "load_daily_report",
    "load_gate_config",
    "store_verdict",
]
