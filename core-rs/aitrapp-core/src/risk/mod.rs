//! Pre-trade risk: the portfolio the engine knows about, the sizing rule and
//! the gate that turns a signal into a sized plan or a [`RiskBlock`].

mod daily;
mod gate;
mod portfolio;
mod sizing;

pub use daily::{leg_charges_paise, ChargeRates, DailyPnl};
pub use gate::{evaluate, Approved, BlockReason, Detail, GateInput, RiskBlock};
pub use portfolio::{OpenBracket, Portfolio, PortfolioError, TradingState};
pub use sizing::{
    distance_bps, heat_pct, heat_within, notional_cap_qty, risk_budget_paise, size_qty,
    stop_too_tight, within_pct, StopFloor,
};
