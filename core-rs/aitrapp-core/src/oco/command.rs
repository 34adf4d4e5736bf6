//! What the machine asks the execution layer to do, and what it reports.
//!
//! Executing a command is idempotent by construction: a placement carries its
//! deterministic `client_order_id` (the execution layer dedupes on it), and
//! modify/cancel name orders by that id.

use super::leg::Role;
use crate::ids::OrderTag;
use crate::price::Price;
use crate::side::Side;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Kite order types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    #[serde(rename = "MARKET")]
    Market,
    #[serde(rename = "LIMIT")]
    Limit,
    /// Stop-limit.
    #[serde(rename = "SL")]
    Sl,
    /// Stop-market.
    #[serde(rename = "SL-M")]
    SlM,
}

impl OrderType {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::Sl => "SL",
            OrderType::SlM => "SL-M",
        }
    }
}

/// Why quantity left the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExitReason {
    Stop,
    Tp,
    Tp1,
    Tp2,
    /// Time stop: N minutes after the entry filled.
    Time,
    /// End-of-day square-off.
    Eod,
    Flatten,
    /// Buying back (selling back) an overfill after both siblings filled.
    Corrective,
    /// The stop was rejected, cancelled by someone else, or could not be resized.
    Unprotected,
    /// The entry timed out and a fill arrived after its cancel.
    EntryTimeout,
    /// A stop-out at market: the last price had already passed the stop
    /// trigger when the stop was to be placed or resized (the exchange
    /// would have rejected it).
    StopGapped,
}

impl ExitReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExitReason::Stop => "STOP",
            ExitReason::Tp => "TP",
            ExitReason::Tp1 => "TP1",
            ExitReason::Tp2 => "TP2",
            ExitReason::Time => "TIME",
            ExitReason::Eod => "EOD",
            ExitReason::Flatten => "FLATTEN",
            ExitReason::Corrective => "CORRECTIVE",
            ExitReason::Unprotected => "UNPROTECTED",
            ExitReason::EntryTimeout => "ENTRY_TIMEOUT",
            ExitReason::StopGapped => "STOP_GAPPED",
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// Stable alert codes (for metrics and runbooks); the message has the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertCode {
    EntryRejected,
    EntryCancelledExternally,
    StopLost,
    StopModifyRejected,
    TakeProfitLost,
    ModificationBudget,
    DoubleFill,
    ExitRejected,
    ExitIdsExhausted,
    LateFill,
    /// An order believed rejected turned out to be working; it is being cancelled.
    ZombieOrder,
    /// The market had passed the stop trigger before the stop could be sent;
    /// the position exits at market (WARNING: the plan's stop-out, only worse).
    StopGapped,
    /// A triggered stop was not completely filled in time; it is cancelled
    /// and the position exits at market (WARNING).
    StopFillTimeout,
    /// A triggered stop still has not exited the position a second timeout
    /// later; exiting at market without waiting for its cancel (CRITICAL).
    StopUnfilled,
    /// An adopted bracket's stop was not working at the broker (lost while
    /// no process watched); it is placed again under a new id (WARNING).
    StopReplaced,
    /// An adopted bracket's final target was not working at the broker; it
    /// is placed again under a new id, TARGETn (WARNING).
    TargetReplaced,
}

impl AlertCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertCode::EntryRejected => "ENTRY_REJECTED",
            AlertCode::EntryCancelledExternally => "ENTRY_CANCELLED_EXTERNALLY",
            AlertCode::StopLost => "STOP_LOST",
            AlertCode::StopModifyRejected => "STOP_MODIFY_REJECTED",
            AlertCode::TakeProfitLost => "TAKE_PROFIT_LOST",
            AlertCode::ModificationBudget => "MODIFICATION_BUDGET",
            AlertCode::DoubleFill => "DOUBLE_FILL",
            AlertCode::ExitRejected => "EXIT_REJECTED",
            AlertCode::ExitIdsExhausted => "EXIT_IDS_EXHAUSTED",
            AlertCode::LateFill => "LATE_FILL",
            AlertCode::ZombieOrder => "ZOMBIE_ORDER",
            AlertCode::StopGapped => "STOP_GAPPED",
            AlertCode::StopFillTimeout => "STOP_FILL_TIMEOUT",
            AlertCode::StopUnfilled => "STOP_UNFILLED",
            AlertCode::StopReplaced => "STOP_REPLACED",
            AlertCode::TargetReplaced => "TARGET_REPLACED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub severity: Severity,
    pub code: AlertCode,
    pub reason: String,
}

/// A new order. Prices are on the instrument's tick grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub client_order_id: String,
    pub tag: OrderTag,
    pub role: Role,
    pub side: Side,
    pub qty: u64,
    pub order_type: OrderType,
    /// LIMIT price, or the limit of an SL.
    pub price: Option<Price>,
    /// Trigger of SL / SL-M.
    pub trigger: Option<Price>,
    pub reason: Option<ExitReason>,
}

/// The full desired state of a working order. `qty` is the new *total*
/// quantity, already-filled part included, as Kite's modify expects.
/// Answer with `ModifyAck` / `ModifyRejected` carrying `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyOrder {
    pub client_order_id: String,
    pub tag: OrderTag,
    pub seq: u32,
    pub qty: u64,
    pub price: Option<Price>,
    pub trigger: Option<Price>,
    /// A new order type, or None to keep it: `Some(Market)` turns a stop
    /// into the bracket's market exit (flatten).
    pub order_type: Option<OrderType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Place the entry, the stop or a take-profit.
    PlaceOrder(NewOrder),
    /// Place a market exit (or a corrective market order).
    ExitAtMarket(NewOrder),
    /// Resize a child and/or move its trigger.
    Modify(ModifyOrder),
    Cancel {
        client_order_id: String,
        tag: OrderTag,
    },
    Alert(Alert),
}

impl Command {
    pub const fn kind(&self) -> &'static str {
        match self {
            Command::PlaceOrder(_) => "PLACE_ORDER",
            Command::ExitAtMarket(_) => "EXIT_AT_MARKET",
            Command::Modify(_) => "MODIFY",
            Command::Cancel { .. } => "CANCEL",
            Command::Alert(_) => "ALERT",
        }
    }
}

/// A fill the bracket has just learnt of (the increase over what it knew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillReport {
    pub client_order_id: String,
    pub tag: OrderTag,
    pub role: Role,
    pub side: Side,
    /// Newly filled quantity.
    pub qty: u64,
    /// Value of the new quantity in paise (from the cumulative averages).
    pub notional_paise: i64,
    pub cum_filled: u64,
    pub avg_price: Price,
    /// Why it exits; `None` for the entry.
    pub reason: Option<ExitReason>,
}
