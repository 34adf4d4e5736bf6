//! The kernel on the external venue (Kite driven from Python): commands out,
//! broker reports in, held to the OCO rules. The broker is played by hand;
//! ticks are the seeded synthetic gappy day.

#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)]

mod common;

use aitrapp_core::kernel::{AdoptedBracket, BracketTemplate, EventLog, Kernel};
use aitrapp_core::oco::{AdoptedChild, BracketSpec, EntryKind};
use aitrapp_core::venue::{
    ExternalUpdate, ExternalVenue, ExternalVenueConfig, VenueCommand, VenueError, VenueModify,
    VenueStatus,
};
use aitrapp_core::{Engine, OrderTag, Price, Side};
use common::{ema_config, gappy_day, instrument, Cols};

const MARKET: &str = r#"{"entry_type": "MARKET"}"#;
const MS: i64 = 1_000_000;

fn kernel(template: &str) -> Kernel<ExternalVenue> {
    let venue = ExternalVenue::new(ExternalVenueConfig::default()).expect("venue");
    let engine = Engine::new(ema_config(), vec![instrument(101)]).expect("engine");
    Kernel::new(
        engine,
        venue,
        BracketTemplate::from_json(template).expect("template"),
    )
    .expect("kernel")
}

/// Feeds ticks until the first order goes out; returns its time and command.
fn first_entry(k: &mut Kernel<ExternalVenue>, cols: &Cols) -> (i64, u64, String, u64) {
    for i in 0..cols.len() {
        k.run(&cols.view(i, i + 1)).expect("tick");
        let cmds = k.take_commands();
        if let Some(VenueCommand::Place { order_id, order }) = cmds.first() {
            assert_eq!(cmds.len(), 1, "one entry at a time: {cmds:?}");
            assert!(order.client_order_id.ends_with(":ENTRY"));
            assert!(!order.tag.is_empty() && order.tag.len() <= 20);
            return (
                cols.ts_ns[i],
                *order_id,
                order.client_order_id.clone(),
                order.qty,
            );
        }
    }
    panic!("the day never traded");
}

fn report(cid: &str, ts: i64, status: VenueStatus, filled: u64, avg: i64) -> ExternalUpdate {
    ExternalUpdate {
        client_order_id: cid.to_string(),
        ts_ns: ts,
        status,
        filled_qty: filled,
        avg_price: Price::from_paise(avg),
        message: None,
    }
}

fn places(cmds: &[VenueCommand]) -> Vec<(String, u64)> {
    cmds.iter()
        .filter_map(|c| match c {
            VenueCommand::Place { order_id, order } => {
                Some((order.client_order_id.clone(), *order_id))
            }
            _ => None,
        })
        .collect()
}

fn find(cmds: &[(String, u64)], suffix: &str) -> (String, u64) {
    cmds.iter()
        .find(|(c, _)| c.ends_with(suffix))
        .cloned()
        .unwrap_or_else(|| panic!("no {suffix} in {cmds:?}"))
}

struct Open {
    k: Kernel<ExternalVenue>,
    t: i64,
    qty: u64,
    stop: (String, u64),
    tp: (String, u64),
    log: EventLog,
}

/// A bracket whose entry filled: stop and target were queued.
fn open_bracket() -> Open {
    let cols = gappy_day(&[101], 200, 0.1, 7);
    let mut k = kernel(MARKET);
    let (t, _, entry, qty) = first_entry(&mut k, &cols);
    let mut log = k.take_log();
    assert!(k
        .on_order_update(report(&entry, t + MS, VenueStatus::Open, 0, 0))
        .unwrap());
    assert!(k.take_commands().is_empty(), "no child before the fill");
    assert!(k
        .on_order_update(report(
            &entry,
            t + 2 * MS,
            VenueStatus::Complete,
            qty,
            250_000
        ))
        .unwrap());
    let placed = places(&k.take_commands());
    log.append(k.take_log());
    Open {
        stop: find(&placed, ":STOP"),
        tp: find(&placed, ":TP"),
        k,
        t: t + 2 * MS,
        qty,
        log,
    }
}

#[test]
fn a_filled_entry_queues_stop_and_target_with_their_rows() {
    let o = open_bracket();
    assert_eq!(o.log.fills.role, vec!["ENTRY"]);
    assert_eq!(o.log.fills.ts_ns, vec![o.t]);
    assert_eq!(o.log.updates.status, vec!["OPEN", "COMPLETE"]);
    let actions: Vec<_> = o.log.orders.action.clone();
    assert_eq!(actions, vec!["PLACE", "PLACE", "PLACE"]);
    assert_eq!(o.k.open_brackets(), 1);
}

#[test]
fn the_same_report_twice_changes_nothing() {
    let mut o = open_bracket();
    let (stop, _) = o.stop.clone();
    assert!(o
        .k
        .on_order_update(report(&stop, o.t + MS, VenueStatus::TriggerPending, 0, 0))
        .unwrap());
    o.k.take_log();
    for _ in 0..3 {
        let again = report(&stop, o.t + MS, VenueStatus::TriggerPending, 0, 0);
        assert!(!o.k.on_order_update(again).unwrap());
        assert!(o.k.take_log().is_empty());
        assert!(o.k.take_commands().is_empty());
    }
    // A repeated fill report books nothing twice.
    let (tp, _) = o.tp.clone();
    let fill = report(&tp, o.t + 5 * MS, VenueStatus::Complete, o.qty, 251_000);
    assert!(o.k.on_order_update(fill.clone()).unwrap());
    let first = o.k.take_log();
    assert_eq!(first.fills.qty, vec![o.qty]);
    assert!(!o.k.on_order_update(fill).unwrap());
    assert!(o.k.take_log().is_empty());
}

#[test]
fn complete_before_open_is_the_same_as_in_order() {
    let cols = gappy_day(&[101], 200, 0.1, 7);
    let run = |in_order: bool| {
        let mut k = kernel(MARKET);
        let (t, _, entry, qty) = first_entry(&mut k, &cols);
        let open = report(&entry, t + MS, VenueStatus::Open, 0, 0);
        let done = report(&entry, t + MS, VenueStatus::Complete, qty, 250_000);
        if in_order {
            assert!(k.on_order_update(open).unwrap());
            assert!(k.on_order_update(done).unwrap());
        } else {
            assert!(k.on_order_update(done).unwrap());
            assert!(!k.on_order_update(open).unwrap(), "a stale OPEN is dropped");
        }
        let log = k.take_log();
        (
            places(&k.take_commands()),
            log.fills,
            log.trades,
            k.open_brackets(),
        )
    };
    let (a, b) = (run(true), run(false));
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_eq!(a.3, 1);
}

#[test]
fn a_target_fill_cancels_the_stop_and_books_the_trade() {
    let mut o = open_bracket();
    let (tp, _) = o.tp.clone();
    let (stop, stop_id) = o.stop.clone();
    o.k.on_order_update(report(
        &tp,
        o.t + 10 * MS,
        VenueStatus::Complete,
        o.qty,
        251_000,
    ))
    .unwrap();
    let cmds = o.k.take_commands();
    assert!(
        cmds.iter()
            .any(|c| matches!(c, VenueCommand::Cancel { order_id, .. } if *order_id == stop_id)),
        "{cmds:?}"
    );
    assert!(
        o.k.take_log().trades.plan_id.is_empty(),
        "the stop still works"
    );
    o.k.on_order_update(report(&stop, o.t + 20 * MS, VenueStatus::Cancelled, 0, 0))
        .unwrap();
    let log = o.k.take_log();
    assert_eq!(log.trades.exit_reason, vec!["TP"]);
    assert_eq!(log.trades.double_exit, vec![false]);
    assert_eq!(o.k.open_brackets(), 0);
    // The stop is over: a late report of it is stale.
    assert!(!o
        .k
        .on_order_update(report(&stop, o.t + 30 * MS, VenueStatus::Open, 0, 0))
        .unwrap());
}

#[test]
fn a_rejected_stop_follows_the_stop_lost_rule() {
    let mut o = open_bracket();
    let (stop, _) = o.stop.clone();
    let mut rejected = report(&stop, o.t + MS, VenueStatus::Rejected, 0, 0);
    rejected.message = Some("Trigger price for stoploss sell orders should be lower".into());
    o.k.on_order_update(rejected).unwrap();
    let log = o.k.take_log();
    assert!(
        log.alerts.code.contains(&"STOP_LOST"),
        "{:?}",
        log.alerts.code
    );
    let exits = places(&o.k.take_commands());
    let (exit, _) = find(&exits, ":EXIT");
    assert!(exit.ends_with(":EXIT"));
}

#[test]
fn a_failed_placement_is_a_reject_at_once() {
    let cols = gappy_day(&[101], 200, 0.1, 7);
    let mut k = kernel(MARKET);
    let (t, entry_id, entry, _) = first_entry(&mut k, &cols);
    assert!(k.on_place_failed(entry_id, t + MS, "InputException: market_protection"));
    let log = k.take_log();
    assert_eq!(log.updates.status, vec!["REJECTED"]);
    assert_eq!(log.updates.client_order_id, vec![entry]);
    assert_eq!(
        log.updates.message,
        vec!["InputException: market_protection"]
    );
    assert_eq!(k.open_brackets(), 0);
    assert!(k.take_commands().is_empty());
    // Said twice (the stream's own REJECTED after the HTTP error): once.
    assert!(!k.on_place_failed(entry_id, t + 2 * MS, "again"));
}

#[test]
fn a_refused_modification_reaches_the_bracket() {
    // One-updates-other: a partial fill of the target resizes the stop.
    let o = open_bracket();
    assert!(o.qty >= 2, "the plan must be divisible: {}", o.qty);
    let (tp, _) = o.tp.clone();
    let (_, stop_id) = o.stop.clone();
    let (mut k, t) = (o.k, o.t);
    k.on_order_update(report(&tp, t + MS, VenueStatus::Open, 1, 251_000))
        .unwrap();
    let cmds = k.take_commands();
    let modify = cmds
        .iter()
        .find(|c| matches!(c, VenueCommand::Modify { order_id, .. } if *order_id == stop_id));
    assert!(modify.is_some(), "the stop is resized: {cmds:?}");
    k.take_log();
    k.on_modify_answer(stop_id, t + 3 * MS, Some("Order cannot be modified"))
        .unwrap();
    let log = k.take_log();
    assert!(
        log.transitions.event.contains(&"MODIFY_REJECTED"),
        "{:?}",
        log.transitions.event
    );
    // No second answer is owed.
    assert!(k.on_modify_answer(stop_id, t + 4 * MS, None).is_err());
}

#[test]
fn the_venue_refuses_what_is_certainly_refused() {
    let cols = gappy_day(&[101], 200, 0.1, 7);
    let mut k = kernel(MARKET);
    let (t, entry_id, entry, qty) = first_entry(&mut k, &cols);
    let m = VenueModify {
        qty: None,
        price: Some(Price::from_paise(250_000)),
        trigger: None,
        order_type: None,
    };
    use aitrapp_core::venue::Venue;
    for _ in 0..25 {
        k.venue_mut().modify(t, entry_id, m).unwrap();
    }
    let err = k.venue_mut().modify(t, entry_id, m).unwrap_err();
    assert!(err.to_string().contains("at most 25"), "{err}");
    k.venue_mut().take_commands();
    k.on_order_update(report(&entry, t + MS, VenueStatus::Complete, qty, 250_000))
        .unwrap();
    let err = k.venue_mut().cancel(t, entry_id).unwrap_err();
    assert!(matches!(err, VenueError::Refused(_)), "{err}");
    assert!(k.venue_mut().cancel(t, 999).is_err());
}

#[test]
fn an_adopted_bracket_is_protected_and_completed() {
    let mut k = kernel(MARKET);
    let inst = instrument(101);
    let plan = "0123456789abcdef01234567";
    let spec = BracketSpec::for_instrument(
        plan,
        &inst,
        Side::Buy,
        10,
        EntryKind::Market,
        Price::from_paise(250_000),
        Price::from_paise(248_000),
        Price::from_paise(253_000),
    )
    .unwrap();
    let stop = AdoptedChild {
        tag: OrderTag::Stop,
        client_order_id: None,
        qty: 10,
        filled: 0,
        avg_price: Price::ZERO,
        price: None,
        trigger: Some(Price::from_paise(248_000)),
        working: true,
    };
    let t0 = common::OPEN + 3_600 * 1_000_000_000;
    let ids = k
        .adopt(
            t0,
            AdoptedBracket {
                spec,
                token: 101,
                strategy: "EmaCross".into(),
                entry_filled: 10,
                entry_avg: Price::from_paise(250_000),
                children: vec![(stop, VenueStatus::TriggerPending)],
            },
        )
        .unwrap();
    assert_eq!(ids.len(), 1);
    let stop_id = ids[0].1;
    // The missing target is placed; the working stop is not placed again.
    let placed = places(&k.take_commands());
    assert_eq!(placed.len(), 1, "{placed:?}");
    let (tp, _) = find(&placed, ":TP");
    assert_eq!(k.open_brackets(), 1);
    // Adopting it again is refused.
    let again = BracketSpec::for_instrument(
        plan,
        &inst,
        Side::Buy,
        10,
        EntryKind::Market,
        Price::from_paise(250_000),
        Price::from_paise(248_000),
        Price::from_paise(253_000),
    )
    .unwrap();
    let dup = AdoptedBracket {
        spec: again,
        token: 101,
        strategy: "EmaCross".into(),
        entry_filled: 10,
        entry_avg: Price::from_paise(250_000),
        children: vec![],
    };
    assert!(k.adopt(t0, dup).is_err());
    // The stop fills: the target is cancelled, the trade booked.
    let stop_cid = format!("{plan}:STOP");
    k.on_order_update(report(
        &stop_cid,
        t0 + MS,
        VenueStatus::Complete,
        10,
        248_000,
    ))
    .unwrap();
    let cmds = k.take_commands();
    let tp_id = k.venue().order_id_of(&tp).unwrap();
    assert!(cmds
        .iter()
        .any(|c| matches!(c, VenueCommand::Cancel { order_id, .. } if *order_id == tp_id)));
    assert_ne!(tp_id, stop_id);
    k.on_order_update(report(&tp, t0 + 2 * MS, VenueStatus::Cancelled, 0, 0))
        .unwrap();
    let log = k.take_log();
    assert_eq!(log.trades.exit_reason, vec!["STOP"]);
    assert_eq!(log.trades.gross_paise, vec![-20_000]);
    assert_eq!(k.open_brackets(), 0);
}

/// A stop cancelled at the broker while no process watched: the kernel
/// places a new stop under the next stop id (STOP1, its own broker tag), so
/// the journal never refuses it as the earlier session's and the broker's
/// tag look-up never hands back the dead order. Reports of the dead order
/// change nothing; the replacement protects like the stop.
#[test]
fn a_stop_lost_before_the_restart_is_placed_again_under_a_new_id() {
    let mut k = kernel(MARKET);
    let inst = instrument(101);
    let plan = "0123456789abcdef01234567";
    let spec = BracketSpec::for_instrument(
        plan,
        &inst,
        Side::Buy,
        10,
        EntryKind::Market,
        Price::from_paise(250_000),
        Price::from_paise(248_000),
        Price::from_paise(253_000),
    )
    .unwrap();
    let child = |tag, working| AdoptedChild {
        tag,
        client_order_id: None,
        qty: 10,
        filled: 0,
        avg_price: Price::ZERO,
        price: None,
        trigger: None,
        working,
    };
    let t0 = common::OPEN + 3_600 * 1_000_000_000;
    let ids = k
        .adopt(
            t0,
            AdoptedBracket {
                spec,
                token: 101,
                strategy: "EmaCross".into(),
                entry_filled: 10,
                entry_avg: Price::from_paise(250_000),
                children: vec![
                    (child(OrderTag::Stop, false), VenueStatus::Cancelled),
                    (child(OrderTag::Tp, true), VenueStatus::Open),
                ],
            },
        )
        .unwrap();
    let old_stop = format!("{plan}:STOP");
    assert_eq!(ids.len(), 2);
    let cmds = k.take_commands();
    let [VenueCommand::Place { order_id, order }] = cmds.as_slice() else {
        panic!("one placement expected: {cmds:?}");
    };
    assert_eq!(order.client_order_id, format!("{plan}:STOP1"));
    assert_eq!(order.tag, "0123456789abcdefSL1");
    assert_eq!(
        (order.qty, order.trigger),
        (10, Some(Price::from_paise(248_000)))
    );
    let stop_id = *order_id;
    assert_ne!(Some(stop_id), k.venue().order_id_of(&old_stop));
    let log = k.take_log();
    assert_eq!(log.alerts.code, vec!["STOP_REPLACED"]);
    // The dead order's report again: nothing.
    assert!(!k
        .on_order_update(report(&old_stop, t0 + MS, VenueStatus::Cancelled, 0, 0))
        .unwrap());
    assert!(k.take_commands().is_empty());
    // The replacement works; the target fills: STOP1 is cancelled by its id.
    let new_stop = order.client_order_id.clone();
    k.on_order_update(report(
        &new_stop,
        t0 + MS,
        VenueStatus::TriggerPending,
        0,
        0,
    ))
    .unwrap();
    let tp = format!("{plan}:TP");
    k.on_order_update(report(&tp, t0 + 2 * MS, VenueStatus::Complete, 10, 253_000))
        .unwrap();
    let cmds = k.take_commands();
    assert!(
        matches!(cmds.as_slice(), [VenueCommand::Cancel { order_id, .. }] if *order_id == stop_id),
        "{cmds:?}"
    );
    k.on_order_update(report(&new_stop, t0 + 3 * MS, VenueStatus::Cancelled, 0, 0))
        .unwrap();
    let log = k.take_log();
    assert_eq!(log.trades.exit_reason, vec!["TP"]);
    assert_eq!(log.trades.gross_paise, vec![30_000]);
    assert_eq!(k.open_brackets(), 0);
}

/// A target cancelled at the broker while no process watched: the kernel
/// places a new target under the next target id (TARGET1, broker tag
/// <plan16>TG1) at the planned price for the open quantity, never under TP
/// (the journal holds that id for the dead order, and the broker's tag
/// look-up would hand it back). The replacement is the target.
#[test]
fn a_target_lost_before_the_restart_is_placed_again_under_a_new_id() {
    let mut k = kernel(MARKET);
    let inst = instrument(101);
    let plan = "0123456789abcdef01234567";
    let spec = BracketSpec::for_instrument(
        plan,
        &inst,
        Side::Buy,
        10,
        EntryKind::Market,
        Price::from_paise(250_000),
        Price::from_paise(248_000),
        Price::from_paise(253_000),
    )
    .unwrap();
    let child = |tag, working| AdoptedChild {
        tag,
        client_order_id: None,
        qty: 10,
        filled: 0,
        avg_price: Price::ZERO,
        price: None,
        trigger: None,
        working,
    };
    let t0 = common::OPEN + 3_600 * 1_000_000_000;
    k.adopt(
        t0,
        AdoptedBracket {
            spec,
            token: 101,
            strategy: "EmaCross".into(),
            entry_filled: 10,
            entry_avg: Price::from_paise(250_000),
            children: vec![
                (child(OrderTag::Stop, true), VenueStatus::TriggerPending),
                (child(OrderTag::Tp, false), VenueStatus::Cancelled),
            ],
        },
    )
    .unwrap();
    let old_tp = format!("{plan}:TP");
    let cmds = k.take_commands();
    let [VenueCommand::Place { order_id, order }] = cmds.as_slice() else {
        panic!("one placement expected: {cmds:?}");
    };
    assert_eq!(order.client_order_id, format!("{plan}:TARGET1"));
    assert_eq!(order.tag, "0123456789abcdefTG1");
    assert_eq!(
        (order.qty, order.price),
        (10, Some(Price::from_paise(253_000)))
    );
    let target_id = *order_id;
    assert_ne!(Some(target_id), k.venue().order_id_of(&old_tp));
    assert_eq!(k.take_log().alerts.code, vec!["TARGET_REPLACED"]);
    // The dead order's report again: nothing.
    assert!(!k
        .on_order_update(report(&old_tp, t0 + MS, VenueStatus::Cancelled, 0, 0))
        .unwrap());
    assert!(k.take_commands().is_empty());
    // TARGET1 works and fills: the stop is cancelled, the trade is a TP.
    let target = order.client_order_id.clone();
    k.on_order_update(report(&target, t0 + MS, VenueStatus::Open, 0, 0))
        .unwrap();
    k.on_order_update(report(
        &target,
        t0 + 2 * MS,
        VenueStatus::Complete,
        10,
        253_000,
    ))
    .unwrap();
    let cmds = k.take_commands();
    assert!(
        matches!(cmds.as_slice(), [VenueCommand::Cancel { .. }]),
        "{cmds:?}"
    );
    let stop = format!("{plan}:STOP");
    k.on_order_update(report(&stop, t0 + 3 * MS, VenueStatus::Cancelled, 0, 0))
        .unwrap();
    let log = k.take_log();
    assert_eq!(log.trades.exit_reason, vec!["TP"]);
    assert_eq!(log.trades.gross_paise, vec![30_000]);
    assert_eq!(k.open_brackets(), 0);
}
