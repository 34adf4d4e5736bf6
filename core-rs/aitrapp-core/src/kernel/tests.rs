//! Kernel checks that need its internals (the route from a decision to a bracket).

use super::{BracketTemplate, Kernel};
use crate::config::EngineConfig;
use crate::engine::{Decision, Engine, Outcome};
use crate::instrument::{Instrument, Segment};
use crate::price::Price;
use crate::tick::RawTick;
use crate::venue::{SimVenue, SimVenueConfig};

const TOKEN: u32 = 101;
const OPEN: i64 = 1_767_240_900_000_000_000; // 2026-01-01 09:45 IST
const SEC: i64 = 1_000_000_000;

fn kernel() -> Kernel<SimVenue> {
    kernel_with(SimVenueConfig::default())
}

fn kernel_with(venue_cfg: SimVenueConfig) -> Kernel<SimVenue> {
    let inst = Instrument {
        exchange: "NSE".into(),
        tradingsymbol: "SYN101".into(),
        instrument_token: TOKEN,
        segment: Segment::Eq,
        tick_size: Price::from_paise(5),
        lot_size: 1,
        freeze_qty: 100_000,
    };
    let mut cfg = EngineConfig::default();
    cfg.strategies.orb.enabled = false;
    cfg.strategies.trend_pullback.enabled = false;
    cfg.strategies.vwap_reversion.enabled = false;
    cfg.strategies.ema_cross.enabled = true;
    cfg.strategies.ema_cross.fast_period = 2;
    cfg.strategies.ema_cross.slow_period = 4;
    cfg.strategies.ema_cross.stop_ticks = 400;
    cfg.strategies.ema_cross.tp_ticks = 400;
    cfg.risk.cooldown_seconds = 0;
    let venue = SimVenue::new(venue_cfg, std::slice::from_ref(&inst)).expect("venue");
    let engine = Engine::new(cfg, vec![inst]).expect("engine");
    let template = BracketTemplate::from_json(r#"{"entry_type": "MARKET"}"#).expect("template");
    Kernel::new(engine, venue, template).expect("kernel")
}

/// Flat, a dip, then a rise: EMA 2 crosses above EMA 4 once (synthetic path).
fn tick(k: &mut Kernel<SimVenue>, i: i64, paise: i64) {
    tick_at(k, OPEN + i * SEC, i, paise);
}

fn tick_at(k: &mut Kernel<SimVenue>, ts_ns: i64, i: i64, paise: i64) {
    let px = paise as f64 / 100.0;
    let raw = RawTick {
        token: i64::from(TOKEN),
        ts_ns,
        last_price: px,
        last_qty: 1,
        volume: 10 * (i + 1),
        bid: Some(px - 0.05),
        ask: Some(px + 0.05),
        oi: None,
    };
    k.on_tick(&raw).expect("tick");
}

/// The same decision routed again (a repeat) places nothing, keeps the open
/// bracket and the engine's heat, and says so once (DUPLICATE_PLAN).
#[test]
fn a_decision_routed_twice_opens_one_bracket() {
    let mut k = kernel();
    let path = [50_000; 8].into_iter().chain([49_980]).chain([50_040; 6]);
    for (i, p) in path.enumerate() {
        tick(&mut k, i as i64, p);
    }
    let log = k.take_log();
    assert_eq!(log.decisions.plan_id.len(), 1, "the path must decide once");
    assert_eq!(k.open_brackets(), 1);
    let d = &log.decisions;
    let decision = Decision {
        plan_id: d.plan_id[0].clone(),
        token: d.token[0],
        tradingsymbol: "SYN101".into(),
        exchange: "NSE".into(),
        side: if d.side[0] == "BUY" {
            crate::Side::Buy
        } else {
            crate::Side::Sell
        },
        entry: Price::from_paise(d.entry[0]),
        stop: Price::from_paise(d.stop[0]),
        tp: Price::from_paise(d.tp[0]),
        qty: d.qty[0],
        strategy: d.strategy[0],
        reason: d.reason[0].clone(),
        signal_ts: d.ts_ns[0],
        config_sha: String::new(),
        risk_paise: d.risk_paise[0],
        heat_after_pct: d.heat_after_pct[0],
        capped_by_notional: false,
        capped_by_freeze: false,
    };
    let heat = k.engine().portfolio().heat_pct;
    let open = k.engine().portfolio().open_brackets;
    let t = k.now_ns();
    k.on_outcome(t, Outcome::Decision(decision));
    let again = k.take_log();
    assert!(
        again.orders.client_order_id.is_empty(),
        "placed: {:?}",
        again.orders
    );
    assert_eq!(again.alerts.code, vec!["DUPLICATE_PLAN"]);
    assert_eq!(k.open_brackets(), 1);
    assert!(
        (k.engine().portfolio().heat_pct - heat).abs() < 1e-12,
        "the plan keeps its heat"
    );
    assert_eq!(k.engine().portfolio().open_brackets, open);
}

/// A timer that falls between two ticks sees the market as it was at its own
/// time: the entry's no-tick fill at t (0.5 s after the order, no tick since)
/// is judged against the last tick before t, not against a tick at t + 20 ms
/// that gapped through the stop. So its children go out at t; the gap then
/// meets a stop that is on its way (not a STOP_GAPPED exit decided at t with
/// a price from the future).
#[test]
fn a_timer_between_ticks_sees_the_market_of_its_own_time() {
    let mut k = kernel_with(SimVenueConfig {
        no_tick_wait_ns: 500_000_000,
        ..SimVenueConfig::default()
    });
    let path = [50_000; 8].into_iter().chain([49_980]).chain([50_040]);
    for (i, p) in path.enumerate() {
        tick(&mut k, i as i64, p);
    }
    let log = k.take_log();
    assert_eq!(log.decisions.plan_id.len(), 1, "the rise must decide once");
    let sent = log.orders.ts_ns[0];
    // No tick for 0.5 s after the entry arrived: it fills then on the last quote.
    let later = sent + 1_000_000_000;
    tick_at(&mut k, later, 10, 45_000); // 10 % lower: through any stop
    let after = k.take_log();
    let fill_ts = after.fills.ts_ns[0];
    assert!(
        fill_ts < later,
        "the entry fills at its timer, before the gap"
    );
    let stop_at = after
        .orders
        .client_order_id
        .iter()
        .position(|c| c.ends_with(":STOP"))
        .map(|i| after.orders.ts_ns[i]);
    assert_eq!(
        stop_at,
        Some(fill_ts),
        "the stop goes out at the entry's fill"
    );
    let gapped_at_fill = after
        .alerts
        .code
        .iter()
        .zip(&after.alerts.ts_ns)
        .any(|(c, &t)| *c == "STOP_GAPPED" && t == fill_ts);
    assert!(
        !gapped_at_fill,
        "judged with a later price: {:?}",
        after.alerts
    );
}
