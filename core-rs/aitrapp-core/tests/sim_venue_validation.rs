//! SimVenue's Kite validation: every reject reason is a REJECTED update with
//! a Kite-like message (never an error), and the order-rate limit.
#![allow(clippy::unwrap_used)]

mod sim_support;

use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{
    ClientRequest, Protection, SimVenue, SimVenueConfig, VenueStatus, VenueUpdate,
};
use aitrapp_core::{Price, Side};
use rstest::rstest;
use sim_support::*;

/// (side, qty, type, price, trigger, protection, token, fragment of the message);
/// the LTP is 100.00 (EQ) and 24000.00 (FUT).
type Reject = (
    Side,
    u64,
    OrderType,
    Option<i64>,
    Option<i64>,
    Protection,
    u32,
    &'static str,
);

const NONE: Protection = Protection::None;
const AUTO: Protection = Protection::Auto;

const REJECTS: &[Reject] = &[
    (
        BUY,
        1,
        LMT,
        Some(10_003),
        None,
        NONE,
        EQ,
        "Tick size for this script is 0.05",
    ),
    (
        SELL,
        1,
        SLM,
        None,
        Some(9_901),
        AUTO,
        EQ,
        "trigger price in the multiple",
    ),
    (
        BUY,
        100,
        LMT,
        Some(2_400_000),
        None,
        NONE,
        FUT,
        "multiple of the lot size (65)",
    ),
    (
        BUY,
        1820,
        LMT,
        Some(2_400_000),
        None,
        NONE,
        FUT,
        "freeze quantity (1800)",
    ),
    (
        BUY,
        0,
        LMT,
        Some(10_000),
        None,
        NONE,
        EQ,
        "Invalid `quantity`",
    ),
    (
        BUY,
        1,
        SLM,
        None,
        Some(9_990),
        AUTO,
        EQ,
        "higher than the last traded price (100.00)",
    ),
    (
        BUY,
        1,
        SLM,
        None,
        Some(10_000),
        AUTO,
        EQ,
        "higher than the last traded price",
    ),
    (
        SELL,
        1,
        SL,
        Some(10_000),
        Some(10_010),
        NONE,
        EQ,
        "lower than the last traded price",
    ),
    (
        BUY,
        1,
        MKT,
        None,
        None,
        NONE,
        EQ,
        "without market protection",
    ),
    (
        SELL,
        1,
        SLM,
        None,
        Some(9_900),
        NONE,
        EQ,
        "without market protection",
    ),
    (
        BUY,
        1,
        MKT,
        None,
        None,
        Protection::Pct(0.0),
        EQ,
        "without market protection",
    ),
    (
        BUY,
        1,
        MKT,
        None,
        None,
        Protection::Pct(150.0),
        EQ,
        "Invalid `market_protection`",
    ),
    (
        BUY,
        1,
        MKT,
        None,
        None,
        Protection::Pct(-2.0),
        EQ,
        "Invalid `market_protection`",
    ),
    (
        BUY,
        1,
        LMT,
        Some(10_000),
        None,
        NONE,
        999,
        "not a known instrument",
    ),
    (
        BUY,
        1,
        LMT,
        Some(10_000),
        None,
        NONE,
        IDX,
        "is an index and cannot be traded",
    ),
    (
        BUY,
        1,
        LMT,
        None,
        None,
        NONE,
        EQ,
        "LIMIT orders need a price",
    ),
    (
        BUY,
        1,
        SL,
        Some(10_100),
        None,
        NONE,
        EQ,
        "need a trigger price",
    ),
    (
        BUY,
        1,
        SL,
        Some(10_100),
        Some(10_110),
        NONE,
        EQ,
        "cannot be above the limit price",
    ),
    (
        SELL,
        1,
        SL,
        Some(9_900),
        Some(9_890),
        NONE,
        EQ,
        "cannot be below the limit price",
    ),
    (BUY, 1, LMT, Some(-100), None, NONE, EQ, "positive price"),
];

#[test]
fn each_reject_reason_is_a_rejected_update() {
    for &(side, qty, t, price, trigger, protection, token, message) in REJECTS {
        let mut h = H::std();
        h.tick(T0, 100.00, 99.95, 100.05);
        h.tick_full(FUT, T0, 24000.0, 23999.9, 24000.1, 0, 0);
        let mut b = h.order(side, qty, t).token(token);
        b.0.price = price.map(Price::from_paise);
        b.0.trigger = trigger.map(Price::from_paise);
        b.0.protection = protection;
        let o = b.build();
        let cid = o.client_order_id.clone();
        let (id, ups) = h.place(o);
        assert_rejected(&ups, id, message);
        assert_eq!(ups[0].client_order_id, cid);
        assert_eq!((ups[0].filled_qty, ups[0].ts_ns), (0, T0), "{message}");
        assert_eq!(h.v.order(id), Some(&ups[0]));
        assert_eq!(h.v.working_count(), 0);
        // Nothing was booked: ticks through any price leave it rejected.
        assert!(
            h.tick(T0 + SEC, 90.00, 89.95, 90.05).is_empty(),
            "{message}"
        );
    }
}

fn assert_rejected(ups: &[VenueUpdate], id: u64, message: &str) {
    assert_eq!(ups.len(), 1, "{ups:?}");
    let u = &ups[0];
    assert_eq!((u.status, u.order_id), (VenueStatus::Rejected, id));
    let msg = u.message.as_deref().unwrap_or_default();
    assert!(msg.contains(message), "{msg:?} should contain {message:?}");
}

#[rstest]
#[case(|r: &mut ClientRequest| r.tag = "X".repeat(21), "Invalid `tag`")]
#[case(|r: &mut ClientRequest| r.tradingsymbol = "TCS".into(), "Invalid `tradingsymbol`")]
#[case(|r: &mut ClientRequest| r.product = "NRML".into(), "Product NRML is not allowed")]
#[case(|r: &mut ClientRequest| r.validity = "TTL".into(), "Invalid `validity`")]
#[case(|r: &mut ClientRequest| r.order_type = "ICEBERG".into(), "Invalid `order_type`")]
#[case(|r: &mut ClientRequest| r.side = "HOLD".into(), "Invalid `transaction_type`")]
#[case(|r: &mut ClientRequest| r.qty = -5, "Invalid `quantity` -5")]
#[case(|r: &mut ClientRequest| r.token = 1 << 40, "instrument_token 1099511627776 (NSE:RELIANCE) is not a known")]
#[case(|r: &mut ClientRequest| { r.token = -1; r.side = "HOLD".into() }, "Invalid `transaction_type`")]
fn client_request_checks(#[case] spoil: fn(&mut ClientRequest), #[case] message: &str) {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let mut r = client("t1", "BUY", 1, "LIMIT", Some(10_000));
    let (id, ups) = h.request(r.clone());
    assert_eq!(
        statuses(&ups),
        Vec::<&str>::new(),
        "the unspoilt request is accepted"
    );
    spoil(&mut r);
    let (id2, ups) = h.request(r);
    assert_eq!(id2, id + 1);
    assert_rejected(&ups, id2, message);
}

#[test]
fn a_valid_stop_passes_the_same_checks() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 1, SL).trigger(9_990).price(9_980).build();
    h.place_id(o);
    let ups = h.tick(T0 + 60 * MS, 100.00, 99.95, 100.05);
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING"]);
}

#[test]
fn trigger_side_is_not_checked_before_any_price_is_known() {
    let mut h = H::std();
    let o = h.order(BUY, 1, SLM).trigger(10_000).mp(-1.0).build();
    h.place_id(o);
    assert_eq!(statuses(&h.advance(T0)), vec!["TRIGGER PENDING"]);
}

#[test]
fn eleventh_order_in_one_second_is_rejected() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let mut rejected = Vec::new();
    for _ in 0..11 {
        let o = h.order(BUY, 1, LMT).price(9_000).build();
        rejected.extend(h.place(o).1);
    }
    assert_rejected(&rejected, START + 10, "Too many requests");
    // Exchange time moves on a second: accepted again.
    h.tick(T0 + SEC, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 1, LMT).price(9_000).build();
    assert!(h.place(o).1.is_empty());
}

#[test]
fn rate_window_slides_in_exchange_time() {
    let mut h = H::new(SimVenueConfig {
        max_orders_per_second: Some(3),
        ..cfg()
    });
    for k in 0..4 {
        h.tick(T0 + k * 400 * MS, 100.00, 99.95, 100.05);
        let o = h.order(BUY, 1, LMT).price(9_000).build();
        h.place_id(o); // 0, 400, 800 ms fill the window; 1200 ms sees the first leave
    }
    let o = h.order(BUY, 1, LMT).price(9_000).build();
    let (id, ups) = h.place(o); // fourth in (200 ms, 1200 ms]
    assert_rejected(&ups, id, "at most 3 orders per second");
}

#[test]
fn rate_limit_can_be_switched_off() {
    let mut h = H::new(SimVenueConfig {
        max_orders_per_second: None,
        ..cfg()
    });
    h.tick(T0, 100.00, 99.95, 100.05);
    for _ in 0..25 {
        let o = h.order(BUY, 1, LMT).price(9_000).build();
        h.place_id(o);
    }
}

#[test]
fn bad_config_and_instruments_are_refused_by_name() {
    let bad = SimVenueConfig {
        ack_latency_ns: -1,
        ..cfg()
    };
    let err = SimVenue::new(bad, &instruments()).unwrap_err();
    assert!(err.to_string().contains("ack_latency_ns"), "{err}");
    let mut twice = instruments();
    twice.push(twice[0].clone());
    let err = SimVenue::new(cfg(), &twice).unwrap_err();
    assert!(err.to_string().contains("token 1 is listed twice"), "{err}");
}

/// A paced client queued an order for later and then sends a protective
/// order ahead of it: the queued order leaves later (acknowledged then, not
/// at its old time), it no longer counts in the second it gave up, and at
/// one instant it is acknowledged after the order that took its place.
#[test]
fn a_queued_order_rescheduled_leaves_later_and_frees_its_second() {
    let mut h = H::new(SimVenueConfig {
        max_orders_per_second: Some(2),
        ..cfg()
    });
    h.tick(T0, 100.00, 99.95, 100.05);
    let mut out = Vec::new();
    let at = |h: &mut H, send: i64, tag: &str, out: &mut Vec<VenueUpdate>| {
        let o = h.order(BUY, 1, LMT).price(9_000).tag(tag).build();
        h.v.submit_at(T0, send, o, out)
    };
    at(&mut h, T0, "a", &mut out);
    at(&mut h, T0, "b", &mut out);
    let queued = at(&mut h, T0 + SEC, "c", &mut out);
    let ack = cfg().ack_latency_ns;
    // The stop takes the queued order's second, the queued order the next.
    h.v.reschedule(queued, T0 + 2 * SEC);
    let stop = at(&mut h, T0 + SEC, "stop", &mut out);
    assert!(out.is_empty(), "nothing refused: {out:?}");
    let second = at(&mut h, T0 + SEC, "d", &mut out);
    assert!(
        out.is_empty(),
        "the queued order no longer counts at 1 s: {out:?}"
    );
    assert_eq!(h.advance(T0 + ack).len(), 2, "the two sent at once");
    let ups = h.advance(T0 + SEC + ack);
    let ids: Vec<u64> = ups.iter().map(|u| u.order_id).collect();
    assert_eq!(ids, vec![stop, second], "the old acknowledgement is void");
    let ups = h.advance(T0 + 2 * SEC + ack);
    assert_eq!(
        ups.iter().map(|u| u.order_id).collect::<Vec<_>>(),
        vec![queued]
    );
    assert_eq!(statuses(&ups), vec!["OPEN"]);
    // The queued order counts at 2 s now: with one more the second is full.
    at(&mut h, T0 + 2 * SEC, "e", &mut out);
    assert!(out.is_empty());
    let refused = at(&mut h, T0 + 2 * SEC, "f", &mut out);
    assert_rejected(&out, refused, "at most 2 orders per second");
    assert_eq!(statuses(&h.advance(T0 + 2 * SEC + ack)), vec!["OPEN"]);
    // At one instant, a rescheduled order goes after those set before it.
    let mut out = Vec::new();
    let first = at(&mut h, T0 + 5 * SEC, "g", &mut out);
    let moved = at(&mut h, T0 + 5 * SEC, "h", &mut out);
    h.v.reschedule(first, T0 + 5 * SEC);
    let ups = h.advance(T0 + 5 * SEC + ack);
    assert_eq!(
        ups.iter().map(|u| u.order_id).collect::<Vec<_>>(),
        vec![moved, first]
    );
}

/// A queued order cancelled before it was sent still counts where its
/// client counts it: a reschedule moves its count (and acknowledges nothing).
#[test]
fn a_cancelled_queued_order_keeps_counting_where_its_client_moved_it() {
    let mut h = H::new(SimVenueConfig {
        max_orders_per_second: Some(2),
        ..cfg()
    });
    h.tick(T0, 100.00, 99.95, 100.05);
    let mut out = Vec::new();
    let at = |h: &mut H, send: i64, out: &mut Vec<VenueUpdate>| {
        let o = h.order(BUY, 1, LMT).price(9_000).build();
        h.v.submit_at(T0, send, o, out)
    };
    at(&mut h, T0, &mut out);
    at(&mut h, T0, &mut out);
    let queued = at(&mut h, T0 + SEC, &mut out);
    h.v.cancel(T0, queued).unwrap();
    let ack = cfg().ack_latency_ns;
    let ups = h.advance(T0 + ack);
    let cancelled: Vec<_> = ups.iter().filter(|u| u.order_id == queued).collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].status, VenueStatus::Cancelled);
    h.v.reschedule(queued, T0 + 2 * SEC);
    at(&mut h, T0 + SEC, &mut out);
    at(&mut h, T0 + SEC, &mut out);
    assert!(out.is_empty(), "1 s is free: {out:?}");
    at(&mut h, T0 + 2 * SEC, &mut out);
    assert!(out.is_empty());
    let refused = at(&mut h, T0 + 2 * SEC, &mut out);
    assert_rejected(&out, refused, "at most 2 orders per second");
    let later = h.advance(T0 + 3 * SEC);
    assert!(
        later.iter().all(|u| u.order_id != queued),
        "never acknowledged"
    );
}
