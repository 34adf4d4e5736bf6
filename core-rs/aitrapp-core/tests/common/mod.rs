//! Seeded synthetic market data for kernel tests (labelled synthetic: no
//! real prices). `gappy_day` replays 1-minute candles as 4 ticks a bar
//! (open, high/low, low/high, close) with jumps of 1-3 % between some bars
//! and spreads of several ticks: the shape of real data that made a
//! tick-late simulator fill both exits of a bracket.

#![allow(
    dead_code,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use aitrapp_core::tick::NS_PER_SEC;
use aitrapp_core::{EngineConfig, Instrument, Price, Segment, TickColumns};

/// 2026-01-05 09:15:00 IST (a Monday), UTC nanoseconds.
pub const OPEN: i64 = 1_767_584_700 * NS_PER_SEC;
pub const MINUTE: i64 = 60 * NS_PER_SEC;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

#[derive(Default)]
pub struct Cols {
    pub token: Vec<i64>,
    pub ts_ns: Vec<i64>,
    pub last: Vec<f64>,
    pub qty: Vec<i64>,
    pub volume: Vec<i64>,
    pub bid: Vec<f64>,
    pub ask: Vec<f64>,
}

impl Cols {
    pub fn len(&self) -> usize {
        self.token.len()
    }
    pub fn view(&self, lo: usize, hi: usize) -> TickColumns<'_> {
        TickColumns {
            token: &self.token[lo..hi],
            ts_ns: &self.ts_ns[lo..hi],
            last_price: &self.last[lo..hi],
            last_qty: &self.qty[lo..hi],
            volume: &self.volume[lo..hi],
            bid: Some(&self.bid[lo..hi]),
            ask: Some(&self.ask[lo..hi]),
            oi: None,
        }
    }
    fn push(&mut self, token: u32, ts: i64, last: i64, spread: i64, qty: i64, vol: i64) {
        self.token.push(i64::from(token));
        self.ts_ns.push(ts);
        self.last.push(last as f64 / 100.0);
        self.qty.push(qty);
        self.volume.push(vol);
        self.bid.push((last - spread / 2 * 5) as f64 / 100.0);
        self.ask
            .push((last + (spread - spread / 2) * 5) as f64 / 100.0);
    }
}

pub fn instrument(token: u32) -> Instrument {
    Instrument {
        exchange: "NSE".into(),
        tradingsymbol: format!("SYN{token}"),
        instrument_token: token,
        segment: Segment::Eq,
        tick_size: Price::from_paise(5),
        lot_size: 1,
        freeze_qty: 100_000,
    }
}

/// One synthetic day of `minutes` 1-minute bars from 09:15 for `tokens`,
/// 4 ticks a bar 15 s apart, a 1-3 % jump before `jump_share` of the bars.
pub fn gappy_day(tokens: &[u32], minutes: i64, jump_share: f64, seed: u64) -> Cols {
    let mut rng = Rng::new(seed);
    let mut c = Cols::default();
    let mut px: Vec<i64> = tokens.iter().map(|_| 250_000).collect();
    let mut vol: Vec<i64> = tokens.iter().map(|_| 0).collect();
    for m in 0..minutes {
        for (k, &tok) in tokens.iter().enumerate() {
            let mut open = px[k];
            if rng.unit() < jump_share {
                let pct = 1.0 + 2.0 * rng.unit();
                let sign = if rng.next() % 2 == 0 { 1.0 } else { -1.0 };
                open = ((open as f64 * (1.0 + sign * pct / 100.0)) / 5.0).round() as i64 * 5;
            }
            let wiggle = |r: &mut Rng| r.range(-30, 30) * 5;
            let close = (open + wiggle(&mut rng)).max(500);
            let hi = open.max(close) + rng.range(0, 20) * 5;
            let lo = (open.min(close) - rng.range(0, 20) * 5).max(500);
            let path = if rng.next() % 2 == 0 {
                [open, hi, lo, close]
            } else {
                [open, lo, hi, close]
            };
            for (j, p) in path.iter().enumerate() {
                let q = rng.range(1, 500);
                vol[k] += q;
                let spread = rng.range(1, 5);
                let ts = OPEN + m * MINUTE + j as i64 * 15 * NS_PER_SEC + k as i64 * 1_000_000;
                c.push(tok, ts, *p, spread, q, vol[k]);
            }
            px[k] = close;
        }
    }
    c
}

/// EmaCross alone with the risk limits opened so every cross can trade.
pub fn ema_config() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.strategies.orb.enabled = false;
    cfg.strategies.trend_pullback.enabled = false;
    cfg.strategies.vwap_reversion.enabled = false;
    cfg.strategies.ema_cross.enabled = true;
    cfg.risk.max_trades_per_day = 100_000;
    cfg.risk.cooldown_seconds = 0;
    cfg.risk.max_open_positions = 50;
    cfg.risk.daily_loss_stop_pct = 100.0;
    cfg.risk.max_portfolio_heat_pct = 100.0;
    // The benchmark strategy's 10-tick stops are inside the default stop floor.
    cfg.risk.min_stop_distance_bps = 0.0;
    cfg.risk.min_stop_spread_multiple = 0.0;
    cfg.risk.slippage_bps = 0.0;
    cfg
}
