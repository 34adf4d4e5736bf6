//! The trading kernel alone (no Python, no database) on the shape of the
//! peer benchmark: 1,000,000 quotes of one instrument from 2,500.00, tick
//! 0.05, spread 1-3 ticks, 1-50 ms apart (seeded, synthetic); EMA 10/30
//! cross of the mid; MARKET entry, stop and take-profit at +-10 ticks, 100
//! shares; limits opened so every cross trades when flat. The exact peer
//! ticks (numpy's generator) are run through the binding by
//! `benches/bench_kernel.py`. Run: `cargo bench -p aitrapp-core --bench kernel`.

use aitrapp_core::kernel::{BracketTemplate, Kernel};
use aitrapp_core::venue::{SimVenue, SimVenueConfig};
use aitrapp_core::{Engine, EngineConfig, Instrument, Price, Segment, TickColumns};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const TICKS: usize = 1_000_000;
/// 2024-01-02 09:15:00 IST, the peer's start.
const START: i64 = 1_704_167_100_000_000_000;

struct Columns {
    token: Vec<i64>,
    ts: Vec<i64>,
    last: Vec<f64>,
    qty: Vec<i64>,
    volume: Vec<i64>,
    bid: Vec<f64>,
    ask: Vec<f64>,
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]
fn ticks() -> Columns {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut bid, mut ts, mut vol) = (50_000i64, START, 0i64);
    let mut c = Columns {
        token: Vec::with_capacity(TICKS),
        ts: Vec::with_capacity(TICKS),
        last: Vec::with_capacity(TICKS),
        qty: Vec::with_capacity(TICKS),
        volume: Vec::with_capacity(TICKS),
        bid: Vec::with_capacity(TICKS),
        ask: Vec::with_capacity(TICKS),
    };
    for _ in 0..TICKS {
        let r = next();
        // -1, 0, +1 ticks with p = 0.3, 0.4, 0.3
        bid += match r % 10 {
            0..=2 => -1,
            3..=6 => 0,
            _ => 1,
        };
        let ask = bid + 1 + ((r >> 8) % 3) as i64;
        let q = 1 + ((r >> 16) % 999) as i64;
        vol += q;
        ts += 1_000_000 + ((r >> 32) % 49_000_000) as i64;
        c.token.push(7_001);
        c.ts.push(ts);
        c.last.push(((bid + ask) / 2) as f64 * 0.05);
        c.qty.push(q);
        c.volume.push(vol);
        c.bid.push(bid as f64 * 0.05);
        c.ask.push(ask as f64 * 0.05);
    }
    c
}

fn kernel() -> Kernel<SimVenue> {
    let inst = Instrument {
        exchange: "NSE".into(),
        tradingsymbol: "BENCH".into(),
        instrument_token: 7_001,
        segment: Segment::Eq,
        tick_size: Price::from_paise(5),
        lot_size: 1,
        freeze_qty: 1_000_000,
    };
    let mut cfg = EngineConfig::default();
    cfg.strategies.orb.enabled = false;
    cfg.strategies.trend_pullback.enabled = false;
    cfg.strategies.vwap_reversion.enabled = false;
    cfg.strategies.ema_cross.enabled = true;
    cfg.risk.per_trade_risk_pct = 0.005; // 50 rupees of 10 lakh: 100 shares at 0.50
    cfg.risk.max_trades_per_day = 1_000_000;
    cfg.risk.cooldown_seconds = 0;
    cfg.risk.daily_loss_stop_pct = 100.0;
    cfg.risk.max_portfolio_heat_pct = 100.0;
    // The peer's 10-tick stops are inside the default stop floor.
    cfg.risk.min_stop_distance_bps = 0.0;
    cfg.risk.min_stop_spread_multiple = 0.0;
    cfg.risk.slippage_bps = 0.0;
    cfg.session.entry_end = "23:50".into();
    let venue_cfg: SimVenueConfig =
        serde_json::from_str(r#"{"slippage_bps": 0.0}"#).expect("venue config");
    let venue = SimVenue::new(venue_cfg, std::slice::from_ref(&inst)).expect("venue");
    let template = BracketTemplate::from_json(
        r#"{"entry_type": "MARKET", "entry_timeout_s": 60, "square_off": "23:55"}"#,
    )
    .expect("template");
    let engine = Engine::new(cfg, vec![inst]).expect("engine");
    Kernel::new(engine, venue, template).expect("kernel")
}

fn run(c: &mut Criterion) {
    let t = ticks();
    let view = TickColumns {
        token: &t.token,
        ts_ns: &t.ts,
        last_price: &t.last,
        last_qty: &t.qty,
        volume: &t.volume,
        bid: Some(&t.bid),
        ask: Some(&t.ask),
        oi: None,
    };
    // What the workload does, printed once with the figures.
    let mut once = kernel();
    once.run(&view).expect("equal columns");
    eprintln!("kernel workload: {:?}", once.counters());
    let mut group = c.benchmark_group("kernel");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TICKS as u64));
    group.bench_function("run_1m_ticks_ema_cross_brackets", |b| {
        b.iter_batched(
            kernel,
            |mut k| {
                k.run(&view).expect("equal columns");
                black_box(k.take_log().trades.plan_id.len())
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, run);
criterion_main!(benches);
