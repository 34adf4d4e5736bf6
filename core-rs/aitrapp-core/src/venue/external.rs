//! The external venue: Kite (or any broker driven from Python). It keeps no
//! timers and matches nothing; it numbers the kernel's orders, queues the
//! commands for the shell to execute (through the write-ahead journal) and
//! turns the broker's order reports back into [`VenueUpdate`]s, dropping
//! the duplicates and stale reorders a broker's stream carries.
//!
//! Refused at once, as Kite would with an InputException, is only what is
//! certainly refused: an unknown or terminal order, the modification past
//! the limit. Everything else is the broker's to answer, later.

use super::types::{VenueError, VenueModify, VenueOrder, VenueStatus, VenueUpdate};
use crate::oco::OrderType;
use crate::price::Price;
use crate::side::Side;
use serde::Deserialize;
use std::collections::HashMap;

/// Settings of the external venue (JSON from Python; unknown keys refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalVenueConfig {
    /// The first venue-local order id (ids count up from it).
    pub first_order_id: u64,
    /// How long a command takes to reach the exchange (races are judged by it).
    pub command_latency_ns: i64,
    /// Kite refuses the 26th modification of an order.
    pub max_modifications: u32,
}

impl Default for ExternalVenueConfig {
    fn default() -> Self {
        ExternalVenueConfig {
            first_order_id: 1,
            command_latency_ns: 50_000_000,
            max_modifications: 25,
        }
    }
}

impl ExternalVenueConfig {
    pub fn validate(&self) -> Result<(), VenueError> {
        if self.first_order_id == 0 {
            return Err(VenueError::Config("first_order_id: must be >= 1".into()));
        }
        if self.command_latency_ns < 0 {
            return Err(VenueError::Config(format!(
                "command_latency_ns: must be >= 0, got {}",
                self.command_latency_ns
            )));
        }
        Ok(())
    }
}

/// What the shell must do at the broker, in the order queued.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueCommand {
    Place {
        order_id: u64,
        order: VenueOrder,
    },
    Modify {
        order_id: u64,
        client_order_id: String,
        change: VenueModify,
    },
    Cancel {
        order_id: u64,
        client_order_id: String,
    },
}

impl VenueCommand {
    pub fn order_id(&self) -> u64 {
        match self {
            VenueCommand::Place { order_id, .. }
            | VenueCommand::Modify { order_id, .. }
            | VenueCommand::Cancel { order_id, .. } => *order_id,
        }
    }
}

/// A broker's order report, already mapped to our client order id. Fills
/// are cumulative (Kite's `filled_quantity` and `average_price`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUpdate {
    pub client_order_id: String,
    /// Exchange time of the report (the shell's receipt time if it has none).
    pub ts_ns: i64,
    pub status: VenueStatus,
    pub filled_qty: u64,
    pub avg_price: Price,
    pub message: Option<String>,
}

/// How far along an order is: a report that goes back is a stale reorder.
const fn rank(s: VenueStatus) -> u8 {
    match s {
        VenueStatus::Pending => 0,
        VenueStatus::TriggerPending => 1,
        VenueStatus::Open => 2,
        VenueStatus::Complete | VenueStatus::Cancelled | VenueStatus::Rejected => 3,
    }
}

#[derive(Debug, Clone)]
struct ExtOrder {
    order: VenueOrder,
    /// Last status reported (None until the broker reports one).
    status: Option<VenueStatus>,
    filled: u64,
    /// Sum of fill quantity x price, paise (from the cumulative average).
    filled_value: i64,
    modifications: u32,
}

/// An order of an earlier process that an adopted bracket still owns.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownOrder {
    pub order: VenueOrder,
    pub status: VenueStatus,
    pub filled: u64,
    pub avg_price: Price,
}

#[derive(Debug, Clone)]
pub struct ExternalVenue {
    config: ExternalVenueConfig,
    next_id: u64,
    orders: HashMap<u64, ExtOrder>,
    by_client_id: HashMap<String, u64>,
    commands: Vec<VenueCommand>,
}

impl ExternalVenue {
    pub fn new(config: ExternalVenueConfig) -> Result<Self, VenueError> {
        config.validate()?;
        Ok(ExternalVenue {
            config,
            next_id: config.first_order_id,
            orders: HashMap::new(),
            by_client_id: HashMap::new(),
            commands: Vec::new(),
        })
    }

    pub fn config(&self) -> &ExternalVenueConfig {
        &self.config
    }

    /// The commands queued since the last call, in order.
    pub fn take_commands(&mut self) -> Vec<VenueCommand> {
        std::mem::take(&mut self.commands)
    }

    pub fn pending_commands(&self) -> usize {
        self.commands.len()
    }

    pub fn order_id_of(&self, client_order_id: &str) -> Option<u64> {
        self.by_client_id.get(client_order_id).copied()
    }

    pub fn client_order_id_of(&self, order_id: u64) -> Option<&str> {
        self.orders
            .get(&order_id)
            .map(|o| o.order.client_order_id.as_str())
    }

    /// The broker's last word on an order (None: unknown or never reported).
    pub fn status_of(&self, order_id: u64) -> Option<VenueStatus> {
        self.orders.get(&order_id).and_then(|o| o.status)
    }

    fn assign(&mut self, order: VenueOrder, status: Option<VenueStatus>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_client_id.insert(order.client_order_id.clone(), id);
        self.orders.insert(
            id,
            ExtOrder {
                order,
                status,
                filled: 0,
                filled_value: 0,
                modifications: 0,
            },
        );
        id
    }

    /// Registers an order an earlier process placed (adoption); no command.
    pub fn adopt_order(&mut self, known: KnownOrder) -> u64 {
        let filled = known.filled;
        let value = known.avg_price.paise().saturating_mul(filled as i64);
        let id = self.assign(known.order, Some(known.status));
        if let Some(o) = self.orders.get_mut(&id) {
            o.filled = filled;
            o.filled_value = value;
        }
        id
    }

    fn live(&self, order_id: u64) -> Result<&ExtOrder, VenueError> {
        let o = self
            .orders
            .get(&order_id)
            .ok_or(VenueError::UnknownOrder(order_id))?;
        match o.status {
            Some(s) if s.is_terminal() => Err(VenueError::Refused(format!(
                "order {order_id} is {}",
                s.as_str()
            ))),
            _ => Ok(o),
        }
    }

    fn submit(&mut self, order: VenueOrder) -> u64 {
        let id = self.assign(order.clone(), None);
        self.commands.push(VenueCommand::Place {
            order_id: id,
            order,
        });
        id
    }

    fn modify(&mut self, order_id: u64, m: VenueModify) -> Result<(), VenueError> {
        let o = self.live(order_id)?;
        if o.modifications >= self.config.max_modifications {
            return Err(VenueError::Refused(format!(
                "order {order_id}: at most {} modifications",
                self.config.max_modifications
            )));
        }
        let client_order_id = o.order.client_order_id.clone();
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.modifications += 1;
        }
        self.commands.push(VenueCommand::Modify {
            order_id,
            client_order_id,
            change: m,
        });
        Ok(())
    }

    fn cancel(&mut self, order_id: u64) -> Result<(), VenueError> {
        let client_order_id = self.live(order_id)?.order.client_order_id.clone();
        self.commands.push(VenueCommand::Cancel {
            order_id,
            client_order_id,
        });
        Ok(())
    }

    /// The broker refused a modification we queued: it does not count.
    pub fn modify_refused(&mut self, order_id: u64) {
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.modifications = o.modifications.saturating_sub(1);
        }
    }

    /// A modification the broker accepted: the order's fields change.
    pub fn modify_accepted(&mut self, order_id: u64, m: &VenueModify) {
        if let Some(o) = self.orders.get_mut(&order_id) {
            if let Some(q) = m.qty {
                o.order.qty = q;
            }
            if m.price.is_some() {
                o.order.price = m.price;
            }
            if m.trigger.is_some() {
                o.order.trigger = m.trigger;
            }
            if let Some(t) = m.order_type {
                o.order.order_type = t;
            }
        }
    }

    /// The placement failed at the broker (HTTP error, InputException, a
    /// journal that refused the entry): the order is REJECTED at `ts_ns`.
    /// None when the order is unknown or already over.
    pub fn place_failed(
        &mut self,
        order_id: u64,
        ts_ns: i64,
        message: &str,
    ) -> Option<VenueUpdate> {
        let o = self.orders.get(&order_id)?;
        if o.status.is_some_and(VenueStatus::is_terminal) || o.filled > 0 {
            return None;
        }
        self.observe(ExternalUpdate {
            client_order_id: o.order.client_order_id.clone(),
            ts_ns,
            status: VenueStatus::Rejected,
            filled_qty: 0,
            avg_price: Price::ZERO,
            message: Some(message.to_string()),
        })
        .ok()
        .flatten()
    }

    /// A broker report as the venue's update, or None when it tells nothing
    /// new: an unknown order, a report after a terminal one, fewer fills
    /// than already seen, a repeat, or an older status at the same fill.
    pub fn observe(&mut self, u: ExternalUpdate) -> Result<Option<VenueUpdate>, VenueError> {
        let Some(&id) = self.by_client_id.get(&u.client_order_id) else {
            return Ok(None);
        };
        let Some(o) = self.orders.get_mut(&id) else {
            return Ok(None);
        };
        if u.filled_qty > 0 && u.avg_price.paise() <= 0 {
            return Err(VenueError::Refused(format!(
                "{}: filled_qty {} with average_price {} (must be > 0)",
                u.client_order_id, u.filled_qty, u.avg_price
            )));
        }
        if u.filled_qty > o.order.qty.max(o.filled) {
            return Err(VenueError::Refused(format!(
                "{}: filled_qty {} exceeds the order's quantity {}",
                u.client_order_id, u.filled_qty, o.order.qty
            )));
        }
        if let Some(prev) = o.status {
            let stale = prev.is_terminal()
                || u.filled_qty < o.filled
                || (u.filled_qty == o.filled && rank(u.status) <= rank(prev));
            if stale {
                return Ok(None);
            }
        }
        let delta = u.filled_qty - o.filled;
        let value = u.avg_price.paise().saturating_mul(u.filled_qty as i64);
        let last_fill_price = if delta > 0 {
            // This fill's price from the change of the cumulative value,
            // rounded half up to the paisa. Rounding of the broker's average
            // can push it off; the average is then the best estimate.
            let d = i64::try_from(delta).unwrap_or(i64::MAX);
            let diff = value.saturating_sub(o.filled_value);
            let p = (2 * diff + d) / (2 * d);
            if p > 0 {
                Price::from_paise(p)
            } else {
                u.avg_price
            }
        } else {
            Price::ZERO
        };
        let is_stop = matches!(o.order.order_type, OrderType::Sl | OrderType::SlM);
        let triggered =
            is_stop && u.status == VenueStatus::Open && o.status != Some(VenueStatus::Open);
        o.status = Some(u.status);
        if delta > 0 {
            o.filled = u.filled_qty;
            o.filled_value = value;
        }
        Ok(Some(VenueUpdate {
            ts_ns: u.ts_ns,
            order_id: id,
            client_order_id: u.client_order_id,
            status: u.status,
            filled_qty: o.filled,
            avg_price: if o.filled > 0 {
                u.avg_price
            } else {
                Price::ZERO
            },
            filled_value: o.filled_value,
            last_fill_qty: delta,
            last_fill_price,
            triggered,
            modified: false,
            qty: o.order.qty,
            price: o.order.price,
            trigger: o.order.trigger,
            order_type: o.order.order_type,
            protection_price: None,
            message: u.message,
        }))
    }

    /// Side and token of an order (the shell needs them to place it).
    pub fn order(&self, order_id: u64) -> Option<&VenueOrder> {
        self.orders.get(&order_id).map(|o| &o.order)
    }

    pub fn side_of(&self, order_id: u64) -> Option<Side> {
        self.order(order_id).map(|o| o.side)
    }
}

impl super::Venue for ExternalVenue {
    fn submit(&mut self, _now_ns: i64, order: VenueOrder, _out: &mut Vec<VenueUpdate>) -> u64 {
        ExternalVenue::submit(self, order)
    }
    fn modify(&mut self, _now_ns: i64, order_id: u64, m: VenueModify) -> Result<(), VenueError> {
        ExternalVenue::modify(self, order_id, m)
    }
    fn cancel(&mut self, _now_ns: i64, order_id: u64) -> Result<(), VenueError> {
        ExternalVenue::cancel(self, order_id)
    }
    fn next_due_ns(&self) -> Option<i64> {
        None
    }
    fn advance_to(&mut self, _ts_ns: i64, _out: &mut Vec<VenueUpdate>) {}
    fn on_quote(&mut self, _q: &super::Quote, _out: &mut Vec<VenueUpdate>) {}
    fn feed_ended(&mut self, _ts_ns: i64, _out: &mut Vec<VenueUpdate>) {}
    fn command_latency_ns(&self) -> i64 {
        self.config.command_latency_ns
    }
    fn answers_later(&self) -> bool {
        true
    }
}
