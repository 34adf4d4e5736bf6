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
