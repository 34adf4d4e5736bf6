//! One order of a bracket, as the machine knows it.
//!
//! Quantities are the order's *total* quantity (filled part included), as
//! Kite reports and modifies them. Fills are cumulative and only ever grow:
//! a stale update with a lower `filled` changes nothing.

use super::command::{ExitReason, OrderType};
use crate::ids::OrderTag;
use crate::price::Price;
use crate::side::Side;
use serde::{Deserialize, Serialize};

/// What an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Entry,
    Stop,
    TakeProfit,
    /// Market order that closes (part of) the position.
    Exit,
    /// Market order in the entry direction that undoes an overfill
    /// (both siblings filled because a cancel lost the race).
    Corrective,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Entry => "ENTRY",
            Role::Stop => "STOP",
            Role::TakeProfit => "TAKE_PROFIT",
            Role::Exit => "EXIT",
            Role::Corrective => "CORRECTIVE",
        }
    }

    /// Market orders (exits and correctives) are never cancelled by the machine.
    pub const fn is_market(self) -> bool {
        matches!(self, Role::Exit | Role::Corrective)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LegStatus {
    /// Place command issued, no broker message yet.
    Sent,
    /// The broker has it (open, trigger pending, or partially filled).
    Working,
    Filled,
    /// Cancelled or expired (possibly after a partial fill).
    Cancelled,
    Rejected,
}

impl LegStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            LegStatus::Sent => "SENT",
            LegStatus::Working => "WORKING",
            LegStatus::Filled => "FILLED",
            LegStatus::Cancelled => "CANCELLED",
            LegStatus::Rejected => "REJECTED",
        }
    }

    pub const fn is_live(self) -> bool {
        matches!(self, LegStatus::Sent | LegStatus::Working)
    }
}

/// A modification sent and not yet answered. Each carries the full desired
/// order (quantity, price, trigger), so the newest one is what was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingModify {
    pub seq: u32,
    pub qty: u64,
    pub price: Option<Price>,
    pub trigger: Option<Price>,
    /// A new order type (None keeps it).
    pub order_type: Option<OrderType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub tag: OrderTag,
    pub client_order_id: String,
    pub role: Role,
    pub side: Side,
    pub order_type: OrderType,
    /// Total quantity the broker has confirmed (as placed or last acked modify).
    pub qty: u64,
    /// Largest quantity ever asked for: no honest fill report exceeds it.
    pub max_qty: u64,
    pub price: Option<Price>,
    pub trigger: Option<Price>,
    pub filled: u64,
    /// Cumulative average fill price (paise, as reported).
    pub avg_price: Price,
    pub status: LegStatus,
    /// The machine asked to cancel it (so its commanded remainder is zero).
    pub cancel_sent: bool,
    /// Exchange time (the `now_ns` of the event) at which the machine first
    /// asked to cancel it: a fill at the venue before this plus the order
    /// latency raced the cancel (see `Bracket::fill_raced_cancel`).
    pub cancel_sent_ns: Option<i64>,
    /// Stops: the time the bracket first learnt that its trigger was hit
    /// (`ChildTriggered`, or a fill). Arms the triggered-stop watchdog.
    pub triggered_ns: Option<i64>,
    /// Stops: the watchdog stopped waiting for this triggered stop's cancel,
    /// so its remainder no longer counts as covering the position (the
    /// position exits at market; should the stop still fill, the overfill is
    /// bought back).
    pub abandoned: bool,
    /// The broker refused our cancel because the order had filled; its fill
    /// report is still to come.
    pub cancel_refused_filled: bool,
    pub pending: Vec<PendingModify>,
    /// Modifications sent so far; also the seq of the newest.
    pub modifications: u32,
    /// Highest modification seq the broker confirmed.
    pub applied_seq: u32,
    /// Why this order exits (None for the entry).
    pub reason: Option<ExitReason>,
}

impl Leg {
    pub fn is_live(&self) -> bool {
        self.status.is_live()
    }

    /// The quantity last asked for (newest pending modification, else confirmed).
    pub fn wanted_qty(&self) -> u64 {
        self.pending.last().map_or(self.qty, |p| p.qty)
    }

    pub fn wanted_trigger(&self) -> Option<Price> {
        self.pending.last().map_or(self.trigger, |p| p.trigger)
    }

    /// What the machine currently commands the broker to still execute: zero
    /// once dead or once a cancel was sent.
    pub fn commanded_remaining(&self) -> u64 {
        if !self.is_live() || self.cancel_sent {
            0
        } else {
            self.wanted_qty().saturating_sub(self.filled)
        }
    }

    /// What this live order can be relied on to still execute whatever the
    /// outcome of in-flight modifications (the smaller of confirmed and asked).
    pub fn assured_remaining(&self) -> u64 {
        if !self.is_live() {
            0
        } else {
            self.qty.min(self.wanted_qty()).saturating_sub(self.filled)
        }
    }

    /// Cumulative fill value in paise.
    pub fn notional(&self) -> i128 {
        i128::from(self.avg_price.paise()) * i128::from(self.filled)
    }
}
