//! SimVenue order lifecycle: modify, cancel, races, snapshots and expiry.
#![allow(clippy::unwrap_used)]

mod sim_support;

use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{SimVenueConfig, VenueError, VenueModify, VenueStatus};
use rstest::rstest;
use sim_support::*;

const NO_CHANGE: VenueModify = VenueModify {
    qty: None,
    price: None,
    trigger: None,
    order_type: None,
};

/// A buy limit at 99.00 resting after its first look (ack at T0 + 50 ms).
fn resting_buy(h: &mut H) -> u64 {
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_900).build();
    let id = h.place_id(o);
    h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05);
    id
}

fn modify(h: &mut H, id: u64, m: VenueModify) -> Result<(), VenueError> {
    let now = h.now();
    h.v.modify(now, id, m)
}

#[test]
fn modify_price_takes_effect_after_latency_and_looks_again() {
    let mut h = H::std();
    let id = resting_buy(&mut h);
    let m = VenueModify {
        price: Some(rs(100.10)),
        ..NO_CHANGE
    };
    modify(&mut h, id, m).unwrap();
    assert_eq!(h.v.next_due_ns(), Some(T0 + 150 * MS));
    assert!(h.tick(T0 + 130 * MS, 100.00, 99.95, 100.05).is_empty()); // in flight
    let ups = h.tick(T0 + 200 * MS, 100.00, 99.95, 100.05);
    let seen: Vec<_> = ups
        .iter()
        .map(|u| (u.status.as_str(), u.price, u.ts_ns))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("OPEN", Some(rs(100.1)), T0 + 150 * MS),
            ("COMPLETE", Some(rs(100.1)), T0 + 200 * MS),
        ]
    );
    assert!(ups[0].modified && !ups[1].modified);
    assert_eq!(ups[1].avg_price, rs(100.05)); // marketable on its new first look: at the ask
}

#[test]
fn modify_stop_trigger() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(-1.0).build();
    let id = h.place_id(o);
    h.tick(T0 + 100 * MS, 99.50, 99.45, 99.55);
    let m = VenueModify {
        trigger: Some(rs(98.50)),
        ..NO_CHANGE
    };
    modify(&mut h, id, m).unwrap();
    let ups = h.tick(T0 + 200 * MS, 98.90, 98.85, 98.95); // below the old trigger only
    assert_eq!(statuses(&ups), vec!["TRIGGER PENDING"]);
    assert_eq!(ups[0].trigger, Some(rs(98.5)));
    let ups = h.tick(T0 + 300 * MS, 98.45, 98.40, 98.50);
    assert_eq!(statuses(&ups), vec!["OPEN", "COMPLETE"]);
}

#[test]
fn modify_trigger_pending_stop_to_market_exits_at_once() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SLM).trigger(9_900).mp(-1.0).build();
    let id = h.place_id(o);
    h.tick(T0 + 100 * MS, 99.50, 99.45, 99.55);
    let m = VenueModify {
        order_type: Some(OrderType::Market),
        ..NO_CHANGE
    };
    modify(&mut h, id, m).unwrap();
    let ups = h.tick(T0 + 200 * MS, 99.50, 99.45, 99.55);
    let seen: Vec<_> = ups
        .iter()
        .map(|u| (u.status.as_str(), u.order_type))
        .collect();
    assert_eq!(seen, vec![("OPEN", MKT), ("COMPLETE", MKT)]);
    assert_eq!(ups[1].avg_price, rs(99.40)); // 99.45 - 5 bp
    assert_eq!(ups[1].trigger, None);
}

#[test]
fn modify_before_ack_applies_after_it() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_900).build();
    let id = h.place_id(o);
    let m = VenueModify {
        qty: Some(20),
        ..NO_CHANGE
    };
    modify(&mut h, id, m).unwrap();
    let ups = h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05);
    let seen: Vec<_> = ups.iter().map(|u| (u.status.as_str(), u.qty)).collect();
    assert_eq!(seen, vec![("OPEN", 10), ("OPEN", 20)]);
}

#[rstest]
#[case(VenueModify { price: Some(rs(99.03)), ..NO_CHANGE }, "Tick size")]
#[case(VenueModify { qty: Some(0), ..NO_CHANGE }, "Invalid `quantity`")]
#[case(VenueModify { order_type: Some(OrderType::Sl), ..NO_CHANGE }, "need a trigger price")]
#[case(VenueModify { order_type: Some(OrderType::Market), ..NO_CHANGE }, "market protection")]
fn invalid_modification_is_refused_and_changes_nothing(
    #[case] m: VenueModify,
    #[case] message: &str,
) {
    let mut h = H::std();
    let id = resting_buy(&mut h);
    match modify(&mut h, id, m) {
        Err(VenueError::Refused(msg)) => assert!(msg.contains(message), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(h.advance(T0 + SEC).is_empty());
    let snap = h.v.order(id).unwrap();
    assert_eq!(
        (snap.status, snap.price, snap.qty, snap.order_type),
        (VenueStatus::Open, Some(rs(99.0)), 10, LMT)
    );
}

#[test]
fn modification_limit_and_quantity_rules() {
    let mut h = H::new(SimVenueConfig {
        max_modifications: 2,
        participation_pct: Some(50.0),
        ..cfg()
    });
    h.tick_full(FUT, T0, 24000.0, 23999.9, 24000.1, 1000, 0);
    let o = h.order(BUY, 260, LMT).price(2_400_010).token(FUT).build();
    let id = h.place_id(o);
    let ups = h.tick_full(FUT, T0 + 60 * MS, 24000.0, 23999.9, 24000.1, 1300, 0);
    assert_eq!(
        brief(ups.last().unwrap()),
        ("OPEN", 130, 2_400_010, 130, 2_400_010)
    );
    let refused = |h: &mut H, m: VenueModify| match modify(h, id, m) {
        Err(VenueError::Refused(msg)) => msg,
        other => panic!("{other:?}"),
    };
    let qty = |q| VenueModify {
        qty: Some(q),
        ..NO_CHANGE
    };
    let price = |p| VenueModify {
        price: Some(rs(p)),
        ..NO_CHANGE
    };
    assert!(refused(&mut h, qty(100)).contains("multiple of the lot size"));
    assert!(refused(&mut h, qty(65)).contains("below the filled quantity"));
    modify(&mut h, id, price(23990.0)).unwrap();
    modify(&mut h, id, qty(130)).unwrap(); // down to what is filled: the order completes
    assert!(refused(&mut h, price(23980.0)).contains("Maximum allowed order modifications (2)"));
    let ups = h.advance(T0 + 200 * MS);
    let seen: Vec<_> = ups
        .iter()
        .map(|u| (u.status.as_str(), u.qty, u.filled_qty))
        .collect();
    assert_eq!(seen, vec![("OPEN", 260, 130), ("COMPLETE", 130, 130)]);
}

#[test]
fn triggered_stop_cannot_become_a_stop_again() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(SELL, 10, SL).trigger(9_900).price(9_800).build();
    let id = h.place_id(o);
    h.tick(T0 + 100 * MS, 98.95, 97.00, 97.10); // triggers, rests as a limit at 98.00
    assert_eq!(h.v.order(id).unwrap().status, VenueStatus::Open);
    let to = |t| VenueModify {
        order_type: Some(t),
        ..NO_CHANGE
    };
    let err = modify(&mut h, id, to(SLM)).unwrap_err().to_string();
    assert!(err.contains("already triggered"), "{err}");
    let m = VenueModify {
        price: Some(rs(97.0)),
        ..to(LMT)
    };
    modify(&mut h, id, m).unwrap();
    let ups = h.tick(T0 + 200 * MS, 97.05, 97.00, 97.10);
    let done = ups.last().unwrap();
    assert_eq!(
        (done.status, done.avg_price),
        (VenueStatus::Complete, rs(97.0))
    );
}

#[test]
fn cancel_after_latency() {
    let mut h = H::std();
    let id = resting_buy(&mut h);
    h.v.cancel(h.now(), id).unwrap();
    h.v.cancel(h.now(), id).unwrap(); // a repeated cancel changes nothing
    let ups = h.advance(T0 + 150 * MS);
    assert_eq!(
        ups.iter().map(brief).collect::<Vec<_>>(),
        vec![("CANCELLED", 0, 0, 0, 0)]
    );
    assert_eq!(
        (ups[0].ts_ns, ups[0].message.clone()),
        (T0 + 150 * MS, None)
    );
    let err = h.v.cancel(h.now(), id).unwrap_err().to_string();
    assert!(
        err.contains("cannot be cancelled as it is cancelled"),
        "{err}"
    );
    assert_eq!(h.v.working_count(), 0);
}

#[test]
fn fill_wins_the_race_against_a_cancel_in_flight() {
    let mut h = H::std();
    let id = resting_buy(&mut h);
    h.v.cancel(h.now(), id).unwrap(); // effective at T0 + 150 ms
    let ups = h.tick(T0 + 120 * MS, 98.00, 97.95, 98.05); // the market came first
    assert_eq!(statuses(&ups), vec!["COMPLETE"]);
    assert!(h.tick(T0 + 200 * MS, 98.00, 97.95, 98.05).is_empty()); // the late cancel finds it filled
    let err = h.v.cancel(h.now(), id).unwrap_err().to_string();
    assert!(err.contains("completed"), "{err}");
    let m = VenueModify {
        price: Some(rs(90.0)),
        ..NO_CHANGE
    };
    let err = modify(&mut h, id, m).unwrap_err().to_string();
    assert!(
        err.contains("cannot be modified as it is completed"),
        "{err}"
    );
}

#[test]
fn unknown_order_ids_are_refused() {
    let mut h = H::std();
    assert_eq!(h.v.cancel(T0, 42), Err(VenueError::UnknownOrder(42)));
    assert_eq!(h.v.cancel(T0, START), Err(VenueError::UnknownOrder(START)));
    assert_eq!(
        modify(&mut h, 42, NO_CHANGE),
        Err(VenueError::UnknownOrder(42))
    );
    assert!(h.v.order(START).is_none());
}

#[test]
fn cancel_partially_filled_order_keeps_its_fills() {
    let mut h = H::new(SimVenueConfig {
        participation_pct: Some(10.0),
        ..cfg()
    });
    h.tick_full(EQ, T0, 100.00, 99.95, 100.05, 1000, 0);
    let o = h.order(BUY, 100, LMT).price(10_010).build();
    let id = h.place_id(o);
    h.tick_full(EQ, T0 + 60 * MS, 100.05, 100.00, 100.05, 1300, 0); // 30 filled
    h.v.cancel(h.now(), id).unwrap();
    let ups = h.advance(T0 + 200 * MS);
    let u = ups.last().unwrap();
    assert_eq!(
        (u.status, u.filled_qty, u.qty - u.filled_qty),
        (VenueStatus::Cancelled, 30, 70)
    );
    assert_eq!(u.filled_value, 30 * 10_005);
}

#[test]
fn order_snapshot_before_and_after_the_ack() {
    let mut h = H::std();
    h.tick(T0, 100.00, 99.95, 100.05);
    let o = h.order(BUY, 10, LMT).price(9_900).tag("abc123EN").build();
    let id = h.place_id(o);
    let snap = h.v.order(id).unwrap();
    assert_eq!(
        (snap.status, snap.status.as_str()),
        (VenueStatus::Pending, "OPEN PENDING")
    );
    assert_eq!((snap.qty, snap.price, snap.ts_ns), (10, Some(rs(99.0)), T0));
    assert_eq!(h.v.working_count(), 1);
    h.tick(T0 + 100 * MS, 100.00, 99.95, 100.05);
    assert_eq!(h.v.order(id).unwrap().status, VenueStatus::Open);
    assert_eq!(h.v.order_count(), 1);
}

#[test]
fn expire_open_orders_cancels_what_is_left() {
    let mut h = H::std();
    let id = resting_buy(&mut h);
    let o = h.order(BUY, 1, LMT).price(9_000).build();
    let pending = h.place_id(o); // not yet acknowledged
    let mut out = Vec::new();
    h.v.expire_open_orders(T0 + 6 * 3600 * SEC, &mut out);
    let seen: Vec<_> = out.iter().map(|u| (u.order_id, u.status)).collect();
    assert_eq!(
        seen,
        vec![
            (id, VenueStatus::Cancelled),
            (pending, VenueStatus::Cancelled)
        ]
    );
    assert!(out[0].message.as_deref().unwrap().contains("expired"));
    assert!(out.iter().all(|u| u.ts_ns == T0 + 6 * 3600 * SEC));
    assert_eq!(h.v.working_count(), 0);
    assert!(h.advance(T0 + 7 * 3600 * SEC).is_empty()); // the pending ack is a no-op now
}
