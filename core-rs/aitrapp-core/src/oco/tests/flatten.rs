//! The kill switch: a working SL-M stop becomes the market exit by one
//! modification, the targets go once it is answered, and every way the
//! conversion cannot be made or does not work falls back to cancel + exit.

use super::*;

const CONVERT: Event = Event::Flatten { convert_stop: true };

fn ack(h: &mut H, tag: OrderTag) -> Transition {
    h.ev(Event::ChildAck { tag })
}

/// Long 10 filled at 2500.00, stop and target acknowledged.
fn open_acked(spec: BracketSpec) -> H {
    let (mut h, _) = H::open(spec);
    h.entry(10, true);
    ack(&mut h, OrderTag::Stop);
    ack(&mut h, OrderTag::Tp);
    h
}

fn to_market(t: &Transition) -> Vec<(OrderTag, u32, u64)> {
    modifies(t)
        .iter()
        .filter(|m| m.order_type == Some(OrderType::Market))
        .map(|m| (m.tag, m.seq, m.qty))
        .collect()
}

fn exits(t: &Transition) -> Vec<(u64, Option<ExitReason>)> {
    t.commands
        .iter()
        .filter_map(|c| match c {
            Command::ExitAtMarket(o) => Some((o.qty, o.reason)),
            _ => None,
        })
        .collect()
}

fn modify_ack(h: &mut H, seq: u32) -> Transition {
    h.ev(Event::ModifyAck {
        tag: OrderTag::Stop,
        seq,
    })
}

#[test]
fn the_stop_becomes_the_exit_and_the_target_goes_after_the_answer() {
    let mut h = open_acked(long());
    let t = h.ev(CONVERT);
    assert_eq!(t.to, State::Closing);
    // Exits first: one modification, nothing cancelled, nothing placed.
    assert_eq!(to_market(&t), vec![(OrderTag::Stop, 1, 10)]);
    let m = modifies(&t)[0];
    assert_eq!((m.price, m.trigger), (None, None));
    assert!(cancels(&t).is_empty() && places(&t).is_empty());
    assert!(matches!(
        h.b.stop_conversion(),
        StopToMarket::Asked { seq: 1, .. }
    ));
    // Then clean-up, once the venue took it.
    let t = modify_ack(&mut h, 1);
    assert_eq!(cancels(&t), vec![OrderTag::Tp]);
    assert!(places(&t).is_empty());
    let stop = h.leg(OrderTag::Stop);
    assert_eq!((stop.order_type, stop.trigger), (OrderType::Market, None));
    assert!(matches!(
        h.b.stop_conversion(),
        StopToMarket::Converted { .. }
    ));
    h.cancelled(OrderTag::Tp, 0, 0);
    // The converted stop's fill is the exit (booked for the flatten).
    let t = h.child(OrderTag::Stop, 10, 249_900, true);
    assert!(places(&t).is_empty(), "no second exit");
    assert_eq!(t.fills[0].reason, Some(ExitReason::Flatten));
    assert_eq!(t.to, State::Closed);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Flatten));
    assert_eq!(h.b.realized_pnl_paise(), Some(-10 * 100));
}

#[test]
fn a_short_converts_the_same_way() {
    let mut h = open_acked(short());
    let t = h.ev(CONVERT);
    assert_eq!(to_market(&t), vec![(OrderTag::Stop, 1, 10)]);
    assert_eq!(cancels(&modify_ack(&mut h, 1)), vec![OrderTag::Tp]);
    h.cancelled(OrderTag::Tp, 0, 0);
    assert_eq!(h.child(OrderTag::Stop, 10, 250_100, true).to, State::Closed);
}

#[test]
fn an_entering_bracket_cancels_its_entry_at_once_and_exits_a_late_fill() {
    let (mut h, _) = H::open(long());
    h.entry(4, false);
    ack(&mut h, OrderTag::Stop);
    ack(&mut h, OrderTag::Tp);
    let t = h.ev(CONVERT);
    // The entry's cancel goes with the exit, in the first wave.
    assert_eq!(to_market(&t), vec![(OrderTag::Stop, 1, 4)]);
    assert_eq!(cancels(&t), vec![OrderTag::Entry]);
    // The entry filled 2 more before its cancel landed: the stop does not
    // cover them, so they exit at market now.
    let t = h.ev(Event::EntryCancelled(Fill::new(6, px(250_000))));
    assert_eq!(exits(&t), vec![(2, Some(ExitReason::Flatten))]);
    assert!(cancels(&t).is_empty(), "the target still waits");
    assert_eq!(cancels(&modify_ack(&mut h, 1)), vec![OrderTag::Tp]);
    h.cancelled(OrderTag::Tp, 0, 0);
    h.child(OrderTag::Exit, 2, 249_950, true);
    assert_eq!(h.child(OrderTag::Stop, 4, 249_950, true).to, State::Closed);
    assert_eq!(h.b.net_qty(), 0);
}

#[test]
fn a_partly_filled_stop_converts_its_whole_order() {
    let mut h = open_acked(long());
    h.child(OrderTag::Stop, 3, 248_000, false);
    // The target shrank to the open 7 (acked), so the stop covers exactly 7.
    h.ev(Event::ModifyAck {
        tag: OrderTag::Tp,
        seq: 1,
    });
    let t = h.ev(CONVERT);
    // Kite's modify takes the total quantity, filled part included.
    assert_eq!(to_market(&t), vec![(OrderTag::Stop, 1, 10)]);
    modify_ack(&mut h, 1);
    h.cancelled(OrderTag::Tp, 0, 0);
    let t = h.child(OrderTag::Stop, 10, 248_000, true);
    assert!(places(&t).is_empty());
    assert_eq!(t.to, State::Closed);
}

#[test]
fn a_refused_conversion_cancels_and_exits() {
    let mut h = open_acked(long());
    h.ev(CONVERT);
    let t = h.ev(Event::ModifyRejected {
        tag: OrderTag::Stop,
        seq: 1,
        reason: "Maximum allowed order modifications exceeded".into(),
    });
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopModifyRejected)]
    );
    let mut c = cancels(&t);
    c.sort_by_key(ToString::to_string);
    assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
    assert!(
        places(&t).is_empty(),
        "the stop covers until its cancel is confirmed"
    );
    assert_eq!(h.b.stop_conversion(), StopToMarket::Dropped);
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Flatten))]);
    h.cancelled(OrderTag::Tp, 0, 0);
    assert_eq!(h.child(OrderTag::Exit, 10, 249_900, true).to, State::Closed);
}

#[test]
fn stops_that_cannot_be_converted_are_cancelled_and_exited() {
    let cancel_both = |h: &mut H| {
        let t = h.ev(CONVERT);
        assert!(to_market(&t).is_empty(), "{t:?}");
        let mut c = cancels(&t);
        c.sort_by_key(ToString::to_string);
        assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
        assert_eq!(h.b.stop_conversion(), StopToMarket::No);
    };
    // A stop-limit has no market protection: never made MARKET.
    let mut sl = long();
    sl.stop_kind = StopKind::Sl { buffer_ticks: 2 };
    cancel_both(&mut open_acked(sl));
    // No modification left.
    let mut worn = long();
    worn.max_modifications = 1;
    let mut h = open_acked(worn);
    h.child(OrderTag::Tp, 2, 254_000, false);
    let resize = h.ev(Event::ModifyAck {
        tag: OrderTag::Stop,
        seq: 1,
    });
    assert!(resize.changed);
    assert_eq!(h.leg(OrderTag::Stop).modifications, 1);
    cancel_both(&mut h);
    // A modification still in flight (a resize after a partial target fill).
    let mut h = open_acked(long());
    h.child(OrderTag::Tp, 2, 254_000, false);
    assert!(!h.leg(OrderTag::Stop).pending.is_empty());
    cancel_both(&mut h);
}

#[test]
fn a_stop_not_yet_acknowledged_converts_too() {
    // Kite's stream may never report TRIGGER PENDING: the modification
    // queues behind the placement at the venue.
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    let t = h.ev(CONVERT);
    assert_eq!(to_market(&t), vec![(OrderTag::Stop, 1, 10)]);
    // It turns out rejected: the position exits at market, the target goes.
    let t = h.ev(Event::ChildRejected {
        tag: OrderTag::Stop,
        reason: "trigger price".into(),
    });
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Flatten))]);
    assert_eq!(cancels(&t), vec![OrderTag::Tp]);
}

#[test]
fn without_conversion_flatten_cancels_everything() {
    let mut h = open_acked(long());
    let t = h.ev(Event::Flatten {
        convert_stop: false,
    });
    assert!(modifies(&t).is_empty());
    assert_eq!(cancels(&t), vec![OrderTag::Stop, OrderTag::Tp]);
}

#[test]
fn square_off_and_time_stop_do_not_convert() {
    let mut h = open_acked(long());
    // 09:30 IST + 5 h 50 min = 15:20 IST.
    let t = h.at(5 * 60 * MIN + 50 * MIN);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Eod));
    assert!(modifies(&t).is_empty());
    assert_eq!(cancels(&t), vec![OrderTag::Stop, OrderTag::Tp]);
    let mut timed = long();
    timed.time_stop_ns = Some(30 * MIN);
    let mut h = open_acked(timed);
    let t = h.at(30 * MIN);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Time));
    assert!(modifies(&t).is_empty());
}

#[test]
fn a_converted_stop_that_hangs_is_cancelled_then_exited() {
    let mut h = open_acked(long());
    let t0 = h.now;
    h.ev(CONVERT);
    modify_ack(&mut h, 1);
    h.cancelled(OrderTag::Tp, 0, 0);
    // The venue reports the MARKET order working (OPEN): it rests unfilled.
    h.ev(Event::ChildTriggered {
        tag: OrderTag::Stop,
    });
    let timeout = h.b.spec().stop_fill_timeout_ns;
    assert_eq!(h.b.next_deadline_ns(), Some(t0 + timeout));
    let t = h.at(timeout);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopFillTimeout)]
    );
    assert_eq!(cancels(&t), vec![OrderTag::Stop]);
    assert!(places(&t).is_empty(), "it may still fill until cancelled");
    assert_eq!(h.b.stop_conversion(), StopToMarket::Dropped);
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Flatten))]);
    assert_eq!(h.child(OrderTag::Exit, 10, 249_900, true).to, State::Closed);
}

#[test]
fn an_unanswered_conversion_is_given_up_after_the_timeout() {
    let mut h = open_acked(long());
    let t0 = h.now;
    h.ev(CONVERT);
    let timeout = h.b.spec().stop_fill_timeout_ns;
    assert_eq!(h.b.next_deadline_ns(), Some(t0 + timeout));
    let t = h.at(timeout);
    let mut c = cancels(&t);
    c.sort_by_key(ToString::to_string);
    assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
    // A second timeout later, still nothing: exit without waiting (CRITICAL).
    let t = h.at(timeout);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Critical, AlertCode::StopUnfilled)]
    );
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Flatten))]);
}

#[test]
fn a_target_filling_during_the_conversion_drops_it() {
    let mut h = open_acked(long());
    h.ev(CONVERT);
    // The target filled 4 before anything was cancelled: the stop, turning
    // MARKET for 10, would now exit more than the 6 open.
    let t = h.child(OrderTag::Tp, 4, 254_000, false);
    assert_eq!(h.b.stop_conversion(), StopToMarket::Dropped);
    let mut c = cancels(&t);
    c.sort_by_key(ToString::to_string);
    assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
    assert!(places(&t).is_empty());
    // The modification's late ack changes nothing about that.
    let t = modify_ack(&mut h, 1);
    assert!(cancels(&t).is_empty() && places(&t).is_empty());
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(exits(&t), vec![(6, Some(ExitReason::Flatten))]);
    h.cancelled(OrderTag::Tp, 4, 254_000);
    assert_eq!(h.child(OrderTag::Exit, 6, 249_900, true).to, State::Closed);
}

#[test]
fn a_stop_filling_before_its_answer_needs_nothing_more() {
    let mut h = open_acked(long());
    h.ev(CONVERT);
    // Triggered and filled as a stop before the modification arrived.
    let t = h.child(OrderTag::Stop, 10, 248_000, true);
    assert_eq!(cancels(&t), vec![OrderTag::Tp], "nothing to wait for now");
    assert!(places(&t).is_empty());
    let t = h.ev(Event::ModifyRejected {
        tag: OrderTag::Stop,
        seq: 1,
        reason: "order is COMPLETE".into(),
    });
    assert!(places(&t).is_empty() && cancels(&t).is_empty());
    assert_eq!(h.cancelled(OrderTag::Tp, 0, 0).to, State::Closed);
}

#[test]
fn a_stop_fill_during_the_conversion_releases_the_target() {
    let mut h = open_acked(long());
    h.ev(CONVERT);
    // The stop (triggered) filled 3 before the modification arrived: the
    // target, still working 10, could now exit more than the 7 open, so it
    // is cancelled without waiting; the stop stays the exit for the rest.
    let t = h.child(OrderTag::Stop, 3, 248_000, false);
    assert_eq!(cancels(&t), vec![OrderTag::Tp]);
    assert!(matches!(h.b.stop_conversion(), StopToMarket::Asked { .. }));
    assert!(places(&t).is_empty());
    modify_ack(&mut h, 1);
    h.cancelled(OrderTag::Tp, 0, 0);
    assert_eq!(h.child(OrderTag::Stop, 10, 248_000, true).to, State::Closed);
}
