//! Incremental indicators: each update is O(1) (the rolling window amortised).
//!
//! Values are `f64` in whatever unit is fed in (the engine feeds paise).
//! They shape signals; prices that go into orders are rounded onto the tick
//! grid as integers afterwards.

mod atr;
mod ema;
mod opening_range;
mod rolling;
mod vwap;

pub use atr::WilderAtr;
pub use ema::Ema;
pub use opening_range::OpeningRange;
pub use rolling::RollingHighLow;
pub use vwap::SessionVwap;
