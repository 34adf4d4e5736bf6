//! Opening range breakout: after the first `window_minutes` of the session,
//! `confirm_ticks` consecutive ticks beyond the range open a trade in the
//! breakout's direction, once per direction per day. Stop at the far side of
//! the range (or `atr_stop_mult` x ATR from entry), take-profit at
//! `rr_min` x risk.

use super::{rr_signal, MarketView, Signal, Strategy};
use crate::bars::Bar;
use crate::config::{OrbConfig, OrbStopMode, SessionTimes};
use crate::indicators::{OpeningRange, WilderAtr};
use crate::side::Side;
use crate::tick::NS_PER_SEC;

#[derive(Debug, Clone)]
pub struct Orb {
    confirm_ticks: u32,
    stop_mode: OrbStopMode,
    atr_stop_mult: f64,
    rr_min: f64,
    range: OpeningRange,
    atr: WilderAtr,
    above: u32,
    below: u32,
    fired_long: bool,
    fired_short: bool,
}

impl Orb {
    pub const NAME: &'static str = "ORB";

    pub fn new(cfg: &OrbConfig, stop_mode: OrbStopMode, times: &SessionTimes) -> Orb {
        let window_ns = i64::from(cfg.window_minutes) * 60 * NS_PER_SEC;
        Orb {
            confirm_ticks: cfg.confirm_ticks,
            stop_mode,
            atr_stop_mult: cfg.atr_stop_mult,
            rr_min: cfg.rr_min,
            range: OpeningRange::new(times.market_open_ns, window_ns),
            atr: WilderAtr::new(cfg.atr_period),
            above: 0,
            below: 0,
            fired_long: false,
            fired_short: false,
        }
    }
}

impl Strategy for Orb {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn on_session_start(&mut self) {
        self.range.reset();
        self.above = 0;
        self.below = 0;
        self.fired_long = false;
        self.fired_short = false;
    }

    fn on_bar(&mut self, bar: &Bar) {
        self.atr.update(
            bar.high.paise() as f64,
            bar.low.paise() as f64,
            bar.close.paise() as f64,
        );
    }

    fn on_tick(&mut self, view: &MarketView<'_>) -> Option<Signal> {
        let tod = view.tick.ist.tod_ns;
        let price = view.tick.last;
        if self.range.in_window(tod) {
            self.range.update(tod, price.paise());
            return None;
        }
        if !self.range.is_complete(tod) {
            return None; // pre-open
        }
        let (lo, hi) = self.range.range()?;
        let p = price.paise();
        let side = if p > hi {
            self.above += 1;
            self.below = 0;
            Side::Buy
        } else if p < lo {
            self.below += 1;
            self.above = 0;
            Side::Sell
        } else {
            self.above = 0;
            self.below = 0;
            return None;
        };
        let (count, fired) = match side {
            Side::Buy => (self.above, self.fired_long),
            Side::Sell => (self.below, self.fired_short),
        };
        if fired || count < self.confirm_ticks {
            return None;
        }
        let stop_level = match self.stop_mode {
            OrbStopMode::Range => match side {
                Side::Buy => lo as f64,
                Side::Sell => hi as f64,
            },
            OrbStopMode::Atr => {
                p as f64 - side.sign() as f64 * self.atr_stop_mult * self.atr.value()?
            }
        };
        let reason = format!(
            "{} opening range {}-{} confirmed by {count} ticks",
            if side == Side::Buy {
                "breakout above"
            } else {
                "breakdown below"
            },
            crate::Price::from_paise(lo),
            crate::Price::from_paise(hi),
        );
        let sig = rr_signal(
            view,
            side,
            price,
            stop_level,
            self.rr_min,
            Self::NAME,
            reason,
        )?;
        match side {
            Side::Buy => self.fired_long = true,
            Side::Sell => self.fired_short = true,
        }
        Some(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EngineConfig, OrbConfig};
    use crate::strategies::testkit::tick;
    use crate::Price;

    fn orb() -> Orb {
        let cfg = EngineConfig::default();
        Orb::new(
            &OrbConfig::default(),
            OrbStopMode::Range,
            &cfg.session_times().unwrap(),
        )
    }

    fn run(o: &mut Orb, sec: i64, paise: i64) -> Option<Signal> {
        let t = tick(sec, paise);
        o.on_tick(&MarketView {
            tick: &t,
            tick_size: Price::from_paise(5),
            vwap_paise: None,
            vwap_sd_paise: None,
        })
    }

    #[test]
    fn breakout_needs_three_consecutive_ticks_beyond_the_range() {
        let mut o = orb();
        assert!(run(&mut o, -60, 99_000).is_none()); // pre-open: not in the range
        for (s, p) in [(0, 10_000), (300, 10_100), (600, 9_950), (899, 10_020)] {
            assert!(run(&mut o, s, p).is_none());
        }
        // Window over at 09:30: range 99.50-101.00.
        assert!(run(&mut o, 900, 10_105).is_none());
        assert!(run(&mut o, 901, 10_110).is_none());
        assert!(run(&mut o, 902, 10_050).is_none()); // back inside: count resets
        assert!(run(&mut o, 903, 10_105).is_none());
        assert!(run(&mut o, 904, 10_110).is_none());
        let s = run(&mut o, 905, 10_120).unwrap();
        assert_eq!(
            (s.side, s.entry, s.stop),
            (
                Side::Buy,
                Price::from_paise(10_120),
                Price::from_paise(9_950)
            )
        );
        // risk 1.70 x 1.8 = 3.06 -> 104.26, on the 0.05 grid rounded up to 104.30
        assert_eq!(s.tp, Price::from_paise(10_430));
        assert_eq!(s.strategy, "ORB");
        // Once per direction per day.
        for k in 0..5 {
            assert!(run(&mut o, 906 + k, 10_200).is_none());
        }
        for k in 0..2 {
            assert!(run(&mut o, 1000 + k, 9_900).is_none());
        }
        let s = run(&mut o, 1002, 9_900).unwrap();
        assert_eq!((s.side, s.stop), (Side::Sell, Price::from_paise(10_100)));
        o.on_session_start();
        assert!(run(&mut o, 2000, 20_000).is_none(), "new day: no range yet");
    }
}
