//! Adoption: rebuilding the machine of a bracket placed by an earlier
//! process (after a restart), from what the broker and the database say.
//!
//! The entry is taken as done (its fill is the adopted position); every
//! child the caller reports becomes a leg with the broker's quantity, fill,
//! prices and status, so later updates for it route and compare cumulative
//! fills as usual. The machine then runs its usual sizing step: a missing
//! stop or take-profit is placed, a stop of the wrong size is resized, a
//! bracket past its square-off exits at market.
//!
//! A stop lost while no process watched (cancelled or rejected at the
//! broker, or never reported) is placed again under the next stop id
//! (STOP1, STOP2, ... after the highest generation the caller reports, and
//! never STOP itself: the entry filled, so the earlier process sent STOP).
//! The dead order's id is never reused: the journal would refuse it (it was
//! journalled by the earlier session) or the broker's tag look-up would hand
//! back the dead order as if it were the new one.
//!
//! A final target (TP; TP2 when scaling out) reported not working (dead, or
//! over) is placed again the same way, under TARGET1, TARGET2, ... after the
//! highest target generation reported, at the planned target price (TP2's
//! when scaling out), sized like the target it replaces: the open quantity
//! the stop protects, less what a working TP1 still covers. With all 99
//! used, the position rides on its stop (as a target lost in session does).
//! A final target nobody reported is placed under its planned id: if the
//! broker has it working, the journal's tag look-up finds it (no second
//! target); if it is dead there, the kernel hears so and the stop still
//! protects. A lost TP1 is not placed again: the scale-out step is given
//! up and the final target takes its share, as when TP1 is lost in session.

use super::command::{AlertCode, Command, ExitReason, OrderType, Severity};
use super::error::OcoError;
use super::leg::{Leg, LegStatus, Role};
use super::machine::{Bracket, Fx, ENTRY};
use super::spec::{BracketSpec, EntryKind, StopKind};
use super::state::State;
use crate::ids::{order_client_id, OrderTag};
use crate::price::Price;

/// A child order of an adopted bracket as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedChild {
    /// STOP / STOPn, TP / TARGETn, TP1, TP2 / TARGETn (or EXIT / EXITn for
    /// market exits already sent). Dead stops and targets may be given too:
    /// the replacement then takes the next id after theirs.
    pub tag: OrderTag,
    /// Defaults to the canonical id of `tag` for the plan.
    pub client_order_id: Option<String>,
    /// Total quantity of the order (filled part included).
    pub qty: u64,
    pub filled: u64,
    /// Cumulative average fill price; must be positive once `filled > 0`.
    pub avg_price: Price,
    /// Limit price as working at the broker (defaults to the spec's).
    pub price: Option<Price>,
    /// Trigger as working at the broker (stops; defaults to the spec's stop).
    pub trigger: Option<Price>,
    /// Still working at the broker (OPEN / TRIGGER PENDING).
    pub working: bool,
}

impl Bracket {
    /// Rebuilds an open bracket of an earlier process: `entry_filled` units
    /// at `entry_avg` (the entry is over), with `children` as the broker
    /// reports them. Returns the bracket (OPEN, or CLOSING / CLOSED when it
    /// cannot stay open) and the commands that complete it, e.g. placing a
    /// missing stop. Validation comes first; on `Err` nothing is returned.
    pub fn adopt(
        spec: BracketSpec,
        now_ns: i64,
        entry_filled: u64,
        entry_avg: Price,
        children: &[AdoptedChild],
    ) -> Result<(Bracket, Vec<Command>), OcoError> {
        spec.validate()?;
        let bad = |field: &'static str, problem: String| OcoError::BadAdoption {
            plan_id: spec.plan_id.clone(),
            field,
            problem,
        };
        if entry_filled == 0 || entry_filled > spec.qty {
            return Err(bad(
                "entry_filled",
                format!(
                    "must be within 1..={} (the spec qty), got {entry_filled}",
                    spec.qty
                ),
            ));
        }
        if entry_avg.paise() <= 0 {
            return Err(bad(
                "entry_avg",
                format!("must be positive, got {entry_avg}"),
            ));
        }
        let mut seen: Vec<OrderTag> = Vec::with_capacity(children.len());
        let mut market_orders: u8 = 0;
        for c in children {
            let field_tag = c.tag.to_string();
            let allowed = matches!(
                (c.tag, spec.scale_out.is_some()),
                (
                    OrderTag::Stop
                        | OrderTag::StopN(_)
                        | OrderTag::TargetN(_)
                        | OrderTag::Exit
                        | OrderTag::ExitN(_),
                    _
                ) | (OrderTag::Tp, false)
                    | (OrderTag::TpN(1 | 2), true)
            );
            if !allowed {
                let why = if spec.scale_out.is_some() {
                    "expected STOP/STOPn, TP1, TP2/TARGETn or EXIT/EXITn (the spec scales out)"
                } else {
                    "expected STOP/STOPn, TP/TARGETn or EXIT/EXITn (the spec has one target)"
                };
                return Err(bad("children.tag", format!("{field_tag}: {why}")));
            }
            if seen.contains(&c.tag) {
                return Err(bad("children.tag", format!("{field_tag} given twice")));
            }
            seen.push(c.tag);
            if c.qty == 0 || c.filled > c.qty {
                return Err(bad(
                    "children.qty",
                    format!(
                        "{field_tag}: qty {} with filled {} (need 0 < filled <= qty)",
                        c.qty, c.filled
                    ),
                ));
            }
            if c.filled > 0 && c.avg_price.paise() <= 0 {
                return Err(bad(
                    "children.avg_price",
                    format!(
                        "{field_tag}: must be positive once filled, got {}",
                        c.avg_price
                    ),
                ));
            }
            for (field, p) in [("children.price", c.price), ("children.trigger", c.trigger)] {
                if let Some(p) = p.filter(|p| p.paise() <= 0) {
                    return Err(bad(
                        field,
                        format!("{field_tag}: must be positive, got {p}"),
                    ));
                }
            }
            match c.tag {
                OrderTag::Exit => market_orders = market_orders.max(1),
                OrderTag::ExitN(n) => market_orders = market_orders.max(n.saturating_add(1)),
                _ => {}
            }
        }

        let working_stops: Vec<&AdoptedChild> = children
            .iter()
            .filter(|c| c.tag.is_stop() && c.working)
            .collect();
        if let [first, second, ..] = working_stops.as_slice() {
            return Err(bad(
                "children.working",
                format!(
                    "{} and {} both working: one stop protects a position (cancel one first)",
                    first.tag, second.tag
                ),
            ));
        }
        let stop_tag = match working_stops.first() {
            Some(c) => c.tag,
            None => replacement_stop_tag(children),
        };
        let scale_out = spec.scale_out.is_some();
        let working_targets: Vec<&AdoptedChild> = children
            .iter()
            .filter(|c| c.tag.target_generation(scale_out).is_some() && c.working)
            .collect();
        if let [first, second, ..] = working_targets.as_slice() {
            return Err(bad(
                "children.working",
                format!(
                    "{} and {} both working: one final target per position (cancel one first)",
                    first.tag, second.tag
                ),
            ));
        }
        let target_tag = match working_targets.first() {
            Some(c) => c.tag,
            None => replacement_target_tag(children, scale_out),
        };
        let square_off_ns = spec.square_off_ns(now_ns);
        let stop_target = working_stops
            .first()
            .and_then(|c| c.trigger)
            .unwrap_or(spec.stop);
        let mut b = Bracket {
            spec,
            state: State::Open,
            created_ns: now_ns,
            now_ns,
            square_off_ns,
            first_fill_ns: Some(now_ns),
            legs: Vec::with_capacity(children.len() + 3),
            stop_tag,
            target_tag,
            stop_target,
            closing_reason: None,
            tp1_done: false,
            market_orders,
            exit_failures_in_row: 0,
            exit_retry_at_ns: None,
            ids_exhausted_alerted: false,
            trail_budget_alerted: false,
            last_ltp: None,
            watchdog_escalations: 0,
            watchdog_escalated_ns: None,
            stop_to_market: super::flatten::StopToMarket::No,
        };
        let (entry_type, entry_price) = match b.spec.entry {
            EntryKind::Limit => (OrderType::Limit, Some(b.spec.entry_price)),
            EntryKind::Market => (OrderType::Market, None),
        };
        let entry = b.adopted_leg(
            OrderTag::Entry,
            None,
            Role::Entry,
            entry_type,
            entry_filled,
            entry_price,
            None,
            None,
        );
        b.legs.push(Leg {
            max_qty: b.spec.qty,
            filled: entry_filled,
            avg_price: entry_avg,
            status: LegStatus::Filled,
            ..entry
        });
        debug_assert_eq!(b.legs.len(), ENTRY + 1);
        for c in children {
            let (role, order_type, price, trigger, reason) = match c.tag {
                OrderTag::Stop | OrderTag::StopN(_) => {
                    let trigger = c.trigger.unwrap_or(b.spec.stop);
                    let (t, p) = match b.spec.stop_kind {
                        StopKind::SlM => (OrderType::SlM, None),
                        StopKind::Sl { .. } => (
                            OrderType::Sl,
                            c.price.or_else(|| b.spec.stop_limit_for(trigger)),
                        ),
                    };
                    (Role::Stop, t, p, Some(trigger), ExitReason::Stop)
                }
                OrderTag::Exit | OrderTag::ExitN(_) => (
                    Role::Exit,
                    OrderType::Market,
                    None,
                    None,
                    ExitReason::Unprotected,
                ),
                tp => {
                    let reason = b.target_reason(tp);
                    let price = c.price.unwrap_or_else(|| b.spec.target_for(tp));
                    (
                        Role::TakeProfit,
                        OrderType::Limit,
                        Some(price),
                        None,
                        reason,
                    )
                }
            };
            let leg = b.adopted_leg(
                c.tag,
                c.client_order_id.clone(),
                role,
                order_type,
                c.qty,
                price,
                trigger,
                Some(reason),
            );
            let status = if c.working {
                LegStatus::Working
            } else if c.filled == c.qty {
                LegStatus::Filled
            } else {
                LegStatus::Cancelled
            };
            // A working stop with a fill has triggered: the watchdog watches it.
            let triggered = role == Role::Stop && c.working && c.filled > 0;
            b.legs.push(Leg {
                filled: c.filled,
                avg_price: c.avg_price,
                status,
                triggered_ns: triggered.then_some(now_ns),
                ..leg
            });
        }
        if b.spec.scale_out.is_some() {
            b.tp1_done = b
                .leg(OrderTag::TpN(1))
                .is_some_and(|l| l.status == LegStatus::Filled);
        }

        let mut fx = Fx::default();
        b.state = if now_ns >= b.square_off_ns {
            b.close(ExitReason::Eod, &mut fx)
        } else {
            b.protect(&mut fx)
        };
        b.alert_replaced_target(children, &mut fx);
        b.alert_replaced_stop(children, &mut fx);
        Ok((b, fx.commands))
    }

    /// Says so when adoption placed a reported final target again (first,
    /// before the order; after the stop's alert).
    fn alert_replaced_target(&self, children: &[AdoptedChild], fx: &mut Fx) {
        let OrderTag::TargetN(_) = self.target_tag else {
            return;
        };
        let Some(target) = fx.commands.iter().find_map(|c| match c {
            Command::PlaceOrder(o) if o.tag == self.target_tag => Some(o.client_order_id.clone()),
            _ => None,
        }) else {
            return;
        };
        let scale_out = self.spec.scale_out.is_some();
        let dead: Vec<String> = children
            .iter()
            .filter(|c| c.tag.target_generation(scale_out).is_some())
            .map(|c| c.tag.to_string())
            .collect();
        let msg = format!(
            "adopted bracket {}: its target {} not working at the broker (lost while no process watched); placed again as {target}",
            self.spec.plan_id,
            dead.join(", ")
        );
        let mut alert = Fx::default();
        alert.alert(Severity::Warning, AlertCode::TargetReplaced, msg);
        fx.commands.splice(0..0, alert.commands);
    }

    /// Says so when adoption placed the stop again (first, before the order).
    fn alert_replaced_stop(&self, children: &[AdoptedChild], fx: &mut Fx) {
        let Some(stop) = fx.commands.iter().find_map(|c| match c {
            Command::PlaceOrder(o) if o.tag == self.stop_tag => Some(o.client_order_id.clone()),
            _ => None,
        }) else {
            return;
        };
        let dead: Vec<String> = children
            .iter()
            .filter(|c| c.tag.is_stop())
            .map(|c| c.tag.to_string())
            .collect();
        let what = if dead.is_empty() {
            "was not working at the broker".to_string()
        } else {
            format!("{} not working at the broker", dead.join(", "))
        };
        let msg = format!(
            "adopted bracket {}: its stop {what} (lost while no process watched); placed again as {stop}",
            self.spec.plan_id
        );
        let mut alert = Fx::default();
        alert.alert(Severity::Warning, AlertCode::StopReplaced, msg);
        fx.commands.splice(0..0, alert.commands);
    }

    /// A leg as the broker has it (no command: it exists already).
    #[allow(clippy::too_many_arguments)]
    fn adopted_leg(
        &self,
        tag: OrderTag,
        client_order_id: Option<String>,
        role: Role,
        order_type: OrderType,
        qty: u64,
        price: Option<Price>,
        trigger: Option<Price>,
        reason: Option<ExitReason>,
    ) -> Leg {
        let client_order_id = client_order_id.unwrap_or_else(|| {
            // plan_id was validated with the spec, so this cannot fail.
            order_client_id(tag, &self.spec.plan_id)
                .unwrap_or_else(|_| format!("{}:{tag}", self.spec.plan_id))
        });
        let side = if role == Role::Entry {
            self.spec.side
        } else {
            self.spec.exit_side()
        };
        Leg {
            tag,
            client_order_id,
            role,
            side,
            order_type,
            qty,
            max_qty: qty,
            price,
            trigger,
            filled: 0,
            avg_price: Price::ZERO,
            status: LegStatus::Working,
            cancel_sent: false,
            cancel_sent_ns: None,
            triggered_ns: None,
            abandoned: false,
            cancel_refused_filled: false,
            pending: Vec::new(),
            modifications: 0,
            applied_seq: 0,
            reason,
        }
    }
}

/// The id a lost stop is placed again under: the generation after the
/// highest one reported, at least STOP1. When all 99 are used, the highest
/// reported (dead) stop: the machine then finds its stop gone and exits at
/// market (STOP_LOST) rather than reuse an id.
fn replacement_stop_tag(children: &[AdoptedChild]) -> OrderTag {
    let highest = children
        .iter()
        .filter_map(|c| c.tag.stop_generation())
        .max();
    let next = highest.map_or(1, |n| n.saturating_add(1)).max(1);
    OrderTag::stop_of_generation(next)
        .or_else(|| highest.and_then(OrderTag::stop_of_generation))
        .unwrap_or(OrderTag::Stop)
}

/// The id a lost final target is placed again under: the generation after
/// the highest one reported (TARGET1 after TP or TP2). None reported: the
/// planned one (TP, or TP2 when scaling out). When all 99 are used, the
/// highest reported (dead) one: the position then rides on its stop rather
/// than reuse an id.
fn replacement_target_tag(children: &[AdoptedChild], scale_out: bool) -> OrderTag {
    let highest = children
        .iter()
        .filter_map(|c| c.tag.target_generation(scale_out))
        .max();
    let planned = if scale_out {
        OrderTag::TpN(2)
    } else {
        OrderTag::Tp
    };
    let Some(highest) = highest else {
        return planned;
    };
    OrderTag::target_of_generation(highest.saturating_add(1), scale_out)
        .or_else(|| OrderTag::target_of_generation(highest, scale_out))
        .unwrap_or(planned)
}
