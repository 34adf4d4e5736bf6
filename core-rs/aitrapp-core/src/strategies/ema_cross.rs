//! EMA cross, the reference strategy: fast and slow EMAs of the mid price
//! (last price when a side of the quote is missing), updated on every tick.
//! When the fast EMA crosses the slow one, enter in the direction of the
//! cross at the touch (ask to buy, bid to sell), with the stop and the
//! take-profit a fixed number of ticks away.

use super::{signal, MarketView, Signal, Strategy};
use crate::bars::Bar;
use crate::config::EmaCrossConfig;
use crate::indicators::Ema;
use crate::price::Price;
use crate::side::Side;

#[derive(Debug, Clone)]
pub struct EmaCross {
    fast: Ema,
    slow: Ema,
    stop_ticks: i64,
    tp_ticks: i64,
    /// Sign of fast - slow at the last tick where they differed.
    last_sign: i8,
}

impl EmaCross {
    pub const NAME: &'static str = "EmaCross";

    pub fn new(cfg: &EmaCrossConfig) -> EmaCross {
        EmaCross {
            fast: Ema::new(cfg.fast_period),
            slow: Ema::new(cfg.slow_period),
            stop_ticks: i64::from(cfg.stop_ticks),
            tp_ticks: i64::from(cfg.tp_ticks),
            last_sign: 0,
        }
    }
}

impl Strategy for EmaCross {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn on_session_start(&mut self) {}

    fn on_bar(&mut self, _bar: &Bar) {}

    fn on_tick(&mut self, view: &MarketView<'_>) -> Option<Signal> {
        let mid = view.tick.mid_paise();
        let fast = self.fast.update(mid);
        let slow = self.slow.update(mid);
        let (fast, slow) = (fast?, slow?);
        let sign: i8 = if fast > slow {
            1
        } else if fast < slow {
            -1
        } else {
            return None;
        };
        let crossed = self.last_sign != 0 && sign != self.last_sign;
        self.last_sign = sign;
        if !crossed {
            return None;
        }
        let t = view.tick;
        let (side, entry) = if sign > 0 {
            (Side::Buy, t.ask.unwrap_or(t.last))
        } else {
            (Side::Sell, t.bid.unwrap_or(t.last))
        };
        let step = |n: i64| Price::from_paise(side.sign() * n * view.tick_size.paise());
        let stop = entry.checked_sub(step(self.stop_ticks))?;
        let tp = entry.checked_add(step(self.tp_ticks))?;
        let reason = format!(
            "EMA{} crossed {} EMA{} on the mid ({:.2} vs {:.2})",
            self.fast.period(),
            if sign > 0 { "above" } else { "below" },
            self.slow.period(),
            fast / 100.0,
            slow / 100.0
        );
        signal(view, side, entry, stop, tp, Self::NAME, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testkit::tick;

    #[test]
    fn enters_on_each_cross_at_the_touch() {
        let mut s = EmaCross::new(&EmaCrossConfig {
            fast_period: 2,
            slow_period: 4,
            ..Default::default()
        });
        let p = Price::from_paise;
        let mut fired = Vec::new();
        // Falls, then rises, then falls again.
        let path = [
            10_000, 9_990, 9_980, 9_970, 9_960, 9_980, 10_010, 10_040, 10_000, 9_950, 9_900,
        ];
        for (i, &px) in path.iter().enumerate() {
            let mut t = tick(i64::try_from(i).unwrap(), px);
            t.bid = Some(p(px - 5));
            t.ask = Some(p(px + 5));
            let v = MarketView {
                tick: &t,
                tick_size: p(5),
                vwap_paise: None,
                vwap_sd_paise: None,
            };
            if let Some(sig) = s.on_tick(&v) {
                fired.push((i, sig));
            }
        }
        let sides: Vec<_> = fired.iter().map(|(i, s)| (*i, s.side)).collect();
        assert_eq!(sides, [(6, Side::Buy), (9, Side::Sell)]);
        let buy = &fired[0].1;
        assert_eq!(
            (buy.entry, buy.stop, buy.tp),
            (p(10_015), p(9_965), p(10_065))
        );
        let sell = &fired[1].1;
        assert_eq!(
            (sell.entry, sell.stop, sell.tp),
            (p(9_945), p(9_995), p(9_895))
        );
    }
}
