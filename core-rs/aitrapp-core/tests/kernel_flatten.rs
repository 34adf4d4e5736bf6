//! The kill switch on the kernel: each working SL-M stop becomes its
//! bracket's market exit by one modification, the targets are cancelled
//! once that is answered; on the paper venue and on the external venue
//! (Kite, played by hand here). Ticks are the seeded synthetic gappy day.

#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

mod common;

use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::oco::OrderType;
use aitrapp_core::risk::TradingState;
use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::venue::{
    ExternalUpdate, ExternalVenue, ExternalVenueConfig, SimVenue, SimVenueConfig, Venue,
    VenueCommand, VenueStatus,
};
use aitrapp_core::{Engine, Price};
use common::{ema_config, gappy_day, instrument, Cols, MINUTE, OPEN};

const MARKET: &str = r#"{"entry_type": "MARKET"}"#;
const MS: i64 = 1_000_000;
const TOKENS: [u32; 4] = [101, 102, 103, 104];

fn kernel<V: Venue>(venue: V, tokens: &[u32]) -> Kernel<V> {
    let insts: Vec<_> = tokens.iter().map(|&t| instrument(t)).collect();
    let engine = Engine::new(ema_config(), insts).expect("engine");
    Kernel::new(
        engine,
        venue,
        BracketTemplate::from_json(MARKET).expect("template"),
    )
    .expect("kernel")
}

// ───────────── the paper venue ─────────────

fn paper(tokens: &[u32]) -> Kernel<SimVenue> {
    let insts: Vec<_> = tokens.iter().map(|&t| instrument(t)).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    kernel(venue, tokens)
}

/// Replays the day in batches of `batch`, flattening (and halting) right
/// after the tick at `at`, then runs the rest and finishes the day.
fn replay_with_flatten(cols: &Cols, batch: usize, at: usize) -> EventLog {
    let mut k = paper(&TOKENS);
    let mut log = EventLog::default();
    let mut lo = 0;
    while lo < cols.len() {
        let end = if lo <= at { at + 1 } else { cols.len() };
        let hi = (lo + batch).min(end);
        k.run(&cols.view(lo, hi)).expect("columns");
        log.append(k.take_log());
        if hi == at + 1 {
            k.set_trading_state(TradingState::Halted);
            k.flatten(cols.ts_ns[at] + MS);
            log.append(k.take_log());
        }
        lo = hi;
    }
    k.finish(*cols.ts_ns.last().unwrap(), OPEN + 380 * MINUTE);
    log.append(k.take_log());
    log
}

/// The gappy day (which lists the instruments a bar at a time) in
/// exchange-time order, so that a flatten between two ticks is later than
/// every tick before it and earlier than every tick after it.
fn day() -> Cols {
    let c = gappy_day(&TOKENS, 375, 0.1, 7);
    let mut ix: Vec<usize> = (0..c.len()).collect();
    ix.sort_by_key(|&i| c.ts_ns[i]);
    let pick = |v: &[i64]| ix.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let pick_f = |v: &[f64]| ix.iter().map(|&i| v[i]).collect::<Vec<_>>();
    Cols {
        token: pick(&c.token),
        ts_ns: pick(&c.ts_ns),
        last: pick_f(&c.last),
        qty: pick(&c.qty),
        volume: pick(&c.volume),
        bid: pick_f(&c.bid),
        ask: pick_f(&c.ask),
    }
}

/// The index of a tick at which at least `n` brackets have been open for a
/// second (their stops are working at the venue).
fn busy_tick(cols: &Cols, n: usize) -> usize {
    let mut k = paper(&TOKENS);
    let mut since = None;
    for i in 0..cols.len() - 1 {
        k.run(&cols.view(i, i + 1)).expect("tick");
        if k.open_brackets() < n {
            since = None;
            continue;
        }
        let t0 = *since.get_or_insert(cols.ts_ns[i]);
        if cols.ts_ns[i] >= t0 + NS_PER_SEC {
            return i;
        }
    }
    panic!("never {n} brackets open at once");
}

#[test]
fn the_flatten_is_the_same_at_every_batch_size() {
    let cols = day();
    let at = busy_tick(&cols, 2);
    let one = replay_with_flatten(&cols, 1, at);
    let o = &one.orders;
    let converted = (0..o.action.len())
        .filter(|&i| o.action[i] == "MODIFY" && o.order_type[i] == "MARKET")
        .count();
    assert!(converted >= 2, "the flatten converted {converted} stops");
    assert_eq!(one, replay_with_flatten(&cols, 7, at));
    assert_eq!(one, replay_with_flatten(&cols, 65_536, at));
}

#[test]
fn paper_stops_turned_market_fill_as_the_exits() {
    let cols = day();
    let at = busy_tick(&cols, 2);
    let log = replay_with_flatten(&cols, 4096, at);
    let flat_at = cols.ts_ns[at] + MS;
    let o = &log.orders;
    let after: Vec<usize> = (0..o.action.len())
        .filter(|&i| o.ts_ns[i] >= flat_at)
        .collect();
    assert!(
        after.iter().all(|&i| o.action[i] != "PLACE"),
        "no market order placed"
    );
    let plans: Vec<&str> = after
        .iter()
        .filter(|&&i| o.action[i] == "MODIFY")
        .map(|&i| o.plan_id[i].as_str())
        .collect();
    assert!(plans.len() >= 2, "{} stops converted", plans.len());
    for plan in &plans {
        let mine: Vec<usize> = after
            .iter()
            .copied()
            .filter(|&i| o.plan_id[i] == *plan)
            .collect();
        let kinds: Vec<(&str, &str)> = mine
            .iter()
            .map(|&i| {
                let tag = o.client_order_id[i].rsplit(':').next().unwrap();
                (o.action[i], tag)
            })
            .collect();
        assert_eq!(kinds, vec![("MODIFY", "STOP"), ("CANCEL", "TP")]);
        // The stop filled, as a market order, for the flatten.
        let t = (0..log.trades.plan_id.len())
            .find(|&i| log.trades.plan_id[i] == *plan)
            .unwrap();
        assert_eq!(log.trades.exit_reason[t], "FLATTEN");
        // No double exit of our own making (a target filling before its
        // cancel could reach the venue would be a race).
        assert!(!log.trades.double_exit[t] || log.trades.race[t]);
        let f = &log.fills;
        assert!((0..f.ts_ns.len()).any(|i| f.plan_id[i] == *plan && f.role[i] == "STOP"));
    }
    // Nothing was refused by the venue, and nothing is left working.
    assert!(after.iter().all(|&i| o.refused[i].is_empty()));
}

// ───────────── the external venue ─────────────

fn report(cid: &str, ts: i64, status: VenueStatus, filled: u64, avg: i64) -> ExternalUpdate {
    ExternalUpdate {
        client_order_id: cid.to_string(),
        ts_ns: ts,
        status,
        filled_qty: filled,
        avg_price: Price::from_paise(avg),
        message: None,
    }
}

struct Live {
    k: Kernel<ExternalVenue>,
    t: i64,
    qty: u64,
    stop: (String, u64),
    tp: (String, u64),
}

/// One bracket open at the broker: entry filled, stop and target working.
fn live_open() -> Live {
    let cols = gappy_day(&[101], 200, 0.1, 7);
    let venue = ExternalVenue::new(ExternalVenueConfig::default()).expect("venue");
    let mut k = kernel(venue, &[101]);
    let mut entry = None;
    for i in 0..cols.len() {
        k.run(&cols.view(i, i + 1)).expect("tick");
        if let Some(VenueCommand::Place { order, .. }) = k.take_commands().first() {
            entry = Some((cols.ts_ns[i], order.client_order_id.clone(), order.qty));
            break;
        }
    }
    let (t, entry, qty) = entry.expect("the day trades");
    let filled = report(&entry, t + MS, VenueStatus::Complete, qty, 250_000);
    assert!(k.on_order_update(filled).unwrap());
    let mut stop = None;
    let mut tp = None;
    for c in k.take_commands() {
        if let VenueCommand::Place { order_id, order } = c {
            let id = (order.client_order_id.clone(), order_id);
            if order.client_order_id.ends_with(":STOP") {
                stop = Some(id);
            } else if order.client_order_id.ends_with(":TP") {
                tp = Some(id);
            }
        }
    }
    let (stop, tp) = (stop.unwrap(), tp.unwrap());
    let t = t + 2 * MS;
    let ack = report(&stop.0, t, VenueStatus::TriggerPending, 0, 0);
    assert!(k.on_order_update(ack).unwrap());
    assert!(k
        .on_order_update(report(&tp.0, t, VenueStatus::Open, 0, 0))
        .unwrap());
    assert!(k.take_commands().is_empty());
    k.take_log();
    Live {
        k,
        t,
        qty,
        stop,
        tp,
    }
}

fn kinds(cmds: &[VenueCommand]) -> Vec<(&'static str, u64, Option<OrderType>)> {
    cmds.iter()
        .map(|c| match c {
            VenueCommand::Place { order_id, order } => ("PLACE", *order_id, Some(order.order_type)),
            VenueCommand::Modify {
                order_id, change, ..
            } => ("MODIFY", *order_id, change.order_type),
            VenueCommand::Cancel { order_id, .. } => ("CANCEL", *order_id, None),
        })
        .collect()
}

#[test]
fn on_kite_the_target_is_cancelled_only_after_the_modify_is_answered() {
    let mut o = live_open();
    let t = o.t + NS_PER_SEC;
    o.k.set_trading_state(TradingState::Halted);
    o.k.flatten(t);
    let cmds = o.k.take_commands();
    assert_eq!(
        kinds(&cmds),
        vec![("MODIFY", o.stop.1, Some(OrderType::Market))]
    );
    if let VenueCommand::Modify { change, .. } = &cmds[0] {
        assert_eq!(change.qty, Some(o.qty));
        assert_eq!((change.price, change.trigger), (None, None));
    }
    // Kite's answer: accepted. Now the clean-up.
    o.k.on_modify_answer(o.stop.1, t + 30 * MS, None).unwrap();
    assert_eq!(kinds(&o.k.take_commands()), vec![("CANCEL", o.tp.1, None)]);
    let tp_gone = report(&o.tp.0, t + 60 * MS, VenueStatus::Cancelled, 0, 0);
    assert!(o.k.on_order_update(tp_gone).unwrap());
    let stop = &o.stop.0;
    let filled = report(stop, t + 70 * MS, VenueStatus::Complete, o.qty, 249_900);
    assert!(o.k.on_order_update(filled).unwrap());
    assert!(o.k.take_commands().is_empty(), "the stop was the exit");
    assert_eq!(o.k.open_brackets(), 0);
    let log = o.k.take_log();
    assert_eq!(log.trades.exit_reason, vec!["FLATTEN"]);
    assert_eq!(log.trades.double_exit, vec![false]);
    let modify = log
        .orders
        .action
        .iter()
        .position(|a| *a == "MODIFY")
        .unwrap();
    assert_eq!(log.orders.order_type[modify], "MARKET");
}

#[test]
fn on_kite_a_refused_modify_falls_back_to_cancel_and_exit() {
    let mut o = live_open();
    let t = o.t + NS_PER_SEC;
    o.k.flatten(t);
    o.k.take_commands();
    let refusal = "Maximum allowed order modifications exceeded";
    o.k.on_modify_answer(o.stop.1, t + 30 * MS, Some(refusal))
        .unwrap();
    let mut got = kinds(&o.k.take_commands());
    got.sort_unstable_by_key(|k| (k.0, k.1));
    assert_eq!(
        got,
        vec![("CANCEL", o.stop.1, None), ("CANCEL", o.tp.1, None)]
    );
    let gone = report(&o.stop.0, t + 60 * MS, VenueStatus::Cancelled, 0, 0);
    assert!(o.k.on_order_update(gone).unwrap());
    let cmds = o.k.take_commands();
    let exit = match cmds.as_slice() {
        [VenueCommand::Place { order, .. }] => order,
        other => panic!("expected one market exit, got {other:?}"),
    };
    assert!(exit.client_order_id.ends_with(":EXIT"));
    assert_eq!((exit.order_type, exit.qty), (OrderType::Market, o.qty));
    let codes = o.k.take_log().alerts.code;
    assert!(codes.contains(&"STOP_MODIFY_REJECTED"), "{codes:?}");
}

#[test]
fn on_kite_a_converted_stop_that_hangs_is_cancelled_on_time_alone() {
    let mut o = live_open();
    let t = o.t + NS_PER_SEC;
    o.k.flatten(t);
    o.k.take_commands();
    o.k.on_modify_answer(o.stop.1, t + 30 * MS, None).unwrap();
    o.k.take_commands(); // the target's cancel
                         // Kite reports the MARKET order OPEN and it rests (outside its band).
    let open = report(&o.stop.0, t + 40 * MS, VenueStatus::Open, 0, 0);
    assert!(o.k.on_order_update(open).unwrap());
    o.k.advance_time(t + 5 * NS_PER_SEC - MS);
    assert!(o.k.take_commands().is_empty(), "not before the timeout");
    o.k.advance_time(t + 5 * NS_PER_SEC);
    assert_eq!(
        kinds(&o.k.take_commands()),
        vec![("CANCEL", o.stop.1, None)]
    );
    let gone = report(&o.stop.0, t + 6 * NS_PER_SEC, VenueStatus::Cancelled, 0, 0);
    assert!(o.k.on_order_update(gone).unwrap());
    let cmds = o.k.take_commands();
    assert!(
        matches!(cmds.as_slice(), [VenueCommand::Place { order, .. }] if order.order_type == OrderType::Market && order.qty == o.qty),
        "{cmds:?}"
    );
    let codes = o.k.take_log().alerts.code;
    assert!(codes.contains(&"STOP_FILL_TIMEOUT"), "{codes:?}");
}
