//! SimVenue replays: seeded synthetic sessions give the same updates run
//! after run, however the timers are driven.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // test rng indices

mod sim_support;

use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{SimVenueConfig, VenueModify, VenueStatus, VenueUpdate};
use rstest::rstest;
use sim_support::*;

const NO_CHANGE: VenueModify = VenueModify {
    qty: None,
    price: None,
    trigger: None,
    order_type: None,
};

/// A seeded pseudo-random generator (SplitMix64) for synthetic scenarios.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// How a scenario drives the venue's timers.
#[derive(Clone, Copy, PartialEq)]
enum Drive {
    /// Only ticks fire timers (the broker API; a tick without a price moves no time).
    Ticks,
    /// `advance_to(ts)` before every tick and request, as the kernel does.
    Advance,
    /// The same, one timer at a time through `next_due_ns`.
    Step,
}

/// Synthetic (seeded) session: random walks on the grid of three instruments,
/// one-sided and crossed quotes, bad prices (if `bad`), gaps; random orders,
/// modifies and cancels.
fn play(seed: u64, cfg: SimVenueConfig, drive: Drive, bad: bool) -> Vec<VenueUpdate> {
    let mut rng = Rng(seed);
    let mut h = H::new(cfg);
    let markets = [
        (EQ, 250_000i64, 5i64, 1u64),
        (FUT, 2_400_000, 10, 65),
        (PENNY, 950, 1, 1),
    ];
    let mut px: Vec<i64> = markets.iter().map(|m| m.1).collect();
    let mut vol = [1000u64; 3];
    let (mut ts, mut out, mut ids) = (T0, Vec::new(), Vec::new());
    for _ in 0..600 {
        ts += rng.pick(&[0, MS, 7 * MS, 120 * MS, 900 * MS, 15 * SEC]);
        let k = rng.below(3) as usize;
        let (token, _, tick, lot) = markets[k];
        let jump = if rng.below(20) == 0 { 40 } else { 3 };
        px[k] = (px[k] + (rng.below(2 * jump + 1) as i64 - jump as i64) * tick).max(tick);
        vol[k] += rng.pick(&[0, 0, 10, 65, 130, 1000]);
        let spread = (1 + rng.below(3) as i64) * tick;
        let (bid, ask) = match rng.below(10) {
            0 => (None, None),
            1 => (Some(px[k] + spread), Some(px[k] - spread)), // crossed
            _ => (Some(px[k] - spread), Some(px[k] + spread)),
        };
        let last = if bad && rng.below(50) == 0 { 0 } else { px[k] };
        match drive {
            Drive::Ticks => {}
            Drive::Advance => h.v.advance_to(ts, &mut out),
            Drive::Step => {
                while let Some(due) = h.v.next_due_ns().filter(|&d| d <= ts) {
                    h.v.advance_to(due, &mut out);
                }
            }
        }
        let q = aitrapp_core::venue::Quote {
            token,
            ts_ns: ts,
            last: aitrapp_core::Price::from_paise(last),
            bid: bid.map(aitrapp_core::Price::from_paise),
            ask: ask.map(aitrapp_core::Price::from_paise),
            volume: vol[k],
            last_qty: 1 + rng.below(200),
        };
        h.v.on_quote(&q, &mut out);
        if rng.below(4) != 0 {
            continue;
        }
        let action = rng.below(10);
        if action < 7 || ids.is_empty() {
            let side = rng.pick(&[BUY, SELL]);
            let t = rng.pick(&[MKT, LMT, SL, SLM]);
            // A fifth of the stops are sent on the wrong side of the market.
            let wrong = if rng.below(5) == 0 { -1 } else { 1 };
            let sign = if side == BUY { wrong } else { -wrong };
            let away = (1 + rng.below(6) as i64) * tick * sign;
            let mut b = h
                .order(side, lot * (1 + rng.below(3)), t)
                .token(token)
                .mp(-1.0);
            b = match t {
                OrderType::Limit => b.price((px[k] + (rng.below(13) as i64 - 6) * tick).max(tick)),
                OrderType::Sl => b
                    .trigger((px[k] + away).max(tick))
                    .price((px[k] + 2 * away).max(tick)),
                OrderType::SlM => b.trigger((px[k] + away).max(tick)),
                OrderType::Market => b,
            };
            if rng.below(7) == 0 {
                b = b.ioc();
            }
            ids.push(h.v.submit(ts, b.build(), &mut out));
        } else if action < 9 {
            let _ = h.v.cancel(ts, rng.pick(&ids));
        } else {
            let m = VenueModify {
                order_type: Some(OrderType::Market),
                ..NO_CHANGE
            };
            let _ = h.v.modify(ts, rng.pick(&ids), m);
        }
    }
    h.v.feed_ended(ts, &mut out);
    out
}

#[rstest]
#[case(1)]
#[case(2)]
#[case(3)]
#[case(4)]
#[case(5)]
#[case(6)]
fn same_inputs_give_the_same_updates_however_timers_are_driven(#[case] seed: u64) {
    let mut c = cfg();
    if seed % 3 == 1 {
        c.participation_pct = Some(20.0);
        c.fill_latency_ns = 30 * MS;
    }
    if seed % 3 == 2 {
        c.ack_latency_ns = 0;
        c.no_tick_wait_ns = 500 * MS;
    }
    let run = |drive, bad| play(seed, c.clone(), drive, bad);
    let ticks = run(Drive::Ticks, true);
    assert_eq!(ticks, run(Drive::Ticks, true), "deterministic");
    let advance = run(Drive::Advance, true);
    assert_eq!(advance, run(Drive::Step, true));
    assert!(
        advance.iter().any(|u| u.last_fill_qty > 0),
        "the scenario exercises fills"
    );
    assert!(advance.iter().any(|u| u.status == VenueStatus::Rejected));
    assert!(advance.iter().any(|u| u.triggered));
    // Driven like the kernel, updates come out in exchange-time order.
    assert!(advance.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    // Without price-less ticks (which move no time on the broker path) the
    // ticks alone fire every timer at its own time, as the kernel does.
    assert_eq!(run(Drive::Ticks, false), run(Drive::Advance, false));
}
