//! Bracket states.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a bracket is in its life.
///
/// ```text
///            entry fill (partial)          entry done
/// PENDING ───────────────────▶ ENTERING ──────────────▶ OPEN
///    │   \__________________ entry fill (complete) ______▲│
///    │ reject / cancel                                    │ child filled, stop lost,
///    ▼ (nothing filled)                                   │ time / EOD stop, flatten
/// CANCELLED ◀── nothing filled ── CLOSING ◀───────────────┘ (also from PENDING, ENTERING)
///                                    │ flat, no working order
///                                    ▼
///                                  CLOSED
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// ENTRY working, nothing filled.
    Pending,
    /// ENTRY partially filled and still working; children protect the filled part.
    Entering,
    /// ENTRY done (complete, or cancelled after a partial fill); children working.
    Open,
    /// Winding down: every working order is being cancelled and any open
    /// quantity exits at market. Ends when flat with no working order.
    Closing,
    /// Terminal: the entry filled and the position is flat again.
    Closed,
    /// Terminal: the entry never filled.
    Cancelled,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Entering,
        State::Open,
        State::Closing,
        State::Closed,
        State::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Entering => "ENTERING",
            State::Open => "OPEN",
            State::Closing => "CLOSING",
            State::Closed => "CLOSED",
            State::Cancelled => "CANCELLED",
        }
    }

    pub const fn is_terminal(self) -> bool {
        matches!(self, State::Closed | State::Cancelled)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
