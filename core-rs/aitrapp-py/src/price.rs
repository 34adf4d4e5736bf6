//! `Price` and tick rounding for Python.

use crate::errors::CoreResult;
use aitrapp_core::{Price, Rounding};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

fn rounding(mode: &str) -> PyResult<Rounding> {
    match mode {
        "down" => Ok(Rounding::Down),
        "up" => Ok(Rounding::Up),
        "nearest" => Ok(Rounding::Nearest),
        other => Err(PyValueError::new_err(format!(
            "rounding must be 'down', 'up' or 'nearest', got {other:?}"
        ))),
    }
}

/// Accepts a `Price`, rupees as `str` (exact) or rupees as `float`/`int`
/// (rounded to the nearest paisa).
pub fn price_from_py(value: &Bound<'_, PyAny>) -> CoreResult<Price> {
    if let Ok(p) = value.extract::<PyPrice>() {
        return Ok(p.0);
    }
    if let Ok(s) = value.cast::<PyString>() {
        let text = s.to_str().map_err(crate::errors::CoreErr::from_py)?;
        return Ok(Price::parse(text)?);
    }
    let f: f64 = value.extract().map_err(crate::errors::CoreErr::from_py)?;
    Ok(Price::from_rupees_f64(f)?)
}

#[pyclass(
    name = "Price",
    module = "aitrapp._core",
    frozen,
    eq,
    ord,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PyPrice(pub Price);

#[pymethods]
impl PyPrice {
    #[new]
    fn new(paise: i64) -> Self {
        PyPrice(Price::from_paise(paise))
    }

    /// From rupees: a `str` is parsed exactly, a number is rounded to the paisa.
    #[staticmethod]
    fn from_rupees(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyPrice(price_from_py(value)?))
    }

    #[getter]
    fn paise(&self) -> i64 {
        self.0.paise()
    }

    #[getter]
    fn rupees(&self) -> f64 {
        self.0.to_rupees_f64()
    }

    #[pyo3(signature = (tick, mode = "nearest"))]
    fn round_to_tick(&self, tick: PyPrice, mode: &str) -> PyResult<Self> {
        Ok(PyPrice(
            self.0
                .round_to_tick(tick.0, rounding(mode)?)
                .map_err(crate::errors::CoreErr::from)?,
        ))
    }

    fn is_on_grid(&self, tick: PyPrice) -> PyResult<bool> {
        Ok(self
            .0
            .is_on_grid(tick.0)
            .map_err(crate::errors::CoreErr::from)?)
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Price('{}')", self.0)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrice>()?;
    Ok(())
}
