//! Between the venue and the brackets: venue updates become OCO events at
//! their own time, OCO commands become venue calls, and what the brackets
//! learn goes back to the engine (fills, closes) and into the event log.

use super::book::{OrderRef, Slot};
use super::Kernel;
use crate::engine::{Decision, Outcome};
use crate::ids::broker_tag;
use crate::oco::{
    Bracket, BracketSpec, Command, Event, Fill, NewOrder, OrderStatus, OrderType, Role, Transition,
};
use crate::price::Price;
use crate::venue::{
    Protection, Validity, Venue, VenueError, VenueModify, VenueOrder, VenueStatus, VenueUpdate,
};
use std::collections::VecDeque;

fn status_of(s: VenueStatus) -> OrderStatus {
    match s {
        VenueStatus::Pending => OrderStatus::Pending,
        VenueStatus::Open => OrderStatus::Open,
        VenueStatus::TriggerPending => OrderStatus::TriggerPending,
        VenueStatus::Complete => OrderStatus::Complete,
        VenueStatus::Cancelled => OrderStatus::Cancelled,
        VenueStatus::Rejected => OrderStatus::Rejected,
    }
}

fn rupees(p: Price) -> f64 {
    p.paise() as f64 / 100.0
}

impl<V: Venue> Kernel<V> {
    /// A decision or a block from the engine at exchange time `t`.
    pub(super) fn on_outcome(&mut self, t: i64, o: Outcome) {
        match o {
            Outcome::Block(b) => {
                self.counters.blocks += 1;
                self.log.block(&b);
            }
            Outcome::Decision(d) => {
                self.counters.decisions += 1;
                self.log.decision(t, &d);
                self.open_bracket(t, &d);
            }
        }
    }

    fn open_bracket(&mut self, t: i64, d: &Decision) {
        if self.book.contains_plan(&d.plan_id) {
            // The same plan again (a repeat, never a new trade): the bracket
            // already open keeps its orders, and the engine its risk and heat.
            let why = format!("plan {} already has a bracket: ignored", d.plan_id);
            self.log
                .alert(t, &d.plan_id, "ERROR", "DUPLICATE_PLAN", why);
            self.counters.alerts += 1;
            return;
        }
        let opened = self.bracket_for(d).and_then(|spec| Bracket::open(spec, t));
        let (bracket, commands) = match opened {
            Ok(x) => x,
            Err(e) => {
                self.refuse(t, d, e.to_string());
                return;
            }
        };
        self.counters.brackets_opened += 1;
        let ix = self.book.insert(Slot {
            bracket,
            token: d.token,
            strategy: d.strategy,
            planned_entry: d.entry.paise(),
            planned_stop: d.stop.paise(),
            planned_risk_paise: d.risk_paise,
            orders: Vec::new(),
            opened_ns: None,
            exit_qty: 0,
            exit_notional: 0,
            engine_exited: 0,
            late_exit_fill: false,
            booked: false,
            steps: 0,
        });
        let state = self.book.slots[ix].bracket.state().as_str();
        self.log.transition(t, &d.plan_id, "NEW", state, "OPEN");
        self.book.slots[ix].steps = 1;
        let mut feedback = VecDeque::new();
        self.execute(ix, t, commands, &mut feedback);
        self.drain_feedback(ix, t, feedback);
        self.route_updates();
    }

    fn bracket_for(&self, d: &Decision) -> Result<BracketSpec, crate::oco::OcoError> {
        let inst =
            self.instruments
                .get(&d.token)
                .ok_or_else(|| crate::oco::OcoError::InvalidSpec {
                    field: "instrument",
                    problem: format!("token {} is not in the kernel's universe", d.token),
                })?;
        let mut spec = BracketSpec::for_instrument(
            &d.plan_id,
            inst,
            d.side,
            d.qty,
            crate::oco::EntryKind::Limit,
            d.entry,
            d.stop,
            d.tp,
        )?;
        self.template.apply(&mut spec)?;
        Ok(spec)
    }

    /// A plan the kernel could not turn into a bracket: nothing was sent.
    fn refuse(&mut self, t: i64, d: &Decision, why: String) {
        self.log
            .alert(t, &d.plan_id, "ERROR", "BRACKET_REFUSED", why);
        self.counters.alerts += 1;
        let _ = self.engine.on_plan_cancelled(&d.plan_id, t);
    }

    /// Hands every update the venue produced to its bracket, in order.
    /// Handling one may make the venue produce more (an immediate reject).
    pub(super) fn route_updates(&mut self) {
        let mut i = 0;
        while i < self.updates.len() {
            let u = self.updates[i].clone();
            i += 1;
            self.on_update(&u);
        }
        self.updates.clear();
    }

    fn on_update(&mut self, u: &VenueUpdate) {
        let Some((ix, tag)) = self.book.lookup(&u.client_order_id) else {
            return;
        };
        let t = u.ts_ns;
        let plan_id = self.book.slots[ix].bracket.plan_id().to_string();
        let role = self.book.slots[ix]
            .bracket
            .leg(tag)
            .map_or(Role::Exit, |l| l.role);
        {
            let lg = &mut self.log.updates;
            lg.ts_ns.push(t);
            lg.plan_id.push(plan_id.clone());
            lg.client_order_id.push(u.client_order_id.clone());
            lg.order_id.push(u.order_id);
            lg.status.push(u.status.as_str());
            lg.filled_qty.push(u.filled_qty);
            lg.avg_price.push(u.avg_price.paise());
            lg.triggered.push(u.triggered);
            lg.message.push(u.message.clone().unwrap_or_default());
        }
        if u.last_fill_qty > 0 {
            let f = &mut self.log.fills;
            f.ts_ns.push(t);
            f.plan_id.push(plan_id);
            f.client_order_id.push(u.client_order_id.clone());
            f.order_id.push(u.order_id);
            f.role.push(role.as_str());
            f.side.push(
                self.book.slots[ix]
                    .bracket
                    .leg(tag)
                    .map_or("", |l| l.side.as_str()),
            );
            f.qty.push(u.last_fill_qty);
            f.filled_qty.push(u.filled_qty);
            f.price.push(u.last_fill_price.paise());
            if matches!(role, Role::Stop | Role::TakeProfit) {
                let latency = self.venue_latency_ns();
                let slot = &mut self.book.slots[ix];
                if let Some(o) = slot.order(tag) {
                    if o.cancel_sent_ns
                        .is_some_and(|c| t >= c.saturating_add(latency))
                    {
                        slot.late_exit_fill = true;
                    }
                }
            }
        }
        if let Some(o) = self.book.slots[ix].order_mut(tag) {
            o.complete = u.status == VenueStatus::Complete;
        }
        // The bracket checks its stop against the market it last saw.
        if let Some(ltp) = self.engine.last_price(i64::from(self.book.slots[ix].token)) {
            self.handle(ix, t, &Event::PriceUpdate { ltp, atr: None });
        }
        let event = Event::from_order_status(
            tag,
            status_of(u.status),
            Fill::new(u.filled_qty, u.avg_price),
            u.message.as_deref(),
        );
        self.handle(ix, t, &event);
    }

    fn venue_latency_ns(&self) -> i64 {
        self.venue.command_latency_ns()
    }

    /// Feeds one event to bracket `ix` at `t` and carries out what follows.
    pub(super) fn handle(&mut self, ix: usize, t: i64, event: &Event) {
        let mut queue = VecDeque::new();
        self.apply(ix, t, event, &mut queue);
        self.drain_feedback(ix, t, queue);
    }

    pub(super) fn drain_feedback(&mut self, ix: usize, t: i64, mut queue: VecDeque<Event>) {
        // Answers to our own commands (modify acks, refused cancels) go back
        // to the same bracket at the same time, in order.
        let mut guard = 0;
        while let Some(ev) = queue.pop_front() {
            guard += 1;
            if guard > 1_000 {
                let plan = self.book.slots[ix].bracket.plan_id().to_string();
                self.log.alert(
                    t,
                    &plan,
                    "CRITICAL",
                    "KERNEL_LOOP",
                    "feedback did not settle".into(),
                );
                break;
            }
            self.apply(ix, t, &ev, &mut queue);
        }
    }

    fn apply(&mut self, ix: usize, t: i64, event: &Event, queue: &mut VecDeque<Event>) {
        let result = self.book.slots[ix].bracket.handle(t, event);
        let tr = match result {
            Ok(tr) => tr,
            Err(e) => {
                let plan = self.book.slots[ix].bracket.plan_id().to_string();
                self.log
                    .alert(t, &plan, "ERROR", "OCO_ERROR", e.to_string());
                self.counters.alerts += 1;
                return;
            }
        };
        if !tr.changed {
            return;
        }
        self.record(ix, t, event, &tr);
        let Transition { commands, .. } = tr;
        self.execute(ix, t, commands, queue);
        if self.book.refresh(ix) {
            self.book_trade(ix, t);
        }
    }

    /// Transition row, fills to the engine.
    fn record(&mut self, ix: usize, t: i64, event: &Event, tr: &Transition) {
        let plan_id = self.book.slots[ix].bracket.plan_id().to_string();
        self.log
            .transition(t, &plan_id, tr.from.as_str(), tr.to.as_str(), event.kind());
        self.book.slots[ix].steps += 1;
        for f in &tr.fills {
            let slot = &mut self.book.slots[ix];
            match f.role {
                Role::Entry => {
                    slot.opened_ns.get_or_insert(t);
                    let _ =
                        self.engine
                            .on_entry_filled(&plan_id, f.cum_filled, rupees(f.avg_price));
                }
                Role::Corrective => {
                    slot.engine_exited = slot.engine_exited.saturating_sub(f.qty);
                }
                Role::Stop | Role::TakeProfit | Role::Exit => {
                    let room = slot
                        .bracket
                        .entry_filled()
                        .saturating_sub(slot.engine_exited);
                    slot.exit_qty += f.qty;
                    slot.exit_notional += i128::from(f.notional_paise);
                    let told = f.qty.min(room);
                    slot.engine_exited += told;
                    if told > 0 {
                        let px = f.notional_paise as f64 / f.qty as f64 / 100.0;
                        let _ = self.engine.on_exit_filled(&plan_id, told, px);
                    }
                }
            }
        }
    }

    pub(super) fn execute(
        &mut self,
        ix: usize,
        t: i64,
        commands: Vec<Command>,
        queue: &mut VecDeque<Event>,
    ) {
        for cmd in commands {
            match cmd {
                Command::PlaceOrder(o) | Command::ExitAtMarket(o) => self.place(ix, t, o),
                Command::Modify(m) => {
                    let Some(order_id) = self.book.slots[ix].order(m.tag).map(|o| o.order_id)
                    else {
                        queue.push_back(Event::ModifyRejected {
                            tag: m.tag,
                            seq: m.seq,
                            reason: "unknown order".into(),
                        });
                        continue;
                    };
                    let change = VenueModify {
                        qty: Some(m.qty),
                        price: m.price,
                        trigger: m.trigger,
                        order_type: m.order_type,
                    };
                    let answer = self.venue.modify(t, order_id, change);
                    self.log_order(
                        ix,
                        t,
                        "MODIFY",
                        &m.client_order_id,
                        order_id,
                        "",
                        m.qty,
                        m.order_type.map_or("", OrderType::as_str),
                        m.price,
                        m.trigger,
                        answer.as_ref().err(),
                        "",
                    );
                    if answer.is_ok() && self.venue.answers_later() {
                        // The broker's answer comes back later (see external.rs).
                        self.await_modify_answer(order_id, ix, m.tag, m.seq, change);
                        continue;
                    }
                    queue.push_back(match answer {
                        Ok(()) => Event::ModifyAck {
                            tag: m.tag,
                            seq: m.seq,
                        },
                        Err(e) => Event::ModifyRejected {
                            tag: m.tag,
                            seq: m.seq,
                            reason: e.to_string(),
                        },
                    });
                }
                Command::Cancel {
                    client_order_id,
                    tag,
                } => {
                    let Some((order_id, complete)) = self.book.slots[ix]
                        .order(tag)
                        .map(|o| (o.order_id, o.complete))
                    else {
                        continue;
                    };
                    let answer = self.venue.cancel(t, order_id);
                    self.log_order(
                        ix,
                        t,
                        "CANCEL",
                        &client_order_id,
                        order_id,
                        "",
                        0,
                        "",
                        None,
                        None,
                        answer.as_ref().err(),
                        "",
                    );
                    match answer {
                        Ok(()) => {
                            if let Some(o) = self.book.slots[ix].order_mut(tag) {
                                o.cancel_sent_ns.get_or_insert(t);
                            }
                        }
                        // Kite refuses to cancel a completed order; the fill
                        // report itself comes (or came) as an update.
                        Err(_) if complete => queue.push_back(Event::CancelRejectedFilled { tag }),
                        Err(_) => {}
                    }
                }
                Command::Alert(a) => {
                    let plan = self.book.slots[ix].bracket.plan_id().to_string();
                    self.counters.alerts += 1;
                    if a.severity == crate::oco::Severity::Critical {
                        self.counters.critical_alerts += 1;
                    }
                    self.log
                        .alert(t, &plan, a.severity.as_str(), a.code.as_str(), a.reason);
                }
            }
        }
    }

    fn place(&mut self, ix: usize, t: i64, o: NewOrder) {
        let token = self.book.slots[ix].token;
        let protection = match o.order_type {
            OrderType::Market | OrderType::SlM => {
                self.template.protection().unwrap_or(Protection::Auto)
            }
            OrderType::Limit | OrderType::Sl => Protection::None,
        };
        let order = VenueOrder {
            client_order_id: o.client_order_id.clone(),
            tag: broker_tag(&o.client_order_id).unwrap_or_default(),
            token,
            side: o.side,
            qty: o.qty,
            order_type: o.order_type,
            price: o.price,
            trigger: o.trigger,
            validity: Validity::Day,
            protection,
        };
        // Route first: a refusal comes back at once as a REJECTED update.
        // Paced under the venue's rate: a burst queues, it is not refused,
        // and a protective order goes ahead of the entries still queued.
        let order_id = match self.pacer.as_mut() {
            None => self.venue.submit_at(t, t, order, &mut self.updates),
            Some(pacer) => {
                let entry = o.role == Role::Entry;
                let mut moved = std::mem::take(&mut self.paced_moves);
                let send = pacer.slot(t, !entry, &mut moved);
                // The displaced entries give up their slots before the
                // protective order takes one (the venue counts the rate)...
                for &(id, later) in &moved {
                    self.venue.reschedule(id, later);
                }
                let order_id = self.venue.submit_at(t, send, order, &mut self.updates);
                if entry {
                    pacer.bind_last(order_id);
                }
                // ...and one leaving at the same instant goes after it.
                for (id, later) in moved.drain(..) {
                    if later == send {
                        self.venue.reschedule(id, later);
                    }
                }
                self.paced_moves = moved;
                order_id
            }
        };
        self.book.route(
            ix,
            OrderRef {
                tag: o.tag,
                order_id,
                client_order_id: o.client_order_id.clone(),
                cancel_sent_ns: None,
                complete: false,
            },
        );
        let reason = o.reason.map_or("", |r| r.as_str());
        self.log_order(
            ix,
            t,
            "PLACE",
            &o.client_order_id,
            order_id,
            o.side.as_str(),
            o.qty,
            o.order_type.as_str(),
            o.price,
            o.trigger,
            None,
            reason,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn log_order(
        &mut self,
        ix: usize,
        t: i64,
        action: &'static str,
        client_order_id: &str,
        order_id: u64,
        side: &'static str,
        qty: u64,
        order_type: &'static str,
        price: Option<Price>,
        trigger: Option<Price>,
        refused: Option<&VenueError>,
        reason: &'static str,
    ) {
        let plan_id = self.book.slots[ix].bracket.plan_id().to_string();
        let lg = &mut self.log.orders;
        lg.ts_ns.push(t);
        lg.plan_id.push(plan_id);
        lg.client_order_id.push(client_order_id.to_string());
        lg.action.push(action);
        lg.order_id.push(order_id);
        lg.side.push(side);
        lg.qty.push(qty);
        lg.order_type.push(order_type);
        lg.price.push(price.map_or(0, Price::paise));
        lg.trigger.push(trigger.map_or(0, Price::paise));
        lg.refused
            .push(refused.map(ToString::to_string).unwrap_or_default());
        lg.reason.push(reason);
        lg.step.push(self.book.slots[ix].steps.saturating_sub(1));
    }

    /// The bracket is terminal: its trade (if it traded) goes to the log and
    /// the engine frees its heat and instrument.
    pub(super) fn book_trade(&mut self, ix: usize, t: i64) {
        let slot = &mut self.book.slots[ix];
        let plan_id = slot.bracket.plan_id().to_string();
        let entry_qty = slot.bracket.entry_filled();
        if entry_qty == 0 {
            let _ = self.engine.on_plan_cancelled(&plan_id, t);
            return;
        }
        if slot.booked {
            return;
        }
        slot.booked = true;
        let gross = slot.bracket.realized_pnl_paise().unwrap_or(0);
        let double_exit = slot.bracket.corrected_qty() > 0;
        let race = double_exit && !slot.late_exit_fill;
        let exit_avg = if slot.exit_qty > 0 {
            slot.exit_notional as f64 / slot.exit_qty as f64
        } else {
            slot.bracket.entry_avg_price().paise() as f64
        };
        let reason = slot
            .bracket
            .closing_reason()
            .map_or(slot.bracket.state().as_str(), |r| r.as_str());
        let spec = slot.bracket.spec();
        let tr = &mut self.log.trades;
        tr.plan_id.push(plan_id.clone());
        tr.token.push(slot.token);
        tr.strategy.push(slot.strategy);
        tr.side.push(spec.side.as_str());
        tr.qty.push(entry_qty);
        tr.opened_ns.push(slot.opened_ns.unwrap_or(t));
        tr.closed_ns.push(t);
        tr.entry_avg.push(slot.bracket.entry_avg_price().paise());
        tr.planned_entry.push(slot.planned_entry);
        tr.planned_stop.push(slot.planned_stop);
        tr.exit_avg.push(exit_avg);
        tr.exit_reason.push(reason);
        tr.gross_paise.push(gross);
        tr.planned_risk_paise.push(slot.planned_risk_paise);
        tr.double_exit.push(double_exit);
        tr.race.push(race);
        self.counters.trades += 1;
        self.counters.wins += u64::from(gross > 0);
        self.counters.double_exits += u64::from(double_exit);
        self.counters.races += u64::from(race);
        let _ = self
            .engine
            .on_bracket_closed(&plan_id, gross as f64 / 100.0, None, t);
    }
}
