//! The trading kernel: one event-exact loop for replay, synthetic, paper on
//! the live feed and LIVE. It owns the engine (strategies and risk gate),
//! every OCO bracket and a venue; only the venue differs between paper
//! ([`crate::venue::SimVenue`]) and Kite (the external venue, driven from
//! Python).
//!
//! Time is a queue, not "the next tick". Every tick, venue timer
//! (acknowledgements, arrivals of modifications and cancellations, no-tick
//! fills) and bracket timer (entry timeout, time stop, square-off, exit
//! retry, stop watchdog) happens at its own exchange time. Ties at the same
//! nanosecond are broken in this order:
//! 1. venue timers, in the order they were set (an acknowledgement due at
//!    t is in force before anything else looks at t);
//! 2. bracket timers (so a fill at the square-off instant counts first);
//! 3. the tick: validation, then the venue matches it, then the fills it
//!    caused reach their brackets, then (with a trailing template) the open
//!    brackets of the tick's instrument trail their stops on its price and
//!    the engine's ATR, then the strategies and the risk gate decide on the
//!    updated book, then new brackets send their entries.
//!
//! Whatever a venue reports at t reaches its bracket at t, and the
//! bracket's commands are handed to the venue at t (the venue adds its own
//! latency before they take effect). Nothing here reads a clock, and the
//! batch size of the input never changes the output.

mod book;
mod config;
mod external;
mod log;
mod pacer;
mod route;
mod trail;

pub use config::BracketTemplate;
pub use external::AdoptedBracket;
pub use log::{Alerts, Blocks, Decisions, EventLog, Fills, Orders, Trades, Transitions, Updates};

use crate::engine::{Engine, EngineError, Outcome, TickColumns};
use crate::instrument::Instrument;
use crate::risk::TradingState;
use crate::tick::{RawTick, TickReject};
use crate::venue::{Quote, Venue, VenueUpdate};
use book::Book;
use std::collections::HashMap;

/// Running totals, kept incrementally (what `/state` and progress read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub ticks: u64,
    pub ticks_rejected: u64,
    pub decisions: u64,
    pub blocks: u64,
    pub brackets_opened: u64,
    pub trades: u64,
    pub wins: u64,
    pub alerts: u64,
    pub critical_alerts: u64,
    pub double_exits: u64,
    pub races: u64,
    pub last_tick_ns: Option<i64>,
}

#[derive(Debug)]
pub struct Kernel<V: Venue> {
    engine: Engine,
    venue: V,
    template: BracketTemplate,
    instruments: HashMap<u32, Instrument>,
    book: Book,
    log: EventLog,
    counters: KernelCounters,
    /// Latest exchange time the kernel has reached.
    now_ns: i64,
    // Scratch buffers, reused so the per-tick path does not allocate.
    outcomes: Vec<Outcome>,
    updates: Vec<VenueUpdate>,
    /// Modifications sent to an external venue, awaiting the broker's answer.
    awaiting: external::Awaiting,
    /// New orders paced under the venue's order rate (None: the venue has none).
    pacer: Option<pacer::Pacer>,
    /// Scratch: entries a protective order displaced (venue id, new send time).
    paced_moves: Vec<(u64, i64)>,
}

impl<V: Venue> Kernel<V> {
    pub fn new(engine: Engine, venue: V, template: BracketTemplate) -> Result<Self, EngineError> {
        template
            .validate()
            .map_err(|e| EngineError::Input(e.to_string()))?;
        let instruments = engine
            .instruments()
            .map(|i| (i.instrument_token, i.clone()))
            .collect();
        let pacer = venue.order_rate().and_then(pacer::Pacer::new);
        Ok(Kernel {
            engine,
            venue,
            template,
            instruments,
            book: Book::default(),
            log: EventLog::default(),
            counters: KernelCounters::default(),
            now_ns: i64::MIN,
            outcomes: Vec::new(),
            updates: Vec::new(),
            awaiting: external::Awaiting::default(),
            pacer,
            paced_moves: Vec::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for restoring the day (and, on Kite, the open positions)
    /// after a restart, before any tick; adoption then hands brackets their machines.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn venue(&self) -> &V {
        &self.venue
    }

    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }

    pub fn counters(&self) -> KernelCounters {
        self.counters
    }

    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Takes the events produced since the last call.
    pub fn take_log(&mut self) -> EventLog {
        std::mem::take(&mut self.log)
    }

    /// The events produced since the last call, swapped into `into` (which
    /// is cleared first); both logs keep their capacity, so the live path
    /// allocates no fresh columns per tick.
    pub fn take_log_into(&mut self, into: &mut EventLog) {
        into.clear();
        std::mem::swap(&mut self.log, into);
    }

    /// Replays columns of ticks in row order. Timers between two rows fire
    /// at their own time; the result does not depend on how a day is cut
    /// into batches.
    pub fn run(&mut self, ticks: &TickColumns<'_>) -> Result<(), EngineError> {
        let n = ticks.check()?;
        for i in 0..n {
            let _ = self.on_tick(&ticks.row(i));
        }
        Ok(())
    }

    /// One tick (the live path). A refused tick is counted and changes nothing.
    pub fn on_tick(&mut self, raw: &RawTick) -> Result<(), TickReject> {
        self.counters.ticks += 1;
        let accepted = match self.engine.check(raw) {
            Ok(a) => a,
            Err(why) => {
                self.engine.count_reject(why);
                self.counters.ticks_rejected += 1;
                return Err(why);
            }
        };
        let t = accepted.tick.ts_ns;
        // Timers due before the tick fire on the market as it was then; only
        // then does the tick become the market (last price, bars, the day).
        self.advance_to(t);
        self.engine.apply(&accepted);
        self.now_ns = self.now_ns.max(t);
        self.counters.last_tick_ns = Some(t);
        let tick = &accepted.tick;
        let quote = Quote {
            token: tick.token,
            ts_ns: t,
            last: tick.last,
            bid: tick.bid,
            ask: tick.ask,
            volume: tick.volume,
            last_qty: tick.last_qty,
        };
        self.venue.on_quote(&quote, &mut self.updates);
        self.route_updates();
        self.trail_on_tick(tick.token, t, tick.last);
        self.engine.decide_on(&accepted, &mut self.outcomes);
        if !self.outcomes.is_empty() {
            // Most ticks decide nothing: the buffer moves only when they do.
            let mut outcomes = std::mem::take(&mut self.outcomes);
            for o in outcomes.drain(..) {
                self.on_outcome(t, o);
            }
            self.outcomes = outcomes;
        }
        Ok(())
    }

    /// Moves exchange time to `ts_ns` with no tick (a quiet live feed, the
    /// end of a replay): every timer due by then fires at its own time.
    pub fn advance_time(&mut self, ts_ns: i64) {
        self.advance_to(ts_ns);
        if ts_ns > self.now_ns {
            self.now_ns = ts_ns;
            self.engine.advance_time(ts_ns);
        }
    }

    /// The replay is over at `ts_ns`: orders waiting for a tick settle on the
    /// last quote, then time runs on to `until_ns` (e.g. the day's close) so
    /// entry timeouts and the square-off happen.
    pub fn finish(&mut self, ts_ns: i64, until_ns: i64) {
        self.advance_time(ts_ns);
        self.venue.feed_ended(self.now_ns, &mut self.updates);
        self.route_updates();
        self.advance_time(until_ns.max(ts_ns));
    }

    pub fn set_trading_state(&mut self, state: TradingState) {
        self.engine.set_trading_state(state);
    }

    /// Every open bracket exits at market now (the kill switch): each
    /// working SL-M stop becomes its bracket's market exit by one
    /// modification, the targets are cancelled once that is answered (see
    /// `oco/flatten.rs`). The caller halts the engine first so that nothing
    /// new can open.
    pub fn flatten(&mut self, ts_ns: i64) {
        self.advance_time(ts_ns);
        let now = self.now_ns;
        let event = crate::oco::Event::Flatten { convert_stop: true };
        for ix in self.book.open().to_vec() {
            self.handle(ix, now, &event);
        }
    }

    pub fn open_brackets(&self) -> usize {
        self.book.open().len()
    }

    pub fn working_orders(&self) -> usize {
        self.book.working_orders()
    }

    /// Fires venue and bracket timers up to and including `t`, earliest first
    /// (venue before brackets on a tie).
    fn advance_to(&mut self, t: i64) {
        // A bracket whose timer does not move when fired (a machine bug)
        // must not spin the loop: its timers wait for the next call.
        let mut brackets_stuck = false;
        loop {
            let venue_due = self.venue.next_due_ns().filter(|&d| d <= t);
            let bracket_due = if brackets_stuck {
                None
            } else {
                self.book.next_deadline().filter(|&d| d <= t)
            };
            match (venue_due, bracket_due) {
                (Some(v), b) if b.map_or(true, |b| v <= b) => {
                    self.now_ns = self.now_ns.max(v);
                    self.venue.advance_to(v, &mut self.updates);
                    self.route_updates();
                }
                (_, Some(b)) => {
                    self.now_ns = self.now_ns.max(b);
                    self.fire_bracket_timers(b);
                    brackets_stuck = self.book.next_deadline().is_some_and(|d| d <= b);
                }
                (None, None) => return,
                // Unreachable by the guards above; stop rather than spin.
                _ => return,
            }
        }
    }

    fn fire_bracket_timers(&mut self, t: i64) {
        for ix in self.book.open().to_vec() {
            if self.book.slots[ix]
                .bracket
                .next_deadline_ns()
                .is_some_and(|d| d <= t)
            {
                self.handle(ix, t, &crate::oco::Event::TimeAdvance);
            }
        }
    }
}

#[cfg(test)]
mod tests;
