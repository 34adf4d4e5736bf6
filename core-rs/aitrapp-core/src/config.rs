//! Engine configuration: risk limits, the session window and per-strategy
//! parameters. It crosses the Python boundary once, as JSON: unknown keys are
//! refused, missing keys take the defaults below, and [`EngineConfig::validate`]
//! rejects impossible values with a message that names the key.
//!
//! Percent means percent everywhere (0.5 is half a percent); amounts carry
//! their unit in the key (`capital_rupees`).

mod ticks;

pub use ticks::{PriceBandPct, TicksConfig, MAX_BAND_PCT};

use crate::price::Price;
use crate::tick::NS_PER_SEC;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// Length of `config_sha` in hex characters.
pub const CONFIG_SHA_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config key {key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("config is not valid JSON for the engine at {key}: {problem}")]
    Parse { key: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub risk: RiskConfig,
    pub session: SessionConfig,
    pub strategies: StrategiesConfig,
    pub ticks: TicksConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    pub capital_rupees: f64,
    /// Risk budget of one plan, percent of capital.
    pub per_trade_risk_pct: f64,
    /// Cap on the summed stop risk of all open brackets, percent of capital.
    pub max_portfolio_heat_pct: f64,
    /// Realized + unrealized loss, percent of capital, that halts entries for the day.
    pub daily_loss_stop_pct: f64,
    pub max_open_positions: u32,
    /// Decisions issued per IST day (a plan cancelled unfilled still counts).
    pub max_trades_per_day: u32,
    /// No new entry on an instrument for this long after a bracket on it closed.
    pub cooldown_seconds: u32,
    /// What to do when the sized quantity exceeds the exchange freeze
    /// quantity: "cap" it to the largest whole-lot quantity one order may
    /// carry (less risk, never more), or "block" the plan.
    pub freeze_qty_policy: String,
    /// Notional (entry x qty) one position may hold, percent of capital:
    /// the risk-sized quantity is cut to it in whole lots (default 200: one index-futures lot fits 10 lakh).
    pub max_position_notional_pct: f64,
    /// Summed notional of the open brackets plus the new plan, percent of
    /// capital (500 = 5x, about Zerodha's MIS leverage on equity).
    pub max_gross_exposure_pct: f64,
    /// Floor of the stop distance, basis points of the entry (0 = no floor).
    /// The gate refuses a plan (`STOP_TOO_TIGHT`) whose stop is nearer than
    /// the largest of this floor, `min_stop_spread_multiple` x the current
    /// spread and the modelled slippage of both legs (2 x `slippage_bps`).
    ///
    /// Default 20 bps, for liquid NSE equity: the touch spread of a NIFTY 50
    /// name is 1-3 bps, so 20 bps is several spreads plus the 10 bps of
    /// modelled slippage on entry and exit. A stop-out that slips as
    /// modelled then loses at most 1.5x its planned risk (20 + 10 bps), and
    /// one tick of noise (0.05 on a 250-2,500 rupee stock is 0.2-2 bps)
    /// cannot trigger it.
    pub min_stop_distance_bps: f64,
    /// The stop must be at least this many current spreads (ask - bid of
    /// the tick that produced the signal) from the entry: a stop inside a
    /// few spreads is hit by the quote alone. 0 = off; no quote, no check.
    pub min_stop_spread_multiple: f64,
    /// Modelled slippage of one leg, basis points of the entry. The stop must
    /// be at least twice this far (entry and exit both slip). 0 = off.
    pub slippage_bps: f64,
    /// Estimated charges of one executed buy leg, basis points of its
    /// notional. The daily-loss stop counts estimates for the legs still to
    /// be closed (at the last price) and for legs whose actual charges were
    /// not reported.
    ///
    /// Defaults from Zerodha's equity intraday schedule for an order of 5
    /// lakh rupees (this gate sizes most plans at 5-20 lakh): brokerage 20
    /// rupees (its cap; 0.4 bps) + NSE transaction 0.297 + SEBI 0.01 + GST
    /// 18% of those three (0.127), plus stamp duty 0.3 on a buy: 1.13, here
    /// 1.2. Larger orders cost less (the brokerage is capped); an order under
    /// 66,667 rupees pays 0.03% brokerage (about 4.2 bps a buy).
    pub charges_buy_bps: f64,
    /// The same for a sell leg: STT 2.5 instead of stamp duty: 3.33, here
    /// 3.4 (about 6.4 bps under 66,667 rupees). Futures pay 5 bps of STT on
    /// the sell side and options 15 bps of the premium: raise both rates
    /// when trading F&O.
    pub charges_sell_bps: f64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            capital_rupees: 1_000_000.0,
            per_trade_risk_pct: 0.5,
            max_portfolio_heat_pct: 2.0,
            daily_loss_stop_pct: 2.5,
            max_open_positions: 5,
            max_trades_per_day: 20,
            cooldown_seconds: 300,
            freeze_qty_policy: "cap".into(),
            max_position_notional_pct: 200.0,
            max_gross_exposure_pct: 500.0,
            min_stop_distance_bps: 20.0,
            min_stop_spread_multiple: 3.0,
            slippage_bps: 5.0,
            charges_buy_bps: 1.2,
            charges_sell_bps: 3.4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Start of the pre-open session, IST "HH:MM": the earliest time of a
    /// valid tick, less `ticks.session_margin_minutes`.
    pub pre_open: String,
    /// Session open, IST "HH:MM": bars, VWAP and the opening range start here.
    pub market_open: String,
    /// Close of the normal market, IST "HH:MM": the latest time of a valid
    /// tick, plus `ticks.session_margin_minutes`.
    pub market_close: String,
    /// Entries are allowed from `entry_start` (inclusive) ...
    pub entry_start: String,
    /// ... until `entry_end` (exclusive), judged by the tick's IST time.
    pub entry_end: String,
    pub bar_seconds: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            pre_open: "09:00".into(),
            market_open: "09:15".into(),
            market_close: "15:30".into(),
            entry_start: "09:15".into(),
            entry_end: "15:20".into(),
            bar_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategiesConfig {
    pub orb: OrbConfig,
    pub trend_pullback: TrendPullbackConfig,
    pub vwap_reversion: VwapReversionConfig,
    pub ema_cross: EmaCrossConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrbConfig {
    pub enabled: bool,
    pub window_minutes: u32,
    /// Consecutive ticks beyond the range that confirm a breakout.
    pub confirm_ticks: u32,
    /// "range": stop at the far side of the range; "atr": atr_stop_mult x ATR from entry.
    pub stop_mode: String,
    pub atr_period: u32,
    pub atr_stop_mult: f64,
    /// Take-profit at rr_min x risk from entry.
    pub rr_min: f64,
}

impl Default for OrbConfig {
    fn default() -> Self {
        OrbConfig {
            enabled: true,
            window_minutes: 15,
            confirm_ticks: 3,
            stop_mode: "range".into(),
            atr_period: 14,
            atr_stop_mult: 1.0,
            rr_min: 1.8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendPullbackConfig {
    pub enabled: bool,
    pub fast_period: u32,
    pub slow_period: u32,
    pub atr_period: u32,
    /// Pullback from the recent swing extreme, in ATRs, that triggers the entry.
    pub pullback_atr: f64,
    /// Stop below (above) the entry, in ATRs. 3, the volatility-stop
    /// multiple of Wilder's volatility system (his constant 2.8-3.1) and of
    /// LeBeau's chandelier exit: on 1-minute bars about 30 bps on a liquid
    /// name, clear of the gate's 20 bps floor; 2 ATR (about 20 bps) sat on it.
    pub stop_atr: f64,
    /// Take-profit in multiples of the risk.
    pub rr: f64,
    /// Bars looked back for the swing high/low.
    pub swing_bars: u32,
}

impl Default for TrendPullbackConfig {
    fn default() -> Self {
        TrendPullbackConfig {
            enabled: true,
            fast_period: 34,
            slow_period: 89,
            atr_period: 14,
            pullback_atr: 0.5,
            stop_atr: 3.0,
            rr: 2.0,
            swing_bars: 10,
        }
    }
}

/// VWAP reversion in band widths. The default is the usual "VWAP bands":
/// the session's volume-weighted standard deviation of price around VWAP,
/// faded at the 2-sigma band, stopped at the 3-sigma band, target VWAP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VwapReversionConfig {
    pub enabled: bool,
    /// Band width: "stdev" (the session's volume-weighted standard deviation
    /// of price around VWAP) or "atr" (ATR of the bars, `atr_period`).
    pub band: String,
    pub atr_period: u32,
    /// Distance from VWAP, in band widths, that is faded.
    pub stretch: f64,
    /// Stop beyond the entry, in band widths.
    pub stop: f64,
    /// A side re-arms once price is back within this many band widths of VWAP.
    pub rearm: f64,
    /// No entry before `session.market_open` plus this: the dispersion of
    /// the first half hour is too narrow to fade (its 3-sigma stop would sit
    /// inside the gate's floor, and opening-drive days run through it).
    pub warmup_minutes: u32,
}

impl Default for VwapReversionConfig {
    fn default() -> Self {
        VwapReversionConfig {
            enabled: true,
            band: "stdev".into(),
            atr_period: 14,
            stretch: 2.0,
            stop: 1.0,
            rearm: 1.0,
            warmup_minutes: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VwapBand {
    Stdev,
    Atr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmaCrossConfig {
    pub enabled: bool,
    pub fast_period: u32,
    pub slow_period: u32,
    pub stop_ticks: u32,
    pub tp_ticks: u32,
}

impl Default for EmaCrossConfig {
    fn default() -> Self {
        EmaCrossConfig {
            // The benchmark strategy: its 10-tick stops sit inside the gate's
            // stop floor on most names and spend the trade budget at the open.
            enabled: false,
            fast_period: 10,
            slow_period: 30,
            stop_ticks: 10,
            tp_ticks: 10,
        }
    }
}

/// The session clock, parsed: IST nanoseconds since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    pub pre_open_ns: i64,
    pub market_open_ns: i64,
    pub market_close_ns: i64,
    pub entry_start_ns: i64,
    pub entry_end_ns: i64,
    pub bar_ns: i64,
}

/// What to do with a plan larger than the freeze quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezePolicy {
    Cap,
    Block,
}

/// Percent as an integer number of millionths of a percent, so that limits
/// compare exactly against integer paise. Basis points use the same scale
/// (millionths of a basis point).
pub const PCT_SCALE: i64 = 1_000_000;

/// Upper bound of the exposure percents (1,000x capital): far beyond any
/// broker's leverage, and it keeps the integer arithmetic well inside i128.
pub const MAX_EXPOSURE_PCT: f64 = 100_000.0;

/// Upper bound of `min_stop_distance_bps`: 10,000 bps is the whole entry price.
pub const MAX_STOP_DISTANCE_BPS: f64 = 10_000.0;

/// Upper bound of `slippage_bps` and the charge rates (10% a leg).
pub const MAX_LEG_COST_BPS: f64 = 1_000.0;

/// Upper bound of `min_stop_spread_multiple`.
pub const MAX_SPREAD_MULTIPLE: f64 = 1_000.0;

/// The risk limits in integer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    pub capital: Price,
    pub per_trade_risk_e6: i64,
    pub max_heat_e6: i64,
    pub daily_loss_e6: i64,
    pub max_open_positions: u32,
    pub max_trades_per_day: u32,
    pub cooldown_ns: i64,
    pub freeze_policy: FreezePolicy,
    pub max_position_notional_e6: i64,
    pub max_gross_exposure_e6: i64,
    /// Millionths of a basis point; 0 = no floor.
    pub min_stop_distance_bps_e6: i64,
    /// Millionths of a spread; 0 = off.
    pub min_stop_spread_multiple_e6: i64,
    /// Millionths of a basis point, one leg; 0 = off.
    pub slippage_bps_e6: i64,
    /// Estimated charges of a leg, by side.
    pub charges: crate::risk::ChargeRates,
}

fn pct(key: &str, value: f64) -> Result<i64, ConfigError> {
    if !(value.is_finite() && value > 0.0 && value <= 100.0) {
        return Err(invalid(
            key,
            format!("must be a percent in (0, 100], got {value}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation)] // bounded to 1e8 just above
    Ok((value * PCT_SCALE as f64).round() as i64)
}

/// A finite value in `[min, max]` (`(0, max]` when `min` is 0 and `zero_ok`
/// is false), in millionths.
fn scaled(key: &str, value: f64, zero_ok: bool, max: f64) -> Result<i64, ConfigError> {
    let low_ok = if zero_ok { value >= 0.0 } else { value > 0.0 };
    if !(value.is_finite() && low_ok && value <= max) {
        let low = if zero_ok { "[0" } else { "(0" };
        return Err(invalid(
            key,
            format!("must be in {low}, {max}], got {value}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation)] // bounded to max x 1e6 just above
    Ok((value * PCT_SCALE as f64).round() as i64)
}

fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("must be > 0, got {value}")))
    }
}

fn at_least(key: &str, value: u32, min: u32) -> Result<(), ConfigError> {
    if value >= min {
        Ok(())
    } else {
        Err(invalid(key, format!("must be at least {min}, got {value}")))
    }
}

/// "HH:MM" or "HH:MM:SS" on the IST clock -> nanoseconds since midnight.
pub fn parse_clock(key: &str, text: &str) -> Result<i64, ConfigError> {
    let bad = || invalid(key, format!("must be an IST time \"HH:MM\", got {text:?}"));
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let mut nums = [0i64; 3];
    for (slot, p) in nums.iter_mut().zip(&parts) {
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        *slot = p.parse().map_err(|_| bad())?;
    }
    let [h, m, s] = nums;
    if h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    Ok(((h * 60 + m) * 60 + s) * NS_PER_SEC)
}

impl EngineConfig {
    /// Parses JSON (missing keys take defaults) and validates it.
    pub fn from_json(text: &str) -> Result<EngineConfig, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: EngineConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                key: if key == "." { "<root>".into() } else { key },
                problem: e.inner().to_string(),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Rejects impossible values; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.risk_limits()?;
        self.session_times()?;
        self.tick_rules()?;
        let s = &self.strategies;
        let o = &s.orb;
        at_least("strategies.orb.window_minutes", o.window_minutes, 1)?;
        at_least("strategies.orb.confirm_ticks", o.confirm_ticks, 1)?;
        at_least("strategies.orb.atr_period", o.atr_period, 1)?;
        positive("strategies.orb.atr_stop_mult", o.atr_stop_mult)?;
        positive("strategies.orb.rr_min", o.rr_min)?;
        self.orb_stop_mode()?;
        if i64::from(o.window_minutes) * 60 * NS_PER_SEC >= 24 * 3600 * NS_PER_SEC {
            return Err(invalid(
                "strategies.orb.window_minutes",
                "must be shorter than a day",
            ));
        }
        let t = &s.trend_pullback;
        ema_pair("strategies.trend_pullback", t.fast_period, t.slow_period)?;
        at_least("strategies.trend_pullback.atr_period", t.atr_period, 1)?;
        at_least("strategies.trend_pullback.swing_bars", t.swing_bars, 1)?;
        positive("strategies.trend_pullback.pullback_atr", t.pullback_atr)?;
        positive("strategies.trend_pullback.stop_atr", t.stop_atr)?;
        positive("strategies.trend_pullback.rr", t.rr)?;
        let v = &s.vwap_reversion;
        self.vwap_band()?;
        at_least("strategies.vwap_reversion.atr_period", v.atr_period, 1)?;
        positive("strategies.vwap_reversion.stretch", v.stretch)?;
        positive("strategies.vwap_reversion.stop", v.stop)?;
        positive("strategies.vwap_reversion.rearm", v.rearm)?;
        if v.rearm >= v.stretch {
            return Err(invalid(
                "strategies.vwap_reversion.rearm",
                format!("must be below stretch ({}), got {}", v.stretch, v.rearm),
            ));
        }
        if v.warmup_minutes >= 24 * 60 {
            return Err(invalid(
                "strategies.vwap_reversion.warmup_minutes",
                "must be shorter than a day",
            ));
        }
        let e = &s.ema_cross;
        ema_pair("strategies.ema_cross", e.fast_period, e.slow_period)?;
        at_least("strategies.ema_cross.stop_ticks", e.stop_ticks, 1)?;
        at_least("strategies.ema_cross.tp_ticks", e.tp_ticks, 1)?;
        Ok(())
    }

    pub fn orb_stop_mode(&self) -> Result<OrbStopMode, ConfigError> {
        match self.strategies.orb.stop_mode.as_str() {
            "range" => Ok(OrbStopMode::Range),
            "atr" => Ok(OrbStopMode::Atr),
            other => Err(invalid(
                "strategies.orb.stop_mode",
                format!("must be \"range\" or \"atr\", got {other:?}"),
            )),
        }
    }

    pub fn vwap_band(&self) -> Result<VwapBand, ConfigError> {
        match self.strategies.vwap_reversion.band.as_str() {
            "stdev" => Ok(VwapBand::Stdev),
            "atr" => Ok(VwapBand::Atr),
            other => Err(invalid(
                "strategies.vwap_reversion.band",
                format!("must be \"stdev\" or \"atr\", got {other:?}"),
            )),
        }
    }

    pub fn risk_limits(&self) -> Result<RiskLimits, ConfigError> {
        let r = &self.risk;
        positive("risk.capital_rupees", r.capital_rupees)?;
        let capital = Price::from_rupees_f64(r.capital_rupees)
            .map_err(|e| invalid("risk.capital_rupees", e.to_string()))?;
        if capital.paise() <= 0 {
            return Err(invalid("risk.capital_rupees", "must be at least 0.01"));
        }
        let per_trade = pct("risk.per_trade_risk_pct", r.per_trade_risk_pct)?;
        let heat = pct("risk.max_portfolio_heat_pct", r.max_portfolio_heat_pct)?;
        let daily = pct("risk.daily_loss_stop_pct", r.daily_loss_stop_pct)?;
        if per_trade > heat {
            return Err(invalid(
                "risk.per_trade_risk_pct",
                format!(
                    "({}) must not exceed risk.max_portfolio_heat_pct ({}): no plan could ever pass the heat cap",
                    r.per_trade_risk_pct, r.max_portfolio_heat_pct
                ),
            ));
        }
        at_least("risk.max_open_positions", r.max_open_positions, 1)?;
        at_least("risk.max_trades_per_day", r.max_trades_per_day, 1)?;
        let freeze_policy = match r.freeze_qty_policy.as_str() {
            "cap" => FreezePolicy::Cap,
            "block" => FreezePolicy::Block,
            other => {
                return Err(invalid(
                    "risk.freeze_qty_policy",
                    format!("must be \"cap\" or \"block\", got {other:?}"),
                ))
            }
        };
        let notional = scaled(
            "risk.max_position_notional_pct",
            r.max_position_notional_pct,
            false,
            MAX_EXPOSURE_PCT,
        )?;
        let gross = scaled(
            "risk.max_gross_exposure_pct",
            r.max_gross_exposure_pct,
            false,
            MAX_EXPOSURE_PCT,
        )?;
        if gross < notional {
            return Err(invalid(
                "risk.max_gross_exposure_pct",
                format!(
                    "({}) must be at least risk.max_position_notional_pct ({}): one full position would breach it",
                    r.max_gross_exposure_pct, r.max_position_notional_pct
                ),
            ));
        }
        let min_stop = scaled(
            "risk.min_stop_distance_bps",
            r.min_stop_distance_bps,
            true,
            MAX_STOP_DISTANCE_BPS,
        )?;
        let spread_multiple = scaled(
            "risk.min_stop_spread_multiple",
            r.min_stop_spread_multiple,
            true,
            MAX_SPREAD_MULTIPLE,
        )?;
        let slippage = scaled("risk.slippage_bps", r.slippage_bps, true, MAX_LEG_COST_BPS)?;
        let charges = crate::risk::ChargeRates {
            buy_bps_e6: scaled(
                "risk.charges_buy_bps",
                r.charges_buy_bps,
                true,
                MAX_LEG_COST_BPS,
            )?,
            sell_bps_e6: scaled(
                "risk.charges_sell_bps",
                r.charges_sell_bps,
                true,
                MAX_LEG_COST_BPS,
            )?,
        };
        Ok(RiskLimits {
            capital,
            per_trade_risk_e6: per_trade,
            max_heat_e6: heat,
            daily_loss_e6: daily,
            max_open_positions: r.max_open_positions,
            max_trades_per_day: r.max_trades_per_day,
            cooldown_ns: i64::from(r.cooldown_seconds) * NS_PER_SEC,
            freeze_policy,
            max_position_notional_e6: notional,
            max_gross_exposure_e6: gross,
            min_stop_distance_bps_e6: min_stop,
            min_stop_spread_multiple_e6: spread_multiple,
            slippage_bps_e6: slippage,
            charges,
        })
    }

    pub fn session_times(&self) -> Result<SessionTimes, ConfigError> {
        let s = &self.session;
        let pre_open_ns = parse_clock("session.pre_open", &s.pre_open)?;
        let market_open_ns = parse_clock("session.market_open", &s.market_open)?;
        let market_close_ns = parse_clock("session.market_close", &s.market_close)?;
        if market_open_ns < pre_open_ns {
            return Err(invalid(
                "session.market_open",
                format!(
                    "must not be before session.pre_open ({}), got {}",
                    s.pre_open, s.market_open
                ),
            ));
        }
        if market_close_ns <= market_open_ns {
            return Err(invalid(
                "session.market_close",
                format!(
                    "must be after session.market_open ({}), got {}",
                    s.market_open, s.market_close
                ),
            ));
        }
        let entry_start_ns = parse_clock("session.entry_start", &s.entry_start)?;
        let entry_end_ns = parse_clock("session.entry_end", &s.entry_end)?;
        if entry_end_ns <= entry_start_ns {
            return Err(invalid(
                "session.entry_end",
                format!(
                    "must be after session.entry_start ({}), got {}",
                    s.entry_start, s.entry_end
                ),
            ));
        }
        if !(1..=3600).contains(&s.bar_seconds) {
            return Err(invalid(
                "session.bar_seconds",
                format!("must be between 1 and 3600, got {}", s.bar_seconds),
            ));
        }
        Ok(SessionTimes {
            pre_open_ns,
            market_open_ns,
            market_close_ns,
            entry_start_ns,
            entry_end_ns,
            bar_ns: i64::from(s.bar_seconds) * NS_PER_SEC,
        })
    }

    /// The effective config as JSON with object keys sorted at every level and
    /// no whitespace: the form that `config_sha` hashes.
    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        match serde_json::to_value(self) {
            Ok(v) => write_canonical(&v, &mut out),
            // Plain structs of numbers, bools and strings always serialise.
            Err(e) => out.push_str(&e.to_string()),
        }
        out
    }

    /// First 16 hex chars of SHA-1 over [`EngineConfig::canonical_json`].
    pub fn config_sha(&self) -> String {
        let digest = Sha1::digest(self.canonical_json().as_bytes());
        let mut hex = String::with_capacity(CONFIG_SHA_LEN);
        for b in digest.iter().take(CONFIG_SHA_LEN / 2) {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrbStopMode {
    Range,
    Atr,
}

fn ema_pair(section: &str, fast: u32, slow: u32) -> Result<(), ConfigError> {
    at_least(&format!("{section}.fast_period"), fast, 1)?;
    if slow <= fast {
        return Err(invalid(
            &format!("{section}.slow_period"),
            format!("must be greater than fast_period ({fast}), got {slow}"),
        ));
    }
    Ok(())
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(child) = map.get(*k) {
                    write_canonical(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn empty_json_is_the_defaults() {
        let cfg = EngineConfig::from_json("{}").unwrap();
        assert_eq!(cfg, EngineConfig::default());
        let limits = cfg.risk_limits().unwrap();
        assert_eq!(limits.capital, Price::from_paise(100_000_000));
        assert_eq!(limits.per_trade_risk_e6, 500_000);
        assert_eq!(limits.max_heat_e6, 2_000_000);
        assert_eq!(limits.daily_loss_e6, 2_500_000);
        assert_eq!(limits.max_open_positions, 5);
    }

    #[rstest]
    #[case(r#"{"risk":{"daily_loss_stop_pct":-1}}"#, "risk.daily_loss_stop_pct")]
    #[case(r#"{"risk":{"capital_rupees":0}}"#, "risk.capital_rupees")]
    #[case(r#"{"risk":{"per_trade_risk_pct":0}}"#, "risk.per_trade_risk_pct")]
    #[case(r#"{"risk":{"per_trade_risk_pct":3}}"#, "risk.per_trade_risk_pct")]
    #[case(
        r#"{"risk":{"max_portfolio_heat_pct":250}}"#,
        "risk.max_portfolio_heat_pct"
    )]
    #[case(r#"{"risk":{"max_open_positions":0}}"#, "risk.max_open_positions")]
    #[case(r#"{"risk":{"max_open_positions":-2}}"#, "risk.max_open_positions")]
    #[case(r#"{"risk":{"freeze_qty_policy":"slice"}}"#, "risk.freeze_qty_policy")]
    #[case(
        r#"{"risk":{"max_position_notional_pct":0}}"#,
        "risk.max_position_notional_pct"
    )]
    #[case(
        r#"{"risk":{"max_position_notional_pct":-100}}"#,
        "risk.max_position_notional_pct"
    )]
    #[case(
        r#"{"risk":{"max_position_notional_pct":1e9,"max_gross_exposure_pct":1e9}}"#,
        "risk.max_position_notional_pct"
    )]
    #[case(
        r#"{"risk":{"max_gross_exposure_pct":0}}"#,
        "risk.max_gross_exposure_pct"
    )]
    #[case(
        r#"{"risk":{"max_gross_exposure_pct":99.99}}"#,
        "risk.max_gross_exposure_pct"
    )]
    #[case(
        r#"{"risk":{"max_position_notional_pct":600}}"#,
        "risk.max_gross_exposure_pct"
    )]
    #[case(
        r#"{"risk":{"min_stop_distance_bps":-1}}"#,
        "risk.min_stop_distance_bps"
    )]
    #[case(
        r#"{"risk":{"min_stop_distance_bps":10001}}"#,
        "risk.min_stop_distance_bps"
    )]
    #[case(r#"{"risk":{"slippage_bps":-1}}"#, "risk.slippage_bps")]
    #[case(r#"{"risk":{"slippage_bps":1001}}"#, "risk.slippage_bps")]
    #[case(
        r#"{"risk":{"min_stop_spread_multiple":-0.5}}"#,
        "risk.min_stop_spread_multiple"
    )]
    #[case(r#"{"risk":{"charges_buy_bps":-2}}"#, "risk.charges_buy_bps")]
    #[case(r#"{"risk":{"charges_sell_bps":1e4}}"#, "risk.charges_sell_bps")]
    #[case(r#"{"risk":{"bogus":1}}"#, "risk")]
    #[case(r#"{"riks":{}}"#, "riks")]
    #[case(r#"{"session":{"entry_end":"09:00"}}"#, "session.entry_end")]
    #[case(r#"{"session":{"market_open":"9:15"}}"#, "session.market_open")]
    #[case(r#"{"session":{"bar_seconds":0}}"#, "session.bar_seconds")]
    #[case(r#"{"strategies":{"orb":{"rr_min":0}}}"#, "strategies.orb.rr_min")]
    #[case(
        r#"{"strategies":{"orb":{"stop_mode":"far"}}}"#,
        "strategies.orb.stop_mode"
    )]
    #[case(r#"{"strategies":{"orb":{"rr_min":"high"}}}"#, "strategies.orb.rr_min")]
    #[case(
        r#"{"strategies":{"ema_cross":{"slow_period":5}}}"#,
        "strategies.ema_cross.slow_period"
    )]
    #[case(
        r#"{"strategies":{"trend_pullback":{"stop_atr":-2}}}"#,
        "strategies.trend_pullback.stop_atr"
    )]
    #[case(
        r#"{"strategies":{"vwap_reversion":{"rearm":3}}}"#,
        "strategies.vwap_reversion.rearm"
    )]
    #[case(
        r#"{"strategies":{"vwap_reversion":{"band":"bollinger"}}}"#,
        "strategies.vwap_reversion.band"
    )]
    #[case(
        r#"{"strategies":{"vwap_reversion":{"stretch_atr":2}}}"#,
        "strategies.vwap_reversion"
    )]
    fn impossible_values_name_their_key(#[case] json: &str, #[case] key: &str) {
        let err = EngineConfig::from_json(json).unwrap_err().to_string();
        assert!(err.contains(key), "{err:?} should name {key}");
    }

    #[test]
    fn exposure_limits_are_exact_integers_and_refuse_nan() {
        let cfg = EngineConfig::from_json(
            r#"{"risk":{"max_position_notional_pct":250.5,"max_gross_exposure_pct":250.5,"min_stop_distance_bps":7.25}}"#,
        )
        .unwrap();
        let limits = cfg.risk_limits().unwrap();
        assert_eq!(limits.max_position_notional_e6, 250_500_000);
        assert_eq!(limits.max_gross_exposure_e6, 250_500_000);
        assert_eq!(limits.min_stop_distance_bps_e6, 7_250_000);
        let defaults = EngineConfig::default().risk_limits().unwrap();
        assert_eq!(
            (
                defaults.max_position_notional_e6,
                defaults.max_gross_exposure_e6,
                defaults.min_stop_distance_bps_e6
            ),
            (200_000_000, 500_000_000, 20_000_000)
        );
        assert_eq!(
            (
                defaults.min_stop_spread_multiple_e6,
                defaults.slippage_bps_e6,
                defaults.charges
            ),
            (
                3_000_000,
                5_000_000,
                crate::risk::ChargeRates {
                    buy_bps_e6: 1_200_000,
                    sell_bps_e6: 3_400_000
                }
            )
        );
        // JSON cannot carry NaN; a struct built in Rust can, and is refused.
        for key in [
            "max_position_notional_pct",
            "max_gross_exposure_pct",
            "min_stop_distance_bps",
            "min_stop_spread_multiple",
            "slippage_bps",
            "charges_buy_bps",
            "charges_sell_bps",
        ] {
            let mut c = EngineConfig::default();
            match key {
                "max_position_notional_pct" => c.risk.max_position_notional_pct = f64::NAN,
                "max_gross_exposure_pct" => c.risk.max_gross_exposure_pct = f64::NAN,
                "min_stop_spread_multiple" => c.risk.min_stop_spread_multiple = f64::NAN,
                "slippage_bps" => c.risk.slippage_bps = f64::NEG_INFINITY,
                "charges_buy_bps" => c.risk.charges_buy_bps = f64::NAN,
                "charges_sell_bps" => c.risk.charges_sell_bps = f64::INFINITY,
                _ => c.risk.min_stop_distance_bps = f64::INFINITY,
            }
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("risk.{key}")), "{err}");
        }
    }

    #[test]
    fn clock_parsing() {
        assert_eq!(parse_clock("k", "09:15").unwrap(), 33_300 * NS_PER_SEC);
        assert_eq!(parse_clock("k", "15:20:30").unwrap(), 55_230 * NS_PER_SEC);
        for bad in ["24:00", "09:60", "0915", "09:15:00:00", "aa:bb", "-9:15"] {
            assert!(parse_clock("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sha_is_canonical_and_tracks_every_value() {
        let a = EngineConfig::default();
        let text = a.canonical_json();
        assert!(text.starts_with(
            r#"{"risk":{"capital_rupees":1000000.0,"charges_buy_bps":1.2,"charges_sell_bps":3.4,"cooldown_seconds":300,"#
        ));
        // Key order in the input does not matter; values do.
        let b = EngineConfig::from_json(r#"{"session":{"bar_seconds":60},"risk":{}}"#).unwrap();
        assert_eq!(a.config_sha(), b.config_sha());
        assert_eq!(a.config_sha().len(), CONFIG_SHA_LEN);
        let mut c = a.clone();
        c.strategies.ema_cross.tp_ticks = 11;
        assert_ne!(a.config_sha(), c.config_sha());
        // The exposure limits are part of the effective config, and of its sha.
        assert!(text.contains(r#""max_gross_exposure_pct":500.0,"max_open_positions":5,"max_portfolio_heat_pct":2.0,"max_position_notional_pct":200.0,"max_trades_per_day":20,"min_stop_distance_bps":20.0,"min_stop_spread_multiple":3.0,"per_trade_risk_pct":0.5,"slippage_bps":5.0"#), "{text}");
        assert!(text.contains(r#""ticks":{"band_reanchor_ticks":20,"max_clock_skew_seconds":120,"price_band_pct":{"eq":20.0,"fut":10.0,"idx":20.0,"opt":1000.0},"session_margin_minutes":30}"#), "{text}");
        for edit in [
            |c: &mut EngineConfig| c.risk.max_position_notional_pct = 99.0,
            |c: &mut EngineConfig| c.risk.max_gross_exposure_pct = 400.0,
            |c: &mut EngineConfig| c.risk.min_stop_distance_bps = 5.0,
            |c: &mut EngineConfig| c.risk.min_stop_spread_multiple = 2.0,
            |c: &mut EngineConfig| c.risk.slippage_bps = 3.0,
            |c: &mut EngineConfig| c.risk.charges_buy_bps = 3.0,
            |c: &mut EngineConfig| c.risk.charges_sell_bps = 3.0,
            |c: &mut EngineConfig| c.ticks.price_band_pct.fut = 15.0,
            |c: &mut EngineConfig| c.session.market_close = "15:00".into(),
        ] {
            let mut d = a.clone();
            edit(&mut d);
            assert_ne!(a.config_sha(), d.config_sha());
        }
        let full = Sha1::digest(text.as_bytes());
        let hex: String = full.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.config_sha(), hex[..CONFIG_SHA_LEN]);
    }
}
