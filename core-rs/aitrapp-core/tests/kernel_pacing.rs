//! The kernel paces new orders under the paper venue's 10 orders a second:
//! the kill switch on many open brackets, or many entries on one bar, queue
//! instead of coming back REJECTED. Data is seeded and synthetic.

#![allow(clippy::cast_possible_truncation)]

mod common;

use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::risk::TradingState;
use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::venue::{SimVenue, SimVenueConfig};
use aitrapp_core::Engine;
use common::{ema_config, gappy_day, instrument};

const TOKENS: std::ops::Range<u32> = 101..131; // 30 instruments

fn kernel(template: &str) -> Kernel<SimVenue> {
    let insts: Vec<_> = TOKENS.map(instrument).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    // Stops and targets far away: the brackets stay open until the flatten.
    let mut cfg = ema_config();
    cfg.strategies.ema_cross.stop_ticks = 20_000;
    cfg.strategies.ema_cross.tp_ticks = 20_000;
    cfg.risk.per_trade_risk_pct = 0.1;
    let engine = Engine::new(cfg, insts).expect("engine");
    Kernel::new(
        engine,
        venue,
        BracketTemplate::from_json(template).expect("template"),
    )
    .expect("kernel")
}

fn rate_rejections(log: &EventLog) -> usize {
    log.updates
        .message
        .iter()
        .filter(|m| m.contains("Too many requests"))
        .count()
}

/// Feeds the gappy day until at least 15 brackets are open at once.
fn many_open(template: &str) -> (Kernel<SimVenue>, EventLog) {
    let tokens: Vec<u32> = TOKENS.collect();
    let cols = gappy_day(&tokens, 90, 0.1, 5);
    let mut k = kernel(template);
    let mut log = EventLog::default();
    // Feed until at least 15 brackets are open at once.
    let mut lo = 0;
    while lo < cols.len() && k.open_brackets() < 15 {
        let hi = (lo + 30).min(cols.len());
        k.run(&cols.view(lo, hi)).expect("columns");
        log.append(k.take_log());
        lo = hi;
    }
    let open = k.open_brackets();
    assert!(
        open >= 15,
        "the day must open many brackets at once: {open}"
    );
    (k, log)
}

/// Stop-limit stops are never turned into market orders: the kill switch
/// cancels them and places one market exit a bracket, paced.
#[test]
fn the_kill_switch_on_many_brackets_is_paced_not_refused() {
    let template = r#"{"entry_type": "MARKET", "stop_type": "SL", "stop_limit_buffer_ticks": 3}"#;
    let (mut k, mut log) = many_open(template);
    let open = k.open_brackets();
    let now = k.now_ns();
    k.set_trading_state(TradingState::Halted);
    k.flatten(now);
    k.advance_time(now + 30 * NS_PER_SEC);
    log.append(k.take_log());
    assert_eq!(rate_rejections(&log), 0, "no order refused for the rate");
    assert_eq!(k.open_brackets(), 0, "every bracket exited");
    // The exits left at most 10 a second: they reached the venue over
    // ceil(open / 10) seconds, not all at once.
    let exits: Vec<i64> = (0..log.updates.ts_ns.len())
        .filter(|&i| {
            log.updates.status[i] == "OPEN" && log.updates.client_order_id[i].contains(":EXIT")
        })
        .map(|i| log.updates.ts_ns[i])
        .collect();
    assert!(
        exits.len() >= open,
        "{} exits acknowledged for {open}",
        exits.len()
    );
    for &t in &exits {
        let inside = exits
            .iter()
            .filter(|&&x| x <= t && x > t - NS_PER_SEC)
            .count();
        assert!(
            inside <= 10,
            "{inside} exits acknowledged within a second of {t}"
        );
    }
}

/// SL-M stops become the exits by one modification each: the kill switch
/// places no new order at all (nothing to pace, nothing refused), and each
/// bracket's target is cancelled only after its stop's modification.
#[test]
fn the_kill_switch_turns_every_stop_into_the_exit() {
    let (mut k, mut log) = many_open(r#"{"entry_type": "MARKET"}"#);
    let open = k.open_brackets();
    let now = k.now_ns();
    let placed_before = log.orders.action.iter().filter(|a| **a == "PLACE").count();
    let rows_before = log.orders.action.len();
    k.set_trading_state(TradingState::Halted);
    k.flatten(now);
    k.advance_time(now + 30 * NS_PER_SEC);
    log.append(k.take_log());
    assert_eq!(rate_rejections(&log), 0, "no order refused for the rate");
    assert_eq!(k.open_brackets(), 0, "every bracket exited");
    let o = &log.orders;
    let placed = o.action.iter().filter(|a| **a == "PLACE").count();
    assert_eq!(placed, placed_before, "no market order needed");
    let after: Vec<usize> = (rows_before..o.action.len()).collect();
    let to_market: Vec<usize> = after
        .iter()
        .copied()
        .filter(|&i| o.action[i] == "MODIFY" && o.order_type[i] == "MARKET")
        .collect();
    assert_eq!(to_market.len(), open, "one modification a stop");
    for &m in &to_market {
        let plan = &o.plan_id[m];
        assert!(o.client_order_id[m].ends_with(":STOP"));
        assert_eq!(o.refused[m], "");
        let tp_cancel = after
            .iter()
            .copied()
            .find(|&i| &o.plan_id[i] == plan && o.action[i] == "CANCEL")
            .expect("the target is cancelled");
        assert!(o.client_order_id[tp_cancel].ends_with(":TP"));
        assert!(m < tp_cancel, "the exit goes before the clean-up");
    }
    // Every stop filled as the bracket's exit.
    let stop_fills = (0..log.fills.ts_ns.len())
        .filter(|&i| log.fills.role[i] == "STOP" && log.fills.ts_ns[i] >= now)
        .count();
    assert!(stop_fills >= open, "{stop_fills} stop fills for {open}");
    let flat = log
        .trades
        .exit_reason
        .iter()
        .filter(|r| **r == "FLATTEN")
        .count();
    assert_eq!(flat, open);
}

const BURST_FIRST: u32 = 201;

/// `n` instruments on one synthetic price path (seeded walk down, then up),
/// a tick each every 20 ms, 1 µs apart: the EMA crosses on all of them on
/// the same tick, so `n` entries are decided within microseconds.
fn one_bar_burst(n: u32) -> (Kernel<SimVenue>, common::Cols) {
    let tokens: Vec<u32> = (BURST_FIRST..BURST_FIRST + n).collect();
    let insts: Vec<_> = tokens.iter().map(|&t| instrument(t)).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    let mut cfg = ema_config();
    cfg.strategies.ema_cross.stop_ticks = 2_000;
    cfg.strategies.ema_cross.tp_ticks = 2_000;
    cfg.risk.per_trade_risk_pct = 0.1;
    let engine = Engine::new(cfg, insts).expect("engine");
    let k = Kernel::new(
        engine,
        venue,
        BracketTemplate::from_json(r#"{"entry_type": "MARKET"}"#).expect("template"),
    )
    .expect("kernel");
    let mut rng = common::Rng::new(12);
    let mut cols = common::Cols::default();
    let start = common::OPEN + 30 * common::MINUTE;
    let mut px = 250_000_i64;
    for i in 0..200_i64 {
        let drift = if i < 80 { -10 } else { 10 };
        px += drift + rng.range(-1, 1) * 5;
        let ts = start + i * 20_000_000;
        for (k, &tok) in tokens.iter().enumerate() {
            cols.token.push(i64::from(tok));
            cols.ts_ns.push(ts + k as i64 * 1_000);
            cols.last.push(px as f64 / 100.0);
            cols.qty.push(10);
            cols.volume.push(10 * (i + 1));
            cols.bid.push((px - 5) as f64 / 100.0);
            cols.ask.push((px + 5) as f64 / 100.0);
        }
    }
    (k, cols)
}

fn run_all(k: &mut Kernel<SimVenue>, cols: &common::Cols, batch: usize) -> EventLog {
    let mut log = EventLog::default();
    let mut lo = 0;
    while lo < cols.len() {
        let hi = (lo + batch).min(cols.len());
        k.run(&cols.view(lo, hi)).expect("columns");
        log.append(k.take_log());
        lo = hi;
    }
    // Time runs on with no tick: whatever is queued leaves.
    let last = *cols.ts_ns.last().expect("ticks");
    k.advance_time(last + 30 * NS_PER_SEC);
    log.append(k.take_log());
    log
}

/// Row of the first update of `client_order_id` with `status`.
fn first_update(log: &EventLog, client_order_id: &str, status: &str) -> Option<usize> {
    (0..log.updates.ts_ns.len()).find(|&i| {
        log.updates.client_order_id[i] == client_order_id && log.updates.status[i] == status
    })
}

/// Entries in the order they were placed (client order ids).
fn entries_placed(log: &EventLog) -> Vec<String> {
    let o = &log.orders;
    (0..o.action.len())
        .filter(|&i| o.action[i] == "PLACE" && o.client_order_id[i].ends_with(":ENTRY"))
        .map(|i| o.client_order_id[i].clone())
        .collect()
}

/// Acknowledgement times (an order's first OPEN or TRIGGER PENDING).
fn acknowledgements(log: &EventLog) -> Vec<i64> {
    let u = &log.updates;
    let mut seen = std::collections::HashSet::new();
    (0..u.ts_ns.len())
        .filter(|&i| {
            matches!(u.status[i], "OPEN" | "TRIGGER PENDING")
                && seen.insert(u.client_order_id[i].clone())
        })
        .map(|i| u.ts_ns[i])
        .collect()
}

fn assert_windows_hold(acks: &[i64]) {
    for &t in acks {
        let inside = acks
            .iter()
            .filter(|&&x| x <= t && x > t - NS_PER_SEC)
            .count();
        assert!(
            inside <= 10,
            "{inside} acknowledgements within a second of {t}"
        );
    }
}

/// Twelve entries on one bar: ten leave at once, two queue a second. The
/// first entries fill 50 ms later; their stops go ahead of the two queued
/// entries (on Kite the shell's limiter sends protective orders first).
#[test]
fn a_stop_goes_ahead_of_the_entries_still_queued() {
    let (mut k, cols) = one_bar_burst(12);
    let log = run_all(&mut k, &cols, 65_536);
    assert_eq!(rate_rejections(&log), 0, "no order refused for the rate");
    let entries = entries_placed(&log);
    assert_eq!(entries.len(), 12, "one entry an instrument, on one bar");
    let first_plan = entries[0].trim_end_matches(":ENTRY");
    let first_fill = first_update(&log, &entries[0], "COMPLETE").expect("the first entry fills");
    let stop_ack = first_update(&log, &format!("{first_plan}:STOP"), "TRIGGER PENDING")
        .expect("its stop is acknowledged");
    let u = &log.updates;
    for late in &entries[10..] {
        let ack = first_update(&log, late, "OPEN").expect("the queued entry is sent");
        assert!(u.ts_ns[first_fill] < u.ts_ns[ack], "{late} was queued");
        assert!(
            stop_ack < ack && u.ts_ns[stop_ack] <= u.ts_ns[ack],
            "the stop (row {stop_ack}, {}) must reach the venue before {late} (row {ack}, {})",
            u.ts_ns[stop_ack],
            u.ts_ns[ack]
        );
    }
    assert_windows_hold(&acknowledgements(&log));
}

/// Twenty-five entries on one bar queue over three seconds; the first
/// bracket's stop leaves in the second second, not after the last entry.
#[test]
fn a_stop_does_not_wait_seconds_behind_a_queue_of_entries() {
    let (mut k, cols) = one_bar_burst(25);
    let log = run_all(&mut k, &cols, 65_536);
    assert_eq!(rate_rejections(&log), 0, "no order refused for the rate");
    let entries = entries_placed(&log);
    assert_eq!(entries.len(), 25);
    let u = &log.updates;
    let first_plan = entries[0].trim_end_matches(":ENTRY");
    let first_ack = u.ts_ns[first_update(&log, &entries[0], "OPEN").expect("sent")];
    let stop_ack = u.ts_ns
        [first_update(&log, &format!("{first_plan}:STOP"), "TRIGGER PENDING").expect("stop")];
    assert!(
        stop_ack <= first_ack + NS_PER_SEC,
        "the stop waited {} ms after the first entry's acknowledgement",
        (stop_ack - first_ack) / 1_000_000
    );
    let last_entry_ack = u.ts_ns[first_update(&log, &entries[24], "OPEN").expect("sent")];
    assert!(stop_ack < last_entry_ack);
    assert_windows_hold(&acknowledgements(&log));
}

/// The kill switch just after a burst: the entries still queued are
/// cancelled before they are sent and never reach the market; nothing is
/// refused for the rate; the result does not depend on the batch size.
#[test]
fn entries_cancelled_while_queued_never_reach_the_venue() {
    let run = |batch: usize| {
        let (mut k, cols) = one_bar_burst(12);
        // Up to the burst and 10 ms past it.
        let decided = (0..cols.len())
            .find(|&i| {
                let mut probe = one_bar_burst(12).0;
                probe.run(&cols.view(0, i + 1)).expect("columns");
                probe.counters().decisions >= 12
            })
            .expect("the burst");
        let cut = (decided + 1..cols.len())
            .find(|&i| cols.ts_ns[i] >= cols.ts_ns[decided] + 10_000_000)
            .expect("ticks after the burst");
        let mut log = EventLog::default();
        let mut lo = 0;
        while lo < cut {
            let hi = (lo + batch).min(cut);
            k.run(&cols.view(lo, hi)).expect("columns");
            log.append(k.take_log());
            lo = hi;
        }
        let now = k.now_ns();
        k.set_trading_state(TradingState::Halted);
        k.flatten(now);
        k.advance_time(now + 10 * NS_PER_SEC);
        log.append(k.take_log());
        (k.open_brackets(), log)
    };
    let (open, log) = run(1);
    assert_eq!(rate_rejections(&log), 0);
    assert_eq!(open, 0, "every bracket is closed");
    let entries = entries_placed(&log);
    assert_eq!(entries.len(), 12);
    for late in &entries[10..] {
        assert!(
            first_update(&log, late, "OPEN").is_none(),
            "{late} was sent"
        );
        assert!(
            first_update(&log, late, "CANCELLED").is_some(),
            "{late} cancelled"
        );
        assert!(!log.fills.client_order_id.contains(late), "{late} filled");
    }
    assert_windows_hold(&acknowledgements(&log));
    for batch in [7, 65_536] {
        assert_eq!(run(batch).1, log, "batch size {batch} changed the log");
    }
}

/// The burst, its stops and the entries they displaced give the same event
/// log whatever the batch size.
#[test]
fn pacing_with_protective_orders_first_is_the_same_at_any_batch_size() {
    let logs: Vec<EventLog> = [1, 7, 65_536]
        .into_iter()
        .map(|b| {
            let (mut k, cols) = one_bar_burst(25);
            let mut log = run_all(&mut k, &cols, b);
            let last = k.now_ns();
            k.finish(last, last + 30 * NS_PER_SEC);
            log.append(k.take_log());
            log
        })
        .collect();
    assert!(logs[0].fills.ts_ns.len() >= 25);
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
}
