//! Trailing stops inside the kernel on sparse, gappy data (seeded,
//! synthetic): a stop only tightens, every move is sent at the exchange time
//! of the tick that caused it and takes effect at the venue one command
//! latency later, and the batch size still never changes the event log.

#![allow(clippy::cast_possible_truncation)]

mod common;

use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::venue::{SimVenue, SimVenueConfig};
use aitrapp_core::Engine;
use common::{ema_config, gappy_day, instrument, Cols, MINUTE, OPEN};
use std::collections::{HashMap, HashSet};

const TOKENS: [u32; 2] = [201, 202];
const TRAILING: &str =
    r#"{"entry_type": "MARKET", "trail_atr_mult": 0.5, "trail_min_step_ticks": 2}"#;
const FIXED: &str = r#"{"entry_type": "MARKET"}"#;

fn kernel(template: &str) -> Kernel<SimVenue> {
    let insts: Vec<_> = TOKENS.iter().map(|&t| instrument(t)).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    // Wide stops and targets so brackets live long enough to trail.
    let mut cfg = ema_config();
    cfg.strategies.ema_cross.stop_ticks = 80;
    cfg.strategies.ema_cross.tp_ticks = 400;
    let engine = Engine::new(cfg, insts).expect("engine");
    let template = BracketTemplate::from_json(template).expect("template");
    Kernel::new(engine, venue, template).expect("kernel")
}

fn replay(cols: &Cols, batch: usize, template: &str) -> EventLog {
    let mut k = kernel(template);
    let mut log = EventLog::default();
    let mut lo = 0;
    while lo < cols.len() {
        let hi = (lo + batch).min(cols.len());
        k.run(&cols.view(lo, hi)).expect("columns");
        log.append(k.take_log());
        lo = hi;
    }
    let last = *cols.ts_ns.last().expect("ticks");
    k.finish(last, OPEN + 380 * MINUTE);
    log.append(k.take_log());
    log
}

fn day() -> Cols {
    gappy_day(&TOKENS, 375, 0.1, 23)
}

/// Every trigger a stop was given, in order: (time, trigger, refused).
struct StopHistory {
    side: &'static str,
    moves: Vec<(i64, i64, bool)>,
}

fn stops(log: &EventLog) -> HashMap<String, StopHistory> {
    let o = &log.orders;
    let mut out: HashMap<String, StopHistory> = HashMap::new();
    for i in 0..o.ts_ns.len() {
        let cid = &o.client_order_id[i];
        if !cid.ends_with(":STOP") {
            continue;
        }
        match o.action[i] {
            "PLACE" => {
                out.insert(
                    cid.clone(),
                    StopHistory {
                        side: o.side[i],
                        moves: vec![(o.ts_ns[i], o.trigger[i], false)],
                    },
                );
            }
            "MODIFY" => out
                .get_mut(cid)
                .expect("modify of a placed stop")
                .moves
                .push((o.ts_ns[i], o.trigger[i], !o.refused[i].is_empty())),
            _ => {}
        }
    }
    out
}

/// Trigger moves (not resizes) that the venue accepted: (stop, time, trigger).
fn trail_moves(log: &EventLog) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for (cid, h) in stops(log) {
        let mut confirmed = h.moves[0].1;
        for &(ts, trigger, refused) in &h.moves[1..] {
            if !refused && trigger != confirmed {
                out.push((cid.clone(), ts, trigger));
                confirmed = trigger;
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_trailing_stop_only_tightens() {
    let log = replay(&day(), 4096, TRAILING);
    let moves = trail_moves(&log);
    assert!(
        moves.len() > 10,
        "the day must trail: {} moves",
        moves.len()
    );
    for (cid, h) in stops(&log) {
        // A long bracket's stop sells: its trigger may only go up.
        let sign = if h.side == "SELL" { 1 } else { -1 };
        let mut confirmed = h.moves[0].1;
        for &(ts, trigger, refused) in &h.moves[1..] {
            if refused {
                continue;
            }
            assert!(
                sign * (trigger - confirmed) >= 0,
                "{cid} loosened at {ts}: {confirmed} -> {trigger}"
            );
            confirmed = trigger;
        }
        // Kite's 25 modifications per order: the machine never asks for more.
        assert!(
            h.moves.len() <= 26,
            "{cid}: {} modifications",
            h.moves.len() - 1
        );
    }
}

#[test]
fn trail_moves_leave_at_tick_time_and_take_effect_one_latency_later() {
    let cols = day();
    let log = replay(&cols, 4096, TRAILING);
    let ticks: HashSet<i64> = cols.ts_ns.iter().copied().collect();
    let latency = SimVenueConfig::default().ack_latency_ns;
    let mut arrivals: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut terminal: HashMap<&str, i64> = HashMap::new();
    let u = &log.updates;
    for i in 0..u.ts_ns.len() {
        let cid = u.client_order_id[i].as_str();
        if matches!(u.status[i], "COMPLETE" | "CANCELLED" | "REJECTED") {
            terminal.entry(cid).or_insert(u.ts_ns[i]);
        } else {
            arrivals.entry(cid).or_default().push(u.ts_ns[i]);
        }
    }
    let moves = trail_moves(&log);
    let mut arrived = 0;
    for (cid, ts, trigger) in &moves {
        assert!(
            ticks.contains(ts),
            "{cid} -> {trigger} sent at {ts}, no tick then"
        );
        let due = ts + latency;
        if terminal.get(cid.as_str()).is_some_and(|&end| end <= due) {
            continue; // filled or cancelled before the move could arrive
        }
        let seen = arrivals.get(cid.as_str()).is_some_and(|a| a.contains(&due));
        assert!(
            seen,
            "{cid} -> {trigger} sent at {ts}: no venue update at {due}"
        );
        arrived += 1;
    }
    assert!(arrived > 10, "moves that reached the venue: {arrived}");
}

#[test]
fn batch_size_never_changes_the_event_log_with_trailing() {
    let cols = day();
    let one = replay(&cols, 1, TRAILING);
    assert!(!trail_moves(&one).is_empty(), "{:?}", one.counts());
    assert_eq!(one, replay(&cols, 7, TRAILING));
    assert_eq!(one, replay(&cols, 65_536, TRAILING));
}

#[test]
fn without_trailing_no_stop_moves() {
    let log = replay(&day(), 4096, FIXED);
    assert!(!log.trades.plan_id.is_empty(), "{:?}", log.counts());
    assert!(trail_moves(&log).is_empty());
}

#[test]
fn bad_trailing_settings_are_refused_by_name() {
    for (json, field) in [
        (r#"{"trail_atr_mult": 0}"#, "trail_atr_mult"),
        (r#"{"trail_atr_mult": -1.5}"#, "trail_atr_mult"),
        (r#"{"trail_atr_mult": 1e9}"#, "trail_atr_mult"),
        (
            r#"{"trail_atr_mult": 2, "trail_min_step_ticks": 0}"#,
            "trail_min_step_ticks",
        ),
    ] {
        let err = BracketTemplate::from_json(json)
            .expect_err(json)
            .to_string();
        assert!(err.contains(field), "{json}: {err}");
    }
}
