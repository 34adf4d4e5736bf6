//! Stops the market has outrun: gaps through the trigger before a stop is
//! sent, the triggered-stop watchdog, and the data that classifies races.

use super::*;
use rstest::rstest;

fn price(h: &mut H, ltp: i64) -> Transition {
    h.ev(Event::PriceUpdate {
        ltp: px(ltp),
        atr: None,
    })
}

fn spec(side: Side) -> BracketSpec {
    match side {
        Side::Buy => long(),
        Side::Sell => short(),
    }
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

fn stop_placed(t: &Transition) -> bool {
    places(t).iter().any(|o| o.tag == OrderTag::Stop)
}

/// Long: stop 2480.00 (a sell stop needs a trigger below the last price).
/// Short: stop 2520.00 (a buy stop needs a trigger above it). Equal is
/// through: Kite rejects a trigger at the last price.
#[rstest]
#[case::long_below(Side::Buy, 247_900, true)]
#[case::long_at(Side::Buy, 248_000, true)]
#[case::long_a_tick_above(Side::Buy, 248_005, false)]
#[case::short_above(Side::Sell, 252_100, true)]
#[case::short_at(Side::Sell, 252_000, true)]
#[case::short_a_tick_below(Side::Sell, 251_995, false)]
fn entry_fill_with_the_market_through_the_stop_exits_at_market(
    #[case] side: Side,
    #[case] ltp: i64,
    #[case] through: bool,
) {
    let (mut h, _) = H::open(spec(side));
    price(&mut h, ltp);
    let t = h.entry(10, true);
    if !through {
        assert!(stop_placed(&t), "{t:?}");
        assert_eq!(t.to, State::Open);
        assert!(alerts(&t).is_empty());
        return;
    }
    assert!(
        !stop_placed(&t),
        "a stop through the market was sent: {t:?}"
    );
    assert!(places(&t).iter().all(|o| o.role == Role::Exit), "{t:?}");
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::StopGapped))]);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopGapped)],
        "a gap is a WARNING, never CRITICAL"
    );
    assert_eq!(t.to, State::Closing);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::StopGapped));
    let exit_side = side.opposite();
    assert_eq!(h.leg(OrderTag::Exit).side, exit_side);
    let t = h.child(OrderTag::Exit, 10, ltp, true);
    assert_eq!(t.to, State::Closed);
    assert_eq!(t.fills[0].reason, Some(ExitReason::StopGapped));
    assert_eq!(h.b.net_qty(), 0);
}

#[test]
fn the_last_price_seen_before_the_entry_counts_in_every_state() {
    let (mut h, _) = H::open(long());
    // Observed while PENDING without counting as a change of the bracket.
    let t = price(&mut h, 247_000);
    assert!(!t.changed && t.commands.is_empty());
    assert_eq!(h.b.last_price(), Some(px(247_000)));
    // The market came back above the stop before the entry filled.
    price(&mut h, 249_000);
    let t = h.entry(10, true);
    assert!(stop_placed(&t));
}

#[rstest]
#[case::long(Side::Buy, 247_500)]
#[case::short(Side::Sell, 252_500)]
fn partial_entry_fill_with_a_gapped_stop_cancels_the_rest(#[case] side: Side, #[case] ltp: i64) {
    let (mut h, _) = H::open(spec(side));
    h.ev(Event::EntryAck);
    price(&mut h, ltp);
    let t = h.entry(4, false);
    assert!(!stop_placed(&t));
    assert_eq!(cancels(&t), vec![OrderTag::Entry]);
    assert_eq!(exits(&t), vec![(4, Some(ExitReason::StopGapped))]);
    assert_eq!(t.to, State::Closing);
    // The rest of the entry fills before its cancel lands: exited too, no stop.
    let t = h.entry(10, true);
    assert!(!stop_placed(&t));
    assert_eq!(exits(&t), vec![(6, Some(ExitReason::StopGapped))]);
    h.child(OrderTag::Exit, 4, ltp, true);
    let t = h.child(OrderTag::ExitN(1), 6, ltp, true);
    assert_eq!(t.to, State::Closed);
}

/// A stop that works already must not be resized through the market either:
/// the bracket closes, the working stop keeps covering its part until its
/// cancel is confirmed, and only the uncovered part exits at once.
#[test]
fn growing_a_stop_the_market_has_passed_exits_the_new_part() {
    let (mut h, _) = H::open(long());
    price(&mut h, 250_000);
    h.entry(4, false);
    h.ev(Event::ChildAck {
        tag: OrderTag::Stop,
    });
    price(&mut h, 247_900);
    let t = h.entry(7, false);
    assert!(
        modifies(&t).is_empty(),
        "no modify through the market: {t:?}"
    );
    assert_eq!(alerts(&t), vec![(Severity::Warning, AlertCode::StopGapped)]);
    assert_eq!(t.to, State::Closing);
    let c = cancels(&t);
    assert!(
        c.contains(&OrderTag::Stop) && c.contains(&OrderTag::Entry),
        "{c:?}"
    );
    // 4 stay covered by the stop until its cancel is confirmed; 3 exit now.
    assert_eq!(exits(&t), vec![(3, Some(ExitReason::StopGapped))]);
    // The stop had triggered and fills before the cancel lands: no double exit.
    let t = h.child(OrderTag::Stop, 4, 247_900, true);
    assert!(exits(&t).is_empty(), "{t:?}");
    h.cancelled(OrderTag::Tp, 0, 0);
    h.ev(Event::EntryCancelled(Fill::new(7, px(250_000))));
    let t = h.child(OrderTag::Exit, 3, 247_800, true);
    assert_eq!(t.to, State::Closed);
}

#[test]
fn shrinking_a_stop_the_market_has_passed_waits_for_its_cancel() {
    let (mut h, _) = H::open(long());
    price(&mut h, 250_000);
    h.entry(10, true);
    h.ev(Event::ChildAck {
        tag: OrderTag::Stop,
    });
    price(&mut h, 247_900);
    let t = h.child(OrderTag::Tp, 3, 254_000, false);
    assert!(
        modifies(&t).is_empty(),
        "no modify through the market: {t:?}"
    );
    assert_eq!(alerts(&t), vec![(Severity::Warning, AlertCode::StopGapped)]);
    assert_eq!(t.to, State::Closing);
    // The stop (10) covers the 7 still open: nothing exits before its cancel lands.
    assert!(exits(&t).is_empty(), "{t:?}");
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(exits(&t), vec![(7, Some(ExitReason::StopGapped))]);
}

#[test]
fn breakeven_move_through_the_market_exits() {
    let mut s = long();
    s.scale_out = Some(ScaleOut::default());
    let (mut h, _) = H::open(s);
    price(&mut h, 252_400);
    h.entry(10, true);
    h.ev(Event::ChildAck {
        tag: OrderTag::Stop,
    });
    // TP1 fills, but by the time we hear of it the market is back below the
    // entry: moving the stop to breakeven (2500.00) would be rejected.
    price(&mut h, 249_900);
    let t = h.child(OrderTag::TpN(1), 5, 252_400, true);
    assert!(
        modifies(&t).iter().all(|m| m.tag != OrderTag::Stop),
        "{t:?}"
    );
    assert_eq!(alerts(&t), vec![(Severity::Warning, AlertCode::StopGapped)]);
    assert_eq!(t.to, State::Closing);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::StopGapped));
}

// ───────────── the triggered-stop watchdog ─────────────

/// Long 10 filled at T0, stop and target working, the stop triggered at T0+1s.
fn triggered() -> H {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::ChildAck {
        tag: OrderTag::Stop,
    });
    h.ev(Event::ChildAck { tag: OrderTag::Tp });
    h.now += SEC;
    let t = h.ev(Event::ChildTriggered {
        tag: OrderTag::Stop,
    });
    assert!(t.changed && t.commands.is_empty(), "{t:?}");
    assert_eq!(h.leg(OrderTag::Stop).triggered_ns, Some(T0 + SEC));
    h
}

#[test]
fn triggered_stop_without_fills_warns_then_goes_critical_on_time_alone() {
    let mut h = triggered();
    let t1 = T0 + 6 * SEC;
    assert_eq!(h.b.next_deadline_ns(), Some(t1));
    // Nothing before the deadline.
    let t = h.at(5 * SEC - 1);
    assert!(!t.changed, "{t:?}");
    let t = h.at(1);
    assert_eq!(h.now, t1);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopFillTimeout)]
    );
    let mut c = cancels(&t);
    c.sort_by_key(|t| t.to_string());
    assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
    // The stop covers until its cancel is confirmed: no exit yet.
    assert!(exits(&t).is_empty(), "{t:?}");
    assert_eq!(t.to, State::Closing);
    assert_eq!(h.b.watchdog_escalations(), 1);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Stop));
    let t2 = t1 + 5 * SEC;
    assert_eq!(h.b.next_deadline_ns(), Some(t2));
    // The venue answers nothing at all; no tick arrives.
    h.ev(Event::ChildCancelled {
        tag: OrderTag::Tp,
        fill: Fill::NONE,
    });
    let t = h.at(t2 - h.now);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Critical, AlertCode::StopUnfilled)]
    );
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Stop))]);
    assert_eq!(h.b.watchdog_escalations(), 2);
    assert!(h.leg(OrderTag::Stop).abandoned);
    assert_eq!(h.b.next_deadline_ns(), None, "nothing left to escalate");
    // The stop's cancel is confirmed at last; the exit fills: flat, closed.
    h.cancelled(OrderTag::Stop, 0, 0);
    let t = h.child(OrderTag::Exit, 10, 247_000, true);
    assert_eq!(t.to, State::Closed);
}

#[test]
fn confirmed_cancel_exits_at_once_and_the_second_timeout_adds_no_exit() {
    let mut h = triggered();
    h.at(5 * SEC);
    let t = h.cancelled(OrderTag::Stop, 3, 247_900);
    assert_eq!(exits(&t), vec![(7, Some(ExitReason::Stop))]);
    // The exit has not filled a timeout later: CRITICAL, but it still covers.
    let t = h.at(5 * SEC);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Critical, AlertCode::StopUnfilled)]
    );
    assert!(exits(&t).is_empty(), "{t:?}");
    h.ev(Event::ChildCancelled {
        tag: OrderTag::Tp,
        fill: Fill::NONE,
    });
    let t = h.child(OrderTag::Exit, 7, 247_000, true);
    assert_eq!(t.to, State::Closed);
}

#[test]
fn an_abandoned_stop_that_fills_after_all_is_bought_back() {
    let mut h = triggered();
    h.at(5 * SEC);
    h.at(5 * SEC);
    h.cancelled(OrderTag::Tp, 0, 0);
    h.child(OrderTag::Exit, 10, 247_000, true);
    let t = h.child(OrderTag::Stop, 10, 246_500, true);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Critical, AlertCode::DoubleFill)]
    );
    let p = places(&t);
    assert_eq!((p[0].role, p[0].qty), (Role::Corrective, 10));
    let t = h.child(OrderTag::ExitN(1), 10, 246_600, true);
    assert_eq!(t.to, State::Closed);
    assert_eq!(h.b.net_qty(), 0);
}

#[test]
fn a_stop_that_fills_in_time_disarms_the_watchdog() {
    let mut h = triggered();
    let t = h.child(OrderTag::Stop, 10, 247_900, true);
    assert_eq!(t.to, State::Closing);
    h.cancelled(OrderTag::Tp, 0, 0);
    assert!(h.b.is_terminal());
    assert_eq!(h.b.next_deadline_ns(), None);
    assert_eq!(h.b.watchdog_escalations(), 0);
}

#[test]
fn a_resting_partial_stop_fill_arms_the_watchdog() {
    // An SL (stop-limit) stop that filled 4 and rests beyond its limit.
    let mut s = long();
    s.stop_kind = StopKind::Sl { buffer_ticks: 2 };
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    h.now += 2 * SEC;
    h.child(OrderTag::Stop, 4, 247_990, false);
    assert_eq!(h.leg(OrderTag::Stop).triggered_ns, Some(T0 + 2 * SEC));
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 7 * SEC));
    let t = h.at(5 * SEC);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopFillTimeout)]
    );
    assert!(cancels(&t).contains(&OrderTag::Stop));
}

#[test]
fn duplicate_trigger_reports_keep_the_first_time() {
    let mut h = triggered();
    h.now += 3 * SEC;
    let again = h.b.handle(
        h.now,
        &Event::ChildTriggered {
            tag: OrderTag::Stop,
        },
    );
    let again = again.unwrap();
    assert!(!again.changed && again.commands.is_empty());
    assert_eq!(h.leg(OrderTag::Stop).triggered_ns, Some(T0 + SEC));
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 6 * SEC));
}

#[test]
fn a_trigger_reported_while_closing_is_watched_too() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::Flatten {
        convert_stop: false,
    });
    h.ev(Event::ChildTriggered {
        tag: OrderTag::Stop,
    });
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 5 * SEC));
    let t = h.at(5 * SEC);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopFillTimeout)]
    );
    // Its cancel went out with the flatten; nothing more to send yet.
    assert!(t.commands.iter().all(|c| matches!(c, Command::Alert(_))));
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Flatten));
    let t = h.at(5 * SEC);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Critical, AlertCode::StopUnfilled)]
    );
    assert_eq!(exits(&t), vec![(10, Some(ExitReason::Flatten))]);
}

#[rstest]
#[case::one_second(SEC)]
#[case::half_a_minute(30 * SEC)]
fn the_timeout_comes_from_the_spec(#[case] timeout: i64) {
    let mut s = long();
    s.stop_fill_timeout_ns = timeout;
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    h.ev(Event::ChildTriggered {
        tag: OrderTag::Stop,
    });
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + timeout));
    assert!(!h.at(timeout - 1).changed);
    assert_eq!(h.at(1).to, State::Closing);
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 2 * timeout));
}

// ───────────── deadlines ─────────────

#[test]
fn next_deadline_names_every_timer() {
    let mut s = long();
    s.time_stop_ns = Some(10 * MIN);
    let (mut h, _) = H::open(s);
    // PENDING: the entry timeout (5 min) before the square-off.
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 5 * MIN));
    h.now += MIN;
    h.entry(10, true);
    // OPEN: the time stop, 10 min after the first fill.
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 11 * MIN));
    h.now += SEC;
    h.ev(Event::ChildTriggered {
        tag: OrderTag::Stop,
    });
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + MIN + 6 * SEC));
    let (h2, _) = H::open(long());
    assert_eq!(h2.b.next_deadline_ns(), Some(T0 + 5 * MIN));
}

#[test]
fn a_passed_exit_retry_time_is_no_longer_a_deadline() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::ChildRejected {
        tag: OrderTag::Stop,
        reason: "x".into(),
    });
    // Three rejected exits in a row start the backoff.
    for tag in [OrderTag::Exit, OrderTag::ExitN(1), OrderTag::ExitN(2)] {
        h.ev(Event::ChildRejected {
            tag,
            reason: "circuit".into(),
        });
    }
    assert_eq!(h.b.next_deadline_ns(), Some(T0 + 5 * SEC));
    let t = h.at(5 * SEC);
    assert_eq!(places(&t)[0].tag, OrderTag::ExitN(3));
    // After a TimeAdvance at t the next deadline is later than t (or none):
    // an event loop firing timers never spins on a past one.
    assert!(h.b.next_deadline_ns().map_or(true, |d| d > h.now));
}

// ───────────── races ─────────────

#[test]
fn the_cancel_time_classifies_a_double_exit() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.now += SEC;
    let t1 = h.now;
    h.child(OrderTag::Tp, 10, 254_000, true);
    assert_eq!(h.b.cancel_sent_at(OrderTag::Stop), Some(t1));
    assert_eq!(h.b.cancel_sent_at(OrderTag::Tp), None);
    let latency = 5_000_000;
    // Filled 1 ms after the cancel left: it could not have arrived yet.
    assert!(h
        .b
        .fill_raced_cancel(OrderTag::Stop, t1 + 1_000_000, latency));
    // Filled 10 ms after: the cancel should have been there first.
    assert!(!h
        .b
        .fill_raced_cancel(OrderTag::Stop, t1 + 10_000_000, latency));
    // No cancel was ever sent for the target: any fill of it is a race.
    assert!(h.b.fill_raced_cancel(OrderTag::Tp, t1, latency));
    // A later cancel (revived order) does not move the first time.
    h.now += SEC;
    h.ev(Event::ChildCancelled {
        tag: OrderTag::Stop,
        fill: Fill::NONE,
    });
    assert_eq!(h.b.cancel_sent_at(OrderTag::Stop), Some(t1));
}

#[test]
fn new_names_serialise_as_they_print() {
    let r = ExitReason::StopGapped;
    assert_eq!(r.as_str(), "STOP_GAPPED");
    assert_eq!(serde_json::to_string(&r).unwrap(), "\"STOP_GAPPED\"");
    for (c, s) in [
        (AlertCode::StopGapped, "STOP_GAPPED"),
        (AlertCode::StopFillTimeout, "STOP_FILL_TIMEOUT"),
        (AlertCode::StopUnfilled, "STOP_UNFILLED"),
    ] {
        assert_eq!(c.as_str(), s);
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
    }
}
