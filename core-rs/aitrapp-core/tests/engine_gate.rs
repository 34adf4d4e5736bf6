//! The risk gate: order of checks, sizing and heat invariants.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use aitrapp_core::config::{EngineConfig, RiskLimits, SessionTimes};
use aitrapp_core::risk::{evaluate, BlockReason, GateInput, OpenBracket, Portfolio, TradingState};
use aitrapp_core::strategies::Signal;
use aitrapp_core::tick::{IstTime, NS_PER_SEC};
use aitrapp_core::{Instrument, Price, Segment, Side};
use proptest::prelude::*;
use rstest::rstest;

/// 2026-01-01 10:00:00 IST.
const TS: i64 = 1_767_241_800_000_000_000;

fn inst(lot: u32, freeze: u32) -> Instrument {
    Instrument {
        exchange: "NFO".into(),
        tradingsymbol: "NIFTY26JANFUT".into(),
        instrument_token: 11,
        segment: Segment::Fut,
        tick_size: Price::from_paise(10),
        lot_size: lot,
        freeze_qty: freeze,
    }
}

fn signal(entry: i64, stop: i64) -> Signal {
    Signal {
        token: 11,
        side: if stop < entry { Side::Buy } else { Side::Sell },
        entry: Price::from_paise(entry),
        stop: Price::from_paise(stop),
        tp: Price::from_paise(2 * entry - stop),
        strategy: "EmaCross",
        reason: "test".into(),
        signal_ts: TS,
    }
}

fn bracket(id: &str, slot: usize, entry: i64, stop: i64, qty: u64) -> OpenBracket {
    OpenBracket {
        plan_id: id.into(),
        token: 100 + u32::try_from(slot).unwrap(),
        slot,
        side: Side::Buy,
        entry: Price::from_paise(entry),
        stop: Price::from_paise(stop),
        tp: Price::from_paise(2 * entry - stop),
        planned_qty: qty,
        filled_qty: 0,
        avg_fill_paise: None,
        exited_qty: 0,
        partial_realized_paise: 0,
        strategy: "ORB",
        signal_ts: 0,
    }
}

struct Setup {
    limits: RiskLimits,
    times: SessionTimes,
    portfolio: Portfolio,
    state: TradingState,
    ts: i64,
    inst: Instrument,
    sig: Signal,
    unrealized: i64,
}

fn setup() -> Setup {
    let cfg = EngineConfig::default();
    let mut portfolio = Portfolio::new(10);
    portfolio.roll_day(IstTime::from_utc_ns(TS).day);
    Setup {
        limits: cfg.risk_limits().unwrap(),
        times: cfg.session_times().unwrap(),
        portfolio,
        state: TradingState::Active,
        ts: TS,
        inst: inst(1, 100_000),
        // 20 rupees of risk per unit: 5,000 / 20 = 250 units.
        sig: signal(250_000, 248_000),
        unrealized: 0,
    }
}

fn run(s: &mut Setup) -> Result<u64, BlockReason> {
    let mut sig = s.sig.clone();
    sig.signal_ts = s.ts;
    let input = GateInput {
        signal: &sig,
        instrument: &s.inst,
        slot: 0,
        state: s.state,
        ist: IstTime::from_utc_ns(s.ts),
    };
    let u = s.unrealized;
    evaluate(&s.limits, &s.times, &mut s.portfolio, &input, |_| u)
        .map(|a| a.qty)
        .map_err(|b| b.reason)
}

#[test]
fn a_clean_signal_is_sized_to_the_risk_budget() {
    let mut s = setup();
    assert_eq!(run(&mut s), Ok(250));
    s.inst = inst(65, 1_800);
    assert_eq!(run(&mut s), Ok(195), "3 lots of 65, rounded down");
}

#[rstest]
#[case::paused(|s: &mut Setup| s.state = TradingState::Paused, BlockReason::TradingState)]
#[case::halted(|s: &mut Setup| s.state = TradingState::Halted, BlockReason::TradingState)]
#[case::before_window(|s: &mut Setup| s.ts = TS - 46 * 60 * NS_PER_SEC, BlockReason::MarketHours)]
#[case::at_entry_end(|s: &mut Setup| s.ts = TS + (5 * 3600 + 20 * 60) * NS_PER_SEC, BlockReason::MarketHours)]
#[case::daily_loss_exactly_at_limit(|s: &mut Setup| s.unrealized = -2_500_000, BlockReason::DailyLoss)]
#[case::max_open(|s: &mut Setup| for i in 1..=5 { s.portfolio.open(bracket(&format!("p{i}"), i, 10_000, 9_990, 1)) }, BlockReason::MaxOpenPositions)]
#[case::max_trades(|s: &mut Setup| for i in 1..=20 { let id = format!("p{i}"); s.portfolio.open(bracket(&id, 1, 10_000, 9_990, 1)); s.portfolio.on_plan_cancelled(&id).unwrap(); }, BlockReason::MaxTrades)]
#[case::busy(|s: &mut Setup| s.portfolio.open(bracket("p", 0, 10_000, 9_990, 1)), BlockReason::InstrumentBusy)]
#[case::cooldown(|s: &mut Setup| { s.portfolio.open(bracket("p", 0, 10_000, 9_990, 1)); s.portfolio.on_bracket_closed("p", 0, TS - NS_PER_SEC, IstTime::from_utc_ns(TS).day, 300 * NS_PER_SEC).unwrap(); }, BlockReason::Cooldown)]
#[case::below_one_lot(|s: &mut Setup| s.inst = inst(300, 1_800), BlockReason::SizeBelowLot)]
#[case::freeze_block(|s: &mut Setup| { s.limits.freeze_policy = aitrapp_core::config::FreezePolicy::Block; s.inst = inst(1, 100); }, BlockReason::FreezeQty)]
#[case::heat(|s: &mut Setup| s.portfolio.open(bracket("p", 1, 100_000, 90_000, 160)), BlockReason::PortfolioHeat)]
#[case::invalid(|s: &mut Setup| s.sig.tp = s.sig.stop, BlockReason::InvalidSignal)]
fn each_check_blocks_with_its_reason(#[case] arrange: fn(&mut Setup), #[case] want: BlockReason) {
    let mut s = setup();
    arrange(&mut s);
    assert_eq!(run(&mut s), Err(want));
}

#[test]
fn checks_run_in_the_documented_order() {
    // Every condition at once: each fix reveals the next reason in line.
    let mut s = setup();
    s.state = TradingState::Paused;
    s.ts = TS - 46 * 60 * NS_PER_SEC; // 09:14
    s.unrealized = -3_000_000;
    for i in 1..=5 {
        s.portfolio
            .open(bracket(&format!("p{i}"), i, 10_000, 9_990, 1));
    }
    assert_eq!(run(&mut s), Err(BlockReason::TradingState));
    s.state = TradingState::Active;
    assert_eq!(run(&mut s), Err(BlockReason::MarketHours));
    s.ts = TS;
    assert_eq!(run(&mut s), Err(BlockReason::DailyLoss));
    // The daily loss latches for the rest of the day, even if PnL recovers.
    s.unrealized = 0;
    assert_eq!(run(&mut s), Err(BlockReason::DailyLoss));
    s.portfolio.roll_day(IstTime::from_utc_ns(TS).day + 1);
    s.ts = TS + 86_400 * NS_PER_SEC;
    assert_eq!(run(&mut s), Err(BlockReason::MaxOpenPositions));
}

#[test]
fn freeze_cap_cuts_to_whole_lots_and_block_details_carry_numbers() {
    let mut s = setup();
    s.inst = inst(1, 100);
    assert_eq!(run(&mut s), Ok(100));
    let mut s = setup();
    s.unrealized = -2_600_000;
    let sig = s.sig.clone();
    let input = GateInput {
        signal: &sig,
        instrument: &s.inst,
        slot: 0,
        state: s.state,
        ist: IstTime::from_utc_ns(s.ts),
    };
    let block = evaluate(&s.limits, &s.times, &mut s.portfolio, &input, |_| {
        -2_600_000
    })
    .unwrap_err();
    use aitrapp_core::risk::Detail;
    assert_eq!(
        block.detail("daily_pnl_rupees"),
        Some(&Detail::Float(-26_000.0))
    );
    assert_eq!(
        block.detail("limit_rupees"),
        Some(&Detail::Float(-25_000.0))
    );
    assert_eq!(
        block.detail("daily_loss_stop_pct"),
        Some(&Detail::Float(2.5))
    );
}

proptest! {
    /// Whatever the book, an approved plan keeps risk within the per-trade
    /// budget and heat within the cap; a plan is never rounded up past them.
    #[test]
    fn approved_plans_respect_budget_and_heat(
        capital_rupees in 10_000u32..50_000_000,
        per_trade_e2 in 1u32..300,
        extra_heat_e2 in 0u32..800,
        entry in 100i64..10_000_000,
        dist_ticks in 1i64..5_000,
        lot in 1u32..500,
        open in proptest::collection::vec((1i64..100_000, 1u64..500), 0..4),
    ) {
        let mut cfg = EngineConfig::default();
        cfg.risk.capital_rupees = f64::from(capital_rupees);
        cfg.risk.per_trade_risk_pct = f64::from(per_trade_e2) / 100.0;
        cfg.risk.max_portfolio_heat_pct = f64::from(per_trade_e2 + extra_heat_e2) / 100.0;
        let limits = cfg.risk_limits().unwrap();
        let times = cfg.session_times().unwrap();
        let mut portfolio = Portfolio::new(10);
        portfolio.roll_day(IstTime::from_utc_ns(TS).day);
        for (i, (risk, qty)) in open.iter().enumerate() {
            portfolio.open(bracket(&format!("p{i}"), i + 1, 2_000_000, 2_000_000 - risk, *qty));
        }
        let heat_before = portfolio.heat_paise();
        let sig = signal(entry * 10, entry * 10 - dist_ticks * 10);
        prop_assume!(sig.stop.paise() > 0);
        let instrument = inst(lot, 1_000_000);
        let input = GateInput { signal: &sig, instrument: &instrument, slot: 0, state: TradingState::Active, ist: IstTime::from_utc_ns(TS) };
        if let Ok(a) = evaluate(&limits, &times, &mut portfolio, &input, |_| 0) {
            let capital = i128::from(limits.capital.paise());
            let risk = i128::from(a.qty) * i128::from(dist_ticks * 10);
            // risk <= per_trade_pct% of capital, heat <= max_heat_pct% of capital
            prop_assert!(risk * 100_000_000 <= i128::from(limits.per_trade_risk_e6) * capital);
            prop_assert_eq!(a.heat_after_paise, heat_before + risk);
            prop_assert!(a.heat_after_paise * 100_000_000 <= i128::from(limits.max_heat_e6) * capital);
            prop_assert!(a.qty > 0 && a.qty % u64::from(lot) == 0);
        }
    }
}
