//! The one error type of the OCO domain.

use super::state::State;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcoError {
    /// A bracket spec field is invalid; `field` is the spec's key.
    #[error("bracket spec: {field} {problem}")]
    InvalidSpec {
        field: &'static str,
        problem: String,
    },
    /// The bracket would open at or after its end-of-day square-off.
    #[error(
        "bracket {plan_id}: cannot open at or after the square-off time ({minute_ist} min IST)"
    )]
    AfterSquareOff { plan_id: String, minute_ist: u16 },
    /// An adopted bracket (restored after a restart) is inconsistent;
    /// `field` names the argument.
    #[error("bracket {plan_id}: adopt: {field} {problem}")]
    BadAdoption {
        plan_id: String,
        field: &'static str,
        problem: String,
    },
    /// No row of the transition table accepts this event in this state.
    #[error("bracket {plan_id}: event {event} is not valid in state {state}")]
    InvalidTransition {
        plan_id: String,
        state: State,
        event: &'static str,
    },
    /// The event names an order this bracket never placed.
    #[error("bracket {plan_id}: unknown order {tag} for event {event}")]
    UnknownOrder {
        plan_id: String,
        tag: String,
        event: &'static str,
    },
    /// A field of the event is impossible (the message names it).
    #[error("bracket {plan_id}: event {event}: {field} {problem}")]
    BadEvent {
        plan_id: String,
        event: &'static str,
        field: &'static str,
        problem: String,
    },
    /// An unknown broker status string.
    #[error("unknown order status {0:?}: expected PENDING, OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED or EXPIRED")]
    UnknownStatus(String),
}
