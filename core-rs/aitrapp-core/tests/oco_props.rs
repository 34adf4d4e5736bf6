//! Property tests of the OCO bracket against a simulated broker.
//!
//! The broker executes the machine's commands with a delay (requests wait
//! until the test decides to process them, so fills race cancels and
//! modifications), fills, rejects and cancels orders on its own, and its
//! order updates are delivered in any order, duplicated and late. After every
//! step the invariants below are checked; at the end everything is drained
//! (and flattened) and the bracket must be terminal, flat and without a
//! working order, in agreement with the broker.
//!
//! Prices gap: the last price jumps up to 300 ticks against the position
//! (the stop is 200 ticks away), so stops are placed and resized after the
//! market went through them; no stop may be sent through the market. Stops
//! trigger and then rest unfilled; the watchdog must escalate on time alone.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use aitrapp_core::oco::{
    AlertCode, Bracket, BracketSpec, Command, EntryKind, Event, Fill, ModifyOrder, NewOrder,
    OrderStatus, OrderType, Role, ScaleOut, Severity, State, StopKind, StopToMarket, Trailing,
    Transition,
};
use aitrapp_core::{Instrument, OrderTag, Price, Segment, Side};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::HashSet;

const PLAN: &str = "0123456789abcdef01234567";
/// 2026-01-01 09:15 IST.
const SESSION_OPEN: i64 = 1_767_239_100_000_000_000;
const SEC: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
struct Setup {
    side: Side,
    lots: u64,
    lot_size: u32,
    market_entry: bool,
    scale_out: bool,
    trailing: bool,
    stop_limit: bool,
    time_stop: bool,
    max_modifications: u32,
    start_offset_s: i64,
    stop_fill_timeout_s: i64,
}

#[derive(Debug, Clone)]
enum Action {
    /// The broker executes a queued request (first queued for that order).
    Process(usize),
    /// The broker rejects a queued placement.
    RejectPlace(usize),
    /// The broker takes a queued placement, but the execution layer saw only
    /// an error and reports it rejected (unknown outcome resolved wrongly).
    LostPlacement(usize),
    /// Deliver a queued update (any one: reordering).
    Deliver(usize),
    /// Deliver an already delivered update again (duplicate, late, stale).
    Replay(usize),
    /// Fill a working order by a share (percent, whole lots, at least one).
    Fill(usize, u8),
    /// The broker or exchange cancels a working order on its own.
    ExternalCancel(usize),
    /// A working stop's trigger is hit (TRIGGER PENDING -> OPEN) and it rests.
    Trigger(usize),
    Advance(u32),
    Price(i32, u16),
    /// The kill switch (true: the stop may be turned into the market exit).
    Flatten(bool),
    /// The broker refuses a queued modification (e.g. a stop out of
    /// modifications, or one it will not turn into a market order).
    RefuseModify(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimStatus {
    Live,
    Complete,
    Cancelled,
    Rejected,
}

#[derive(Debug, Clone)]
struct SimOrder {
    tag: OrderTag,
    role: Role,
    side: Side,
    qty: u64,
    filled: u64,
    value: i128,
    price: Option<Price>,
    trigger: Option<Price>,
    status: SimStatus,
    triggered: bool,
    /// A stop modified into a market order (flatten): it fills like one.
    market: bool,
}

#[derive(Debug, Clone)]
enum Req {
    Place(NewOrder),
    Modify(ModifyOrder),
    Cancel(OrderTag),
}

impl Req {
    fn tag(&self) -> OrderTag {
        match self {
            Req::Place(o) => o.tag,
            Req::Modify(m) => m.tag,
            Req::Cancel(t) => *t,
        }
    }
}

struct Sim {
    b: Bracket,
    now: i64,
    lot: u64,
    market: Price,
    orders: Vec<SimOrder>,
    requests: Vec<Req>,
    inbox: Vec<Event>,
    delivered: Vec<Event>,
    placed: HashSet<String>,
    double_fill_alerts: usize,
    /// The last price fed to the machine.
    last_ltp: Option<Price>,
}

fn px(p: i64) -> Price {
    Price::from_paise(p)
}

fn spec_for(s: &Setup) -> BracketSpec {
    let inst = Instrument {
        exchange: "NFO".into(),
        tradingsymbol: "TEST".into(),
        instrument_token: 1,
        segment: if s.lot_size > 1 {
            Segment::Fut
        } else {
            Segment::Eq
        },
        tick_size: px(5),
        lot_size: s.lot_size,
        freeze_qty: 100_000,
    };
    let sign = s.side.sign();
    let entry = 100_000;
    let mut spec = BracketSpec::for_instrument(
        PLAN,
        &inst,
        s.side,
        s.lots * u64::from(s.lot_size),
        if s.market_entry {
            EntryKind::Market
        } else {
            EntryKind::Limit
        },
        px(entry),
        px(entry - sign * 1_000),
        px(entry + sign * 2_000),
    )
    .unwrap();
    if s.scale_out {
        spec.scale_out = Some(ScaleOut::default());
    }
    if s.trailing {
        spec.trailing = Some(Trailing {
            atr_mult_milli: 1_500,
            min_step_ticks: 2,
        });
    }
    if s.stop_limit {
        spec.stop_kind = StopKind::Sl { buffer_ticks: 3 };
    }
    if s.time_stop {
        spec.time_stop_ns = Some(10 * 60 * SEC);
    }
    spec.max_modifications = s.max_modifications;
    spec.stop_fill_timeout_ns = s.stop_fill_timeout_s * SEC;
    spec
}

/// The last price has reached or passed a stop trigger on the losing side.
fn through(side: Side, ltp: Option<Price>, trigger: Option<Price>) -> bool {
    match (ltp, trigger) {
        (Some(l), Some(t)) => side.sign() * (l.paise() - t.paise()) <= 0,
        _ => false,
    }
}

impl Sim {
    fn new(setup: &Setup) -> Sim {
        let spec = spec_for(setup);
        let now = SESSION_OPEN + setup.start_offset_s * SEC;
        let (b, cmds) = Bracket::open(spec, now).unwrap();
        let mut sim = Sim {
            b,
            now,
            lot: u64::from(setup.lot_size),
            market: px(100_000),
            orders: Vec::new(),
            requests: Vec::new(),
            inbox: Vec::new(),
            delivered: Vec::new(),
            placed: HashSet::new(),
            double_fill_alerts: 0,
            last_ltp: None,
        };
        sim.take_commands(&cmds);
        sim
    }

    fn take_commands(&mut self, cmds: &[Command]) {
        let side = self.b.spec().side;
        for c in cmds {
            match c {
                // Never a stop the exchange would reject for its trigger.
                Command::PlaceOrder(o) if o.role == Role::Stop => assert!(
                    !through(side, self.last_ltp, o.trigger),
                    "stop {:?} placed through the market {:?}",
                    o.trigger,
                    self.last_ltp
                ),
                Command::Modify(m) if m.tag == OrderTag::Stop => assert!(
                    !through(side, self.last_ltp, m.trigger),
                    "stop modified to {:?} through the market {:?}",
                    m.trigger,
                    self.last_ltp
                ),
                _ => {}
            }
            match c {
                Command::PlaceOrder(o) | Command::ExitAtMarket(o) => {
                    assert!(
                        self.placed.insert(o.client_order_id.clone()),
                        "client id {} placed twice",
                        o.client_order_id
                    );
                    self.requests.push(Req::Place(o.clone()));
                }
                Command::Modify(m) => self.requests.push(Req::Modify(m.clone())),
                Command::Cancel { tag, .. } => self.requests.push(Req::Cancel(*tag)),
                Command::Alert(a) => {
                    if a.code == AlertCode::DoubleFill {
                        assert_eq!(a.severity, Severity::Critical);
                        self.double_fill_alerts += 1;
                    }
                    // A gap and a first watchdog escalation are expected
                    // market behaviour (WARNING); a stop that still has not
                    // exited a second timeout later is not (CRITICAL).
                    let want = match a.code {
                        AlertCode::StopGapped | AlertCode::StopFillTimeout => Severity::Warning,
                        AlertCode::StopUnfilled => Severity::Critical,
                        _ => a.severity,
                    };
                    assert_eq!(a.severity, want, "{a:?}");
                }
            }
        }
    }

    fn order(&mut self, tag: OrderTag) -> Option<usize> {
        self.orders.iter().position(|o| o.tag == tag)
    }

    fn snapshot(&mut self, i: usize, reason: Option<&str>) {
        let o = &self.orders[i];
        let status = match o.status {
            SimStatus::Live if o.trigger.is_some() && o.filled == 0 && !o.triggered => {
                OrderStatus::TriggerPending
            }
            SimStatus::Live => OrderStatus::Open,
            SimStatus::Complete => OrderStatus::Complete,
            SimStatus::Cancelled => OrderStatus::Cancelled,
            SimStatus::Rejected => OrderStatus::Rejected,
        };
        let avg = if o.filled == 0 {
            0
        } else {
            let f = i128::from(o.filled);
            i64::try_from((o.value + f / 2) / f).unwrap()
        };
        let ev = Event::from_order_status(o.tag, status, Fill::new(o.filled, px(avg)), reason);
        self.inbox.push(ev);
    }

    /// Feeds one event and checks every invariant.
    fn step(&mut self, ev: Event) {
        let net_before = self.b.net_qty();
        let state_before = self.b.state();
        let t = self
            .b
            .handle(self.now, &ev)
            .unwrap_or_else(|e| panic!("machine refused {ev:?}: {e}"));
        // The same event twice changes nothing.
        let snapshot = self.b.clone();
        let again = self.b.handle(self.now, &ev).unwrap();
        assert!(
            !again.changed && again.commands.is_empty(),
            "{ev:?} twice: {again:?}"
        );
        assert_eq!(self.b, snapshot, "{ev:?} twice changed the bracket");
        self.take_commands(&t.commands);
        self.check(&ev, &t, net_before, state_before);
    }

    fn check(&self, ev: &Event, t: &Transition, net_before: i64, state_before: State) {
        let b = &self.b;
        let side = b.spec().side;
        let legs = b.legs();
        let sum = |f: &dyn Fn(&aitrapp_core::oco::Leg) -> bool,
                   g: &dyn Fn(&aitrapp_core::oco::Leg) -> u64|
         -> i64 {
            legs.iter()
                .filter(|l| f(l))
                .map(|l| i64::try_from(g(l)).unwrap())
                .sum()
        };
        let entry_dir_filled = sum(&|l| l.side == side, &|l| l.filled);
        let exit_dir_filled = sum(&|l| l.side != side, &|l| l.filled);
        let corrective_working = sum(&|l| l.role == Role::Corrective, &|l| {
            l.commanded_remaining()
        });
        let stop_and_exits = sum(&|l| matches!(l.role, Role::Stop | Role::Exit), &|l| {
            l.commanded_remaining()
        });
        let targets = sum(&|l| l.role == Role::TakeProfit, &|l| {
            l.commanded_remaining()
        });
        let net = b.net_qty();
        assert_eq!(net, entry_dir_filled - exit_dir_filled);
        let blocked = b.exit_blocked();
        let ctx = || {
            format!(
                "after {ev:?} in {state_before} -> {}: legs {legs:#?}",
                b.state()
            )
        };

        // Working exit quantity plus exited never exceeds what was bought
        // (plus what is being bought back): for the stop and market exits,
        // and separately for the take-profits (they are alternatives).
        if !blocked {
            assert!(
                stop_and_exits + exit_dir_filled <= entry_dir_filled + corrective_working,
                "stop/exits oversized {}",
                ctx()
            );
            assert!(
                targets + exit_dir_filled <= entry_dir_filled + corrective_working,
                "targets oversized {}",
                ctx()
            );
        }
        match b.state() {
            State::Pending => {
                assert_eq!(legs.len(), 1);
                assert_eq!(net, 0);
            }
            State::Entering | State::Open => {
                // Protected at once and exactly: the stop works the open quantity.
                assert!(net > 0, "{}", ctx());
                let stop = b
                    .leg(OrderTag::Stop)
                    .unwrap_or_else(|| panic!("no stop {}", ctx()));
                assert!(
                    stop.is_live() && !stop.cancel_sent,
                    "stop not working {}",
                    ctx()
                );
                assert_eq!(
                    i64::try_from(stop.commanded_remaining()).unwrap(),
                    net,
                    "stop size {}",
                    ctx()
                );
                assert!(targets <= net, "{}", ctx());
                assert!(legs.iter().all(|l| !l.role.is_market()), "{}", ctx());
            }
            State::Closing => {
                // Everything not a market order is being cancelled, and the
                // working stop plus market orders exactly square the position.
                // A flatten's stop turned MARKET is the exit, and the targets
                // wait for the answer to that modification.
                let conv = b.stop_conversion();
                let stop_live = b.leg(OrderTag::Stop).is_some_and(|l| l.is_live());
                for l in legs.iter().filter(|l| l.is_live() && !l.role.is_market()) {
                    let exit = l.role == Role::Stop && conv.standing_since().is_some();
                    let waiting = l.role == Role::TakeProfit
                        && stop_live
                        && matches!(conv, StopToMarket::Asked { .. })
                        && targets <= net;
                    assert!(
                        l.cancel_sent || exit || waiting,
                        "{} still working {}",
                        l.tag,
                        ctx()
                    );
                }
                // The converted stop never exits more than is open.
                if let Some(stop) = b.leg(OrderTag::Stop) {
                    if stop.is_live() && conv.standing_since().is_some() {
                        assert!(
                            i64::try_from(stop.commanded_remaining()).unwrap() <= net.max(0),
                            "converted stop larger than the position {}",
                            ctx()
                        );
                    }
                }
                if !blocked {
                    assert_eq!(b.exit_shortfall(), 0, "unexited quantity {}", ctx());
                    assert_eq!(
                        b.overfill_shortfall(),
                        0,
                        "overfill not bought back {}",
                        ctx()
                    );
                }
            }
            State::Closed | State::Cancelled => {
                assert_eq!(
                    b.working_legs().count(),
                    0,
                    "terminal with working orders {}",
                    ctx()
                );
                assert_eq!(net, 0, "{}", ctx());
            }
        }
        let alerts: Vec<_> = t
            .commands
            .iter()
            .filter_map(|c| {
                if let Command::Alert(a) = c {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        // An overfill is corrected at once (a corrective order works it, see
        // the projection above), loudly: a CRITICAL alert went out with the
        // corrective order, in this step or when it was placed ahead of time.
        if net < 0 && !blocked {
            assert!(
                self.double_fill_alerts > 0,
                "no critical alert on overfill {}",
                ctx()
            );
            let _ = net_before;
        }
        // A rejected stop exits at market and alerts.
        if let Event::ChildRejected {
            tag: OrderTag::Stop,
            ..
        } = ev
        {
            if t.changed && matches!(state_before, State::Entering | State::Open) {
                assert!(matches!(t.to, State::Closing | State::Closed), "{}", ctx());
                assert!(
                    alerts.iter().any(|a| a.severity == Severity::Critical),
                    "{}",
                    ctx()
                );
                if net > 0 && !blocked {
                    assert!(
                        t.commands
                            .iter()
                            .any(|c| matches!(c, Command::ExitAtMarket(_))),
                        "{}",
                        ctx()
                    );
                }
            }
        }
        if matches!(ev, Event::TimeAdvance) {
            // Every deadline up to now was acted on: an event loop that
            // fires timers at `next_deadline_ns` never spins on a past one.
            assert!(
                b.next_deadline_ns().map_or(true, |d| d > self.now),
                "deadline {:?} not after {} {}",
                b.next_deadline_ns(),
                self.now,
                ctx()
            );
            // A triggered stop left unfilled a timeout long is being cancelled.
            if let Some(stop) = b.leg(OrderTag::Stop) {
                let late = stop
                    .triggered_ns
                    .is_some_and(|t| self.now >= t + b.spec().stop_fill_timeout_ns);
                if stop.is_live() && late {
                    assert!(stop.cancel_sent, "triggered stop not escalated {}", ctx());
                    assert!(b.watchdog_escalations() >= 1, "{}", ctx());
                }
                // A stop turned MARKET that has not filled a timeout after
                // the modification was sent is being cancelled too.
                let since = b.stop_conversion().standing_since();
                let hung = since.is_some_and(|t| self.now >= t + b.spec().stop_fill_timeout_ns);
                assert!(
                    !(stop.is_live() && hung),
                    "converted stop not escalated {}",
                    ctx()
                );
            }
        }
        // The entry never outlives its timeout uncancelled.
        if matches!(ev, Event::TimeAdvance)
            && self.now >= b.created_ns() + b.spec().entry_timeout_ns
        {
            let entry = b.leg(OrderTag::Entry).unwrap();
            assert!(
                !entry.is_live() || entry.cancel_sent,
                "entry still working after timeout {}",
                ctx()
            );
        }
    }

    // ───── broker side ─────

    fn queued_index(&self, i: usize) -> Option<usize> {
        if self.requests.is_empty() {
            return None;
        }
        // Commands for one order run in the order they were issued (the
        // execution layer is single-flight per bracket).
        let tag = self.requests[i % self.requests.len()].tag();
        self.requests.iter().position(|r| r.tag() == tag)
    }

    fn process(&mut self, i: usize, reject: bool) {
        let Some(k) = self.queued_index(i) else {
            return;
        };
        let req = self.requests.remove(k);
        match req {
            Req::Place(o) => {
                self.orders.push(SimOrder {
                    tag: o.tag,
                    role: o.role,
                    side: o.side,
                    qty: o.qty,
                    filled: 0,
                    value: 0,
                    price: o.price,
                    trigger: o.trigger,
                    triggered: false,
                    market: false,
                    status: if reject {
                        SimStatus::Rejected
                    } else {
                        SimStatus::Live
                    },
                });
                let n = self.orders.len() - 1;
                self.snapshot(n, reject.then_some("rejected by the test broker"));
            }
            Req::Modify(m) => {
                let i = self.order(m.tag).expect("modify after place");
                let o = &mut self.orders[i];
                // Kite refuses to modify a finished order or below its fill.
                if reject || o.status != SimStatus::Live || m.qty <= o.filled {
                    self.inbox.push(Event::ModifyRejected {
                        tag: m.tag,
                        seq: m.seq,
                        reason: "refused".into(),
                    });
                } else {
                    o.qty = m.qty;
                    if m.order_type == Some(OrderType::Market) {
                        // The trigger is gone; it works (and fills) at market.
                        o.market = true;
                        o.trigger = None;
                        o.price = None;
                    } else {
                        o.trigger = m.trigger;
                        o.price = m.price;
                    }
                    self.inbox.push(Event::ModifyAck {
                        tag: m.tag,
                        seq: m.seq,
                    });
                    self.snapshot(i, None);
                }
            }
            Req::Cancel(tag) => {
                let i = self.order(tag).expect("cancel after place");
                match self.orders[i].status {
                    SimStatus::Live => {
                        self.orders[i].status = SimStatus::Cancelled;
                        self.snapshot(i, None);
                    }
                    // The broker refuses; the execution layer looks the order
                    // up and reports what it found.
                    SimStatus::Complete => {
                        self.inbox.push(Event::CancelRejectedFilled { tag });
                        self.snapshot(i, None);
                    }
                    SimStatus::Cancelled | SimStatus::Rejected => self.snapshot(i, None),
                }
            }
        }
    }

    fn live_orders(&self) -> Vec<usize> {
        (0..self.orders.len())
            .filter(|&i| self.orders[i].status == SimStatus::Live)
            .collect()
    }

    fn fill(&mut self, i: usize, pct: u8) {
        let live = self.live_orders();
        if live.is_empty() {
            return;
        }
        let i = live[i % live.len()];
        let lot = self.lot;
        let market = self.market;
        let o = &mut self.orders[i];
        let left = o.qty - o.filled;
        let share = left * u64::from(pct) / 100 / lot * lot;
        let q = share.max(lot).min(left);
        let price = match o.role {
            Role::Stop if o.market => market,
            Role::Stop => o.trigger.unwrap(),
            Role::TakeProfit => o.price.unwrap(),
            Role::Entry => o.price.unwrap_or(market),
            Role::Exit | Role::Corrective => market,
        };
        o.filled += q;
        o.value += i128::from(q) * i128::from(price.paise());
        o.triggered |= o.role == Role::Stop;
        if o.filled == o.qty {
            o.status = SimStatus::Complete;
        }
        self.snapshot(i, None);
    }

    fn external_cancel(&mut self, i: usize) {
        let live = self.live_orders();
        if live.is_empty() {
            return;
        }
        let i = live[i % live.len()];
        self.orders[i].status = SimStatus::Cancelled;
        self.snapshot(i, None);
    }

    fn trigger(&mut self, i: usize) {
        let stops: Vec<usize> = self
            .live_orders()
            .into_iter()
            .filter(|&k| self.orders[k].role == Role::Stop && !self.orders[k].triggered)
            .collect();
        if stops.is_empty() {
            return;
        }
        let k = stops[i % stops.len()];
        self.orders[k].triggered = true;
        self.snapshot(k, None);
    }

    fn deliver(&mut self, i: usize) {
        if self.inbox.is_empty() {
            return;
        }
        let ev = self.inbox.remove(i % self.inbox.len());
        self.delivered.push(ev.clone());
        self.step(ev);
    }

    fn run(&mut self, a: &Action) {
        match a {
            Action::Process(i) => self.process(*i, false),
            Action::RejectPlace(i) => {
                if let Some(k) = self.queued_index(*i) {
                    if matches!(self.requests[k], Req::Place(_)) {
                        self.process(k, true);
                    }
                }
            }
            Action::LostPlacement(i) => {
                if let Some(k) = self.queued_index(*i) {
                    if let Req::Place(o) = &self.requests[k] {
                        let tag = o.tag;
                        self.process(k, false);
                        // The execution layer reports a failure only while it
                        // has seen no update of the order (its contract), so
                        // the broker's own report comes after.
                        let working = self.inbox.pop().unwrap();
                        let failed = Event::from_order_status(
                            tag,
                            OrderStatus::Rejected,
                            Fill::NONE,
                            Some("outcome unknown"),
                        );
                        self.step(failed);
                        self.inbox.push(working);
                    }
                }
            }
            Action::Deliver(i) => self.deliver(*i),
            Action::Replay(i) => {
                if !self.delivered.is_empty() {
                    let ev = self.delivered[i % self.delivered.len()].clone();
                    self.step(ev);
                }
            }
            Action::Fill(i, pct) => self.fill(*i, *pct),
            Action::ExternalCancel(i) => self.external_cancel(*i),
            Action::Trigger(i) => self.trigger(*i),
            Action::Advance(s) => {
                self.now += i64::from(*s) * SEC;
                self.step(Event::TimeAdvance);
            }
            Action::Price(ticks, atr) => {
                let sign = self.b.spec().side.sign();
                self.market = px((100_000 + sign * i64::from(*ticks) * 5).max(5));
                self.last_ltp = Some(self.market);
                let atr = (*atr > 0).then(|| px(i64::from(*atr) * 5));
                self.step(Event::PriceUpdate {
                    ltp: self.market,
                    atr,
                });
            }
            Action::Flatten(convert_stop) => self.step(Event::Flatten {
                convert_stop: *convert_stop,
            }),
            Action::RefuseModify(i) => {
                if let Some(k) = self.queued_index(*i) {
                    if matches!(self.requests[k], Req::Modify(_)) {
                        self.process(k, true);
                    }
                }
            }
        }
    }

    /// Lets the broker finish everything (market orders fill), flattening if
    /// the bracket is still open, until the bracket is terminal.
    fn drain(&mut self) {
        let mut flattened = false;
        for _ in 0..500 {
            let mut progressed = false;
            while !self.requests.is_empty() {
                self.process(0, false);
                progressed = true;
            }
            while !self.inbox.is_empty() {
                self.deliver(0);
                progressed = true;
            }
            let markets: Vec<usize> = self
                .live_orders()
                .into_iter()
                .filter(|&i| self.orders[i].role.is_market() || self.orders[i].market)
                .collect();
            for i in markets {
                let o = &mut self.orders[i];
                let q = o.qty - o.filled;
                o.filled = o.qty;
                o.value += i128::from(q) * i128::from(self.market.paise());
                o.status = SimStatus::Complete;
                self.snapshot(i, None);
                progressed = true;
            }
            if self.b.is_terminal() && self.requests.is_empty() && self.inbox.is_empty() {
                return;
            }
            if !progressed {
                if flattened {
                    // e.g. exits backing off after rejections
                    self.now += 10 * SEC;
                    self.step(Event::TimeAdvance);
                } else {
                    flattened = true;
                    self.step(Event::Flatten { convert_stop: true });
                }
            }
        }
        panic!(
            "bracket did not reach a terminal state: {:?} legs {:#?}",
            self.b.state(),
            self.b.legs()
        );
    }

    fn check_final(&self) {
        let b = &self.b;
        assert!(b.is_terminal());
        assert_eq!(b.working_legs().count(), 0);
        assert_eq!(b.net_qty(), 0);
        let side = b.spec().side;
        let mut broker_net = 0i64;
        let mut broker_pnl = 0i128;
        let mut tolerance = 0i128;
        for o in &self.orders {
            assert_ne!(o.status, SimStatus::Live, "broker still works {:?}", o.tag);
            let leg = b.leg(o.tag).unwrap();
            assert_eq!(
                leg.filled, o.filled,
                "{:?}: machine and broker disagree",
                o.tag
            );
            let q = i64::try_from(o.filled).unwrap();
            broker_net += if o.side == side { q } else { -q };
            broker_pnl += if o.side == Side::Sell {
                o.value
            } else {
                -o.value
            };
            tolerance += i128::from(o.filled); // half a paisa per unit of avg rounding, both ways
        }
        assert_eq!(broker_net, 0, "broker position not flat");
        match b.realized_pnl_paise() {
            Some(pnl) => assert!(
                (i128::from(pnl) - broker_pnl).abs() <= tolerance,
                "pnl {pnl} vs broker {broker_pnl}"
            ),
            None => assert_eq!(b.entry_filled(), 0),
        }
        match b.state() {
            State::Cancelled => assert_eq!(b.entry_filled(), 0),
            State::Closed => assert!(b.entry_filled() > 0),
            s => panic!("not terminal: {s}"),
        }
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        1u64..=5,
        prop_oneof![Just(1u32), Just(25u32)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(2u32), Just(7u32), Just(25u32)],
        0i64..(6 * 3600 - 600),
        1i64..=30,
    )
        .prop_map(
            |(
                side,
                lots,
                lot_size,
                market_entry,
                scale_out,
                trailing,
                stop_limit,
                time_stop,
                max_modifications,
                start_offset_s,
                stop_fill_timeout_s,
            )| Setup {
                side,
                lots,
                lot_size,
                market_entry,
                scale_out,
                trailing,
                stop_limit,
                time_stop,
                max_modifications,
                start_offset_s,
                stop_fill_timeout_s,
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    let i = 0usize..64;
    prop_oneof![
        6 => i.clone().prop_map(Action::Process),
        1 => i.clone().prop_map(Action::RejectPlace),
        1 => i.clone().prop_map(Action::LostPlacement),
        8 => i.clone().prop_map(Action::Deliver),
        3 => i.clone().prop_map(Action::Replay),
        5 => (i.clone(), 1u8..=100).prop_map(|(i, p)| Action::Fill(i, p)),
        1 => i.clone().prop_map(Action::ExternalCancel),
        2 => i.clone().prop_map(Action::Trigger),
        2 => (0u32..900).prop_map(Action::Advance),
        3 => (-300i32..600, 0u16..100).prop_map(|(t, a)| Action::Price(t, a)),
        1 => any::<bool>().prop_map(Action::Flatten),
        1 => i.prop_map(Action::RefuseModify),
    ]
}

/// Places the entry, fills `filled` of it at the reference price (completely
/// if `filled` is the plan quantity) and delivers everything, with the last
/// price `ticks` from the entry fed first.
fn entered(setup: &Setup, ticks: i32, filled: u64) -> Sim {
    let mut sim = Sim::new(setup);
    sim.run(&Action::Price(ticks, 0));
    sim.process(0, false);
    let e = sim.order(OrderTag::Entry).unwrap();
    let o = &mut sim.orders[e];
    o.filled = filled;
    o.value = i128::from(filled) * 100_000;
    if filled == o.qty {
        o.status = SimStatus::Complete;
    }
    sim.snapshot(e, None);
    while !sim.inbox.is_empty() {
        sim.deliver(0);
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=100000 for a long hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        // Integration tests have no lib.rs beside them: name the file.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/oco_props.txt"))),
        ..ProptestConfig::default()
    })]

    /// Random interleavings of broker behaviour and local signals, then a
    /// drain: every invariant holds after every step, and the bracket ends
    /// terminal, flat, with no working order, agreeing with the broker.
    #[test]
    fn invariants_hold_under_any_interleaving(setup in setup(), actions in prop::collection::vec(action(), 0..120)) {
        let mut sim = Sim::new(&setup);
        for a in &actions {
            sim.run(a);
        }
        sim.drain();
        sim.check_final();
    }

    /// Fills race cancels: once the bracket is open, both children fill
    /// before any update reaches the machine. The overfill is bought back.
    #[test]
    fn double_fills_return_to_flat(setup in setup(), stop_first in any::<bool>(), order in prop::collection::vec(0usize..8, 0..8)) {
        let mut sim = Sim::new(&setup);
        sim.process(0, false);
        let lot = sim.lot;
        let qty = sim.b.spec().qty;
        // entry fills completely
        let e = sim.order(OrderTag::Entry).unwrap();
        sim.orders[e].filled = qty;
        sim.orders[e].value = i128::from(qty) * 100_000;
        sim.orders[e].status = SimStatus::Complete;
        sim.snapshot(e, None);
        while !sim.inbox.is_empty() { sim.deliver(0); }
        while !sim.requests.is_empty() { sim.process(0, false); }
        // every child fills completely before any news arrives
        let (first, second) = if stop_first { (Role::Stop, Role::TakeProfit) } else { (Role::TakeProfit, Role::Stop) };
        for role in [first, second] {
            for i in sim.live_orders() {
                if sim.orders[i].role == role {
                    while sim.orders[i].status == SimStatus::Live { sim.fill(sim.live_orders().iter().position(|&k| k == i).unwrap(), 100); }
                }
            }
        }
        let _ = lot;
        for k in order { sim.deliver(k); }
        sim.drain();
        sim.check_final();
    }

    /// The market is already through the stop when the entry fills (all or
    /// part of it): no stop is ever sent, the position exits at market as a
    /// gapped stop-out, with a WARNING, and ends flat.
    #[test]
    fn a_gap_at_the_entry_fill_never_sends_the_stop(
        setup in setup(),
        gap_ticks in 200i32..=300,
        lots_filled in 1u64..=5,
    ) {
        let lot = u64::from(setup.lot_size);
        let filled = (lots_filled.min(setup.lots)) * lot;
        let mut sim = entered(&setup, -gap_ticks, filled);
        prop_assert!(sim.b.leg(OrderTag::Stop).is_none(), "stop placed through the market");
        prop_assert_eq!(sim.b.state(), State::Closing);
        prop_assert_eq!(sim.b.closing_reason(), Some(aitrapp_core::oco::ExitReason::StopGapped));
        sim.drain();
        sim.check_final();
        prop_assert!(sim.b.leg(OrderTag::Stop).is_none());
    }

    /// A stop triggers and then rests: the venue neither fills it nor answers
    /// its cancel, and no tick arrives. Timers fired at `next_deadline_ns`
    /// alone escalate it a timeout after the trigger (WARNING, cancel) and
    /// again a timeout later (CRITICAL), when market exits work the whole
    /// open position.
    #[test]
    fn a_triggered_stop_is_escalated_on_time_alone(setup in setup(), partial_pct in 0u8..=90) {
        let qty = setup.lots * u64::from(setup.lot_size);
        let mut sim = entered(&setup, 0, qty);
        while !sim.requests.is_empty() {
            sim.process(0, false);
        }
        while !sim.inbox.is_empty() {
            sim.deliver(0);
        }
        let s = sim.order(OrderTag::Stop).unwrap();
        let live = sim.live_orders();
        let pos = live.iter().position(|&k| k == s).unwrap();
        if partial_pct > 0 && qty > sim.lot {
            sim.fill(pos, partial_pct);
        }
        sim.trigger(0);
        while !sim.inbox.is_empty() {
            sim.deliver(0);
        }
        let t0 = sim.b.leg(OrderTag::Stop).unwrap().triggered_ns.unwrap();
        let timeout = sim.b.spec().stop_fill_timeout_ns;
        let mut fired = Vec::new();
        while sim.b.watchdog_escalations() < 2 {
            let due = sim.b.next_deadline_ns().unwrap();
            prop_assert!(due <= t0 + 2 * timeout, "no deadline for the watchdog");
            sim.now = due;
            sim.step(Event::TimeAdvance);
            fired.push(due);
            // The venue works every order except the stop, which hangs.
            while let Some(k) = sim.requests.iter().position(|r| r.tag() != OrderTag::Stop) {
                sim.process(k, false);
            }
            while !sim.inbox.is_empty() {
                sim.deliver(0);
            }
        }
        prop_assert_eq!(fired, vec![t0 + timeout, t0 + 2 * timeout]);
        let b = &sim.b;
        let exiting: u64 = b
            .working_legs()
            .filter(|l| l.role == Role::Exit)
            .map(|l| l.commanded_remaining())
            .sum();
        prop_assert_eq!(i64::try_from(exiting).unwrap(), b.net_qty(), "market exits cover the position");
        sim.drain();
        sim.check_final();
    }
}
