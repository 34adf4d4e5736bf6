//! What crosses between the kernel and a venue: order requests and
//! modifications in, Kite-shaped order updates out. Prices are paise.

use crate::oco::OrderType;
use crate::price::Price;
use crate::side::Side;

/// Kite validity: DAY, or IOC (fill what you can at once, cancel the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    Day,
    Ioc,
}

/// Market protection of a MARKET / SL-M order (Kite since April 2026):
/// a percentage band, or Kite's automatic band (`-1` on the wire).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protection {
    None,
    Auto,
    Pct(f64),
}

/// A new order as the kernel hands it to a venue.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueOrder {
    /// Deterministic client order id (`plan_id:TAG`).
    pub client_order_id: String,
    /// Broker tag (at most 20 alphanumerics).
    pub tag: String,
    pub token: u32,
    pub side: Side,
    pub qty: u64,
    pub order_type: OrderType,
    /// LIMIT / SL limit price.
    pub price: Option<Price>,
    /// SL / SL-M trigger.
    pub trigger: Option<Price>,
    pub validity: Validity,
    pub protection: Protection,
}

/// A modification: the fields to change (None keeps the current value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VenueModify {
    pub qty: Option<u64>,
    pub price: Option<Price>,
    pub trigger: Option<Price>,
    /// SL-M -> MARKET (flatten turns a stop into an exit with one modify).
    pub order_type: Option<OrderType>,
}

/// Kite's order statuses (interim states folded into these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VenueStatus {
    /// Received, not yet acknowledged by the exchange ("OPEN PENDING").
    Pending,
    Open,
    TriggerPending,
    Complete,
    Cancelled,
    Rejected,
}

impl VenueStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            VenueStatus::Pending => "OPEN PENDING",
            VenueStatus::Open => "OPEN",
            VenueStatus::TriggerPending => "TRIGGER PENDING",
            VenueStatus::Complete => "COMPLETE",
            VenueStatus::Cancelled => "CANCELLED",
            VenueStatus::Rejected => "REJECTED",
        }
    }

    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            VenueStatus::Complete | VenueStatus::Cancelled | VenueStatus::Rejected
        )
    }
}

/// What happened to an order, stamped with the exchange time it happened at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueUpdate {
    pub ts_ns: i64,
    /// Venue order id (deterministic: counts up from the configured start).
    pub order_id: u64,
    pub client_order_id: String,
    pub status: VenueStatus,
    /// Cumulative filled quantity and average price.
    pub filled_qty: u64,
    /// Average fill price, rounded to the nearest paisa (half up); the exact
    /// figure is `filled_value / filled_qty`.
    pub avg_price: Price,
    /// Sum of fill quantity x fill price, paise, exact (the contract note's turnover).
    pub filled_value: i64,
    /// The execution this update reports (0 / ZERO when it reports none).
    pub last_fill_qty: u64,
    pub last_fill_price: Price,
    /// A stop's trigger was hit by this update (TRIGGER PENDING -> OPEN).
    pub triggered: bool,
    /// This update reports a modification taking effect at the exchange.
    pub modified: bool,
    /// The current order fields after any modification.
    pub qty: u64,
    pub price: Option<Price>,
    pub trigger: Option<Price>,
    pub order_type: OrderType,
    /// The market-protection limit of a MARKET order (or a triggered SL-M):
    /// it never fills beyond this price.
    pub protection_price: Option<Price>,
    /// Kite-like rejection / cancellation message.
    pub message: Option<String>,
}

/// A synchronous refusal of modify/cancel (Kite answers these with an
/// InputException at once, e.g. on a terminal order or the 26th modification).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    #[error("unknown order {0}")]
    UnknownOrder(u64),
    #[error("{0}")]
    Refused(String),
    #[error("venue config: {0}")]
    Config(String),
}

/// One quote as the venue matches it: the last trade and the touch, paise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub token: u32,
    pub ts_ns: i64,
    pub last: Price,
    /// Best bid / ask; None when that side is empty.
    pub bid: Option<Price>,
    pub ask: Option<Price>,
    /// Cumulative day volume (0 unknown) and last trade quantity.
    pub volume: u64,
    pub last_qty: u64,
}
