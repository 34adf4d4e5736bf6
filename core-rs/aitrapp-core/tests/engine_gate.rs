//! The risk gate: order of checks, sizing and heat invariants.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use aitrapp_core::config::{EngineConfig, RiskLimits, SessionTimes};
use aitrapp_core::risk::{
    evaluate, Approved, BlockReason, DailyPnl, GateInput, OpenBracket, Portfolio, RiskBlock,
    TradingState,
};
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
    /// Ask - bid of the signal's tick.
    spread: Option<Price>,
    unrealized: i64,
    /// Charges of today's legs (reported or estimated).
    charges: i64,
}

fn pnl(s: &Setup) -> DailyPnl {
    DailyPnl {
        unrealized_paise: s.unrealized,
        charges_paise: s.charges,
        ..DailyPnl::default()
    }
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
        spread: Some(Price::from_paise(10)),
        unrealized: 0,
        charges: 0,
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
        spread: s.spread,
    };
    let day = pnl(s);
    evaluate(&s.limits, &s.times, &mut s.portfolio, &input, |_| day)
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
#[case::cooldown(|s: &mut Setup| { s.portfolio.open(bracket("p", 0, 10_000, 9_990, 1)); s.portfolio.on_bracket_closed("p", 0, None, &aitrapp_core::risk::ChargeRates::default(), TS - NS_PER_SEC, IstTime::from_utc_ns(TS).day, 300 * NS_PER_SEC).unwrap(); }, BlockReason::Cooldown)]
#[case::below_one_lot(|s: &mut Setup| s.inst = inst(300, 1_800), BlockReason::SizeBelowLot)]
#[case::freeze_block(|s: &mut Setup| { s.limits.freeze_policy = aitrapp_core::config::FreezePolicy::Block; s.inst = inst(1, 100); }, BlockReason::FreezeQty)]
#[case::heat(|s: &mut Setup| s.portfolio.open(bracket("p", 1, 100_000, 90_000, 160)), BlockReason::PortfolioHeat)]
// 20.00 on 2,500.00 is 80 bps.
#[case::stop_too_tight(|s: &mut Setup| s.limits.min_stop_distance_bps_e6 = 80_000_001, BlockReason::StopTooTight)]
#[case::stop_inside_the_spread(|s: &mut Setup| s.spread = Some(Price::from_paise(700)), BlockReason::StopTooTight)]
#[case::stop_inside_slippage(|s: &mut Setup| s.limits.slippage_bps_e6 = 40_000_001, BlockReason::StopTooTight)]
// 25,000 rupees is 2.5% of 10 lakh: charges alone take a 24,999-rupee loss there.
#[case::daily_loss_by_charges(|s: &mut Setup| { s.unrealized = -2_499_900; s.charges = 100; }, BlockReason::DailyLoss)]
// Risk sizes 2 lots of 100; 20% of 10 lakh buys 80 units: not one lot.
#[case::notional_limit(|s: &mut Setup| { s.inst = inst(100, 100_000); s.limits.max_position_notional_e6 = 20_000_000; }, BlockReason::NotionalLimit)]
// 450% open (4,500 x 1,000.00) + 62.5% planned (250 x 2,500.00) > 500%.
#[case::gross_exposure(|s: &mut Setup| s.portfolio.open(bracket("p", 1, 100_000, 99_990, 4_500)), BlockReason::GrossExposure)]
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
fn sizing_and_exposure_checks_run_in_the_documented_order() {
    // stop distance -> size below lot -> notional limit -> freeze -> heat -> gross.
    let mut s = setup();
    s.limits.min_stop_distance_bps_e6 = 100 * 1_000_000;
    s.inst = inst(300, 100_000);
    s.limits.max_position_notional_e6 = 20 * 1_000_000;
    s.limits.freeze_policy = aitrapp_core::config::FreezePolicy::Block;
    s.limits.max_gross_exposure_e6 = 60 * 1_000_000;
    // 1.9% heat and 19% notional already open.
    s.portfolio.open(bracket("p", 1, 100_000, 90_000, 190));
    assert_eq!(run(&mut s), Err(BlockReason::StopTooTight));
    s.limits.min_stop_distance_bps_e6 = 80 * 1_000_000; // exactly 80 bps: allowed
    assert_eq!(run(&mut s), Err(BlockReason::SizeBelowLot));
    s.inst = inst(100, 100); // 200 units by risk; 80 by notional
    assert_eq!(run(&mut s), Err(BlockReason::NotionalLimit));
    s.limits.max_position_notional_e6 = 100 * 1_000_000; // 400 units fit
    assert_eq!(run(&mut s), Err(BlockReason::FreezeQty));
    s.inst = inst(100, 100_000);
    assert_eq!(run(&mut s), Err(BlockReason::PortfolioHeat)); // 1.9% + 1.6%
    s.limits.max_heat_e6 = 5 * 1_000_000;
    assert_eq!(run(&mut s), Err(BlockReason::GrossExposure)); // 19% + 50% > 60%
    s.limits.max_gross_exposure_e6 = 69 * 1_000_000; // exactly 69%: allowed
    assert_eq!(run(&mut s), Ok(200));
}

fn evaluate_setup(s: &mut Setup) -> Result<Approved, RiskBlock> {
    let sig = s.sig.clone();
    let input = GateInput {
        signal: &sig,
        instrument: &s.inst,
        slot: 0,
        state: s.state,
        ist: IstTime::from_utc_ns(s.ts),
        spread: s.spread,
    };
    let day = pnl(s);
    evaluate(&s.limits, &s.times, &mut s.portfolio, &input, |_| day)
}

#[rstest]
// Risk: 250 units (62.5 % notional). Limit 50% = 5 lakh = 200 units.
#[case(1, 50.0, 200, true)]
#[case(1, 62.5, 250, false)] // exactly the risk-sized notional: not capped
#[case(1, 100.0, 250, false)]
#[case(65, 50.0, 195, false)] // 200 units by notional, 195 (3 lots) by risk
#[case(65, 40.0, 130, true)] // 160 units -> 2 lots of 65
#[case(30, 50.0, 180, true)] // risk 240 (8 lots), notional 200 -> 6 lots
fn notional_cap_cuts_to_whole_lots_and_says_so(
    #[case] lot: u32,
    #[case] pct: f64,
    #[case] want_qty: u64,
    #[case] want_capped: bool,
) {
    let mut s = setup();
    s.inst = inst(lot, 100_000);
    #[allow(clippy::cast_possible_truncation)]
    {
        s.limits.max_position_notional_e6 = (pct * 1e6) as i64;
    }
    let a = evaluate_setup(&mut s).unwrap();
    assert_eq!((a.qty, a.capped_by_notional), (want_qty, want_capped));
    assert_eq!(a.notional_paise, i128::from(a.qty) * 250_000);
    assert_eq!(a.gross_after_paise, a.notional_paise);
    assert_eq!(a.risk_paise, i64::try_from(a.qty).unwrap() * 2_000);
}

#[test]
fn exposure_blocks_carry_their_numbers() {
    use aitrapp_core::risk::Detail;
    let mut s = setup();
    s.limits.min_stop_distance_bps_e6 = 100 * 1_000_000;
    let b = evaluate_setup(&mut s).unwrap_err();
    assert_eq!(b.reason, BlockReason::StopTooTight);
    assert_eq!(
        b.details,
        vec![
            ("entry_rupees", Detail::Float(2_500.0)),
            ("stop_distance_rupees", Detail::Float(20.0)),
            ("stop_distance_bps", Detail::Float(80.0)),
            ("min_stop_distance_bps", Detail::Float(100.0)),
            ("slippage_bps", Detail::Float(5.0)),
            ("spread_rupees", Detail::Float(0.1)),
            ("min_stop_spread_multiple", Detail::Float(3.0)),
            ("required_distance_rupees", Detail::Float(25.0)),
            ("binding_rule", Detail::Text("min_stop_distance_bps".into())),
        ]
    );
    // A quote 7.00 wide needs a stop 21.00 away: the spread rule binds.
    let mut s = setup();
    s.spread = Some(Price::from_paise(700));
    let b = evaluate_setup(&mut s).unwrap_err();
    assert_eq!(b.reason, BlockReason::StopTooTight);
    assert_eq!(
        b.detail("required_distance_rupees"),
        Some(&Detail::Float(21.0))
    );
    assert_eq!(
        b.detail("binding_rule"),
        Some(&Detail::Text("min_stop_spread_multiple".into()))
    );
    s.spread = Some(Price::from_paise(666)); // 3 x 6.66 = 19.98 < 20.00
    assert_eq!(run(&mut s), Ok(250));
    s.spread = None; // no quote: no spread rule
    s.limits.slippage_bps_e6 = 40_000_000; // 2 x 40 bps = 80 bps: exactly the stop
    assert_eq!(run(&mut s), Ok(250));

    let mut s = setup();
    s.inst = inst(100, 100_000);
    s.limits.max_position_notional_e6 = 20 * 1_000_000;
    let b = evaluate_setup(&mut s).unwrap_err();
    assert_eq!(b.reason, BlockReason::NotionalLimit);
    assert_eq!(
        b.details,
        vec![
            ("entry_rupees", Detail::Float(2_500.0)),
            ("lot_size", Detail::Int(100)),
            ("lot_notional_rupees", Detail::Float(250_000.0)),
            ("max_position_notional_rupees", Detail::Float(200_000.0)),
            ("max_position_notional_pct", Detail::Float(20.0)),
            ("risk_sized_qty", Detail::Int(200)),
        ]
    );

    // A short counts as much as a long: gross exposure does not net.
    let mut s = setup();
    let mut short = bracket("p", 1, 100_000, 100_010, 4_500);
    short.side = Side::Sell;
    s.portfolio.open(short);
    let b = evaluate_setup(&mut s).unwrap_err();
    assert_eq!(b.reason, BlockReason::GrossExposure);
    assert_eq!(
        b.details,
        vec![
            ("gross_exposure_rupees", Detail::Float(4_500_000.0)),
            ("plan_notional_rupees", Detail::Float(625_000.0)),
            ("gross_exposure_pct", Detail::Float(450.0)),
            ("plan_notional_pct", Detail::Float(62.5)),
            ("gross_after_pct", Detail::Float(512.5)),
            ("max_gross_exposure_pct", Detail::Float(500.0)),
        ]
    );
    // Exposure follows the actual fill and what is left of the position.
    s.portfolio.on_entry_filled("p", 4_500, 999.0).unwrap();
    s.portfolio.on_exit_filled("p", 200, 998.0).unwrap();
    // 4,300 x 999.00 = 42.957 lakh; + 6.25 lakh = 49.207 lakh <= 50 lakh.
    let a = evaluate_setup(&mut s).unwrap();
    assert_eq!(a.gross_after_paise, 4_300 * 99_900 + 250 * 250_000);
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
        spread: s.spread,
    };
    let block = evaluate(&s.limits, &s.times, &mut s.portfolio, &input, |_| {
        DailyPnl {
            realized_paise: -2_400_000,
            charges_paise: 150_000,
            unrealized_paise: -40_000,
            close_charges_paise: 10_000,
        }
    })
    .unwrap_err();
    use aitrapp_core::risk::Detail;
    assert_eq!(
        block.detail("daily_pnl_rupees"),
        Some(&Detail::Float(-26_000.0))
    );
    // Gross -24,400 is inside the stop; the charges take it past.
    for (key, rupees) in [
        ("realized_rupees", -24_000.0),
        ("charges_rupees", 1_500.0),
        ("unrealized_rupees", -400.0),
        ("close_charges_rupees", 100.0),
    ] {
        assert_eq!(block.detail(key), Some(&Detail::Float(rupees)), "{key}");
    }
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
    fn approved_plans_respect_budget_heat_and_exposure(
        capital_rupees in 10_000u32..20_000_000,
        per_trade_e2 in 1u32..300,
        extra_heat_e2 in 0u32..800,
        notional_e2 in 1u32..100_000,
        extra_gross_e2 in 0u32..30_000,
        entry in 100i64..300_000,
        dist_ticks in 1i64..5_000,
        lot in 1u32..500,
        open in proptest::collection::vec((1i64..5_000, 1u64..2_000, 0u64..2_500, 1_950_000i64..2_050_000), 0..4),
    ) {
        let mut cfg = EngineConfig::default();
        cfg.risk.capital_rupees = f64::from(capital_rupees);
        cfg.risk.per_trade_risk_pct = f64::from(per_trade_e2) / 100.0;
        cfg.risk.max_portfolio_heat_pct = f64::from(per_trade_e2 + extra_heat_e2) / 100.0;
        cfg.risk.max_position_notional_pct = f64::from(notional_e2) / 100.0;
        cfg.risk.max_gross_exposure_pct = f64::from(notional_e2 + extra_gross_e2) / 100.0;
        let limits = cfg.risk_limits().unwrap();
        let times = cfg.session_times().unwrap();
        let mut portfolio = Portfolio::new(10);
        portfolio.roll_day(IstTime::from_utc_ns(TS).day);
        for (i, (risk, qty, filled, fill_paise)) in open.iter().enumerate() {
            let id = format!("p{i}");
            portfolio.open(bracket(&id, i + 1, 2_000_000, 2_000_000 - risk, *qty));
            if *filled > 0 {
                #[allow(clippy::cast_precision_loss)]
                portfolio.on_entry_filled(&id, *filled, *fill_paise as f64 / 100.0).unwrap();
            }
        }
        let heat_before = portfolio.heat_paise();
        let gross_before = portfolio.gross_exposure_paise();
        let entry_paise = entry * 10;
        let sig = signal(entry * 10, entry * 10 - dist_ticks * 10);
        prop_assume!(sig.stop.paise() > 0);
        let instrument = inst(lot, 1_000_000);
        let input = GateInput { signal: &sig, instrument: &instrument, slot: 0, state: TradingState::Active, ist: IstTime::from_utc_ns(TS), spread: None };
        let capital = i128::from(limits.capital.paise());
        let max_notional = i128::from(limits.max_position_notional_e6) * capital;
        match evaluate(&limits, &times, &mut portfolio, &input, |_| DailyPnl::default()) {
            Ok(a) => {
                let risk = i128::from(a.qty) * i128::from(dist_ticks * 10);
                // risk <= per_trade_pct% of capital, heat <= max_heat_pct% of capital
                prop_assert!(risk * 100_000_000 <= i128::from(limits.per_trade_risk_e6) * capital);
                prop_assert_eq!(a.heat_after_paise, heat_before + risk);
                prop_assert!(a.heat_after_paise * 100_000_000 <= i128::from(limits.max_heat_e6) * capital);
                prop_assert!(a.qty > 0 && a.qty % u64::from(lot) == 0);
                // The sized plan never holds more notional than one position may.
                let notional = i128::from(a.qty) * i128::from(entry_paise);
                prop_assert_eq!(a.notional_paise, notional);
                prop_assert!(notional * 100_000_000 <= max_notional);
                if a.capped_by_notional {
                    // Cut to the cap, and no further: one more lot would break it.
                    let more = notional + i128::from(lot) * i128::from(entry_paise);
                    prop_assert!(more * 100_000_000 > max_notional);
                }
                // Accepted plans never push gross exposure over its cap.
                prop_assert_eq!(a.gross_after_paise, gross_before + notional);
                prop_assert!(
                    a.gross_after_paise * 100_000_000
                        <= i128::from(limits.max_gross_exposure_e6) * capital
                );
            }
            Err(b) if b.reason == BlockReason::NotionalLimit => {
                // Blocked only when not even one lot fits the cap.
                let one_lot = i128::from(lot) * i128::from(entry_paise);
                prop_assert!(one_lot * 100_000_000 > max_notional);
            }
            Err(_) => {}
        }
    }
}
