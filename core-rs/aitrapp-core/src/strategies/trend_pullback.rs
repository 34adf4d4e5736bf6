//! Trend pullback: the trend is EMA(fast) vs EMA(slow) on closed bars. In an
//! uptrend whose recent swing high stands above the fast EMA, a pullback of
//! `pullback_atr` x ATR from that high (price still above the slow EMA) is
//! bought; stop `stop_atr` x ATR below, take-profit at `rr` x risk. A side
//! re-arms only after price makes a new swing extreme beyond the one it
//! fired from. Mirror image for downtrends.
//!
//! EMAs and ATR run across days (they need 89 bars to warm up); the swing
//! re-arm state is per session.

use super::{rr_signal, MarketView, Signal, Strategy};
use crate::bars::Bar;
use crate::config::TrendPullbackConfig;
use crate::indicators::{Ema, RollingHighLow, WilderAtr};
use crate::side::Side;

#[derive(Debug, Clone)]
pub struct TrendPullback {
    pullback_atr: f64,
    stop_atr: f64,
    rr: f64,
    fast: Ema,
    slow: Ema,
    atr: WilderAtr,
    swing: RollingHighLow,
    /// High and low of the ticks since the last closed bar.
    open_bar: Option<(f64, f64)>,
    /// After a long signal: the swing high that must be exceeded to re-arm.
    long_rearm_above: Option<f64>,
    short_rearm_below: Option<f64>,
}

impl TrendPullback {
    pub const NAME: &'static str = "TrendPullback";

    pub fn new(cfg: &TrendPullbackConfig) -> TrendPullback {
        TrendPullback {
            pullback_atr: cfg.pullback_atr,
            stop_atr: cfg.stop_atr,
            rr: cfg.rr,
            fast: Ema::new(cfg.fast_period),
            slow: Ema::new(cfg.slow_period),
            atr: WilderAtr::new(cfg.atr_period),
            swing: RollingHighLow::new(cfg.swing_bars),
            open_bar: None,
            long_rearm_above: None,
            short_rearm_below: None,
        }
    }
}

impl Strategy for TrendPullback {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn on_session_start(&mut self) {
        self.open_bar = None;
        self.long_rearm_above = None;
        self.short_rearm_below = None;
    }

    fn on_bar(&mut self, bar: &Bar) {
        let (h, l, c) = (
            bar.high.paise() as f64,
            bar.low.paise() as f64,
            bar.close.paise() as f64,
        );
        self.fast.update(c);
        self.slow.update(c);
        self.atr.update(h, l, c);
        self.swing.update(h, l);
        self.open_bar = None;
    }

    fn on_tick(&mut self, view: &MarketView<'_>) -> Option<Signal> {
        let p = view.tick.last.paise() as f64;
        let (bh, bl) = match self.open_bar {
            Some((h, l)) => (h.max(p), l.min(p)),
            None => (p, p),
        };
        self.open_bar = Some((bh, bl));
        if self.long_rearm_above.is_some_and(|lvl| p > lvl) {
            self.long_rearm_above = None;
        }
        if self.short_rearm_below.is_some_and(|lvl| p < lvl) {
            self.short_rearm_below = None;
        }
        let (fast, slow, atr) = (self.fast.value()?, self.slow.value()?, self.atr.value()?);
        let (sh, sl) = self.swing.value()?;
        let (swing_high, swing_low) = (sh.max(bh), sl.min(bl));
        let pull = self.pullback_atr * atr;
        let side = if fast > slow
            && self.long_rearm_above.is_none()
            && swing_high > fast
            && p <= swing_high - pull
            && p > slow
        {
            Side::Buy
        } else if fast < slow
            && self.short_rearm_below.is_none()
            && swing_low < fast
            && p >= swing_low + pull
            && p < slow
        {
            Side::Sell
        } else {
            return None;
        };
        let stop_level = p - side.sign() as f64 * self.stop_atr * atr;
        let reason = format!(
            "{} trend (EMA{} {:.2} vs EMA{} {:.2}): pullback {:.2} from swing {:.2} >= {} ATR",
            if side == Side::Buy { "up" } else { "down" },
            self.fast.period(),
            fast / 100.0,
            self.slow.period(),
            slow / 100.0,
            (p - if side == Side::Buy {
                swing_high
            } else {
                swing_low
            })
            .abs()
                / 100.0,
            if side == Side::Buy {
                swing_high
            } else {
                swing_low
            } / 100.0,
            self.pullback_atr,
        );
        let sig = rr_signal(
            view,
            side,
            view.tick.last,
            stop_level,
            self.rr,
            Self::NAME,
            reason,
        )?;
        match side {
            Side::Buy => self.long_rearm_above = Some(swing_high),
            Side::Sell => self.short_rearm_below = Some(swing_low),
        }
        Some(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testkit::tick;
    use crate::Price;

    fn bar(paise: i64, range: i64) -> Bar {
        let p = Price::from_paise;
        Bar {
            start_ns: 0,
            end_ns: 1,
            open: p(paise),
            high: p(paise + range),
            low: p(paise - range),
            close: p(paise),
            volume: 1,
            ticks: 1,
        }
    }

    fn run(s: &mut TrendPullback, paise: i64) -> Option<Signal> {
        let t = tick(3_600, paise);
        s.on_tick(&MarketView {
            tick: &t,
            tick_size: Price::from_paise(5),
            vwap_paise: None,
            vwap_sd_paise: None,
        })
    }

    fn small() -> TrendPullback {
        let cfg = TrendPullbackConfig {
            fast_period: 3,
            slow_period: 6,
            atr_period: 3,
            swing_bars: 3,
            stop_atr: 2.0,
            ..Default::default()
        };
        TrendPullback::new(&cfg)
    }

    #[test]
    fn buys_a_pullback_in_an_uptrend_once_per_swing() {
        let mut s = small();
        // Closes rise 0.40 a bar, each bar +-0.20: true range 0.60, Wilder ATR(3) -> ~0.596.
        for k in 0..10 {
            assert!(
                run(&mut s, 10_000 + 40 * k).is_none(),
                "no pullback while rising"
            );
            s.on_bar(&bar(10_000 + 40 * k, 20));
        }
        // Last bar: close 103.60, high 103.80. EMA3 ~103.20 > EMA6 ~102.60.
        let (fast, slow, atr) = (
            s.fast.value().unwrap(),
            s.slow.value().unwrap(),
            s.atr.value().unwrap(),
        );
        assert!(
            (fast - 10_320.0).abs() < 1.0 && (slow - 10_260.0).abs() < 1.0,
            "{fast} {slow}"
        );
        assert!((atr - 59.61).abs() < 0.01, "{atr}");
        assert!(run(&mut s, 10_355).is_none(), "0.25 off the high < 0.5 ATR");
        let sig = run(&mut s, 10_350).expect("pullback of 0.30 >= 0.5 x 0.596");
        assert_eq!(sig.side, Side::Buy);
        assert_eq!(sig.entry, Price::from_paise(10_350));
        assert_eq!(sig.stop, Price::from_paise(10_230)); // 103.50 - 2 x 0.596 = 102.31 -> down to 102.30
        assert_eq!(sig.tp, Price::from_paise(10_590)); // 2R on a 1.20 risk
        assert!(
            run(&mut s, 10_340).is_none(),
            "no second entry before a new high"
        );
        assert!(run(&mut s, 10_385).is_none(), "a new high re-arms");
        assert_eq!(run(&mut s, 10_355).map(|x| x.side), Some(Side::Buy));
    }

    #[test]
    fn no_entry_below_the_slow_ema_or_without_trend() {
        let mut s = small();
        for _ in 0..10 {
            s.on_bar(&bar(10_000, 20));
        }
        // Flat: fast == slow, no trend.
        assert!(run(&mut s, 9_950).is_none());
        let mut s = small();
        for k in 0..10 {
            s.on_bar(&bar(10_000 + 40 * k, 20));
        }
        assert!(
            run(&mut s, 10_000).is_none(),
            "collapsed below the slow EMA"
        );
    }
}
