//! `aitrapp._core`: thin PyO3 bindings over `aitrapp-core`.
//!
//! Bindings convert arguments, call the core and map errors (in `errors.rs`);
//! they hold no trading logic.

use pyo3::prelude::*;

mod engine;
mod engine_indicators;
mod errors;
mod ids;
mod instrument;
mod kernel;
mod live_kernel;
mod oco;
mod pgcopy;
mod price;
mod venue;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    price::register(m)?;
    instrument::register(m)?;
    ids::register(m)?;
    engine::register(m)?;
    engine_indicators::register(m)?;
    oco::register(m)?;
    pgcopy::register(m)?;
    kernel::register(m)?;
    live_kernel::register(m)?;
    venue::register(m)?;
    Ok(())
}
