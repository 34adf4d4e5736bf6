//! The daily price band of one instrument: a tick priced further than the
//! band from its anchor is bad data (`PRICE_BAND`), never a price to trade on.
//!
//! The anchor is the previous close when the caller gives one, else the
//! previous day's last accepted price, else the day's first valid price.
//!
//! An anchor can be wrong (a stale close, a first tick that was itself bad)
//! and F&O operating ranges are flexed during the day. So that neither can
//! freeze an instrument for the day, `reanchor_ticks` consecutive
//! out-of-band ticks that all lie within the band around the first of them
//! move the anchor there; that tick is accepted. A single absurd print, or
//! a scatter of them, never agrees with itself for that long. This run
//! count is the one piece of state that a refused tick changes.

use crate::config::PCT_SCALE;
use crate::price::Price;
use crate::tick::TickReject;

/// Where the band's anchor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorSource {
    PreviousClose,
    PriorDayLast,
    FirstPrice,
    Reanchored,
}

impl AnchorSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            AnchorSource::PreviousClose => "PREVIOUS_CLOSE",
            AnchorSource::PriorDayLast => "PRIOR_DAY_LAST",
            AnchorSource::FirstPrice => "FIRST_PRICE",
            AnchorSource::Reanchored => "REANCHORED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceBand {
    /// Half-width in millionths of a percent of the anchor; 0 = no band.
    pct_e6: i64,
    /// Agreeing out-of-band ticks in a row that move the anchor; 0 = never.
    reanchor_ticks: u32,
    day: Option<i64>,
    anchor: Option<(Price, AnchorSource)>,
    /// A previous close was given for this day (`Some(None)`: for the first
    /// day the band sees).
    close_for: Option<Option<i64>>,
    last: Option<Price>,
    /// First price and length of the current run of out-of-band ticks.
    run: Option<(Price, u32)>,
}

/// |p - anchor| <= pct of anchor, exactly: in i64 when both sides fit (every
/// real price, three times a tick), in i128 otherwise.
fn within(p: Price, anchor: Price, pct_e6: i64) -> bool {
    let (p, a) = (p.paise(), anchor.paise());
    let fast = p
        .checked_sub(a)
        .and_then(i64::checked_abs)
        .and_then(|d| d.checked_mul(100 * PCT_SCALE))
        .zip(pct_e6.checked_mul(a));
    if let Some((lhs, rhs)) = fast {
        return lhs <= rhs;
    }
    let diff = i128::from(p) - i128::from(a);
    diff.abs() * 100 * i128::from(PCT_SCALE) <= i128::from(pct_e6) * i128::from(a)
}

impl PriceBand {
    pub const fn off() -> PriceBand {
        PriceBand::new(0, 0)
    }

    pub const fn new(pct_e6: i64, reanchor_ticks: u32) -> PriceBand {
        PriceBand {
            pct_e6,
            reanchor_ticks,
            day: None,
            anchor: None,
            close_for: None,
            last: None,
            run: None,
        }
    }

    pub fn pct_e6(&self) -> i64 {
        self.pct_e6
    }

    /// Another width (e.g. the exchange's band of this one security).
    pub fn set_pct_e6(&mut self, pct_e6: i64) {
        self.pct_e6 = pct_e6;
        self.run = None;
    }

    /// Anchors the band on the previous close for IST day `day` (`None`:
    /// the first day the band sees).
    pub fn set_previous_close(&mut self, close: Price, day: Option<i64>) {
        self.anchor = Some((close, AnchorSource::PreviousClose));
        self.close_for = Some(day);
        self.run = None;
    }

    pub fn anchor(&self) -> Option<(Price, AnchorSource)> {
        self.anchor
    }

    /// Checks the prices of a tick of IST day `day` that passed every other
    /// check. `Ok(true)`: accepted by moving the anchor.
    pub fn check(
        &mut self,
        day: i64,
        last: Price,
        bid: Option<Price>,
        ask: Option<Price>,
    ) -> Result<bool, TickReject> {
        if self.day != Some(day) {
            self.roll_day(day);
        }
        let pct = self.pct_e6;
        if pct == 0 {
            self.last = Some(last);
            return Ok(false);
        }
        let all_within = |a: Price| {
            within(last, a, pct)
                && bid.map_or(true, |b| within(b, a, pct))
                && ask.map_or(true, |x| within(x, a, pct))
        };
        let (anchor, fresh) = match self.anchor {
            Some((a, _)) => (a, false),
            None => (last, true),
        };
        if all_within(anchor) {
            if fresh {
                self.anchor = Some((last, AnchorSource::FirstPrice));
            }
            self.run = None;
            self.last = Some(last);
            return Ok(false);
        }
        let run = match self.run {
            Some((start, n)) if all_within(start) => Some((start, n.saturating_add(1))),
            _ if all_within(last) => Some((last, 1)),
            _ => None,
        };
        if let Some((start, n)) = run {
            if self.reanchor_ticks > 0 && n >= self.reanchor_ticks {
                self.anchor = Some((start, AnchorSource::Reanchored));
                self.run = None;
                self.last = Some(last);
                return Ok(true);
            }
        }
        self.run = run;
        Err(TickReject::PriceBand)
    }

    fn roll_day(&mut self, day: i64) {
        let first_day = self.day.is_none();
        self.day = Some(day);
        self.run = None;
        let close_applies = match self.close_for {
            Some(Some(d)) => d == day,
            Some(None) => first_day,
            None => false,
        };
        if !close_applies {
            self.close_for = None;
            self.anchor = self.last.map(|p| (p, AnchorSource::PriorDayLast));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: fn(i64) -> Price = Price::from_paise;

    fn band(pct: i64, reanchor: u32) -> PriceBand {
        PriceBand::new(pct * PCT_SCALE, reanchor)
    }

    #[test]
    fn the_first_price_anchors_and_the_band_is_inclusive() {
        let mut b = band(20, 0);
        assert_eq!(b.check(1, P(10_000), None, None), Ok(false));
        assert_eq!(b.anchor(), Some((P(10_000), AnchorSource::FirstPrice)));
        assert_eq!(b.check(1, P(12_000), None, None), Ok(false), "exactly +20%");
        assert_eq!(b.check(1, P(8_000), None, None), Ok(false), "exactly -20%");
        assert_eq!(
            b.check(1, P(12_005), None, None),
            Err(TickReject::PriceBand)
        );
        assert_eq!(b.check(1, P(7_995), None, None), Err(TickReject::PriceBand));
        // A quote side out of band refuses the tick too.
        assert_eq!(
            b.check(1, P(10_000), Some(P(9_995)), Some(P(1_000_000))),
            Err(TickReject::PriceBand)
        );
        // The anchor did not move.
        assert_eq!(b.anchor(), Some((P(10_000), AnchorSource::FirstPrice)));
    }

    #[test]
    fn a_wide_band_has_no_floor_and_zero_is_off() {
        // 1,000%: up to 11x; any positive price below.
        let mut b = band(1_000, 0);
        b.check(1, P(1_000), None, None).unwrap();
        assert_eq!(b.check(1, P(1), None, None), Ok(false));
        assert_eq!(b.check(1, P(11_000), None, None), Ok(false));
        assert_eq!(
            b.check(1, P(11_005), None, None),
            Err(TickReject::PriceBand)
        );
        let mut off = PriceBand::off();
        off.check(1, P(1), None, None).unwrap();
        assert_eq!(off.check(1, P(i64::MAX / 2), None, None), Ok(false));
    }

    #[test]
    fn previous_close_anchors_then_the_prior_day_last() {
        let mut b = band(10, 0);
        b.set_previous_close(P(50_000), None);
        assert_eq!(
            b.check(7, P(56_000), None, None),
            Err(TickReject::PriceBand)
        );
        b.check(7, P(54_000), None, None).unwrap();
        assert_eq!(b.anchor(), Some((P(50_000), AnchorSource::PreviousClose)));
        // Next day: yesterday's last price is the reference.
        assert_eq!(b.check(8, P(59_400), None, None), Ok(false));
        assert_eq!(b.anchor(), Some((P(54_000), AnchorSource::PriorDayLast)));
        // A close given for day 9 holds on day 9.
        b.set_previous_close(P(60_000), Some(9));
        assert_eq!(b.check(9, P(65_950), None, None), Ok(false));
        assert_eq!(b.anchor(), Some((P(60_000), AnchorSource::PreviousClose)));
    }

    #[test]
    fn agreeing_out_of_band_ticks_move_the_anchor_a_scatter_never_does() {
        let mut b = band(10, 5);
        b.set_previous_close(P(10_000), None);
        // A stale close: the market really trades near 200.
        for k in 0..4 {
            assert_eq!(
                b.check(1, P(20_000 + k * 5), None, None),
                Err(TickReject::PriceBand)
            );
        }
        assert_eq!(b.check(1, P(20_100), None, None), Ok(true));
        assert_eq!(b.anchor(), Some((P(20_000), AnchorSource::Reanchored)));
        // Absurd prints that disagree with each other never re-anchor.
        for k in 0..100 {
            let wild = if k % 2 == 0 { 1_000_000 } else { 100 };
            assert_eq!(b.check(1, P(wild), None, None), Err(TickReject::PriceBand));
        }
        // An in-band tick breaks a run.
        for _ in 0..4 {
            b.check(1, P(30_000), None, None).unwrap_err();
        }
        b.check(1, P(20_000), None, None).unwrap();
        assert_eq!(
            b.check(1, P(30_000), None, None),
            Err(TickReject::PriceBand)
        );
        assert_eq!(b.anchor(), Some((P(20_000), AnchorSource::Reanchored)));
    }
}
