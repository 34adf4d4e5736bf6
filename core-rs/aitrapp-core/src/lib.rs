//! AITRAPP domain core.
//!
//! Pure and deterministic: no clocks, no I/O, no globals. Time arrives as an
//! argument; prices are integer paise. The Python bindings live in the
//! separate `aitrapp-py` crate.

pub mod bars;
pub mod config;
pub mod engine;
pub mod ids;
pub mod indicators;
pub mod instrument;
pub mod kernel;
pub mod oco;
pub mod pgcopy;
pub mod price;
pub mod risk;
pub mod side;
pub mod strategies;
pub mod tick;
pub mod venue;

pub use config::{ConfigError, EngineConfig};
pub use engine::{
    BracketRestore, Decision, Engine, EngineError, Outcome, PortfolioSnapshot, TickColumns,
};
pub use ids::{broker_tag, order_client_id, plan_client_id, IdError, OrderTag, PlanKey};
pub use instrument::{Instrument, InstrumentError, Segment};
pub use price::{Price, PriceError, Rounding};
pub use risk::{BlockReason, RiskBlock, TradingState};
pub use side::Side;
pub use tick::{RawTick, TickReject};
