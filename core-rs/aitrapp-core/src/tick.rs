//! Tick intake: the feed's floats become validated, grid-aligned paise once.
//!
//! A bad tick is counted by reason and changes no state: [`TickIntake::accept`]
//! mutates only after every check has passed. The one exception is the
//! price band's count of consecutive out-of-band ticks (see [`band`]).
//!
//! Exchange time is data, not truth: a tick stamped outside the trading
//! day's session (or far from the caller's clock, when one is set) is
//! refused as `TIME_OUT_OF_RANGE` before it could become the instrument's
//! last time, so one bad stamp (30 days ahead, year 2116) cannot make every
//! later correct tick "out of order".

mod band;

pub use band::PriceBand;

use crate::price::{Price, Rounding};

pub const NS_PER_SEC: i64 = 1_000_000_000;
pub const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;
/// IST is UTC+05:30 all year (India has no daylight saving).
pub const IST_OFFSET_NS: i64 = 19_800 * NS_PER_SEC;

/// A moment seen on the IST wall clock: trading date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstTime {
    /// IST calendar day, counted in days since 1970-01-01.
    pub day: i64,
    /// Nanoseconds since IST midnight.
    pub tod_ns: i64,
}

impl IstTime {
    pub const fn from_utc_ns(ts_ns: i64) -> IstTime {
        let local = ts_ns.saturating_add(IST_OFFSET_NS);
        IstTime {
            day: local.div_euclid(NS_PER_DAY),
            tod_ns: local.rem_euclid(NS_PER_DAY),
        }
    }
}

/// A tick as the feed reports it: rupee floats, counts as signed integers so
/// that a negative value is counted as bad input rather than failing a cast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawTick {
    pub token: i64,
    /// Exchange timestamp, UTC nanoseconds.
    pub ts_ns: i64,
    pub last_price: f64,
    pub last_qty: i64,
    /// Cumulative traded volume for the day.
    pub volume: i64,
    /// `None`, NaN or 0.0 (Kite's empty depth side) mean "no bid".
    pub bid: Option<f64>,
    /// `None`, NaN or 0.0 mean "no ask".
    pub ask: Option<f64>,
    pub oi: Option<i64>,
}

/// Why a tick was refused. The codes are stable (metrics, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TickReject {
    UnknownInstrument,
    NonFinitePrice,
    NonPositivePrice,
    PriceOutOfRange,
    NegativeQuantity,
    CrossedQuote,
    OutOfOrder,
    VolumeDecreased,
    /// Exchange time outside the trading day's session (with its margin),
    /// or further than the allowed skew from the caller's clock.
    TimeOutOfRange,
    /// A price outside the instrument's daily price band.
    PriceBand,
}

impl TickReject {
    pub const ALL: [TickReject; 10] = [
        TickReject::UnknownInstrument,
        TickReject::NonFinitePrice,
        TickReject::NonPositivePrice,
        TickReject::PriceOutOfRange,
        TickReject::NegativeQuantity,
        TickReject::CrossedQuote,
        TickReject::OutOfOrder,
        TickReject::VolumeDecreased,
        TickReject::TimeOutOfRange,
        TickReject::PriceBand,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TickReject::UnknownInstrument => "UNKNOWN_INSTRUMENT",
            TickReject::NonFinitePrice => "NON_FINITE_PRICE",
            TickReject::NonPositivePrice => "NON_POSITIVE_PRICE",
            TickReject::PriceOutOfRange => "PRICE_OUT_OF_RANGE",
            TickReject::NegativeQuantity => "NEGATIVE_QUANTITY",
            TickReject::CrossedQuote => "CROSSED_QUOTE",
            TickReject::OutOfOrder => "OUT_OF_ORDER",
            TickReject::VolumeDecreased => "VOLUME_DECREASED",
            TickReject::TimeOutOfRange => "TIME_OUT_OF_RANGE",
            TickReject::PriceBand => "PRICE_BAND",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Counts of accepted, rounded and rejected ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickCounters {
    pub accepted: u64,
    /// Accepted after rounding an off-grid price onto the tick grid.
    pub off_tick_rounded: u64,
    /// Accepted after a run of agreeing out-of-band ticks moved the band's
    /// anchor (see [`PriceBand`]).
    pub band_reanchored: u64,
    rejected: [u64; TickReject::ALL.len()],
}

impl TickCounters {
    pub fn reject(&mut self, why: TickReject) {
        self.rejected[why.index()] += 1;
    }

    pub fn rejected(&self, why: TickReject) -> u64 {
        self.rejected[why.index()]
    }

    /// Every reason with its count, zeros included, in a fixed order.
    pub fn rejections(&self) -> impl Iterator<Item = (TickReject, u64)> + '_ {
        TickReject::ALL.iter().map(|r| (*r, self.rejected(*r)))
    }

    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

/// A validated tick: prices in paise on the instrument's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub token: u32,
    pub ts_ns: i64,
    pub ist: IstTime,
    pub last: Price,
    pub last_qty: u64,
    pub volume: u64,
    /// Volume traded since the previous accepted tick of the same IST day.
    pub volume_delta: u64,
    pub bid: Option<Price>,
    pub ask: Option<Price>,
    pub oi: Option<u64>,
}

impl Tick {
    /// Mid of bid and ask in paise when both sides are present, else the last price.
    pub fn mid_paise(&self) -> f64 {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) => (b.paise() + a.paise()) as f64 / 2.0,
            _ => self.last.paise() as f64,
        }
    }
}

/// When a tick's exchange time is believable; built from the `session` and
/// `ticks` config (see [`crate::config::EngineConfig::tick_rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickRules {
    /// Earliest IST time of day (inclusive): pre-open less the margin.
    pub earliest_tod_ns: i64,
    /// Latest IST time of day (inclusive): close plus the margin.
    pub latest_tod_ns: i64,
    /// Largest |exchange time - caller's clock| once a clock is set.
    pub max_clock_skew_ns: i64,
}

impl TickRules {
    /// No time checks at all (only the order of ticks).
    pub const OPEN: TickRules = TickRules {
        earliest_tod_ns: 0,
        latest_tod_ns: NS_PER_DAY - 1,
        max_clock_skew_ns: i64::MAX,
    };
}

/// What the engine knows about "now" when a tick arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeFrame {
    /// IST day being traded; `None` until the first accepted tick (or the
    /// caller's clock) sets it. A tick of another day is refused.
    pub day: Option<i64>,
    /// The caller's wall clock (UTC ns), live only; the core reads no clock.
    pub clock_ns: Option<i64>,
}

impl TimeFrame {
    fn admits(&self, rules: &TickRules, ts_ns: i64, ist: IstTime) -> bool {
        let in_session = (rules.earliest_tod_ns..=rules.latest_tod_ns).contains(&ist.tod_ns);
        let on_day = self.day.map_or(true, |d| d == ist.day);
        let near_clock = self.clock_ns.map_or(true, |now| {
            u64::try_from(rules.max_clock_skew_ns).map_or(true, |max| ts_ns.abs_diff(now) <= max)
        });
        in_session && on_day && near_clock
    }
}

/// A tick that passed every check, with what had to be done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub tick: Tick,
    /// A price was rounded onto the tick grid.
    pub rounded: bool,
    /// The price band moved its anchor to take this tick.
    pub reanchored: bool,
}

/// Per-instrument intake state: the last accepted time and volume.
#[derive(Debug, Clone)]
pub struct TickIntake {
    token: u32,
    tick_size: Price,
    last_ts: Option<i64>,
    /// (IST day, cumulative volume) of the last accepted tick.
    last_volume: Option<(i64, u64)>,
    band: PriceBand,
}

fn to_grid(rupees: f64, tick: Price) -> Result<(Price, bool), TickReject> {
    if !rupees.is_finite() {
        return Err(TickReject::NonFinitePrice);
    }
    if rupees <= 0.0 {
        return Err(TickReject::NonPositivePrice);
    }
    let p = Price::from_rupees_f64(rupees).map_err(|_| TickReject::PriceOutOfRange)?;
    let on = p
        .round_to_tick(tick, Rounding::Nearest)
        .map_err(|_| TickReject::PriceOutOfRange)?;
    if on.paise() <= 0 {
        // e.g. 0.02 on a 0.05 grid: rounds to nothing tradable.
        return Err(TickReject::NonPositivePrice);
    }
    Ok((on, on != p))
}

fn quote_side(value: Option<f64>, tick: Price) -> Result<(Option<Price>, bool), TickReject> {
    match value {
        None => Ok((None, false)),
        Some(v) if v.is_nan() || v == 0.0 => Ok((None, false)),
        Some(v) => to_grid(v, tick).map(|(p, r)| (Some(p), r)),
    }
}

fn non_negative(v: i64) -> Result<u64, TickReject> {
    u64::try_from(v).map_err(|_| TickReject::NegativeQuantity)
}

impl TickIntake {
    /// An intake without a price band.
    pub fn new(token: u32, tick_size: Price) -> TickIntake {
        TickIntake::with_band(token, tick_size, PriceBand::off())
    }

    pub fn with_band(token: u32, tick_size: Price, band: PriceBand) -> TickIntake {
        TickIntake {
            token,
            tick_size,
            last_ts: None,
            last_volume: None,
            band,
        }
    }

    pub fn band(&self) -> &PriceBand {
        &self.band
    }

    pub fn band_mut(&mut self) -> &mut PriceBand {
        &mut self.band
    }

    /// Validates `raw` without time rules; on success records it and returns
    /// the tick and whether any price had to be rounded onto the grid. On
    /// error nothing changes.
    pub fn accept(&mut self, raw: &RawTick) -> Result<(Tick, bool), TickReject> {
        self.accept_at(raw, &TickRules::OPEN, TimeFrame::default())
            .map(|a| (a.tick, a.rounded))
    }

    /// Validates `raw` against the time `rules` for `frame`, the order of
    /// ticks and the price band; on success records it. On error nothing
    /// changes but the band's count of consecutive out-of-band ticks.
    pub fn accept_at(
        &mut self,
        raw: &RawTick,
        rules: &TickRules,
        frame: TimeFrame,
    ) -> Result<Accepted, TickReject> {
        let (last, r_last) = to_grid(raw.last_price, self.tick_size)?;
        let (bid, r_bid) = quote_side(raw.bid, self.tick_size)?;
        let (ask, r_ask) = quote_side(raw.ask, self.tick_size)?;
        let last_qty = non_negative(raw.last_qty)?;
        let volume = non_negative(raw.volume)?;
        let oi = raw.oi.map(non_negative).transpose()?;
        if let (Some(b), Some(a)) = (bid, ask) {
            if b > a {
                return Err(TickReject::CrossedQuote);
            }
        }
        let ist = IstTime::from_utc_ns(raw.ts_ns);
        // Before the order check: a stamp from another day is bad data, not
        // an old tick, and must never become the last time.
        if !frame.admits(rules, raw.ts_ns, ist) {
            return Err(TickReject::TimeOutOfRange);
        }
        if self.last_ts.is_some_and(|t| raw.ts_ns < t) {
            return Err(TickReject::OutOfOrder);
        }
        let volume_delta = match self.last_volume {
            // Cumulative volume restarts every trading day.
            Some((day, prev)) if day == ist.day => {
                if volume < prev {
                    return Err(TickReject::VolumeDecreased);
                }
                volume - prev
            }
            // First tick of the day: its own trade is all we can attribute.
            _ => last_qty.min(volume),
        };
        // Last: a band refusal keeps its run count (that is how a flexed
        // band is followed), so every other check must have passed.
        let mut band = self.band;
        let banded = band.check(ist.day, last, bid, ask);
        self.band = band;
        let reanchored = banded?;
        self.last_ts = Some(raw.ts_ns);
        self.last_volume = Some((ist.day, volume));
        let tick = Tick {
            token: self.token,
            ts_ns: raw.ts_ns,
            ist,
            last,
            last_qty,
            volume,
            volume_delta,
            bid,
            ask,
            oi,
        };
        Ok(Accepted {
            tick,
            rounded: r_last || r_bid || r_ask,
            reanchored,
        })
    }

    pub fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const T0: i64 = 1_767_240_000_000_000_000; // 2026-01-01 04:00 UTC = 09:30 IST

    fn raw(ts: i64, last: f64) -> RawTick {
        RawTick {
            token: 1,
            ts_ns: ts,
            last_price: last,
            last_qty: 10,
            volume: 1_000,
            bid: Some(last - 0.05),
            ask: Some(last + 0.05),
            oi: None,
        }
    }

    #[test]
    fn ist_clock_is_utc_plus_five_thirty() {
        let t = IstTime::from_utc_ns(T0);
        assert_eq!(t.tod_ns, (9 * 3600 + 30 * 60) * NS_PER_SEC);
        // 18:30 UTC is IST midnight of the next day.
        let midnight = IstTime::from_utc_ns(T0 + (14 * 3600 + 30 * 60) * NS_PER_SEC);
        assert_eq!((midnight.day, midnight.tod_ns), (t.day + 1, 0));
        let before = IstTime::from_utc_ns(-IST_OFFSET_NS - 1);
        assert_eq!((before.day, before.tod_ns), (-1, NS_PER_DAY - 1));
    }

    #[rstest]
    #[case::nan(f64::NAN, TickReject::NonFinitePrice)]
    #[case::inf(f64::INFINITY, TickReject::NonFinitePrice)]
    #[case::zero(0.0, TickReject::NonPositivePrice)]
    #[case::negative(-1.0, TickReject::NonPositivePrice)]
    #[case::rounds_to_zero(0.02, TickReject::NonPositivePrice)]
    #[case::absurd(1e300, TickReject::PriceOutOfRange)]
    fn bad_last_prices(#[case] last: f64, #[case] why: TickReject) {
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        let mut t = raw(T0, 100.0);
        t.last_price = last;
        t.bid = None;
        t.ask = None;
        assert_eq!(intake.accept(&t), Err(why));
        assert_eq!(intake.last_ts(), None, "a rejected tick changes nothing");
    }

    #[test]
    fn crossed_quote_negative_qty_and_bad_quotes() {
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        let mut t = raw(T0, 100.0);
        t.bid = Some(100.10);
        t.ask = Some(100.05);
        assert_eq!(intake.accept(&t), Err(TickReject::CrossedQuote));
        let mut t = raw(T0, 100.0);
        t.volume = -1;
        assert_eq!(intake.accept(&t), Err(TickReject::NegativeQuantity));
        let mut t = raw(T0, 100.0);
        t.ask = Some(f64::INFINITY);
        assert_eq!(intake.accept(&t), Err(TickReject::NonFinitePrice));
        let mut t = raw(T0, 100.0);
        t.bid = Some(-3.0);
        assert_eq!(intake.accept(&t), Err(TickReject::NonPositivePrice));
        // Empty depth (0.0) and NaN are an absent side, not an error.
        let mut t = raw(T0, 100.0);
        t.bid = Some(0.0);
        t.ask = Some(f64::NAN);
        let (tick, _) = intake.accept(&t).unwrap();
        assert_eq!((tick.bid, tick.ask), (None, None));
    }

    #[test]
    fn time_and_volume_must_not_go_back_within_a_day() {
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        intake.accept(&raw(T0, 100.0)).unwrap();
        assert_eq!(
            intake.accept(&raw(T0 - 1, 100.0)),
            Err(TickReject::OutOfOrder)
        );
        // Equal timestamps are normal (second-resolution exchange stamps).
        let mut same = raw(T0, 100.05);
        same.volume = 1_010;
        assert_eq!(intake.accept(&same).unwrap().0.volume_delta, 10);
        let mut down = raw(T0 + 1, 100.0);
        down.volume = 900;
        assert_eq!(intake.accept(&down), Err(TickReject::VolumeDecreased));
        // Next day the cumulative volume starts again.
        let mut next = raw(T0 + NS_PER_DAY, 100.0);
        next.volume = 50;
        next.last_qty = 7;
        assert_eq!(intake.accept(&next).unwrap().0.volume_delta, 7);
    }

    /// 08:30-16:00 IST, 120 s of skew.
    const RULES: TickRules = TickRules {
        earliest_tod_ns: (8 * 3600 + 30 * 60) * NS_PER_SEC,
        latest_tod_ns: 16 * 3600 * NS_PER_SEC,
        max_clock_skew_ns: 120 * NS_PER_SEC,
    };

    #[test]
    fn a_stamp_outside_the_session_day_or_clock_is_refused_and_never_last() {
        let day = IstTime::from_utc_ns(T0).day;
        let on_day = TimeFrame {
            day: Some(day),
            clock_ns: None,
        };
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        let hour = 3600 * NS_PER_SEC;
        for ts in [
            T0 - 2 * hour,                            // 07:30
            T0 + 6 * hour + 30 * 60 * NS_PER_SEC + 1, // just after 16:00
            T0 + 30 * NS_PER_DAY,                     // 30 days ahead, in session hours
            T0 - NS_PER_DAY,                          // yesterday
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(
                intake.accept_at(&raw(ts, 100.0), &RULES, on_day),
                Err(TickReject::TimeOutOfRange),
                "{ts}"
            );
            assert_eq!(intake.last_ts(), None);
        }
        // The bounds are inclusive: 08:30:00 and 16:00:00.
        let open = T0 - hour;
        assert!(intake.accept_at(&raw(open, 100.0), &RULES, on_day).is_ok());
        let close = T0 + 6 * hour + 30 * 60 * NS_PER_SEC;
        assert!(intake.accept_at(&raw(close, 100.0), &RULES, on_day).is_ok());
        // With a clock: at most 120 s either way.
        let live = TimeFrame {
            day: Some(day),
            clock_ns: Some(close),
        };
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        assert_eq!(
            intake.accept_at(&raw(close - 121 * NS_PER_SEC, 100.0), &RULES, live),
            Err(TickReject::TimeOutOfRange)
        );
        let ok = intake.accept_at(&raw(close - 120 * NS_PER_SEC, 100.0), &RULES, live);
        assert!(ok.is_ok());
        // No day yet and no clock: the session hours still apply.
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        let free = TimeFrame::default();
        assert_eq!(
            intake.accept_at(&raw(T0 - 2 * hour, 100.0), &RULES, free),
            Err(TickReject::TimeOutOfRange)
        );
        assert!(intake.accept_at(&raw(T0, 100.0), &RULES, free).is_ok());
    }

    #[test]
    fn a_band_refusal_leaves_time_and_volume_alone() {
        let band = PriceBand::new(20 * crate::config::PCT_SCALE, 0);
        let mut intake = TickIntake::with_band(1, Price::from_paise(5), band);
        let frame = TimeFrame::default();
        intake.accept_at(&raw(T0, 100.0), &RULES, frame).unwrap();
        let mut wild = raw(T0 + NS_PER_SEC, 100_000.0);
        wild.volume = 5_000;
        assert_eq!(
            intake.accept_at(&wild, &RULES, frame),
            Err(TickReject::PriceBand)
        );
        assert_eq!(intake.last_ts(), Some(T0));
        let mut next = raw(T0 + NS_PER_SEC, 100.5);
        next.volume = 1_100;
        let got = intake.accept_at(&next, &RULES, frame).unwrap();
        assert_eq!((got.tick.volume_delta, got.reanchored), (100, false));
    }

    #[test]
    fn off_grid_prices_are_rounded_and_flagged() {
        let mut intake = TickIntake::new(1, Price::from_paise(5));
        let mut t = raw(T0, 100.03);
        t.bid = Some(100.01);
        t.ask = Some(100.05);
        let (tick, rounded) = intake.accept(&t).unwrap();
        assert!(rounded);
        assert_eq!(tick.last, Price::from_paise(10_005));
        assert_eq!(tick.bid, Some(Price::from_paise(10_000)));
        let (_, rounded) = intake.accept(&raw(T0, 100.05)).unwrap();
        assert!(!rounded);
    }
}
