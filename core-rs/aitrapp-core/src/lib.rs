//! AITRAPP domain core.
//!
//! Pure and deterministic: no clocks, no I/O, no globals. Time arrives as an
//! argument; prices are integer paise. The Python bindings live in the
//! separate `aitrapp-py` crate.

pub mod ids;
pub mod instrument;
pub mod price;
pub mod side;

pub use ids::{broker_tag, order_client_id, plan_client_id, IdError, OrderTag, PlanKey};
pub use instrument::{Instrument, InstrumentError, Segment};
pub use price::{Price, PriceError, Rounding};
pub use side::Side;
