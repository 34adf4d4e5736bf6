//! `Engine`, `Decision`, `RiskBlock` and the portfolio read-outs for Python.
//!
//! Conversion only: the trading logic is `aitrapp_core::engine`. The one
//! thing added here is `decided_ns`, stamped when an outcome is produced on
//! the clock of `time.perf_counter_ns` (the core reads no clock).

use crate::errors::CoreErr;
use crate::instrument::PyInstrument;
use aitrapp_core::risk::{Detail, OpenBracket, RiskBlock};
use aitrapp_core::{
    BracketRestore, Decision, Engine, EngineConfig, Outcome, PortfolioSnapshot, Price, RawTick,
    Side, TickColumns, TradingState,
};
use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::OnceLock;
use std::time::Instant;

/// (Instant, perf_counter_ns) read together at import: both are
/// CLOCK_MONOTONIC on Linux, so an Instant maps onto perf_counter_ns.
static CLOCK_ANCHOR: OnceLock<(Instant, i64)> = OnceLock::new();

fn mono_ns() -> i64 {
    CLOCK_ANCHOR.get().map_or(0, |(at, base)| {
        base.saturating_add(i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX))
    })
}

fn rupees(paise: i64) -> f64 {
    Price::from_paise(paise).to_rupees_f64()
}

#[allow(clippy::cast_precision_loss)]
fn rupees_i128(paise: i128) -> f64 {
    paise as f64 / 100.0
}

/// A sized trade plan. Prices come as integer paise (`*_paise`) and as
/// rupee floats for display.
#[pyclass(name = "Decision", module = "aitrapp._core", frozen, get_all)]
pub struct PyDecision {
    plan_id: String,
    instrument_token: u32,
    tradingsymbol: String,
    exchange: String,
    side: String,
    entry_paise: i64,
    stop_paise: i64,
    tp_paise: i64,
    qty: u64,
    strategy: String,
    reason: String,
    signal_ts: i64,
    config_sha: String,
    risk_paise: i64,
    heat_after_pct: f64,
    capped_by_notional: bool,
    capped_by_freeze: bool,
    tick_index: Option<usize>,
    decided_ns: i64,
}

impl PyDecision {
    fn new(d: Decision, tick_index: Option<usize>, decided_ns: i64) -> Self {
        PyDecision {
            plan_id: d.plan_id,
            instrument_token: d.token,
            tradingsymbol: d.tradingsymbol,
            exchange: d.exchange,
            side: d.side.as_str().into(),
            entry_paise: d.entry.paise(),
            stop_paise: d.stop.paise(),
            tp_paise: d.tp.paise(),
            qty: d.qty,
            strategy: d.strategy.into(),
            reason: d.reason,
            signal_ts: d.signal_ts,
            config_sha: d.config_sha,
            risk_paise: d.risk_paise,
            heat_after_pct: d.heat_after_pct,
            capped_by_notional: d.capped_by_notional,
            capped_by_freeze: d.capped_by_freeze,
            tick_index,
            decided_ns,
        }
    }
}

#[pymethods]
impl PyDecision {
    #[getter]
    fn entry(&self) -> f64 {
        rupees(self.entry_paise)
    }
    #[getter]
    fn stop(&self) -> f64 {
        rupees(self.stop_paise)
    }
    #[getter]
    fn tp(&self) -> f64 {
        rupees(self.tp_paise)
    }
    #[getter]
    fn risk_rupees(&self) -> f64 {
        rupees(self.risk_paise)
    }

    /// Every field except `tick_index` and `decided_ns` (which depend on how
    /// the tick was delivered, not on the decision).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("plan_id", &self.plan_id)?;
        d.set_item("instrument_token", self.instrument_token)?;
        d.set_item("tradingsymbol", &self.tradingsymbol)?;
        d.set_item("exchange", &self.exchange)?;
        d.set_item("side", &self.side)?;
        d.set_item("entry_paise", self.entry_paise)?;
        d.set_item("stop_paise", self.stop_paise)?;
        d.set_item("tp_paise", self.tp_paise)?;
        d.set_item("qty", self.qty)?;
        d.set_item("strategy", &self.strategy)?;
        d.set_item("reason", &self.reason)?;
        d.set_item("signal_ts", self.signal_ts)?;
        d.set_item("config_sha", &self.config_sha)?;
        d.set_item("risk_paise", self.risk_paise)?;
        d.set_item("heat_after_pct", self.heat_after_pct)?;
        d.set_item("capped_by_notional", self.capped_by_notional)?;
        d.set_item("capped_by_freeze", self.capped_by_freeze)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision({} {} {} {} @ {} stop {} tp {} [{}] plan={})",
            self.strategy,
            self.side,
            self.qty,
            self.tradingsymbol,
            Price::from_paise(self.entry_paise),
            Price::from_paise(self.stop_paise),
            Price::from_paise(self.tp_paise),
            self.reason,
            self.plan_id
        )
    }
}

/// A signal the risk gate refused; `reason` is a stable UPPER_SNAKE code and
/// `details` holds the numbers that caused it.
#[pyclass(name = "RiskBlock", module = "aitrapp._core", frozen)]
pub struct PyRiskBlock {
    block: RiskBlock,
    #[pyo3(get)]
    tick_index: Option<usize>,
    #[pyo3(get)]
    decided_ns: i64,
}

fn details_dict<'py>(py: Python<'py>, block: &RiskBlock) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in &block.details {
        match v {
            Detail::Int(i) => d.set_item(*k, *i)?,
            Detail::Float(f) => d.set_item(*k, *f)?,
            Detail::Text(t) => d.set_item(*k, t)?,
        }
    }
    Ok(d)
}

#[pymethods]
impl PyRiskBlock {
    #[getter]
    fn reason(&self) -> &'static str {
        self.block.reason.as_str()
    }
    #[getter]
    fn strategy(&self) -> &'static str {
        self.block.strategy
    }
    #[getter]
    fn instrument_token(&self) -> u32 {
        self.block.token
    }
    #[getter]
    fn side(&self) -> &'static str {
        self.block.side.as_str()
    }
    #[getter]
    fn signal_ts(&self) -> i64 {
        self.block.signal_ts
    }
    /// The refused signal's entry, in rupees (``entry_paise`` exact).
    #[getter]
    fn entry(&self) -> f64 {
        self.block.entry.to_rupees_f64()
    }
    #[getter]
    fn stop(&self) -> f64 {
        self.block.stop.to_rupees_f64()
    }
    #[getter]
    fn tp(&self) -> f64 {
        self.block.tp.to_rupees_f64()
    }
    #[getter]
    fn entry_paise(&self) -> i64 {
        self.block.entry.paise()
    }
    #[getter]
    fn stop_paise(&self) -> i64 {
        self.block.stop.paise()
    }
    #[getter]
    fn tp_paise(&self) -> i64 {
        self.block.tp.paise()
    }
    /// A new dict on each access.
    #[getter]
    fn details<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        details_dict(py, &self.block)
    }

    /// Every field except `tick_index` and `decided_ns`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("reason", self.reason())?;
        d.set_item("strategy", self.strategy())?;
        d.set_item("instrument_token", self.block.token)?;
        d.set_item("side", self.side())?;
        d.set_item("signal_ts", self.block.signal_ts)?;
        d.set_item("entry", self.entry())?;
        d.set_item("stop", self.stop())?;
        d.set_item("tp", self.tp())?;
        d.set_item("details", details_dict(py, &self.block)?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let details: Vec<String> = self
            .block
            .details
            .iter()
            .map(|(k, v)| match v {
                Detail::Int(i) => format!("{k}={i}"),
                Detail::Float(f) => format!("{k}={f}"),
                Detail::Text(t) => format!("{k}={t}"),
            })
            .collect();
        format!(
            "RiskBlock({} {} {} token={}: {})",
            self.block.reason.as_str(),
            self.block.strategy,
            self.block.side.as_str(),
            self.block.token,
            details.join(" ")
        )
    }
}

/// One open bracket as the engine sees it.
#[pyclass(name = "BracketView", module = "aitrapp._core", frozen, get_all)]
#[derive(Clone)]
pub struct PyBracketView {
    plan_id: String,
    instrument_token: u32,
    side: String,
    strategy: String,
    entry_paise: i64,
    stop_paise: i64,
    tp_paise: i64,
    planned_qty: u64,
    filled_qty: u64,
    exited_qty: u64,
    position: u64,
    qty_at_risk: u64,
    avg_fill_price: Option<f64>,
    heat_rupees: f64,
    exposure_rupees: f64,
    signal_ts: i64,
}

impl From<&OpenBracket> for PyBracketView {
    fn from(b: &OpenBracket) -> Self {
        PyBracketView {
            plan_id: b.plan_id.clone(),
            instrument_token: b.token,
            side: b.side.as_str().into(),
            strategy: b.strategy.into(),
            entry_paise: b.entry.paise(),
            stop_paise: b.stop.paise(),
            tp_paise: b.tp.paise(),
            planned_qty: b.planned_qty,
            filled_qty: b.filled_qty,
            exited_qty: b.exited_qty,
            position: b.position(),
            qty_at_risk: b.qty_at_risk(),
            avg_fill_price: b.avg_fill_paise.map(|p| p / 100.0),
            heat_rupees: rupees_i128(b.heat_paise()),
            exposure_rupees: rupees_i128(b.exposure_paise()),
            signal_ts: b.signal_ts,
        }
    }
}

#[pymethods]
impl PyBracketView {
    fn __repr__(&self) -> String {
        format!(
            "BracketView({} {} {} token={} filled={}/{} exited={})",
            self.plan_id,
            self.strategy,
            self.side,
            self.instrument_token,
            self.filled_qty,
            self.planned_qty,
            self.exited_qty
        )
    }
}

/// The engine's book at one moment. PnL figures are for the current IST day.
#[pyclass(name = "PortfolioSnapshot", module = "aitrapp._core", frozen, get_all)]
pub struct PyPortfolioSnapshot {
    trading_state: String,
    ist_day: Option<i64>,
    open_brackets: Vec<PyBracketView>,
    open_positions: usize,
    heat_rupees: f64,
    heat_pct: f64,
    gross_exposure_rupees: f64,
    gross_exposure_pct: f64,
    daily_realized_pnl: f64,
    daily_unrealized_pnl: f64,
    daily_pnl: f64,
    daily_charges: f64,
    daily_close_charges: f64,
    daily_net_pnl: f64,
    trades_today: u32,
    daily_loss_halted: bool,
}

impl From<PortfolioSnapshot> for PyPortfolioSnapshot {
    fn from(s: PortfolioSnapshot) -> Self {
        PyPortfolioSnapshot {
            trading_state: s.state.as_str().into(),
            ist_day: s.day,
            open_positions: s.open_brackets.len(),
            open_brackets: s.open_brackets.iter().map(PyBracketView::from).collect(),
            heat_rupees: rupees_i128(s.heat_paise),
            heat_pct: s.heat_pct,
            gross_exposure_rupees: rupees_i128(s.gross_exposure_paise),
            gross_exposure_pct: s.gross_exposure_pct,
            daily_realized_pnl: rupees(s.realized_paise),
            daily_unrealized_pnl: rupees(s.unrealized_paise),
            daily_pnl: rupees(s.realized_paise.saturating_add(s.unrealized_paise)),
            daily_charges: rupees(s.daily.charges_paise),
            daily_close_charges: rupees(s.daily.close_charges_paise),
            daily_net_pnl: rupees(s.daily.net_paise()),
            trades_today: s.trades_today,
            daily_loss_halted: s.daily_loss_halted,
        }
    }
}

#[pymethods]
impl PyPortfolioSnapshot {
    fn __repr__(&self) -> String {
        format!(
            "PortfolioSnapshot({} open={} heat={:.3}% gross={:.1}% pnl={:.2} trades={} halted={})",
            self.trading_state,
            self.open_positions,
            self.heat_pct,
            self.gross_exposure_pct,
            self.daily_pnl,
            self.trades_today,
            self.daily_loss_halted
        )
    }
}

/// A closed (or forming) time bar; prices in rupees.
#[pyclass(name = "Bar", module = "aitrapp._core", frozen, get_all)]
pub struct PyBar {
    start_ns: i64,
    end_ns: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: u64,
    ticks: u32,
}

impl From<aitrapp_core::bars::Bar> for PyBar {
    fn from(b: aitrapp_core::bars::Bar) -> Self {
        PyBar {
            start_ns: b.start_ns,
            end_ns: b.end_ns,
            open: b.open.to_rupees_f64(),
            high: b.high.to_rupees_f64(),
            low: b.low.to_rupees_f64(),
            close: b.close.to_rupees_f64(),
            volume: b.volume,
            ticks: b.ticks,
        }
    }
}

#[pymethods]
impl PyBar {
    fn __repr__(&self) -> String {
        format!(
            "Bar(start_ns={} O={} H={} L={} C={} V={})",
            self.start_ns, self.open, self.high, self.low, self.close, self.volume
        )
    }
}

fn outcome_to_py(
    py: Python<'_>,
    o: Outcome,
    tick_index: Option<usize>,
    decided_ns: i64,
) -> PyResult<Py<PyAny>> {
    Ok(match o {
        Outcome::Decision(d) => Py::new(py, PyDecision::new(d, tick_index, decided_ns))?.into_any(),
        Outcome::Block(block) => Py::new(
            py,
            PyRiskBlock {
                block,
                tick_index,
                decided_ns,
            },
        )?
        .into_any(),
    })
}

/// A numeric column as a Vec: straight from the buffer protocol when the
/// dtype matches, otherwise through `numpy.asarray(x).astype(dtype,
/// casting="safe")` (lists, other widths, Arrow arrays).
pub(crate) fn column<T: Element + Copy>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &str,
    dtype: &str,
) -> PyResult<Vec<T>> {
    if let Ok(buf) = PyBuffer::<T>::get(obj) {
        if buf.dimensions() == 1 {
            return buf.to_vec(py);
        }
    }
    let wrap =
        |e: PyErr| PyTypeError::new_err(format!("on_ticks column {name} ({dtype} expected): {e}"));
    let np = py.import("numpy").map_err(wrap)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("casting", "safe")?;
    let arr = np
        .getattr("asarray")?
        .call1((obj,))
        .and_then(|a| a.call_method("astype", (dtype,), Some(&kwargs)))
        .map_err(wrap)?;
    let buf = PyBuffer::<T>::get(&arr).map_err(wrap)?;
    if buf.dimensions() != 1 {
        return Err(PyTypeError::new_err(format!(
            "on_ticks column {name}: expected a 1-d array, got {} dimensions",
            buf.dimensions()
        )));
    }
    buf.to_vec(py)
}

fn optional_column<T: Element + Copy>(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
    name: &str,
    dtype: &str,
) -> PyResult<Option<Vec<T>>> {
    obj.filter(|o| !o.is_none())
        .map(|o| column(py, o, name, dtype))
        .transpose()
}

/// The tick-to-decision engine. Built once from the JSON of a validated
/// `aitrapp.config.EngineConfig`; starts ACTIVE with an empty book.
#[pyclass(name = "Engine", module = "aitrapp._core")]
pub struct PyEngine {
    engine: Engine,
    /// Outcomes of the tick being processed (reused: the common empty path
    /// allocates nothing but the returned list).
    buf: Vec<Outcome>,
}

#[pymethods]
impl PyEngine {
    #[new]
    fn new(config_json: &str, instruments: Vec<PyRef<'_, PyInstrument>>) -> PyResult<Self> {
        let config = EngineConfig::from_json(config_json).map_err(CoreErr::from)?;
        let instruments = instruments.iter().map(|i| i.0.clone()).collect();
        let engine = Engine::new(config, instruments).map_err(CoreErr::from)?;
        Ok(PyEngine {
            engine,
            buf: Vec::new(),
        })
    }

    /// Hex SHA-1 (16 chars) of the canonical effective config.
    #[getter]
    fn config_sha(&self) -> &str {
        self.engine.config_sha()
    }

    /// The effective config (defaults filled in) as canonical JSON.
    #[getter]
    fn config_json(&self) -> String {
        self.engine.config().canonical_json()
    }

    #[getter]
    fn trading_state(&self) -> &'static str {
        self.engine.trading_state().as_str()
    }

    /// One tick from the live feed. Prices in rupees; bid/ask None, NaN or
    /// 0.0 mean absent. Returns the outcomes (usually none).
    #[pyo3(signature = (token, ts_ns, last_price, last_qty=0, volume=0, bid=None, ask=None, oi=None))]
    #[allow(clippy::too_many_arguments)]
    fn on_tick<'py>(
        &mut self,
        py: Python<'py>,
        token: i64,
        ts_ns: i64,
        last_price: f64,
        last_qty: i64,
        volume: i64,
        bid: Option<f64>,
        ask: Option<f64>,
        oi: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let raw = RawTick {
            token,
            ts_ns,
            last_price,
            last_qty,
            volume,
            bid,
            ask,
            oi,
        };
        // A rejected tick is counted in the engine; the caller sees no outcome.
        let _ = self.engine.on_tick(&raw, &mut self.buf);
        if self.buf.is_empty() {
            return Ok(PyList::empty(py));
        }
        let now = mono_ns();
        let items = self
            .buf
            .drain(..)
            .map(|o| outcome_to_py(py, o, None, now))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Replay: columns of equal length (numpy or Arrow arrays, or anything
    /// numpy.asarray takes). Integer columns int64, prices float64; NaN in
    /// bid/ask and a negative oi mean absent; bid, ask and oi may be None.
    /// The GIL is released while the engine runs. Every outcome carries the
    /// index of the tick that produced it in `tick_index`.
    #[pyo3(signature = (tokens, ts_ns, last_price, last_qty, volume, bid=None, ask=None, oi=None))]
    #[allow(clippy::too_many_arguments)]
    fn on_ticks<'py>(
        &mut self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        ts_ns: &Bound<'py, PyAny>,
        last_price: &Bound<'py, PyAny>,
        last_qty: &Bound<'py, PyAny>,
        volume: &Bound<'py, PyAny>,
        bid: Option<&Bound<'py, PyAny>>,
        ask: Option<&Bound<'py, PyAny>>,
        oi: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let token_v: Vec<i64> = column(py, tokens, "tokens", "int64")?;
        let ts_v: Vec<i64> = column(py, ts_ns, "ts_ns", "int64")?;
        let last_v: Vec<f64> = column(py, last_price, "last_price", "float64")?;
        let qty_v: Vec<i64> = column(py, last_qty, "last_qty", "int64")?;
        let vol_v: Vec<i64> = column(py, volume, "volume", "int64")?;
        let bid_v: Option<Vec<f64>> = optional_column(py, bid, "bid", "float64")?;
        let ask_v: Option<Vec<f64>> = optional_column(py, ask, "ask", "float64")?;
        let oi_v: Option<Vec<i64>> = optional_column(py, oi, "oi", "int64")?;
        let cols = TickColumns {
            token: &token_v,
            ts_ns: &ts_v,
            last_price: &last_v,
            last_qty: &qty_v,
            volume: &vol_v,
            bid: bid_v.as_deref(),
            ask: ask_v.as_deref(),
            oi: oi_v.as_deref(),
        };
        let engine = &mut self.engine;
        let produced = py.detach(|| {
            let mut out: Vec<(usize, Outcome, i64)> = Vec::new();
            engine
                .on_batch(&cols, |i, o| out.push((i, o, mono_ns())))
                .map(|()| out)
        });
        let produced = produced.map_err(CoreErr::from)?;
        let items = produced
            .into_iter()
            .map(|(i, o, ns)| outcome_to_py(py, o, Some(i), ns))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Closes bars whose bucket ended by `ts_ns` and rolls the IST (and
    /// trading) day; a replay of several days calls it at each new day.
    fn advance_time(&mut self, ts_ns: i64) {
        self.engine.advance_time(ts_ns);
    }

    /// Live: the wall clock (UTC ns). Ticks stamped further than
    /// `ticks.max_clock_skew_seconds` from it are refused as TIME_OUT_OF_RANGE.
    fn set_clock_ns(&mut self, now_ns: i64) {
        self.engine.set_clock_ns(now_ns);
    }

    /// The last clock given to `set_clock_ns`, if any.
    #[getter]
    fn clock_ns(&self) -> Option<i64> {
        self.engine.clock_ns()
    }

    /// The IST day being traded (days since 1970-01-01), once known.
    #[getter]
    fn trading_day(&self) -> Option<i64> {
        self.engine.trading_day()
    }

    /// Anchors an instrument's price band on its previous close (rupees);
    /// `band_pct` replaces its segment's band (0 = none).
    #[pyo3(signature = (instrument_token, close, band_pct=None))]
    fn set_previous_close(
        &mut self,
        instrument_token: u32,
        close: f64,
        band_pct: Option<f64>,
    ) -> PyResult<()> {
        Ok(self
            .engine
            .set_previous_close(instrument_token, close, band_pct)
            .map_err(CoreErr::from)?)
    }

    /// "ACTIVE", "PAUSED" or "HALTED". Only ACTIVE opens positions.
    fn set_trading_state(&mut self, state: &str) -> PyResult<()> {
        let s: TradingState = state.parse().map_err(CoreErr::from)?;
        self.engine.set_trading_state(s);
        Ok(())
    }

    /// Cumulative entry fill: total filled quantity so far and its average price (rupees).
    fn on_entry_filled(&mut self, plan_id: &str, filled_qty: u64, avg_price: f64) -> PyResult<()> {
        Ok(self
            .engine
            .on_entry_filled(plan_id, filled_qty, avg_price)
            .map_err(CoreErr::from)?)
    }

    /// One exit fill (incremental quantity) at `price` rupees.
    fn on_exit_filled(&mut self, plan_id: &str, qty: u64, price: f64) -> PyResult<()> {
        Ok(self
            .engine
            .on_exit_filled(plan_id, qty, price)
            .map_err(CoreErr::from)?)
    }

    /// The bracket is flat: its final gross PnL and its charges in rupees
    /// (None: estimated at `risk.charges_buy_bps` / `charges_sell_bps`). Starts the cooldown.
    #[pyo3(signature = (plan_id, realized_pnl_rupees, ts_ns, charges_rupees=None))]
    fn on_bracket_closed(
        &mut self,
        plan_id: &str,
        realized_pnl_rupees: f64,
        ts_ns: i64,
        charges_rupees: Option<f64>,
    ) -> PyResult<()> {
        Ok(self
            .engine
            .on_bracket_closed(plan_id, realized_pnl_rupees, charges_rupees, ts_ns)
            .map_err(CoreErr::from)?)
    }

    /// The entry never filled: frees the plan's heat and its instrument.
    fn on_plan_cancelled(&mut self, plan_id: &str, ts_ns: i64) -> PyResult<()> {
        Ok(self
            .engine
            .on_plan_cancelled(plan_id, ts_ns)
            .map_err(CoreErr::from)?)
    }

    /// After a restart: today's gross realized PnL and charges (paise) and
    /// plans issued for IST day `ist_day` (days since 1970-01-01), which
    /// becomes the engine's day if it has none. Replaces the figures;
    /// refuses another day.
    #[pyo3(signature = (ist_day, realized_pnl_paise, trades_today, charges_paise=0))]
    fn restore_day(
        &mut self,
        ist_day: i64,
        realized_pnl_paise: i64,
        trades_today: u32,
        charges_paise: i64,
    ) -> PyResult<()> {
        Ok(self
            .engine
            .restore_day(ist_day, realized_pnl_paise, charges_paise, trades_today)
            .map_err(CoreErr::from)?)
    }

    /// After a restart: an open bracket of an earlier process (prices in
    /// rupees). Holds heat, exposure, an open position and its instrument.
    #[pyo3(signature = (plan_id, instrument_token, side, strategy, entry, stop, tp, planned_qty, filled_qty, avg_fill=None, signal_ts=0))]
    #[allow(clippy::too_many_arguments)]
    fn restore_bracket(
        &mut self,
        plan_id: &str,
        instrument_token: u32,
        side: &str,
        strategy: &str,
        entry: f64,
        stop: f64,
        tp: f64,
        planned_qty: u64,
        filled_qty: u64,
        avg_fill: Option<f64>,
        signal_ts: i64,
    ) -> PyResult<()> {
        restore_bracket_into(
            &mut self.engine,
            plan_id,
            instrument_token,
            side,
            strategy,
            entry,
            stop,
            tp,
            planned_qty,
            filled_qty,
            avg_fill,
            signal_ts,
        )
    }

    /// After a restart: the cooldown left by a bracket on `instrument_token`
    /// closed at `closed_ts_ns` (UTC); none if closed on another IST day.
    fn restore_cooldown(&mut self, instrument_token: u32, closed_ts_ns: i64) -> PyResult<()> {
        Ok(self
            .engine
            .restore_cooldown(instrument_token, closed_ts_ns)
            .map_err(CoreErr::from)?)
    }

    /// Rejected ticks by reason (every reason, zeros included).
    fn tick_rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (why, n) in self.engine.tick_counters().rejections() {
            d.set_item(why.as_str(), n)?;
        }
        Ok(d)
    }

    /// {"accepted", "off_tick_rounded", "band_reanchored", "rejected"} counts.
    fn tick_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.engine.tick_counters();
        let d = PyDict::new(py);
        d.set_item("accepted", c.accepted)?;
        d.set_item("off_tick_rounded", c.off_tick_rounded)?;
        d.set_item("band_reanchored", c.band_reanchored)?;
        d.set_item("rejected", c.total_rejected())?;
        Ok(d)
    }

    fn portfolio(&self) -> PyPortfolioSnapshot {
        self.engine.portfolio().into()
    }

    /// Last accepted price in rupees; None for an unknown or silent token.
    fn last_price(&self, token: i64) -> Option<f64> {
        self.engine.last_price(token).map(Price::to_rupees_f64)
    }

    /// The most recently closed bar.
    fn last_bar(&self, token: i64) -> Option<PyBar> {
        self.engine.last_bar(token).map(PyBar::from)
    }

    /// The bar still being built.
    fn current_bar(&self, token: i64) -> Option<PyBar> {
        self.engine.current_bar(token).map(PyBar::from)
    }

    /// Session VWAP in rupees.
    fn vwap(&self, token: i64) -> Option<f64> {
        self.engine.vwap_paise(token).map(|p| p / 100.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(config_sha={} instruments={} state={})",
            self.engine.config_sha(),
            self.engine.instruments().count(),
            self.engine.trading_state().as_str()
        )
    }
}

/// config_sha of a config JSON (validated exactly as `Engine` does).
#[pyfunction]
fn engine_config_sha(config_json: &str) -> PyResult<String> {
    Ok(EngineConfig::from_json(config_json)
        .map_err(CoreErr::from)?
        .config_sha())
}

/// The canonical effective config: defaults filled in, keys sorted, no spaces.
#[pyfunction]
fn engine_config_canonical(config_json: &str) -> PyResult<String> {
    Ok(EngineConfig::from_json(config_json)
        .map_err(CoreErr::from)?
        .canonical_json())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base: i64 = py
        .import("time")?
        .call_method0("perf_counter_ns")?
        .extract()?;
    let _ = CLOCK_ANCHOR.set((Instant::now(), base));
    m.add_class::<PyEngine>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyRiskBlock>()?;
    m.add_class::<PyBracketView>()?;
    m.add_class::<PyPortfolioSnapshot>()?;
    m.add_class::<PyBar>()?;
    m.add_function(wrap_pyfunction!(engine_config_sha, m)?)?;
    m.add_function(wrap_pyfunction!(engine_config_canonical, m)?)?;
    Ok(())
}

/// `restore_bracket` of `Engine`, `Kernel` and `LiveKernel`: an earlier
/// process's open bracket (prices in rupees) into an engine's book.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_bracket_into(
    engine: &mut Engine,
    plan_id: &str,
    instrument_token: u32,
    side: &str,
    strategy: &str,
    entry: f64,
    stop: f64,
    tp: f64,
    planned_qty: u64,
    filled_qty: u64,
    avg_fill: Option<f64>,
    signal_ts: i64,
) -> PyResult<()> {
    let side = side.parse::<Side>().map_err(CoreErr::from)?;
    let r = BracketRestore {
        plan_id,
        token: instrument_token,
        side,
        strategy,
        entry_rupees: entry,
        stop_rupees: stop,
        tp_rupees: tp,
        planned_qty,
        filled_qty,
        avg_fill_rupees: avg_fill,
        signal_ts,
    };
    Ok(engine.restore_bracket(&r).map_err(CoreErr::from)?)
}
