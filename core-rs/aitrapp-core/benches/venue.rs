//! SimVenue matching path: 1,000,000 quotes of one instrument at about
//! 2,500.00 (tick 0.05, spread 1-3 ticks, 1-50 ms apart), with no working
//! order and with three (a resting buy limit, a sell stop and a sell limit
//! that the walk never reaches). Run: `cargo bench -p aitrapp-core --bench venue`.

use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{Protection, Quote, SimVenue, SimVenueConfig, Validity, VenueOrder};
use aitrapp_core::{Instrument, Price, Segment, Side};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const QUOTES: usize = 1_000_000;
/// 2026-01-01 09:15:00 IST.
const OPEN: i64 = 1_767_239_100_000_000_000;

fn instrument() -> Instrument {
    Instrument {
        exchange: "NSE".into(),
        tradingsymbol: "RELIANCE".into(),
        instrument_token: 738_561,
        segment: Segment::Eq,
        tick_size: Price::from_paise(5),
        lot_size: 1,
        freeze_qty: 100_000,
    }
}

/// A seeded (synthetic) random walk kept within +-10 rupees of 2,500.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
fn quotes() -> Vec<Quote> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut px, mut ts, mut vol) = (250_000i64, OPEN, 0u64);
    (0..QUOTES)
        .map(|_| {
            let r = next();
            px = (px + 5 * ((r % 5) as i64 - 2)).clamp(249_000, 251_000);
            ts += (1 + (r >> 8) % 50) as i64 * 1_000_000;
            let spread = 5 * (1 + ((r >> 16) % 3) as i64);
            let qty = 1 + (r >> 24) % 100;
            vol += qty;
            Quote {
                token: 738_561,
                ts_ns: ts,
                last: Price::from_paise(px),
                bid: Some(Price::from_paise(px - spread)),
                ask: Some(Price::from_paise(px + spread)),
                volume: vol,
                last_qty: qty,
            }
        })
        .collect()
}

fn order(side: Side, t: OrderType, price: Option<i64>, trigger: Option<i64>) -> VenueOrder {
    VenueOrder {
        client_order_id: format!("{:024x}:{}", 1, t.as_str()),
        tag: "bench".into(),
        token: 738_561,
        side,
        qty: 100,
        order_type: t,
        price: price.map(Price::from_paise),
        trigger: trigger.map(Price::from_paise),
        validity: Validity::Day,
        protection: Protection::Auto,
    }
}

fn venue(working: bool) -> SimVenue {
    let mut v = SimVenue::new(SimVenueConfig::default(), &[instrument()]).expect("venue");
    let mut out = Vec::new();
    if working {
        v.submit(
            OPEN,
            order(Side::Buy, OrderType::Limit, Some(240_000), None),
            &mut out,
        );
        v.submit(
            OPEN,
            order(Side::Sell, OrderType::SlM, None, Some(240_000)),
            &mut out,
        );
        v.submit(
            OPEN,
            order(Side::Sell, OrderType::Limit, Some(260_000), None),
            &mut out,
        );
    }
    v
}

fn bench(c: &mut Criterion) {
    let qs = quotes();
    let mut g = c.benchmark_group("sim_venue");
    g.throughput(Throughput::Elements(QUOTES as u64));
    g.sample_size(20);
    for (name, working) in [("quotes_no_orders", false), ("quotes_3_working", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || (venue(working), Vec::with_capacity(16)),
                |(mut v, mut out)| {
                    for q in &qs {
                        v.on_quote(q, &mut out);
                    }
                    assert_eq!(v.working_count(), if working { 3 } else { 0 });
                    black_box(out.len())
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
