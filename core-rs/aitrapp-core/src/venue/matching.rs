//! How the paper venue's orders meet the market: acknowledgement, triggers,
//! fills, modifications taking effect, cancellations. The price and quantity
//! decisions themselves are the pure functions of `rules.rs`.

use super::book::{Change, LastQuote};
use super::rules::{
    limit_fill_price, market_fill_price, participation_quantity, pct_to_ppm, protection_price,
    touches, traded_quantity,
};
use super::sim::{SimVenue, IOC_MESSAGE};
use super::types::{Protection, Quote, Validity, VenueStatus, VenueUpdate};
use super::validation::is_stop;
use crate::oco::OrderType;

impl SimVenue {
    /// One valid tick of instrument `mi`: remember it, then let the
    /// instrument's working orders look at it.
    pub(super) fn match_quote(&mut self, mi: usize, q: &Quote, out: &mut Vec<VenueUpdate>) {
        let market = &mut self.markets[mi];
        let prev = market.last;
        if prev.is_some_and(|p| q.ts_ns < p.ts_ns) {
            self.bad_quotes += 1; // never fill against an older price than already seen
            return;
        }
        market.last = Some(LastQuote {
            ts_ns: q.ts_ns,
            last: q.last.paise(),
            bid: q.bid.map(|p| p.paise()),
            ask: q.ask.map(|p| p.paise()),
            volume: q.volume,
        });
        if market.working.is_empty() {
            return;
        }
        let traded = match self.share_ppm {
            Some(_) => traded_quantity(q.volume, prev.map(|p| p.volume), q.last_qty),
            None => 0,
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(&self.markets[mi].working);
        let (ts, last) = (q.ts_ns, q.last.paise());
        let tick = self.insts[mi].tick_size.paise();
        // Computed on first need: a pending stop needs only the last price.
        let mut touch: Option<(i64, i64)> = None;
        for &oi in &scratch {
            let o = &self.orders[oi as usize];
            if ts < o.eligible_ns || o.status.is_terminal() {
                continue;
            }
            let is_buy = o.is_buy();
            if o.status == VenueStatus::TriggerPending {
                let trigger = o.trigger.unwrap_or(0);
                if (is_buy && last < trigger) || (!is_buy && last > trigger) {
                    continue;
                }
                self.trigger(oi, ts, out);
            }
            let (buy_touch, sell_touch) = *touch.get_or_insert_with(|| {
                touches(
                    last,
                    q.bid.map(|p| p.paise()),
                    q.ask.map(|p| p.paise()),
                    tick,
                )
            });
            let o = &self.orders[oi as usize];
            if o.arrived && !o.is_market {
                // Most ticks leave a resting limit where it was: skip the full rule.
                let limit = o.price.unwrap_or(0);
                let stays = if is_buy {
                    buy_touch > limit && last >= limit
                } else {
                    sell_touch < limit && last <= limit
                };
                if stays {
                    continue;
                }
            }
            let t = if is_buy { buy_touch } else { sell_touch };
            self.execute(oi, ts, last, t, traded, false, out);
        }
        self.scratch = scratch;
    }

    /// The last price crossed the trigger: an SL-M becomes a protected
    /// market order (its band measured from the trigger), an SL a limit;
    /// either takes its first look at the market on this very tick.
    fn trigger(&mut self, oi: u32, ts: i64, out: &mut Vec<VenueUpdate>) {
        let wait = self.cfg.no_tick_wait_ns;
        let o = &mut self.orders[oi as usize];
        o.triggered = true;
        o.status = VenueStatus::Open;
        o.arrived = false;
        if o.order_type == OrderType::SlM {
            let reference = o.trigger.unwrap_or(0);
            self.orders[oi as usize].is_market = true;
            let cap = self.protection(oi, reference);
            self.orders[oi as usize].cap = Some(cap);
            self.arm_quiet(oi, ts + wait);
        }
        self.emit(oi, ts, None, true, false, out);
    }

    /// The order looks at the market: fill what the rules allow, then cancel
    /// an IOC remainder or keep a MARKET remainder's no-progress timer running.
    /// `quiet`: a no-tick look at the last quote (no participation limit).
    #[allow(clippy::too_many_arguments)] // the tick's numbers, unpacked once per tick
    fn execute(
        &mut self,
        oi: u32,
        ts: i64,
        last: i64,
        touch: i64,
        traded: u64,
        quiet: bool,
        out: &mut Vec<VenueUpdate>,
    ) {
        let ii = self.orders[oi as usize].inst.unwrap_or(0) as usize;
        let (tick, lot) = (
            self.insts[ii].tick_size.paise(),
            u64::from(self.insts[ii].lot_size),
        );
        if self.orders[oi as usize].is_market && self.orders[oi as usize].cap.is_none() {
            // Acknowledged before any price was known: protect from this one.
            let cap = self.protection(oi, last);
            self.orders[oi as usize].cap = Some(cap);
        }
        let o = &mut self.orders[oi as usize];
        let resting = o.arrived;
        o.arrived = true;
        let px = if o.is_market {
            market_fill_price(o.is_buy(), touch, o.cap.unwrap_or(0), self.slip_ppm, tick)
        } else {
            limit_fill_price(o.is_buy(), o.price.unwrap_or(0), touch, last, resting)
        };
        let mut filled = 0;
        if let Some(px) = px {
            let mut qty = o.remaining();
            if let (Some(share), false) = (self.share_ppm, quiet) {
                qty = participation_quantity(qty, traded, share, lot);
            }
            if qty > 0 {
                self.fill(oi, qty, px, ts, out);
                filled = qty;
            }
        }
        let o = &self.orders[oi as usize];
        if o.status.is_terminal() {
            return;
        }
        if o.validity == Validity::Ioc {
            self.cancel_now(oi, ts, Some(IOC_MESSAGE), out);
        } else if o.is_market && filled > 0 && !quiet {
            self.arm_quiet(oi, ts + self.cfg.no_tick_wait_ns);
        }
    }

    fn fill(&mut self, oi: u32, qty: u64, px: i64, ts: i64, out: &mut Vec<VenueUpdate>) {
        let o = &mut self.orders[oi as usize];
        o.filled += qty;
        o.value += i64::try_from(qty).unwrap_or(i64::MAX) * px;
        if o.filled >= o.qty {
            o.status = VenueStatus::Complete;
            self.retire(oi);
        } else {
            o.status = VenueStatus::Open;
        }
        self.emit(oi, ts, Some((qty, px)), false, false, out);
    }

    pub(super) fn on_ack(&mut self, oi: u32, due: i64, out: &mut Vec<VenueUpdate>) {
        let fill_latency = self.cfg.fill_latency_ns;
        let o = &mut self.orders[oi as usize];
        if o.status != VenueStatus::Pending {
            return;
        }
        o.status = if is_stop(o.order_type) {
            VenueStatus::TriggerPending
        } else {
            VenueStatus::Open
        };
        o.eligible_ns = due + fill_latency;
        let eligible = o.eligible_ns;
        let is_market = o.is_market;
        let ii = o.inst.unwrap_or(0) as usize;
        self.markets[ii].working.push(oi);
        if is_market {
            if let Some(q) = self.markets[ii].last {
                // Kite converts a MARKET order at the last price it knows.
                let cap = self.protection(oi, q.last);
                self.orders[oi as usize].cap = Some(cap);
            }
        }
        self.emit(oi, due, None, false, false, out);
        if self.orders[oi as usize].status == VenueStatus::Open {
            self.arm_quiet(oi, eligible + self.cfg.no_tick_wait_ns);
        }
    }

    /// No tick (or, for MARKET, no progress) for `no_tick_wait_ns`: trade
    /// against the last known quote, without a participation limit.
    pub(super) fn on_quiet(&mut self, oi: u32, due: i64, gen: u32, out: &mut Vec<VenueUpdate>) {
        let o = &self.orders[oi as usize];
        if gen != o.quiet_gen || o.status != VenueStatus::Open || (o.arrived && !o.is_market) {
            return;
        }
        let ii = o.inst.unwrap_or(0) as usize;
        let Some(q) = self.markets[ii].last else {
            return; // no price known at all: the first tick decides
        };
        let (buy, sell) = touches(q.last, q.bid, q.ask, self.insts[ii].tick_size.paise());
        let t = if o.is_buy() { buy } else { sell };
        self.execute(oi, due, q.last, t, 0, true, out);
    }

    /// A modification reaches the exchange: the order takes its new fields
    /// and has a fresh first look at the market.
    pub(super) fn on_modify(&mut self, oi: u32, due: i64, c: Change, out: &mut Vec<VenueUpdate>) {
        let fill_latency = self.cfg.fill_latency_ns;
        let o = &mut self.orders[oi as usize];
        if o.status.is_terminal() {
            return; // filled or cancelled before the modification arrived
        }
        o.qty = c.qty.max(o.filled);
        o.order_type = c.order_type;
        o.price = c.price;
        o.trigger = c.trigger;
        let mut protect_at_ltp = false;
        if is_stop(c.order_type) && !o.triggered {
            o.status = VenueStatus::TriggerPending;
            o.is_market = false;
            o.cap = None;
        } else if !is_stop(c.order_type) {
            o.status = VenueStatus::Open;
            let was_market = o.is_market;
            o.is_market = c.order_type == OrderType::Market;
            if !o.is_market {
                o.cap = None;
            } else if !was_market {
                o.cap = None;
                protect_at_ltp = true;
            }
        }
        o.arrived = false;
        o.eligible_ns = due + fill_latency;
        let eligible = o.eligible_ns;
        let ii = o.inst.unwrap_or(0) as usize;
        if protect_at_ltp {
            if let Some(q) = self.markets[ii].last {
                let cap = self.protection(oi, q.last);
                self.orders[oi as usize].cap = Some(cap);
            }
        }
        let o = &mut self.orders[oi as usize];
        if o.filled >= o.qty {
            o.status = VenueStatus::Complete;
            self.retire(oi);
            self.emit(oi, due, None, false, true, out);
            return;
        }
        self.emit(oi, due, None, false, true, out);
        if self.orders[oi as usize].status == VenueStatus::Open {
            self.arm_quiet(oi, eligible + self.cfg.no_tick_wait_ns);
        }
    }

    /// CANCELLED now (cancel arrival, IOC remainder, expiry); fills stay.
    pub(super) fn cancel_now(
        &mut self,
        oi: u32,
        ts: i64,
        message: Option<&str>,
        out: &mut Vec<VenueUpdate>,
    ) {
        let o = &mut self.orders[oi as usize];
        o.status = VenueStatus::Cancelled;
        o.message = message.map(str::to_string);
        self.retire(oi);
        self.emit(oi, ts, None, false, false, out);
    }

    /// The order turned terminal: off its instrument's book.
    pub(super) fn retire(&mut self, oi: u32) {
        self.live -= 1;
        if let Some(ii) = self.orders[oi as usize].inst {
            let working = &mut self.markets[ii as usize].working;
            if let Some(k) = working.iter().position(|&w| w == oi) {
                working.remove(k);
            }
        }
    }

    pub(super) fn emit(
        &mut self,
        oi: u32,
        ts: i64,
        fill: Option<(u64, i64)>,
        triggered: bool,
        modified: bool,
        out: &mut Vec<VenueUpdate>,
    ) {
        let id = self.order_id(oi as usize);
        let o = &mut self.orders[oi as usize];
        let u = o.update(ts, id, fill, triggered, modified);
        out.push(u.clone());
        o.snap = u;
    }

    fn arm_quiet(&mut self, oi: u32, due: i64) {
        let o = &mut self.orders[oi as usize];
        o.quiet_gen += 1;
        let gen = o.quiet_gen;
        self.push_timer(due, oi, super::book::TimerKind::Quiet(gen));
    }

    /// The order's market-protection limit around `reference` (paise).
    fn protection(&self, oi: u32, reference: i64) -> i64 {
        let o = &self.orders[oi as usize];
        let inst = &self.insts[o.inst.unwrap_or(0) as usize];
        let pct = match o.protection {
            Protection::Auto => self.cfg.auto_protection_pct(inst.segment, reference),
            Protection::Pct(p) => p,
            Protection::None => 0.0, // unreachable: validation requires protection
        };
        protection_price(
            o.is_buy(),
            reference,
            pct_to_ppm(pct),
            inst.tick_size.paise(),
        )
    }
}
