//! The `ticks` section: when an exchange timestamp is believable and how far
//! a price may stray from its daily anchor.

use super::{invalid, scaled, ConfigError, EngineConfig};
use crate::instrument::Segment;
use crate::tick::{PriceBand, TickRules, NS_PER_DAY, NS_PER_SEC};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicksConfig {
    /// A tick is valid from `session.pre_open` less this margin to
    /// `session.market_close` plus it (default 30: 08:30-16:00 IST, which
    /// keeps the 15:40-16:00 closing session).
    pub session_margin_minutes: u32,
    /// Live, once the caller has set the clock (`set_clock_ns`): a tick
    /// stamped further than this from it is refused. Kite stamps to the
    /// second and delivers within about one; 120 s leaves room for a slow
    /// link, never for a wrong date.
    pub max_clock_skew_seconds: u32,
    /// Daily price band, percent either side of the anchor, per segment.
    pub price_band_pct: PriceBandPct,
    /// This many consecutive out-of-band ticks that agree with each other
    /// move the band's anchor to them (a stale close, a flexed F&O
    /// operating range). 0 = never; otherwise at least 2.
    pub band_reanchor_ticks: u32,
}

impl Default for TicksConfig {
    fn default() -> Self {
        TicksConfig {
            session_margin_minutes: 30,
            max_clock_skew_seconds: 120,
            price_band_pct: PriceBandPct::default(),
            band_reanchor_ticks: 20,
        }
    }
}

/// Percent either side of the anchor (previous close, else the day's first
/// valid price). 0 turns a segment's band off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceBandPct {
    /// NSE equity bands are 2, 5, 10 or 20% by security; 20% (the widest)
    /// suits every name. Set a security's own band with
    /// `Engine::set_previous_close`.
    pub eq: f64,
    /// NSE futures have dynamic operating ranges (10% of the base price,
    /// flexed in steps during the day). Default 10%; a flex is followed by
    /// re-anchoring (`band_reanchor_ticks`).
    pub fut: f64,
    /// Options' operating ranges depend on the underlying and can span many
    /// times the premium. Default 1,000% (up to 11x the anchor): a guard
    /// against absurd prints, not NSE's range.
    pub opt: f64,
    /// Indices: the market-wide circuit breakers halt trading at 10/15/20%.
    pub idx: f64,
}

impl Default for PriceBandPct {
    fn default() -> Self {
        PriceBandPct {
            eq: 20.0,
            fut: 10.0,
            opt: 1_000.0,
            idx: 20.0,
        }
    }
}

/// Upper bound of a band: 100,000% (1,001x the anchor).
pub const MAX_BAND_PCT: f64 = 100_000.0;

impl EngineConfig {
    /// The time rules of tick intake, from `session` and `ticks`.
    pub fn tick_rules(&self) -> Result<TickRules, ConfigError> {
        let times = self.session_times()?;
        let t = &self.ticks;
        let margin = i64::from(t.session_margin_minutes) * 60 * NS_PER_SEC;
        if margin > 12 * 3600 * NS_PER_SEC {
            return Err(invalid(
                "ticks.session_margin_minutes",
                format!("must be at most 720, got {}", t.session_margin_minutes),
            ));
        }
        if t.max_clock_skew_seconds == 0 {
            return Err(invalid(
                "ticks.max_clock_skew_seconds",
                "must be at least 1",
            ));
        }
        if t.band_reanchor_ticks == 1 {
            return Err(invalid(
                "ticks.band_reanchor_ticks",
                "must be 0 (never) or at least 2: 1 would take every out-of-band tick",
            ));
        }
        for seg in [Segment::Eq, Segment::Fut, Segment::Opt, Segment::Idx] {
            self.band_pct_e6(seg)?;
        }
        Ok(TickRules {
            earliest_tod_ns: (times.pre_open_ns - margin).max(0),
            latest_tod_ns: (times.market_close_ns + margin).min(NS_PER_DAY - 1),
            max_clock_skew_ns: i64::from(t.max_clock_skew_seconds) * NS_PER_SEC,
        })
    }

    /// The band of a segment in millionths of a percent (0 = none).
    pub fn band_pct_e6(&self, seg: Segment) -> Result<i64, ConfigError> {
        let b = &self.ticks.price_band_pct;
        let (key, v) = match seg {
            Segment::Eq => ("ticks.price_band_pct.eq", b.eq),
            Segment::Fut => ("ticks.price_band_pct.fut", b.fut),
            Segment::Opt => ("ticks.price_band_pct.opt", b.opt),
            Segment::Idx => ("ticks.price_band_pct.idx", b.idx),
        };
        scaled(key, v, true, MAX_BAND_PCT)
    }

    /// A fresh price band for an instrument of segment `seg`.
    pub fn price_band(&self, seg: Segment) -> Result<PriceBand, ConfigError> {
        Ok(PriceBand::new(
            self.band_pct_e6(seg)?,
            self.ticks.band_reanchor_ticks,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_nse_session_with_half_an_hour_each_side() {
        let cfg = EngineConfig::default();
        let r = cfg.tick_rules().unwrap();
        assert_eq!(r.earliest_tod_ns, (8 * 3600 + 30 * 60) * NS_PER_SEC);
        assert_eq!(r.latest_tod_ns, 16 * 3600 * NS_PER_SEC);
        assert_eq!(r.max_clock_skew_ns, 120 * NS_PER_SEC);
        assert_eq!(cfg.band_pct_e6(Segment::Eq).unwrap(), 20_000_000);
        assert_eq!(cfg.band_pct_e6(Segment::Fut).unwrap(), 10_000_000);
        assert_eq!(cfg.band_pct_e6(Segment::Opt).unwrap(), 1_000_000_000);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (json, key) in [
            (
                r#"{"ticks":{"max_clock_skew_seconds":0}}"#,
                "ticks.max_clock_skew_seconds",
            ),
            (
                r#"{"ticks":{"band_reanchor_ticks":1}}"#,
                "ticks.band_reanchor_ticks",
            ),
            (
                r#"{"ticks":{"session_margin_minutes":721}}"#,
                "ticks.session_margin_minutes",
            ),
            (
                r#"{"ticks":{"price_band_pct":{"eq":-1}}}"#,
                "ticks.price_band_pct.eq",
            ),
            (
                r#"{"ticks":{"price_band_pct":{"opt":1e9}}}"#,
                "ticks.price_band_pct.opt",
            ),
            (
                r#"{"ticks":{"price_band_pct":{"cds":5}}}"#,
                "ticks.price_band_pct",
            ),
            (
                r#"{"session":{"market_close":"09:00"}}"#,
                "session.market_close",
            ),
            (r#"{"session":{"pre_open":"09:30"}}"#, "session.market_open"),
        ] {
            let err = EngineConfig::from_json(json).unwrap_err().to_string();
            assert!(err.contains(key), "{json}: {err}");
        }
        // The window is clamped to the day.
        let cfg = EngineConfig::from_json(
            r#"{"session":{"pre_open":"00:10"},"ticks":{"session_margin_minutes":60}}"#,
        )
        .unwrap();
        assert_eq!(cfg.tick_rules().unwrap().earliest_tod_ns, 0);
    }
}
