//! The trading kernel on sparse, gappy data: event-exact time, races,
//! determinism across batch sizes. Data is seeded and synthetic.

#![allow(clippy::cast_possible_truncation)]

mod common;

use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::venue::{SimVenue, SimVenueConfig};
use aitrapp_core::Engine;
use common::{ema_config, gappy_day, instrument, Cols, MINUTE, OPEN};
use std::collections::HashMap;

fn kernel(tokens: &[u32], template: &str) -> Kernel<SimVenue> {
    let insts: Vec<_> = tokens.iter().map(|&t| instrument(t)).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    let engine = Engine::new(ema_config(), insts).expect("engine");
    Kernel::new(
        engine,
        venue,
        BracketTemplate::from_json(template).expect("template"),
    )
    .expect("kernel")
}

const MARKET: &str = r#"{"entry_type": "MARKET"}"#;

fn replay(cols: &Cols, batch: usize, template: &str) -> EventLog {
    let mut k = kernel(&[101, 102], template);
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

#[test]
fn batch_size_never_changes_the_event_log() {
    let cols = gappy_day(&[101, 102], 375, 0.1, 7);
    let one = replay(&cols, 1, MARKET);
    assert!(
        one.trades.plan_id.len() > 5,
        "the day must trade: {:?}",
        one.counts()
    );
    assert_eq!(one, replay(&cols, 7, MARKET));
    assert_eq!(one, replay(&cols, 65_536, MARKET));
}

/// A fill at t reaches its bracket at t: the children go out at the very
/// exchange time of the entry's fill, never at a later tick.
#[test]
fn children_are_sent_at_the_entry_fill_time() {
    let cols = gappy_day(&[101, 102], 200, 0.1, 11);
    let log = replay(&cols, 4096, MARKET);
    let mut entry_fill: HashMap<&str, i64> = HashMap::new();
    for i in 0..log.fills.ts_ns.len() {
        if log.fills.role[i] == "ENTRY" {
            entry_fill
                .entry(log.fills.plan_id[i].as_str())
                .or_insert(log.fills.ts_ns[i]);
        }
    }
    let mut checked = 0;
    for i in 0..log.orders.ts_ns.len() {
        let cid = &log.orders.client_order_id[i];
        if log.orders.action[i] == "PLACE" && cid.ends_with(":STOP") {
            let plan = log.orders.plan_id[i].as_str();
            let filled = entry_fill[plan];
            assert!(
                log.orders.ts_ns[i] <= filled + NS_PER_SEC / 10,
                "{cid}: stop sent late"
            );
            checked += 1;
        }
    }
    assert!(checked > 3);
}

/// Both exits of a bracket fill only when the second filled before our
/// cancel could have reached the venue: such double exits are races.
#[test]
fn double_exits_are_only_races() {
    for seed in 1..6 {
        let cols = gappy_day(&[101, 102], 375, 0.2, seed);
        let log = replay(&cols, 65_536, MARKET);
        let t = &log.trades;
        for i in 0..t.plan_id.len() {
            if t.double_exit[i] {
                assert!(
                    t.race[i],
                    "seed {seed}: {} double exit outside a race",
                    t.plan_id[i]
                );
            }
        }
    }
}

/// A stop is refused for its trigger side only when the market had crossed
/// it before the stop reached the venue.
#[test]
fn trigger_side_rejects_only_after_the_market_crossed() {
    let cols = gappy_day(&[101, 102], 375, 0.3, 3);
    let log = replay(&cols, 65_536, MARKET);
    let mut placed: HashMap<&str, (i64, &str)> = HashMap::new();
    for i in 0..log.orders.ts_ns.len() {
        if log.orders.action[i] == "PLACE" {
            placed.insert(
                &log.orders.client_order_id[i],
                (log.orders.trigger[i], log.orders.side[i]),
            );
        }
    }
    let u = &log.updates;
    for i in 0..u.ts_ns.len() {
        if u.status[i] != "REJECTED" || !u.message[i].to_lowercase().contains("trigger") {
            continue;
        }
        let cid = u.client_order_id[i].as_str();
        let (trigger, side) = placed[cid];
        let token = if cid.is_empty() {
            0
        } else {
            token_of(&log, cid)
        };
        let j = (0..cols.len())
            .rev()
            .find(|&j| cols.ts_ns[j] <= u.ts_ns[i] && cols.token[j] == token)
            .expect("a tick before the reject");
        let ltp = (cols.last[j] * 100.0).round() as i64;
        let crossed = if side == "SELL" {
            trigger >= ltp
        } else {
            trigger <= ltp
        };
        assert!(crossed, "{cid}: trigger {trigger} refused with last {ltp}");
    }
}

fn token_of(log: &EventLog, cid: &str) -> i64 {
    let plan = cid.split(':').next().unwrap_or("");
    let d = &log.decisions;
    let i = d.plan_id.iter().position(|p| p == plan).expect("decision");
    i64::from(d.token[i])
}

/// An entry that never fills is cancelled at its own timeout, between two
/// ticks 2.5 minutes apart, not at the next tick.
#[test]
fn entry_timeout_fires_between_ticks() {
    let cols = gappy_day(&[101], 375, 0.0, 5);
    // Sparse: keep one tick in 10 (2.5 minutes apart).
    let mut sparse = Cols::default();
    for i in (0..cols.len()).step_by(10) {
        sparse.token.push(cols.token[i]);
        sparse.ts_ns.push(cols.ts_ns[i]);
        sparse.last.push(cols.last[i]);
        sparse.qty.push(cols.qty[i]);
        sparse.volume.push(cols.volume[i]);
        sparse.bid.push(cols.bid[i]);
        sparse.ask.push(cols.ask[i]);
    }
    // A LIMIT entry cannot fill before the next tick, 150 s away: every one
    // times out 1 s after it was sent.
    let mut k = kernel(&[101], r#"{"entry_type": "LIMIT", "entry_timeout_s": 1}"#);
    k.run(&sparse.view(0, sparse.len())).expect("columns");
    let log = k.take_log();
    let ticks: Vec<i64> = sparse.ts_ns.clone();
    let mut cancels = 0;
    for i in 0..log.orders.ts_ns.len() {
        if log.orders.action[i] == "CANCEL" && log.orders.client_order_id[i].ends_with(":ENTRY") {
            cancels += 1;
            assert!(
                !ticks.contains(&log.orders.ts_ns[i]),
                "cancel waited for a tick"
            );
            let plan = &log.orders.plan_id[i];
            let d = log
                .decisions
                .plan_id
                .iter()
                .position(|p| p == plan)
                .expect("decision");
            assert_eq!(log.orders.ts_ns[i], log.decisions.ts_ns[d] + NS_PER_SEC);
        }
    }
    assert_eq!(cancels, log.decisions.plan_id.len(), "{:?}", log.counts());
    assert!(cancels > 0);
    assert!(log.trades.plan_id.is_empty());
}

/// What the gappy day produced, for the eye (`cargo test -- --nocapture`).
#[test]
fn gappy_day_summary() {
    let cols = gappy_day(&[101, 102], 375, 0.1, 7);
    let log = replay(&cols, 65_536, MARKET);
    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for r in &log.trades.exit_reason {
        *reasons.entry(r).or_default() += 1;
    }
    println!("{:?}\nexit reasons {reasons:?}", log.counts());
    let alerts: Vec<_> = log.alerts.code.iter().zip(&log.alerts.severity).collect();
    println!("alerts {alerts:?}");
    assert!(!log.trades.plan_id.is_empty());
}

/// Every order names the step of its plan's walk that issued it: a step the
/// plan has already taken, at the order's own exchange time.
#[test]
fn orders_carry_the_step_that_issued_them() {
    let cols = gappy_day(&[101, 102], 240, 0.1, 17);
    let log = replay(&cols, 4096, MARKET);
    let mut walks: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    for i in 0..log.transitions.ts_ns.len() {
        walks
            .entry(log.transitions.plan_id[i].as_str())
            .or_default()
            .push((log.transitions.ts_ns[i], log.transitions.event[i]));
    }
    let mut children = 0;
    for i in 0..log.orders.ts_ns.len() {
        let plan = log.orders.plan_id[i].as_str();
        let step = log.orders.step[i] as usize;
        let walk = &walks[plan];
        assert!(
            step < walk.len(),
            "{}: step {step} of {}",
            log.orders.client_order_id[i],
            walk.len()
        );
        assert_eq!(
            walk[step].0, log.orders.ts_ns[i],
            "{}: issued at its step's time",
            log.orders.client_order_id[i]
        );
        let cid = &log.orders.client_order_id[i];
        if log.orders.action[i] == "PLACE" && cid.ends_with(":ENTRY") {
            assert_eq!((step, walk[step].1), (0, "OPEN"), "{cid}");
        }
        if log.orders.action[i] == "PLACE" && cid.ends_with(":STOP") {
            assert_ne!(
                step, 0,
                "{cid}: a child goes out on a fill, not at the open"
            );
            children += 1;
        }
    }
    assert!(children > 5, "the day must place stops: {children}");
}
