//! Adopting a bracket of an earlier process: the rebuilt machine routes,
//! sizes and closes like one it opened itself.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use aitrapp_core::oco::{
    AdoptedChild, Bracket, BracketSpec, Command, EntryKind, Event, ExitReason, Fill, OcoError,
    OrderStatus, OrderType, ScaleOut, State,
};
use aitrapp_core::{Instrument, OrderTag, Price, Segment, Side};

const PLAN: &str = "0123456789abcdef01234567";
/// 2026-01-01 04:00 UTC = 09:30 IST.
const T0: i64 = 1_767_240_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn px(p: i64) -> Price {
    Price::from_paise(p)
}

fn inst() -> Instrument {
    Instrument {
        exchange: "NSE".into(),
        tradingsymbol: "RELIANCE".into(),
        instrument_token: 738_561,
        segment: Segment::Eq,
        tick_size: px(5),
        lot_size: 1,
        freeze_qty: 100_000,
    }
}

/// Long 10 @ 2500.00, stop 2480.00, target 2540.00.
fn long() -> BracketSpec {
    BracketSpec::for_instrument(
        PLAN,
        &inst(),
        Side::Buy,
        10,
        EntryKind::Limit,
        px(250_000),
        px(248_000),
        px(254_000),
    )
    .unwrap()
}

fn child(tag: OrderTag, qty: u64, filled: u64, avg: i64) -> AdoptedChild {
    AdoptedChild {
        tag,
        client_order_id: None,
        qty,
        filled,
        avg_price: px(avg),
        price: None,
        trigger: None,
        working: true,
    }
}

fn both(qty: u64) -> Vec<AdoptedChild> {
    vec![
        child(OrderTag::Stop, qty, 0, 0),
        child(OrderTag::Tp, qty, 0, 0),
    ]
}

fn update(
    b: &mut Bracket,
    tag: OrderTag,
    status: OrderStatus,
    filled: u64,
    avg: i64,
) -> Vec<Command> {
    let fill = Fill {
        filled,
        avg_price: px(avg),
    };
    let e = Event::from_order_status(tag, status, fill, None);
    b.handle(T0 + SEC, &e).unwrap().commands
}

fn cancels(cmds: &[Command]) -> Vec<OrderTag> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Cancel { tag, .. } => Some(*tag),
            _ => None,
        })
        .collect()
}

fn orders(cmds: &[Command]) -> Vec<(OrderTag, u64, bool)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::PlaceOrder(o) => Some((o.tag, o.qty, false)),
            Command::ExitAtMarket(o) => Some((o.tag, o.qty, true)),
            _ => None,
        })
        .collect()
}

#[test]
fn adopted_open_bracket_needs_no_command() {
    let (b, cmds) = Bracket::adopt(long(), T0, 10, px(250_100), &both(10)).unwrap();
    assert_eq!(b.state(), State::Open);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(b.net_qty(), 10);
    assert_eq!(b.entry_avg_price(), px(250_100));
    assert_eq!(b.working_legs().count(), 2);
    assert_eq!(
        b.leg(OrderTag::Stop).unwrap().client_order_id,
        format!("{PLAN}:STOP")
    );
}

#[test]
fn tp_fill_cancels_the_stop_and_closes_with_pnl_from_the_adopted_entry() {
    let (mut b, _) = Bracket::adopt(long(), T0, 10, px(250_100), &both(10)).unwrap();
    let cmds = update(&mut b, OrderTag::Tp, OrderStatus::Complete, 10, 254_000);
    assert_eq!(cancels(&cmds), vec![OrderTag::Stop]);
    assert!(orders(&cmds).is_empty(), "{cmds:?}");
    assert_eq!(b.state(), State::Closing);
    update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.realized_pnl_paise(), Some((254_000 - 250_100) * 10));
    // The same fill again changes nothing.
    let t = b
        .handle(
            T0 + 2 * SEC,
            &Event::from_order_status(
                OrderTag::Tp,
                OrderStatus::Complete,
                Fill {
                    filled: 10,
                    avg_price: px(254_000),
                },
                None,
            ),
        )
        .unwrap();
    assert!(!t.changed && t.commands.is_empty());
}

#[test]
fn stop_fill_cancels_the_tp() {
    let (mut b, _) = Bracket::adopt(long(), T0, 10, px(250_000), &both(10)).unwrap();
    let cmds = update(&mut b, OrderTag::Stop, OrderStatus::Complete, 10, 247_900);
    assert_eq!(cancels(&cmds), vec![OrderTag::Tp]);
    update(&mut b, OrderTag::Tp, OrderStatus::Cancelled, 0, 0);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.realized_pnl_paise(), Some((247_900 - 250_000) * 10));
}

#[test]
fn partial_tp_fill_resizes_the_stop() {
    let (mut b, _) = Bracket::adopt(long(), T0, 10, px(250_000), &both(10)).unwrap();
    let cmds = update(&mut b, OrderTag::Tp, OrderStatus::Open, 4, 254_000);
    let modify: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty)),
            _ => None,
        })
        .collect();
    assert_eq!(modify, vec![(OrderTag::Stop, 6)]);
    assert_eq!(b.state(), State::Open);
    // Duplicate partial: nothing new.
    assert!(update(&mut b, OrderTag::Tp, OrderStatus::Open, 4, 254_000).is_empty());
}

#[test]
fn flatten_cancels_both_and_exits_the_open_quantity() {
    let children = vec![
        child(OrderTag::Stop, 6, 0, 0),
        child(OrderTag::Tp, 10, 4, 254_000),
    ];
    let (mut b, cmds) = Bracket::adopt(long(), T0, 10, px(250_000), &children).unwrap();
    assert!(cmds.is_empty(), "{cmds:?}");
    let cmds = b
        .handle(
            T0 + SEC,
            &Event::Flatten {
                convert_stop: false,
            },
        )
        .unwrap()
        .commands;
    let mut c = cancels(&cmds);
    c.sort_by_key(|t| t.to_string());
    assert_eq!(c, vec![OrderTag::Stop, OrderTag::Tp]);
    // The stop covers its part until its cancel is confirmed.
    assert!(orders(&cmds).is_empty());
    let cmds = update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0);
    assert_eq!(orders(&cmds), vec![(OrderTag::Exit, 6, true)]);
    update(&mut b, OrderTag::Tp, OrderStatus::Cancelled, 4, 254_000);
    update(&mut b, OrderTag::Exit, OrderStatus::Complete, 6, 249_000);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        b.realized_pnl_paise(),
        Some(4 * 254_000 + 6 * 249_000 - 10 * 250_000)
    );
}

/// The kill switch on an adopted bracket: its SL-M stop becomes the exit by
/// one modification to MARKET; the target is cancelled only once that is
/// answered, and no market order is placed.
#[test]
fn flatten_turns_the_adopted_stop_into_the_exit() {
    let children = vec![
        child(OrderTag::Stop, 6, 0, 0),
        child(OrderTag::Tp, 10, 4, 254_000),
    ];
    let (mut b, _) = Bracket::adopt(long(), T0, 10, px(250_000), &children).unwrap();
    let cmds = b
        .handle(T0 + SEC, &Event::Flatten { convert_stop: true })
        .unwrap()
        .commands;
    let to_market: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty, m.order_type, m.trigger)),
            _ => None,
        })
        .collect();
    assert_eq!(
        to_market,
        vec![(OrderTag::Stop, 6, Some(OrderType::Market), None)]
    );
    assert!(cancels(&cmds).is_empty(), "the target waits for the answer");
    assert!(orders(&cmds).is_empty());
    let cmds = b
        .handle(
            T0 + SEC,
            &Event::ModifyAck {
                tag: OrderTag::Stop,
                seq: 1,
            },
        )
        .unwrap()
        .commands;
    assert_eq!(cancels(&cmds), vec![OrderTag::Tp]);
    assert_eq!(b.leg(OrderTag::Stop).unwrap().order_type, OrderType::Market);
    update(&mut b, OrderTag::Tp, OrderStatus::Cancelled, 4, 254_000);
    let cmds = update(&mut b, OrderTag::Stop, OrderStatus::Complete, 6, 249_000);
    assert!(orders(&cmds).is_empty(), "the converted stop was the exit");
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.closing_reason(), Some(ExitReason::Flatten));
    assert_eq!(
        b.realized_pnl_paise(),
        Some(4 * 254_000 + 6 * 249_000 - 10 * 250_000)
    );
}

fn alerts(cmds: &[Command]) -> Vec<&'static str> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Alert(a) => Some(a.code.as_str()),
            _ => None,
        })
        .collect()
}

fn dead(tag: OrderTag) -> AdoptedChild {
    AdoptedChild {
        working: false,
        ..child(tag, 10, 0, 0)
    }
}

/// The entry filled, so the earlier process sent STOP: a stop missing at
/// adoption is placed again under a new id (STOP1), never under STOP, which
/// the journal holds for the lost order.
#[test]
fn missing_stop_is_placed_exactly_once() {
    let (mut b, cmds) =
        Bracket::adopt(long(), T0, 7, px(250_000), &[child(OrderTag::Tp, 7, 0, 0)]).unwrap();
    let s1 = OrderTag::StopN(1);
    assert_eq!(orders(&cmds), vec![(s1, 7, false)]);
    let placed = cmds.iter().find_map(|c| match c {
        Command::PlaceOrder(o) => Some(o.client_order_id.clone()),
        _ => None,
    });
    assert_eq!(placed, Some(format!("{PLAN}:STOP1")));
    assert_eq!(alerts(&cmds), vec!["STOP_REPLACED"]);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.stop_tag(), s1);
    assert!(update(&mut b, s1, OrderStatus::TriggerPending, 0, 0).is_empty());
    assert!(update(&mut b, s1, OrderStatus::TriggerPending, 0, 0).is_empty());
    assert!(b
        .handle(T0 + 2 * SEC, &Event::TimeAdvance)
        .unwrap()
        .commands
        .is_empty());
}

#[test]
fn missing_children_are_both_placed() {
    let (_, cmds) = Bracket::adopt(long(), T0, 10, px(250_000), &[]).unwrap();
    assert_eq!(
        orders(&cmds),
        vec![(OrderTag::StopN(1), 10, false), (OrderTag::Tp, 10, false)]
    );
}

#[test]
fn a_dead_stop_is_placed_again_under_the_next_id_with_an_alert() {
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[dead(OrderTag::Stop), child(OrderTag::Tp, 10, 0, 0)],
    )
    .unwrap();
    assert_eq!(b.state(), State::Open);
    assert_eq!(orders(&cmds), vec![(OrderTag::StopN(1), 10, false)]);
    assert!(cancels(&cmds).is_empty());
    assert_eq!(alerts(&cmds), vec!["STOP_REPLACED"]);
    // The dead one stays what it was; the replacement protects the position.
    assert_eq!(b.working_legs().count(), 2);
    assert!(!b.leg(OrderTag::Stop).unwrap().is_live());
    // A stop lost twice (STOP and STOP1 dead) is placed as STOP2, whatever
    // order the caller reports them in; a partly filled dead stop's fill
    // counts, the replacement covers what is still open.
    let mut partly = dead(OrderTag::Stop);
    partly.filled = 4;
    partly.avg_price = px(248_000);
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[
            dead(OrderTag::StopN(1)),
            partly,
            child(OrderTag::Tp, 6, 0, 0),
        ],
    )
    .unwrap();
    assert_eq!(b.net_qty(), 6);
    assert_eq!(orders(&cmds), vec![(OrderTag::StopN(2), 6, false)]);
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::PlaceOrder(o) if o.client_order_id == format!("{PLAN}:STOP2")
            && o.trigger == Some(px(248_000))
    )));
}

#[test]
fn dead_stop_exits_at_market_with_an_alert_once_every_stop_id_is_used() {
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[dead(OrderTag::StopN(99)), child(OrderTag::Tp, 10, 0, 0)],
    )
    .unwrap();
    assert_eq!(b.state(), State::Closing);
    assert_eq!(orders(&cmds), vec![(OrderTag::Exit, 10, true)]);
    assert_eq!(cancels(&cmds), vec![OrderTag::Tp]);
    assert_eq!(alerts(&cmds), vec!["STOP_LOST"]);
}

#[test]
fn an_adopted_replacement_stop_protects_like_the_stop() {
    let mut s1 = child(OrderTag::StopN(1), 10, 0, 0);
    s1.trigger = Some(px(248_500));
    let (mut b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[dead(OrderTag::Stop), s1, child(OrderTag::Tp, 10, 0, 0)],
    )
    .unwrap();
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(
        (b.stop_tag(), b.stop_target()),
        (OrderTag::StopN(1), px(248_500))
    );
    // A partial target fill resizes STOP1, not the dead STOP.
    let cmds = update(&mut b, OrderTag::Tp, OrderStatus::Open, 4, 254_000);
    let modify: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty)),
            _ => None,
        })
        .collect();
    assert_eq!(modify, vec![(OrderTag::StopN(1), 6)]);
    // A late report of the dead STOP changes nothing.
    assert!(update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0).is_empty());
    // STOP1's trigger is a trigger (the watchdog arms on it).
    update(&mut b, OrderTag::StopN(1), OrderStatus::Open, 0, 0);
    assert!(b.leg(OrderTag::StopN(1)).unwrap().triggered_ns.is_some());
    // The target fills: STOP1 is cancelled, nothing else.
    let cmds = update(&mut b, OrderTag::Tp, OrderStatus::Complete, 10, 254_000);
    assert_eq!(cancels(&cmds), vec![OrderTag::StopN(1)]);
}

#[test]
fn two_working_stops_are_refused_naming_the_field() {
    let r = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[
            child(OrderTag::Stop, 10, 0, 0),
            child(OrderTag::StopN(1), 10, 0, 0),
        ],
    );
    match r {
        Err(OcoError::BadAdoption { field, problem, .. }) => {
            assert_eq!(field, "children.working");
            assert!(problem.contains("STOP and STOP1"), "{problem}");
        }
        other => panic!("expected BadAdoption, got {other:?}"),
    }
}

#[test]
fn wrong_sized_stop_is_resized_and_a_trailed_trigger_is_kept() {
    let mut stop = child(OrderTag::Stop, 10, 0, 0);
    stop.trigger = Some(px(249_000));
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[stop, child(OrderTag::Tp, 10, 3, 254_000)],
    )
    .unwrap();
    assert_eq!(b.stop_target(), px(249_000));
    let modify: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty, m.trigger)),
            _ => None,
        })
        .collect();
    assert_eq!(modify, vec![(OrderTag::Stop, 7, Some(px(249_000)))]);
}

#[test]
fn adopting_after_square_off_closes() {
    // 2026-01-01 09:50 UTC = 15:20 IST.
    let late = T0 + (5 * 60 + 50) * 60 * SEC;
    let (b, cmds) = Bracket::adopt(long(), late, 10, px(250_000), &both(10)).unwrap();
    assert_eq!(b.state(), State::Closing);
    assert_eq!(cancels(&cmds).len(), 2);
}

#[test]
fn next_market_exit_follows_adopted_exits() {
    let mut exit = child(OrderTag::Exit, 2, 2, 249_000);
    exit.working = false;
    let (mut b, _) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[
            exit,
            child(OrderTag::Stop, 8, 0, 0),
            child(OrderTag::Tp, 8, 0, 0),
        ],
    )
    .unwrap();
    assert_eq!(b.net_qty(), 8);
    b.handle(
        T0 + SEC,
        &Event::Flatten {
            convert_stop: false,
        },
    )
    .unwrap();
    let cmds = update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0);
    assert_eq!(orders(&cmds), vec![(OrderTag::ExitN(1), 8, true)]);
}

#[test]
fn inconsistent_adoptions_are_refused_naming_the_field() {
    let err = |r: Result<(Bracket, Vec<Command>), OcoError>| match r {
        Err(OcoError::BadAdoption { field, .. }) => field,
        other => panic!("expected BadAdoption, got {other:?}"),
    };
    assert_eq!(
        err(Bracket::adopt(long(), T0, 0, px(250_000), &[])),
        "entry_filled"
    );
    assert_eq!(
        err(Bracket::adopt(long(), T0, 11, px(250_000), &[])),
        "entry_filled"
    );
    assert_eq!(err(Bracket::adopt(long(), T0, 10, px(0), &[])), "entry_avg");
    let dup = [
        child(OrderTag::Stop, 10, 0, 0),
        child(OrderTag::Stop, 10, 0, 0),
    ];
    assert_eq!(
        err(Bracket::adopt(long(), T0, 10, px(250_000), &dup)),
        "children.tag"
    );
    let tp1 = [child(OrderTag::TpN(1), 10, 0, 0)];
    assert_eq!(
        err(Bracket::adopt(long(), T0, 10, px(250_000), &tp1)),
        "children.tag"
    );
    let entry = [child(OrderTag::Entry, 10, 0, 0)];
    assert_eq!(
        err(Bracket::adopt(long(), T0, 10, px(250_000), &entry)),
        "children.tag"
    );
    let over = [child(OrderTag::Tp, 10, 11, 254_000)];
    assert_eq!(
        err(Bracket::adopt(long(), T0, 10, px(250_000), &over)),
        "children.qty"
    );
    let no_avg = [child(OrderTag::Tp, 10, 3, 0)];
    assert_eq!(
        err(Bracket::adopt(long(), T0, 10, px(250_000), &no_avg)),
        "children.avg_price"
    );
}

/// (tag, client id, qty, limit price) of each placement.
fn placed(cmds: &[Command]) -> Vec<(OrderTag, String, u64, Option<Price>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::PlaceOrder(o) => Some((o.tag, o.client_order_id.clone(), o.qty, o.price)),
            _ => None,
        })
        .collect()
}

/// A target cancelled at the broker while no process watched is placed again
/// under a new id (TARGET1), never under TP, which the journal holds for the
/// dead order: the position no longer rides on its stop alone.
#[test]
fn a_dead_target_is_placed_again_under_the_next_id_with_an_alert() {
    let stop = child(OrderTag::Stop, 10, 0, 0);
    let (mut b, cmds) =
        Bracket::adopt(long(), T0, 10, px(250_000), &[stop, dead(OrderTag::Tp)]).unwrap();
    let t1 = OrderTag::TargetN(1);
    assert_eq!(
        placed(&cmds),
        vec![(t1, format!("{PLAN}:TARGET1"), 10, Some(px(254_000)))]
    );
    assert_eq!(alerts(&cmds), vec!["TARGET_REPLACED"]);
    assert_eq!((b.state(), b.target_tag()), (State::Open, t1));
    // A late report of the dead TP changes nothing; TARGET1 is the target.
    assert!(update(&mut b, OrderTag::Tp, OrderStatus::Cancelled, 0, 0).is_empty());
    assert!(update(&mut b, t1, OrderStatus::Open, 0, 0).is_empty());
    let cmds = update(&mut b, t1, OrderStatus::Open, 4, 254_000);
    let modify: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty)),
            _ => None,
        })
        .collect();
    assert_eq!(modify, vec![(OrderTag::Stop, 6)]);
    let cmds = update(&mut b, t1, OrderStatus::Complete, 10, 254_000);
    assert_eq!(cancels(&cmds), vec![OrderTag::Stop]);
    update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.closing_reason(), Some(ExitReason::Tp));
    assert_eq!(b.realized_pnl_paise(), Some((254_000 - 250_000) * 10));
}

/// Lost twice (TP and TARGET1 dead, in any order): TARGET2, for what is
/// still open (a partly filled dead target's fill counts), at the planned
/// price, not the dead one's.
#[test]
fn a_target_lost_twice_takes_the_next_id_for_the_open_quantity() {
    let mut partly = dead(OrderTag::Tp);
    partly.filled = 4;
    partly.avg_price = px(254_000);
    let mut moved = dead(OrderTag::TargetN(1));
    moved.qty = 6;
    moved.price = Some(px(255_000));
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[moved, child(OrderTag::Stop, 6, 0, 0), partly],
    )
    .unwrap();
    assert_eq!(b.net_qty(), 6);
    assert_eq!(
        placed(&cmds),
        vec![(
            OrderTag::TargetN(2),
            format!("{PLAN}:TARGET2"),
            6,
            Some(px(254_000))
        )]
    );
    assert!(cancels(&cmds).is_empty());
}

#[test]
fn stop_and_target_both_lost_are_both_placed_again_with_their_alerts() {
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[dead(OrderTag::Stop), dead(OrderTag::Tp)],
    )
    .unwrap();
    assert_eq!(
        orders(&cmds),
        vec![
            (OrderTag::StopN(1), 10, false),
            (OrderTag::TargetN(1), 10, false)
        ]
    );
    assert_eq!(alerts(&cmds), vec!["STOP_REPLACED", "TARGET_REPLACED"]);
    assert_eq!(b.state(), State::Open);
}

/// With every target id up to TARGET99 used the position rides on its stop
/// (as after a target lost in session): no id is used twice.
#[test]
fn a_dead_target_is_not_reused_once_every_target_id_is_used() {
    let (b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[child(OrderTag::Stop, 10, 0, 0), dead(OrderTag::TargetN(99))],
    )
    .unwrap();
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(b.state(), State::Open);
}

/// An adopted, working replacement target is the target: nothing placed.
#[test]
fn an_adopted_replacement_target_is_the_target() {
    let (mut b, cmds) = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[
            dead(OrderTag::Tp),
            child(OrderTag::Stop, 10, 0, 0),
            child(OrderTag::TargetN(1), 10, 0, 0),
        ],
    )
    .unwrap();
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(b.target_tag(), OrderTag::TargetN(1));
    // The stop fills: TARGET1 is cancelled, not the dead TP.
    let cmds = update(&mut b, OrderTag::Stop, OrderStatus::Complete, 10, 248_000);
    assert_eq!(cancels(&cmds), vec![OrderTag::TargetN(1)]);
}

#[test]
fn two_working_targets_are_refused_naming_the_field() {
    let r = Bracket::adopt(
        long(),
        T0,
        10,
        px(250_000),
        &[
            child(OrderTag::Tp, 10, 0, 0),
            child(OrderTag::TargetN(1), 10, 0, 0),
        ],
    );
    match r {
        Err(OcoError::BadAdoption { field, problem, .. }) => {
            assert_eq!(field, "children.working");
            assert!(problem.contains("TP and TARGET1"), "{problem}");
        }
        other => panic!("expected BadAdoption, got {other:?}"),
    }
}

/// Long 10 @ 2500.00, stop 2480.00 (R = 20): TP1 5 @ 2524.00, TP2 @ 2540.00.
fn scaled() -> BracketSpec {
    let mut s = long();
    s.scale_out = Some(ScaleOut::default());
    s
}

/// Scale-out: a lost TP2 is placed again as TARGET1 at TP2's price for what
/// a working TP1 does not cover; a TARGET1 fill closes as TP2 would.
#[test]
fn scale_out_a_lost_tp2_is_placed_again_for_the_rest_at_its_price() {
    let spec = scaled();
    let tp2_price = spec.target_for(OrderTag::TpN(2));
    assert_eq!(tp2_price, px(254_000));
    let (mut b, cmds) = Bracket::adopt(
        spec,
        T0,
        10,
        px(250_000),
        &[
            child(OrderTag::Stop, 10, 0, 0),
            child(OrderTag::TpN(1), 5, 0, 0),
            dead(OrderTag::TpN(2)),
        ],
    )
    .unwrap();
    let t1 = OrderTag::TargetN(1);
    assert_eq!(
        placed(&cmds),
        vec![(t1, format!("{PLAN}:TARGET1"), 5, Some(tp2_price))]
    );
    assert_eq!(alerts(&cmds), vec!["TARGET_REPLACED"]);
    // TP1 fills: the stop goes to breakeven; TARGET1 then fills and closes.
    update(&mut b, OrderTag::TpN(1), OrderStatus::Complete, 5, 252_400);
    assert_eq!(b.stop_target(), px(250_000));
    let cmds = update(&mut b, t1, OrderStatus::Complete, 5, 254_000);
    assert_eq!(cancels(&cmds), vec![OrderTag::Stop]);
    update(&mut b, OrderTag::Stop, OrderStatus::Cancelled, 0, 0);
    assert_eq!(b.closing_reason(), Some(ExitReason::Tp2));
    assert_eq!(b.state(), State::Closed);
}

/// Scale-out: a lost TP1 is not placed again (the scale-out step is given
/// up, as when TP1 is lost in session): the final target takes the whole
/// open quantity, TP2 resized when it works, a TARGET1 for it all when
/// TP2 is lost too.
#[test]
fn scale_out_a_lost_tp1_hands_its_share_to_the_final_target() {
    let (_, cmds) = Bracket::adopt(
        scaled(),
        T0,
        10,
        px(250_000),
        &[
            child(OrderTag::Stop, 10, 0, 0),
            dead(OrderTag::TpN(1)),
            child(OrderTag::TpN(2), 5, 0, 0),
        ],
    )
    .unwrap();
    assert!(placed(&cmds).is_empty(), "{cmds:?}");
    let modify: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Modify(m) => Some((m.tag, m.qty)),
            _ => None,
        })
        .collect();
    assert_eq!(modify, vec![(OrderTag::TpN(2), 10)]);
    let (b, cmds) = Bracket::adopt(
        scaled(),
        T0,
        10,
        px(250_000),
        &[
            child(OrderTag::Stop, 10, 0, 0),
            dead(OrderTag::TpN(1)),
            dead(OrderTag::TpN(2)),
        ],
    )
    .unwrap();
    assert_eq!(
        placed(&cmds),
        vec![(
            OrderTag::TargetN(1),
            format!("{PLAN}:TARGET1"),
            10,
            Some(px(254_000))
        )]
    );
    assert_eq!(b.target_tag(), OrderTag::TargetN(1));
    // TP is no tag of a scaled-out bracket, TARGETn is.
    let tp = [child(OrderTag::Tp, 10, 0, 0)];
    assert!(Bracket::adopt(scaled(), T0, 10, px(250_000), &tp).is_err());
}
