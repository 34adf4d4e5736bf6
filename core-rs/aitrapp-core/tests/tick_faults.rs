//! Hostile ticks: bad timestamps and absurd prices are refused without ever
//! freezing an instrument.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use aitrapp_core::tick::{NS_PER_DAY, NS_PER_SEC};
use aitrapp_core::{Engine, EngineConfig, Instrument, Price, RawTick, Segment, TickReject};

/// 2026-01-01 09:15:00 IST.
const OPEN: i64 = 1_767_239_100_000_000_000;
/// 2116-01-01 10:00 IST, about: a century-off stamp.
const Y2116: i64 = OPEN + 36_524 * NS_PER_DAY + 45 * 60 * NS_PER_SEC;

fn inst(token: u32, segment: Segment, tick_paise: i64, lot: u32) -> Instrument {
    Instrument {
        exchange: if segment == Segment::Eq { "NSE" } else { "NFO" }.into(),
        tradingsymbol: format!("SYM{token}"),
        instrument_token: token,
        segment,
        tick_size: Price::from_paise(tick_paise),
        lot_size: lot,
        freeze_qty: lot * 100,
    }
}

fn tick(token: i64, ts_ns: i64, rupees: f64, volume: i64) -> RawTick {
    RawTick {
        token,
        ts_ns,
        last_price: rupees,
        last_qty: 1,
        volume,
        bid: Some(rupees - 0.05),
        ask: Some(rupees + 0.05),
        oi: None,
    }
}

fn equity_engine() -> Engine {
    Engine::new(EngineConfig::default(), vec![inst(1, Segment::Eq, 5, 1)]).unwrap()
}

/// The case: one tick stamped 30 days ahead used to become the
/// instrument's last time, and 0 of the next 100 correct ticks were accepted.
#[test]
fn a_tick_from_the_future_never_freezes_the_instrument() {
    for bad_ts in [OPEN + 30 * NS_PER_DAY + 3_600 * NS_PER_SEC, Y2116, i64::MAX] {
        let mut e = equity_engine();
        let mut out = Vec::new();
        for s in 0..10 {
            e.on_tick(&tick(1, OPEN + s * NS_PER_SEC, 100.0, s), &mut out)
                .unwrap();
        }
        assert_eq!(
            e.on_tick(&tick(1, bad_ts, 100.0, 10), &mut out),
            Err(TickReject::TimeOutOfRange)
        );
        let accepted = (10..110)
            .filter(|s| {
                e.on_tick(&tick(1, OPEN + s * NS_PER_SEC, 100.0, *s), &mut out)
                    .is_ok()
            })
            .count();
        assert_eq!(accepted, 100, "stamp {bad_ts}");
        let c = e.tick_counters();
        assert_eq!(c.rejected(TickReject::TimeOutOfRange), 1);
        assert_eq!(c.rejected(TickReject::OutOfOrder), 0);
    }
}

#[test]
fn stamps_outside_the_session_or_the_day_are_refused() {
    let mut e = equity_engine();
    let mut out = Vec::new();
    let hour = 3_600 * NS_PER_SEC;
    // 09:15 sets the trading day; 08:30 and 16:00 are the edges of the window.
    e.on_tick(&tick(1, OPEN, 100.0, 1), &mut out).unwrap();
    for ts in [
        OPEN - NS_PER_DAY, // yesterday
        OPEN + NS_PER_DAY, // tomorrow, before the day has moved on
        OPEN + 7 * hour,   // 16:15
        0,                 // 1970
        i64::MIN,
        OPEN - 45 * 60 * NS_PER_SEC - 1, // 08:29:59.999999999
    ] {
        assert_eq!(
            e.on_tick(&tick(1, ts, 100.0, 1), &mut out),
            Err(TickReject::TimeOutOfRange),
            "{ts}"
        );
    }
    e.on_tick(
        &tick(1, OPEN + 6 * hour + 45 * 60 * NS_PER_SEC, 100.0, 2),
        &mut out,
    )
    .unwrap(); // 16:00:00
               // The next day starts when the caller moves time there.
    e.advance_time(OPEN + NS_PER_DAY - hour);
    assert_eq!(e.trading_day(), Some(e.portfolio().day.unwrap()));
    e.on_tick(&tick(1, OPEN + NS_PER_DAY, 100.0, 1), &mut out)
        .unwrap();
}

#[test]
fn live_ticks_must_be_near_the_callers_clock() {
    let mut e = equity_engine();
    let mut out = Vec::new();
    let now = OPEN + 3_600 * NS_PER_SEC;
    e.set_clock_ns(now);
    assert_eq!(e.clock_ns(), Some(now));
    // Within the session, same day, but 121 s off the clock either way.
    for ts in [now - 121 * NS_PER_SEC, now + 121 * NS_PER_SEC] {
        assert_eq!(
            e.on_tick(&tick(1, ts, 100.0, 1), &mut out),
            Err(TickReject::TimeOutOfRange)
        );
    }
    e.on_tick(&tick(1, now - 120 * NS_PER_SEC, 100.0, 1), &mut out)
        .unwrap();
    e.on_tick(&tick(1, now + NS_PER_SEC, 100.0, 2), &mut out)
        .unwrap();
    // The clock moves on; so does the window.
    e.set_clock_ns(now + 600 * NS_PER_SEC);
    assert_eq!(
        e.on_tick(&tick(1, now + 2 * NS_PER_SEC, 100.0, 3), &mut out),
        Err(TickReject::TimeOutOfRange)
    );
    e.on_tick(&tick(1, now + 600 * NS_PER_SEC, 100.0, 3), &mut out)
        .unwrap();
}

#[test]
fn absurd_prices_are_refused_as_out_of_band() {
    let mut e = equity_engine();
    let mut out = Vec::new();
    e.on_tick(&tick(1, OPEN, 100.0, 1), &mut out).unwrap();
    let cases = [
        tick(1, OPEN + NS_PER_SEC, 100_000.0, 2), // 1000x
        tick(1, OPEN + NS_PER_SEC, 1e12, 2),
        tick(1, OPEN + NS_PER_SEC, 0.10, 2),
        tick(1, OPEN + NS_PER_SEC, 120.05, 2), // just past +20%
        RawTick {
            ask: Some(1e9),
            ..tick(1, OPEN + NS_PER_SEC, 100.0, 2)
        },
    ];
    for t in cases {
        assert_eq!(e.on_tick(&t, &mut out), Err(TickReject::PriceBand), "{t:?}");
        assert_eq!(e.last_price(1), Some(Price::from_paise(10_000)));
    }
    let at_edge = RawTick {
        ask: Some(120.0),
        ..tick(1, OPEN + NS_PER_SEC, 120.0, 2)
    };
    e.on_tick(&at_edge, &mut out).unwrap(); // exactly +20%
    assert_eq!(e.tick_counters().rejected(TickReject::PriceBand), 5);
}

#[test]
fn the_previous_close_anchors_the_band_and_a_security_may_have_its_own() {
    let mut e = equity_engine();
    let mut out = Vec::new();
    e.set_previous_close(1, 100.0, Some(5.0)).unwrap();
    // A first print 6% off a 5% band is refused; it does not anchor the day.
    assert_eq!(
        e.on_tick(&tick(1, OPEN, 106.0, 1), &mut out),
        Err(TickReject::PriceBand)
    );
    e.on_tick(&tick(1, OPEN, 104.9, 1), &mut out).unwrap();
    assert!(e.set_previous_close(9, 100.0, None).is_err());
    assert!(e.set_previous_close(1, f64::NAN, None).is_err());
    assert!(e.set_previous_close(1, 100.0, Some(-1.0)).is_err());
    // A stale close: 20 agreeing ticks at the real price move the anchor.
    let mut e = equity_engine();
    e.set_previous_close(1, 100.0, None).unwrap();
    let refused = (0..25)
        .filter(|s| {
            e.on_tick(&tick(1, OPEN + s * NS_PER_SEC, 150.0, *s), &mut out)
                .is_err()
        })
        .count();
    assert_eq!(refused, 19);
    assert_eq!(e.tick_counters().band_reanchored, 1);
}

/// A small, seeded generator (no dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per instrument: where its correct ticks are.
struct Good {
    token: i64,
    tick_paise: i64,
    /// Band-relevant start of the day's prices, and the current price.
    base: i64,
    price: i64,
    ts: i64,
    volume: i64,
    /// Cumulative volume of the last accepted tick.
    accepted_volume: i64,
    /// The band has no floor (options): a price far below is not bad data.
    no_floor: bool,
}

impl Good {
    fn raw(&self) -> RawTick {
        #[allow(clippy::cast_precision_loss)]
        let r = |p: i64| p as f64 / 100.0;
        RawTick {
            token: self.token,
            ts_ns: self.ts,
            last_price: r(self.price),
            last_qty: 1,
            volume: self.volume,
            bid: Some(r(self.price - self.tick_paise)),
            ask: Some(r(self.price + self.tick_paise)),
            oi: None,
        }
    }
}

/// The kinds of bad tick, and the reason each must be refused with (`None`:
/// refused for one of several reasons, or possibly valid).
const BAD_KINDS: u64 = 16;

fn bad_tick(g: &Good, kind: u64, rng: &mut Lcg) -> (RawTick, Option<TickReject>) {
    let t = g.raw();
    let hour = 3_600 * NS_PER_SEC;
    match kind {
        0 => (
            RawTick {
                ts_ns: g.ts + 30 * NS_PER_DAY,
                ..t
            },
            Some(TickReject::TimeOutOfRange),
        ),
        1 => (
            RawTick { ts_ns: Y2116, ..t },
            Some(TickReject::TimeOutOfRange),
        ),
        2 => (
            RawTick {
                ts_ns: if rng.below(2) == 0 {
                    i64::MAX
                } else {
                    i64::MIN
                },
                ..t
            },
            Some(TickReject::TimeOutOfRange),
        ),
        3 => (
            RawTick {
                ts_ns: g.ts - NS_PER_DAY,
                ..t
            },
            Some(TickReject::TimeOutOfRange),
        ),
        4 => (
            RawTick {
                ts_ns: g.ts + 12 * hour, // the small hours of the next day, or tonight
                ..t
            },
            Some(TickReject::TimeOutOfRange),
        ),
        5 => (
            RawTick {
                last_price: f64::NAN,
                ..t
            },
            Some(TickReject::NonFinitePrice),
        ),
        6 => (
            RawTick {
                last_price: f64::NEG_INFINITY,
                ..t
            },
            Some(TickReject::NonFinitePrice),
        ),
        7 => (
            RawTick {
                last_price: -t.last_price,
                ..t
            },
            Some(TickReject::NonPositivePrice),
        ),
        8 => (
            RawTick {
                last_price: 1e12,
                bid: None,
                ask: None,
                ..t
            },
            Some(TickReject::PriceBand),
        ),
        9 => (
            RawTick {
                last_price: t.last_price * 1_000.0,
                bid: None,
                ask: None,
                ..t
            },
            Some(TickReject::PriceBand),
        ),
        10 => (
            RawTick {
                last_price: t.last_price / 1_000.0,
                bid: None,
                ask: None,
                ..t
            },
            // Below the grid, or valid under an option's floorless band.
            if g.no_floor {
                None
            } else {
                Some(TickReject::PriceBand)
            }
            .filter(|_| t.last_price / 1_000.0 >= 0.05),
        ),
        11 => (
            RawTick {
                ask: Some(t.last_price - 1.0),
                ..t
            },
            Some(TickReject::CrossedQuote),
        ),
        12 => (
            RawTick { volume: -5, ..t },
            Some(TickReject::NegativeQuantity),
        ),
        13 => (
            RawTick {
                volume: g.accepted_volume - 1,
                ..t
            },
            if g.accepted_volume > 0 {
                Some(TickReject::VolumeDecreased)
            } else {
                None
            },
        ),
        14 => (
            RawTick {
                ts_ns: g.ts - NS_PER_SEC,
                ..t
            },
            None, // out of order, or before the session
        ),
        _ => (
            RawTick {
                token: i64::from(u32::MAX) + 7,
                ..t
            },
            Some(TickReject::UnknownInstrument),
        ),
    }
}

/// Replays `n` seeded ticks over `days` days on four instruments, one in ten
/// hostile; after each bad tick the next correct one must be accepted.
/// Returns (accepted, refused, band re-anchors).
fn fuzz(n: u64, days: i64, seed: u64) -> (u64, u64, u64) {
    let instruments = vec![
        inst(1, Segment::Eq, 5, 1),
        inst(2, Segment::Fut, 10, 65),
        inst(3, Segment::Opt, 5, 65),
        inst(4, Segment::Idx, 5, 1),
    ];
    let mut e = Engine::new(EngineConfig::default(), instruments).unwrap();
    let mut rng = Lcg(seed);
    let mut goods: Vec<Good> = [
        (1, 5, 250_000, false),
        (2, 10, 2_400_000, false),
        (3, 5, 12_000, true),
        (4, 5, 2_390_000, false),
    ]
    .iter()
    .map(|&(token, tick_paise, base, no_floor)| Good {
        token,
        tick_paise,
        base,
        price: base,
        ts: OPEN,
        volume: 0,
        accepted_volume: 0,
        no_floor,
    })
    .collect();
    let per_day = n / u64::try_from(days).unwrap();
    // 09:15 to about 15:15 for each instrument's share of the day's ticks.
    let step = 6 * 3_600 * NS_PER_SEC / i64::try_from(per_day / 4 + 1).unwrap();
    let (mut sent, mut refused_bad) = (0u64, 0u64);
    let mut out = Vec::new();
    for day in 0..days {
        let open = OPEN + day * NS_PER_DAY;
        e.advance_time(open - 600 * NS_PER_SEC);
        for g in &mut goods {
            g.ts = open;
            g.volume = 0;
            g.accepted_volume = 0;
        }
        let mut today = 0;
        while today < per_day && sent < n {
            let k = usize::try_from(rng.below(4)).unwrap();
            let g = &mut goods[k];
            g.ts += 1 + i64::try_from(rng.below(u64::try_from(2 * step).unwrap())).unwrap();
            g.volume += i64::try_from(rng.below(50)).unwrap();
            let move_ticks = i64::try_from(rng.below(5)).unwrap() - 2;
            g.price =
                (g.price + move_ticks * g.tick_paise).clamp(g.base * 95 / 100, g.base * 105 / 100);
            g.price -= g.price % g.tick_paise;
            if rng.below(10) == 0 && sent + 1 < n {
                let kind = rng.below(BAD_KINDS);
                let (bad, want) = bad_tick(g, kind, &mut rng);
                let got = e.on_tick(&bad, &mut out);
                if let Some(w) = want {
                    assert_eq!(got, Err(w), "kind {kind}: {bad:?}");
                }
                refused_bad += u64::from(got.is_err());
                sent += 1;
                today += 1;
            }
            let good = g.raw();
            assert_eq!(e.on_tick(&good, &mut out), Ok(()), "frozen: {good:?}");
            g.accepted_volume = g.volume;
            out.clear();
            sent += 1;
            today += 1;
        }
    }
    let c = e.tick_counters().clone();
    assert_eq!(c.total_rejected(), refused_bad);
    assert_eq!(c.accepted + c.total_rejected(), sent);
    // Every instrument still takes a correct tick at the end.
    for g in &mut goods {
        g.ts += NS_PER_SEC;
        assert_eq!(e.on_tick(&g.raw(), &mut out), Ok(()));
    }
    (c.accepted, c.total_rejected(), c.band_reanchored)
}

/// The acceptance: 10^6 fuzzed ticks, 0 panics, 0 frozen
/// instruments (about 1.5 s in a debug build).
#[test]
fn a_million_fuzzed_ticks_never_panic_or_freeze_an_instrument() {
    let (accepted, refused, reanchored) = fuzz(1_000_000, 20, 20_260_101);
    assert_eq!(accepted + refused, 1_000_000);
    assert!(
        refused > 80_000 && accepted > 850_000,
        "{accepted} {refused}"
    );
    assert_eq!(reanchored, 0, "no run of agreeing bad prints");
}
