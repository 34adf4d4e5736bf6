//! The paper venue's book: per-order state, per-instrument market state and
//! the timer queue. Plain data; the rules that change it live in `sim.rs`
//! and `matching.rs`.

use super::types::{Protection, Validity, VenueStatus, VenueUpdate};
use crate::oco::OrderType;
use crate::price::Price;
use crate::side::Side;
use std::cmp::Ordering;

/// The last quote seen for an instrument, paise.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastQuote {
    pub ts_ns: i64,
    pub last: i64,
    pub bid: Option<i64>,
    pub ask: Option<i64>,
    pub volume: u64,
}

/// One instrument's market: its last quote and its working orders
/// (acknowledged, not terminal), in acknowledgement order.
#[derive(Debug, Default)]
pub(super) struct Market {
    pub last: Option<LastQuote>,
    pub working: Vec<u32>,
}

/// Simulator state of one order (never leaves the venue; `snap` is what the
/// outside sees).
#[derive(Debug)]
pub(super) struct SimOrder {
    /// Index of the instrument; None only for an order rejected as unknown.
    pub inst: Option<u32>,
    pub side: Side,
    pub validity: Validity,
    pub protection: Protection,
    pub status: VenueStatus,
    pub order_type: OrderType,
    pub qty: u64,
    pub price: Option<i64>,
    pub trigger: Option<i64>,
    pub filled: u64,
    /// Sum of fill quantity x fill price, paise.
    pub value: i64,
    /// Trades as a market order: MARKET, or an SL-M that triggered.
    pub is_market: bool,
    /// Market-protection limit (paise) of a market order, once known.
    pub cap: Option<i64>,
    pub triggered: bool,
    /// Has the order had its first look at the market (since arrival,
    /// trigger or modification)? Before it, prints do not count.
    pub arrived: bool,
    /// The earliest tick time that may fill or trigger the order.
    pub eligible_ns: i64,
    pub modifications: u32,
    pub cancel_requested: bool,
    /// When the order leaves its client, as the rate limit counts it (None:
    /// refused for the rate, so not counted).
    pub counted_ns: Option<i64>,
    /// Sequence of the acknowledgement timer in force: one set before the
    /// order was rescheduled fires as a no-op.
    pub ack_seq: u64,
    /// Generation of the no-tick timer: an older one fires as a no-op.
    pub quiet_gen: u32,
    pub message: Option<String>,
    /// The latest update (or, before the first, the accepted request).
    pub snap: VenueUpdate,
}

impl SimOrder {
    pub fn is_buy(&self) -> bool {
        self.side == Side::Buy
    }

    pub fn remaining(&self) -> u64 {
        self.qty.saturating_sub(self.filled)
    }

    /// The order as an update at `ts_ns` (fill and flags describe this update).
    pub fn update(
        &self,
        ts_ns: i64,
        order_id: u64,
        fill: Option<(u64, i64)>,
        triggered: bool,
        modified: bool,
    ) -> VenueUpdate {
        let (last_fill_qty, last_fill_price) = fill.unwrap_or((0, 0));
        VenueUpdate {
            ts_ns,
            order_id,
            client_order_id: self.snap.client_order_id.clone(),
            status: self.status,
            filled_qty: self.filled,
            avg_price: Price::from_paise(average(self.value, self.filled)),
            filled_value: self.value,
            last_fill_qty,
            last_fill_price: Price::from_paise(last_fill_price),
            triggered,
            modified,
            qty: self.qty,
            price: self.price.map(Price::from_paise),
            trigger: self.trigger.map(Price::from_paise),
            order_type: self.order_type,
            protection_price: self.cap.filter(|_| self.is_market).map(Price::from_paise),
            message: self.message.clone(),
        }
    }
}

/// `value / qty` to the nearest paisa, a half rounding up (0 when nothing filled).
fn average(value: i64, qty: u64) -> i64 {
    let q = i128::from(qty);
    if q == 0 {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation)] // an average lies between fill prices
    let avg = (2 * i128::from(value) + q).div_euclid(2 * q) as i64;
    avg
}

/// A modification on its way to the exchange: the order's new fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Change {
    pub qty: u64,
    pub order_type: OrderType,
    pub price: Option<i64>,
    pub trigger: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum TimerKind {
    /// The request reaches the exchange: OPEN / TRIGGER PENDING.
    Ack,
    /// No tick (or, for MARKET, no progress) for `no_tick_wait_ns`.
    Quiet(u32),
    Modify(Change),
    Cancel,
}

/// A timer, fired in (due, seq) order: seq is the order timers were set in,
/// so two timers due at the same nanosecond fire first-set first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timer {
    pub due: i64,
    pub seq: u64,
    pub order: u32,
    pub kind: TimerKind,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest timer must pop first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BinaryHeap;

    #[test]
    fn average_rounds_half_up() {
        assert_eq!(average(0, 0), 0);
        assert_eq!(average(3_001_000, 300), 10_003); // 10,003.33 -> 10,003
        assert_eq!(average(20_011, 2), 10_006); // 10,005.5 -> 10,006
    }

    #[test]
    fn timers_pop_by_due_then_seq() {
        let t = |due, seq| Timer {
            due,
            seq,
            order: 0,
            kind: TimerKind::Ack,
        };
        let mut heap: BinaryHeap<Timer> = [t(5, 3), t(5, 1), t(2, 9), t(7, 0)].into();
        let order: Vec<(i64, u64)> =
            std::iter::from_fn(|| heap.pop().map(|x| (x.due, x.seq))).collect();
        assert_eq!(order, vec![(2, 9), (5, 1), (5, 3), (7, 0)]);
    }
}
