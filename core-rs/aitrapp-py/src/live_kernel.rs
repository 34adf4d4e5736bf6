//! `LiveKernel`: the trading kernel on the external venue (Kite), for the
//! Python shell. Ticks and broker reports in; event batches and the
//! commands to execute out. Conversion only: the rules live in the core.

use crate::engine::{restore_bracket_into, PyPortfolioSnapshot};
use crate::errors::CoreErr;
use crate::instrument::PyInstrument;
use crate::kernel::{counters_dict, log_to_py, rejections_dict};
use crate::oco::{PyAdoptedOrder, PyBracketSpec};
use aitrapp_core::kernel::{AdoptedBracket, BracketTemplate, EventLog, Kernel};
use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{
    ExternalUpdate, ExternalVenue, ExternalVenueConfig, Protection, VenueCommand, VenueStatus,
};
use aitrapp_core::{Engine, EngineConfig, EngineError, Price, RawTick};
use aitrapp_core::{TickColumns, TradingState};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn input(e: impl std::fmt::Display) -> CoreErr {
    CoreErr::from(EngineError::Input(e.to_string()))
}

fn status(text: &str) -> Result<VenueStatus, CoreErr> {
    Ok(match text {
        "PENDING" | "OPEN PENDING" => VenueStatus::Pending,
        "OPEN" => VenueStatus::Open,
        "TRIGGER PENDING" => VenueStatus::TriggerPending,
        "COMPLETE" => VenueStatus::Complete,
        "CANCELLED" => VenueStatus::Cancelled,
        "REJECTED" => VenueStatus::Rejected,
        other => {
            return Err(input(format!(
                "status: {other:?} is not PENDING, OPEN, TRIGGER PENDING, COMPLETE, \
                 CANCELLED or REJECTED"
            )))
        }
    })
}

fn rupees_to_price(field: &str, rupees: f64) -> Result<Price, CoreErr> {
    if !rupees.is_finite() || !(0.0..=1e12).contains(&rupees) {
        return Err(input(format!(
            "{field}: must be a finite rupee amount >= 0, got {rupees}"
        )));
    }
    #[allow(clippy::cast_possible_truncation)] // bounded just above
    Ok(Price::from_paise((rupees * 100.0).round() as i64))
}

fn paise(p: Option<Price>) -> Option<i64> {
    p.map(Price::paise)
}

fn command_to_py<'py>(py: Python<'py>, c: &VenueCommand) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("order_id", c.order_id())?;
    match c {
        VenueCommand::Place { order, .. } => {
            d.set_item("action", "PLACE")?;
            d.set_item("client_order_id", &order.client_order_id)?;
            d.set_item("tag", &order.tag)?;
            d.set_item("token", order.token)?;
            d.set_item("side", order.side.as_str())?;
            d.set_item("qty", order.qty)?;
            d.set_item("order_type", order.order_type.as_str())?;
            d.set_item("price", paise(order.price))?;
            d.set_item("trigger", paise(order.trigger))?;
            let protection = match order.protection {
                Protection::None => None,
                Protection::Auto => Some(-1.0),
                Protection::Pct(p) => Some(p),
            };
            d.set_item("market_protection", protection)?;
        }
        VenueCommand::Modify {
            client_order_id,
            change,
            ..
        } => {
            d.set_item("action", "MODIFY")?;
            d.set_item("client_order_id", client_order_id)?;
            d.set_item("qty", change.qty)?;
            d.set_item("price", paise(change.price))?;
            d.set_item("trigger", paise(change.trigger))?;
            d.set_item("order_type", change.order_type.map(OrderType::as_str))?;
        }
        VenueCommand::Cancel {
            client_order_id, ..
        } => {
            d.set_item("action", "CANCEL")?;
            d.set_item("client_order_id", client_order_id)?;
        }
    }
    Ok(d)
}

/// Engine, OCO brackets and the external venue (Kite) in one loop. Built like
/// `Kernel`, with the external venue's settings (`first_order_id`,
/// `command_latency_ns`, `max_modifications`) as `venue_json`.
/// The adopted children's (client order id, venue id), and the events.
type Adopted = (Vec<(String, u64)>, Option<Py<PyDict>>);

#[pyclass(name = "LiveKernel", module = "aitrapp._core")]
pub struct PyLiveKernel {
    kernel: Kernel<ExternalVenue>,
    /// The event log handed out, reused from call to call (no fresh columns per tick).
    spare: EventLog,
}

impl PyLiveKernel {
    fn take(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.take_log_into(&mut self.spare);
        if self.spare.is_empty() {
            return Ok(None);
        }
        log_to_py(py, &self.spare).map(Some)
    }
}

#[pymethods]
impl PyLiveKernel {
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
        let venue_config: ExternalVenueConfig =
            serde_json::from_str(venue_json).map_err(|e| input(format!("venue: {e}")))?;
        let venue = ExternalVenue::new(venue_config).map_err(CoreErr::from)?;
        let template = BracketTemplate::from_json(bracket_json).map_err(CoreErr::from)?;
        let engine = Engine::new(config, instruments).map_err(CoreErr::from)?;
        let kernel = Kernel::new(engine, venue, template).map_err(CoreErr::from)?;
        Ok(PyLiveKernel {
            kernel,
            spare: EventLog::default(),
        })
    }

    #[getter]
    fn config_sha(&self) -> &str {
        self.kernel.engine().config_sha()
    }

    /// One tick from the live feed. Returns the events it produced, or None;
    /// the orders it queued come from `take_commands`.
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

    /// Columns of ticks (a replay through the live shell; sequences of
    /// int64 tokens/times/quantities and float64 rupee prices, NaN absent).
    #[pyo3(signature = (tokens, ts_ns, last_price, last_qty, volume, bid=None, ask=None, oi=None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        py: Python<'_>,
        tokens: Vec<i64>,
        ts_ns: Vec<i64>,
        last_price: Vec<f64>,
        last_qty: Vec<i64>,
        volume: Vec<i64>,
        bid: Option<Vec<f64>>,
        ask: Option<Vec<f64>>,
        oi: Option<Vec<i64>>,
    ) -> PyResult<Option<Py<PyDict>>> {
        let cols = TickColumns {
            token: &tokens,
            ts_ns: &ts_ns,
            last_price: &last_price,
            last_qty: &last_qty,
            volume: &volume,
            bid: bid.as_deref(),
            ask: ask.as_deref(),
            oi: oi.as_deref(),
        };
        self.kernel.run(&cols).map_err(CoreErr::from)?;
        self.take(py)
    }

    fn advance_time(&mut self, py: Python<'_>, ts_ns: i64) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.advance_time(ts_ns);
        self.take(py)
    }

    fn finish(
        &mut self,
        py: Python<'_>,
        ts_ns: i64,
        until_ns: i64,
    ) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.finish(ts_ns, until_ns);
        self.take(py)
    }

    fn flatten(&mut self, py: Python<'_>, ts_ns: i64) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.flatten(ts_ns);
        self.take(py)
    }

    /// The commands queued since the last call, in order: dicts with
    /// `action` (PLACE, MODIFY, CANCEL), `order_id` (the venue-local id),
    /// `client_order_id` and the order's fields (prices in paise).
    fn take_commands<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.kernel
            .take_commands()
            .iter()
            .map(|c| command_to_py(py, c))
            .collect()
    }

    /// One broker report (cumulative fill, average in rupees). Returns the
    /// events it caused, or None when it told nothing new (unknown order,
    /// duplicate, stale reorder). A malformed report raises.
    #[pyo3(signature = (client_order_id, status, filled_qty, avg_price, ts_ns, message=None))]
    #[allow(clippy::too_many_arguments)]
    fn on_order_update(
        &mut self,
        py: Python<'_>,
        client_order_id: &str,
        status: &str,
        filled_qty: u64,
        avg_price: f64,
        ts_ns: i64,
        message: Option<String>,
    ) -> PyResult<Option<Py<PyDict>>> {
        let u = ExternalUpdate {
            client_order_id: client_order_id.to_string(),
            ts_ns,
            status: self::status(status)?,
            filled_qty,
            avg_price: rupees_to_price("avg_price", avg_price)?,
            message,
        };
        self.kernel.on_order_update(u).map_err(CoreErr::from)?;
        self.take(py)
    }

    /// The placement of `order_id` failed at the broker: its bracket hears
    /// REJECTED with `message`.
    fn on_place_failed(
        &mut self,
        py: Python<'_>,
        order_id: u64,
        ts_ns: i64,
        message: &str,
    ) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.on_place_failed(order_id, ts_ns, message);
        self.take(py)
    }

    /// The broker's answer to the oldest unanswered modification of
    /// `order_id`: accepted (`refusal` None) or refused with its message.
    #[pyo3(signature = (order_id, ts_ns, refusal=None))]
    fn on_modify_answer(
        &mut self,
        py: Python<'_>,
        order_id: u64,
        ts_ns: i64,
        refusal: Option<&str>,
    ) -> PyResult<Option<Py<PyDict>>> {
        self.kernel
            .on_modify_answer(order_id, ts_ns, refusal)
            .map_err(CoreErr::from)?;
        self.take(py)
    }

    /// The broker refused our cancel of `order_id` with `message`.
    fn on_cancel_refused(
        &mut self,
        py: Python<'_>,
        order_id: u64,
        ts_ns: i64,
        message: &str,
    ) -> PyResult<Option<Py<PyDict>>> {
        self.kernel.on_cancel_refused(order_id, ts_ns, message);
        self.take(py)
    }

    /// Takes over an open bracket of an earlier process at `now_ns` (restore
    /// the engine's position first). Returns [(client_order_id, order_id)]
    /// of its adopted children and the events; the missing pieces (a stop,
    /// a target) are queued as commands.
    #[allow(clippy::too_many_arguments)]
    fn adopt(
        &mut self,
        py: Python<'_>,
        now_ns: i64,
        spec: PyRef<'_, PyBracketSpec>,
        strategy: &str,
        entry_filled: u64,
        entry_avg: f64,
        children: Vec<PyRef<'_, PyAdoptedOrder>>,
    ) -> PyResult<Adopted> {
        let (spec, token) = spec.core();
        let children = children
            .iter()
            .map(|c| {
                let c = c.core().clone();
                let status = match (c.working, c.tag) {
                    (true, tag) if tag.is_stop() && c.filled == 0 => VenueStatus::TriggerPending,
                    (true, _) => VenueStatus::Open,
                    (false, _) if c.filled == c.qty => VenueStatus::Complete,
                    (false, _) => VenueStatus::Cancelled,
                };
                (c, status)
            })
            .collect();
        let adopted = AdoptedBracket {
            spec: spec.clone(),
            token,
            strategy: strategy.to_string(),
            entry_filled,
            entry_avg: rupees_to_price("entry_avg", entry_avg)?,
            children,
        };
        let ids = self.kernel.adopt(now_ns, adopted).map_err(CoreErr::from)?;
        Ok((ids, self.take(py)?))
    }

    /// The venue-local id of a client order id (None: not this process's).
    fn order_id_of(&self, client_order_id: &str) -> Option<u64> {
        self.kernel.venue().order_id_of(client_order_id)
    }

    /// Commands queued and not yet taken.
    #[getter]
    fn pending_commands(&self) -> usize {
        self.kernel.venue().pending_commands()
    }

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

    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        counters_dict(py, &self.kernel)
    }

    fn portfolio(&self) -> PyPortfolioSnapshot {
        self.kernel.engine().portfolio().into()
    }

    fn last_price(&self, token: i64) -> Option<f64> {
        self.kernel
            .engine()
            .last_price(token)
            .map(aitrapp_core::Price::to_rupees_f64)
    }

    fn tick_rejections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rejections_dict(py, &self.kernel)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLiveKernel>()
}
