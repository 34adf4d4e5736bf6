//! The pre-trade gate. Checks run in a fixed order and the first failure is
//! the answer, with the numbers that caused it:
//!
//! trading state -> market hours -> daily loss (net of charges) -> max open positions ->
//! max trades per day -> one open bracket per instrument -> cooldown ->
//! stop distance (the largest of a floor in bps, a multiple of the spread
//! and the slippage of both legs) -> sizing (whole lots within the risk budget, then
//! capped to the per-position notional limit) -> freeze quantity ->
//! portfolio heat -> gross exposure.

use super::daily::DailyPnl;
use super::portfolio::{Portfolio, TradingState};
use super::sizing::{
    distance_bps, heat_pct, heat_within, notional_cap_qty, risk_budget_paise, size_qty, within_pct,
    StopFloor,
};
use crate::config::{FreezePolicy, RiskLimits, SessionTimes, PCT_SCALE};
use crate::instrument::Instrument;
use crate::price::Price;
use crate::side::Side;
use crate::strategies::Signal;
use crate::tick::{IstTime, NS_PER_SEC};

/// Why a signal did not become a plan. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// Stop/target on the wrong side of the entry: a strategy bug, never traded.
    InvalidSignal,
    TradingState,
    MarketHours,
    DailyLoss,
    MaxOpenPositions,
    MaxTrades,
    InstrumentBusy,
    Cooldown,
    /// |entry - stop| below the largest of `risk.min_stop_distance_bps` of
    /// the entry, `risk.min_stop_spread_multiple` spreads and the modelled
    /// slippage of both legs (2 x `risk.slippage_bps`).
    StopTooTight,
    SizeBelowLot,
    /// Not one lot fits `risk.max_position_notional_pct` of capital.
    NotionalLimit,
    FreezeQty,
    PortfolioHeat,
    /// Open notional plus the plan above `risk.max_gross_exposure_pct`.
    GrossExposure,
}

impl BlockReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockReason::InvalidSignal => "INVALID_SIGNAL",
            BlockReason::TradingState => "TRADING_STATE",
            BlockReason::MarketHours => "MARKET_HOURS",
            BlockReason::DailyLoss => "DAILY_LOSS",
            BlockReason::MaxOpenPositions => "MAX_OPEN_POSITIONS",
            BlockReason::MaxTrades => "MAX_TRADES",
            BlockReason::InstrumentBusy => "INSTRUMENT_BUSY",
            BlockReason::Cooldown => "COOLDOWN",
            BlockReason::StopTooTight => "STOP_TOO_TIGHT",
            BlockReason::SizeBelowLot => "SIZE_BELOW_LOT",
            BlockReason::NotionalLimit => "NOTIONAL_LIMIT",
            BlockReason::FreezeQty => "FREEZE_QTY",
            BlockReason::PortfolioHeat => "PORTFOLIO_HEAT",
            BlockReason::GrossExposure => "GROSS_EXPOSURE",
        }
    }
}

/// One number (or label) behind a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskBlock {
    pub reason: BlockReason,
    pub strategy: &'static str,
    pub token: u32,
    pub side: Side,
    /// The refused signal's prices, so a blocked signal is recorded as it was.
    pub entry: Price,
    pub stop: Price,
    pub tp: Price,
    pub signal_ts: i64,
    pub details: Vec<(&'static str, Detail)>,
}

impl RiskBlock {
    pub fn detail(&self, key: &str) -> Option<&Detail> {
        self.details.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// A plan that passed every check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Approved {
    pub qty: u64,
    pub risk_per_unit_paise: i64,
    pub risk_paise: i64,
    pub heat_after_paise: i128,
    /// entry x qty of this plan.
    pub notional_paise: i128,
    /// Gross exposure of the book with this plan.
    pub gross_after_paise: i128,
    /// The risk-sized quantity was cut to the per-position notional limit.
    pub capped_by_notional: bool,
    pub capped_by_freeze: bool,
}

pub struct GateInput<'a> {
    pub signal: &'a Signal,
    pub instrument: &'a Instrument,
    pub slot: usize,
    pub state: TradingState,
    /// IST clock of the tick that produced the signal.
    pub ist: IstTime,
    /// Ask - bid of that tick, when it had both sides.
    pub spread: Option<Price>,
}

#[allow(clippy::cast_precision_loss)]
fn rupees(paise: i64) -> Detail {
    Detail::Float(paise as f64 / 100.0)
}

#[allow(clippy::cast_precision_loss)]
fn rupees_wide(paise: i128) -> Detail {
    Detail::Float(paise as f64 / 100.0)
}

#[allow(clippy::cast_precision_loss)]
fn pct(e6: i64) -> Detail {
    Detail::Float(e6 as f64 / PCT_SCALE as f64)
}

fn int(v: impl TryInto<i64>) -> Detail {
    Detail::Int(v.try_into().unwrap_or(i64::MAX))
}

fn clock(tod_ns: i64) -> Detail {
    let s = tod_ns / NS_PER_SEC;
    Detail::Text(format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60))
}

/// Runs the checks in order. `daily_pnl` (today's PnL as the daily-loss
/// stop counts it: net of charges, open positions marked and their closing
/// charges estimated) is asked for only when the daily-loss check is
/// reached. A breached daily loss latches the portfolio for the rest of the
/// IST day.
pub fn evaluate(
    limits: &RiskLimits,
    times: &SessionTimes,
    portfolio: &mut Portfolio,
    input: &GateInput<'_>,
    daily_pnl: impl FnOnce(&Portfolio) -> DailyPnl,
) -> Result<Approved, RiskBlock> {
    let sig = input.signal;
    let block = |reason: BlockReason, details: Vec<(&'static str, Detail)>| RiskBlock {
        reason,
        strategy: sig.strategy,
        token: sig.token,
        side: sig.side,
        entry: sig.entry,
        stop: sig.stop,
        tp: sig.tp,
        signal_ts: sig.signal_ts,
        details,
    };

    if !sig.is_well_formed() {
        return Err(block(
            BlockReason::InvalidSignal,
            vec![
                ("entry_rupees", rupees(sig.entry.paise())),
                ("stop_rupees", rupees(sig.stop.paise())),
                ("tp_rupees", rupees(sig.tp.paise())),
            ],
        ));
    }
    if input.state != TradingState::Active {
        return Err(block(
            BlockReason::TradingState,
            vec![("state", Detail::Text(input.state.as_str().into()))],
        ));
    }
    let tod = input.ist.tod_ns;
    if tod < times.entry_start_ns || tod >= times.entry_end_ns {
        return Err(block(
            BlockReason::MarketHours,
            vec![
                ("time_ist", clock(tod)),
                ("entry_start", clock(times.entry_start_ns)),
                ("entry_end", clock(times.entry_end_ns)),
            ],
        ));
    }
    let day = daily_pnl(portfolio);
    let capital = limits.capital;
    if day.breaches(limits) {
        portfolio.halt_for_daily_loss();
    }
    if portfolio.daily_loss_halted() {
        return Err(block(
            BlockReason::DailyLoss,
            vec![
                ("daily_pnl_rupees", rupees(day.net_paise())),
                ("realized_rupees", rupees(day.realized_paise)),
                ("charges_rupees", rupees(day.charges_paise)),
                ("unrealized_rupees", rupees(day.unrealized_paise)),
                ("close_charges_rupees", rupees(day.close_charges_paise)),
                ("limit_rupees", rupees(DailyPnl::limit_paise(limits))),
                ("daily_loss_stop_pct", pct(limits.daily_loss_e6)),
            ],
        ));
    }
    let open = portfolio.open_count();
    if open >= limits.max_open_positions as usize {
        return Err(block(
            BlockReason::MaxOpenPositions,
            vec![
                ("open_positions", int(open)),
                ("max_open_positions", int(limits.max_open_positions)),
            ],
        ));
    }
    if portfolio.trades_today() >= limits.max_trades_per_day {
        return Err(block(
            BlockReason::MaxTrades,
            vec![
                ("trades_today", int(portfolio.trades_today())),
                ("max_trades_per_day", int(limits.max_trades_per_day)),
            ],
        ));
    }
    if let Some(b) = portfolio.open_on_slot(input.slot) {
        return Err(block(
            BlockReason::InstrumentBusy,
            vec![
                ("open_plan_id", Detail::Text(b.plan_id.clone())),
                ("open_strategy", Detail::Text(b.strategy.into())),
            ],
        ));
    }
    if let Some(until) = portfolio.cooldown_until(input.slot) {
        if sig.signal_ts < until {
            return Err(block(
                BlockReason::Cooldown,
                vec![
                    ("cooldown_until_ns", int(until)),
                    ("remaining_ns", int(until - sig.signal_ts)),
                ],
            ));
        }
    }
    let inst = input.instrument;
    let entry = sig.entry.paise();
    let rpu = sig.entry.abs_diff(sig.stop).paise();
    let spread = input.spread.map(Price::paise);
    let (min_bps, slip, mult) = (
        limits.min_stop_distance_bps_e6,
        limits.slippage_bps_e6,
        limits.min_stop_spread_multiple_e6,
    );
    if StopFloor::too_tight(rpu, entry, spread, min_bps, slip, mult) {
        let (floor, rule) = StopFloor::of(entry, spread, min_bps, slip, mult);
        return Err(block(
            BlockReason::StopTooTight,
            vec![
                ("entry_rupees", rupees(entry)),
                ("stop_distance_rupees", rupees(rpu)),
                ("stop_distance_bps", Detail::Float(distance_bps(rpu, entry))),
                // bps and multiples are kept in millionths like percents: same conversion.
                ("min_stop_distance_bps", pct(min_bps)),
                ("slippage_bps", pct(slip)),
                ("spread_rupees", rupees(spread.unwrap_or(0))),
                ("min_stop_spread_multiple", pct(mult)),
                ("required_distance_rupees", Detail::Float(floor / 100.0)),
                ("binding_rule", Detail::Text(rule.key().into())),
            ],
        ));
    }
    let budget = risk_budget_paise(capital, limits.per_trade_risk_e6);
    let mut qty = size_qty(budget, rpu, inst.lot_size);
    if qty == 0 {
        return Err(block(
            BlockReason::SizeBelowLot,
            vec![
                ("risk_budget_rupees", rupees(budget)),
                ("risk_per_unit_rupees", rupees(rpu)),
                ("affordable_units", int(budget / rpu.max(1))),
                ("lot_size", int(inst.lot_size)),
            ],
        ));
    }
    // Same floor(capital x pct / 100) as the risk budget, on the notional limit.
    let max_notional = risk_budget_paise(capital, limits.max_position_notional_e6);
    let notional_qty = notional_cap_qty(max_notional, entry, inst.lot_size);
    if notional_qty == 0 {
        return Err(block(
            BlockReason::NotionalLimit,
            vec![
                ("entry_rupees", rupees(entry)),
                ("lot_size", int(inst.lot_size)),
                (
                    "lot_notional_rupees",
                    rupees_wide(i128::from(entry) * i128::from(inst.lot_size)),
                ),
                ("max_position_notional_rupees", rupees(max_notional)),
                (
                    "max_position_notional_pct",
                    pct(limits.max_position_notional_e6),
                ),
                ("risk_sized_qty", int(qty)),
            ],
        ));
    }
    let capped_by_notional = qty > notional_qty;
    if capped_by_notional {
        qty = notional_qty;
    }
    let max_order = u64::from(inst.max_order_qty());
    let mut capped_by_freeze = false;
    if qty > max_order {
        match limits.freeze_policy {
            FreezePolicy::Cap => {
                qty = max_order;
                capped_by_freeze = true;
            }
            FreezePolicy::Block => {
                return Err(block(
                    BlockReason::FreezeQty,
                    vec![
                        ("qty", int(qty)),
                        ("freeze_qty", int(inst.freeze_qty)),
                        ("max_order_qty", int(max_order)),
                    ],
                ))
            }
        }
    }
    let plan_heat = i128::from(rpu) * i128::from(qty);
    let heat_now = portfolio.heat_paise();
    let heat_after = heat_now + plan_heat;
    if !heat_within(heat_after, capital, limits.max_heat_e6) {
        return Err(block(
            BlockReason::PortfolioHeat,
            vec![
                ("heat_pct", Detail::Float(heat_pct(heat_now, capital))),
                ("plan_heat_pct", Detail::Float(heat_pct(plan_heat, capital))),
                (
                    "heat_after_pct",
                    Detail::Float(heat_pct(heat_after, capital)),
                ),
                ("max_portfolio_heat_pct", pct(limits.max_heat_e6)),
            ],
        ));
    }
    let notional = i128::from(entry) * i128::from(qty);
    let gross_now = portfolio.gross_exposure_paise();
    let gross_after = gross_now + notional;
    if !within_pct(gross_after, capital, limits.max_gross_exposure_e6) {
        return Err(block(
            BlockReason::GrossExposure,
            vec![
                ("gross_exposure_rupees", rupees_wide(gross_now)),
                ("plan_notional_rupees", rupees_wide(notional)),
                (
                    "gross_exposure_pct",
                    Detail::Float(heat_pct(gross_now, capital)),
                ),
                (
                    "plan_notional_pct",
                    Detail::Float(heat_pct(notional, capital)),
                ),
                (
                    "gross_after_pct",
                    Detail::Float(heat_pct(gross_after, capital)),
                ),
                ("max_gross_exposure_pct", pct(limits.max_gross_exposure_e6)),
            ],
        ));
    }
    Ok(Approved {
        qty,
        risk_per_unit_paise: rpu,
        risk_paise: i64::try_from(plan_heat).unwrap_or(i64::MAX),
        heat_after_paise: heat_after,
        notional_paise: notional,
        gross_after_paise: gross_after,
        capped_by_notional,
        capped_by_freeze,
    })
}
