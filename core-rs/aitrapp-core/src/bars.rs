//! Time bars built from ticks the way Kite's historical candles are: a bar is
//! stamped with the start of its bucket, buckets are aligned to the session
//! open on the IST clock, OHLC come from last-traded prices and the volume is
//! what traded inside the bucket. A bucket without ticks has no bar. A bar
//! closes on the first tick of a later bucket or when the clock is advanced
//! past its end.

use crate::price::Price;
use crate::tick::IstTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Bucket start, UTC nanoseconds.
    pub start_ns: i64,
    /// Bucket end (exclusive), UTC nanoseconds.
    pub end_ns: i64,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    pub volume: u64,
    pub ticks: u32,
}

#[derive(Debug, Clone)]
pub struct BarBuilder {
    interval_ns: i64,
    /// IST time of day that bucket boundaries are aligned to (session open).
    anchor_tod_ns: i64,
    current: Option<Bar>,
}

impl BarBuilder {
    /// `interval_ns` must be positive (config validation guarantees it).
    pub fn new(interval_ns: i64, anchor_tod_ns: i64) -> BarBuilder {
        BarBuilder {
            interval_ns: interval_ns.max(1),
            anchor_tod_ns,
            current: None,
        }
    }

    fn bucket_start(&self, ts_ns: i64, ist: IstTime) -> i64 {
        let rel = ist.tod_ns - self.anchor_tod_ns;
        let start_tod = self.anchor_tod_ns + rel.div_euclid(self.interval_ns) * self.interval_ns;
        ts_ns - (ist.tod_ns - start_tod)
    }

    /// Adds a trade at `price` with `volume` units; returns the bar that this
    /// tick closed, if it opened a new bucket.
    pub fn on_tick(&mut self, ts_ns: i64, ist: IstTime, price: Price, volume: u64) -> Option<Bar> {
        if let Some(bar) = self.current.as_mut() {
            if ts_ns < bar.end_ns {
                bar.high = bar.high.max(price);
                bar.low = bar.low.min(price);
                bar.close = price;
                bar.volume += volume;
                bar.ticks += 1;
                return None;
            }
        }
        let start_ns = self.bucket_start(ts_ns, ist);
        let next = Bar {
            start_ns,
            end_ns: start_ns + self.interval_ns,
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
            ticks: 1,
        };
        self.current.replace(next)
    }

    /// Closes the open bar if `ts_ns` is at or past its end.
    pub fn advance(&mut self, ts_ns: i64) -> Option<Bar> {
        if self.current.is_some_and(|b| ts_ns >= b.end_ns) {
            self.current.take()
        } else {
            None
        }
    }

    /// The bar still being built.
    pub fn current(&self) -> Option<&Bar> {
        self.current.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::NS_PER_SEC;

    /// 2026-01-01 09:15:00 IST.
    const OPEN: i64 = 1_767_239_100_000_000_000;
    const ANCHOR: i64 = (9 * 3600 + 15 * 60) * NS_PER_SEC;

    fn feed(b: &mut BarBuilder, sec: f64, paise: i64, vol: u64) -> Option<Bar> {
        #[allow(clippy::cast_possible_truncation)]
        let ts = OPEN + (sec * 1e9) as i64;
        b.on_tick(ts, IstTime::from_utc_ns(ts), Price::from_paise(paise), vol)
    }

    #[test]
    fn minute_bars_match_a_hand_built_candle() {
        let mut b = BarBuilder::new(60 * NS_PER_SEC, ANCHOR);
        assert_eq!(IstTime::from_utc_ns(OPEN).tod_ns, ANCHOR);
        assert!(feed(&mut b, 0.5, 100, 5).is_none());
        assert!(feed(&mut b, 10.0, 120, 1).is_none());
        assert!(feed(&mut b, 20.0, 90, 2).is_none());
        assert!(feed(&mut b, 59.999, 110, 3).is_none());
        let bar = feed(&mut b, 60.0, 111, 4).unwrap();
        assert_eq!(bar.start_ns, OPEN);
        assert_eq!(bar.end_ns, OPEN + 60 * NS_PER_SEC);
        let ohlc = (bar.open, bar.high, bar.low, bar.close);
        let p = Price::from_paise;
        assert_eq!(ohlc, (p(100), p(120), p(90), p(110)));
        assert_eq!((bar.volume, bar.ticks), (11, 4));
        // A gap of several minutes: the next bar starts at its own bucket.
        let bar = feed(&mut b, 200.0, 112, 1).unwrap();
        assert_eq!(
            (bar.start_ns, bar.open, bar.volume),
            (OPEN + 60 * NS_PER_SEC, p(111), 4)
        );
        assert_eq!(b.current().unwrap().start_ns, OPEN + 180 * NS_PER_SEC);
    }

    #[test]
    fn buckets_align_to_the_session_open_not_to_the_first_tick() {
        // 5-minute bars: a first tick at 09:17:30 belongs to 09:15-09:20.
        let mut b = BarBuilder::new(300 * NS_PER_SEC, ANCHOR);
        feed(&mut b, 150.0, 100, 1);
        assert_eq!(b.current().unwrap().start_ns, OPEN);
        // Pre-open ticks (09:08) land in buckets aligned backwards from 09:15.
        let mut b = BarBuilder::new(300 * NS_PER_SEC, ANCHOR);
        feed(&mut b, -420.0, 100, 1);
        assert_eq!(b.current().unwrap().start_ns, OPEN - 600 * NS_PER_SEC);
    }

    #[test]
    fn advance_closes_only_a_finished_bar() {
        let mut b = BarBuilder::new(60 * NS_PER_SEC, ANCHOR);
        feed(&mut b, 1.0, 100, 1);
        assert!(b.advance(OPEN + 59 * NS_PER_SEC).is_none());
        let bar = b.advance(OPEN + 60 * NS_PER_SEC).unwrap();
        assert_eq!(bar.close, Price::from_paise(100));
        assert!(b.current().is_none());
        assert!(b.advance(OPEN + 600 * NS_PER_SEC).is_none());
    }
}
