//! The one place where core errors become Python exceptions.
//!
//! Tree: AitrappError(Exception) > PriceError, InstrumentError, IdError,
//! ConfigError, ... A malformed enum spelling (side, rounding mode) is a
//! plain ValueError.

use aitrapp_core as core;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    aitrapp._core,
    AitrappError,
    PyException,
    "Root of every AITRAPP error."
);
create_exception!(
    aitrapp._core,
    PriceError,
    AitrappError,
    "A price is not finite, out of range, unparsable or off its tick grid."
);
create_exception!(
    aitrapp._core,
    InstrumentError,
    AitrappError,
    "An instrument definition is invalid."
);
create_exception!(
    aitrapp._core,
    IdError,
    AitrappError,
    "A client-id input or a client id is malformed."
);
create_exception!(
    aitrapp._core,
    ConfigError,
    AitrappError,
    "A configuration value is invalid; the message names the key."
);
create_exception!(
    aitrapp._core,
    PortfolioError,
    AitrappError,
    "Engine feedback (fill, close, cancel) names an unknown plan or carries an impossible value."
);
// ---- OCO brackets (core-rs/aitrapp-py/src/oco.rs) ----
create_exception!(
    aitrapp._core,
    OcoError,
    AitrappError,
    "A bracket spec field is invalid (the message names it), or an order event is impossible for the bracket."
);

// ---- paper venue (core-rs/aitrapp-py/src/venue.rs) ----
create_exception!(
    aitrapp._core,
    VenueError,
    AitrappError,
    "The venue refused a modify or cancel at once (unknown or terminal order, budget spent, invalid field), as Kite's InputException."
);

/// Core error -> Python exception. Each core domain enum gets one `From`.
pub struct CoreErr(PyErr);

impl From<CoreErr> for PyErr {
    fn from(e: CoreErr) -> PyErr {
        e.0
    }
}

impl From<core::PriceError> for CoreErr {
    fn from(e: core::PriceError) -> Self {
        CoreErr(PriceError::new_err(e.to_string()))
    }
}

impl From<core::InstrumentError> for CoreErr {
    fn from(e: core::InstrumentError) -> Self {
        CoreErr(InstrumentError::new_err(e.to_string()))
    }
}

impl From<core::IdError> for CoreErr {
    fn from(e: core::IdError) -> Self {
        CoreErr(IdError::new_err(e.to_string()))
    }
}

impl From<core::side::ParseSideError> for CoreErr {
    fn from(e: core::side::ParseSideError) -> Self {
        CoreErr(PyValueError::new_err(e.to_string()))
    }
}

// ---- engine (core-rs/aitrapp-py/src/engine.rs) ----
impl From<core::ConfigError> for CoreErr {
    fn from(e: core::ConfigError) -> Self {
        CoreErr(ConfigError::new_err(e.to_string()))
    }
}

impl From<core::risk::PortfolioError> for CoreErr {
    fn from(e: core::risk::PortfolioError) -> Self {
        match e {
            // A misspelt state is a caller bug, like a misspelt side.
            core::risk::PortfolioError::BadState(_) => {
                CoreErr(PyValueError::new_err(e.to_string()))
            }
            other => CoreErr(PortfolioError::new_err(other.to_string())),
        }
    }
}

impl From<core::EngineError> for CoreErr {
    fn from(e: core::EngineError) -> Self {
        match e {
            core::EngineError::Config(c) => c.into(),
            core::EngineError::Instrument(i) => i.into(),
            core::EngineError::Portfolio(p) => p.into(),
            core::EngineError::Input(msg) => CoreErr(PyValueError::new_err(msg)),
        }
    }
}

// ---- OCO brackets ----
impl From<core::oco::OcoError> for CoreErr {
    fn from(e: core::oco::OcoError) -> Self {
        CoreErr(OcoError::new_err(e.to_string()))
    }
}

// ---- paper venue ----
impl From<core::venue::VenueError> for CoreErr {
    fn from(e: core::venue::VenueError) -> Self {
        match e {
            core::venue::VenueError::Config(msg) => CoreErr(ConfigError::new_err(msg)),
            other => CoreErr(VenueError::new_err(other.to_string())),
        }
    }
}

impl CoreErr {
    /// Passes a Python-side error (e.g. a failed extraction) through unchanged.
    pub fn from_py(e: PyErr) -> Self {
        CoreErr(e)
    }
}

pub type CoreResult<T> = Result<T, CoreErr>;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AitrappError", py.get_type::<AitrappError>())?;
    m.add("PriceError", py.get_type::<PriceError>())?;
    m.add("InstrumentError", py.get_type::<InstrumentError>())?;
    m.add("IdError", py.get_type::<IdError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("PortfolioError", py.get_type::<PortfolioError>())?;
    m.add("OcoError", py.get_type::<OcoError>())?;
    m.add("VenueError", py.get_type::<VenueError>())?;
    Ok(())
}
