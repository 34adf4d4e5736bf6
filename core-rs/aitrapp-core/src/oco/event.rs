//! What happens to a bracket: broker order updates, answers to its commands,
//! and local signals (flatten, time, price). Time is not in the event: every
//! call to `Bracket::handle` carries `now_ns`.

use super::error::OcoError;
use crate::ids::OrderTag;
use crate::price::Price;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Cumulative fill state of one order, as the broker reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fill {
    /// Cumulative filled quantity.
    pub filled: u64,
    /// Cumulative average price (zero while nothing has filled).
    pub avg_price: Price,
}

impl Fill {
    pub const NONE: Fill = Fill {
        filled: 0,
        avg_price: Price::ZERO,
    };

    pub const fn new(filled: u64, avg_price: Price) -> Fill {
        Fill { filled, avg_price }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    // ---- the entry order ----
    EntryAck,
    EntryPartialFill(Fill),
    EntryFilled(Fill),
    EntryRejected {
        reason: String,
    },
    EntryCancelled(Fill),
    EntryExpired(Fill),
    // ---- child orders: stop, take-profits, market exits ----
    ChildAck {
        tag: OrderTag,
    },
    /// The venue reports that a stop's trigger was hit (TRIGGER PENDING ->
    /// OPEN): it is now a market (SL-M) or limit (SL) order that should fill
    /// at once. Arms the triggered-stop watchdog; also an acknowledgement.
    ChildTriggered {
        tag: OrderTag,
    },
    ChildPartialFill {
        tag: OrderTag,
        fill: Fill,
    },
    ChildFilled {
        tag: OrderTag,
        fill: Fill,
    },
    ChildRejected {
        tag: OrderTag,
        reason: String,
    },
    /// Cancelled or expired, possibly after a partial fill.
    ChildCancelled {
        tag: OrderTag,
        fill: Fill,
    },
    /// Our cancel was refused because the order had already filled; the fill
    /// report itself arrives separately.
    CancelRejectedFilled {
        tag: OrderTag,
    },
    // ---- answers to `Command::Modify` ----
    ModifyAck {
        tag: OrderTag,
        seq: u32,
    },
    ModifyRejected {
        tag: OrderTag,
        seq: u32,
        reason: String,
    },
    // ---- local signals ----
    /// The kill switch: every position exits at market now. With
    /// `convert_stop` a working SL-M stop becomes the exit itself by one
    /// modification to MARKET, and the take-profits are cancelled once that
    /// modification is answered (exits first, then clean-up); a stop that
    /// cannot be converted, and every stop without `convert_stop`, is
    /// cancelled and its part exits at market once the cancel is confirmed.
    Flatten {
        convert_stop: bool,
    },
    TimeAdvance,
    /// Last price, and the current ATR if the caller tracks one (trailing).
    PriceUpdate {
        ltp: Price,
        atr: Option<Price>,
    },
}

impl Event {
    /// Every kind, in table order.
    pub const KINDS: [&'static str; 18] = [
        "ENTRY_ACK",
        "ENTRY_PARTIAL_FILL",
        "ENTRY_FILLED",
        "ENTRY_REJECTED",
        "ENTRY_CANCELLED",
        "ENTRY_EXPIRED",
        "CHILD_ACK",
        "CHILD_TRIGGERED",
        "CHILD_PARTIAL_FILL",
        "CHILD_FILLED",
        "CHILD_REJECTED",
        "CHILD_CANCELLED",
        "CANCEL_REJECTED_FILLED",
        "MODIFY_ACK",
        "MODIFY_REJECTED",
        "FLATTEN",
        "TIME_ADVANCE",
        "PRICE_UPDATE",
    ];

    pub const fn kind(&self) -> &'static str {
        match self {
            Event::EntryAck => "ENTRY_ACK",
            Event::EntryPartialFill(_) => "ENTRY_PARTIAL_FILL",
            Event::EntryFilled(_) => "ENTRY_FILLED",
            Event::EntryRejected { .. } => "ENTRY_REJECTED",
            Event::EntryCancelled(_) => "ENTRY_CANCELLED",
            Event::EntryExpired(_) => "ENTRY_EXPIRED",
            Event::ChildAck { .. } => "CHILD_ACK",
            Event::ChildTriggered { .. } => "CHILD_TRIGGERED",
            Event::ChildPartialFill { .. } => "CHILD_PARTIAL_FILL",
            Event::ChildFilled { .. } => "CHILD_FILLED",
            Event::ChildRejected { .. } => "CHILD_REJECTED",
            Event::ChildCancelled { .. } => "CHILD_CANCELLED",
            Event::CancelRejectedFilled { .. } => "CANCEL_REJECTED_FILLED",
            Event::ModifyAck { .. } => "MODIFY_ACK",
            Event::ModifyRejected { .. } => "MODIFY_REJECTED",
            Event::Flatten { .. } => "FLATTEN",
            Event::TimeAdvance => "TIME_ADVANCE",
            Event::PriceUpdate { .. } => "PRICE_UPDATE",
        }
    }

    /// Turns one broker order snapshot (Kite-shaped: status plus cumulative
    /// fill) into the event for the order `tag`.
    ///
    /// A live status with a fill is a partial fill; REJECTED with a fill
    /// (never seen, but the fill must not be lost) counts as a cancel. A
    /// STOP reported OPEN with nothing filled has triggered: Kite (and the
    /// paper venues) keep an untriggered stop in TRIGGER PENDING, and the
    /// interim states (OPEN PENDING, MODIFY PENDING, ...) arrive as PENDING.
    pub fn from_order_status(
        tag: OrderTag,
        status: OrderStatus,
        fill: Fill,
        reason: Option<&str>,
    ) -> Event {
        let reason = || reason.unwrap_or("").to_string();
        let partial = fill.filled > 0;
        if tag == OrderTag::Entry {
            match status {
                OrderStatus::Pending | OrderStatus::Open | OrderStatus::TriggerPending => {
                    if partial {
                        Event::EntryPartialFill(fill)
                    } else {
                        Event::EntryAck
                    }
                }
                OrderStatus::Complete => Event::EntryFilled(fill),
                OrderStatus::Cancelled => Event::EntryCancelled(fill),
                OrderStatus::Expired => Event::EntryExpired(fill),
                OrderStatus::Rejected if partial => Event::EntryCancelled(fill),
                OrderStatus::Rejected => Event::EntryRejected { reason: reason() },
            }
        } else {
            match status {
                _ if partial && !status.is_terminal() => Event::ChildPartialFill { tag, fill },
                OrderStatus::Open if tag.is_stop() => Event::ChildTriggered { tag },
                OrderStatus::Pending | OrderStatus::Open | OrderStatus::TriggerPending => {
                    Event::ChildAck { tag }
                }
                OrderStatus::Complete => Event::ChildFilled { tag, fill },
                OrderStatus::Cancelled | OrderStatus::Expired => {
                    Event::ChildCancelled { tag, fill }
                }
                OrderStatus::Rejected if partial => Event::ChildCancelled { tag, fill },
                OrderStatus::Rejected => Event::ChildRejected {
                    tag,
                    reason: reason(),
                },
            }
        }
    }
}

/// One line for logs and transition records: `CHILD_FILLED STOP filled=10 avg=2480.00`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())?;
        let fill = |f: &mut fmt::Formatter<'_>, x: &Fill| {
            write!(f, " filled={} avg={}", x.filled, x.avg_price)
        };
        match self {
            Event::EntryAck | Event::Flatten { .. } | Event::TimeAdvance => Ok(()),
            Event::EntryPartialFill(x)
            | Event::EntryFilled(x)
            | Event::EntryCancelled(x)
            | Event::EntryExpired(x) => fill(f, x),
            Event::EntryRejected { reason } => write!(f, " reason={reason:?}"),
            Event::ChildAck { tag }
            | Event::ChildTriggered { tag }
            | Event::CancelRejectedFilled { tag } => write!(f, " {tag}"),
            Event::ChildPartialFill { tag, fill: x }
            | Event::ChildFilled { tag, fill: x }
            | Event::ChildCancelled { tag, fill: x } => {
                write!(f, " {tag}")?;
                fill(f, x)
            }
            Event::ChildRejected { tag, reason } => write!(f, " {tag} reason={reason:?}"),
            Event::ModifyAck { tag, seq } => write!(f, " {tag} seq={seq}"),
            Event::ModifyRejected { tag, seq, reason } => {
                write!(f, " {tag} seq={seq} reason={reason:?}")
            }
            Event::PriceUpdate { ltp, atr } => match atr {
                Some(a) => write!(f, " ltp={ltp} atr={a}"),
                None => write!(f, " ltp={ltp}"),
            },
        }
    }
}

/// Broker order status (Kite's spelling; interim states are PENDING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    #[serde(rename = "PENDING")]
    Pending,
    #[serde(rename = "OPEN")]
    Open,
    #[serde(rename = "TRIGGER PENDING")]
    TriggerPending,
    #[serde(rename = "COMPLETE")]
    Complete,
    #[serde(rename = "CANCELLED")]
    Cancelled,
    #[serde(rename = "REJECTED")]
    Rejected,
    #[serde(rename = "EXPIRED")]
    Expired,
}

impl OrderStatus {
    /// COMPLETE, CANCELLED, REJECTED, EXPIRED: the order can change no more.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Complete
                | OrderStatus::Cancelled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }
}

impl FromStr for OrderStatus {
    type Err = OcoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "PENDING" => OrderStatus::Pending,
            "OPEN" => OrderStatus::Open,
            "TRIGGER PENDING" => OrderStatus::TriggerPending,
            "COMPLETE" => OrderStatus::Complete,
            "CANCELLED" => OrderStatus::Cancelled,
            "REJECTED" => OrderStatus::Rejected,
            "EXPIRED" => OrderStatus::Expired,
            other => return Err(OcoError::UnknownStatus(other.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for k in Event::KINDS {
            assert!(seen.insert(k));
        }
    }

    #[test]
    fn snapshots_map_to_events() {
        let f = Fill::new(4, Price::from_paise(100));
        let e = OrderTag::Entry;
        let s = OrderTag::Stop;
        assert_eq!(
            Event::from_order_status(e, OrderStatus::Open, Fill::NONE, None),
            Event::EntryAck
        );
        assert_eq!(
            Event::from_order_status(e, OrderStatus::Open, f, None),
            Event::EntryPartialFill(f)
        );
        assert_eq!(
            Event::from_order_status(e, OrderStatus::Complete, f, None),
            Event::EntryFilled(f)
        );
        assert_eq!(
            Event::from_order_status(e, OrderStatus::Rejected, f, None),
            Event::EntryCancelled(f)
        );
        assert_eq!(
            Event::from_order_status(s, OrderStatus::Rejected, Fill::NONE, Some("margin")),
            Event::ChildRejected {
                tag: s,
                reason: "margin".into()
            }
        );
        assert_eq!(
            Event::from_order_status(s, OrderStatus::Expired, f, None),
            Event::ChildCancelled { tag: s, fill: f }
        );
        assert_eq!(
            Event::from_order_status(s, OrderStatus::TriggerPending, Fill::NONE, None),
            Event::ChildAck { tag: s }
        );
        // A stop reported OPEN has triggered; a take-profit OPEN is just working.
        assert_eq!(
            Event::from_order_status(s, OrderStatus::Open, Fill::NONE, None),
            Event::ChildTriggered { tag: s }
        );
        assert_eq!(
            Event::from_order_status(s, OrderStatus::Open, f, None),
            Event::ChildPartialFill { tag: s, fill: f }
        );
        let tp = OrderTag::Tp;
        assert_eq!(
            Event::from_order_status(tp, OrderStatus::Open, Fill::NONE, None),
            Event::ChildAck { tag: tp }
        );
        assert_eq!(
            Event::from_order_status(s, OrderStatus::Pending, Fill::NONE, None),
            Event::ChildAck { tag: s }
        );
    }

    #[test]
    fn events_print_on_one_line() {
        let e = Event::ChildFilled {
            tag: OrderTag::Stop,
            fill: Fill::new(10, Price::from_paise(248_000)),
        };
        assert_eq!(e.to_string(), "CHILD_FILLED STOP filled=10 avg=2480.00");
        assert_eq!(
            Event::ModifyAck {
                tag: OrderTag::TpN(1),
                seq: 2
            }
            .to_string(),
            "MODIFY_ACK TP1 seq=2"
        );
    }

    #[test]
    fn statuses_parse() {
        assert_eq!(
            "TRIGGER PENDING".parse::<OrderStatus>(),
            Ok(OrderStatus::TriggerPending)
        );
        assert!("open".parse::<OrderStatus>().is_err());
    }
}
