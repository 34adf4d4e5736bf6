//! Tradable instruments, as described by Kite's instruments master.

use crate::price::Price;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    #[error("instrument {symbol}: {key} {problem}")]
    Invalid {
        symbol: String,
        key: &'static str,
        problem: String,
    },
    #[error("unknown segment {0:?}: expected EQ, FUT, OPT or IDX")]
    UnknownSegment(String),
}

/// What kind of contract: it decides charges, square-off time and lot rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Segment {
    /// Cash equity.
    Eq,
    /// Futures.
    Fut,
    /// Options (prices are premiums).
    Opt,
    /// Index: has ticks, cannot be traded.
    Idx,
}

impl Segment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Segment::Eq => "EQ",
            Segment::Fut => "FUT",
            Segment::Opt => "OPT",
            Segment::Idx => "IDX",
        }
    }

    pub fn parse(s: &str) -> Result<Segment, InstrumentError> {
        match s {
            "EQ" => Ok(Segment::Eq),
            "FUT" => Ok(Segment::Fut),
            "OPT" => Ok(Segment::Opt),
            "IDX" => Ok(Segment::Idx),
            other => Err(InstrumentError::UnknownSegment(other.to_string())),
        }
    }

    pub const fn is_derivative(self) -> bool {
        matches!(self, Segment::Fut | Segment::Opt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    pub exchange: String,
    pub tradingsymbol: String,
    pub instrument_token: u32,
    pub segment: Segment,
    /// Smallest price step (5 paise for most NSE names, 1 paisa under 250 rupees).
    pub tick_size: Price,
    /// Units per lot: 1 for cash equity, the contract lot for F&O.
    pub lot_size: u32,
    /// Largest quantity one order may carry (exchange freeze limit), in units.
    pub freeze_qty: u32,
}

impl Instrument {
    /// Checks the fields a trade depends on; the error names the key.
    pub fn validate(&self) -> Result<(), InstrumentError> {
        let bad = |key: &'static str, problem: String| InstrumentError::Invalid {
            symbol: self.tradingsymbol.clone(),
            key,
            problem,
        };
        if self.tradingsymbol.trim().is_empty() {
            return Err(bad("tradingsymbol", "must not be empty".into()));
        }
        if self.exchange.trim().is_empty() {
            return Err(bad("exchange", "must not be empty".into()));
        }
        if self.tick_size.paise() <= 0 {
            return Err(bad(
                "tick_size",
                format!("must be positive, got {}", self.tick_size),
            ));
        }
        if self.lot_size == 0 {
            return Err(bad("lot_size", "must be at least 1".into()));
        }
        if self.freeze_qty < self.lot_size {
            return Err(bad(
                "freeze_qty",
                format!(
                    "must be at least one lot ({}), got {}",
                    self.lot_size, self.freeze_qty
                ),
            ));
        }
        Ok(())
    }

    /// Largest whole-lot quantity that one order may carry.
    pub fn max_order_qty(&self) -> u32 {
        self.freeze_qty / self.lot_size * self.lot_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nifty_fut() -> Instrument {
        Instrument {
            exchange: "NFO".into(),
            tradingsymbol: "NIFTY26DECFUT".into(),
            instrument_token: 13_238_786,
            segment: Segment::Fut,
            tick_size: Price::from_paise(10),
            lot_size: 65,
            freeze_qty: 1800,
        }
    }

    #[test]
    fn valid_instrument_passes() {
        assert_eq!(nifty_fut().validate(), Ok(()));
        assert_eq!(nifty_fut().max_order_qty(), 1755);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut i = nifty_fut();
        i.lot_size = 0;
        assert!(i.validate().unwrap_err().to_string().contains("lot_size"));
        let mut i = nifty_fut();
        i.tick_size = Price::ZERO;
        assert!(i.validate().unwrap_err().to_string().contains("tick_size"));
        let mut i = nifty_fut();
        i.freeze_qty = 10;
        assert!(i.validate().unwrap_err().to_string().contains("freeze_qty"));
        let mut i = nifty_fut();
        i.tradingsymbol = " ".into();
        assert!(i
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tradingsymbol"));
    }

    #[test]
    fn segment_round_trip() {
        for s in [Segment::Eq, Segment::Fut, Segment::Opt, Segment::Idx] {
            assert_eq!(Segment::parse(s.as_str()), Ok(s));
        }
        assert!(Segment::parse("CDS").is_err());
    }
}
