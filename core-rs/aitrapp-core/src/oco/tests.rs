//! Unit tests of the bracket: scenarios, and the walk over every
//! (state, event) pair of the transition table.

use super::*;
use crate::ids::OrderTag;
use crate::instrument::{Instrument, Segment};
use crate::price::Price;
use crate::side::Side;

mod flatten;
mod protection;

const PLAN: &str = "0123456789abcdef01234567";
/// 2026-01-01 04:00 UTC = 09:30 IST.
const T0: i64 = 1_767_240_000_000_000_000;
const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;

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

fn short() -> BracketSpec {
    BracketSpec::for_instrument(
        PLAN,
        &inst(),
        Side::Sell,
        10,
        EntryKind::Limit,
        px(250_000),
        px(252_000),
        px(246_000),
    )
    .unwrap()
}

fn cid(tag: &str) -> String {
    format!("{PLAN}:{tag}")
}

struct H {
    b: Bracket,
    now: i64,
}

impl H {
    fn open(spec: BracketSpec) -> (H, Vec<Command>) {
        let (b, cmds) = Bracket::open(spec, T0).unwrap();
        (H { b, now: T0 }, cmds)
    }

    fn ev(&mut self, e: Event) -> Transition {
        let t = self
            .b
            .handle(self.now, &e)
            .unwrap_or_else(|err| panic!("{e:?}: {err}"));
        // Every accepted event is idempotent: the same again changes nothing.
        let before = self.b.clone();
        let again = self.b.handle(self.now, &e).unwrap();
        assert!(
            !again.changed && again.commands.is_empty(),
            "{e:?} twice: {again:?}"
        );
        assert_eq!(self.b, before, "{e:?} twice changed the bracket");
        t
    }

    fn at(&mut self, dt: i64) -> Transition {
        self.now += dt;
        self.ev(Event::TimeAdvance)
    }

    fn entry(&mut self, filled: u64, complete: bool) -> Transition {
        let f = Fill::new(filled, px(250_000));
        self.ev(if complete {
            Event::EntryFilled(f)
        } else {
            Event::EntryPartialFill(f)
        })
    }

    fn child(&mut self, tag: OrderTag, filled: u64, price: i64, complete: bool) -> Transition {
        let fill = Fill::new(filled, px(price));
        self.ev(if complete {
            Event::ChildFilled { tag, fill }
        } else {
            Event::ChildPartialFill { tag, fill }
        })
    }

    fn cancelled(&mut self, tag: OrderTag, filled: u64, price: i64) -> Transition {
        self.ev(Event::ChildCancelled {
            tag,
            fill: Fill::new(filled, px(price)),
        })
    }

    fn leg(&self, tag: OrderTag) -> &Leg {
        self.b.leg(tag).unwrap()
    }

    /// Answers every Modify in `t` with an ack.
    fn ack_modifies(&mut self, t: &Transition) -> Vec<Transition> {
        let acks: Vec<Event> = t
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Modify(m) => Some(Event::ModifyAck {
                    tag: m.tag,
                    seq: m.seq,
                }),
                _ => None,
            })
            .collect();
        acks.into_iter().map(|e| self.ev(e)).collect()
    }
}

fn places(t: &Transition) -> Vec<&NewOrder> {
    t.commands
        .iter()
        .filter_map(|c| match c {
            Command::PlaceOrder(o) | Command::ExitAtMarket(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn modifies(t: &Transition) -> Vec<&ModifyOrder> {
    t.commands
        .iter()
        .filter_map(|c| {
            if let Command::Modify(m) = c {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

fn cancels(t: &Transition) -> Vec<OrderTag> {
    t.commands
        .iter()
        .filter_map(|c| {
            if let Command::Cancel { tag, .. } = c {
                Some(*tag)
            } else {
                None
            }
        })
        .collect()
}

fn alerts(t: &Transition) -> Vec<(Severity, AlertCode)> {
    t.commands
        .iter()
        .filter_map(|c| {
            if let Command::Alert(a) = c {
                Some((a.severity, a.code))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn open_places_the_entry() {
    let (h, cmds) = H::open(long());
    assert_eq!(h.b.state(), State::Pending);
    assert_eq!(
        cmds,
        vec![Command::PlaceOrder(NewOrder {
            client_order_id: cid("ENTRY"),
            tag: OrderTag::Entry,
            role: Role::Entry,
            side: Side::Buy,
            qty: 10,
            order_type: OrderType::Limit,
            price: Some(px(250_000)),
            trigger: None,
            reason: None,
        })]
    );
}

#[test]
fn market_entry_and_invalid_spec() {
    let mut s = long();
    s.entry = EntryKind::Market;
    let (_, cmds) = H::open(s);
    assert!(
        matches!(&cmds[0], Command::PlaceOrder(o) if o.order_type == OrderType::Market && o.price.is_none())
    );
    let mut s = long();
    s.qty = 0;
    assert!(Bracket::open(s, T0)
        .unwrap_err()
        .to_string()
        .contains("qty"));
}

#[test]
fn refuses_to_open_after_square_off() {
    let at = T0 + 6 * 60 * MIN; // 15:30 IST
    let err = Bracket::open(long(), at).unwrap_err();
    assert!(matches!(err, OcoError::AfterSquareOff { .. }), "{err}");
}

#[test]
fn partial_entry_is_protected_at_once_and_resized() {
    let (mut h, _) = H::open(long());
    h.ev(Event::EntryAck);
    let t = h.entry(4, false);
    assert_eq!(t.to, State::Entering);
    let p = places(&t);
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].tag, p[0].side, p[0].qty, p[0].order_type, p[0].trigger),
        (
            OrderTag::Stop,
            Side::Sell,
            4,
            OrderType::SlM,
            Some(px(248_000))
        )
    );
    assert_eq!(
        (p[1].tag, p[1].qty, p[1].order_type, p[1].price),
        (OrderTag::Tp, 4, OrderType::Limit, Some(px(254_000)))
    );
    assert_eq!(t.fills.len(), 1);
    assert_eq!((t.fills[0].qty, t.fills[0].notional_paise), (4, 1_000_000));
    // more fills: both children grow (total quantity, as Kite modifies)
    let t = h.entry(7, false);
    let m = modifies(&t);
    assert_eq!(
        m.iter().map(|m| (m.tag, m.qty, m.seq)).collect::<Vec<_>>(),
        vec![(OrderTag::Stop, 7, 1), (OrderTag::Tp, 7, 1)]
    );
    assert_eq!(m[0].trigger, Some(px(248_000)));
    let t = h.entry(10, true);
    assert_eq!(t.to, State::Open);
    assert_eq!(
        modifies(&t)
            .iter()
            .map(|m| (m.tag, m.qty, m.seq))
            .collect::<Vec<_>>(),
        vec![(OrderTag::Stop, 10, 2), (OrderTag::Tp, 10, 2)]
    );
    // A stale snapshot with less fill un-fills nothing.
    let t = h.entry(4, false);
    assert!(!t.changed);
    assert_eq!(h.b.entry_filled(), 10);
}

#[test]
fn take_profit_closes_and_cancels_the_stop() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    // partial TP: the stop shrinks to what remains
    let t = h.child(OrderTag::Tp, 3, 254_000, false);
    assert_eq!(t.to, State::Open);
    assert_eq!(
        modifies(&t)
            .iter()
            .map(|m| (m.tag, m.qty))
            .collect::<Vec<_>>(),
        vec![(OrderTag::Stop, 7)]
    );
    let t = h.child(OrderTag::Tp, 10, 254_000, true);
    assert_eq!(t.to, State::Closing);
    assert_eq!(cancels(&t), vec![OrderTag::Stop]);
    assert!(places(&t).is_empty(), "flat: nothing to exit");
    assert_eq!(t.fills[0].reason, Some(ExitReason::Tp));
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(t.to, State::Closed);
    assert_eq!(h.b.realized_pnl_paise(), Some(10 * 4_000));
    assert_eq!(h.b.working_legs().count(), 0);
}

#[test]
fn short_bracket_mirrors() {
    let (mut h, _) = H::open(short());
    let t = h.entry(10, true);
    let p = places(&t);
    assert_eq!((p[0].side, p[0].trigger), (Side::Buy, Some(px(252_000))));
    assert_eq!((p[1].side, p[1].price), (Side::Buy, Some(px(246_000))));
    h.child(OrderTag::Stop, 10, 252_000, true);
    let t = h.cancelled(OrderTag::Tp, 0, 0);
    assert_eq!(t.to, State::Closed);
    assert_eq!(h.b.realized_pnl_paise(), Some(-10 * 2_000));
}

#[test]
fn both_children_filling_is_corrected_at_market() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    let t = h.child(OrderTag::Stop, 10, 248_000, true);
    assert_eq!(cancels(&t), vec![OrderTag::Tp]);
    // the cancel lost the race: the broker says no, the TP had filled
    let t = h.ev(Event::CancelRejectedFilled { tag: OrderTag::Tp });
    assert!(t.commands.is_empty());
    assert_eq!(h.b.state(), State::Closing, "waits for the fill report");
    let t = h.child(OrderTag::Tp, 10, 254_000, true);
    assert_eq!(h.b.net_qty(), -10);
    let p = places(&t);
    assert_eq!(
        (p[0].tag, p[0].side, p[0].qty, p[0].role, p[0].reason),
        (
            OrderTag::Exit,
            Side::Buy,
            10,
            Role::Corrective,
            Some(ExitReason::Corrective)
        )
    );
    assert!(matches!(
        t.commands[0],
        Command::Alert(Alert {
            severity: Severity::Critical,
            code: AlertCode::DoubleFill,
            ..
        })
    ));
    let t = h.child(OrderTag::Exit, 10, 253_000, true);
    assert_eq!(t.to, State::Closed);
    assert_eq!(h.b.net_qty(), 0);
    // sold 10 @2480 + 10 @2540, bought 10 @2500 + 10 @2530
    assert_eq!(
        h.b.realized_pnl_paise(),
        Some(10 * (248_000 + 254_000 - 250_000 - 253_000))
    );
}

#[test]
fn rejected_stop_exits_at_market_and_alerts() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    let t = h.ev(Event::ChildRejected {
        tag: OrderTag::Stop,
        reason: "trigger above LTP".into(),
    });
    assert_eq!(t.to, State::Closing);
    assert_eq!(alerts(&t), vec![(Severity::Critical, AlertCode::StopLost)]);
    assert_eq!(cancels(&t), vec![OrderTag::Tp]);
    let p = places(&t);
    assert_eq!(
        (p[0].tag, p[0].side, p[0].qty, p[0].reason),
        (
            OrderTag::Exit,
            Side::Sell,
            10,
            Some(ExitReason::Unprotected)
        )
    );
    h.child(OrderTag::Exit, 10, 249_000, true);
    let t = h.cancelled(OrderTag::Tp, 0, 0);
    assert_eq!(t.to, State::Closed);
}

#[test]
fn closing_waits_for_the_stop_cancel_before_exiting() {
    let mut s = long();
    s.time_stop_ns = Some(30 * MIN);
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    assert!(h.at(29 * MIN).commands.is_empty());
    let t = h.at(MIN);
    assert_eq!(t.to, State::Closing);
    assert_eq!(cancels(&t), vec![OrderTag::Stop, OrderTag::Tp]);
    assert!(places(&t).is_empty(), "the working stop still protects");
    let t = h.cancelled(OrderTag::Tp, 0, 0);
    assert!(places(&t).is_empty());
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    let p = places(&t);
    assert_eq!(
        (p[0].tag, p[0].qty, p[0].reason),
        (OrderTag::Exit, 10, Some(ExitReason::Time))
    );
    assert_eq!(h.child(OrderTag::Exit, 10, 251_000, true).to, State::Closed);
}

#[test]
fn stop_filling_during_closing_needs_no_exit() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::Flatten { convert_stop: true });
    let t = h.child(OrderTag::Stop, 10, 248_000, true);
    assert!(places(&t).is_empty());
    assert_eq!(h.cancelled(OrderTag::Tp, 0, 0).to, State::Closed);
}

#[test]
fn end_of_day_squares_off() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    // 15:19:59 IST: nothing; 15:20 IST: square-off.
    let eod = h.b.square_off_at_ns();
    assert_eq!(eod, T0 + (5 * 60 + 50) * MIN);
    assert!(h.at(eod - SEC - h.now).commands.is_empty());
    let t = h.at(SEC);
    assert_eq!(t.to, State::Closing);
    assert_eq!(h.b.closing_reason(), Some(ExitReason::Eod));
    let t = h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(places(&t)[0].reason, Some(ExitReason::Eod));
    assert!(places(&h.cancelled(OrderTag::Tp, 0, 0)).is_empty());
}

#[test]
fn fno_square_off_is_later() {
    let mut i = inst();
    i.segment = Segment::Fut;
    i.lot_size = 65;
    let s = BracketSpec::for_instrument(
        PLAN,
        &i,
        Side::Buy,
        130,
        EntryKind::Market,
        px(2_500_000),
        px(2_480_000),
        px(2_540_000),
    )
    .unwrap();
    let (b, _) = Bracket::open(s, T0).unwrap();
    assert_eq!(b.square_off_at_ns(), T0 + (5 * 60 + 55) * MIN);
}

#[test]
fn entry_timeout_cancels_and_a_late_fill_is_exited() {
    let (mut h, _) = H::open(long());
    h.ev(Event::EntryAck);
    assert!(h.at(4 * MIN).commands.is_empty());
    let t = h.at(MIN);
    assert_eq!((t.to, cancels(&t)), (State::Closing, vec![OrderTag::Entry]));
    // the fill raced the cancel
    let t = h.entry(6, false);
    let p = places(&t);
    assert_eq!(
        (p[0].tag, p[0].side, p[0].qty, p[0].reason),
        (
            OrderTag::Exit,
            Side::Sell,
            6,
            Some(ExitReason::EntryTimeout)
        )
    );
    assert_eq!(alerts(&t), vec![(Severity::Warning, AlertCode::LateFill)]);
    let t = h.ev(Event::EntryCancelled(Fill::new(8, px(250_000))));
    assert_eq!(places(&t)[0].qty, 2);
    h.child(OrderTag::Exit, 6, 249_000, true);
    assert_eq!(
        h.child(OrderTag::ExitN(1), 2, 249_000, true).to,
        State::Closed
    );
}

#[test]
fn entry_timeout_without_fill_cancels_the_bracket() {
    let (mut h, _) = H::open(long());
    h.at(5 * MIN);
    let t = h.ev(Event::EntryCancelled(Fill::NONE));
    assert_eq!(t.to, State::Cancelled);
    assert!(alerts(&t).is_empty(), "our own cancel is no surprise");
    assert_eq!(h.b.realized_pnl_paise(), None);
}

#[test]
fn partial_entry_at_timeout_keeps_what_filled() {
    let (mut h, _) = H::open(long());
    h.entry(4, false);
    let t = h.at(5 * MIN);
    assert_eq!(
        (t.to, cancels(&t)),
        (State::Entering, vec![OrderTag::Entry])
    );
    let t = h.ev(Event::EntryCancelled(Fill::new(4, px(250_000))));
    assert_eq!(t.to, State::Open);
    assert!(t.commands.is_empty());
    assert_eq!(h.leg(OrderTag::Stop).qty, 4);
}

#[test]
fn entry_rejected_and_externally_cancelled() {
    let (mut h, _) = H::open(long());
    let t = h.ev(Event::EntryRejected {
        reason: "margin".into(),
    });
    assert_eq!(t.to, State::Cancelled);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::EntryRejected)]
    );
    let (mut h, _) = H::open(long());
    let t = h.ev(Event::EntryCancelled(Fill::NONE));
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::EntryCancelledExternally)]
    );
}

#[test]
fn flatten_from_pending_cancels_the_entry() {
    let (mut h, _) = H::open(long());
    let t = h.ev(Event::Flatten { convert_stop: true });
    assert_eq!((t.to, cancels(&t)), (State::Closing, vec![OrderTag::Entry]));
    assert_eq!(h.ev(Event::EntryCancelled(Fill::NONE)).to, State::Cancelled);
}

#[test]
fn scale_out_moves_the_stop_to_breakeven() {
    let mut s = long();
    s.scale_out = Some(ScaleOut::default());
    let (mut h, _) = H::open(s);
    let t = h.entry(10, true);
    let p = places(&t);
    let got: Vec<_> = p
        .iter()
        .map(|o| (o.tag, o.qty, o.price, o.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (OrderTag::Stop, 10, None, Some(ExitReason::Stop)),
            (
                OrderTag::TpN(1),
                5,
                Some(px(252_400)),
                Some(ExitReason::Tp1)
            ),
            (
                OrderTag::TpN(2),
                5,
                Some(px(254_000)),
                Some(ExitReason::Tp2)
            ),
        ]
    );
    let t = h.child(OrderTag::TpN(1), 2, 252_400, false);
    assert_eq!(
        modifies(&t)
            .iter()
            .map(|m| (m.tag, m.qty))
            .collect::<Vec<_>>(),
        vec![(OrderTag::Stop, 8)]
    );
    let t = h.child(OrderTag::TpN(1), 5, 252_400, true);
    assert_eq!(t.to, State::Open);
    let m = modifies(&t);
    assert_eq!(
        (m[0].tag, m[0].qty, m[0].trigger),
        (OrderTag::Stop, 5, Some(px(250_000)))
    );
    assert_eq!(h.b.stop_target(), px(250_000));
    let t = h.child(OrderTag::TpN(2), 5, 254_000, true);
    assert_eq!((t.to, cancels(&t)), (State::Closing, vec![OrderTag::Stop]));
    h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(h.b.realized_pnl_paise(), Some(5 * 2_400 + 5 * 4_000));
}

#[test]
fn scale_out_of_one_lot_goes_to_tp2() {
    let mut s = long();
    s.qty = 1;
    s.scale_out = Some(ScaleOut::default());
    let (mut h, _) = H::open(s);
    let t = h.entry(1, true);
    let tags: Vec<_> = places(&t).iter().map(|o| (o.tag, o.qty)).collect();
    assert_eq!(tags, vec![(OrderTag::Stop, 1), (OrderTag::TpN(2), 1)]);
}

#[test]
fn stop_partial_fill_shrinks_the_targets() {
    let mut s = long();
    s.scale_out = Some(ScaleOut::default());
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    let t = h.child(OrderTag::Stop, 7, 248_000, false);
    // open 3: TP1 keeps its planned 5 capped to 3, TP2 has nothing left -> cancelled
    assert_eq!(
        modifies(&t)
            .iter()
            .map(|m| (m.tag, m.qty))
            .collect::<Vec<_>>(),
        vec![(OrderTag::TpN(1), 3)]
    );
    assert_eq!(cancels(&t), vec![OrderTag::TpN(2)]);
    let t = h.cancelled(OrderTag::TpN(2), 0, 0);
    assert!(alerts(&t).is_empty(), "we cancelled it ourselves");
    assert_eq!(t.to, State::Open);
}

#[test]
fn trailing_only_tightens_and_coalesces() {
    let mut s = long();
    s.trailing = Some(Trailing {
        atr_mult_milli: 2_000,
        min_step_ticks: 1,
    });
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    let price = |ltp: i64, atr: i64| Event::PriceUpdate {
        ltp: px(ltp),
        atr: Some(px(atr)),
    };
    // 2490 - 2 x 10 = 2470: looser than 2480, ignored
    assert!(h.ev(price(249_000, 1_000)).commands.is_empty());
    let t = h.ev(price(255_000, 1_000));
    let m = modifies(&t);
    assert_eq!(
        (m[0].tag, m[0].qty, m[0].trigger, m[0].seq),
        (OrderTag::Stop, 10, Some(px(253_000)), 1)
    );
    // in flight: a newer tighter target waits for the answer
    let t = h.ev(price(255_500, 1_000));
    assert!(t.commands.is_empty());
    assert_eq!(h.b.stop_target(), px(253_500));
    let t = h.ev(Event::ModifyAck {
        tag: OrderTag::Stop,
        seq: 1,
    });
    assert_eq!(modifies(&t)[0].trigger, Some(px(253_500)));
    assert_eq!(h.leg(OrderTag::Stop).trigger, Some(px(253_000)));
    // falling price never loosens it
    let t = h.ev(price(254_000, 1_000));
    assert!(t.commands.is_empty());
    assert_eq!(h.b.stop_target(), px(253_500));
    // a rejected trail keeps the confirmed trigger and does not retry forever
    let t = h.ev(Event::ModifyRejected {
        tag: OrderTag::Stop,
        seq: 2,
        reason: "trigger above LTP".into(),
    });
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::StopModifyRejected)]
    );
    assert_eq!(h.b.stop_target(), px(253_000));
    assert!(modifies(&t).is_empty());
}

#[test]
fn trailing_respects_the_modification_budget() {
    let mut s = long();
    s.trailing = Some(Trailing {
        atr_mult_milli: 1_000,
        min_step_ticks: 1,
    });
    s.max_modifications = TRAIL_RESERVED_MODIFICATIONS + 2;
    let (mut h, _) = H::open(s);
    h.entry(10, true);
    let mut ltp = 252_000;
    for _ in 0..2 {
        ltp += 100;
        let t = h.ev(Event::PriceUpdate {
            ltp: px(ltp),
            atr: Some(px(500)),
        });
        h.ack_modifies(&t);
    }
    let t = h.ev(Event::PriceUpdate {
        ltp: px(ltp + 100),
        atr: Some(px(500)),
    });
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::ModificationBudget)]
    );
    assert!(modifies(&t).is_empty());
    // resizes still have their reserve
    let t = h.child(OrderTag::Tp, 1, 254_000, false);
    assert_eq!(modifies(&t)[0].qty, 9);
}

#[test]
fn stop_limit_carries_its_buffer() {
    let mut s = long();
    s.stop_kind = StopKind::Sl { buffer_ticks: 2 };
    s.trailing = Some(Trailing {
        atr_mult_milli: 1_000,
        min_step_ticks: 1,
    });
    let (mut h, _) = H::open(s);
    let t = h.entry(10, true);
    let p = places(&t);
    assert_eq!(
        (p[0].order_type, p[0].trigger, p[0].price),
        (OrderType::Sl, Some(px(248_000)), Some(px(247_990)))
    );
    let t = h.ev(Event::PriceUpdate {
        ltp: px(252_000),
        atr: Some(px(1_000)),
    });
    let m = modifies(&t);
    assert_eq!(
        (m[0].trigger, m[0].price),
        (Some(px(251_000)), Some(px(250_990)))
    );
}

#[test]
fn stop_resize_rejected_exits() {
    let (mut h, _) = H::open(long());
    h.entry(4, false);
    h.entry(10, true);
    let t = h.ev(Event::ModifyRejected {
        tag: OrderTag::Stop,
        seq: 1,
        reason: "nope".into(),
    });
    assert_eq!(t.to, State::Closing);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Error, AlertCode::StopModifyRejected)]
    );
    // the stop (4, still working until its cancel lands) covers 4; 6 exit now
    assert_eq!(places(&t)[0].qty, 6);
}

#[test]
fn exhausted_modification_budget_exits() {
    let mut s = long();
    s.max_modifications = 1;
    let (mut h, _) = H::open(s);
    h.entry(2, false);
    let t = h.entry(5, false);
    h.ack_modifies(&t);
    let t = h.entry(10, true);
    assert_eq!(t.to, State::Closing);
    assert!(alerts(&t).contains(&(Severity::Error, AlertCode::ModificationBudget)));
}

#[test]
fn take_profit_rejection_keeps_the_stop() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    let t = h.ev(Event::ChildRejected {
        tag: OrderTag::Tp,
        reason: "price band".into(),
    });
    assert_eq!(t.to, State::Open);
    assert_eq!(
        alerts(&t),
        vec![(Severity::Warning, AlertCode::TakeProfitLost)]
    );
    assert!(h.leg(OrderTag::Stop).is_live());
}

#[test]
fn repeated_exit_rejections_back_off() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::ChildRejected {
        tag: OrderTag::Stop,
        reason: "x".into(),
    });
    let mut tag = OrderTag::Exit;
    for n in 1..=3u8 {
        let t = h.ev(Event::ChildRejected {
            tag,
            reason: "circuit".into(),
        });
        assert!(alerts(&t).contains(&(Severity::Critical, AlertCode::ExitRejected)));
        if n < 3 {
            tag = places(&t)[0].tag;
            assert_eq!(tag, OrderTag::ExitN(n));
        } else {
            assert!(places(&t).is_empty(), "backing off");
            assert!(h.b.exit_blocked());
        }
    }
    assert!(places(&h.at(4 * SEC)).is_empty());
    let t = h.at(SEC);
    assert_eq!(places(&t)[0].tag, OrderTag::ExitN(3));
}

#[test]
fn fill_after_close_reopens_and_squares() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.child(OrderTag::Tp, 10, 254_000, true);
    h.cancelled(OrderTag::Stop, 0, 0);
    assert_eq!(h.b.state(), State::Closed);
    // the broker later reports the stop had filled 3 before its cancel
    let t = h.cancelled(OrderTag::Stop, 3, 248_000);
    assert_eq!(t.to, State::Closing);
    assert!(alerts(&t).contains(&(Severity::Critical, AlertCode::LateFill)));
    let p = places(&t);
    assert_eq!(
        (p[0].side, p[0].qty, p[0].role),
        (Side::Buy, 3, Role::Corrective)
    );
}

#[test]
fn a_rejected_order_reported_working_is_cancelled() {
    // The execution layer could not tell whether the entry reached the
    // broker and reported it rejected; then the broker shows it working.
    let (mut h, _) = H::open(long());
    assert_eq!(
        h.ev(Event::EntryRejected {
            reason: "unknown outcome".into()
        })
        .to,
        State::Cancelled
    );
    let t = h.ev(Event::EntryAck);
    assert_eq!((t.to, cancels(&t)), (State::Closing, vec![OrderTag::Entry]));
    assert!(alerts(&t).contains(&(Severity::Error, AlertCode::ZombieOrder)));
    // it had filled a little before the cancel landed: exited at market
    let t = h.ev(Event::EntryCancelled(Fill::new(3, px(250_000))));
    assert_eq!((places(&t)[0].side, places(&t)[0].qty), (Side::Sell, 3));
    assert_eq!(h.child(OrderTag::Exit, 3, 250_500, true).to, State::Closed);
    // A take-profit the same way: cancelled, the bracket stays open.
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::ChildRejected {
        tag: OrderTag::Tp,
        reason: "unknown outcome".into(),
    });
    let t = h.ev(Event::ChildAck { tag: OrderTag::Tp });
    assert_eq!((t.to, cancels(&t)), (State::Open, vec![OrderTag::Tp]));
    assert_eq!(h.cancelled(OrderTag::Tp, 0, 0).to, State::Open);
}

#[test]
fn market_order_ids_run_out_loudly() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    h.ev(Event::ChildRejected {
        tag: OrderTag::Stop,
        reason: "x".into(),
    });
    let mut tag = Some(OrderTag::Exit);
    let mut n = 0;
    while let Some(t) = tag {
        let tr = h.ev(Event::ChildRejected {
            tag: t,
            reason: "circuit".into(),
        });
        n += 1;
        tag = places(&tr).first().map(|o| o.tag);
        if tag.is_none() && h.b.exit_retry_at_ns.is_some_and(|at| at > h.now) {
            let tr = h.at(5 * SEC);
            tag = places(&tr).first().map(|o| o.tag);
            if tag.is_none() {
                assert!(
                    alerts(&tr).contains(&(Severity::Critical, AlertCode::ExitIdsExhausted)),
                    "{tr:?}"
                );
            }
        }
    }
    assert_eq!(n, 100, "EXIT and EXIT1..EXIT99");
    assert!(h.b.exit_blocked());
    assert_eq!(h.b.state(), State::Closing);
}

#[test]
fn bad_events_are_errors_and_change_nothing() {
    let (mut h, _) = H::open(long());
    h.entry(10, true);
    let snapshot = h.b.clone();
    let bad = [
        Event::ChildFilled {
            tag: OrderTag::Stop,
            fill: Fill::new(11, px(248_000)),
        },
        Event::ChildPartialFill {
            tag: OrderTag::Stop,
            fill: Fill::new(2, Price::ZERO),
        },
        Event::ChildAck {
            tag: OrderTag::TpN(2),
        },
        Event::ChildAck {
            tag: OrderTag::Entry,
        },
        Event::ModifyAck {
            tag: OrderTag::Stop,
            seq: 9,
        },
        Event::CancelRejectedFilled {
            tag: OrderTag::Stop,
        },
        Event::EntryFilled(Fill::new(11, px(250_000))),
        Event::EntryFilled(Fill::NONE),
        Event::ChildPartialFill {
            tag: OrderTag::Tp,
            fill: Fill::NONE,
        },
        Event::PriceUpdate {
            ltp: Price::ZERO,
            atr: None,
        },
        Event::ChildTriggered { tag: OrderTag::Tp },
        Event::ChildTriggered {
            tag: OrderTag::Entry,
        },
    ];
    let fields = [
        "filled",
        "avg_price",
        "TP2",
        "tag",
        "seq",
        "tag",
        "filled",
        "filled",
        "filled",
        "ltp",
        "tag",
        "tag",
    ];
    for (e, field) in bad.iter().zip(fields) {
        let err = h.b.handle(h.now, e).unwrap_err();
        assert!(err.to_string().contains(field), "{e:?}: {err}");
        assert_eq!(h.b, snapshot, "{e:?} changed the bracket");
    }
}

#[test]
fn status_snapshots_drive_the_machine() {
    let (mut h, _) = H::open(long());
    let ev = |tag, st: &str, filled, avg| {
        Event::from_order_status(tag, st.parse().unwrap(), Fill::new(filled, px(avg)), None)
    };
    h.ev(ev(OrderTag::Entry, "OPEN", 0, 0));
    h.ev(ev(OrderTag::Entry, "COMPLETE", 10, 250_000));
    h.ev(ev(OrderTag::Stop, "TRIGGER PENDING", 0, 0));
    let t = h.ev(ev(OrderTag::Stop, "COMPLETE", 10, 248_000));
    assert_eq!(t.to, State::Closing);
    assert_eq!(h.ev(ev(OrderTag::Tp, "CANCELLED", 0, 0)).to, State::Closed);
}

// ───────────── the table walk ─────────────

/// A bracket in each state, built through the table itself.
fn in_state(s: State) -> H {
    let (mut h, _) = H::open(long());
    match s {
        State::Pending => {}
        State::Entering => {
            h.entry(4, false);
        }
        State::Open => {
            h.entry(10, true);
        }
        State::Closing => {
            h.entry(10, true);
            h.ev(Event::Flatten {
                convert_stop: false,
            });
        }
        State::Closed => {
            h.entry(10, true);
            h.child(OrderTag::Tp, 10, 254_000, true);
            h.cancelled(OrderTag::Stop, 0, 0);
        }
        State::Cancelled => {
            h.ev(Event::EntryRejected { reason: "x".into() });
        }
    }
    assert_eq!(h.b.state(), s);
    h
}

/// One event of each kind, in `Event::KINDS` order.
fn one_of_each() -> Vec<Event> {
    let s = OrderTag::Stop;
    let f = |q| Fill::new(q, px(250_000));
    vec![
        Event::EntryAck,
        Event::EntryPartialFill(f(6)),
        Event::EntryFilled(f(10)),
        Event::EntryRejected { reason: "r".into() },
        Event::EntryCancelled(f(4)),
        Event::EntryExpired(f(4)),
        Event::ChildAck { tag: s },
        Event::ChildTriggered { tag: s },
        Event::ChildPartialFill {
            tag: s,
            fill: Fill::new(2, px(248_000)),
        },
        Event::ChildFilled {
            tag: s,
            fill: Fill::new(4, px(248_000)),
        },
        Event::ChildRejected {
            tag: s,
            reason: "r".into(),
        },
        Event::ChildCancelled {
            tag: s,
            fill: Fill::NONE,
        },
        Event::CancelRejectedFilled { tag: s },
        Event::ModifyAck { tag: s, seq: 1 },
        Event::ModifyRejected {
            tag: s,
            seq: 1,
            reason: "r".into(),
        },
        Event::Flatten { convert_stop: true },
        Event::TimeAdvance,
        Event::PriceUpdate {
            ltp: px(251_000),
            atr: None,
        },
    ]
}

#[test]
fn every_state_event_pair_is_decided() {
    use State::*;
    const E: Option<State> = None;
    // rows: states in State::ALL order; columns: Event::KINDS order;
    // Some(next state) for a legal pair, None for an error.
    #[rustfmt::skip]
    let table: [[Option<State>; 18]; 6] = [
        //           ack          partial         filled       rejected         cancelled      expired        c.ack          c.trig         c.partial      c.filled       c.rejected     c.cancelled    cxl-refused    mod.ack mod.rej flatten        time           price
        /* PEND */ [Some(Pending), Some(Entering), Some(Open),  Some(Cancelled), Some(Open),    Some(Open),    E,             E,             E,             E,             E,             E,             E,             E,      E,      Some(Closing), Some(Pending), Some(Pending)],
        /* ENTR */ [Some(Entering),Some(Entering), Some(Open),  Some(Open),      Some(Open),    Some(Open),    Some(Entering),Some(Entering),Some(Entering),Some(Closing), Some(Closing), Some(Closing), E,             E,      E,      Some(Closing), Some(Entering),Some(Entering)],
        /* OPEN */ [Some(Open),    Some(Open),     Some(Open),  Some(Open),      Some(Open),    Some(Open),    Some(Open),    Some(Open),    Some(Open),    Some(Closing), Some(Closing), Some(Closing), E,             E,      E,      Some(Closing), Some(Open),    Some(Open)],
        /* CLSG */ [Some(Closing), Some(Closing),  Some(Closing),Some(Closing),  Some(Closing), Some(Closing), Some(Closing), Some(Closing), Some(Closing), Some(Closing), Some(Closing), Some(Closing), Some(Closing), E,      E,      Some(Closing), Some(Closing), Some(Closing)],
        /* CLSD */ [Some(Closed),  Some(Closed),   Some(Closed),Some(Closed),    Some(Closed),  Some(Closed),  Some(Closed),  Some(Closed),  Some(Closing), Some(Closing), Some(Closed),  Some(Closed),  Some(Closed),  E,      E,      Some(Closed),  Some(Closed),  Some(Closed)],
        /* CNCL */ [Some(Closing),  Some(Closing), Some(Closing),Some(Cancelled),Some(Closing), Some(Closing), E,             E,             E,             E,             E,             E,             E,             E,      E,      Some(Cancelled),Some(Cancelled),Some(Cancelled)],
    ];
    let events = one_of_each();
    for (k, e) in events.iter().enumerate() {
        assert_eq!(e.kind(), Event::KINDS[k]);
    }
    let mut walked = 0;
    for (r, state) in State::ALL.iter().enumerate() {
        for (c, e) in events.iter().enumerate() {
            let mut h = in_state(*state);
            let before = h.b.clone();
            match (table[r][c], h.b.handle(h.now, e)) {
                (Some(want), Ok(t)) => {
                    assert_eq!((t.from, t.to), (*state, want), "{state} x {}", e.kind());
                    if t.to.is_terminal() {
                        assert_eq!(h.b.working_legs().count(), 0, "{state} x {}", e.kind());
                    }
                    // and the same event again is a no-op
                    let snap = h.b.clone();
                    let again = h.b.handle(h.now, e).unwrap();
                    assert!(
                        !again.changed && again.commands.is_empty(),
                        "{state} x {} twice",
                        e.kind()
                    );
                    assert_eq!(h.b, snap);
                }
                (None, Err(_)) => assert_eq!(h.b, before, "error changed {state} x {}", e.kind()),
                (want, got) => panic!("{state} x {}: want {want:?}, got {got:?}", e.kind()),
            }
            walked += 1;
        }
    }
    assert_eq!(walked, State::ALL.len() * Event::KINDS.len());
}
