//! Columns of ticks for replay (what numpy / Arrow arrays give the binding).

use super::EngineError;
use crate::tick::RawTick;

/// One tick per row. Absent quotes are NaN (or a missing column); a negative
/// open interest (or a missing column) means "no OI".
#[derive(Debug, Clone, Copy)]
pub struct TickColumns<'a> {
    pub token: &'a [i64],
    pub ts_ns: &'a [i64],
    pub last_price: &'a [f64],
    pub last_qty: &'a [i64],
    pub volume: &'a [i64],
    pub bid: Option<&'a [f64]>,
    pub ask: Option<&'a [f64]>,
    pub oi: Option<&'a [i64]>,
}

impl TickColumns<'_> {
    /// The number of rows, if every column has it.
    pub fn check(&self) -> Result<usize, EngineError> {
        let n = self.token.len();
        let lens = [
            ("ts_ns", Some(self.ts_ns.len())),
            ("last_price", Some(self.last_price.len())),
            ("last_qty", Some(self.last_qty.len())),
            ("volume", Some(self.volume.len())),
            ("bid", self.bid.map(<[f64]>::len)),
            ("ask", self.ask.map(<[f64]>::len)),
            ("oi", self.oi.map(<[i64]>::len)),
        ];
        for (name, len) in lens {
            if let Some(len) = len.filter(|l| *l != n) {
                return Err(EngineError::Input(format!(
                    "batch column {name} has {len} rows, tokens has {n}"
                )));
            }
        }
        Ok(n)
    }

    /// Row `i` as a raw tick; `i` must be below [`TickColumns::check`]'s count.
    pub fn row(&self, i: usize) -> RawTick {
        RawTick {
            token: self.token[i],
            ts_ns: self.ts_ns[i],
            last_price: self.last_price[i],
            last_qty: self.last_qty[i],
            volume: self.volume[i],
            bid: self.bid.map(|c| c[i]).filter(|v| !v.is_nan()),
            ask: self.ask.map(|c| c[i]).filter(|v| !v.is_nan()),
            oi: self.oi.map(|c| c[i]).filter(|v| *v >= 0),
        }
    }
}
