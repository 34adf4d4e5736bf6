//! VWAP reversion: price stretched `stretch_atr` x ATR away from the session
//! VWAP is faded, with the VWAP as the target and a stop `stop_atr` x ATR
//! beyond the entry. A side fires once per stretch: it re-arms when price is
//! back within `rearm_atr` x ATR of VWAP.

use super::{away_from_entry, signal, MarketView, Signal, Strategy};
use crate::bars::Bar;
use crate::config::VwapReversionConfig;
use crate::indicators::WilderAtr;
use crate::side::Side;

#[derive(Debug, Clone)]
pub struct VwapReversion {
    stretch_atr: f64,
    stop_atr: f64,
    rearm_atr: f64,
    atr: WilderAtr,
    long_armed: bool,
    short_armed: bool,
}

impl VwapReversion {
    pub const NAME: &'static str = "VWAPReversion";

    pub fn new(cfg: &VwapReversionConfig) -> VwapReversion {
        VwapReversion {
            stretch_atr: cfg.stretch_atr,
            stop_atr: cfg.stop_atr,
            rearm_atr: cfg.rearm_atr,
            atr: WilderAtr::new(cfg.atr_period),
            long_armed: true,
            short_armed: true,
        }
    }
}

impl Strategy for VwapReversion {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn on_session_start(&mut self) {
        self.long_armed = true;
        self.short_armed = true;
    }

    fn on_bar(&mut self, bar: &Bar) {
        self.atr.update(
            bar.high.paise() as f64,
            bar.low.paise() as f64,
            bar.close.paise() as f64,
        );
    }

    fn on_tick(&mut self, view: &MarketView<'_>) -> Option<Signal> {
        let vwap = view.vwap_paise?;
        let atr = self.atr.value().filter(|a| *a > 0.0)?;
        let p = view.tick.last.paise() as f64;
        let dev = p - vwap;
        if dev.abs() <= self.rearm_atr * atr {
            self.long_armed = true;
            self.short_armed = true;
            return None;
        }
        let side = if dev >= self.stretch_atr * atr && self.short_armed {
            Side::Sell
        } else if -dev >= self.stretch_atr * atr && self.long_armed {
            Side::Buy
        } else {
            return None;
        };
        let entry = view.tick.last;
        let stop = away_from_entry(
            p - side.sign() as f64 * self.stop_atr * atr,
            entry,
            view.tick_size,
        )?;
        let tp = away_from_entry(vwap, entry, view.tick_size)?;
        let reason = format!(
            "{:.2} ATR {} VWAP {:.2} (ATR {:.2})",
            dev.abs() / atr,
            if side == Side::Sell { "above" } else { "below" },
            vwap / 100.0,
            atr / 100.0
        );
        let sig = signal(view, side, entry, stop, tp, Self::NAME, reason)?;
        match side {
            Side::Buy => self.long_armed = false,
            Side::Sell => self.short_armed = false,
        }
        Some(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testkit::tick;
    use crate::Price;

    fn run(s: &mut VwapReversion, paise: i64, vwap: f64) -> Option<Signal> {
        let t = tick(3_600, paise);
        s.on_tick(&MarketView {
            tick: &t,
            tick_size: Price::from_paise(5),
            vwap_paise: Some(vwap),
        })
    }

    #[test]
    fn fades_a_stretch_and_targets_vwap() {
        let mut s = VwapReversion::new(&VwapReversionConfig {
            atr_period: 2,
            ..Default::default()
        });
        let p = Price::from_paise;
        let b = Bar {
            start_ns: 0,
            end_ns: 1,
            open: p(10_000),
            high: p(10_050),
            low: p(9_950),
            close: p(10_000),
            volume: 1,
            ticks: 1,
        };
        assert!(run(&mut s, 10_500, 10_000.0).is_none(), "ATR not ready");
        s.on_bar(&b);
        s.on_bar(&b); // ATR = 1.00
        assert!(
            run(&mut s, 10_195, 10_000.0).is_none(),
            "1.95 ATR is not enough"
        );
        let sig = run(&mut s, 10_200, 10_000.0).unwrap();
        assert_eq!(
            (sig.side, sig.entry, sig.stop, sig.tp),
            (Side::Sell, p(10_200), p(10_300), p(10_000))
        );
        assert!(
            run(&mut s, 10_250, 10_000.0).is_none(),
            "fires once per stretch"
        );
        assert!(run(&mut s, 10_090, 10_000.0).is_none()); // back within 1 ATR: re-armed
        assert_eq!(
            run(&mut s, 10_210, 10_000.0).map(|x| x.side),
            Some(Side::Sell)
        );
        let sig = run(&mut s, 9_790, 10_003.0).unwrap();
        assert_eq!(
            (sig.side, sig.stop, sig.tp),
            (Side::Buy, p(9_690), p(10_005))
        );
    }
}
