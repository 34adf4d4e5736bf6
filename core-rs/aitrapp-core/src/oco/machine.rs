//! The bracket and its transition table.
//!
//! `Bracket::handle(now_ns, &event)` is the only way in: one `match (state,
//! event)` decides, helpers in `actions.rs` keep the orders sized, and the
//! result is a `Transition` (from, to, commands, fills). Nothing here reads a
//! clock or performs I/O.

use super::command::{
    Alert, AlertCode, Command, ExitReason, FillReport, NewOrder, OrderType, Severity,
};
use super::error::OcoError;
use super::event::{Event, Fill};
use super::flatten::StopToMarket;
use super::leg::{Leg, LegStatus, Role};
use super::spec::{BracketSpec, EntryKind};
use super::state::State;
use crate::ids::{order_client_id, OrderTag};
use crate::price::Price;
use crate::side::Side;

/// The entry is always the first leg.
pub(super) const ENTRY: usize = 0;

/// The outcome of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    /// To execute in order.
    pub commands: Vec<Command>,
    /// Fills the bracket learnt of with this event.
    pub fills: Vec<FillReport>,
    /// False when the event was a duplicate, stale or otherwise changed nothing.
    pub changed: bool,
}

/// Effects collected while handling one event.
#[derive(Debug, Default)]
pub(super) struct Fx {
    pub commands: Vec<Command>,
    pub fills: Vec<FillReport>,
    pub changed: bool,
}

impl Fx {
    pub(super) fn alert(&mut self, severity: Severity, code: AlertCode, reason: String) {
        self.commands.push(Command::Alert(Alert {
            severity,
            code,
            reason,
        }));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bracket {
    pub(super) spec: BracketSpec,
    pub(super) state: State,
    pub(super) created_ns: i64,
    pub(super) now_ns: i64,
    pub(super) square_off_ns: i64,
    pub(super) first_fill_ns: Option<i64>,
    pub(super) legs: Vec<Leg>,
    /// The tag of the stop that protects the position: STOP, or STOPn when an
    /// adopted bracket's stop was lost and is placed again under a new id.
    pub(super) stop_tag: OrderTag,
    /// The tag of the final target (TP, or TP2 when scaling out), or TARGETn
    /// when an adopted bracket's target was lost and is placed again under a
    /// new id.
    pub(super) target_tag: OrderTag,
    /// Desired stop trigger: the plan's stop, then breakeven / trailed; only tightens.
    pub(super) stop_target: Price,
    pub(super) closing_reason: Option<ExitReason>,
    /// Scale-out: TP1 has filled completely.
    pub(super) tp1_done: bool,
    /// Market orders placed so far (names the next EXIT / EXITn).
    pub(super) market_orders: u8,
    pub(super) exit_failures_in_row: u32,
    pub(super) exit_retry_at_ns: Option<i64>,
    pub(super) ids_exhausted_alerted: bool,
    pub(super) trail_budget_alerted: bool,
    /// Last price of the instrument the bracket was told of (`PriceUpdate`):
    /// no stop is sent with a trigger it has already passed.
    pub(super) last_ltp: Option<Price>,
    /// Triggered-stop watchdog: escalations so far (0, 1 or 2) and when the
    /// last one happened (the next is due a timeout after it).
    pub(super) watchdog_escalations: u32,
    pub(super) watchdog_escalated_ns: Option<i64>,
    /// Flatten: the stop turned into the market exit by one modification.
    pub(super) stop_to_market: StopToMarket,
}

/// Quantities are bounded (spec validation), so they fit an i64.
pub(super) fn signed(q: u64) -> i64 {
    i64::try_from(q).unwrap_or(i64::MAX)
}

impl Bracket {
    /// Validates the spec and returns the bracket with its first command:
    /// placing the ENTRY. `now_ns` is UTC nanoseconds.
    pub fn open(spec: BracketSpec, now_ns: i64) -> Result<(Bracket, Vec<Command>), OcoError> {
        spec.validate()?;
        let square_off_ns = spec.square_off_ns(now_ns);
        if now_ns >= square_off_ns {
            return Err(OcoError::AfterSquareOff {
                plan_id: spec.plan_id.clone(),
                minute_ist: spec.square_off_minute_ist,
            });
        }
        let stop_target = spec.stop;
        let spec_scales_out = spec.scale_out.is_some();
        let mut b = Bracket {
            spec,
            state: State::Pending,
            created_ns: now_ns,
            now_ns,
            square_off_ns,
            first_fill_ns: None,
            legs: Vec::with_capacity(6),
            stop_tag: OrderTag::Stop,
            target_tag: OrderTag::target_of_generation(0, spec_scales_out).unwrap_or(OrderTag::Tp),
            stop_target,
            closing_reason: None,
            tp1_done: false,
            market_orders: 0,
            exit_failures_in_row: 0,
            exit_retry_at_ns: None,
            ids_exhausted_alerted: false,
            trail_budget_alerted: false,
            last_ltp: None,
            watchdog_escalations: 0,
            watchdog_escalated_ns: None,
            stop_to_market: StopToMarket::No,
        };
        let (order_type, price) = match b.spec.entry {
            EntryKind::Limit => (OrderType::Limit, Some(b.spec.entry_price)),
            EntryKind::Market => (OrderType::Market, None),
        };
        let mut fx = Fx::default();
        let (side, qty) = (b.spec.side, b.spec.qty);
        b.add_leg(
            OrderTag::Entry,
            Role::Entry,
            side,
            qty,
            order_type,
            price,
            None,
            None,
            &mut fx,
        );
        Ok((b, fx.commands))
    }

    /// Feeds one event. On `Err` the bracket is unchanged (except that it has
    /// seen `now_ns`): errors are raised before anything is applied.
    pub fn handle(&mut self, now_ns: i64, event: &Event) -> Result<Transition, OcoError> {
        self.check_event(event)?;
        self.now_ns = self.now_ns.max(now_ns);
        let from = self.state;
        let mut fx = Fx::default();
        let to = self.transition(event, &mut fx)?;
        self.state = to;
        let changed = fx.changed || from != to || !fx.commands.is_empty() || !fx.fills.is_empty();
        Ok(Transition {
            from,
            to,
            commands: fx.commands,
            fills: fx.fills,
            changed,
        })
    }

    /// THE transition table. Rows without a comment are the plain case; every
    /// surprising row says why it exists. Errors are returned before any
    /// mutation (lookups and fill checks come first in each row).
    fn transition(&mut self, ev: &Event, fx: &mut Fx) -> Result<State, OcoError> {
        use Event as E;
        use State as S;
        let st = self.state;
        let kind = ev.kind();
        match (st, ev) {
            // ───────────── entry order ─────────────
            // An ack may trail the fills (Kite's OPEN snapshot can arrive after
            // COMPLETE): in every state it only marks the entry as known. A live
            // report for an entry believed rejected is an order whose placement
            // outcome was unknown: it is revived and cancelled (`revive`).
            (_, E::EntryAck) => {
                if self.revive(ENTRY, fx) {
                    return Ok(self.after_revive(fx));
                }
                self.ack(ENTRY, fx);
                Ok(st)
            }
            (S::Pending | S::Entering, E::EntryPartialFill(f)) => {
                if self.apply_fill(ENTRY, *f, kind, fx)? == 0 {
                    return Ok(st);
                }
                // A partial entry is protected at once: children for what filled.
                Ok(self.protect(fx))
            }
            (S::Pending | S::Entering, E::EntryFilled(f)) => {
                self.apply_fill(ENTRY, *f, kind, fx)?;
                self.finish(ENTRY, LegStatus::Filled, fx);
                Ok(self.protect(fx))
            }
            (S::Pending, E::EntryRejected { reason }) => {
                self.finish(ENTRY, LegStatus::Rejected, fx);
                let msg = format!(
                    "entry {} rejected: {reason}",
                    self.legs[ENTRY].client_order_id
                );
                fx.alert(Severity::Warning, AlertCode::EntryRejected, msg);
                Ok(S::Cancelled)
            }
            // Kite never rejects after a partial fill; if it says so, keep
            // (and protect) what did fill.
            (S::Entering, E::EntryRejected { reason }) => {
                self.finish(ENTRY, LegStatus::Rejected, fx);
                let msg = format!(
                    "entry {} rejected after a partial fill: {reason}",
                    self.legs[ENTRY].client_order_id
                );
                fx.alert(Severity::Warning, AlertCode::EntryRejected, msg);
                Ok(self.protect(fx))
            }
            (S::Pending | S::Entering, E::EntryCancelled(f) | E::EntryExpired(f)) => {
                self.apply_fill(ENTRY, *f, kind, fx)?;
                let ours = self.legs[ENTRY].cancel_sent;
                self.finish(ENTRY, LegStatus::Cancelled, fx);
                if !ours && matches!(ev, E::EntryCancelled(_)) {
                    let msg = format!(
                        "entry {} cancelled by the broker or exchange",
                        self.legs[ENTRY].client_order_id
                    );
                    fx.alert(Severity::Warning, AlertCode::EntryCancelledExternally, msg);
                }
                if self.legs[ENTRY].filled == 0 {
                    Ok(S::Cancelled)
                } else {
                    // The timeout (or the exchange) ended a partial entry: keep it, protected.
                    Ok(self.protect(fx))
                }
            }
            // In OPEN the entry is done: these are duplicates or stale. A
            // snapshot reporting *more* fill than the final one is believed
            // (never lose track of a position) and the children grow to it.
            (
                S::Open,
                E::EntryPartialFill(f)
                | E::EntryFilled(f)
                | E::EntryCancelled(f)
                | E::EntryExpired(f),
            ) => {
                let added = self.apply_fill(ENTRY, *f, kind, fx)?;
                let revived = matches!(ev, E::EntryPartialFill(_)) && self.revive(ENTRY, fx);
                if added == 0 {
                    return Ok(if revived { self.after_revive(fx) } else { st });
                }
                let msg = format!(
                    "entry {} reported more fill after it ended",
                    self.legs[ENTRY].client_order_id
                );
                fx.alert(Severity::Warning, AlertCode::LateFill, msg);
                Ok(self.protect(fx))
            }
            (S::Open | S::Closed | S::Cancelled, E::EntryRejected { .. }) => Ok(st),
            // Winding down: a fill that arrives after our cancel (timeout,
            // flatten, EOD) is exited at market at once.
            (
                S::Closing,
                E::EntryPartialFill(f)
                | E::EntryFilled(f)
                | E::EntryCancelled(f)
                | E::EntryExpired(f),
            ) => {
                let added = self.apply_fill(ENTRY, *f, kind, fx)?;
                match ev {
                    E::EntryPartialFill(_) => self.revive(ENTRY, fx),
                    E::EntryFilled(_) => self.finish(ENTRY, LegStatus::Filled, fx),
                    E::EntryCancelled(_) | E::EntryExpired(_) => {
                        self.finish(ENTRY, LegStatus::Cancelled, fx)
                    }
                    _ => false,
                };
                if added > 0 && self.legs[ENTRY].cancel_sent {
                    let msg = format!(
                        "entry {} filled {added} after its cancel; exiting at market",
                        self.legs[ENTRY].client_order_id
                    );
                    fx.alert(Severity::Warning, AlertCode::LateFill, msg);
                }
                Ok(self.wind_down(fx))
            }
            (S::Closing, E::EntryRejected { .. }) => {
                self.finish(ENTRY, LegStatus::Rejected, fx);
                Ok(self.wind_down(fx))
            }
            // A fill reported after the bracket ended means we hold a position
            // we believed flat: reopen (CLOSING) and exit it.
            (
                S::Closed | S::Cancelled,
                E::EntryPartialFill(f)
                | E::EntryFilled(f)
                | E::EntryCancelled(f)
                | E::EntryExpired(f),
            ) => {
                let added = self.apply_fill(ENTRY, *f, kind, fx)?;
                let revived = matches!(ev, E::EntryPartialFill(_)) && self.revive(ENTRY, fx);
                if added > 0 {
                    Ok(self.reopen(ENTRY, fx))
                } else if revived {
                    Ok(self.after_revive(fx))
                } else {
                    Ok(st)
                }
            }

            // ───────────── child orders ─────────────
            // Children exist only once the entry has filled.
            (
                S::Pending,
                E::ChildAck { .. }
                | E::ChildTriggered { .. }
                | E::ChildPartialFill { .. }
                | E::ChildFilled { .. }
                | E::ChildRejected { .. }
                | E::ChildCancelled { .. }
                | E::ModifyAck { .. }
                | E::ModifyRejected { .. },
            ) => Err(self.invalid(kind)),
            (_, E::ChildAck { tag }) => {
                let i = self.child(*tag, kind)?;
                if self.revive(i, fx) {
                    return Ok(self.after_revive(fx));
                }
                self.ack(i, fx);
                Ok(st)
            }
            // The stop's trigger was hit: it acts as an ack and arms the
            // watchdog (in CLOSING too: a stop being cancelled may have
            // triggered and rest unfilled while its cancel is pending). Once
            // the stop is over, a late report changes nothing.
            (_, E::ChildTriggered { tag }) => {
                let i = self.child(*tag, kind)?;
                if self.legs[i].role != Role::Stop {
                    return Err(self.bad(
                        kind,
                        "tag",
                        format!("{tag} has no trigger; only the STOP triggers"),
                    ));
                }
                let revived = self.revive(i, fx);
                self.ack(i, fx);
                self.mark_triggered(i, fx);
                Ok(if revived { self.after_revive(fx) } else { st })
            }
            (S::Entering | S::Open, E::ChildPartialFill { tag, fill }) => {
                let i = self.child(*tag, kind)?;
                let added = self.apply_fill(i, *fill, kind, fx)?;
                let revived = self.revive(i, fx);
                if added == 0 {
                    return Ok(if revived { self.after_revive(fx) } else { st });
                }
                // One-updates-other: a partial child fill resizes its siblings.
                Ok(self.after_child_fill(i, fx))
            }
            (S::Entering | S::Open, E::ChildFilled { tag, fill }) => {
                let i = self.child(*tag, kind)?;
                let added = self.apply_fill(i, *fill, kind, fx)?;
                if !self.finish(i, LegStatus::Filled, fx) && added == 0 {
                    return Ok(st);
                }
                Ok(self.after_child_done(i, fx))
            }
            (S::Entering | S::Open, E::ChildRejected { tag, reason }) => {
                let i = self.child(*tag, kind)?;
                if !self.finish(i, LegStatus::Rejected, fx) {
                    return Ok(st);
                }
                Ok(self.child_lost(i, "rejected", reason, fx))
            }
            (S::Entering | S::Open, E::ChildCancelled { tag, fill }) => {
                let i = self.child(*tag, kind)?;
                let added = self.apply_fill(i, *fill, kind, fx)?;
                let ours = self.legs[i].cancel_sent;
                if !self.finish(i, LegStatus::Cancelled, fx) {
                    return Ok(if added > 0 {
                        self.after_child_fill(i, fx)
                    } else {
                        st
                    });
                }
                if ours {
                    // A take-profit we cancelled because its share went to zero
                    // (it may have filled some before the cancel landed).
                    Ok(self.after_child_fill(i, fx))
                } else {
                    Ok(self.child_lost(i, "cancelled", "by the broker or exchange", fx))
                }
            }
            (
                S::Closing,
                E::ChildPartialFill { tag, fill }
                | E::ChildFilled { tag, fill }
                | E::ChildCancelled { tag, fill },
            ) => {
                let i = self.child(*tag, kind)?;
                self.apply_fill(i, *fill, kind, fx)?;
                let status = match ev {
                    E::ChildFilled { .. } => Some(LegStatus::Filled),
                    E::ChildCancelled { .. } => Some(LegStatus::Cancelled),
                    _ => {
                        self.revive(i, fx);
                        None
                    }
                };
                if let Some(status) = status {
                    if self.finish(i, status, fx)
                        && self.legs[i].role.is_market()
                        && status == LegStatus::Cancelled
                        && !self.legs[i].cancel_sent
                    {
                        // The exchange cancelled (part of) a market order, e.g. outside its protection band.
                        self.exit_failed(i, "cancelled by the exchange", fx);
                    }
                }
                Ok(self.wind_down(fx))
            }
            (S::Closing, E::ChildRejected { tag, reason }) => {
                let i = self.child(*tag, kind)?;
                if self.finish(i, LegStatus::Rejected, fx) && self.legs[i].role.is_market() {
                    self.exit_failed(i, reason, fx);
                }
                Ok(self.wind_down(fx))
            }
            // A fill reported after the bracket ended: reopen and square it.
            (
                S::Closed | S::Cancelled,
                E::ChildPartialFill { tag, fill }
                | E::ChildFilled { tag, fill }
                | E::ChildCancelled { tag, fill },
            ) => {
                let i = self.child(*tag, kind)?;
                let added = self.apply_fill(i, *fill, kind, fx)?;
                let revived = matches!(ev, E::ChildPartialFill { .. }) && self.revive(i, fx);
                if added > 0 {
                    Ok(self.reopen(i, fx))
                } else if revived {
                    Ok(self.after_revive(fx))
                } else {
                    Ok(st)
                }
            }
            (S::Closed | S::Cancelled, E::ChildRejected { tag, .. }) => {
                self.child(*tag, kind)?;
                Ok(st)
            }

            // ───────────── cancel refused: already filled ─────────────
            // Only ever an answer to our cancel, which PENDING never sends.
            (S::Pending, E::CancelRejectedFilled { .. }) => Err(self.invalid(kind)),
            // The fill report is on its way; until then the order still counts
            // as working (a stop keeps covering, the bracket cannot end).
            (
                S::Entering | S::Open | S::Closing | S::Closed | S::Cancelled,
                E::CancelRejectedFilled { tag },
            ) => {
                let i = self.any_leg(*tag, kind)?;
                if !self.legs[i].cancel_sent {
                    return Err(self.bad(kind, "tag", format!("no cancel was sent for {tag}")));
                }
                let leg = &mut self.legs[i];
                if leg.is_live() && !leg.cancel_refused_filled {
                    leg.cancel_refused_filled = true;
                    fx.changed = true;
                }
                Ok(st)
            }

            // ───────────── answers to modifications ─────────────
            (S::Entering | S::Open, E::ModifyAck { tag, seq }) => {
                let i = self.child(*tag, kind)?;
                match self.take_pending(i, *seq, true, kind)? {
                    // The next coalesced change (e.g. a newer trail) may go now.
                    Some(_) => Ok(self.protect(fx.touch())),
                    None => Ok(st),
                }
            }
            // Closing or done: a late answer only updates the order's record
            // (a stop's confirmed size may change how much it covers).
            (S::Closing | S::Closed | S::Cancelled, E::ModifyAck { tag, seq }) => {
                let i = self.child(*tag, kind)?;
                if self.take_pending(i, *seq, true, kind)?.is_none() {
                    return Ok(st);
                }
                fx.changed = true;
                // A flatten's stop is now the market exit: the targets may go.
                self.conversion_answered(i, *seq, None, fx);
                Ok(if st == S::Closing {
                    self.wind_down(fx)
                } else {
                    st
                })
            }
            (S::Entering | S::Open, E::ModifyRejected { tag, seq, reason }) => {
                let i = self.child(*tag, kind)?;
                match self.take_pending(i, *seq, false, kind)? {
                    Some(p) => Ok(self.modify_rejected(i, p, reason, fx)),
                    None => Ok(st),
                }
            }
            (S::Closing | S::Closed | S::Cancelled, E::ModifyRejected { tag, seq, reason }) => {
                let i = self.child(*tag, kind)?;
                if self.take_pending(i, *seq, false, kind)?.is_none() {
                    return Ok(st);
                }
                fx.changed = true;
                // A refused conversion: the stop is cancelled and exited instead.
                self.conversion_answered(i, *seq, Some(reason), fx);
                Ok(if st == S::Closing {
                    self.wind_down(fx)
                } else {
                    st
                })
            }

            // ───────────── local signals ─────────────
            // The kill switch: exits first (the stop turned into the market
            // exit where it can be), then clean-up (`flatten.rs`).
            (S::Pending | S::Entering | S::Open, E::Flatten { convert_stop }) => {
                Ok(self.flatten(*convert_stop, fx))
            }
            // Already winding down or done: nothing to add, and the reason
            // the bracket is closing must not be overwritten.
            (S::Closing | S::Closed | S::Cancelled, E::Flatten { .. }) => Ok(st),
            (S::Pending, E::TimeAdvance) => {
                if self.now_ns >= self.square_off_ns {
                    Ok(self.close(ExitReason::Eod, fx))
                } else if self.now_ns >= self.entry_deadline_ns() {
                    Ok(self.close(ExitReason::EntryTimeout, fx))
                } else {
                    Ok(st)
                }
            }
            (S::Entering | S::Open, E::TimeAdvance) => {
                // A triggered stop that has not filled comes first: its
                // escalation is the most specific reason to close.
                if let Some(to) = self.watchdog(fx) {
                    return Ok(to);
                }
                let time_stop_due = match (self.first_fill_ns, self.spec.time_stop_ns) {
                    (Some(t0), Some(d)) => self.now_ns >= t0.saturating_add(d),
                    _ => false,
                };
                if self.now_ns >= self.square_off_ns {
                    Ok(self.close(ExitReason::Eod, fx))
                } else if time_stop_due {
                    Ok(self.close(ExitReason::Time, fx))
                } else if st == S::Entering
                    && self.now_ns >= self.entry_deadline_ns()
                    && !self.legs[ENTRY].cancel_sent
                {
                    // The unfilled rest of a partial entry times out; what
                    // filled stays open and protected.
                    self.cancel(ENTRY, fx);
                    Ok(st)
                } else {
                    Ok(st)
                }
            }
            // Exit retries wait for time after repeated rejections; the
            // watchdog still watches a triggered stop whose cancel is pending.
            (S::Closing, E::TimeAdvance) => match self.watchdog(fx) {
                Some(to) => Ok(to),
                None => Ok(self.wind_down(fx)),
            },
            (S::Closed | S::Cancelled, E::TimeAdvance) => Ok(st),
            // Every state remembers the last price (it is an observation, not
            // a change of the bracket): the entry may fill after it, and a
            // stop is never sent with a trigger it has already passed.
            (S::Entering | S::Open, E::PriceUpdate { ltp, atr }) => {
                self.last_ltp = Some(*ltp);
                if self.trail(*ltp, *atr, fx) {
                    Ok(self.protect(fx))
                } else {
                    Ok(st)
                }
            }
            (S::Pending | S::Closing | S::Closed | S::Cancelled, E::PriceUpdate { ltp, .. }) => {
                self.last_ltp = Some(*ltp);
                Ok(st)
            }
        }
    }

    // ───────────── lookups and checks ─────────────

    fn check_event(&self, ev: &Event) -> Result<(), OcoError> {
        let kind = ev.kind();
        match ev {
            Event::EntryFilled(f)
            | Event::EntryPartialFill(f)
            | Event::ChildFilled { fill: f, .. }
            | Event::ChildPartialFill { fill: f, .. }
                if f.filled == 0 =>
            {
                Err(self.bad(kind, "filled", "a fill event must report a fill".into()))
            }
            Event::PriceUpdate { ltp, atr } => {
                if ltp.paise() <= 0 {
                    return Err(self.bad(kind, "ltp", format!("must be positive, got {ltp}")));
                }
                if let Some(a) = atr {
                    if a.paise() < 0 {
                        return Err(self.bad(
                            kind,
                            "atr",
                            format!("must not be negative, got {a}"),
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn invalid(&self, event: &'static str) -> OcoError {
        OcoError::InvalidTransition {
            plan_id: self.spec.plan_id.clone(),
            state: self.state,
            event,
        }
    }

    pub(super) fn bad(
        &self,
        event: &'static str,
        field: &'static str,
        problem: String,
    ) -> OcoError {
        OcoError::BadEvent {
            plan_id: self.spec.plan_id.clone(),
            event,
            field,
            problem,
        }
    }

    pub(super) fn idx(&self, tag: OrderTag) -> Option<usize> {
        self.legs.iter().position(|l| l.tag == tag)
    }

    /// The leg of the stop that protects the position (earlier, dead
    /// generations of an adopted bracket are legs of their own).
    pub(super) fn stop_idx(&self) -> Option<usize> {
        self.idx(self.stop_tag)
    }

    fn any_leg(&self, tag: OrderTag, event: &'static str) -> Result<usize, OcoError> {
        self.idx(tag).ok_or_else(|| OcoError::UnknownOrder {
            plan_id: self.spec.plan_id.clone(),
            tag: tag.to_string(),
            event,
        })
    }

    fn child(&self, tag: OrderTag, event: &'static str) -> Result<usize, OcoError> {
        if tag == OrderTag::Entry {
            return Err(self.bad(
                event,
                "tag",
                "ENTRY is not a child order; use the entry events".into(),
            ));
        }
        self.any_leg(tag, event)
    }

    /// The earliest exchange time at which a `TimeAdvance` could change this
    /// bracket (square-off, entry timeout, time stop, exit retry, the
    /// triggered-stop watchdog), so an event loop can fire it at its own time
    /// instead of on the next tick. `None` once terminal. After a
    /// `TimeAdvance` at `t` it is always later than `t` (or `None`): every
    /// deadline up to `t` has been acted on.
    pub fn next_deadline_ns(&self) -> Option<i64> {
        let mut due = match self.state {
            State::Closed | State::Cancelled => return None,
            State::Closing => None,
            State::Pending | State::Entering | State::Open => Some(self.square_off_ns),
        };
        let mut at = |t: i64| due = Some(due.map_or(t, |d: i64| d.min(t)));
        match self.state {
            State::Pending => at(self.entry_deadline_ns()),
            State::Entering if !self.legs[ENTRY].cancel_sent => at(self.entry_deadline_ns()),
            _ => {}
        }
        if matches!(self.state, State::Entering | State::Open) {
            if let (Some(t0), Some(d)) = (self.first_fill_ns, self.spec.time_stop_ns) {
                at(t0.saturating_add(d));
            }
        }
        // A retry time already reached is no deadline: the next event in
        // CLOSING retries (and only a fill clears the backoff).
        if let Some(t) = self.exit_retry_at_ns.filter(|&t| t > self.now_ns) {
            at(t);
        }
        if let Some(t) = self.watchdog_due_ns() {
            at(t);
        }
        due
    }

    fn entry_deadline_ns(&self) -> i64 {
        self.created_ns.saturating_add(self.spec.entry_timeout_ns)
    }

    // ───────────── leg bookkeeping ─────────────

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_leg(
        &mut self,
        tag: OrderTag,
        role: Role,
        side: Side,
        qty: u64,
        order_type: OrderType,
        price: Option<Price>,
        trigger: Option<Price>,
        reason: Option<ExitReason>,
        fx: &mut Fx,
    ) {
        // plan_id was validated at open, so this cannot fail.
        let client_order_id = order_client_id(tag, &self.spec.plan_id)
            .unwrap_or_else(|_| format!("{}:{tag}", self.spec.plan_id));
        let order = NewOrder {
            client_order_id: client_order_id.clone(),
            tag,
            role,
            side,
            qty,
            order_type,
            price,
            trigger,
            reason,
        };
        self.legs.push(Leg {
            tag,
            client_order_id,
            role,
            side,
            order_type,
            qty,
            max_qty: qty,
            price,
            trigger,
            filled: 0,
            avg_price: Price::ZERO,
            status: LegStatus::Sent,
            cancel_sent: false,
            cancel_sent_ns: None,
            triggered_ns: None,
            abandoned: false,
            cancel_refused_filled: false,
            pending: Vec::new(),
            modifications: 0,
            applied_seq: 0,
            reason,
        });
        fx.changed = true;
        fx.commands.push(if role.is_market() {
            Command::ExitAtMarket(order)
        } else {
            Command::PlaceOrder(order)
        });
    }

    fn ack(&mut self, i: usize, fx: &mut Fx) {
        if self.legs[i].status == LegStatus::Sent {
            self.legs[i].status = LegStatus::Working;
            fx.changed = true;
        }
    }

    /// Applies a cumulative fill; returns the newly filled quantity (0 when
    /// the report is stale or a duplicate). Checks come before any change.
    fn apply_fill(
        &mut self,
        i: usize,
        fill: Fill,
        event: &'static str,
        fx: &mut Fx,
    ) -> Result<u64, OcoError> {
        let leg = &self.legs[i];
        if fill.filled > leg.max_qty {
            return Err(self.bad(
                event,
                "filled",
                format!(
                    "{} exceeds the largest quantity ever asked of {} ({})",
                    fill.filled, leg.tag, leg.max_qty
                ),
            ));
        }
        if fill.filled > 0 && fill.avg_price.paise() <= 0 {
            return Err(self.bad(
                event,
                "avg_price",
                format!(
                    "must be positive once {} has filled, got {}",
                    leg.tag, fill.avg_price
                ),
            ));
        }
        if fill.filled <= leg.filled {
            return Ok(0);
        }
        let now = self.now_ns;
        let leg = &mut self.legs[i];
        let before = leg.notional();
        let added = fill.filled - leg.filled;
        leg.filled = fill.filled;
        leg.avg_price = fill.avg_price;
        let delta = leg.notional() - before;
        fx.fills.push(FillReport {
            client_order_id: leg.client_order_id.clone(),
            tag: leg.tag,
            role: leg.role,
            side: leg.side,
            qty: added,
            notional_paise: i64::try_from(delta).unwrap_or(i64::MAX),
            cum_filled: leg.filled,
            avg_price: leg.avg_price,
            reason: leg.reason,
        });
        fx.changed = true;
        if leg.role == Role::Stop {
            // A stop fills only once triggered, whether or not that was reported.
            leg.triggered_ns.get_or_insert(now);
        }
        if leg.role == Role::Entry && self.first_fill_ns.is_none() {
            self.first_fill_ns = Some(now);
        }
        if leg.role.is_market() {
            // A market order that fills ends a run of rejections.
            self.exit_failures_in_row = 0;
            self.exit_retry_at_ns = None;
        }
        Ok(added)
    }

    /// Moves a live leg to a terminal status; false if it already was terminal.
    pub(super) fn finish(&mut self, i: usize, status: LegStatus, fx: &mut Fx) -> bool {
        let leg = &mut self.legs[i];
        if !leg.is_live() {
            return false;
        }
        leg.status = status;
        leg.pending.clear();
        fx.changed = true;
        true
    }

    /// A live report (ack, partial fill) for an order believed rejected: its
    /// placement outcome was unknown and the execution layer gave up on it.
    /// Believe the broker, and cancel it so it cannot become an orphan.
    fn revive(&mut self, i: usize, fx: &mut Fx) -> bool {
        if self.legs[i].status != LegStatus::Rejected {
            return false;
        }
        self.legs[i].status = LegStatus::Working;
        fx.changed = true;
        let msg = format!(
            "{} reported working after it was reported rejected; cancelling it",
            self.legs[i].client_order_id
        );
        fx.alert(Severity::Error, AlertCode::ZombieOrder, msg);
        // Always (again): a cancel sent while it was believed dead has been
        // answered already, or the report is stale and the broker's answer to
        // this one (already cancelled) settles it.
        self.cancel(i, fx);
        true
    }

    /// The state after a revived order: terminal brackets wind down again.
    fn after_revive(&mut self, fx: &mut Fx) -> State {
        match self.state {
            State::Closed | State::Cancelled => {
                self.closing_reason.get_or_insert(ExitReason::Unprotected);
                self.wind_down(fx)
            }
            State::Closing => self.wind_down(fx),
            State::Entering | State::Open => self.protect(fx),
            State::Pending => State::Pending,
        }
    }

    /// Removes the answered modification. `Ok(None)` for a duplicate or late
    /// answer; an error for a seq never sent.
    fn take_pending(
        &mut self,
        i: usize,
        seq: u32,
        acked: bool,
        event: &'static str,
    ) -> Result<Option<super::leg::PendingModify>, OcoError> {
        let leg = &self.legs[i];
        if seq == 0 || seq > leg.modifications {
            return Err(self.bad(
                event,
                "seq",
                format!("no modification {seq} was sent to {}", leg.tag),
            ));
        }
        let leg = &mut self.legs[i];
        let Some(k) = leg.pending.iter().position(|p| p.seq == seq) else {
            return Ok(None);
        };
        let p = leg.pending.remove(k);
        if acked {
            // Modifications are applied in order: an ack also settles older ones.
            leg.pending.retain(|q| q.seq > seq);
            if seq > leg.applied_seq {
                leg.applied_seq = seq;
                leg.qty = p.qty;
                leg.price = p.price;
                leg.trigger = p.trigger;
                if let Some(t) = p.order_type {
                    leg.order_type = t;
                }
            }
        }
        Ok(Some(p))
    }

    // ───────────── read side ─────────────

    pub fn spec(&self) -> &BracketSpec {
        &self.spec
    }

    pub fn plan_id(&self) -> &str {
        &self.spec.plan_id
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }

    /// Every order the bracket has placed, entry first.
    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    pub fn leg(&self, tag: OrderTag) -> Option<&Leg> {
        self.legs.iter().find(|l| l.tag == tag)
    }

    /// The stop that protects (or is to protect) the position: STOP, or a
    /// replacement STOPn of an adopted bracket whose stop was lost.
    pub fn stop_tag(&self) -> OrderTag {
        self.stop_tag
    }

    /// The final target that is (or is to be) working: TP (TP2 when scaling
    /// out), or a replacement TARGETn of an adopted bracket whose target was
    /// lost.
    pub fn target_tag(&self) -> OrderTag {
        self.target_tag
    }

    /// Why a fill of take-profit `tag` closes: TP1 is the scale-out step,
    /// the final target of a scaled-out bracket (TP2 or its replacement) TP2.
    pub(super) fn target_reason(&self, tag: OrderTag) -> ExitReason {
        match (tag, self.spec.scale_out.is_some()) {
            (OrderTag::TpN(1), _) => ExitReason::Tp1,
            (OrderTag::TpN(_), _) | (OrderTag::TargetN(_), true) => ExitReason::Tp2,
            _ => ExitReason::Tp,
        }
    }

    /// Orders the broker may still execute.
    pub fn working_legs(&self) -> impl Iterator<Item = &Leg> {
        self.legs.iter().filter(|l| l.is_live())
    }

    pub fn created_ns(&self) -> i64 {
        self.created_ns
    }

    /// Latest time seen.
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    pub fn square_off_at_ns(&self) -> i64 {
        self.square_off_ns
    }

    pub fn entry_filled(&self) -> u64 {
        self.legs[ENTRY].filled
    }

    pub fn entry_avg_price(&self) -> Price {
        self.legs[ENTRY].avg_price
    }

    /// Quantity filled by orders in the exit direction (stop, targets, exits).
    pub fn exited_qty(&self) -> u64 {
        self.legs
            .iter()
            .filter(|l| l.side != self.spec.side)
            .map(|l| l.filled)
            .sum()
    }

    /// Quantity bought (sold) back by corrective orders.
    pub fn corrected_qty(&self) -> u64 {
        self.legs
            .iter()
            .filter(|l| l.role == Role::Corrective)
            .map(|l| l.filled)
            .sum()
    }

    /// Open position in the entry direction; negative after an overfill.
    pub fn net_qty(&self) -> i64 {
        self.legs.iter().fold(0i64, |n, l| {
            if l.side == self.spec.side {
                n + signed(l.filled)
            } else {
                n - signed(l.filled)
            }
        })
    }

    /// The stop trigger the machine wants (plan stop, breakeven or trailed).
    pub fn stop_target(&self) -> Price {
        self.stop_target
    }

    pub fn closing_reason(&self) -> Option<ExitReason> {
        self.closing_reason
    }

    /// The last price the bracket was told of (`PriceUpdate`), if any.
    pub fn last_price(&self) -> Option<Price> {
        self.last_ltp
    }

    /// Escalations of the triggered-stop watchdog so far (0, 1 or 2), for a
    /// metric: 1 = the stop was cancelled and the position exits at market,
    /// 2 = the position still had not exited a second timeout later.
    pub fn watchdog_escalations(&self) -> u32 {
        self.watchdog_escalations
    }

    /// The exchange time the machine first asked to cancel order `tag`
    /// (`None` if it never did, or no such order).
    pub fn cancel_sent_at(&self, tag: OrderTag) -> Option<i64> {
        self.leg(tag).and_then(|l| l.cancel_sent_ns)
    }

    /// Whether a fill of `tag` at exchange time `fill_ns` raced our cancel of
    /// it: true when no cancel was sent, or when the fill came before the
    /// cancel could have reached the venue (`cancel_sent + latency_ns`). A
    /// double exit whose second fill raced the cancel is a race, not a fault.
    pub fn fill_raced_cancel(&self, tag: OrderTag, fill_ns: i64, latency_ns: i64) -> bool {
        match self.cancel_sent_at(tag) {
            None => true,
            Some(sent) => fill_ns < sent.saturating_add(latency_ns),
        }
    }

    /// Market exits are paused (backoff after repeated rejections) or out of ids.
    pub fn exit_blocked(&self) -> bool {
        self.exit_retry_at_ns.is_some_and(|t| self.now_ns < t) || self.next_market_tag().is_none()
    }

    /// Gross realized PnL in paise from the actual fill prices, once the
    /// position is flat again (`None` while open or if nothing filled).
    pub fn realized_pnl_paise(&self) -> Option<i64> {
        if self.entry_filled() == 0 || self.net_qty() != 0 {
            return None;
        }
        let (mut bought, mut sold) = (0i128, 0i128);
        for l in &self.legs {
            match l.side {
                Side::Buy => bought += l.notional(),
                Side::Sell => sold += l.notional(),
            }
        }
        Some(i64::try_from(sold - bought).unwrap_or(i64::MAX))
    }
}

impl Fx {
    /// Marks the step as a change (used where the change is in a helper's input).
    pub(super) fn touch(&mut self) -> &mut Fx {
        self.changed = true;
        self
    }
}
