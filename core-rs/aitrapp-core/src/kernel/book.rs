//! The kernel's brackets: one OCO machine per plan, the routes from a venue
//! order back to its bracket, and the set of open brackets (what state
//! reads and timers scan: O(open), never O(history)).

use crate::ids::OrderTag;
use crate::oco::Bracket;
use rustc_hash::FxHashMap;

/// One order of a bracket as the venue knows it.
#[derive(Debug, Clone)]
pub(super) struct OrderRef {
    pub tag: OrderTag,
    pub order_id: u64,
    pub client_order_id: String,
    /// Exchange time our last cancel of it was sent, if any.
    pub cancel_sent_ns: Option<i64>,
    /// Last status the venue reported (a refused cancel of a COMPLETE order
    /// is answered to the machine as "cancel rejected: filled").
    pub complete: bool,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub bracket: Bracket,
    pub token: u32,
    pub strategy: &'static str,
    pub planned_entry: i64,
    pub planned_stop: i64,
    pub planned_risk_paise: i64,
    pub orders: Vec<OrderRef>,
    pub opened_ns: Option<i64>,
    /// Exit quantity and value filled, for the trade's average exit price.
    pub exit_qty: u64,
    pub exit_notional: i128,
    /// Exit units the engine has been told of (never more than the entry).
    pub engine_exited: u64,
    /// An exit leg filled after our cancel of it must have reached the venue.
    pub late_exit_fill: bool,
    /// The trade row was written (a late fill may reopen a closed bracket).
    pub booked: bool,
    /// Transitions of the plan's walk so far (its orders carry the step that issued them).
    pub steps: u32,
}

impl Slot {
    pub fn order(&self, tag: OrderTag) -> Option<&OrderRef> {
        self.orders.iter().rev().find(|o| o.tag == tag)
    }

    pub fn order_mut(&mut self, tag: OrderTag) -> Option<&mut OrderRef> {
        self.orders.iter_mut().rev().find(|o| o.tag == tag)
    }
}

#[derive(Debug, Default)]
pub(super) struct Book {
    pub slots: Vec<Slot>,
    // Our own client ids and plan ids (not adversarial input): Fx hashing, not
    // SipHash, on the per-update path.
    by_client_id: FxHashMap<String, (usize, OrderTag)>,
    by_plan: FxHashMap<String, usize>,
    /// Slots whose bracket is not terminal, in opening order.
    open: Vec<usize>,
    /// The same per instrument token (what a tick of that token trails).
    open_by_token: FxHashMap<u32, Vec<usize>>,
    /// Earliest bracket timer among the open ones (cached; see `refresh`).
    next_deadline: Option<i64>,
    /// Reused list of the brackets a tick trails (no allocation per tick).
    pub trail_scratch: Vec<usize>,
}

impl Book {
    pub fn contains_plan(&self, plan_id: &str) -> bool {
        self.by_plan.contains_key(plan_id)
    }

    pub fn insert(&mut self, slot: Slot) -> usize {
        let ix = self.slots.len();
        self.by_plan.insert(slot.bracket.plan_id().to_string(), ix);
        self.open_by_token.entry(slot.token).or_default().push(ix);
        self.slots.push(slot);
        self.open.push(ix);
        self.refresh_deadline();
        ix
    }

    pub fn route(&mut self, ix: usize, order: OrderRef) {
        self.by_client_id
            .insert(order.client_order_id.clone(), (ix, order.tag));
        self.slots[ix].orders.push(order);
    }

    pub fn lookup(&self, client_order_id: &str) -> Option<(usize, OrderTag)> {
        self.by_client_id.get(client_order_id).copied()
    }

    pub fn open(&self) -> &[usize] {
        &self.open
    }

    /// Open brackets on one instrument, in opening order.
    pub fn open_of(&self, token: u32) -> &[usize] {
        self.open_by_token.get(&token).map_or(&[], Vec::as_slice)
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.next_deadline
    }

    /// Keeps the open set and the deadline in step after slot `ix` changed.
    /// Returns true when the bracket has just become terminal.
    pub fn refresh(&mut self, ix: usize) -> bool {
        let terminal = self.slots[ix].bracket.is_terminal();
        let pos = self.open.iter().position(|&i| i == ix);
        let token = self.slots[ix].token;
        let closed_now = match (terminal, pos) {
            (true, Some(p)) => {
                self.open.remove(p);
                if let Some(of_token) = self.open_by_token.get_mut(&token) {
                    of_token.retain(|&i| i != ix);
                }
                true
            }
            (false, None) => {
                // A late fill reopened it.
                self.open.push(ix);
                self.open_by_token.entry(token).or_default().push(ix);
                false
            }
            _ => false,
        };
        self.refresh_deadline();
        closed_now
    }

    fn refresh_deadline(&mut self) {
        self.next_deadline = self
            .open
            .iter()
            .filter_map(|&i| self.slots[i].bracket.next_deadline_ns())
            .min();
    }

    pub fn working_orders(&self) -> usize {
        self.open
            .iter()
            .map(|&i| self.slots[i].bracket.working_legs().count())
            .sum()
    }
}
