//! Fixed-point prices in paise (1/100 rupee).
//!
//! Floats never decide equality or sizing: a price enters the core once,
//! through [`Price::from_rupees_f64`] or [`Price::parse`], and is an `i64`
//! from then on. Tick-size rounding is always explicit.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceError {
    #[error("price is not a finite number: {0}")]
    NotFinite(f64),
    #[error("price {0} is out of range")]
    OutOfRange(String),
    #[error("cannot parse price {0:?}: expected rupees with at most two decimals, e.g. 2500.05")]
    Parse(String),
    #[error("tick size must be positive, got {0} paise")]
    BadTick(i64),
    #[error("price {price} is not on the tick grid of {tick}")]
    OffTick { price: Price, tick: Price },
}

/// How to bring a price onto the tick grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    /// Toward minus infinity.
    Down,
    /// Toward plus infinity.
    Up,
    /// To the closest tick; an exact half rounds up (away from zero for positives).
    Nearest,
}

/// A price in paise.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Price(i64);

/// Largest magnitude accepted from floats: 10^15 paise (10 trillion rupees).
const MAX_PAISE: i64 = 1_000_000_000_000_000;

impl Price {
    pub const ZERO: Price = Price(0);

    pub const fn from_paise(paise: i64) -> Price {
        Price(paise)
    }

    pub const fn paise(self) -> i64 {
        self.0
    }

    /// Converts rupees to the nearest paisa. Rejects NaN, infinities and
    /// absurd magnitudes instead of saturating silently.
    pub fn from_rupees_f64(rupees: f64) -> Result<Price, PriceError> {
        if !rupees.is_finite() {
            return Err(PriceError::NotFinite(rupees));
        }
        let paise = (rupees * 100.0).round();
        if paise.abs() > MAX_PAISE as f64 {
            return Err(PriceError::OutOfRange(rupees.to_string()));
        }
        #[allow(clippy::cast_possible_truncation)] // range checked just above
        Ok(Price(paise as i64))
    }

    /// Parses a decimal rupee string with at most two decimals ("2500", "2500.5", "-0.05").
    pub fn parse(s: &str) -> Result<Price, PriceError> {
        let err = || PriceError::Parse(s.to_string());
        let t = s.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() || frac.len() > 2 {
            return Err(err());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let whole: i64 = whole.parse().map_err(|_| err())?;
        let frac_paise: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac.parse::<i64>().map_err(|_| err())?,
        };
        let paise = whole
            .checked_mul(100)
            .and_then(|p| p.checked_add(frac_paise))
            .filter(|p| *p <= MAX_PAISE)
            .ok_or_else(|| PriceError::OutOfRange(s.to_string()))?;
        Ok(Price(if neg { -paise } else { paise }))
    }

    /// For display and Python only; never for comparisons.
    #[allow(clippy::cast_precision_loss)]
    pub fn to_rupees_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn is_on_grid(self, tick: Price) -> Result<bool, PriceError> {
        check_tick(tick)?;
        Ok(self.0.rem_euclid(tick.0) == 0)
    }

    /// Brings the price onto the grid of `tick` in the given direction.
    pub fn round_to_tick(self, tick: Price, mode: Rounding) -> Result<Price, PriceError> {
        check_tick(tick)?;
        let t = tick.0;
        let down = self.0.div_euclid(t) * t;
        let rem = self.0 - down;
        let out = match mode {
            Rounding::Down => down,
            Rounding::Up if rem == 0 => down,
            Rounding::Up => down + t,
            Rounding::Nearest if rem * 2 >= t => down + t,
            Rounding::Nearest => down,
        };
        Ok(Price(out))
    }

    pub const fn checked_add(self, other: Price) -> Option<Price> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Price(v)),
            None => None,
        }
    }

    pub const fn checked_sub(self, other: Price) -> Option<Price> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Price(v)),
            None => None,
        }
    }

    pub const fn abs_diff(self, other: Price) -> Price {
        // Prices are bounded far below i64::MAX / 2, so the difference fits.
        Price((self.0 - other.0).abs())
    }
}

fn check_tick(tick: Price) -> Result<(), PriceError> {
    if tick.0 <= 0 {
        Err(PriceError::BadTick(tick.0))
    } else {
        Ok(())
    }
}

/// Rupees with exactly two decimals: `2500.05`, `2500.00`, `-0.05`.
/// This spelling is part of the client-id hash; do not change it.
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(250005, "2500.05")]
    #[case(250000, "2500.00")]
    #[case(5, "0.05")]
    #[case(-5, "-0.05")]
    #[case(0, "0.00")]
    #[case(-123456, "-1234.56")]
    fn formats_two_decimals(#[case] paise: i64, #[case] text: &str) {
        assert_eq!(Price::from_paise(paise).to_string(), text);
        assert_eq!(Price::parse(text), Ok(Price::from_paise(paise)));
    }

    #[rstest]
    #[case("2500.5", 250050)]
    #[case("2500", 250000)]
    #[case(" 7.1 ", 710)]
    fn parses_short_forms(#[case] text: &str, #[case] paise: i64) {
        assert_eq!(Price::parse(text).map(Price::paise), Ok(paise));
    }

    #[rstest]
    #[case("")]
    #[case("1.234")]
    #[case("abc")]
    #[case("1e3")]
    #[case(".5")]
    #[case("--1")]
    #[case("99999999999999999999")]
    fn rejects_bad_text(#[case] text: &str) {
        assert!(Price::parse(text).is_err(), "{text:?} should not parse");
    }

    #[rstest]
    #[case(2500.05, 250005)]
    #[case(0.1 + 0.2, 30)]
    #[case(2_500.049_999, 250005)]
    #[case(-0.05, -5)]
    fn float_to_nearest_paisa(#[case] rupees: f64, #[case] paise: i64) {
        assert_eq!(Price::from_rupees_f64(rupees), Ok(Price::from_paise(paise)));
    }

    #[test]
    fn rejects_non_finite() {
        assert!(Price::from_rupees_f64(f64::NAN).is_err());
        assert!(Price::from_rupees_f64(f64::INFINITY).is_err());
        assert!(Price::from_rupees_f64(1e30).is_err());
    }

    #[rstest]
    #[case(250003, 5, Rounding::Down, 250000)]
    #[case(250003, 5, Rounding::Up, 250005)]
    #[case(250003, 5, Rounding::Nearest, 250005)]
    #[case(250002, 5, Rounding::Nearest, 250000)]
    #[case(250000, 5, Rounding::Up, 250000)]
    #[case(-3, 5, Rounding::Down, -5)]
    #[case(-3, 5, Rounding::Up, 0)]
    #[case(12345, 1, Rounding::Nearest, 12345)]
    fn rounds_to_tick(
        #[case] paise: i64,
        #[case] tick: i64,
        #[case] mode: Rounding,
        #[case] want: i64,
    ) {
        let got = Price::from_paise(paise).round_to_tick(Price::from_paise(tick), mode);
        assert_eq!(got, Ok(Price::from_paise(want)));
    }

    #[test]
    fn zero_tick_is_an_error() {
        assert!(Price::from_paise(1)
            .round_to_tick(Price::ZERO, Rounding::Down)
            .is_err());
    }

    proptest::proptest! {
        #[test]
        fn rounding_lands_on_grid_within_one_tick(p in -10_000_000i64..10_000_000, t in 1i64..500) {
            let price = Price::from_paise(p);
            let tick = Price::from_paise(t);
            for mode in [Rounding::Down, Rounding::Up, Rounding::Nearest] {
                let r = price.round_to_tick(tick, mode).unwrap();
                proptest::prop_assert!(r.is_on_grid(tick).unwrap());
                proptest::prop_assert!((r.paise() - p).abs() < t);
            }
            let down = price.round_to_tick(tick, Rounding::Down).unwrap();
            let up = price.round_to_tick(tick, Rounding::Up).unwrap();
            proptest::prop_assert!(down <= price && price <= up);
        }

        #[test]
        fn display_parse_round_trip(p in -1_000_000_000_000i64..1_000_000_000_000) {
            let price = Price::from_paise(p);
            proptest::prop_assert_eq!(Price::parse(&price.to_string()), Ok(price));
        }
    }
}
