//! What a bracket is asked to do. Built once (from the engine's decision and
//! the instrument), validated once, then immutable.
//!
//! Rounding rule: every exit price of a long rounds *down* to the tick, of a
//! short rounds *up*. Stops (initial, breakeven, trailed) therefore land away
//! from the market (a little more room, never a tighter stop than asked),
//! and take-profits land toward it (a little easier to fill).

use super::error::OcoError;
use crate::ids::{order_client_id, OrderTag};
use crate::instrument::{Instrument, Segment};
use crate::price::{Price, Rounding};
use crate::side::Side;
use serde::{Deserialize, Serialize};

/// Entry not filled at all within this long is cancelled (5 minutes).
pub const DEFAULT_ENTRY_TIMEOUT_NS: i64 = 300 * NS_PER_SEC;
/// A triggered stop not completely filled this long after its trigger (in
/// exchange time) is escalated by the watchdog (5 seconds).
pub const DEFAULT_STOP_FILL_TIMEOUT_NS: i64 = 5 * NS_PER_SEC;
/// The longest stop-fill timeout a spec may ask for: a watchdog slower than
/// this protects nothing.
pub const MAX_STOP_FILL_TIMEOUT_NS: i64 = 3_600 * NS_PER_SEC;
/// Kite allows 25 modifications per order.
pub const DEFAULT_MAX_MODIFICATIONS: u32 = 25;
/// Modifications the trailing stop must leave for resizes and breakeven.
pub const TRAIL_RESERVED_MODIFICATIONS: u32 = 5;
/// Zerodha MIS square-off, minutes after midnight IST: equity 15:20.
pub const SQUARE_OFF_EQ_MINUTE: u16 = 15 * 60 + 20;
/// Zerodha MIS square-off for equity derivatives: 15:25.
pub const SQUARE_OFF_FNO_MINUTE: u16 = 15 * 60 + 25;

pub(crate) const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_MIN: i64 = 60 * NS_PER_SEC;
const NS_PER_DAY: i64 = 24 * 60 * NS_PER_MIN;
/// IST is UTC+05:30 all year (no daylight saving), so the core can place the
/// square-off on the session day without a calendar.
const IST_OFFSET_NS: i64 = 330 * NS_PER_MIN;
/// Bounds that keep `price * qty` far inside i64 (notional in paise).
const MAX_QTY: u64 = 10_000_000;
const MAX_PRICE_PAISE: i64 = 100_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntryKind {
    /// LIMIT at `entry_price`.
    Limit,
    /// MARKET; `entry_price` is then the plan's reference price (R is measured from it).
    Market,
}

/// How the protective stop is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StopKind {
    /// Stop-market (Kite `SL-M`).
    #[serde(rename = "SL-M")]
    SlM,
    /// Stop-limit (Kite `SL`): the limit sits `buffer_ticks` beyond the trigger,
    /// on the side that lets it fill (below for a sell stop, above for a buy stop).
    #[serde(rename = "SL")]
    Sl { buffer_ticks: u32 },
}

/// Scale-out: TP1 for `fraction_bps` of the filled quantity at `tp1_r` x R,
/// TP2 for the rest at `tp2_r` x R; the stop moves to breakeven after TP1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    /// Share of the filled quantity for TP1, in basis points (5000 = 50%),
    /// floored to whole lots. If that is zero lots, everything goes to TP2.
    pub fraction_bps: u32,
    /// TP1 distance in thousandths of R (1200 = 1.2R).
    pub tp1_r_milli: u32,
    /// TP2 distance in thousandths of R (2000 = 2R).
    pub tp2_r_milli: u32,
}

impl Default for ScaleOut {
    fn default() -> Self {
        ScaleOut {
            fraction_bps: 5_000,
            tp1_r_milli: 1_200,
            tp2_r_milli: 2_000,
        }
    }
}

/// Trailing stop at `k` x ATR from the last price; it only ever tightens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailing {
    /// `k` in thousandths (2500 = 2.5 x ATR).
    pub atr_mult_milli: u32,
    /// Smallest improvement worth a modification, in ticks: each modification
    /// spends one of the order's (Kite: 25) allowed modifications.
    pub min_step_ticks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BracketSpec {
    /// 24-hex plan id from the engine's decision; order ids derive from it.
    pub plan_id: String,
    pub side: Side,
    /// Planned entry quantity in units (a whole number of lots).
    pub qty: u64,
    pub entry: EntryKind,
    /// LIMIT price, or the reference price of a MARKET entry.
    pub entry_price: Price,
    /// Initial stop trigger.
    pub stop: Price,
    pub stop_kind: StopKind,
    /// Single take-profit (unused with scale-out, whose targets come from R).
    pub take_profit: Price,
    #[serde(default)]
    pub scale_out: Option<ScaleOut>,
    #[serde(default)]
    pub trailing: Option<Trailing>,
    /// Exit at market this long after the first entry fill.
    #[serde(default)]
    pub time_stop_ns: Option<i64>,
    /// Cancel the entry if it has not filled completely this long after opening.
    pub entry_timeout_ns: i64,
    /// A stop that has triggered but not filled completely this long after
    /// (exchange time) is cancelled and the position exits at market; a
    /// second timeout later, whatever is still open exits without waiting.
    #[serde(default = "default_stop_fill_timeout_ns")]
    pub stop_fill_timeout_ns: i64,
    /// End-of-day square-off, minutes after midnight IST.
    pub square_off_minute_ist: u16,
    pub tick_size: Price,
    pub lot_size: u32,
    /// Largest quantity one order may carry (freeze limit, whole lots).
    pub max_order_qty: u64,
    /// Modifications allowed per order by the broker.
    pub max_modifications: u32,
}

const fn default_stop_fill_timeout_ns() -> i64 {
    DEFAULT_STOP_FILL_TIMEOUT_NS
}

fn invalid(field: &'static str, problem: impl Into<String>) -> OcoError {
    OcoError::InvalidSpec {
        field,
        problem: problem.into(),
    }
}

impl BracketSpec {
    /// A spec with the defaults for this instrument: SL-M stop, no scale-out,
    /// no trailing, no time stop, 5-minute entry timeout, square-off 15:20 IST
    /// for equity and 15:25 for F&O, tick/lot/freeze from the instrument.
    #[allow(clippy::too_many_arguments)]
    pub fn for_instrument(
        plan_id: &str,
        instrument: &Instrument,
        side: Side,
        qty: u64,
        entry: EntryKind,
        entry_price: Price,
        stop: Price,
        take_profit: Price,
    ) -> Result<BracketSpec, OcoError> {
        let square_off_minute_ist = match instrument.segment {
            Segment::Eq => SQUARE_OFF_EQ_MINUTE,
            Segment::Fut | Segment::Opt => SQUARE_OFF_FNO_MINUTE,
            Segment::Idx => {
                return Err(invalid(
                    "instrument",
                    format!(
                        "{} is an index (segment IDX) and cannot be traded",
                        instrument.tradingsymbol
                    ),
                ))
            }
        };
        Ok(BracketSpec {
            plan_id: plan_id.to_string(),
            side,
            qty,
            entry,
            entry_price,
            stop,
            stop_kind: StopKind::SlM,
            take_profit,
            scale_out: None,
            trailing: None,
            time_stop_ns: None,
            entry_timeout_ns: DEFAULT_ENTRY_TIMEOUT_NS,
            stop_fill_timeout_ns: DEFAULT_STOP_FILL_TIMEOUT_NS,
            square_off_minute_ist,
            tick_size: instrument.tick_size,
            lot_size: instrument.lot_size,
            max_order_qty: u64::from(instrument.max_order_qty()),
            max_modifications: DEFAULT_MAX_MODIFICATIONS,
        })
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), OcoError> {
        order_client_id(OrderTag::Entry, &self.plan_id).map_err(|_| {
            invalid(
                "plan_id",
                format!(
                    "must be 24 lowercase hex characters, got {:?}",
                    self.plan_id
                ),
            )
        })?;
        if self.tick_size.paise() <= 0 {
            return Err(invalid(
                "tick_size",
                format!("must be positive, got {}", self.tick_size),
            ));
        }
        if self.lot_size == 0 {
            return Err(invalid("lot_size", "must be at least 1"));
        }
        let lot = u64::from(self.lot_size);
        if self.max_order_qty < lot || self.max_order_qty > MAX_QTY {
            return Err(invalid(
                "max_order_qty",
                format!(
                    "must be between one lot ({lot}) and {MAX_QTY}, got {}",
                    self.max_order_qty
                ),
            ));
        }
        if self.qty == 0 || self.qty % lot != 0 {
            return Err(invalid(
                "qty",
                format!(
                    "must be a positive multiple of the lot size {lot}, got {}",
                    self.qty
                ),
            ));
        }
        if self.qty > self.max_order_qty {
            return Err(invalid(
                "qty",
                format!(
                    "{} exceeds the largest single order ({}); split the plan",
                    self.qty, self.max_order_qty
                ),
            ));
        }
        for (field, p) in [
            ("entry_price", self.entry_price),
            ("stop", self.stop),
            ("take_profit", self.take_profit),
        ] {
            if p.paise() <= 0 || p.paise() > MAX_PRICE_PAISE {
                return Err(invalid(field, format!("must be a positive price, got {p}")));
            }
            // A MARKET entry's reference price need not be on the grid.
            let priced = field != "entry_price" || self.entry == EntryKind::Limit;
            if priced && !p.is_on_grid(self.tick_size).unwrap_or(false) {
                return Err(invalid(
                    field,
                    format!("{p} is not on the tick grid of {}", self.tick_size),
                ));
            }
        }
        let s = self.side.sign();
        if s * (self.entry_price.paise() - self.stop.paise()) <= 0 {
            return Err(invalid(
                "stop",
                format!(
                    "{} must be on the losing side of the entry {} for a {}",
                    self.stop, self.entry_price, self.side
                ),
            ));
        }
        if s * (self.take_profit.paise() - self.entry_price.paise()) <= 0 {
            return Err(invalid(
                "take_profit",
                format!(
                    "{} must be on the winning side of the entry {} for a {}",
                    self.take_profit, self.entry_price, self.side
                ),
            ));
        }
        if let StopKind::Sl { buffer_ticks } = self.stop_kind {
            if buffer_ticks == 0 {
                return Err(invalid(
                    "stop_limit_buffer_ticks",
                    "must be at least 1 for an SL stop",
                ));
            }
            let limit = self.stop_limit_for(self.stop);
            if limit.map_or(true, |p| p.paise() <= 0) {
                return Err(invalid(
                    "stop_limit_buffer_ticks",
                    format!("{buffer_ticks} ticks puts the stop limit at or below zero"),
                ));
            }
        }
        if let Some(so) = self.scale_out {
            if so.fraction_bps == 0 || so.fraction_bps >= 10_000 {
                return Err(invalid(
                    "scale_out_fraction",
                    "must be strictly between 0 and 1",
                ));
            }
            if so.tp1_r_milli == 0 || so.tp2_r_milli <= so.tp1_r_milli {
                return Err(invalid(
                    "scale_out_tp1_r",
                    "TP1 must be positive and closer than TP2 (tp1_r < tp2_r)",
                ));
            }
            for n in [1, 2] {
                let tp = self.target_for(OrderTag::TpN(n));
                if s * (tp.paise() - self.entry_price.paise()) <= 0 || tp.paise() <= 0 {
                    return Err(invalid(
                        if n == 1 {
                            "scale_out_tp1_r"
                        } else {
                            "scale_out_tp2_r"
                        },
                        format!(
                            "puts TP{n} at {tp}, not beyond the entry {}",
                            self.entry_price
                        ),
                    ));
                }
            }
        }
        if let Some(t) = self.trailing {
            if t.atr_mult_milli == 0 {
                return Err(invalid("trail_atr_mult", "must be positive"));
            }
            if t.min_step_ticks == 0 {
                return Err(invalid("trail_min_step_ticks", "must be at least 1"));
            }
        }
        if self.time_stop_ns.is_some_and(|t| t <= 0) {
            return Err(invalid("time_stop", "must be positive"));
        }
        if self.entry_timeout_ns <= 0 {
            return Err(invalid("entry_timeout", "must be positive"));
        }
        if self.stop_fill_timeout_ns <= 0 || self.stop_fill_timeout_ns > MAX_STOP_FILL_TIMEOUT_NS {
            return Err(invalid(
                "stop_fill_timeout",
                format!(
                    "must be positive and at most {} s, got {} ns",
                    MAX_STOP_FILL_TIMEOUT_NS / NS_PER_SEC,
                    self.stop_fill_timeout_ns
                ),
            ));
        }
        if self.square_off_minute_ist >= 24 * 60 {
            return Err(invalid(
                "square_off",
                format!("minute {} is not a time of day", self.square_off_minute_ist),
            ));
        }
        if self.max_modifications == 0 {
            return Err(invalid("max_modifications", "must be at least 1"));
        }
        Ok(())
    }

    /// The side that closes the position.
    pub fn exit_side(&self) -> Side {
        self.side.opposite()
    }

    /// Brings an exit price onto the grid (down for a long, up for a short).
    pub fn round_exit(&self, p: Price) -> Price {
        let mode = match self.side {
            Side::Buy => Rounding::Down,
            Side::Sell => Rounding::Up,
        };
        // tick_size is validated positive, so rounding cannot fail.
        p.round_to_tick(self.tick_size, mode).unwrap_or(p)
    }

    /// Limit price of an SL stop for `trigger`; `None` for SL-M.
    pub fn stop_limit_for(&self, trigger: Price) -> Option<Price> {
        match self.stop_kind {
            StopKind::SlM => None,
            StopKind::Sl { buffer_ticks } => {
                let buf = self.tick_size.paise() * i64::from(buffer_ticks);
                // A sell stop (long) must be able to fill below its trigger.
                Some(Price::from_paise(trigger.paise() - self.side.sign() * buf))
            }
        }
    }

    /// Limit price of a take-profit leg (a replacement target, TARGETn, at
    /// the final target's: TP, or TP2 when scaling out).
    pub fn target_for(&self, tag: OrderTag) -> Price {
        let so = match (tag, self.scale_out) {
            (OrderTag::TpN(n), Some(so)) => (n, so),
            (OrderTag::TargetN(_), Some(so)) => (2, so),
            _ => return self.take_profit,
        };
        let (n, so) = so;
        let r = i128::from((self.entry_price.paise() - self.stop.paise()).abs());
        let mult = i128::from(if n == 1 {
            so.tp1_r_milli
        } else {
            so.tp2_r_milli
        });
        let dist = (r * mult + 500) / 1000;
        let raw = i128::from(self.entry_price.paise()) + i128::from(self.side.sign()) * dist;
        let raw = i64::try_from(raw).unwrap_or(i64::MAX);
        self.round_exit(Price::from_paise(raw))
    }

    /// `q` floored to whole lots.
    pub fn floor_lots(&self, q: u64) -> u64 {
        let lot = u64::from(self.lot_size.max(1));
        q / lot * lot
    }

    /// Parses a square-off time of day, `"HH:MM"` IST, into minutes.
    pub fn parse_square_off(text: &str) -> Result<u16, OcoError> {
        let bad = || invalid("square_off", format!("expected HH:MM (IST), got {text:?}"));
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(h * 60 + m)
    }

    /// The absolute instant (UTC ns) of the square-off on the IST day of `at_ns`.
    pub fn square_off_ns(&self, at_ns: i64) -> i64 {
        let ist_day_start =
            (at_ns + IST_OFFSET_NS).div_euclid(NS_PER_DAY) * NS_PER_DAY - IST_OFFSET_NS;
        ist_day_start + i64::from(self.square_off_minute_ist) * NS_PER_MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn reliance() -> Instrument {
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

    fn spec(side: Side) -> BracketSpec {
        let (e, s, t) = match side {
            Side::Buy => (250_000, 248_000, 254_000),
            Side::Sell => (250_000, 252_000, 246_000),
        };
        BracketSpec::for_instrument(
            "0123456789abcdef01234567",
            &reliance(),
            side,
            10,
            EntryKind::Limit,
            Price::from_paise(e),
            Price::from_paise(s),
            Price::from_paise(t),
        )
        .unwrap()
    }

    #[test]
    fn defaults_validate() {
        assert_eq!(spec(Side::Buy).validate(), Ok(()));
        assert_eq!(spec(Side::Sell).validate(), Ok(()));
        assert_eq!(spec(Side::Buy).square_off_minute_ist, SQUARE_OFF_EQ_MINUTE);
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutate = Box<dyn Fn(&mut BracketSpec)>;
        let cases: Vec<(&str, Mutate)> = vec![
            ("plan_id", Box::new(|s| s.plan_id = "xyz".into())),
            ("qty", Box::new(|s| s.qty = 0)),
            ("qty", Box::new(|s| s.qty = 200_000)),
            ("stop", Box::new(|s| s.stop = Price::from_paise(251_000))),
            ("stop", Box::new(|s| s.stop = Price::from_paise(248_001))),
            (
                "take_profit",
                Box::new(|s| s.take_profit = Price::from_paise(249_000)),
            ),
            (
                "entry_price",
                Box::new(|s| s.entry_price = Price::from_paise(0)),
            ),
            (
                "stop_limit_buffer_ticks",
                Box::new(|s| s.stop_kind = StopKind::Sl { buffer_ticks: 0 }),
            ),
            (
                "scale_out_fraction",
                Box::new(|s| {
                    s.scale_out = Some(ScaleOut {
                        fraction_bps: 10_000,
                        ..ScaleOut::default()
                    })
                }),
            ),
            (
                "scale_out_tp1_r",
                Box::new(|s| {
                    s.scale_out = Some(ScaleOut {
                        tp1_r_milli: 2_500,
                        ..ScaleOut::default()
                    })
                }),
            ),
            (
                "trail_atr_mult",
                Box::new(|s| {
                    s.trailing = Some(Trailing {
                        atr_mult_milli: 0,
                        min_step_ticks: 1,
                    })
                }),
            ),
            ("time_stop", Box::new(|s| s.time_stop_ns = Some(0))),
            ("entry_timeout", Box::new(|s| s.entry_timeout_ns = -1)),
            (
                "stop_fill_timeout",
                Box::new(|s| s.stop_fill_timeout_ns = 0),
            ),
            (
                "stop_fill_timeout",
                Box::new(|s| s.stop_fill_timeout_ns = 3_601 * NS_PER_SEC),
            ),
            ("square_off", Box::new(|s| s.square_off_minute_ist = 1440)),
            ("max_modifications", Box::new(|s| s.max_modifications = 0)),
            ("tick_size", Box::new(|s| s.tick_size = Price::ZERO)),
            ("lot_size", Box::new(|s| s.lot_size = 0)),
        ];
        for (field, mutate) in cases {
            let mut s = spec(Side::Buy);
            mutate(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn market_entry_reference_need_not_be_on_grid() {
        let mut s = spec(Side::Buy);
        s.entry = EntryKind::Market;
        s.entry_price = Price::from_paise(250_003);
        assert_eq!(s.validate(), Ok(()));
        s.entry = EntryKind::Limit;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("entry_price"));
    }

    #[test]
    fn index_cannot_be_traded() {
        let mut inst = reliance();
        inst.segment = Segment::Idx;
        let err = BracketSpec::for_instrument(
            "0123456789abcdef01234567",
            &inst,
            Side::Buy,
            1,
            EntryKind::Market,
            Price::from_paise(100),
            Price::from_paise(90),
            Price::from_paise(110),
        )
        .unwrap_err();
        assert!(err.to_string().contains("instrument"));
    }

    #[test]
    fn scale_out_targets_round_toward_the_market() {
        let mut s = spec(Side::Buy);
        s.scale_out = Some(ScaleOut::default());
        // R = 20.00; 1.2R = 24.00 -> 2524.00; 2R -> 2540.00
        assert_eq!(s.target_for(OrderTag::TpN(1)), Price::from_paise(252_400));
        assert_eq!(s.target_for(OrderTag::TpN(2)), Price::from_paise(254_000));
        s.stop = Price::from_paise(248_005); // R = 19.95: 1.2R = 23.94 -> 2523.94 -> down to 2523.90
        assert_eq!(s.target_for(OrderTag::TpN(1)), Price::from_paise(252_390));
        let mut s = spec(Side::Sell);
        s.scale_out = Some(ScaleOut::default());
        s.stop = Price::from_paise(251_995); // R = 19.95 -> 2476.06 -> up to 2476.10
        assert_eq!(s.target_for(OrderTag::TpN(1)), Price::from_paise(247_610));
    }

    #[test]
    fn stop_limit_sits_beyond_the_trigger() {
        let mut s = spec(Side::Buy);
        s.stop_kind = StopKind::Sl { buffer_ticks: 4 };
        assert_eq!(
            s.stop_limit_for(Price::from_paise(248_000)),
            Some(Price::from_paise(247_980))
        );
        let mut s = spec(Side::Sell);
        s.stop_kind = StopKind::Sl { buffer_ticks: 4 };
        assert_eq!(
            s.stop_limit_for(Price::from_paise(252_000)),
            Some(Price::from_paise(252_020))
        );
    }

    #[test]
    fn square_off_is_on_the_ist_day() {
        let s = spec(Side::Buy);
        // 2026-01-01 04:00 UTC = 09:30 IST; square-off 15:20 IST = 09:50 UTC.
        let t0 = 1_767_240_000 * NS_PER_SEC;
        assert_eq!(
            s.square_off_ns(t0),
            t0 + 5 * 3600 * NS_PER_SEC + 50 * 60 * NS_PER_SEC
        );
        // 20:00 UTC is 01:30 IST the next day: that day's square-off.
        let late = t0 + 16 * 3600 * NS_PER_SEC;
        assert_eq!(s.square_off_ns(late), s.square_off_ns(t0) + NS_PER_DAY);
    }

    #[test]
    fn square_off_text() {
        assert_eq!(
            BracketSpec::parse_square_off("15:20"),
            Ok(SQUARE_OFF_EQ_MINUTE)
        );
        assert_eq!(BracketSpec::parse_square_off("09:05"), Ok(545));
        for bad in ["1520", "15:2", "24:00", "15:60", "ab:cd", ""] {
            let err = BracketSpec::parse_square_off(bad).unwrap_err().to_string();
            assert!(err.contains("square_off"), "{bad}: {err}");
        }
    }

    #[test]
    fn serde_refuses_unknown_fields() {
        let s = spec(Side::Buy);
        let mut v = serde_json::to_value(&s).unwrap();
        assert_eq!(serde_json::from_value::<BracketSpec>(v.clone()).unwrap(), s);
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<BracketSpec>(v).is_err());
    }

    #[test]
    fn a_spec_stored_before_the_watchdog_gets_the_default_timeout() {
        let s = spec(Side::Buy);
        let mut v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["stop_fill_timeout_ns"], serde_json::json!(5 * NS_PER_SEC));
        v.as_object_mut().unwrap().remove("stop_fill_timeout_ns");
        let back: BracketSpec = serde_json::from_value(v).unwrap();
        assert_eq!(back.stop_fill_timeout_ns, DEFAULT_STOP_FILL_TIMEOUT_NS);
        assert_eq!(back, s);
    }
}
