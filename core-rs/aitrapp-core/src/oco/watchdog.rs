//! Stops that the market has outrun: a stop whose trigger the last price
//! has already passed (never sent: the exchange would reject it), and a stop
//! that triggered but does not fill (the watchdog).
//!
//! The watchdog's first escalation cancels the stop and exits at market
//! through the usual closing path rather than modifying the stop to a new
//! price. That is the choice that is safe against the cancel/fill race: while
//! CLOSING, a working stop keeps covering its part until the venue confirms
//! the cancel, and that confirmation carries the stop's final fill, so the
//! market exit for that part is sized from what really filled and a fill that
//! lands just before the cancel cannot double the exit. (A modify would keep
//! a single order too, but it needs a limit the venue accepts; the core does
//! not know the venue's protection band, and an SL-M has no price to move.)
//! The cost is one cancel round trip, which the second escalation bounds: a
//! timeout later, whatever is still open exits at market without waiting for
//! the cancel (CRITICAL); should the stop fill after all, the overfill is
//! bought back like any double fill.

use super::command::{AlertCode, ExitReason, Severity};
use super::machine::{Bracket, Fx};
use super::state::State;
use crate::price::Price;

/// `5`, `2.5`, `0.25`: a duration in seconds for messages (integer arithmetic).
fn seconds(ns: i64) -> String {
    let ms = ns / 1_000_000;
    let (whole, frac) = (ms / 1_000, ms % 1_000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

impl Bracket {
    /// True if the last known price has reached or passed `trigger` on the
    /// losing side (a long's sell stop at or above the last price, a short's
    /// buy stop at or below it): Kite rejects such a stop.
    pub(super) fn gapped(&self, trigger: Price) -> bool {
        self.last_ltp
            .is_some_and(|ltp| self.spec.side.sign() * (ltp.paise() - trigger.paise()) <= 0)
    }

    /// The stop cannot be sent (`what`: placed, resized, moved) because the
    /// market is through `trigger`: exit at market now, booked as a stop-out.
    pub(super) fn stop_gapped(&mut self, trigger: Price, what: &str, fx: &mut Fx) -> State {
        let ltp = self.last_ltp.unwrap_or(trigger);
        let msg = format!(
            "bracket {}: last price {ltp} is already through the stop trigger {trigger}, so the stop cannot be {what}; exiting at market",
            self.spec.plan_id
        );
        fx.alert(Severity::Warning, AlertCode::StopGapped, msg);
        self.close(ExitReason::StopGapped, fx)
    }

    /// Records that the stop (leg `i`) has triggered, once, while it works.
    pub(super) fn mark_triggered(&mut self, i: usize, fx: &mut Fx) {
        let now = self.now_ns;
        let leg = &mut self.legs[i];
        if leg.is_live() && leg.triggered_ns.is_none() {
            leg.triggered_ns = Some(now);
            fx.changed = true;
        }
    }

    /// When the watchdog acts next: a timeout after the working stop
    /// triggered, then a timeout after the first escalation while the
    /// position is still open. `None` when it has nothing to watch.
    pub(super) fn watchdog_due_ns(&self) -> Option<i64> {
        let timeout = self.spec.stop_fill_timeout_ns;
        match self.watchdog_escalations {
            0 => {
                // A stop a flatten turned MARKET should fill at once, like a
                // triggered one: it is watched from the conversion on.
                let stop = self.leg(self.stop_tag).filter(|l| l.is_live())?;
                let converted = self.stop_to_market.standing_since();
                let since = match (stop.triggered_ns, converted) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                since.map(|t| t.saturating_add(timeout))
            }
            1 if self.net_qty() > 0 => self
                .watchdog_escalated_ns
                .map(|t| t.saturating_add(timeout)),
            _ => None,
        }
    }

    /// Escalates if the watchdog is due (`TimeAdvance`); returns the state
    /// that results, or `None` when nothing was due.
    pub(super) fn watchdog(&mut self, fx: &mut Fx) -> Option<State> {
        let due = self.watchdog_due_ns()?;
        if self.now_ns < due {
            return None;
        }
        let secs = seconds(self.spec.stop_fill_timeout_ns);
        self.watchdog_escalations += 1;
        self.watchdog_escalated_ns = Some(self.now_ns);
        fx.changed = true;
        let stop = self.stop_idx();
        if self.watchdog_escalations == 1 {
            // `due` came from the working, triggered stop.
            let Some(i) = stop else {
                return Some(self.state);
            };
            // A converted stop that hangs is cancelled like a triggered one.
            let converted = self.drop_conversion();
            let leg = &self.legs[i];
            let msg = format!(
                "stop {} {} but filled only {} of {} within {secs} s; {}",
                leg.client_order_id,
                if converted {
                    "was turned into the flatten's market exit"
                } else {
                    "triggered"
                },
                leg.filled,
                leg.wanted_qty(),
                if leg.cancel_sent {
                    "its cancel is pending, the position exits at market once it is confirmed"
                } else {
                    "cancelling it and exiting at market"
                }
            );
            fx.alert(Severity::Warning, AlertCode::StopFillTimeout, msg);
            return Some(self.close(ExitReason::Stop, fx));
        }
        // Second timeout with the position still open: stop waiting for the
        // stop's cancel and exit what it was to cover.
        let open = self.net_qty();
        let mut waiting_on = String::new();
        if let Some(i) = stop {
            let leg = &mut self.legs[i];
            if leg.is_live() {
                leg.abandoned = true;
                waiting_on = format!(" (stop {} still unconfirmed)", leg.client_order_id);
            }
        }
        let msg = format!(
            "bracket {}: {open} still open {secs} s after the stop-fill escalation{waiting_on}; exiting at market without waiting",
            self.spec.plan_id
        );
        fx.alert(Severity::Critical, AlertCode::StopUnfilled, msg);
        Some(self.close(ExitReason::Stop, fx))
    }
}
