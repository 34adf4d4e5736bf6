//! Strategies: each turns ticks (and closed bars) of one instrument into
//! signals. One instance per instrument; all behind [`Strategy`].
//!
//! Strategies only propose. Whether a signal becomes a plan, and how big, is
//! the risk gate's decision.

mod ema_cross;
mod orb;
mod trend_pullback;
mod vwap_reversion;

pub use ema_cross::EmaCross;
pub use orb::Orb;
pub use trend_pullback::TrendPullback;
pub use vwap_reversion::VwapReversion;

use crate::bars::Bar;
use crate::config::{ConfigError, EngineConfig};
use crate::price::Price;
use crate::side::Side;
use crate::tick::Tick;

/// What a strategy sees on each tick.
#[derive(Debug, Clone, Copy)]
pub struct MarketView<'a> {
    pub tick: &'a Tick,
    pub tick_size: Price,
    /// Session VWAP in paise, once volume has traded since the open.
    pub vwap_paise: Option<f64>,
    /// Volume-weighted standard deviation of the session's prices around
    /// the VWAP, in paise.
    pub vwap_sd_paise: Option<f64>,
}

/// A proposed trade; all prices on the instrument's tick grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub token: u32,
    pub side: Side,
    pub entry: Price,
    pub stop: Price,
    pub tp: Price,
    pub strategy: &'static str,
    pub reason: String,
    /// Exchange time (UTC ns) of the tick that produced the signal.
    pub signal_ts: i64,
}

impl Signal {
    /// Stop and take-profit on the correct sides of the entry, all positive.
    pub fn is_well_formed(&self) -> bool {
        let positive = self.stop.paise() > 0 && self.tp.paise() > 0 && self.entry.paise() > 0;
        positive
            && match self.side {
                Side::Buy => self.stop < self.entry && self.entry < self.tp,
                Side::Sell => self.tp < self.entry && self.entry < self.stop,
            }
    }
}

pub trait Strategy: Send + Sync + std::fmt::Debug {
    /// Stable name, part of plan ids (no '|').
    fn name(&self) -> &'static str;
    /// A new IST trading day begins for this instrument.
    fn on_session_start(&mut self);
    /// A bar of this instrument closed (before the tick that follows it).
    fn on_bar(&mut self, bar: &Bar);
    /// An accepted tick of this instrument; may propose a trade.
    fn on_tick(&mut self, view: &MarketView<'_>) -> Option<Signal>;
}

/// One instance of every enabled strategy, in a fixed order.
pub fn build(cfg: &EngineConfig) -> Result<Vec<Box<dyn Strategy>>, ConfigError> {
    let times = cfg.session_times()?;
    let s = &cfg.strategies;
    let mut out: Vec<Box<dyn Strategy>> = Vec::with_capacity(4);
    if s.orb.enabled {
        out.push(Box::new(Orb::new(&s.orb, cfg.orb_stop_mode()?, &times)));
    }
    if s.trend_pullback.enabled {
        out.push(Box::new(TrendPullback::new(&s.trend_pullback)));
    }
    if s.vwap_reversion.enabled {
        out.push(Box::new(VwapReversion::new(
            &s.vwap_reversion,
            cfg.vwap_band()?,
            &times,
        )));
    }
    if s.ema_cross.enabled {
        out.push(Box::new(EmaCross::new(&s.ema_cross)));
    }
    Ok(out)
}

/// Brings a paise level computed in floats onto the grid, away from `entry`
/// (a stop further away means a smaller size; a target further away keeps
/// the reward ratio at or above what was asked).
fn away_from_entry(level: f64, entry: Price, tick: Price) -> Option<Price> {
    if !level.is_finite() || tick.paise() <= 0 {
        return None;
    }
    let t = tick.paise() as f64;
    let steps = if level < entry.paise() as f64 {
        (level / t).floor()
    } else {
        (level / t).ceil()
    };
    let paise = steps * t;
    if paise.abs() > 1e15 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // bounded just above
    Some(Price::from_paise(paise as i64))
}

/// Builds a signal with a float stop and a take-profit at `rr` x risk.
fn rr_signal(
    view: &MarketView<'_>,
    side: Side,
    entry: Price,
    stop_level: f64,
    rr: f64,
    strategy: &'static str,
    reason: String,
) -> Option<Signal> {
    let stop = away_from_entry(stop_level, entry, view.tick_size)?;
    let risk = (entry.paise() - stop.paise()).abs() as f64;
    let tp_level = entry.paise() as f64 + side.sign() as f64 * rr * risk;
    let tp = away_from_entry(tp_level, entry, view.tick_size)?;
    signal(view, side, entry, stop, tp, strategy, reason)
}

fn signal(
    view: &MarketView<'_>,
    side: Side,
    entry: Price,
    stop: Price,
    tp: Price,
    strategy: &'static str,
    reason: String,
) -> Option<Signal> {
    let s = Signal {
        token: view.tick.token,
        side,
        entry,
        stop,
        tp,
        strategy,
        reason,
        signal_ts: view.tick.ts_ns,
    };
    s.is_well_formed().then_some(s)
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Hand-built tick paths for strategy scenarios.
    use crate::price::Price;
    use crate::tick::{IstTime, Tick, NS_PER_SEC};

    /// 2026-01-01 09:15:00 IST in UTC ns.
    pub const OPEN: i64 = 1_767_239_100_000_000_000;

    pub fn tick(sec: i64, paise: i64) -> Tick {
        let ts = OPEN + sec * NS_PER_SEC;
        Tick {
            token: 7,
            ts_ns: ts,
            ist: IstTime::from_utc_ns(ts),
            last: Price::from_paise(paise),
            last_qty: 1,
            volume: 0,
            volume_delta: 1,
            bid: None,
            ask: None,
            oi: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_away_from_entry() {
        let e = Price::from_paise(10_000);
        let t = Price::from_paise(5);
        assert_eq!(
            away_from_entry(9_997.0, e, t),
            Some(Price::from_paise(9_995))
        );
        assert_eq!(
            away_from_entry(10_001.0, e, t),
            Some(Price::from_paise(10_005))
        );
        assert_eq!(
            away_from_entry(10_005.0, e, t),
            Some(Price::from_paise(10_005))
        );
        assert_eq!(away_from_entry(f64::NAN, e, t), None);
    }

    #[test]
    fn every_strategy_can_be_switched_off() {
        let mut cfg = EngineConfig::default();
        let names = |c: &EngineConfig| -> Vec<&'static str> {
            build(c).unwrap().iter().map(|s| s.name()).collect()
        };
        // The benchmark strategy is off by default.
        assert_eq!(names(&cfg), ["ORB", "TrendPullback", "VWAPReversion"]);
        cfg.strategies.ema_cross.enabled = true;
        assert_eq!(build(&cfg).unwrap().len(), 4);
        cfg.strategies.orb.enabled = false;
        cfg.strategies.ema_cross.enabled = false;
        assert_eq!(names(&cfg), ["TrendPullback", "VWAPReversion"]);
    }
}
