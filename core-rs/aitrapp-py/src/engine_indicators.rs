//! The engine's incremental indicators, for tests against reference
//! implementations and for research notebooks. Values are in the unit fed in
//! (rupees from Python), except `SessionVwap`, which takes rupees and keeps
//! exact integer paise sums.

use crate::errors::CoreErr;
use aitrapp_core::config::parse_clock;
use aitrapp_core::indicators::{Ema, OpeningRange, RollingHighLow, SessionVwap, WilderAtr};
use aitrapp_core::tick::{IstTime, NS_PER_SEC};
use aitrapp_core::Price;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn check_period(p: u32) -> PyResult<u32> {
    if p == 0 {
        Err(PyValueError::new_err("period must be at least 1"))
    } else {
        Ok(p)
    }
}

fn paise(rupees: f64) -> PyResult<i64> {
    Ok(Price::from_rupees_f64(rupees)
        .map_err(CoreErr::from)?
        .paise())
}

/// EMA with alpha 2/(period+1), seeded with the mean of the first `period` values.
#[pyclass(name = "Ema", module = "aitrapp._core")]
pub struct PyEma(Ema);

#[pymethods]
impl PyEma {
    #[new]
    fn new(period: u32) -> PyResult<Self> {
        Ok(PyEma(Ema::new(check_period(period)?)))
    }
    /// Adds a value; the EMA once `period` values have been seen, else None.
    fn update(&mut self, x: f64) -> Option<f64> {
        self.0.update(x)
    }
    #[getter]
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}

/// Wilder's ATR over bars (high, low, close).
#[pyclass(name = "WilderAtr", module = "aitrapp._core")]
pub struct PyWilderAtr(WilderAtr);

#[pymethods]
impl PyWilderAtr {
    #[new]
    fn new(period: u32) -> PyResult<Self> {
        Ok(PyWilderAtr(WilderAtr::new(check_period(period)?)))
    }
    fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        self.0.update(high, low, close)
    }
    #[getter]
    fn value(&self) -> Option<f64> {
        self.0.value()
    }
}

/// Session VWAP: sum(price x qty) / sum(qty), exact in paise.
#[pyclass(name = "SessionVwap", module = "aitrapp._core")]
pub struct PySessionVwap(SessionVwap);

#[pymethods]
impl PySessionVwap {
    #[new]
    fn new() -> Self {
        PySessionVwap(SessionVwap::new())
    }
    /// Adds `qty` units traded at `price` rupees; returns the VWAP in rupees.
    fn update(&mut self, price: f64, qty: u64) -> PyResult<Option<f64>> {
        self.0.update(paise(price)?, qty);
        Ok(self.0.value().map(|p| p / 100.0))
    }
    #[getter]
    fn value(&self) -> Option<f64> {
        self.0.value().map(|p| p / 100.0)
    }
    /// Volume-weighted standard deviation of the prices around the VWAP, rupees.
    #[getter]
    fn stdev(&self) -> Option<f64> {
        self.0.stdev().map(|p| p / 100.0)
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

/// High/low of the prices in [market_open, market_open + window) IST.
#[pyclass(name = "OpeningRange", module = "aitrapp._core")]
pub struct PyOpeningRange(OpeningRange);

#[pymethods]
impl PyOpeningRange {
    #[new]
    #[pyo3(signature = (market_open="09:15", window_minutes=15))]
    fn new(market_open: &str, window_minutes: u32) -> PyResult<Self> {
        let open = parse_clock("market_open", market_open).map_err(CoreErr::from)?;
        if window_minutes == 0 {
            return Err(PyValueError::new_err("window_minutes must be at least 1"));
        }
        Ok(PyOpeningRange(OpeningRange::new(
            open,
            i64::from(window_minutes) * 60 * NS_PER_SEC,
        )))
    }
    /// A price (rupees) seen at exchange time `ts_ns` (UTC ns).
    fn update(&mut self, ts_ns: i64, price: f64) -> PyResult<()> {
        self.0
            .update(IstTime::from_utc_ns(ts_ns).tod_ns, paise(price)?);
        Ok(())
    }
    /// (low, high) in rupees, or None if nothing traded in the window.
    #[getter]
    fn range(&self) -> Option<(f64, f64)> {
        self.0.range().map(|(lo, hi)| {
            (
                Price::from_paise(lo).to_rupees_f64(),
                Price::from_paise(hi).to_rupees_f64(),
            )
        })
    }
    fn is_complete(&self, ts_ns: i64) -> bool {
        self.0.is_complete(IstTime::from_utc_ns(ts_ns).tod_ns)
    }
}

/// Highest high and lowest low of the last `period` updates.
#[pyclass(name = "RollingHighLow", module = "aitrapp._core")]
pub struct PyRollingHighLow(RollingHighLow);

#[pymethods]
impl PyRollingHighLow {
    #[new]
    fn new(period: u32) -> PyResult<Self> {
        Ok(PyRollingHighLow(RollingHighLow::new(check_period(period)?)))
    }
    fn update(&mut self, high: f64, low: f64) -> (f64, f64) {
        self.0.update(high, low)
    }
    #[getter]
    fn value(&self) -> Option<(f64, f64)> {
        self.0.value()
    }
    #[getter]
    fn is_full(&self) -> bool {
        self.0.is_full()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEma>()?;
    m.add_class::<PyWilderAtr>()?;
    m.add_class::<PySessionVwap>()?;
    m.add_class::<PyOpeningRange>()?;
    m.add_class::<PyRollingHighLow>()?;
    Ok(())
}
