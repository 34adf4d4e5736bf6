//! How the kernel turns a decision into a bracket: the order types, timers
//! and protection of every plan (Python validates the settings once and
//! hands them over as JSON; unknown keys are refused).

use crate::oco::{
    BracketSpec, EntryKind, OcoError, ScaleOut, StopKind, Trailing, MAX_STOP_FILL_TIMEOUT_NS,
};
use crate::tick::NS_PER_SEC;
use crate::venue::Protection;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BracketTemplate {
    /// "MARKET" or "LIMIT".
    pub entry_type: String,
    /// "SL-M" or "SL".
    pub stop_type: String,
    pub stop_limit_buffer_ticks: u32,
    pub scale_out: bool,
    pub time_stop_s: Option<f64>,
    pub entry_timeout_s: f64,
    /// Market protection of MARKET / SL-M orders in percent; -1 = Kite's automatic band.
    pub market_protection: f64,
    pub max_modifications: u32,
    /// End-of-day square-off, IST "HH:MM"; None: 15:20 equity, 15:25 F&O.
    pub square_off: Option<String>,
    /// A triggered stop not filled after this long is escalated (watchdog).
    pub stop_fill_timeout_s: f64,
    /// Trailing stop at this many ATRs (the engine's, per instrument) from
    /// the last price; None: the stop stays where the plan put it.
    pub trail_atr_mult: Option<f64>,
    /// Smallest tightening worth one of the stop's modifications, in ticks.
    pub trail_min_step_ticks: u32,
}

impl Default for BracketTemplate {
    fn default() -> Self {
        BracketTemplate {
            entry_type: "LIMIT".into(),
            stop_type: "SL-M".into(),
            stop_limit_buffer_ticks: 0,
            scale_out: false,
            time_stop_s: None,
            entry_timeout_s: 300.0,
            market_protection: -1.0,
            max_modifications: 25,
            square_off: None,
            stop_fill_timeout_s: 5.0,
            trail_atr_mult: None,
            trail_min_step_ticks: 1,
        }
    }
}

fn invalid(field: &'static str, problem: String) -> OcoError {
    OcoError::InvalidSpec { field, problem }
}

fn seconds_ns(field: &'static str, s: f64) -> Result<i64, OcoError> {
    if !s.is_finite() || s <= 0.0 || s > 86_400.0 {
        return Err(invalid(
            field,
            format!("must be between 0 and 86400 seconds, got {s}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation)] // bounded just above
    Ok((s * NS_PER_SEC as f64).round() as i64)
}

impl BracketTemplate {
    pub fn from_json(text: &str) -> Result<BracketTemplate, OcoError> {
        let t: BracketTemplate = serde_json::from_str(text)
            .map_err(|e| invalid("bracket", format!("bad bracket settings: {e}")))?;
        t.validate()?;
        Ok(t)
    }

    pub fn validate(&self) -> Result<(), OcoError> {
        self.entry_kind()?;
        self.stop_kind()?;
        self.protection()?;
        seconds_ns("entry_timeout_s", self.entry_timeout_s)?;
        if let Some(s) = self.time_stop_s {
            seconds_ns("time_stop_s", s)?;
        }
        if let Some(text) = &self.square_off {
            BracketSpec::parse_square_off(text)?;
        }
        // The spec's own bounds, checked here: a template accepted at construction
        // must never refuse plans one at a time later.
        if seconds_ns("stop_fill_timeout_s", self.stop_fill_timeout_s)? > MAX_STOP_FILL_TIMEOUT_NS {
            return Err(invalid(
                "stop_fill_timeout_s",
                format!(
                    "must be at most {} seconds, got {}",
                    MAX_STOP_FILL_TIMEOUT_NS / NS_PER_SEC,
                    self.stop_fill_timeout_s
                ),
            ));
        }
        if self.max_modifications == 0 {
            return Err(invalid("max_modifications", "must be at least 1".into()));
        }
        self.trailing()?;
        Ok(())
    }

    /// The trailing settings, if the stop trails.
    pub fn trailing(&self) -> Result<Option<Trailing>, OcoError> {
        let Some(k) = self.trail_atr_mult else {
            return Ok(None);
        };
        // Thousandths of an ATR; 0.001 .. 100 ATRs.
        if !k.is_finite() || !(0.001..=100.0).contains(&k) {
            return Err(invalid(
                "trail_atr_mult",
                format!("must be between 0.001 and 100 (ATRs), got {k}"),
            ));
        }
        if self.trail_min_step_ticks == 0 {
            return Err(invalid("trail_min_step_ticks", "must be at least 1".into()));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // bounded above
        let atr_mult_milli = (k * 1_000.0).round() as u32;
        Ok(Some(Trailing {
            atr_mult_milli,
            min_step_ticks: self.trail_min_step_ticks,
        }))
    }

    pub fn entry_kind(&self) -> Result<EntryKind, OcoError> {
        match self.entry_type.as_str() {
            "LIMIT" => Ok(EntryKind::Limit),
            "MARKET" => Ok(EntryKind::Market),
            other => Err(invalid(
                "entry_type",
                format!("must be LIMIT or MARKET, got {other:?}"),
            )),
        }
    }

    pub fn stop_kind(&self) -> Result<StopKind, OcoError> {
        match (self.stop_type.as_str(), self.stop_limit_buffer_ticks) {
            ("SL-M", 0) => Ok(StopKind::SlM),
            ("SL-M", _) => Err(invalid(
                "stop_limit_buffer_ticks",
                "applies only to an SL stop".into(),
            )),
            ("SL", 0) => Err(invalid(
                "stop_limit_buffer_ticks",
                "must be at least 1 for an SL stop".into(),
            )),
            ("SL", buffer_ticks) => Ok(StopKind::Sl { buffer_ticks }),
            (other, _) => Err(invalid(
                "stop_type",
                format!("must be SL-M or SL, got {other:?}"),
            )),
        }
    }

    pub fn protection(&self) -> Result<Protection, OcoError> {
        let p = self.market_protection;
        if p == -1.0 {
            Ok(Protection::Auto)
        } else if p.is_finite() && p > 0.0 && p <= 100.0 {
            Ok(Protection::Pct(p))
        } else {
            Err(invalid(
                "market_protection",
                format!("must be -1 (automatic) or a percentage in (0, 100], got {p}"),
            ))
        }
    }

    /// The template applied to one plan.
    pub fn apply(&self, spec: &mut BracketSpec) -> Result<(), OcoError> {
        spec.entry = self.entry_kind()?;
        spec.stop_kind = self.stop_kind()?;
        if self.scale_out {
            spec.scale_out = Some(ScaleOut::default());
        }
        spec.time_stop_ns = self
            .time_stop_s
            .map(|s| seconds_ns("time_stop_s", s))
            .transpose()?;
        spec.entry_timeout_ns = seconds_ns("entry_timeout_s", self.entry_timeout_s)?;
        spec.max_modifications = self.max_modifications;
        if let Some(text) = &self.square_off {
            spec.square_off_minute_ist = BracketSpec::parse_square_off(text)?;
        }
        spec.stop_fill_timeout_ns = seconds_ns("stop_fill_timeout_s", self.stop_fill_timeout_s)?;
        spec.trailing = self.trailing()?;
        spec.validate()
    }
}
