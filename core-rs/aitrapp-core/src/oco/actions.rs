//! What the table's rows do: keep the children sized to the position while
//! it is open, wind everything down when it closes, trail the stop.
//!
//! Each helper derives the orders it wants from the current state and only
//! emits a command where that differs from what was already asked, so
//! running it twice emits nothing the second time (duplicate events are
//! no-ops).

use super::command::{AlertCode, Command, ExitReason, ModifyOrder, OrderType, Severity};
use super::leg::{PendingModify, Role};
use super::machine::{signed, Bracket, Fx, ENTRY};
use super::spec::{StopKind, NS_PER_SEC, TRAIL_RESERVED_MODIFICATIONS};
use super::state::State;
use crate::ids::OrderTag;
use crate::price::Price;
use crate::side::Side;

/// Market exits rejected this many times in a row wait before the next try.
const EXIT_FAILURES_BEFORE_BACKOFF: u32 = 3;
const EXIT_RETRY_BACKOFF_NS: i64 = 5 * NS_PER_SEC;
/// EXIT, EXIT1 .. EXIT99.
const MAX_MARKET_ORDERS: u8 = 100;

impl Bracket {
    /// ENTERING / OPEN: the stop covers exactly the open quantity and the
    /// take-profits share it. Returns the state that results.
    pub(super) fn protect(&mut self, fx: &mut Fx) -> State {
        let net = self.net_qty();
        if net <= 0 {
            // Flat or overfilled while "open": only closing can settle that.
            return self.close(ExitReason::Corrective, fx);
        }
        let net = net.unsigned_abs();
        match self.stop_idx() {
            None => {
                let trigger = self.stop_target;
                if self.gapped(trigger) {
                    return self.stop_gapped(trigger, "placed", fx);
                }
                let (order_type, price) = match self.spec.stop_kind {
                    StopKind::SlM => (OrderType::SlM, None),
                    StopKind::Sl { .. } => (OrderType::Sl, self.spec.stop_limit_for(trigger)),
                };
                let side = self.spec.exit_side();
                self.add_leg(
                    self.stop_tag,
                    Role::Stop,
                    side,
                    net,
                    order_type,
                    price,
                    Some(trigger),
                    Some(ExitReason::Stop),
                    fx,
                );
            }
            Some(i) if self.legs[i].is_live() && !self.legs[i].cancel_sent => {
                let leg = &self.legs[i];
                let want_qty = leg.filled + net;
                let want_trigger = Some(self.stop_target);
                let resize = want_qty != leg.wanted_qty();
                // A trigger move waits for answers in flight (coalescing
                // trails); a resize never waits, protection comes first.
                let retrigger = want_trigger != leg.wanted_trigger() && leg.pending.is_empty();
                if resize || retrigger {
                    // The exchange would reject a stop the market has passed:
                    // what that stop was for is an exit now.
                    if self.gapped(self.stop_target) {
                        let what = if resize { "resized" } else { "moved" };
                        return self.stop_gapped(self.stop_target, what, fx);
                    }
                    if leg.modifications >= self.spec.max_modifications {
                        if resize {
                            let msg = format!(
                                "stop {} used all {} modifications and cannot be resized to {want_qty}; exiting at market",
                                leg.client_order_id, self.spec.max_modifications
                            );
                            fx.alert(Severity::Error, AlertCode::ModificationBudget, msg);
                            return self.close(ExitReason::Unprotected, fx);
                        }
                    } else {
                        self.modify(i, want_qty, want_trigger, fx);
                    }
                }
            }
            Some(_) => {
                // The stop is gone: its row should already have closed the bracket.
                let msg = format!(
                    "stop of {} is not working; exiting at market",
                    self.spec.plan_id
                );
                fx.alert(Severity::Critical, AlertCode::StopLost, msg);
                return self.close(ExitReason::Unprotected, fx);
            }
        }
        for (tag, remaining) in self.tp_targets(net) {
            self.size_take_profit(tag, remaining, fx);
        }
        if self.legs[ENTRY].is_live() {
            State::Entering
        } else {
            State::Open
        }
    }

    /// How much each take-profit slot should still work for an open `net`.
    fn tp_targets(&self, net: u64) -> Vec<(OrderTag, u64)> {
        let usable = |tag| match self.idx(tag) {
            None => true,
            Some(i) => self.legs[i].is_live() && !self.legs[i].cancel_sent,
        };
        match self.spec.scale_out {
            None => {
                let tp = self.target_tag;
                vec![(tp, if usable(tp) { net } else { 0 })]
            }
            Some(so) => {
                let (t1, t2) = (OrderTag::TpN(1), self.target_tag);
                let tp1_filled = self.leg(t1).map_or(0, |l| l.filled);
                let planned =
                    u128::from(self.entry_filled()) * u128::from(so.fraction_bps) / 10_000;
                let planned = self
                    .spec
                    .floor_lots(u64::try_from(planned).unwrap_or(u64::MAX));
                let r1 = if !self.tp1_done && usable(t1) {
                    net.min(planned.saturating_sub(tp1_filled))
                } else {
                    0
                };
                // TP2 takes the rest; if TP2 is gone the rest rides on the stop.
                let r2 = if usable(t2) { net - r1 } else { 0 };
                vec![(t1, r1), (t2, r2)]
            }
        }
    }

    fn size_take_profit(&mut self, tag: OrderTag, remaining: u64, fx: &mut Fx) {
        match self.idx(tag) {
            None if remaining > 0 => {
                let price = self.spec.target_for(tag);
                let reason = self.target_reason(tag);
                let side = self.spec.exit_side();
                self.add_leg(
                    tag,
                    Role::TakeProfit,
                    side,
                    remaining,
                    OrderType::Limit,
                    Some(price),
                    None,
                    Some(reason),
                    fx,
                );
            }
            Some(i) if self.legs[i].is_live() && !self.legs[i].cancel_sent => {
                let leg = &self.legs[i];
                let want = leg.filled + remaining;
                if remaining == 0 {
                    self.cancel(i, fx);
                } else if want != leg.wanted_qty() {
                    if leg.modifications >= self.spec.max_modifications {
                        let msg = format!(
                            "take-profit {} used all modifications; cancelling it (the stop still protects)",
                            leg.client_order_id
                        );
                        fx.alert(Severity::Warning, AlertCode::ModificationBudget, msg);
                        self.cancel(i, fx);
                    } else {
                        self.modify(i, want, None, fx);
                    }
                }
            }
            _ => {}
        }
    }

    /// After a partial child fill while open.
    pub(super) fn after_child_fill(&mut self, i: usize, fx: &mut Fx) -> State {
        if self.net_qty() <= 0 {
            let reason = self.legs[i].reason.unwrap_or(ExitReason::Corrective);
            return self.close(reason, fx);
        }
        self.protect(fx)
    }

    /// After a child filled completely while open.
    pub(super) fn after_child_done(&mut self, i: usize, fx: &mut Fx) -> State {
        let leg = &self.legs[i];
        let reason = leg.reason.unwrap_or(ExitReason::Corrective);
        let scaled_out = leg.tag == OrderTag::TpN(1) && self.spec.scale_out.is_some();
        if scaled_out && self.net_qty() > 0 {
            // Scale-out step: the rest rides to TP2 with the stop at breakeven.
            self.tp1_done = true;
            let be = self.spec.round_exit(self.legs[ENTRY].avg_price);
            if self.tighter(be, self.stop_target) {
                self.stop_target = be;
            }
            return self.protect(fx);
        }
        // One child done: cancel every sibling, exit whatever is left.
        self.close(reason, fx)
    }

    /// A child died without our asking (rejected, or cancelled by someone else).
    pub(super) fn child_lost(&mut self, i: usize, what: &str, why: &str, fx: &mut Fx) -> State {
        let leg = &self.legs[i];
        let cid = leg.client_order_id.clone();
        if leg.role == Role::Stop {
            let msg = format!("stop {cid} {what} ({why}): position unprotected, exiting at market");
            fx.alert(Severity::Critical, AlertCode::StopLost, msg);
            return self.close(ExitReason::Unprotected, fx);
        }
        let msg = format!("take-profit {cid} {what} ({why}); the stop still protects the position");
        fx.alert(Severity::Warning, AlertCode::TakeProfitLost, msg);
        self.after_child_fill(i, fx)
    }

    pub(super) fn modify_rejected(
        &mut self,
        i: usize,
        p: PendingModify,
        why: &str,
        fx: &mut Fx,
    ) -> State {
        let leg = &self.legs[i];
        let cid = leg.client_order_id.clone();
        if leg.role == Role::Stop {
            if p.qty != leg.qty {
                let msg = format!(
                    "stop {cid} resize to {} rejected ({why}): exiting at market",
                    p.qty
                );
                fx.alert(Severity::Error, AlertCode::StopModifyRejected, msg);
                return self.close(ExitReason::Unprotected, fx);
            }
            // A trigger move (trail / breakeven) failed: the old trigger still
            // protects. Forget the move rather than retrying it forever.
            self.stop_target = leg.wanted_trigger().unwrap_or(self.stop_target);
            let msg = format!(
                "stop {cid} trigger move rejected ({why}); keeping {}",
                self.stop_target
            );
            fx.alert(Severity::Warning, AlertCode::StopModifyRejected, msg);
            return self.protect(fx);
        }
        let msg = format!(
            "take-profit {cid} resize rejected ({why}); cancelling it (the stop still protects)"
        );
        fx.alert(Severity::Warning, AlertCode::TakeProfitLost, msg);
        self.cancel(i, fx);
        self.protect(fx)
    }

    // ───────────── winding down ─────────────

    /// Starts closing for `reason` (from PENDING, ENTERING or OPEN).
    pub(super) fn close(&mut self, reason: ExitReason, fx: &mut Fx) -> State {
        self.closing_reason.get_or_insert(reason);
        fx.changed = true;
        self.wind_down(fx)
    }

    /// A fill arrived for a bracket that had ended: wind down again.
    pub(super) fn reopen(&mut self, i: usize, fx: &mut Fx) -> State {
        let msg = format!(
            "{} reported a fill after bracket {} ended; squaring it at market",
            self.legs[i].client_order_id, self.spec.plan_id
        );
        fx.alert(Severity::Critical, AlertCode::LateFill, msg);
        self.closing_reason.get_or_insert(ExitReason::Unprotected);
        self.wind_down(fx)
    }

    /// CLOSING: cancel every working entry/stop/target, then bring the
    /// position to zero at market. A working stop still covers its part until
    /// its cancel is confirmed, so that part exits only then (no double fill
    /// of our own making); an uncovered part exits at once. A stop a flatten
    /// turned into the market exit is that exit, not cancelled, and the
    /// targets wait until the conversion is answered (`flatten.rs`).
    pub(super) fn wind_down(&mut self, fx: &mut Fx) -> State {
        self.check_conversion();
        let hold = self.holds_targets();
        for i in 0..self.legs.len() {
            let leg = &self.legs[i];
            let keep = self.keeps_working(i, hold);
            if leg.is_live() && !leg.cancel_sent && !leg.role.is_market() && !keep {
                self.cancel(i, fx);
            }
        }
        let to_exit = self.exit_shortfall();
        let to_buy_back = self.overfill_shortfall();
        if to_exit > 0 {
            self.place_market(signed(to_exit), fx);
        } else if to_buy_back > 0 {
            self.place_market(-signed(to_buy_back), fx);
        }
        let flat = self.net_qty() == 0;
        if flat && self.legs.iter().all(|l| !l.is_live()) {
            if self.entry_filled() > 0 {
                State::Closed
            } else {
                State::Cancelled
            }
        } else {
            State::Closing
        }
    }

    /// Open quantity that nothing will exit: not the working market exits,
    /// nor the working stop (which covers its part until its cancel is
    /// confirmed). CLOSING exits it at market at once.
    pub fn exit_shortfall(&self) -> u64 {
        let net = self.net_qty();
        let mut left = net;
        for l in self.legs.iter().filter(|l| l.is_live()) {
            match l.role {
                Role::Stop if l.abandoned => {}
                Role::Stop => left -= signed(l.assured_remaining()).min(net.max(0)),
                Role::Exit => left -= signed(l.commanded_remaining()),
                Role::Corrective => left += signed(l.commanded_remaining()),
                Role::Entry | Role::TakeProfit => {}
            }
        }
        u64::try_from(left).unwrap_or(0)
    }

    /// Overfill that no working corrective order buys back, counting the
    /// market orders that will still fill (a stop being cancelled may not,
    /// so it never triggers a buy-back).
    pub fn overfill_shortfall(&self) -> u64 {
        let mut left = self.net_qty();
        for l in self.legs.iter().filter(|l| l.is_live()) {
            match l.role {
                Role::Exit => left -= signed(l.commanded_remaining()),
                Role::Corrective => left += signed(l.commanded_remaining()),
                Role::Entry | Role::Stop | Role::TakeProfit => {}
            }
        }
        u64::try_from(-left).unwrap_or(0)
    }

    pub(super) fn next_market_tag(&self) -> Option<OrderTag> {
        match self.market_orders {
            0 => Some(OrderTag::Exit),
            n if n < MAX_MARKET_ORDERS => Some(OrderTag::ExitN(n)),
            _ => None,
        }
    }

    /// Market order(s) for `proj` units: exits when positive, correctives when negative.
    fn place_market(&mut self, proj: i64, fx: &mut Fx) {
        if self.exit_retry_at_ns.is_some_and(|t| self.now_ns < t) {
            return;
        }
        let (role, side, reason) = if proj > 0 {
            let reason = self.closing_reason.unwrap_or(ExitReason::Unprotected);
            (Role::Exit, self.spec.exit_side(), reason)
        } else {
            let msg = format!(
                "bracket {} overfilled by {} (both sides filled: a cancel lost the race); {} it back at market",
                self.spec.plan_id,
                proj.unsigned_abs(),
                if self.spec.side == Side::Buy { "buying" } else { "selling" }
            );
            fx.alert(Severity::Critical, AlertCode::DoubleFill, msg);
            (Role::Corrective, self.spec.side, ExitReason::Corrective)
        };
        let mut left = proj.unsigned_abs();
        while left > 0 {
            let Some(tag) = self.next_market_tag() else {
                if !self.ids_exhausted_alerted {
                    self.ids_exhausted_alerted = true;
                    let msg = format!(
                        "bracket {}: no market order ids left with {left} still to {}; manual intervention required",
                        self.spec.plan_id,
                        side.as_str()
                    );
                    fx.alert(Severity::Critical, AlertCode::ExitIdsExhausted, msg);
                }
                return;
            };
            let qty = left.min(self.spec.max_order_qty);
            self.market_orders += 1;
            self.add_leg(
                tag,
                role,
                side,
                qty,
                OrderType::Market,
                None,
                None,
                Some(reason),
                fx,
            );
            left -= qty;
        }
    }

    /// A market order was rejected or cancelled unfilled: alert, back off
    /// after repeated failures (wind_down re-places it).
    pub(super) fn exit_failed(&mut self, i: usize, why: &str, fx: &mut Fx) {
        self.exit_failures_in_row += 1;
        let cid = self.legs[i].client_order_id.clone();
        let next = if self.exit_failures_in_row >= EXIT_FAILURES_BEFORE_BACKOFF {
            self.exit_retry_at_ns = Some(self.now_ns.saturating_add(EXIT_RETRY_BACKOFF_NS));
            "retrying in 5 s"
        } else {
            "retrying now"
        };
        let msg = format!("market order {cid} failed ({why}); {next}");
        fx.alert(Severity::Critical, AlertCode::ExitRejected, msg);
    }

    // ───────────── order commands ─────────────

    pub(super) fn cancel(&mut self, i: usize, fx: &mut Fx) {
        let now = self.now_ns;
        let leg = &mut self.legs[i];
        leg.cancel_sent = true;
        leg.cancel_sent_ns.get_or_insert(now);
        fx.changed = true;
        fx.commands.push(Command::Cancel {
            client_order_id: leg.client_order_id.clone(),
            tag: leg.tag,
        });
    }

    fn modify(&mut self, i: usize, qty: u64, trigger: Option<Price>, fx: &mut Fx) {
        let price = match (self.legs[i].order_type, trigger) {
            (OrderType::Sl, Some(t)) => self.spec.stop_limit_for(t),
            _ => self.legs[i]
                .pending
                .last()
                .map_or(self.legs[i].price, |p| p.price),
        };
        let leg = &mut self.legs[i];
        leg.modifications += 1;
        let seq = leg.modifications;
        leg.pending.push(PendingModify {
            seq,
            qty,
            price,
            trigger,
            order_type: None,
        });
        leg.max_qty = leg.max_qty.max(qty);
        fx.changed = true;
        fx.commands.push(Command::Modify(ModifyOrder {
            client_order_id: leg.client_order_id.clone(),
            tag: leg.tag,
            seq,
            qty,
            price,
            trigger,
            order_type: None,
        }));
    }

    // ───────────── stop management ─────────────

    /// True if `a` is a tighter stop than `b` (closer to the market).
    fn tighter(&self, a: Price, b: Price) -> bool {
        match self.spec.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// Trailing: `k` x ATR from the last price, rounded away from the market,
    /// moved only when it tightens by at least the minimum step. True if the
    /// target moved.
    pub(super) fn trail(&mut self, ltp: Price, atr: Option<Price>, fx: &mut Fx) -> bool {
        let (Some(tr), Some(atr)) = (self.spec.trailing, atr) else {
            return false;
        };
        let Some(i) = self.stop_idx() else {
            return false;
        };
        if atr.paise() <= 0 || !self.legs[i].is_live() || self.legs[i].cancel_sent {
            return false;
        }
        let dist = (i128::from(atr.paise()) * i128::from(tr.atr_mult_milli) + 500) / 1000;
        let dist = i64::try_from(dist).unwrap_or(i64::MAX);
        let raw = ltp
            .paise()
            .saturating_sub(self.spec.side.sign().saturating_mul(dist));
        let cand = self.spec.round_exit(Price::from_paise(raw));
        let step = self.spec.tick_size.paise() * i64::from(tr.min_step_ticks);
        let s = self.spec.side.sign();
        // On the protective side of the market, and tighter by >= one step.
        let valid = cand.paise() > 0
            && s * (ltp.paise() - cand.paise()) > 0
            && s * (cand.paise() - self.stop_target.paise()) >= step;
        if !valid {
            return false;
        }
        let budget = self
            .spec
            .max_modifications
            .saturating_sub(TRAIL_RESERVED_MODIFICATIONS);
        if self.legs[i].modifications >= budget {
            if !self.trail_budget_alerted {
                self.trail_budget_alerted = true;
                fx.changed = true;
                let msg = format!(
                    "stop {}: trailing paused after {} of {} modifications ({} are kept for resizes)",
                    self.legs[i].client_order_id,
                    self.legs[i].modifications,
                    self.spec.max_modifications,
                    TRAIL_RESERVED_MODIFICATIONS
                );
                fx.alert(Severity::Warning, AlertCode::ModificationBudget, msg);
            }
            return false;
        }
        self.stop_target = cand;
        fx.changed = true;
        true
    }
}
