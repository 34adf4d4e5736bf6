//! VWAP reversion: price stretched `stretch` band widths away from the
//! session VWAP is faded, with the VWAP as the target and a stop `stop`
//! band widths beyond the entry. A side fires once per stretch: it re-arms
//! when price is back within `rearm` band widths of VWAP.
//!
//! The band width is, by default, the session's volume-weighted standard
//! deviation of price around VWAP: the "VWAP bands" of practice (1, 2 and 3
//! sigma; a fade at 2, a stop at 3, VWAP the target, about 2:1). It widens
//! through the day as the session's range grows, so stops do too; the first
//! `warmup_minutes` after the open are skipped while sigma is a few ticks.
//! With `band = "atr"` the width is the ATR of the bars instead (a Keltner-
//! style envelope around VWAP).

use super::{away_from_entry, signal, MarketView, Signal, Strategy};
use crate::bars::Bar;
use crate::config::{SessionTimes, VwapBand, VwapReversionConfig};
use crate::indicators::WilderAtr;
use crate::side::Side;
use crate::tick::NS_PER_SEC;

#[derive(Debug, Clone)]
pub struct VwapReversion {
    band: VwapBand,
    stretch: f64,
    stop: f64,
    rearm: f64,
    /// IST time of day before which no entry is taken.
    first_entry_tod_ns: i64,
    atr: WilderAtr,
    long_armed: bool,
    short_armed: bool,
}

impl VwapReversion {
    pub const NAME: &'static str = "VWAPReversion";

    pub fn new(cfg: &VwapReversionConfig, band: VwapBand, times: &SessionTimes) -> VwapReversion {
        VwapReversion {
            band,
            stretch: cfg.stretch,
            stop: cfg.stop,
            rearm: cfg.rearm,
            first_entry_tod_ns: times.market_open_ns
                + i64::from(cfg.warmup_minutes) * 60 * NS_PER_SEC,
            atr: WilderAtr::new(cfg.atr_period),
            long_armed: true,
            short_armed: true,
        }
    }

    fn unit(&self, view: &MarketView<'_>) -> Option<f64> {
        match self.band {
            VwapBand::Stdev => view.vwap_sd_paise,
            VwapBand::Atr => self.atr.value(),
        }
        .filter(|u| *u > 0.0)
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
        let unit = self.unit(view)?;
        let p = view.tick.last.paise() as f64;
        let dev = p - vwap;
        if dev.abs() <= self.rearm * unit {
            self.long_armed = true;
            self.short_armed = true;
            return None;
        }
        if view.tick.ist.tod_ns < self.first_entry_tod_ns {
            return None;
        }
        let side = if dev >= self.stretch * unit && self.short_armed {
            Side::Sell
        } else if -dev >= self.stretch * unit && self.long_armed {
            Side::Buy
        } else {
            return None;
        };
        let entry = view.tick.last;
        let stop = away_from_entry(
            p - side.sign() as f64 * self.stop * unit,
            entry,
            view.tick_size,
        )?;
        let tp = away_from_entry(vwap, entry, view.tick_size)?;
        let label = match self.band {
            VwapBand::Stdev => "SD",
            VwapBand::Atr => "ATR",
        };
        let reason = format!(
            "{:.2} {label} {} VWAP {:.2} ({label} {:.2})",
            dev.abs() / unit,
            if side == Side::Sell { "above" } else { "below" },
            vwap / 100.0,
            unit / 100.0
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
    use crate::config::EngineConfig;
    use crate::strategies::testkit::tick;
    use crate::Price;

    fn strategy(band: VwapBand, atr_period: u32) -> VwapReversion {
        let times = EngineConfig::default().session_times().unwrap();
        let cfg = VwapReversionConfig {
            atr_period,
            ..Default::default()
        };
        VwapReversion::new(&cfg, band, &times)
    }

    fn run_at(s: &mut VwapReversion, sec: i64, paise: i64, vwap: f64, sd: f64) -> Option<Signal> {
        let t = tick(sec, paise);
        s.on_tick(&MarketView {
            tick: &t,
            tick_size: Price::from_paise(5),
            vwap_paise: Some(vwap),
            vwap_sd_paise: Some(sd),
        })
    }

    fn run(s: &mut VwapReversion, paise: i64, vwap: f64) -> Option<Signal> {
        run_at(s, 3_600, paise, vwap, 0.0)
    }

    #[test]
    fn fades_an_atr_stretch_and_targets_vwap() {
        let mut s = strategy(VwapBand::Atr, 2);
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

    #[test]
    fn fades_the_two_sigma_band_with_a_stop_at_three_after_the_warmup() {
        let mut s = strategy(VwapBand::Stdev, 14);
        let p = Price::from_paise;
        // VWAP 1,000.00, sigma 3.00: the 2-sigma band is 1,006.00.
        let (vwap, sd) = (100_000.0, 300.0);
        // 09:44: stretched, but inside the 30-minute warm-up.
        assert!(run_at(&mut s, 29 * 60, 100_650, vwap, sd).is_none());
        assert!(
            run_at(&mut s, 30 * 60, 100_595, vwap, sd).is_none(),
            "1.98 SD"
        );
        let sig = run_at(&mut s, 30 * 60, 100_600, vwap, sd).unwrap();
        assert_eq!(
            (sig.side, sig.entry, sig.stop, sig.tp),
            (Side::Sell, p(100_600), p(100_900), p(100_000))
        );
        assert!(
            sig.reason.starts_with("2.00 SD above VWAP 1000.00"),
            "{}",
            sig.reason
        );
        // No dispersion yet (one price traded): no band, no signal.
        assert!(run_at(&mut s, 31 * 60, 90_000, vwap, 0.0).is_none());
        let sig = run_at(&mut s, 31 * 60, 99_400, vwap, sd).unwrap();
        assert_eq!((sig.side, sig.stop), (Side::Buy, p(99_100)));
    }
}
