//! The engine end to end: ticks in, decisions and blocks out, feedback.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::{
    plan_client_id, Engine, EngineConfig, Instrument, Outcome, PlanKey, Price, RawTick, Segment,
    TickColumns, TickReject,
};

/// 2026-01-01 09:15:00 IST.
const OPEN: i64 = 1_767_239_100_000_000_000;

fn inst(token: u32, symbol: &str) -> Instrument {
    Instrument {
        exchange: "NSE".into(),
        tradingsymbol: symbol.into(),
        instrument_token: token,
        segment: Segment::Eq,
        tick_size: Price::from_paise(5),
        lot_size: 1,
        freeze_qty: 100_000,
    }
}

fn ema_only() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.strategies.orb.enabled = false;
    cfg.strategies.trend_pullback.enabled = false;
    cfg.strategies.vwap_reversion.enabled = false;
    cfg.strategies.ema_cross.enabled = true;
    cfg.strategies.ema_cross.fast_period = 2;
    cfg.strategies.ema_cross.slow_period = 4;
    // The expectations below are worked out for a no-leverage position cap.
    cfg.risk.max_position_notional_pct = 100.0;
    cfg
}

fn raw(token: i64, sec: i64, rupees: f64, volume: i64) -> RawTick {
    RawTick {
        token,
        ts_ns: OPEN + sec * NS_PER_SEC,
        last_price: rupees,
        last_qty: 1,
        volume,
        bid: None,
        ask: None,
        oi: None,
    }
}

/// Falls then rises: one upward cross of EMA2 over EMA4.
const PATH: [f64; 8] = [100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4];

/// "DECISION" or the block reason of each outcome.
fn kinds(out: &[Outcome]) -> Vec<&'static str> {
    out.iter()
        .map(|o| match o {
            Outcome::Decision(_) => "DECISION",
            Outcome::Block(b) => b.reason.as_str(),
        })
        .collect()
}

fn feed(engine: &mut Engine, token: i64, start_sec: i64) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (i, px) in PATH.iter().enumerate() {
        let k = i64::try_from(i).unwrap();
        engine
            .on_tick(&raw(token, start_sec + k, *px, start_sec + k), &mut out)
            .unwrap();
    }
    out
}

#[test]
fn a_cross_becomes_a_sized_decision_with_a_deterministic_id() {
    let cfg = ema_only();
    let mut engine = Engine::new(cfg.clone(), vec![inst(1, "RELIANCE")]).unwrap();
    let out = feed(&mut engine, 1, 600);
    assert_eq!(out.len(), 1, "{out:?}");
    let Outcome::Decision(d) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((d.strategy, d.side.as_str()), ("EmaCross", "BUY"));
    assert_eq!(d.entry, Price::from_paise(10_010));
    assert_eq!(
        (d.stop, d.tp),
        (Price::from_paise(9_960), Price::from_paise(10_060))
    );
    // 5,000 rupees / 0.50 per unit = 10,000 units, 10.01 lakh of notional:
    // capped to 100% of the 10 lakh capital, floor(10,00,000 / 100.10) = 9,990.
    assert_eq!(d.qty, 9_990);
    assert!(d.capped_by_notional && !d.capped_by_freeze);
    assert_eq!(d.risk_paise, 499_500);
    assert!((d.heat_after_pct - 0.4995).abs() < 1e-12);
    let snap = engine.portfolio();
    assert_eq!(snap.gross_exposure_paise, 9_990 * 10_010);
    assert!((snap.gross_exposure_pct - 99.999_9).abs() < 1e-9);
    assert_eq!(d.config_sha, cfg.config_sha());
    let key = PlanKey {
        symbol: "RELIANCE",
        side: d.side,
        entry: d.entry,
        stop: d.stop,
        tp: d.tp,
        qty: d.qty,
        strategy: "EmaCross",
        config_sha: &d.config_sha,
        signal_ts: OPEN + 606 * NS_PER_SEC,
    };
    assert_eq!(d.plan_id, plan_client_id(&key).unwrap());
    assert_eq!(d.signal_ts, OPEN + 606 * NS_PER_SEC);

    // Same ticks, same config: same ids. Another config: other ids.
    let mut again = Engine::new(cfg.clone(), vec![inst(1, "RELIANCE")]).unwrap();
    assert_eq!(feed(&mut again, 1, 600), out);
    let mut other_cfg = cfg;
    other_cfg.risk.cooldown_seconds = 301;
    let mut other = Engine::new(other_cfg, vec![inst(1, "RELIANCE")]).unwrap();
    let Outcome::Decision(d2) = &feed(&mut other, 1, 600)[0] else {
        panic!()
    };
    assert_ne!(d2.plan_id, d.plan_id);

    // With 2x allowed per position the risk budget decides again.
    let mut levered = ema_only();
    levered.risk.max_position_notional_pct = 200.0;
    let mut engine = Engine::new(levered, vec![inst(1, "RELIANCE")]).unwrap();
    let Outcome::Decision(d3) = &feed(&mut engine, 1, 600)[0] else {
        panic!()
    };
    assert_eq!(
        (d3.qty, d3.risk_paise, d3.capped_by_notional),
        (10_000, 500_000, false)
    );
}

#[test]
fn the_plan_holds_its_instrument_until_closed_then_cools_down() {
    let mut engine = Engine::new(ema_only(), vec![inst(1, "RELIANCE")]).unwrap();
    let Outcome::Decision(d) = feed(&mut engine, 1, 600).remove(0) else {
        panic!()
    };
    // The path crosses down, then up again: both blocked, the instrument is busy.
    let out = feed(&mut engine, 1, 700);
    assert_eq!(kinds(&out), ["INSTRUMENT_BUSY", "INSTRUMENT_BUSY"]);
    engine.on_entry_filled(&d.plan_id, d.qty, 100.10).unwrap();
    engine.on_exit_filled(&d.plan_id, d.qty, 99.60).unwrap();
    let snap = engine.portfolio();
    assert_eq!(snap.realized_paise, -499_500);
    assert_eq!(snap.gross_exposure_paise, 0);
    assert_eq!(snap.heat_paise, 0);
    engine
        .on_bracket_closed(&d.plan_id, -5_020.0, None, OPEN + 710 * NS_PER_SEC)
        .unwrap();
    let snap = engine.portfolio();
    assert_eq!(
        (snap.realized_paise, snap.open_brackets.len()),
        (-502_000, 0)
    );
    let out = feed(&mut engine, 1, 800);
    assert_eq!(kinds(&out), ["COOLDOWN", "COOLDOWN"]);
    // Cooldown over at 1,010 s: the first cross trades, the second finds it busy.
    let out = feed(&mut engine, 1, 1_100);
    assert_eq!(kinds(&out), ["DECISION", "INSTRUMENT_BUSY"]);
    assert!(engine.on_plan_cancelled("nope", 0).is_err());
}

#[test]
fn bad_ticks_are_counted_and_change_nothing() {
    let mut engine = Engine::new(ema_only(), vec![inst(1, "RELIANCE")]).unwrap();
    let mut out = Vec::new();
    engine.on_tick(&raw(1, 10, 100.0, 50), &mut out).unwrap();
    let cases = [
        (raw(2, 11, 100.0, 60), TickReject::UnknownInstrument),
        (raw(-1, 11, 100.0, 60), TickReject::UnknownInstrument),
        (raw(1, 11, f64::NAN, 60), TickReject::NonFinitePrice),
        (raw(1, 11, -5.0, 60), TickReject::NonPositivePrice),
        (raw(1, 9, 100.0, 60), TickReject::OutOfOrder),
        (raw(1, 11, 100.0, 40), TickReject::VolumeDecreased),
        (
            RawTick {
                bid: Some(101.0),
                ask: Some(100.5),
                ..raw(1, 11, 100.0, 60)
            },
            TickReject::CrossedQuote,
        ),
    ];
    for (tick, why) in cases {
        assert_eq!(engine.on_tick(&tick, &mut out), Err(why));
    }
    assert_eq!(engine.last_price(1), Some(Price::from_paise(10_000)));
    let c = engine.tick_counters();
    assert_eq!((c.accepted, c.total_rejected()), (1, 7));
    assert_eq!(c.rejected(TickReject::UnknownInstrument), 2);
    engine.on_tick(&raw(1, 12, 100.03, 60), &mut out).unwrap();
    assert_eq!(engine.tick_counters().off_tick_rounded, 1);
    assert_eq!(engine.last_price(1), Some(Price::from_paise(10_005)));
}

#[test]
fn a_new_ist_day_resets_the_daily_figures() {
    let mut cfg = ema_only();
    cfg.risk.max_trades_per_day = 1;
    let mut engine = Engine::new(cfg, vec![inst(1, "A"), inst(2, "B")]).unwrap();
    let Outcome::Decision(d) = feed(&mut engine, 1, 600).remove(0) else {
        panic!()
    };
    engine.on_plan_cancelled(&d.plan_id, OPEN).unwrap();
    let out = feed(&mut engine, 2, 600);
    assert_eq!(kinds(&out), ["MAX_TRADES"]);
    engine.advance_time(OPEN + 86_400 * NS_PER_SEC);
    assert_eq!(engine.portfolio().trades_today, 0);
    // One trade a day: the second cross of the path is over the limit again.
    let out = feed(&mut engine, 2, 86_400 + 600);
    assert_eq!(kinds(&out), ["DECISION", "MAX_TRADES"]);
}

#[test]
fn batch_and_single_ticks_agree() {
    let instruments = vec![inst(1, "A"), inst(2, "B"), inst(3, "C")];
    let mut cfg = EngineConfig::default();
    cfg.strategies.ema_cross.enabled = true;
    cfg.risk.max_open_positions = 50;
    cfg.risk.max_trades_per_day = 1_000;
    cfg.risk.max_portfolio_heat_pct = 100.0;
    cfg.risk.cooldown_seconds = 0;
    let (mut tok, mut ts, mut px, mut qty, mut vol) = (vec![], vec![], vec![], vec![], vec![]);
    let mut state = 12_345u64;
    let mut prices = [10_000i64; 3];
    for i in 0..30_000i64 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let k = usize::try_from(state >> 62).unwrap() % 3;
        prices[k] += i64::try_from((state >> 33) % 5).unwrap() * 5 - 10;
        tok.push(i64::try_from(k).unwrap() + 1);
        ts.push(OPEN + i * 500_000_000);
        #[allow(clippy::cast_precision_loss)]
        px.push(prices[k] as f64 / 100.0);
        qty.push(1);
        vol.push(i);
    }
    let cols = TickColumns {
        token: &tok,
        ts_ns: &ts,
        last_price: &px,
        last_qty: &qty,
        volume: &vol,
        bid: None,
        ask: None,
        oi: None,
    };
    let mut batch = Engine::new(cfg.clone(), instruments.clone()).unwrap();
    let mut from_batch = Vec::new();
    batch
        .on_batch(&cols, |i, o| from_batch.push((i, o)))
        .unwrap();
    let mut single = Engine::new(cfg, instruments).unwrap();
    let mut from_single = Vec::new();
    let mut out = Vec::new();
    for i in 0..tok.len() {
        let _ = single.on_tick(&cols.row(i), &mut out);
        from_single.extend(out.drain(..).map(|o| (i, o)));
    }
    assert!(from_batch.len() > 20, "{}", from_batch.len());
    assert_eq!(from_batch, from_single);
    let short = TickColumns {
        ts_ns: &ts[1..],
        ..cols
    };
    assert!(batch.on_batch(&short, |_, _| {}).is_err());
}

#[test]
fn construction_rejects_bad_instruments_and_config() {
    assert!(Engine::new(EngineConfig::default(), vec![]).is_err());
    assert!(Engine::new(EngineConfig::default(), vec![inst(1, "A"), inst(1, "B")]).is_err());
    assert!(Engine::new(EngineConfig::default(), vec![inst(1, "A|B")]).is_err());
    let mut cfg = EngineConfig::default();
    cfg.risk.daily_loss_stop_pct = -1.0;
    let err = Engine::new(cfg, vec![inst(1, "A")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("risk.daily_loss_stop_pct"), "{err}");
}
