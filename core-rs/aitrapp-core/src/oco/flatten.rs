//! The kill switch: exits first, then clean-up.
//!
//! Cancelling a stop and exiting at market once the cancel is confirmed costs
//! three order requests and two round trips a bracket, and the position stays
//! open meanwhile. So `Flatten { convert_stop: true }` turns a working SL-M
//! stop into the bracket's market exit with ONE modification (order type
//! MARKET, its quantity unchanged): the stop keeps covering its part, so
//! nothing else exits it (never a double exit of our own making), and its
//! fill closes the position. The take-profits are cancelled only once the
//! venue has answered that modification, and the entry (if still working)
//! is cancelled at once.
//!
//! The machine falls back to cancel + market exit, the path every other
//! close takes, when the stop is not a live SL-M (a stop-limit has no
//! market protection; a stop with a modification in flight is not
//! converted), has no modification left, or is larger than the
//! open position; when the venue refuses the modification (WARNING); when
//! the converted stop is larger than the open position after all (a target
//! filled meanwhile); and when it hangs: the triggered-stop watchdog treats
//! a conversion like a trigger, so a stop still unfilled `stop_fill_timeout`
//! after the modification was sent is cancelled (WARNING) and, a timeout
//! later, abandoned for a market exit (CRITICAL).
//!
//! Only the kill switch converts. The time stop and the end-of-day
//! square-off are routine exits of a planned day: they keep the
//! conservative cancel-then-exit path (and every replay's event log as it
//! was).

use super::command::{AlertCode, Command, ExitReason, ModifyOrder, OrderType, Severity};
use super::leg::{PendingModify, Role};
use super::machine::{signed, Bracket, Fx};
use super::state::State;

/// Where a flatten's conversion of the stop into the market exit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopToMarket {
    /// Never asked.
    #[default]
    No,
    /// Modification `seq` (order type MARKET) sent at `at_ns`, not yet answered.
    Asked { seq: u32, at_ns: i64 },
    /// The venue took it (asked at `at_ns`): the stop is the market exit.
    Converted { at_ns: i64 },
    /// Refused or given up: the stop is cancelled like any other.
    Dropped,
}

impl StopToMarket {
    /// When the conversion was asked, while it stands (asked or taken).
    pub fn standing_since(self) -> Option<i64> {
        match self {
            StopToMarket::Asked { at_ns, .. } | StopToMarket::Converted { at_ns } => Some(at_ns),
            StopToMarket::No | StopToMarket::Dropped => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            StopToMarket::No => "NO",
            StopToMarket::Asked { .. } => "ASKED",
            StopToMarket::Converted { .. } => "CONVERTED",
            StopToMarket::Dropped => "DROPPED",
        }
    }
}

impl Bracket {
    /// `Flatten` from PENDING, ENTERING or OPEN.
    pub(super) fn flatten(&mut self, convert_stop: bool, fx: &mut Fx) -> State {
        if convert_stop {
            if let Some(i) = self.convertible_stop() {
                self.stop_to_market(i, fx);
            }
        }
        self.close(ExitReason::Flatten, fx)
    }

    /// The stop, if one modification can make it the exact market exit: a
    /// live SL-M (no modification in flight, one left) whose remaining
    /// quantity the open position covers. A stop not yet acknowledged counts
    /// (Kite's stream may never report TRIGGER PENDING): the modification
    /// queues behind its placement, and a stop that turns out rejected or
    /// refuses the modification is exited at market all the same.
    fn convertible_stop(&self) -> Option<usize> {
        let i = self.stop_idx()?;
        let l = &self.legs[i];
        let net = self.left_for_the_stop();
        let remaining = l.qty.saturating_sub(l.filled);
        let ok = self.stop_to_market == StopToMarket::No
            && l.is_live()
            && !l.cancel_sent
            && l.order_type == OrderType::SlM
            && l.pending.is_empty()
            && l.modifications < self.spec.max_modifications
            && remaining > 0
            && remaining <= net;
        ok.then_some(i)
    }

    /// Sends the one modification: MARKET, the same total quantity.
    fn stop_to_market(&mut self, i: usize, fx: &mut Fx) {
        let now = self.now_ns;
        let leg = &mut self.legs[i];
        leg.modifications += 1;
        let seq = leg.modifications;
        leg.pending.push(PendingModify {
            seq,
            qty: leg.qty,
            price: None,
            trigger: None,
            order_type: Some(OrderType::Market),
        });
        // Its fill is the flatten's exit.
        leg.reason = Some(ExitReason::Flatten);
        self.stop_to_market = StopToMarket::Asked { seq, at_ns: now };
        fx.changed = true;
        fx.commands.push(Command::Modify(ModifyOrder {
            client_order_id: leg.client_order_id.clone(),
            tag: leg.tag,
            seq,
            qty: leg.qty,
            price: None,
            trigger: None,
            order_type: Some(OrderType::Market),
        }));
    }

    /// The venue answered modification `seq` of leg `i` (already taken off
    /// its pending list): the conversion stands, or the stop goes back to
    /// being cancelled like any other.
    pub(super) fn conversion_answered(
        &mut self,
        i: usize,
        seq: u32,
        refusal: Option<&str>,
        fx: &mut Fx,
    ) {
        let StopToMarket::Asked { seq: asked, at_ns } = self.stop_to_market else {
            return;
        };
        if asked != seq || self.stop_idx() != Some(i) {
            return;
        }
        fx.changed = true;
        let Some(why) = refusal else {
            self.stop_to_market = StopToMarket::Converted { at_ns };
            return;
        };
        self.stop_to_market = StopToMarket::Dropped;
        let leg = &mut self.legs[i];
        leg.reason = Some(ExitReason::Stop);
        let msg = format!(
            "stop {} could not be turned into the market exit ({why}); cancelling it, its part exits at market once the cancel is confirmed",
            leg.client_order_id
        );
        fx.alert(Severity::Warning, AlertCode::StopModifyRejected, msg);
    }

    /// What is open and not already being exited by working market orders:
    /// the most a stop turned MARKET may still exit.
    fn left_for_the_stop(&self) -> u64 {
        let mut left = self.net_qty();
        for l in self.legs.iter().filter(|l| l.is_live()) {
            match l.role {
                Role::Exit => left -= signed(l.commanded_remaining()),
                Role::Corrective => left += signed(l.commanded_remaining()),
                Role::Entry | Role::Stop | Role::TakeProfit => {}
            }
        }
        u64::try_from(left).unwrap_or(0)
    }

    /// A standing conversion that would now exit more than is left to exit
    /// (a target filled meanwhile) is given up: the stop is cancelled and
    /// whatever is still open exits at market once that is confirmed.
    pub(super) fn check_conversion(&mut self) {
        if self.stop_to_market.standing_since().is_none() {
            return;
        }
        let Some(i) = self.stop_idx() else {
            return;
        };
        let net = self.left_for_the_stop();
        let leg = &self.legs[i];
        if leg.is_live() && leg.qty.max(leg.wanted_qty()).saturating_sub(leg.filled) > net {
            self.stop_to_market = StopToMarket::Dropped;
        }
    }

    /// Whether the targets wait for the answer to the conversion: while it
    /// is asked, the stop still works, and they together work no more than
    /// is open (a stop fill meanwhile would leave them oversized: they go).
    pub(super) fn holds_targets(&self) -> bool {
        if !matches!(self.stop_to_market, StopToMarket::Asked { .. }) {
            return false;
        }
        if !self.stop_idx().is_some_and(|i| self.legs[i].is_live()) {
            return false;
        }
        let targets: u64 = self
            .legs
            .iter()
            .filter(|l| l.role == Role::TakeProfit)
            .map(|l| l.commanded_remaining())
            .sum();
        targets <= u64::try_from(self.net_qty()).unwrap_or(0)
    }

    /// While winding down, leg `i` is not cancelled: it is the stop turned
    /// into the market exit, or a target waiting for that conversion's
    /// answer (`hold_targets`, from `holds_targets`).
    pub(super) fn keeps_working(&self, i: usize, hold_targets: bool) -> bool {
        match self.legs[i].role {
            Role::Stop => {
                self.stop_idx() == Some(i) && self.stop_to_market.standing_since().is_some()
            }
            Role::TakeProfit => hold_targets,
            _ => false,
        }
    }

    /// The watchdog gives up on a converted stop that has not filled.
    pub(super) fn drop_conversion(&mut self) -> bool {
        if self.stop_to_market.standing_since().is_some() {
            self.stop_to_market = StopToMarket::Dropped;
            true
        } else {
            false
        }
    }

    /// Where the flatten's conversion of the stop stands.
    pub fn stop_conversion(&self) -> StopToMarket {
        self.stop_to_market
    }
}
