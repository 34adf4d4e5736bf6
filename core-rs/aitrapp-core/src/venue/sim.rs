//! `SimVenue`: Kite's order behaviour simulated against the ticks (paper).
//!
//! PAPER must behave like LIVE as far as a simulator can, so that a burn-in
//! in PAPER means something. Updates are shaped like Kite's (OPEN, TRIGGER
//! PENDING, COMPLETE, CANCELLED, REJECTED; OPEN with a filled quantity is a
//! partial fill) and business rejects are REJECTED updates with Kite-like
//! messages, never errors. A modify or cancel that Kite would refuse at once
//! (terminal or unknown order, the 26th modification, an invalid field) is
//! an `Err`.
//!
//! Time is an argument (exchange nanoseconds). A request reaches the venue at
//! `now`; it is acknowledged `ack_latency_ns` later and may fill on ticks
//! from `fill_latency_ns` after that. Modifications and cancellations take
//! effect `ack_latency_ns` after their request. Every update is stamped with
//! the time of the tick or timer that caused it. Timers fire in (due, seq)
//! order; a tick first fires every timer due at or before it, then matches.
//!
//! Order lifecycle (status -> update):
//! ```text
//! request --ack--> OPEN | TRIGGER PENDING --trigger--> OPEN --fill--> COMPLETE
//! request --invalid or over the rate limit--> REJECTED (at once, with the reason)
//! OPEN / TRIGGER PENDING --cancel, IOC remainder or expiry--> CANCELLED
//! ```
//! Deterministic: no clock, no hash-order iteration; order ids count up from
//! `order_id_start`.

use super::book::{Change, Market, SimOrder, Timer, TimerKind};
use super::config::SimVenueConfig;
use super::rules::{bps_to_ppm, pct_to_ppm};
use super::types::{
    Protection, Quote, Validity, VenueError, VenueModify, VenueOrder, VenueStatus, VenueUpdate,
};
use super::validation::{
    check_new_order, check_prices, check_protection, check_quantity, is_priced, is_stop,
    parse_order_type, parse_product, parse_side, parse_validity, unknown_instrument, NewOrder,
    Product,
};
use crate::instrument::Instrument;
use crate::oco::OrderType;
use crate::price::Price;
use crate::side::Side;
use std::collections::{BinaryHeap, VecDeque};

const SECOND_NS: i64 = 1_000_000_000;

pub(super) const IOC_MESSAGE: &str =
    "IOC order cancelled by the exchange: the quantity could not be filled at once.";
pub(super) const EXPIRED_MESSAGE: &str = "Order expired at the end of the trading day.";

/// A new order as a client sent it through the broker API, enums still
/// spelt out: the venue checks the spellings, the symbol and the product the
/// way Kite does (the kernel hands typed [`VenueOrder`]s instead).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    pub client_order_id: String,
    pub tag: String,
    pub exchange: String,
    pub tradingsymbol: String,
    /// As sent: a token outside u32 is refused as an unknown instrument.
    pub token: i64,
    pub side: String,
    pub order_type: String,
    pub product: String,
    pub validity: String,
    pub qty: i64,
    pub price: Option<i64>,
    pub trigger: Option<i64>,
    pub protection: Protection,
}

/// What only a client request carries, for the checks.
struct Extra<'a> {
    raw_qty: i64,
    product: Product,
    bad_enum: Option<String>,
    named: Option<(&'a str, &'a str)>,
}

/// The paper venue. See the module docs.
#[derive(Debug)]
pub struct SimVenue {
    pub(super) cfg: SimVenueConfig,
    pub(super) slip_ppm: i64,
    pub(super) share_ppm: Option<i64>,
    pub(super) insts: Vec<Instrument>,
    /// (token, instrument index), sorted by token.
    by_token: Vec<(u32, u32)>,
    pub(super) markets: Vec<Market>,
    pub(super) orders: Vec<SimOrder>,
    timers: BinaryHeap<Timer>,
    timer_seq: u64,
    /// Acceptance times inside the current one-second window (rate limit).
    recent: VecDeque<i64>,
    /// The latest time the venue has seen (requests, ticks, timers).
    clock_ns: i64,
    /// The feed is over: timers fire at once (stamped with their own time).
    ended: bool,
    pub(super) bad_quotes: u64,
    /// Orders not yet terminal (pending, open, trigger pending).
    pub(super) live: usize,
    /// Orders below this index are all terminal (expiry starts here).
    first_live: usize,
    /// Reused per tick: the working orders of the instrument being matched.
    pub(super) scratch: Vec<u32>,
}

impl SimVenue {
    pub fn new(config: SimVenueConfig, instruments: &[Instrument]) -> Result<SimVenue, VenueError> {
        config.validate()?;
        let mut by_token = Vec::with_capacity(instruments.len());
        for (i, inst) in instruments.iter().enumerate() {
            inst.validate()
                .map_err(|e| VenueError::Config(format!("instruments[{i}]: {e}")))?;
            let idx =
                u32::try_from(i).map_err(|_| VenueError::Config("instruments: too many".into()))?;
            by_token.push((inst.instrument_token, idx));
        }
        by_token.sort_unstable();
        if let Some(w) = by_token.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(VenueError::Config(format!(
                "instruments: token {} is listed twice",
                w[0].0
            )));
        }
        Ok(SimVenue {
            slip_ppm: bps_to_ppm(config.slippage_bps),
            share_ppm: config.participation_pct.map(pct_to_ppm),
            cfg: config,
            insts: instruments.to_vec(),
            by_token,
            markets: instruments.iter().map(|_| Market::default()).collect(),
            orders: Vec::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            recent: VecDeque::new(),
            clock_ns: 0,
            ended: false,
            bad_quotes: 0,
            live: 0,
            first_live: 0,
            scratch: Vec::new(),
        })
    }

    pub fn config(&self) -> &SimVenueConfig {
        &self.cfg
    }

    /// A request reaching the venue's API at `now_ns`; returns the order id.
    /// A validation failure is a REJECTED update at `now_ns` in `out`;
    /// an accepted order is heard of at its acknowledgement timer.
    pub fn submit(&mut self, now_ns: i64, order: VenueOrder, out: &mut Vec<VenueUpdate>) -> u64 {
        let extra = Extra {
            raw_qty: i64::try_from(order.qty).unwrap_or(i64::MAX),
            product: Product::Mis,
            bad_enum: None,
            named: None,
        };
        self.place(now_ns, now_ns, now_ns, order, &extra, out)
    }

    /// As [`SimVenue::submit`], for an order its client sends at `send_ns`
    /// (paced under the rate limit): validated now, counted against the rate
    /// limit and acknowledged from `send_ns` on.
    pub fn submit_at(
        &mut self,
        now_ns: i64,
        send_ns: i64,
        order: VenueOrder,
        out: &mut Vec<VenueUpdate>,
    ) -> u64 {
        let extra = Extra {
            raw_qty: i64::try_from(order.qty).unwrap_or(i64::MAX),
            product: Product::Mis,
            bad_enum: None,
            named: None,
        };
        let send = send_ns.max(now_ns);
        self.place(now_ns, send, send, order, &extra, out)
    }

    /// A client request (the broker API): as [`SimVenue::submit`], with the
    /// enum spellings, symbol and product checked too. The order-rate limit
    /// counts on `rate_clock_ns` (the caller's clock for pacing).
    pub fn submit_request(
        &mut self,
        now_ns: i64,
        rate_clock_ns: i64,
        req: ClientRequest,
        out: &mut Vec<VenueUpdate>,
    ) -> u64 {
        let side = parse_side(&req.side);
        let order_type = parse_order_type(&req.order_type);
        let product = parse_product(&req.product);
        let validity = parse_validity(&req.validity);
        let bad_enum = [
            side.as_ref().err(),
            order_type.as_ref().err(),
            product.as_ref().err(),
            validity.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .next()
        .cloned();
        let token = u32::try_from(req.token);
        let named = (req.exchange.as_str(), req.tradingsymbol.as_str());
        // Kite checks the spellings first, then the instrument.
        let bad_enum = bad_enum.or_else(|| {
            token
                .is_err()
                .then(|| unknown_instrument(req.token, Some(named)))
        });
        let order = VenueOrder {
            client_order_id: req.client_order_id,
            tag: req.tag,
            token: token.unwrap_or(0),
            side: side.unwrap_or(Side::Buy),
            qty: u64::try_from(req.qty).unwrap_or(0),
            // An unparsable type is reported as MARKET; the message says why.
            order_type: order_type.unwrap_or(OrderType::Market),
            price: req.price.map(Price::from_paise),
            trigger: req.trigger.map(Price::from_paise),
            validity: validity.unwrap_or(Validity::Day),
            protection: req.protection,
        };
        let extra = Extra {
            raw_qty: req.qty,
            product: product.unwrap_or(Product::Mis),
            bad_enum,
            named: Some(named),
        };
        self.place(now_ns, rate_clock_ns, now_ns, order, &extra, out)
    }

    /// `send` is when the order leaves its client (its acknowledgement comes
    /// `ack_latency_ns` after); `rate_clock` the time the rate limit counts.
    fn place(
        &mut self,
        now: i64,
        rate_clock: i64,
        send: i64,
        order: VenueOrder,
        extra: &Extra<'_>,
        out: &mut Vec<VenueUpdate>,
    ) -> u64 {
        self.clock_ns = self.clock_ns.max(now);
        let idx = self.orders.len();
        let id = self.order_id(idx);
        let inst = self.inst_index(order.token);
        let ltp = inst.and_then(|i| self.markets[i as usize].last.map(|q| q.last));
        let rate = self.rate_limited(rate_clock);
        let counted_ns = rate.is_ok().then_some(rate_clock);
        let check = rate.and_then(|()| {
            let view = NewOrder {
                tag: &order.tag,
                token: order.token,
                side: order.side,
                qty: extra.raw_qty,
                order_type: order.order_type,
                price: order.price.map(Price::paise),
                trigger: order.trigger.map(Price::paise),
                protection: order.protection,
                product: extra.product,
                bad_enum: extra.bad_enum.as_deref(),
                named: extra.named,
            };
            check_new_order(&view, inst.map(|i| &self.insts[i as usize]), ltp)
        });
        let t = order.order_type;
        let accepted = check.is_ok();
        let snap = VenueUpdate {
            ts_ns: now,
            order_id: id,
            client_order_id: order.client_order_id,
            status: VenueStatus::Pending,
            filled_qty: 0,
            avg_price: Price::ZERO,
            filled_value: 0,
            last_fill_qty: 0,
            last_fill_price: Price::ZERO,
            triggered: false,
            modified: false,
            qty: order.qty,
            price: None,
            trigger: None,
            order_type: t,
            protection_price: None,
            message: None,
        };
        // A rejected order shows its prices as requested; an accepted one only
        // those its type uses.
        let price = order.price.map(Price::paise);
        let trigger = order.trigger.map(Price::paise);
        let mut o = SimOrder {
            inst,
            side: order.side,
            validity: order.validity,
            protection: order.protection,
            status: VenueStatus::Pending,
            order_type: t,
            qty: order.qty,
            price: if is_priced(t) || !accepted {
                price
            } else {
                None
            },
            trigger: if is_stop(t) || !accepted {
                trigger
            } else {
                None
            },
            filled: 0,
            value: 0,
            is_market: accepted && t == OrderType::Market,
            cap: None,
            triggered: false,
            arrived: false,
            eligible_ns: 0,
            modifications: 0,
            cancel_requested: false,
            counted_ns,
            ack_seq: 0,
            quiet_gen: 0,
            message: None,
            snap,
        };
        o.snap = o.update(now, id, None, false, false);
        self.orders.push(o);
        self.live += 1;
        let oi = u32::try_from(idx).unwrap_or(u32::MAX);
        match check {
            Err(msg) => {
                let o = &mut self.orders[idx];
                o.status = VenueStatus::Rejected;
                o.message = Some(msg);
                self.retire(oi);
                self.emit(oi, now, None, false, false, out);
            }
            Ok(()) => {
                self.push_timer(send + self.cfg.ack_latency_ns, oi, TimerKind::Ack);
                self.orders[idx].ack_seq = self.timer_seq;
            }
        }
        id
    }

    /// An order placed with [`SimVenue::submit_at`] and not yet sent now
    /// leaves its client at `send_ns` instead (its client paced a protective
    /// order ahead of it): the rate limit counts it then, and its
    /// acknowledgement comes `ack_latency_ns` after, after every order set
    /// to leave at the same instant before this call. The count moves even
    /// for an order already refused or cancelled, as its client counts it;
    /// only a pending order is acknowledged. Unknown ids are ignored.
    pub fn reschedule(&mut self, order_id: u64, send_ns: i64) {
        let Some(idx) = self.index_of(order_id) else {
            return;
        };
        if let Some(old) = self.orders[idx].counted_ns {
            // Gone from the window already if its second is over.
            if let Some(k) = self.recent.iter().position(|&x| x == old) {
                self.recent.remove(k);
                let at = self.recent.partition_point(|&x| x <= send_ns);
                self.recent.insert(at, send_ns);
            }
            self.orders[idx].counted_ns = Some(send_ns);
        }
        if self.orders[idx].status != VenueStatus::Pending {
            return;
        }
        let oi = u32::try_from(idx).unwrap_or(u32::MAX);
        self.push_timer(send_ns + self.cfg.ack_latency_ns, oi, TimerKind::Ack);
        self.orders[idx].ack_seq = self.timer_seq;
    }

    /// A modification requested at `now_ns`, taking effect `ack_latency_ns`
    /// later (or not at all if the order is terminal by then). Refused at once,
    /// changing nothing, like Kite's InputException.
    pub fn modify(&mut self, now_ns: i64, order_id: u64, m: VenueModify) -> Result<(), VenueError> {
        let oi = self.live_order(order_id, "modified")?;
        self.clock_ns = self.clock_ns.max(now_ns);
        let o = &self.orders[oi as usize];
        if o.modifications >= self.cfg.max_modifications {
            return Err(VenueError::Refused(format!(
                "Maximum allowed order modifications ({}) exceeded for order {order_id}.",
                self.cfg.max_modifications
            )));
        }
        let new_type = m.order_type.unwrap_or(o.order_type);
        if o.triggered && is_stop(new_type) && new_type != o.order_type {
            return Err(VenueError::Refused(
                "The stoploss has already triggered: its order type can only change to LIMIT or MARKET."
                    .into(),
            ));
        }
        let qty = m.qty.unwrap_or(o.qty);
        let price = m
            .price
            .map(Price::paise)
            .or(o.price)
            .filter(|_| is_priced(new_type));
        let trigger = m
            .trigger
            .map(Price::paise)
            .or(o.trigger)
            .filter(|_| is_stop(new_type));
        let Some(ii) = o.inst else {
            return Err(VenueError::UnknownOrder(order_id)); // unreachable: live orders are valid
        };
        let inst = &self.insts[ii as usize];
        let ltp = self.markets[ii as usize].last.map(|q| q.last);
        let raw_qty = i64::try_from(qty).unwrap_or(i64::MAX);
        check_quantity(raw_qty, inst)
            .and_then(|()| check_prices(new_type, o.side, price, trigger, inst, ltp, !o.triggered))
            .and_then(|()| check_protection(new_type, o.protection))
            .and_then(|()| {
                if qty < o.filled {
                    Err(format!(
                        "Quantity {qty} is below the filled quantity ({}).",
                        o.filled
                    ))
                } else {
                    Ok(())
                }
            })
            .map_err(VenueError::Refused)?;
        self.orders[oi as usize].modifications += 1;
        let change = Change {
            qty,
            order_type: new_type,
            price,
            trigger,
        };
        self.push_timer(
            now_ns + self.cfg.ack_latency_ns,
            oi,
            TimerKind::Modify(change),
        );
        Ok(())
    }

    /// A cancellation requested at `now_ns`, effective `ack_latency_ns` later
    /// unless the order fills first. A repeated cancel changes nothing.
    pub fn cancel(&mut self, now_ns: i64, order_id: u64) -> Result<(), VenueError> {
        let oi = self.live_order(order_id, "cancelled")?;
        self.clock_ns = self.clock_ns.max(now_ns);
        let o = &mut self.orders[oi as usize];
        if o.cancel_requested {
            return Ok(());
        }
        o.cancel_requested = true;
        self.push_timer(now_ns + self.cfg.ack_latency_ns, oi, TimerKind::Cancel);
        Ok(())
    }

    /// The earliest pending timer (ack, modify/cancel arrival, no-tick wait), if any.
    pub fn next_due_ns(&self) -> Option<i64> {
        self.timers.peek().map(|t| t.due)
    }

    /// Fires every timer due at or before `ts_ns`, in (due, seq) order.
    pub fn advance_to(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>) {
        self.clock_ns = self.clock_ns.max(ts_ns);
        self.ended = false;
        self.fire_timers(ts_ns, out);
    }

    /// Fires what is due at the venue's clock; after the feed ended, everything
    /// (each stamped with its own due time). For a broker API that answers a
    /// request at once when the latency is zero or the feed is over.
    pub fn settle(&mut self, out: &mut Vec<VenueUpdate>) {
        let limit = if self.ended { i64::MAX } else { self.clock_ns };
        self.fire_timers(limit, out);
    }

    /// Matches one tick. Fires the timers due at or before it first (so
    /// calling `advance_to(q.ts_ns)` before is optional). A tick with no
    /// positive last price is dropped whole: it moves no time and fires no
    /// timer. One older than the instrument's last fires the timers but is
    /// not matched. Both are counted in [`SimVenue::bad_quotes`]. O(1) for an
    /// instrument without working orders.
    pub fn on_quote(&mut self, q: &Quote, out: &mut Vec<VenueUpdate>) {
        if q.last.paise() <= 0 {
            self.bad_quotes += 1;
            return;
        }
        if q.ts_ns > self.clock_ns {
            self.clock_ns = q.ts_ns;
        }
        self.ended = false;
        if self.timers.peek().is_some_and(|t| t.due <= q.ts_ns) {
            self.fire_timers(q.ts_ns, out);
        }
        if let Some(mi) = self.inst_index(q.token) {
            self.match_quote(mi as usize, q, out);
        }
    }

    /// The feed is over: every pending timer fires now, in time order, each
    /// stamped with its own due time; orders waiting for a tick fill on the
    /// last known quote (no-tick rule).
    pub fn feed_ended(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>) {
        self.clock_ns = self.clock_ns.max(ts_ns);
        self.ended = true;
        self.fire_timers(i64::MAX, out);
    }

    /// End of day: every order still working (or not yet acknowledged) is
    /// CANCELLED with an expiry message, stamped `ts_ns`.
    pub fn expire_open_orders(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>) {
        self.clock_ns = self.clock_ns.max(ts_ns);
        for idx in self.first_live..self.orders.len() {
            if !self.orders[idx].status.is_terminal() {
                let oi = u32::try_from(idx).unwrap_or(u32::MAX);
                self.cancel_now(oi, ts_ns, Some(EXPIRED_MESSAGE), out);
            }
        }
        self.first_live = self.orders.len();
    }

    pub fn last_price(&self, token: u32) -> Option<Price> {
        let mi = self.inst_index(token)?;
        self.markets[mi as usize]
            .last
            .map(|q| Price::from_paise(q.last))
    }

    /// The order's current state: its latest update (before the first, the
    /// accepted request as OPEN PENDING).
    pub fn order(&self, order_id: u64) -> Option<&VenueUpdate> {
        self.index_of(order_id).map(|i| &self.orders[i].snap)
    }

    /// Orders not yet terminal (pending, open or trigger pending).
    pub fn working_count(&self) -> usize {
        self.live
    }

    /// Orders placed so far (ids run from `order_id_start` upward).
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Ticks dropped: no positive last price, or older than the instrument's last.
    pub fn bad_quotes(&self) -> u64 {
        self.bad_quotes
    }

    /// The latest time the venue has seen: requests, ticks, advances, fired timers.
    pub fn clock_ns(&self) -> i64 {
        self.clock_ns
    }

    // ---------------------------------------------------------------- helpers

    pub(super) fn inst_index(&self, token: u32) -> Option<u32> {
        self.by_token
            .binary_search_by_key(&token, |&(t, _)| t)
            .ok()
            .map(|k| self.by_token[k].1)
    }

    pub(super) fn order_id(&self, idx: usize) -> u64 {
        self.cfg.order_id_start + idx as u64
    }

    fn index_of(&self, order_id: u64) -> Option<usize> {
        let k = usize::try_from(order_id.checked_sub(self.cfg.order_id_start)?).ok()?;
        (k < self.orders.len()).then_some(k)
    }

    fn live_order(&self, order_id: u64, verb: &str) -> Result<u32, VenueError> {
        let idx = self
            .index_of(order_id)
            .ok_or(VenueError::UnknownOrder(order_id))?;
        let word = match self.orders[idx].status {
            VenueStatus::Complete => "completed",
            VenueStatus::Cancelled => "cancelled",
            VenueStatus::Rejected => "rejected",
            _ => return Ok(u32::try_from(idx).unwrap_or(u32::MAX)),
        };
        Err(VenueError::Refused(format!(
            "Order {order_id} cannot be {verb} as it is {word}. Check the order status."
        )))
    }

    /// Kite's order-rate limit: one more order in any one second is refused.
    fn rate_limited(&mut self, now: i64) -> Result<(), String> {
        let Some(limit) = self.cfg.max_orders_per_second else {
            return Ok(());
        };
        while self.recent.front().is_some_and(|&t| t <= now - SECOND_NS) {
            self.recent.pop_front();
        }
        // Kept in time order: a paced client may send a protective order
        // ahead of orders it queued earlier for later sending.
        let at = self.recent.partition_point(|&t| t <= now);
        let inside = at - self.recent.partition_point(|&t| t <= now - SECOND_NS);
        if inside >= limit as usize {
            return Err(format!(
                "Too many requests: at most {limit} orders per second are allowed."
            ));
        }
        self.recent.insert(at, now);
        Ok(())
    }

    pub(super) fn push_timer(&mut self, due: i64, order: u32, kind: TimerKind) {
        self.timer_seq += 1;
        self.timers.push(Timer {
            due,
            seq: self.timer_seq,
            order,
            kind,
        });
    }

    fn fire_timers(&mut self, limit: i64, out: &mut Vec<VenueUpdate>) {
        while let Some(t) = self.timers.peek().copied() {
            if t.due > limit {
                break;
            }
            self.timers.pop();
            self.clock_ns = self.clock_ns.max(t.due);
            match t.kind {
                TimerKind::Ack => {
                    // An order rescheduled since this timer was set waits for its new one.
                    if self.orders[t.order as usize].ack_seq == t.seq {
                        self.on_ack(t.order, t.due, out);
                    }
                }
                TimerKind::Quiet(gen) => self.on_quiet(t.order, t.due, gen, out),
                TimerKind::Modify(c) => self.on_modify(t.order, t.due, c, out),
                TimerKind::Cancel => {
                    if !self.orders[t.order as usize].status.is_terminal() {
                        self.cancel_now(t.order, t.due, None, out);
                    }
                }
            }
        }
    }
}
