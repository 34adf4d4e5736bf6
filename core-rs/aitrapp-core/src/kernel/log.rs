//! The kernel's output: one columnar table per kind of event, appended in
//! the order the events happened. Python persists and publishes them in
//! bulk. Equality of two logs is the determinism check (same ticks and
//! config, any batch size: the same log).

use crate::engine::Decision;
use crate::risk::{Detail, RiskBlock};
use std::fmt::Write as _;

/// Decisions: sized plans that opened a bracket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub token: Vec<u32>,
    pub side: Vec<&'static str>,
    pub entry: Vec<i64>,
    pub stop: Vec<i64>,
    pub tp: Vec<i64>,
    pub qty: Vec<u64>,
    pub strategy: Vec<&'static str>,
    pub reason: Vec<String>,
    pub risk_paise: Vec<i64>,
    pub heat_after_pct: Vec<f64>,
}

/// Signals the risk gate refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocks {
    pub ts_ns: Vec<i64>,
    pub token: Vec<u32>,
    pub strategy: Vec<&'static str>,
    pub side: Vec<&'static str>,
    pub reason: Vec<&'static str>,
    pub entry: Vec<i64>,
    pub stop: Vec<i64>,
    pub tp: Vec<i64>,
    /// `key=value` pairs, `;`-separated.
    pub details: Vec<String>,
}

/// Commands the kernel handed to the venue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orders {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub client_order_id: Vec<String>,
    /// PLACE, MODIFY or CANCEL.
    pub action: Vec<&'static str>,
    pub order_id: Vec<u64>,
    pub side: Vec<&'static str>,
    pub qty: Vec<u64>,
    pub order_type: Vec<&'static str>,
    /// 0 when absent.
    pub price: Vec<i64>,
    pub trigger: Vec<i64>,
    /// Why the venue refused a modify or cancel at once (empty: accepted).
    pub refused: Vec<String>,
    /// Exit reason of a market exit, empty otherwise.
    pub reason: Vec<&'static str>,
    /// The step of the plan's walk (its transition seq, from 0) that issued it.
    pub step: Vec<u32>,
}

/// Order updates as the venue reported them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Updates {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub client_order_id: Vec<String>,
    pub order_id: Vec<u64>,
    pub status: Vec<&'static str>,
    pub filled_qty: Vec<u64>,
    pub avg_price: Vec<i64>,
    pub triggered: Vec<bool>,
    pub message: Vec<String>,
}

/// Executions, one row per increment of an order's filled quantity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fills {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub client_order_id: Vec<String>,
    pub order_id: Vec<u64>,
    pub role: Vec<&'static str>,
    pub side: Vec<&'static str>,
    pub qty: Vec<u64>,
    /// The order's cumulative filled quantity after this execution.
    pub filled_qty: Vec<u64>,
    pub price: Vec<i64>,
}

/// Bracket state changes (every event that changed the bracket).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transitions {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub from: Vec<&'static str>,
    pub to: Vec<&'static str>,
    pub event: Vec<&'static str>,
}

/// Closed brackets that traded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trades {
    pub plan_id: Vec<String>,
    pub token: Vec<u32>,
    pub strategy: Vec<&'static str>,
    pub side: Vec<&'static str>,
    pub qty: Vec<u64>,
    pub opened_ns: Vec<i64>,
    pub closed_ns: Vec<i64>,
    pub entry_avg: Vec<i64>,
    /// Planned entry and stop (loss / planned risk, slippage).
    pub planned_entry: Vec<i64>,
    pub planned_stop: Vec<i64>,
    /// Quantity-weighted exit price in paise (fractional).
    pub exit_avg: Vec<f64>,
    pub exit_reason: Vec<&'static str>,
    pub gross_paise: Vec<i64>,
    pub planned_risk_paise: Vec<i64>,
    /// Both exits filled; `race` when the second fill came before our
    /// cancel could have reached the venue.
    pub double_exit: Vec<bool>,
    pub race: Vec<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    pub ts_ns: Vec<i64>,
    pub plan_id: Vec<String>,
    pub severity: Vec<&'static str>,
    pub code: Vec<&'static str>,
    pub reason: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLog {
    pub decisions: Decisions,
    pub blocks: Blocks,
    pub orders: Orders,
    pub updates: Updates,
    pub fills: Fills,
    pub transitions: Transitions,
    pub trades: Trades,
    pub alerts: Alerts,
}

macro_rules! append_all {
    ($dst:expr, $src:expr, $($f:ident),+) => { $( $dst.$f.append(&mut $src.$f); )+ };
}

macro_rules! clear_all {
    ($t:expr, $($f:ident),+) => { $( $t.$f.clear(); )+ };
}

impl EventLog {
    /// Empties every table and keeps the columns' capacity (the live path
    /// reuses two logs instead of allocating fresh columns per tick).
    pub fn clear(&mut self) {
        let d = &mut self.decisions;
        clear_all!(
            d,
            ts_ns,
            plan_id,
            token,
            side,
            entry,
            stop,
            tp,
            qty,
            strategy,
            reason,
            risk_paise,
            heat_after_pct
        );
        let b = &mut self.blocks;
        clear_all!(b, ts_ns, token, strategy, side, reason, entry, stop, tp, details);
        let o = &mut self.orders;
        clear_all!(
            o,
            ts_ns,
            plan_id,
            client_order_id,
            action,
            order_id,
            side,
            qty,
            order_type,
            price,
            trigger,
            refused,
            reason,
            step
        );
        let u = &mut self.updates;
        clear_all!(
            u,
            ts_ns,
            plan_id,
            client_order_id,
            order_id,
            status,
            filled_qty,
            avg_price,
            triggered,
            message
        );
        let f = &mut self.fills;
        clear_all!(
            f,
            ts_ns,
            plan_id,
            client_order_id,
            order_id,
            role,
            side,
            qty,
            filled_qty,
            price
        );
        let t = &mut self.transitions;
        clear_all!(t, ts_ns, plan_id, from, to, event);
        let t = &mut self.trades;
        clear_all!(
            t,
            plan_id,
            token,
            strategy,
            side,
            qty,
            opened_ns,
            closed_ns,
            entry_avg,
            planned_entry,
            planned_stop,
            exit_avg,
            exit_reason,
            gross_paise,
            planned_risk_paise,
            double_exit,
            race
        );
        let a = &mut self.alerts;
        clear_all!(a, ts_ns, plan_id, severity, code, reason);
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.ts_ns.is_empty()
            && self.blocks.ts_ns.is_empty()
            && self.orders.ts_ns.is_empty()
            && self.updates.ts_ns.is_empty()
            && self.transitions.ts_ns.is_empty()
            && self.trades.plan_id.is_empty()
            && self.alerts.ts_ns.is_empty()
    }

    /// Moves every row of `other` to the end of this log.
    pub fn append(&mut self, mut other: EventLog) {
        let (d, o) = (&mut self.decisions, &mut other.decisions);
        append_all!(
            d,
            o,
            ts_ns,
            plan_id,
            token,
            side,
            entry,
            stop,
            tp,
            qty,
            strategy,
            reason,
            risk_paise,
            heat_after_pct
        );
        let (d, o) = (&mut self.blocks, &mut other.blocks);
        append_all!(d, o, ts_ns, token, strategy, side, reason, entry, stop, tp, details);
        let (d, o) = (&mut self.orders, &mut other.orders);
        append_all!(
            d,
            o,
            ts_ns,
            plan_id,
            client_order_id,
            action,
            order_id,
            side,
            qty,
            order_type,
            price,
            trigger,
            refused,
            reason,
            step
        );
        let (d, o) = (&mut self.updates, &mut other.updates);
        append_all!(
            d,
            o,
            ts_ns,
            plan_id,
            client_order_id,
            order_id,
            status,
            filled_qty,
            avg_price,
            triggered,
            message
        );
        let (d, o) = (&mut self.fills, &mut other.fills);
        append_all!(
            d,
            o,
            ts_ns,
            plan_id,
            client_order_id,
            order_id,
            role,
            side,
            qty,
            filled_qty,
            price
        );
        let (d, o) = (&mut self.transitions, &mut other.transitions);
        append_all!(d, o, ts_ns, plan_id, from, to, event);
        let (d, o) = (&mut self.trades, &mut other.trades);
        append_all!(
            d,
            o,
            plan_id,
            token,
            strategy,
            side,
            qty,
            opened_ns,
            closed_ns,
            entry_avg,
            planned_entry,
            planned_stop,
            exit_avg,
            exit_reason,
            gross_paise,
            planned_risk_paise,
            double_exit,
            race
        );
        let (d, o) = (&mut self.alerts, &mut other.alerts);
        append_all!(d, o, ts_ns, plan_id, severity, code, reason);
    }

    pub(super) fn decision(&mut self, ts_ns: i64, d: &Decision) {
        let t = &mut self.decisions;
        t.ts_ns.push(ts_ns);
        t.plan_id.push(d.plan_id.clone());
        t.token.push(d.token);
        t.side.push(d.side.as_str());
        t.entry.push(d.entry.paise());
        t.stop.push(d.stop.paise());
        t.tp.push(d.tp.paise());
        t.qty.push(d.qty);
        t.strategy.push(d.strategy);
        t.reason.push(d.reason.clone());
        t.risk_paise.push(d.risk_paise);
        t.heat_after_pct.push(d.heat_after_pct);
    }

    pub(super) fn block(&mut self, b: &RiskBlock) {
        let t = &mut self.blocks;
        t.ts_ns.push(b.signal_ts);
        t.token.push(b.token);
        t.strategy.push(b.strategy);
        t.side.push(b.side.as_str());
        t.reason.push(b.reason.as_str());
        t.entry.push(b.entry.paise());
        t.stop.push(b.stop.paise());
        t.tp.push(b.tp.paise());
        let mut details = String::with_capacity(48);
        for (i, (k, v)) in b.details.iter().enumerate() {
            if i > 0 {
                details.push(';');
            }
            details.push_str(k);
            details.push('=');
            let _ = match v {
                Detail::Int(x) => write!(details, "{x}"),
                Detail::Float(x) => write!(details, "{x}"),
                Detail::Text(x) => write!(details, "{x}"),
            };
        }
        t.details.push(details);
    }

    pub(super) fn alert(
        &mut self,
        ts_ns: i64,
        plan_id: &str,
        severity: &'static str,
        code: &'static str,
        reason: String,
    ) {
        let t = &mut self.alerts;
        t.ts_ns.push(ts_ns);
        t.plan_id.push(plan_id.to_string());
        t.severity.push(severity);
        t.code.push(code);
        t.reason.push(reason);
    }

    pub(super) fn transition(
        &mut self,
        ts_ns: i64,
        plan_id: &str,
        from: &'static str,
        to: &'static str,
        event: &'static str,
    ) {
        let t = &mut self.transitions;
        t.ts_ns.push(ts_ns);
        t.plan_id.push(plan_id.to_string());
        t.from.push(from);
        t.to.push(to);
        t.event.push(event);
    }

    /// Row counts per table, in a fixed order (progress, tests).
    pub fn counts(&self) -> [(&'static str, usize); 8] {
        [
            ("decisions", self.decisions.ts_ns.len()),
            ("blocks", self.blocks.ts_ns.len()),
            ("orders", self.orders.ts_ns.len()),
            ("updates", self.updates.ts_ns.len()),
            ("fills", self.fills.ts_ns.len()),
            ("transitions", self.transitions.ts_ns.len()),
            ("trades", self.trades.plan_id.len()),
            ("alerts", self.alerts.ts_ns.len()),
        ]
    }
}
