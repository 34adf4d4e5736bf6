//! Batch path of the engine: 1,000,000 ticks across 100 instruments, all
//! four strategies on, default risk config (so most signals are blocked,
//! as in a real session). Run: `cargo bench -p aitrapp-core --bench engine`.

use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::{Engine, EngineConfig, Instrument, Price, Segment, TickColumns};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const TICKS: usize = 1_000_000;
const INSTRUMENTS: usize = 100;
/// 2026-01-01 09:15:00 IST.
const OPEN: i64 = 1_767_239_100_000_000_000;
/// A 6h15m session.
const SESSION_NS: i64 = 22_500 * NS_PER_SEC;

struct Columns {
    token: Vec<i64>,
    ts_ns: Vec<i64>,
    last: Vec<f64>,
    qty: Vec<i64>,
    volume: Vec<i64>,
    bid: Vec<f64>,
    ask: Vec<f64>,
}

/// A seeded random walk per instrument, 5-paise ticks, one-tick spread.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn synthetic() -> Columns {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut price = vec![0i64; INSTRUMENTS];
    let mut cum = vec![0i64; INSTRUMENTS];
    for (i, p) in price.iter_mut().enumerate() {
        *p = 10_000 + 2_000 * i as i64;
    }
    let mut c = Columns {
        token: Vec::with_capacity(TICKS),
        ts_ns: Vec::with_capacity(TICKS),
        last: Vec::with_capacity(TICKS),
        qty: Vec::with_capacity(TICKS),
        volume: Vec::with_capacity(TICKS),
        bid: Vec::with_capacity(TICKS),
        ask: Vec::with_capacity(TICKS),
    };
    for i in 0..TICKS {
        let r = next();
        let k = (r % INSTRUMENTS as u64) as usize;
        let step = ((r >> 20) % 5) as i64 - 2;
        price[k] = (price[k] + 5 * step).max(100);
        let q = 1 + ((r >> 40) % 50) as i64;
        cum[k] += q;
        c.token.push(1_000 + k as i64);
        c.ts_ns.push(OPEN + (i as i64) * SESSION_NS / TICKS as i64);
        c.last.push(price[k] as f64 / 100.0);
        c.qty.push(q);
        c.volume.push(cum[k]);
        c.bid.push((price[k] - 5) as f64 / 100.0);
        c.ask.push((price[k] + 5) as f64 / 100.0);
    }
    c
}

fn instruments() -> Vec<Instrument> {
    (0..INSTRUMENTS)
        .map(|i| Instrument {
            exchange: "NSE".into(),
            tradingsymbol: format!("SYM{i:03}"),
            instrument_token: 1_000 + u32::try_from(i).unwrap_or(0),
            segment: Segment::Eq,
            tick_size: Price::from_paise(5),
            lot_size: 1,
            freeze_qty: 100_000,
        })
        .collect()
}

/// The default config with the benchmark strategy (EmaCross) switched on.
fn all_strategies() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.strategies.ema_cross.enabled = true;
    cfg
}

fn batch(c: &mut Criterion) {
    let cols = synthetic();
    let view = TickColumns {
        token: &cols.token,
        ts_ns: &cols.ts_ns,
        last_price: &cols.last,
        last_qty: &cols.qty,
        volume: &cols.volume,
        bid: Some(&cols.bid),
        ask: Some(&cols.ask),
        oi: None,
    };
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TICKS as u64));
    group.bench_function("on_batch_1m_ticks_100_instruments", |b| {
        b.iter_batched(
            || Engine::new(all_strategies(), instruments()).expect("valid engine"),
            |mut engine| {
                let mut outcomes = 0usize;
                engine
                    .on_batch(&view, |_, o| {
                        outcomes += 1;
                        black_box(o);
                    })
                    .expect("equal columns");
                black_box(outcomes)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
