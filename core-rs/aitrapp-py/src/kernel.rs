//! `Kernel`: the trading kernel with the paper venue, for Python. Columns
//! in, columnar event batches out; the GIL is released while it runs.

use crate::engine::{column, restore_bracket_into, PyPortfolioSnapshot};
use crate::errors::CoreErr;
use crate::instrument::PyInstrument;
use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::venue::{SimVenue, SimVenueConfig, Venue};
use aitrapp_core::{Engine, EngineConfig, EngineError, RawTick, TickColumns, TradingState};
use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn input(e: impl std::fmt::Display) -> CoreErr {
    CoreErr::from(EngineError::Input(e.to_string()))
}

macro_rules! table {
    ($py:expr, $out:expr, $name:literal, $t:expr, $first:ident $(, $col:ident)*) => {{
        // An empty table is left out: the live path pays only for what happened.
        // Keys are interned once per process, not built per batch.
        if !$t.$first.is_empty() {
            let d = PyDict::new($py);
            d.set_item(pyo3::intern!($py, stringify!($first)), &$t.$first)?;
            $( d.set_item(pyo3::intern!($py, stringify!($col)), &$t.$col)?; )*
            $out.set_item(pyo3::intern!($py, $name), d)?;
        }
    }};
}

/// `counters()` of `Kernel` and `LiveKernel`: the running totals, O(1).
pub(crate) fn counters_dict<'py, V: Venue>(
    py: Python<'py>,
    kernel: &Kernel<V>,
) -> PyResult<Bound<'py, PyDict>> {
    let c = kernel.counters();
    let d = PyDict::new(py);
    d.set_item("ticks", c.ticks)?;
    d.set_item("ticks_rejected", c.ticks_rejected)?;
    d.set_item("decisions", c.decisions)?;
    d.set_item("blocks", c.blocks)?;
    d.set_item("brackets_opened", c.brackets_opened)?;
    d.set_item("trades", c.trades)?;
    d.set_item("wins", c.wins)?;
    d.set_item("alerts", c.alerts)?;
    d.set_item("critical_alerts", c.critical_alerts)?;
    d.set_item("double_exits", c.double_exits)?;
    d.set_item("races", c.races)?;
    d.set_item("last_tick_ns", c.last_tick_ns)?;
    d.set_item("open_brackets", kernel.open_brackets())?;
    Ok(d)
}

/// `tick_rejections()` of `Kernel` and `LiveKernel`: refused ticks by reason code.
pub(crate) fn rejections_dict<'py, V: Venue>(
    py: Python<'py>,
    kernel: &Kernel<V>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (why, n) in kernel.engine().tick_counters().rejections() {
        d.set_item(why.as_str(), n)?;
    }
    Ok(d)
}

/// The event batch as `{table: {column: list}}`; tables without rows are absent.
pub(crate) fn log_to_py(py: Python<'_>, log: &EventLog) -> PyResult<Py<PyDict>> {
    let out = PyDict::new(py);
    let EventLog {
        decisions,
        blocks,
        orders,
        updates,
        fills,
        transitions,
        trades,
        alerts,
    } = log;
    table!(
        py,
        out,
        "decisions",
        decisions,
        ts_ns,
        plan_id,
        token,
        side,
        entry,
        stop,
        tp,
        qty,
        strategy,
        reason,
        risk_paise,
        heat_after_pct
    );
    table!(
        py, out, "blocks", blocks, ts_ns, token, strategy, side, reason, entry, stop, tp, details
    );
    table!(
        py,
        out,
        "orders",
        orders,
        ts_ns,
        plan_id,
        client_order_id,
        action,
        order_id,
        side,
        qty,
        order_type,
        price,
        trigger,
        refused,
        reason,
        step
    );
    table!(
        py,
        out,
        "updates",
        updates,
        ts_ns,
        plan_id,
        client_order_id,
        order_id,
        status,
        filled_qty,
        avg_price,
        triggered,
        message
    );
    table!(
        py,
        out,
        "fills",
        fills,
        ts_ns,
        plan_id,
        client_order_id,
        order_id,
        role,
        side,
        qty,
        filled_qty,
        price
    );
    table!(
        py,
        out,
        "transitions",
        transitions,
        ts_ns,
        plan_id,
        from,
        to,
        event
    );
    table!(
        py,
        out,
        "trades",
        trades,
        plan_id,
        token,
        strategy,
        side,
        qty,
        opened_ns,
        closed_ns,
        entry_avg,
        planned_entry,
        planned_stop,
        exit_avg,
        exit_reason,
        gross_paise,
        planned_risk_paise,
        double_exit,
        race
    );
    table!(py, out, "alerts", alerts, ts_ns, plan_id, severity, code, reason);
    Ok(out.unbind())
}

/// Engine, OCO brackets and the simulated venue in one event-exact loop.
/// Built from the JSON of a validated engine config, the instruments, the
/// paper venue settings and the bracket template.
#[pyclass(name = "Kernel", module = "aitrapp._core")]
pub struct PyKernel {
    kernel: Kernel<SimVenue>,
    /// Column buffers, reused from batch to batch (no fresh pages per call).
    cols: Scratch,
    /// The live path's event log, reused from tick to tick.
    spare: EventLog,
}

#[derive(Default)]
struct Scratch {
    token: Vec<i64>,
    ts: Vec<i64>,
    last: Vec<f64>,
    qty: Vec<i64>,
    volume: Vec<i64>,
    bid: Vec<f64>,
    ask: Vec<f64>,
    oi: Vec<i64>,
}

/// Copies a column into `buf` (straight from the buffer when the dtype
/// matches, else through numpy as `column` does).
fn fill<T: Element + Copy + Default>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &str,
    dtype: &str,
    buf: &mut Vec<T>,
) -> PyResult<()> {
    if let Ok(b) = PyBuffer::<T>::get(obj) {
        if b.dimensions() == 1 {
            buf.clear();
            buf.resize(b.item_count(), T::default());
            return b.copy_to_slice(py, buf);
        }
    }
    *buf = column(py, obj, name, dtype)?;
    Ok(())
}

fn fill_optional<T: Element + Copy + Default>(
    py: Python<'_>,
    obj: Option<&Bound<'_, PyAny>>,
    name: &str,
    dtype: &str,
    buf: &mut Vec<T>,
) -> PyResult<bool> {
    match obj.filter(|o| !o.is_none()) {
        Some(o) => fill(py, o, name, dtype, buf).map(|()| true),
        None => Ok(false),
    }
}

#[pymethods]
impl PyKernel {
    #[new]
    #[pyo3(signature = (config_json, instruments, venue_json = "{}", bracket_json = "{}"))]
    fn new(
        config_json: &str,
        instruments: Vec<PyRef<'_, PyInstrument>>,
        venue_json: &str,
        bracket_json: &str,
    ) -> PyResult<Self> {
        let config = EngineConfig::from_json(config_json).map_err(CoreErr::from)?;
        let instruments: Vec<_> = instruments.iter().map(|i| i.0.clone()).collect();
        let venue_config: SimVenueConfig =
            serde_json::from_str(venue_json).map_err(|e| input(format!("venue: {e}")))?;
        let venue = SimVenue::new(venue_config, &instruments).map_err(input)?;
        let template = BracketTemplate::from_json(bracket_json).map_err(CoreErr::from)?;
        let engine = Engine::new(config, instruments).map_err(CoreErr::from)?;
        let kernel = Kernel::new(engine, venue, template).map_err(CoreErr::from)?;
        Ok(PyKernel {
            kernel,
            cols: Scratch::default(),
            spare: EventLog::default(),
        })
    }

    #[getter]
    fn config_sha(&self) -> &str {
        self.kernel.engine().config_sha()
    }

    /// Replays columns (numpy/Arrow arrays or sequences; int64 tokens, times,
    /// quantities; float64 rupee prices, NaN bid/ask absent) with the GIL
    /// released, and returns the events they produced.
    #[pyo3(signature = (tokens, ts_ns, last_price, last_qty, volume, bid=None, ask=None, oi=None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
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
    ) -> PyResult<Py<PyDict>> {
        let c = &mut self.cols;
        fill(py, tokens, "tokens", "int64", &mut c.token)?;
        fill(py, ts_ns, "ts_ns", "int64", &mut c.ts)?;
        fill(py, last_price, "last_price", "float64", &mut c.last)?;
        fill(py, last_qty, "last_qty", "int64", &mut c.qty)?;
        fill(py, volume, "volume", "int64", &mut c.volume)?;
        let has_bid = fill_optional(py, bid, "bid", "float64", &mut c.bid)?;
        let has_ask = fill_optional(py, ask, "ask", "float64", &mut c.ask)?;
        let has_oi = fill_optional(py, oi, "oi", "int64", &mut c.oi)?;
        let cols = TickColumns {
            token: &c.token,
            ts_ns: &c.ts,
            last_price: &c.last,
            last_qty: &c.qty,
            volume: &c.volume,
            bid: has_bid.then_some(c.bid.as_slice()),
            ask: has_ask.then_some(c.ask.as_slice()),
            oi: has_oi.then_some(c.oi.as_slice()),
        };
        let kernel = &mut self.kernel;
        let log = py
            .detach(|| kernel.run(&cols).map(|()| kernel.take_log()))
            .map_err(CoreErr::from)?;
        log_to_py(py, &log)
    }

    /// One tick from a live feed. Returns the events it produced, or None.
    #[pyo3(signature = (token, ts_ns, last_price, last_qty=0, volume=0, bid=None, ask=None, oi=None))]
    #[allow(clippy::too_many_arguments)]
    fn on_tick(
        &mut self,
        py: Python<'_>,
        token: i64,
        ts_ns: i64,
        last_price: f64,
        last_qty: i64,
        volume: i64,
        bid: Option<f64>,
        ask: Option<f64>,
        oi: Option<i64>,
    ) -> PyResult<Option<Py<PyDict>>> {
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
        let _ = self.kernel.on_tick(&raw);
        self.take(py)
    }

    /// Exchange time moves to `ts_ns` with no tick: timers due by then fire.
    fn advance_time(&mut self, py: Python<'_>, ts_ns: i64) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.advance_time(ts_ns);
        self.take(py)
    }

    /// The feed ended at `ts_ns`; time runs on to `until_ns` (the close).
    fn finish(
        &mut self,
        py: Python<'_>,
        ts_ns: i64,
        until_ns: i64,
    ) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.finish(ts_ns, until_ns);
        self.take(py)
    }

    /// Every open bracket exits at market at `ts_ns` (call set_trading_state first).
    fn flatten(&mut self, py: Python<'_>, ts_ns: i64) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.flatten(ts_ns);
        self.take(py)
    }

    fn set_trading_state(&mut self, state: &str) -> PyResult<()> {
        let s: TradingState = state.parse().map_err(CoreErr::from)?;
        self.kernel.set_trading_state(s);
        Ok(())
    }

    #[getter]
    fn trading_state(&self) -> &'static str {
        self.kernel.engine().trading_state().as_str()
    }

    #[getter]
    fn open_brackets(&self) -> usize {
        self.kernel.open_brackets()
    }

    #[getter]
    fn working_orders(&self) -> usize {
        self.kernel.working_orders()
    }

    /// Running totals (O(1)): ticks, rejects, decisions, blocks, brackets,
    /// trades, wins, alerts, races, the last tick's exchange time.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        counters_dict(py, &self.kernel)
    }

    /// The engine's book now: heat, daily P&L, trades today, the daily-loss latch.
    fn portfolio(&self) -> PyPortfolioSnapshot {
        self.kernel.engine().portfolio().into()
    }

    /// Last accepted price in rupees; None for an unknown or silent token.
    fn last_price(&self, token: i64) -> Option<f64> {
        self.kernel
            .engine()
            .last_price(token)
            .map(aitrapp_core::Price::to_rupees_f64)
    }

    /// Resumes the day's figures after a restart (before any tick): realized
    /// P&L, charges and plans issued, so the daily limits carry over.
    #[pyo3(signature = (ist_day, realized_pnl_paise, trades_today, charges_paise=0))]
    fn restore_day(
        &mut self,
        ist_day: i64,
        realized_pnl_paise: i64,
        trades_today: u32,
        charges_paise: i64,
    ) -> PyResult<()> {
        Ok(self
            .kernel
            .engine_mut()
            .restore_day(ist_day, realized_pnl_paise, charges_paise, trades_today)
            .map_err(CoreErr::from)?)
    }

    /// An earlier process's open position, into the engine's book (heat, the
    /// instrument busy). The paper venue does not hold it: the start pauses
    /// until the operator accepts (start-up reconciliation).
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
            self.kernel.engine_mut(),
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

    fn restore_cooldown(&mut self, instrument_token: u32, closed_ts_ns: i64) -> PyResult<()> {
        Ok(self
            .kernel
            .engine_mut()
            .restore_cooldown(instrument_token, closed_ts_ns)
            .map_err(CoreErr::from)?)
    }

    /// Rejected ticks by reason code.
    fn tick_rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rejections_dict(py, &self.kernel)
    }
}

impl PyKernel {
    fn take(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.take_log_into(&mut self.spare);
        if self.spare.is_empty() {
            return Ok(None);
        }
        log_to_py(py, &self.spare).map(Some)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKernel>()
}
