//! SimVenue fills: one test per order type and edge case, then gappy data.
//!
//! Prices in comments are rupees; the venue sees paise. Default slippage is
//! 5 bp, rounded to the nearest tick against the order; ack latency 50 ms.
#![allow(clippy::unwrap_used)]

mod sim_support;

use aitrapp_core::venue::SimVenueConfig;
use sim_support::*;

#[test]
fn market_buy_fills_at_ask_plus_slippage_on_first_tick_after_latency() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, MKT).mp(2.0).build();
    let (id, out) = h.place(o);
    assert!(out.is_empty(), "not acknowledged before the latency");
    assert_eq!(h.v.next_due_ns(), Some(T0 + 50 * MS));
    assert!(h.tick(T0 + 10 * MS, 100.00, 99.95, 100.05).is_empty()); // still in flight
    let ups = h.tick(T0 + 60 * MS, 100.10, 100.05, 100.10);
    // ack at request + 50 ms; then ask 100.10 + 5 bp = 100.15005 -> 100.15
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("OPEN", 0, 0, 0, 0), ("COMPLETE", 10, 10_015, 10, 10_015)]
    );
    assert_eq!(stamps(&ups), vec![T0 + 50 * MS, T0 + 60 * MS]);
    let done = &ups[1];
    assert_eq!(done.order_id, id);
    assert_eq!(id, START);
    assert_eq!(done.filled_value, 10 * 10_015);
    assert_eq!(done.protection_price, Some(rs(102.0))); // LTP 100.00 at ack + 2 %
    assert_eq!(h.v.working_count(), 0);
}

#[test]
fn market_sell_fills_at_bid_minus_slippage() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, MKT).mp(-1.0).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.00, 99.95, 100.05);
    // bid 99.95 - 5 bp = 99.900025 -> 99.90
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_990, 10, 9_990)
    );
}

#[test]
fn market_without_depth_uses_last_price() {
    let mut h = H::std();
    h.tick(T0, 100.00, 0.0, 0.0);
    let o = h.order(BUY, 1, MKT).mp(-1.0).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.00, 0.0, 0.0);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 1, 10_005, 1, 10_005)
    );
}

#[test]
fn market_sell_never_fills_at_zero() {
    let mut h = H::std();
    h.tick_full(OPT, T0, 0.05, 0.05, 0.10, 0, 0);
    let o = h.order(SELL, 65, MKT).mp(-1.0).token(OPT).build();
    h.place_id(o);
    let ups = h.tick_full(OPT, T0 + 60 * MS, 0.05, 0.05, 0.10, 0, 0);
    // 0.05 - 5 bp rounds to 0.05, and a sell never goes below one tick
    assert_eq!(brief(ups.last().unwrap()), ("COMPLETE", 65, 5, 65, 5));
}

#[test]
fn market_protection_band_holds_the_order_and_caps_slippage() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 5, MKT).mp(1.0).build(); // protection 100.00 + 1 % = 101.00
    let id = h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 101.95, 101.90, 102.00);
    assert_eq!(statuses(&ups), vec!["OPEN"]); // ask beyond the band
                                              // A no-tick wait later the last quote is still beyond the band: nothing fills.
    assert!(h.tick(T0 + 3 * SEC, 101.95, 101.90, 102.00).is_empty());
    // ask 101.00 + 5 bp = 101.05 is capped at the protection price 101.00
    let ups = h.tick(T0 + 4 * SEC, 101.00, 100.95, 101.00);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 5, 10_100, 5, 10_100)
    );
    assert_eq!(ups.last().unwrap().order_id, id);
}

#[test]
fn market_order_waits_for_a_price_instead_of_inventing_one() {
    let mut h = H::std();
    let o = h.order(BUY, 65, MKT).mp(-1.0).token(OPT).build(); // no tick ever seen
    let id = h.place_id(o);
    let ups = h.end();
    assert_eq!(statuses(&ups), vec!["OPEN"]); // acknowledged, never filled at 0
    assert_eq!(h.v.order(id).unwrap().filled_qty, 0);
    assert_eq!(h.v.next_due_ns(), None);
}

#[test]
fn limit_rests_then_fills_at_the_limit_when_trades_print_through() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_950).build();
    h.place_id(o);
    let ups = h.tick(T0 + 100 * MS, 99.80, 99.75, 99.80);
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("OPEN", 0, 0, 0, 0)]
    );
    assert!(h.tick(T0 + SEC, 99.50, 99.45, 99.55).is_empty()); // a print at the limit: no fill
    let ups = h.tick(T0 + 2 * SEC, 99.45, 99.45, 99.55); // a print through it
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_950, 10, 9_950)
    );
}

#[test]
fn limit_gapped_through_fills_at_the_better_price() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_950).build();
    h.place_id(o);
    h.tick(T0 + 100 * MS, 99.80, 99.75, 99.80);
    let ups = h.tick(T0 + SEC, 98.00, 97.95, 98.05); // gap from 99.80 to 98.00
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_805, 10, 9_805)
    );
}

#[test]
fn marketable_limit_fills_at_the_touch_without_slippage() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(10_100).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.10, 100.05, 100.10);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 10_010, 10, 10_010)
    );
}

#[test]
fn limit_arrival_ignores_prints_from_before_it_arrived() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_950).build();
    h.place_id(o);
    // First look: the last print (99.40) is below the limit but the ask (99.60) is not.
    let ups = h.tick(T0 + 60 * MS, 99.40, 99.40, 99.60);
    assert_eq!(statuses(&ups), vec!["OPEN"]);
    let ups = h.tick(T0 + SEC, 99.40, 99.40, 99.60); // resting now: the print counts
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_950, 10, 9_950)
    );
}

#[test]
fn sell_limit_mirrors_the_buy_rules() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 3, LMT).price(10_050).build();
    h.place_id(o);
    h.tick(T0 + 60 * MS, 100.20, 100.15, 100.25); // arrival: bid below the limit
    assert!(h.tick(T0 + SEC, 100.50, 100.45, 100.55).is_empty()); // print at the limit
    let ups = h.tick(T0 + 2 * SEC, 101.00, 100.95, 101.05); // bid above the limit
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 3, 10_095, 3, 10_095)
    );
}

#[test]
fn slm_triggers_on_last_price_then_fills_as_market() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(2.0).build();
    h.place_id(o);
    let ups = h.tick(T0 + 100 * MS, 99.50, 99.45, 99.55);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING"]);
    assert!(!ups[0].triggered);
    let ups = h.tick(T0 + 200 * MS, 98.95, 98.90, 99.00);
    // triggered (OPEN), then bid 98.90 - 5 bp = 98.85055 -> 98.85 (band: 99.00 - 2 % = 97.02)
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("OPEN", 0, 0, 0, 0), ("COMPLETE", 10, 9_885, 10, 9_885)]
    );
    assert!(ups[0].triggered && !ups[1].triggered);
    assert_eq!(ups[0].trigger, Some(rs(99.0)));
    assert_eq!(ups[0].protection_price, Some(rs(97.05))); // 97.02 up to the grid
}

#[test]
fn slm_trigger_on_the_very_first_tick() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(2.0).build();
    h.place_id(o);
    // The market fell through the trigger before the order reached the exchange.
    let ups = h.tick(T0 + 60 * MS, 97.50, 97.45, 97.55);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING", "OPEN", "COMPLETE"]);
    assert_eq!(stamps(&ups), vec![T0 + 50 * MS, T0 + 60 * MS, T0 + 60 * MS]);
    assert_eq!(ups[2].avg_price, rs(97.40)); // 97.45 - 5 bp = 97.401 -> 97.40
}

#[test]
fn slm_gap_beyond_its_protection_rests_at_the_protection_price() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(1.0).build(); // floor 98.01 -> 98.05
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 97.50, 97.45, 97.55);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING", "OPEN"]);
    assert_eq!(ups[1].protection_price, Some(rs(98.05)));
    let ups = h.tick(T0 + 5 * SEC, 98.15, 98.10, 98.20); // 98.10 - 5 bp = 98.05
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_805, 10, 9_805)
    );
}

#[test]
fn buy_slm_protects_a_short() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, SLM).trigger(10_100).mp(-1.0).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.95, 100.90, 101.00);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING"]);
    let ups = h.tick(T0 + SEC, 101.00, 100.95, 101.05);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 10_110, 10, 10_110)
    );
}

#[test]
fn sl_triggers_then_rests_as_a_limit() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SL).trigger(9_900).price(9_890).build();
    h.place_id(o);
    h.tick(T0 + 100 * MS, 99.50, 99.45, 99.55);
    let ups = h.tick(T0 + 200 * MS, 98.95, 98.80, 98.85); // triggers; bid below the limit
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("OPEN", 0, 0, 0, 0)]
    );
    assert_eq!(
        (ups[0].price, ups[0].trigger),
        (Some(rs(98.9)), Some(rs(99.0)))
    );
    assert!(ups[0].triggered);
    let ups = h.tick(T0 + SEC, 98.95, 98.85, 98.95); // prints above the limit: fills at it
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_890, 10, 9_890)
    );
}

fn participation(pct: f64) -> H {
    H::new(SimVenueConfig {
        participation_pct: Some(pct),
        ..cfg()
    })
}

#[test]
fn ioc_partial_fill_then_cancel() {
    let mut h = participation(10.0);
    h.tick_full(EQ, T0, 100.00, 99.95, 100.05, 10_000, 0);
    let o = h.order(BUY, 100, LMT).price(10_010).ioc().build();
    h.place_id(o);
    let ups = h.tick_full(EQ, T0 + 60 * MS, 100.05, 100.00, 100.05, 10_500, 0); // 500 -> 50
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![
            ("OPEN", 0, 0, 0, 0),
            ("OPEN", 50, 10_005, 50, 10_005),
            ("CANCELLED", 50, 10_005, 0, 0),
        ]
    );
    let msg = ups[2].message.as_deref().unwrap();
    assert!(msg.contains("IOC"), "{msg}");
    assert!(h
        .tick_full(EQ, T0 + SEC, 100.05, 100.00, 100.05, 20_000, 0)
        .is_empty());
}

#[test]
fn ioc_that_cannot_fill_is_cancelled_whole() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_900).ioc().build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.00, 99.95, 100.05);
    let last = ups.last().unwrap();
    assert_eq!(brief(last), ("CANCELLED", 0, 0, 0, 0));
    assert_eq!(last.qty - last.filled_qty, 10); // the cancelled quantity
}

#[test]
fn participation_fills_in_parts_and_averages() {
    let mut h = participation(20.0);
    h.tick_full(EQ, T0, 100.00, 99.95, 100.05, 10_000, 0);
    let o = h.order(BUY, 300, LMT).price(10_010).build();
    h.place_id(o);
    let ups = h.tick_full(EQ, T0 + 60 * MS, 100.05, 100.00, 100.05, 11_000, 0); // 1000 -> 200
    assert_eq!(
        brief(ups.last().unwrap()),
        ("OPEN", 200, 10_005, 200, 10_005)
    );
    assert!(h
        .tick_full(EQ, T0 + SEC, 100.05, 100.00, 100.05, 11_000, 0)
        .is_empty()); // quote only
    let ups = h.tick_full(EQ, T0 + 2 * SEC, 100.00, 99.95, 100.00, 11_500, 0); // 500 -> 100
    let done = ups.last().unwrap();
    // (200 x 100.05 + 100 x 100.00) / 300 = 100.0333... -> 100.03
    assert_eq!(brief(done), ("COMPLETE", 300, 10_003, 100, 10_000));
    assert_eq!(done.filled_value, 200 * 10_005 + 100 * 10_000);
}

#[test]
fn participation_fills_whole_lots_only() {
    let mut h = participation(10.0);
    h.tick_full(FUT, T0, 24000.0, 23999.9, 24000.1, 50_000, 0);
    let o = h.order(BUY, 130, LMT).price(2_401_000).token(FUT).build();
    h.place_id(o);
    let ups = h.tick_full(FUT, T0 + 60 * MS, 24000.0, 23999.9, 24000.1, 51_000, 0);
    // 10 % of 1000 = 100 -> one lot of 65
    assert_eq!(
        brief(ups.last().unwrap()),
        ("OPEN", 65, 2_400_010, 65, 2_400_010)
    );
    let ups = h.tick_full(FUT, T0 + SEC, 24000.0, 23999.9, 24000.1, 51_600, 0);
    assert!(ups.is_empty()); // 10 % of 600 = 60 is less than a lot
    let ups = h.tick_full(FUT, T0 + 2 * SEC, 24000.0, 23999.9, 24000.1, 52_300, 0);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 130, 2_400_010, 65, 2_400_010)
    );
}

#[test]
fn participation_uses_last_qty_when_volume_is_unknown() {
    let mut h = participation(50.0);
    h.tick_full(EQ, T0, 100.00, 99.95, 100.05, 0, 0);
    let o = h.order(BUY, 10, LMT).price(10_010).build();
    h.place_id(o);
    let ups = h.tick_full(EQ, T0 + 60 * MS, 100.05, 100.00, 100.05, 0, 8);
    assert_eq!(brief(ups.last().unwrap()), ("OPEN", 4, 10_005, 4, 10_005));
}

#[test]
fn market_order_without_traded_volume_falls_back_after_the_wait() {
    let mut h = participation(10.0);
    h.tick_full(EQ, T0, 100.00, 99.95, 100.05, 1_000, 0);
    let o = h.order(BUY, 10, MKT).mp(-1.0).build();
    h.place_id(o);
    for k in 1..5 {
        // quote-only ticks every 500 ms: no volume to take part in
        let ask = 100.05 + f64::from(k) * 0.05;
        let ups = h.tick_full(
            EQ,
            T0 + i64::from(k) * 500 * MS,
            100.00,
            99.95,
            ask,
            1_000,
            0,
        );
        assert!(ups.iter().all(|u| u.filled_qty == 0));
    }
    let ups = h.tick_full(EQ, T0 + 2500 * MS, 100.00, 99.95, 100.40, 1_000, 0);
    // due at ack (T0 + 50 ms) + 2 s, against the quote then known (ask 100.25): 100.30
    let done = ups.last().unwrap();
    assert_eq!(brief(done), ("COMPLETE", 10, 10_030, 10, 10_030));
    assert_eq!(done.ts_ns, T0 + 2050 * MS);
}

#[test]
fn latency_orders_ack_eligibility_and_fill() {
    let mut h = H::new(SimVenueConfig {
        fill_latency_ns: 100 * MS,
        ..cfg()
    });
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(10_100).build();
    h.place_id(o);
    assert!(h.tick(T0 + 40 * MS, 100.00, 99.95, 100.05).is_empty()); // before the ack
    let ups = h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05); // acked, not yet eligible
    assert_eq!(
        (statuses(&ups), stamps(&ups)),
        (vec!["OPEN"], vec![T0 + 50 * MS])
    );
    let ups = h.tick(T0 + 150 * MS, 100.00, 99.95, 100.05); // first eligible tick
    assert_eq!(
        (statuses(&ups), stamps(&ups)),
        (vec!["COMPLETE"], vec![T0 + 150 * MS])
    );
}

#[test]
fn no_tick_market_fill_at_last_known_quote_after_the_wait() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, MKT).mp(-1.0).build();
    h.place_id(o);
    assert_eq!(statuses(&h.advance(T0 + SEC)), vec!["OPEN"]);
    assert!(h.advance(T0 + 2 * SEC).is_empty()); // the wait runs from eligibility
    assert_eq!(h.v.next_due_ns(), Some(T0 + 2050 * MS));
    let ups = h.advance(T0 + 2050 * MS);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 10_010, 10, 10_010)
    );
    assert_eq!(ups.last().unwrap().ts_ns, T0 + 2050 * MS);
}

#[test]
fn feed_end_fills_market_orders_at_once() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    h.end();
    let o = h.order(SELL, 10, MKT).mp(-1.0).build();
    let (_, ups) = h.place(o);
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("OPEN", 0, 0, 0, 0), ("COMPLETE", 10, 9_990, 10, 9_990)]
    );
    assert_eq!(stamps(&ups), vec![T0 + 50 * MS, T0 + 2050 * MS]);
}

#[test]
fn quiet_limit_order_gets_its_first_look_against_the_last_quote() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(10_010).ioc().build();
    h.place_id(o);
    let ups = h.advance(T0 + 3 * SEC);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 10_005, 10, 10_005)
    );
}

#[test]
fn bad_and_stale_ticks_never_fill() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, MKT).mp(-1.0).build();
    h.place_id(o);
    assert!(h.tick(T0 + 60 * MS, 0.0, 0.0, 0.0).is_empty());
    assert_eq!(h.v.bad_quotes(), 1);
    let ups = h.tick(T0 + 80 * MS, 100.00, 0.0, 0.0); // no depth: the last price counts
    assert_eq!(statuses(&ups), vec!["OPEN", "COMPLETE"]);
    assert_eq!(ups[1].avg_price, rs(100.05));
    // An older tick than the last one seen for the instrument is dropped.
    let o = h.order(SELL, 10, LMT).price(9_000).build();
    h.place_id(o);
    assert!(h.tick(T0 + 75 * MS, 95.0, 94.95, 95.05).is_empty());
    assert_eq!(h.v.bad_quotes(), 2);
    assert_eq!(h.v.last_price(EQ), Some(rs(100.0)));
}

#[test]
fn crossed_quote_falls_back_to_last_price() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 1, LMT).price(10_000).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.00, 100.10, 99.90); // bid above ask
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 1, 10_000, 1, 10_000)
    );
}
