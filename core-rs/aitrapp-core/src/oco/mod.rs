//! The OCO bracket state machine: an ENTRY and, once it fills, a protective
//! STOP and take-profit LIMIT order(s) linked one-cancels-other, with
//! partial fills, scale-out, trailing, time stop and end-of-day square-off.
//!
//! Pure: events in (broker order updates, answers to modifications, flatten,
//! time, price), commands out (place, exit at market, modify, cancel,
//! alert). The caller executes the commands and feeds back what happens.
//! One transition table lives in `machine.rs`.
//!
//! Invariants (property-tested in `tests/oco_props.rs`):
//! - the quantity the machine asks to exit (stop or market exits; and
//!   separately the take-profits) plus what already exited never exceeds
//!   the filled entry quantity (plus any corrective buy-back);
//! - while open, the stop covers exactly the open quantity;
//! - an overfill (both siblings filled) is bought back at once, with a
//!   CRITICAL alert; a lost stop exits at market with an alert;
//! - every bracket ends CLOSED or CANCELLED with no working order; the same
//!   event twice changes nothing;
//! - no stop is placed or modified with a trigger the last known price has
//!   already passed (the exchange would reject it): the position exits at
//!   market instead (`STOP_GAPPED`, a WARNING);
//! - a stop that triggered but has not filled is escalated after
//!   `stop_fill_timeout_ns` (WARNING, cancel and exit at market) and again a
//!   timeout later (CRITICAL, exit without waiting for the cancel);
//!   `Bracket::next_deadline_ns` names those times, so they fire without ticks.
//!
//! Beyond the broker's own messages, two rows keep a bracket honest when the
//! execution layer had to guess: a fill reported after the bracket ended
//! reopens it (CLOSING) and squares the quantity, and a "working" report for
//! an order believed rejected (a placement whose outcome was unknown) revives
//! that order and cancels it, so it cannot become an orphan.

mod actions;
mod adopt;
mod command;
mod error;
mod event;
mod flatten;
mod leg;
mod machine;
mod spec;
mod state;
mod watchdog;

#[cfg(test)]
mod tests;

pub use adopt::AdoptedChild;
pub use command::{
    Alert, AlertCode, Command, ExitReason, FillReport, ModifyOrder, NewOrder, OrderType, Severity,
};
pub use error::OcoError;
pub use event::{Event, Fill, OrderStatus};
pub use flatten::StopToMarket;
pub use leg::{Leg, LegStatus, PendingModify, Role};
pub use machine::{Bracket, Transition};
pub use spec::{
    BracketSpec, EntryKind, ScaleOut, StopKind, Trailing, DEFAULT_ENTRY_TIMEOUT_NS,
    DEFAULT_MAX_MODIFICATIONS, DEFAULT_STOP_FILL_TIMEOUT_NS, MAX_STOP_FILL_TIMEOUT_NS,
    SQUARE_OFF_EQ_MINUTE, SQUARE_OFF_FNO_MINUTE, TRAIL_RESERVED_MODIFICATIONS,
};
pub use state::State;
