//! Settings of the paper venue: how it delays, fills and rejects orders.
//!
//! It crosses the Python boundary once, as JSON (the validated
//! `aitrapp.brokers.paper_config.PaperConfig`): unknown keys are refused,
//! missing keys take the defaults below, and [`SimVenueConfig::validate`]
//! rejects impossible values with a message that names the key. Times are
//! exchange nanoseconds, never wall time.

use super::types::VenueError;
use crate::instrument::Segment;
use serde::{Deserialize, Serialize};

/// One tier of the automatic market protection: up to `max_price` rupees of
/// last price (None: no upper bound), a band of `pct` percent.
pub type ProtectionTier = (Option<f64>, f64);

/// Automatic market protection (`market_protection = -1`) per segment.
///
/// Kite does not publish its automatic bands; the defaults follow the tiers
/// Indian brokers commonly use for market price protection (2 % up to 100
/// rupees, 1 % up to 1,000, 0.5 % above for cash and futures; wider for
/// option premiums).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoProtection {
    #[serde(rename = "EQ")]
    pub eq: Vec<ProtectionTier>,
    #[serde(rename = "FUT")]
    pub fut: Vec<ProtectionTier>,
    #[serde(rename = "OPT")]
    pub opt: Vec<ProtectionTier>,
}

impl Default for AutoProtection {
    fn default() -> Self {
        AutoProtection {
            eq: vec![(Some(100.0), 2.0), (Some(1000.0), 1.0), (None, 0.5)],
            fut: vec![(Some(100.0), 2.0), (Some(1000.0), 1.0), (None, 0.5)],
            opt: vec![(Some(50.0), 10.0), (Some(500.0), 5.0), (None, 2.0)],
        }
    }
}

impl AutoProtection {
    fn tiers(&self, segment: Segment) -> &[ProtectionTier] {
        match segment {
            Segment::Fut => &self.fut,
            Segment::Opt => &self.opt,
            // An index is never traded (validation rejects it first).
            Segment::Eq | Segment::Idx => &self.eq,
        }
    }
}

/// How the simulator fills, delays and rejects orders.
///
/// - `slippage_bps`: MARKET and triggered SL-M orders fill this many basis
///   points beyond the touch (ask for a buy, bid for a sell), rounded to the
///   nearest tick, never beyond the market-protection band.
/// - `ack_latency_ns`: request -> acknowledgement (OPEN / TRIGGER PENDING);
///   modifications and cancellations take effect after the same delay.
/// - `fill_latency_ns`: acknowledgement -> the earliest tick that may fill or
///   trigger the order.
/// - `no_tick_wait_ns`: an order that should trade at once (MARKET, a limit
///   order's first look at the market, an IOC) but sees no tick, or a MARKET
///   order that makes no progress, for this long fills against the last known
///   bid/ask instead, so a flatten never hangs on a quiet instrument. After
///   the feed ended this happens at once.
/// - `participation_pct`: one fill takes at most this percent of the tick's
///   traded quantity (volume delta, else last quantity), in whole lots; None
///   fills the whole order on the first eligible tick.
/// - `max_orders_per_second`: Kite's limit; one more order in any one second
///   is REJECTED. None disables the check.
/// - `max_modifications`: Kite allows 25 modifications per order.
/// - `order_id_start`: the first venue order id; ids count up from it, so a
///   replay with the same requests gets the same ids.
/// - `auto_protection`: the band used for `market_protection = -1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimVenueConfig {
    pub slippage_bps: f64,
    pub ack_latency_ns: i64,
    pub fill_latency_ns: i64,
    pub no_tick_wait_ns: i64,
    pub participation_pct: Option<f64>,
    pub max_orders_per_second: Option<u32>,
    pub max_modifications: u32,
    pub order_id_start: u64,
    pub auto_protection: AutoProtection,
}

impl Default for SimVenueConfig {
    fn default() -> Self {
        SimVenueConfig {
            slippage_bps: 5.0,
            ack_latency_ns: 50_000_000,
            fill_latency_ns: 0,
            no_tick_wait_ns: 2_000_000_000,
            participation_pct: None,
            max_orders_per_second: Some(10),
            max_modifications: 25,
            order_id_start: 100_000_000_000_001,
            auto_protection: AutoProtection::default(),
        }
    }
}

fn invalid(key: &str, problem: impl std::fmt::Display) -> VenueError {
    VenueError::Config(format!("{key} {problem}"))
}

fn number_in(key: &str, value: f64, lo: f64, hi: f64) -> Result<(), VenueError> {
    if !value.is_finite() {
        return Err(invalid(key, format!("must be finite, got {value}")));
    }
    if !(lo..=hi).contains(&value) {
        return Err(invalid(
            key,
            format!("must be between {lo} and {hi}, got {value}"),
        ));
    }
    Ok(())
}

impl SimVenueConfig {
    /// Parses and validates the JSON form; an error names the key.
    pub fn from_json(text: &str) -> Result<SimVenueConfig, VenueError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: SimVenueConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "<root>".to_string()
            } else {
                key
            };
            VenueError::Config(format!("{key}: {}", e.inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Rejects impossible values; the error names the key.
    pub fn validate(&self) -> Result<(), VenueError> {
        number_in("slippage_bps", self.slippage_bps, 0.0, 1000.0)?;
        for (key, v) in [
            ("ack_latency_ns", self.ack_latency_ns),
            ("fill_latency_ns", self.fill_latency_ns),
            ("no_tick_wait_ns", self.no_tick_wait_ns),
        ] {
            if v < 0 {
                return Err(invalid(key, format!("must be at least 0, got {v}")));
            }
        }
        if let Some(p) = self.participation_pct {
            number_in("participation_pct", p, 0.0, 100.0)?;
            if p <= 0.0 {
                return Err(invalid(
                    "participation_pct",
                    format!("must be above 0, got {p}"),
                ));
            }
        }
        if self.max_orders_per_second == Some(0) {
            return Err(invalid(
                "max_orders_per_second",
                "must be at least 1, got 0",
            ));
        }
        if self.order_id_start == 0 {
            return Err(invalid("order_id_start", "must be at least 1, got 0"));
        }
        let p = &self.auto_protection;
        for (name, tiers) in [("EQ", &p.eq), ("FUT", &p.fut), ("OPT", &p.opt)] {
            check_tiers(&format!("auto_protection['{name}']"), tiers)?;
        }
        Ok(())
    }

    /// The automatic market-protection band, percent, for a last price in paise.
    pub fn auto_protection_pct(&self, segment: Segment, last_paise: i64) -> f64 {
        #[allow(clippy::cast_precision_loss)] // prices are far below 2^52 paise
        let rupees = last_paise as f64 / 100.0;
        let tiers = self.auto_protection.tiers(segment);
        tiers
            .iter()
            .find(|(bound, _)| bound.map_or(true, |b| rupees <= b))
            .or(tiers.last())
            .map_or(0.0, |(_, pct)| *pct)
    }
}

fn check_tiers(key: &str, tiers: &[ProtectionTier]) -> Result<(), VenueError> {
    let Some(last) = tiers.last() else {
        return Err(invalid(key, "must list at least one (max_price, pct) tier"));
    };
    for (i, (bound, pct)) in tiers.iter().enumerate() {
        if let Some(b) = bound {
            number_in(&format!("{key}[{i}] max_price"), *b, 0.0, 1e12)?;
        }
        number_in(&format!("{key}[{i}] pct"), *pct, 0.0, 100.0)?;
        if *pct <= 0.0 {
            return Err(invalid(
                &format!("{key}[{i}] pct"),
                format!("must be above 0, got {pct}"),
            ));
        }
    }
    if last.0.is_some() {
        return Err(invalid(
            key,
            "the last tier must have max_price None (no upper bound)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn defaults_are_valid_and_match_an_empty_json_object() {
        let cfg = SimVenueConfig::from_json("{}").expect("defaults");
        assert_eq!(cfg, SimVenueConfig::default());
        let json = serde_json::to_string(&cfg).expect("serialise");
        assert_eq!(SimVenueConfig::from_json(&json).expect("round trip"), cfg);
    }

    #[rstest]
    #[case(r#"{"slippage_bps": -1}"#, "slippage_bps")]
    #[case(r#"{"ack_latency_ns": -5}"#, "ack_latency_ns")]
    #[case(r#"{"fill_latency_ns": 1.5}"#, "fill_latency_ns")]
    #[case(r#"{"no_tick_wait_ns": "2s"}"#, "no_tick_wait_ns")]
    #[case(r#"{"participation_pct": 0}"#, "participation_pct")]
    #[case(r#"{"participation_pct": 120}"#, "participation_pct")]
    #[case(r#"{"max_orders_per_second": 0}"#, "max_orders_per_second")]
    #[case(r#"{"max_modifications": -1}"#, "max_modifications")]
    #[case(r#"{"order_id_start": 0}"#, "order_id_start")]
    #[case(r#"{"slippage": 5}"#, "slippage")]
    #[case(
        r#"{"auto_protection": {"EQ": [[null, 1.0]], "FUT": [[null, 1.0]]}}"#,
        "OPT"
    )]
    #[case(
        r#"{"auto_protection": {"EQ": [[100.0, 1.0]], "FUT": [[null, 1]], "OPT": [[null, 1]]}}"#,
        "last tier"
    )]
    #[case(
        r#"{"auto_protection": {"EQ": [[null, 0.0]], "FUT": [[null, 1]], "OPT": [[null, 1]]}}"#,
        "pct"
    )]
    #[case(
        r#"{"auto_protection": {"EQ": [], "FUT": [[null, 1]], "OPT": [[null, 1]]}}"#,
        "auto_protection['EQ']"
    )]
    fn bad_config_names_the_key(#[case] json: &str, #[case] key: &str) {
        let err = SimVenueConfig::from_json(json).expect_err(json).to_string();
        assert!(err.contains(key), "{err} should name {key}");
    }

    #[rstest]
    #[case(Segment::Eq, 9_999, 2.0)]
    #[case(Segment::Eq, 10_000, 2.0)]
    #[case(Segment::Eq, 10_005, 1.0)]
    #[case(Segment::Eq, 250_000, 0.5)]
    #[case(Segment::Opt, 4_000, 10.0)]
    #[case(Segment::Opt, 60_000, 2.0)]
    #[case(Segment::Fut, 2_400_000, 0.5)]
    fn auto_protection_tiers(#[case] seg: Segment, #[case] paise: i64, #[case] pct: f64) {
        let got = SimVenueConfig::default().auto_protection_pct(seg, paise);
        assert!((got - pct).abs() < 1e-12, "{got} != {pct}");
    }
}
