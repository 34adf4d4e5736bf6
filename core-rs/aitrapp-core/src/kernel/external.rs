//! The kernel on an external venue (Kite, driven from Python): broker
//! reports come in through [`Kernel::on_order_update`] and are routed to
//! their brackets exactly as the simulated venue's updates are (same event
//! log rows); what the broker answers to our own commands (a placement
//! that failed, a modification or cancel refused) comes back through the
//! `on_*` calls below; the commands to execute go out through
//! [`Kernel::take_commands`]. Brackets of an earlier process are adopted
//! with [`Kernel::adopt`].
//!
//! Time: a report is routed at its exchange time, or at the kernel's time
//! when that is later (time never runs backwards; a report stamped before
//! the last tick is applied at that tick's time). Timers due before it
//! fire first.

use super::book::{OrderRef, Slot};
use super::Kernel;
use crate::ids::OrderTag;
use crate::oco::{AdoptedChild, Bracket, BracketSpec, Event, OcoError, OrderType};
use crate::price::Price;
use crate::strategies::{EmaCross, Orb, TrendPullback, VwapReversion};
use crate::venue::{
    ExternalUpdate, ExternalVenue, KnownOrder, Protection, Validity, Venue, VenueCommand,
    VenueError, VenueModify, VenueOrder, VenueStatus,
};
use std::collections::{HashMap, VecDeque};

/// A modification sent to the broker whose answer has not come back.
#[derive(Debug, Clone, Copy)]
pub(super) struct AwaitedModify {
    ix: usize,
    tag: OrderTag,
    seq: u32,
    change: VenueModify,
}

/// Per venue order id, in the order sent (the shell answers them in order).
pub(super) type Awaiting = HashMap<u64, VecDeque<AwaitedModify>>;

impl<V: Venue> Kernel<V> {
    pub(super) fn await_modify_answer(
        &mut self,
        order_id: u64,
        ix: usize,
        tag: OrderTag,
        seq: u32,
        change: VenueModify,
    ) {
        self.awaiting
            .entry(order_id)
            .or_default()
            .push_back(AwaitedModify {
                ix,
                tag,
                seq,
                change,
            });
    }
}

/// An open bracket of an earlier process, as the broker and the database
/// report it (the entry is over; its fill is the position).
#[derive(Debug, Clone)]
pub struct AdoptedBracket {
    /// The spec the bracket was opened with (its options included).
    pub spec: BracketSpec,
    pub token: u32,
    /// The strategy that decided it (a name the engine knows, else "ADOPTED").
    pub strategy: String,
    pub entry_filled: u64,
    pub entry_avg: Price,
    /// The children as the broker has them; each with its status there.
    pub children: Vec<(AdoptedChild, VenueStatus)>,
}

fn strategy_name(name: &str) -> &'static str {
    [
        Orb::NAME,
        TrendPullback::NAME,
        VwapReversion::NAME,
        EmaCross::NAME,
    ]
    .into_iter()
    .find(|n| *n == name)
    .unwrap_or("ADOPTED")
}

impl Kernel<ExternalVenue> {
    /// The commands the brackets queued since the last call, in order.
    pub fn take_commands(&mut self) -> Vec<VenueCommand> {
        self.venue.take_commands()
    }

    fn report_time(&mut self, ts_ns: i64) -> i64 {
        let t = ts_ns.max(self.now_ns);
        self.advance_time(t);
        t
    }

    /// One broker report. Ok(false): it told nothing new (unknown order,
    /// duplicate, stale reorder) and changed nothing; Err: malformed.
    pub fn on_order_update(&mut self, mut u: ExternalUpdate) -> Result<bool, VenueError> {
        u.ts_ns = self.report_time(u.ts_ns);
        let Some(update) = self.venue.observe(u)? else {
            return Ok(false);
        };
        self.updates.push(update);
        self.route_updates();
        Ok(true)
    }

    /// The placement of `order_id` failed (Kite's InputException, an HTTP
    /// error with no order at the broker, the journal refusing an entry):
    /// its bracket hears REJECTED with `message`, as from the broker.
    pub fn on_place_failed(&mut self, order_id: u64, ts_ns: i64, message: &str) -> bool {
        let t = self.report_time(ts_ns);
        let Some(update) = self.venue.place_failed(order_id, t, message) else {
            return false;
        };
        self.updates.push(update);
        self.route_updates();
        true
    }

    /// The broker's answer to our oldest modification of `order_id` still
    /// unanswered: accepted (`refusal` None) or refused with Kite's message.
    pub fn on_modify_answer(
        &mut self,
        order_id: u64,
        ts_ns: i64,
        refusal: Option<&str>,
    ) -> Result<(), VenueError> {
        let t = self.report_time(ts_ns);
        let waiting = self.awaiting.get_mut(&order_id);
        let Some(m) = waiting.and_then(VecDeque::pop_front) else {
            return Err(VenueError::Refused(format!(
                "order {order_id}: no modification awaits an answer"
            )));
        };
        if self.awaiting.get(&order_id).is_some_and(VecDeque::is_empty) {
            self.awaiting.remove(&order_id);
        }
        let event = match refusal {
            None => {
                self.venue.modify_accepted(order_id, &m.change);
                Event::ModifyAck {
                    tag: m.tag,
                    seq: m.seq,
                }
            }
            Some(reason) => {
                self.venue.modify_refused(order_id);
                Event::ModifyRejected {
                    tag: m.tag,
                    seq: m.seq,
                    reason: reason.to_string(),
                }
            }
        };
        self.handle(m.ix, t, &event);
        self.route_updates();
        Ok(())
    }

    /// The broker refused our cancel of `order_id`. A completed order is
    /// the common case (the fill report is on its way): the bracket hears
    /// "cancel refused: filled". Otherwise the order is still working at
    /// the broker; the refusal is an alert and the next report settles it.
    pub fn on_cancel_refused(&mut self, order_id: u64, ts_ns: i64, message: &str) -> bool {
        let t = self.report_time(ts_ns);
        let Some(cid) = self.venue.client_order_id_of(order_id) else {
            return false;
        };
        let Some((ix, tag)) = self.book.lookup(cid) else {
            return false;
        };
        let complete = self.book.slots[ix].order(tag).is_some_and(|o| o.complete)
            || self.venue.status_of(order_id) == Some(VenueStatus::Complete)
            || message.to_ascii_lowercase().contains("complete");
        if complete {
            self.handle(ix, t, &Event::CancelRejectedFilled { tag });
        } else {
            let plan = self.book.slots[ix].bracket.plan_id().to_string();
            self.counters.alerts += 1;
            self.log.alert(
                t,
                &plan,
                "WARNING",
                "CANCEL_REFUSED",
                format!("cancel of {tag} refused by the broker: {message}"),
            );
        }
        self.route_updates();
        true
    }

    /// Takes over an open bracket of an earlier process at `now_ns`: its
    /// working children keep protecting the position under new venue ids,
    /// and what the machine finds missing (a stop, a target) is queued as
    /// commands. The engine must know the position already (restore it
    /// first). Returns the (client order id, venue id) of every adopted
    /// child, for the shell to map the broker's ids.
    pub fn adopt(
        &mut self,
        now_ns: i64,
        a: AdoptedBracket,
    ) -> Result<Vec<(String, u64)>, OcoError> {
        let plan_id = a.spec.plan_id.clone();
        if self.book.contains_plan(&plan_id) {
            return Err(OcoError::BadAdoption {
                plan_id,
                field: "plan_id",
                problem: "a bracket for this plan is already open".into(),
            });
        }
        let t = self.report_time(now_ns);
        let children: Vec<AdoptedChild> = a.children.iter().map(|(c, _)| c.clone()).collect();
        let planned_entry = a.spec.entry_price.paise();
        let planned_stop = a.spec.stop.paise();
        let risk = (planned_entry - planned_stop)
            .unsigned_abs()
            .saturating_mul(a.spec.qty);
        let (bracket, commands) =
            Bracket::adopt(a.spec, t, a.entry_filled, a.entry_avg, &children)?;
        let (mut exit_qty, mut exit_notional) = (0u64, 0i128);
        for c in &children {
            exit_qty += c.filled;
            exit_notional += i128::from(c.avg_price.paise()) * i128::from(c.filled);
        }
        let ix = self.book.insert(Slot {
            bracket,
            token: a.token,
            strategy: strategy_name(&a.strategy),
            planned_entry,
            planned_stop,
            planned_risk_paise: i64::try_from(risk).unwrap_or(i64::MAX),
            orders: Vec::new(),
            opened_ns: Some(t),
            exit_qty,
            exit_notional,
            engine_exited: exit_qty.min(a.entry_filled),
            late_exit_fill: false,
            booked: false,
            steps: 0,
        });
        let mut ids = Vec::with_capacity(a.children.len());
        for (c, status) in &a.children {
            let Some(leg) = self.book.slots[ix].bracket.leg(c.tag) else {
                continue;
            };
            let order = VenueOrder {
                client_order_id: leg.client_order_id.clone(),
                tag: crate::ids::broker_tag(&leg.client_order_id).unwrap_or_default(),
                token: a.token,
                side: leg.side,
                qty: c.qty,
                order_type: leg.order_type,
                price: leg.price,
                trigger: leg.trigger,
                validity: Validity::Day,
                protection: match leg.order_type {
                    OrderType::Market | OrderType::SlM => Protection::Auto,
                    OrderType::Limit | OrderType::Sl => Protection::None,
                },
            };
            let cid = order.client_order_id.clone();
            let order_id = self.venue.adopt_order(KnownOrder {
                order,
                status: *status,
                filled: c.filled,
                avg_price: c.avg_price,
            });
            self.book.route(
                ix,
                OrderRef {
                    tag: c.tag,
                    order_id,
                    client_order_id: cid.clone(),
                    cancel_sent_ns: None,
                    complete: *status == VenueStatus::Complete,
                },
            );
            ids.push((cid, order_id));
        }
        let state = self.book.slots[ix].bracket.state().as_str();
        self.log.transition(t, &plan_id, "NEW", state, "ADOPTED");
        self.book.slots[ix].steps = 1;
        let mut feedback = VecDeque::new();
        self.execute(ix, t, commands, &mut feedback);
        self.drain_feedback(ix, t, feedback);
        if self.book.refresh(ix) {
            self.book_trade(ix, t);
        }
        self.route_updates();
        Ok(ids)
    }
}
