//! SimVenue on sparse, gappy data: stops crossed between ticks, SL-M orders
//! triggered beyond their protection band, cancels racing fills.
#![allow(clippy::unwrap_used)]

mod sim_support;

use aitrapp_core::venue::{SimVenueConfig, VenueStatus};
use sim_support::*;

#[test]
fn stop_crossed_between_two_ticks_fills_at_the_next_touch_with_slippage() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(2.0).build(); // band from 99.00: 97.02
    h.place_id(o);
    assert_eq!(
        statuses(&h.tick(T0 + SEC, 99.60, 99.55, 99.65)),
        vec!["TRIGGER PENDING"]
    );
    // One minute later the market is 1.2 % lower: the trigger was crossed in the gap.
    let ups = h.tick(T0 + 61 * SEC, 98.40, 98.35, 98.45);
    assert_eq!(statuses(&ups), vec!["OPEN", "COMPLETE"]);
    assert!(ups[0].triggered);
    // bid 98.35 - 5 bp = 98.300825 -> 98.30, inside the band (>= 97.05)
    assert_eq!(brief(&ups[1]), ("COMPLETE", 10, 9_830, 10, 9_830));
    assert!(ups[1].protection_price.unwrap() <= ups[1].avg_price);
    assert_eq!(stamps(&ups), vec![T0 + 61 * SEC, T0 + 61 * SEC]);
}

#[test]
fn stop_slippage_never_goes_beyond_the_protection_band() {
    let mut h = H::new(SimVenueConfig {
        slippage_bps: 500.0, // 5 %: far more than the 2 % band
        ..cfg()
    });
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(2.0).build();
    h.place_id(o);
    h.tick(T0 + SEC, 99.60, 99.55, 99.65);
    let ups = h.tick(T0 + 61 * SEC, 98.40, 98.35, 98.45);
    // 98.35 - 5 % = 93.43 is beyond the band: capped at 99.00 - 2 % = 97.02 -> 97.05
    assert_eq!(
        brief(ups.last().unwrap()),
        ("COMPLETE", 10, 9_705, 10, 9_705)
    );
}

#[test]
fn slm_triggered_beyond_its_band_rests_unfilled_through_waits_and_feed_end() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(1.0).build(); // band 98.05
    let id = h.place_id(o);
    h.tick(T0 + SEC, 99.60, 99.55, 99.65);
    let ups = h.tick(T0 + 61 * SEC, 96.00, 95.95, 96.05); // a 3.6 % gap
    assert_eq!(statuses(&ups), vec!["OPEN"]);
    assert!(ups[0].triggered);
    // Hours of ticks below the band, no-tick waits and the end of the feed: no fill.
    for k in 0..100 {
        assert!(h
            .tick(T0 + (62 + k * 60) * SEC, 96.00, 95.95, 96.05)
            .is_empty());
    }
    assert!(h.advance(T0 + 8 * 3600 * SEC).is_empty());
    assert!(h.end().is_empty());
    let snap = h.v.order(id).unwrap();
    assert_eq!((snap.status, snap.filled_qty), (VenueStatus::Open, 0));
    assert_eq!(snap.protection_price, Some(rs(98.05)));
    assert_eq!(h.v.working_count(), 1);
}

#[test]
fn stop_is_rejected_for_trigger_side_only_when_the_market_already_crossed_it() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    h.tick(T0 + 60 * SEC, 98.50, 98.45, 98.55); // gap below 99.00
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(-1.0).build();
    let (_, ups) = h.place(o);
    assert_eq!(statuses(&ups), vec!["REJECTED"]);
    let msg = ups[0].message.as_deref().unwrap();
    assert!(
        msg.contains("lower than the last traded price (98.50)"),
        "{msg}"
    );
    assert_eq!(ups[0].ts_ns, T0 + 60 * SEC);
    // Sent while the market is still above the trigger it is accepted, even if
    // the market crosses it before the acknowledgement.
    let o = h.order(SELL, 10, SLM).trigger(9_800).mp(-1.0).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * SEC + 60 * MS, 97.00, 96.95, 97.05);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING", "OPEN", "COMPLETE"]);
}

#[test]
fn cancel_arriving_after_a_fill_is_refused() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, LMT).price(10_100).build();
    let id = h.place_id(o);
    h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05); // rests
    let ups = h.tick(T0 + 15 * SEC, 101.50, 101.45, 101.55); // gap up through the limit
    assert_eq!(statuses(&ups), vec!["COMPLETE"]);
    let err = h.v.cancel(T0 + 15 * SEC, id).unwrap_err().to_string();
    assert!(
        err.contains("cannot be cancelled as it is completed"),
        "{err}"
    );
    assert_eq!(h.v.next_due_ns(), None);
}

#[test]
fn a_quote_of_an_instrument_without_orders_only_moves_its_last_price() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 1, LMT).price(9_000).build();
    h.place_id(o);
    h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05);
    let ups = h.tick_full(FUT, T0 + 200 * MS, 24000.0, 23999.9, 24000.1, 0, 0);
    assert!(ups.is_empty());
    assert_eq!(h.v.last_price(FUT), Some(rs(24000.0)));
    assert_eq!(h.v.last_price(999), None);
    // A quote of an unknown token still moves time: due timers fire.
    let o = h.order(BUY, 1, LMT).price(9_000).build();
    h.place_id(o);
    let ups = h.tick_full(999, T0 + 300 * MS, 10.0, 0.0, 0.0, 0, 0);
    assert_eq!(statuses(&ups), vec!["OPEN"]);
}
