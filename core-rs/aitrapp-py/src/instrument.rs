//! `Instrument` for Python: built with keywords, validated on construction.

use crate::errors::CoreErr;
use crate::price::price_from_py;
use aitrapp_core::{Instrument, Segment};
use pyo3::prelude::*;

#[pyclass(name = "Instrument", module = "aitrapp._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyInstrument(pub Instrument);

#[pymethods]
impl PyInstrument {
    #[new]
    #[pyo3(signature = (*, exchange, tradingsymbol, instrument_token, segment, tick_size, lot_size, freeze_qty))]
    fn new(
        exchange: String,
        tradingsymbol: String,
        instrument_token: u32,
        segment: &str,
        tick_size: &Bound<'_, PyAny>,
        lot_size: u32,
        freeze_qty: u32,
    ) -> PyResult<Self> {
        let inst = Instrument {
            exchange,
            tradingsymbol,
            instrument_token,
            segment: Segment::parse(segment).map_err(CoreErr::from)?,
            tick_size: price_from_py(tick_size)?,
            lot_size,
            freeze_qty,
        };
        inst.validate().map_err(CoreErr::from)?;
        Ok(PyInstrument(inst))
    }

    #[getter]
    fn exchange(&self) -> &str {
        &self.0.exchange
    }
    #[getter]
    fn tradingsymbol(&self) -> &str {
        &self.0.tradingsymbol
    }
    #[getter]
    fn instrument_token(&self) -> u32 {
        self.0.instrument_token
    }
    #[getter]
    fn segment(&self) -> &'static str {
        self.0.segment.as_str()
    }
    /// Tick size in rupees (e.g. 0.05).
    #[getter]
    fn tick_size(&self) -> f64 {
        self.0.tick_size.to_rupees_f64()
    }
    #[getter]
    fn tick_paise(&self) -> i64 {
        self.0.tick_size.paise()
    }
    #[getter]
    fn lot_size(&self) -> u32 {
        self.0.lot_size
    }
    #[getter]
    fn freeze_qty(&self) -> u32 {
        self.0.freeze_qty
    }
    fn max_order_qty(&self) -> u32 {
        self.0.max_order_qty()
    }
    fn __repr__(&self) -> String {
        format!(
            "Instrument({}:{} token={} {} tick={} lot={} freeze={})",
            self.0.exchange,
            self.0.tradingsymbol,
            self.0.instrument_token,
            self.0.segment.as_str(),
            self.0.tick_size,
            self.0.lot_size,
            self.0.freeze_qty
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInstrument>()?;
    Ok(())
}
