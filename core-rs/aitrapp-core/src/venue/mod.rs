//! Venues: where the kernel's orders go. `SimVenue` simulates Kite's order
//! behaviour against the ticks (paper); an external venue (Kite) is driven
//! from Python with the same commands and updates.

mod book;
mod config;
mod external;
mod matching;
pub mod rules;
mod sim;
mod types;
pub mod validation;

pub use config::{AutoProtection, ProtectionTier, SimVenueConfig};
pub use external::{ExternalUpdate, ExternalVenue, ExternalVenueConfig, KnownOrder, VenueCommand};
pub use sim::{ClientRequest, SimVenue};
pub use types::{
    Protection, Quote, Validity, VenueError, VenueModify, VenueOrder, VenueStatus, VenueUpdate,
};
pub use validation::Product;

/// What the kernel asks of a venue. `SimVenue` answers with its own timers
/// and matching; the external venue (Kite) only queues the commands for
/// Python to execute, and its updates come back through the kernel.
pub trait Venue {
    /// A new order reaching the venue at `now_ns`; returns the venue's id.
    /// A refusal is a REJECTED update in `out`, never an error.
    fn submit(&mut self, now_ns: i64, order: VenueOrder, out: &mut Vec<VenueUpdate>) -> u64;
    /// Refused at once (Kite's InputException) for an order that is
    /// terminal, unknown or out of modifications.
    fn modify(&mut self, now_ns: i64, order_id: u64, m: VenueModify) -> Result<(), VenueError>;
    fn cancel(&mut self, now_ns: i64, order_id: u64) -> Result<(), VenueError>;
    /// The earliest timer the venue holds (acknowledgements, arrivals).
    fn next_due_ns(&self) -> Option<i64>;
    /// Fires every timer due at or before `ts_ns`.
    fn advance_to(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>);
    /// Matches one validated tick.
    fn on_quote(&mut self, q: &Quote, out: &mut Vec<VenueUpdate>);
    /// The replay is over: what waits for a tick is settled now.
    fn feed_ended(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>);
    /// How long a command takes to reach the exchange (races are judged by it).
    fn command_latency_ns(&self) -> i64;
    /// True when the venue answers modifications later (the external venue:
    /// the broker's reply comes back through the kernel); false when `modify`
    /// returning Ok is the acknowledgement itself (the simulated venue).
    fn answers_later(&self) -> bool {
        false
    }
    /// Orders per second the venue takes before it refuses one (Kite: 10), when
    /// the kernel must pace them itself; None when there is no limit or the
    /// shell paces (the external venue: the Kite rate limiter does).
    fn order_rate(&self) -> Option<u32> {
        None
    }
    /// A new order the kernel decided on at `now_ns` and sends at `send_ns`
    /// (>= now, later when paced under `order_rate`): it reaches the venue at
    /// `send_ns` plus the venue's latency.
    fn submit_at(
        &mut self,
        now_ns: i64,
        send_ns: i64,
        order: VenueOrder,
        out: &mut Vec<VenueUpdate>,
    ) -> u64 {
        let _ = send_ns;
        self.submit(now_ns, order, out)
    }
    /// An order placed with `submit_at` and not yet sent leaves at `send_ns`
    /// instead, after the orders set to leave at that instant before it (the
    /// kernel sent a protective order ahead of it). Only venues with an
    /// `order_rate` are asked; an order already sent or terminal is left alone.
    fn reschedule(&mut self, order_id: u64, send_ns: i64) {
        let _ = (order_id, send_ns);
    }
}

impl Venue for SimVenue {
    fn submit(&mut self, now_ns: i64, order: VenueOrder, out: &mut Vec<VenueUpdate>) -> u64 {
        SimVenue::submit(self, now_ns, order, out)
    }
    fn modify(&mut self, now_ns: i64, order_id: u64, m: VenueModify) -> Result<(), VenueError> {
        SimVenue::modify(self, now_ns, order_id, m)
    }
    fn cancel(&mut self, now_ns: i64, order_id: u64) -> Result<(), VenueError> {
        SimVenue::cancel(self, now_ns, order_id)
    }
    fn next_due_ns(&self) -> Option<i64> {
        SimVenue::next_due_ns(self)
    }
    fn advance_to(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>) {
        SimVenue::advance_to(self, ts_ns, out);
    }
    fn on_quote(&mut self, q: &Quote, out: &mut Vec<VenueUpdate>) {
        SimVenue::on_quote(self, q, out);
    }
    fn feed_ended(&mut self, ts_ns: i64, out: &mut Vec<VenueUpdate>) {
        SimVenue::feed_ended(self, ts_ns, out);
    }
    fn command_latency_ns(&self) -> i64 {
        self.config().ack_latency_ns
    }
    fn order_rate(&self) -> Option<u32> {
        self.config().max_orders_per_second
    }
    fn submit_at(
        &mut self,
        now_ns: i64,
        send_ns: i64,
        order: VenueOrder,
        out: &mut Vec<VenueUpdate>,
    ) -> u64 {
        SimVenue::submit_at(self, now_ns, send_ns, order, out)
    }
    fn reschedule(&mut self, order_id: u64, send_ns: i64) {
        SimVenue::reschedule(self, order_id, send_ns);
    }
}
