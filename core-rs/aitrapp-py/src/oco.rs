//! The OCO bracket machine for Python: `BracketSpec`, `OcoBracket` and the
//! records it returns. Conversion only; the logic is `aitrapp_core::oco`.

use crate::errors::{CoreErr, CoreResult};
use crate::instrument::PyInstrument;
use crate::price::{price_from_py, PyPrice};
use aitrapp_core::oco::{
    AdoptedChild, Bracket, BracketSpec, Command, EntryKind, Event, Fill, FillReport, Leg, OcoError,
    OrderStatus, ScaleOut, StopKind, Trailing, Transition,
};
use aitrapp_core::{OrderTag, Side};
use pyo3::prelude::*;

fn invalid(field: &'static str, problem: String) -> CoreErr {
    OcoError::InvalidSpec { field, problem }.into()
}

/// A finite non-negative number scaled to an integer (fractions to basis
/// points, multiples to thousandths).
fn scaled(field: &'static str, value: f64, scale: f64) -> CoreResult<u32> {
    let v = (value * scale).round();
    if !value.is_finite() || v < 0.0 || v > f64::from(u32::MAX) {
        return Err(invalid(
            field,
            format!("must be a finite non-negative number, got {value}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked above
    Ok(v as u32)
}

/// Seconds (float) to nanoseconds; positive and at most a day.
fn duration_ns(field: &'static str, seconds: f64) -> CoreResult<i64> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(invalid(
            field,
            format!("must be a positive duration within a day, got {seconds}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation)] // bounded above
    Ok((seconds * 1e9).round() as i64)
}

fn tag(text: &str) -> CoreResult<OrderTag> {
    Ok(text.parse::<OrderTag>()?)
}

fn price_opt(p: Option<aitrapp_core::Price>) -> Option<PyPrice> {
    p.map(PyPrice)
}

/// What a bracket is asked to do; validated on construction.
#[pyclass(name = "BracketSpec", module = "aitrapp._core", frozen)]
#[derive(Clone)]
pub struct PyBracketSpec {
    spec: BracketSpec,
    instrument: PyInstrument,
}

impl PyBracketSpec {
    pub(crate) fn core(&self) -> (&BracketSpec, u32) {
        (&self.spec, self.instrument.0.instrument_token)
    }
}

#[pymethods]
impl PyBracketSpec {
    #[new]
    #[pyo3(signature = (
        *, plan_id, instrument, side, qty, entry_price, stop, take_profit,
        entry_type = "LIMIT", stop_type = "SL-M", stop_limit_buffer_ticks = 0,
        scale_out = false, scale_out_fraction = 0.5, tp1_r = 1.2, tp2_r = 2.0,
        trail_atr_mult = None, trail_min_step_ticks = 1, time_stop_minutes = None,
        entry_timeout_s = 300.0, square_off = None, max_modifications = 25,
        stop_fill_timeout_s = 5.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        plan_id: &str,
        instrument: PyRef<'_, PyInstrument>,
        side: &str,
        qty: u64,
        entry_price: &Bound<'_, PyAny>,
        stop: &Bound<'_, PyAny>,
        take_profit: &Bound<'_, PyAny>,
        entry_type: &str,
        stop_type: &str,
        stop_limit_buffer_ticks: u32,
        scale_out: bool,
        scale_out_fraction: f64,
        tp1_r: f64,
        tp2_r: f64,
        trail_atr_mult: Option<f64>,
        trail_min_step_ticks: u32,
        time_stop_minutes: Option<f64>,
        entry_timeout_s: f64,
        square_off: Option<&str>,
        max_modifications: u32,
        stop_fill_timeout_s: f64,
    ) -> PyResult<Self> {
        let entry = match entry_type {
            "LIMIT" => EntryKind::Limit,
            "MARKET" => EntryKind::Market,
            other => {
                return Err(invalid(
                    "entry_type",
                    format!("must be LIMIT or MARKET, got {other:?}"),
                )
                .into())
            }
        };
        let mut spec = BracketSpec::for_instrument(
            plan_id,
            &instrument.0,
            side.parse::<Side>().map_err(CoreErr::from)?,
            qty,
            entry,
            price_from_py(entry_price)?,
            price_from_py(stop)?,
            price_from_py(take_profit)?,
        )
        .map_err(CoreErr::from)?;
        spec.stop_kind = match (stop_type, stop_limit_buffer_ticks) {
            ("SL-M", 0) => StopKind::SlM,
            ("SL-M", _) => {
                return Err(invalid(
                    "stop_limit_buffer_ticks",
                    "applies only to an SL stop".into(),
                )
                .into())
            }
            ("SL", buffer_ticks) => StopKind::Sl { buffer_ticks },
            (other, _) => {
                return Err(
                    invalid("stop_type", format!("must be SL-M or SL, got {other:?}")).into(),
                )
            }
        };
        if scale_out {
            spec.scale_out = Some(ScaleOut {
                fraction_bps: scaled("scale_out_fraction", scale_out_fraction, 10_000.0)?,
                tp1_r_milli: scaled("tp1_r", tp1_r, 1_000.0)?,
                tp2_r_milli: scaled("tp2_r", tp2_r, 1_000.0)?,
            });
        }
        if let Some(k) = trail_atr_mult {
            spec.trailing = Some(Trailing {
                atr_mult_milli: scaled("trail_atr_mult", k, 1_000.0)?,
                min_step_ticks: trail_min_step_ticks,
            });
        }
        if let Some(m) = time_stop_minutes {
            spec.time_stop_ns = Some(duration_ns("time_stop_minutes", m * 60.0)?);
        }
        spec.entry_timeout_ns = duration_ns("entry_timeout_s", entry_timeout_s)?;
        spec.stop_fill_timeout_ns = duration_ns("stop_fill_timeout_s", stop_fill_timeout_s)?;
        if let Some(text) = square_off {
            spec.square_off_minute_ist =
                BracketSpec::parse_square_off(text).map_err(CoreErr::from)?;
        }
        spec.max_modifications = max_modifications;
        spec.validate().map_err(CoreErr::from)?;
        Ok(PyBracketSpec {
            spec,
            instrument: instrument.clone(),
        })
    }

    #[getter]
    fn plan_id(&self) -> &str {
        &self.spec.plan_id
    }
    #[getter]
    fn instrument(&self) -> PyInstrument {
        self.instrument.clone()
    }
    #[getter]
    fn side(&self) -> &'static str {
        self.spec.side.as_str()
    }
    #[getter]
    fn qty(&self) -> u64 {
        self.spec.qty
    }
    #[getter]
    fn entry_type(&self) -> &'static str {
        match self.spec.entry {
            EntryKind::Limit => "LIMIT",
            EntryKind::Market => "MARKET",
        }
    }
    #[getter]
    fn entry_price(&self) -> PyPrice {
        PyPrice(self.spec.entry_price)
    }
    #[getter]
    fn stop(&self) -> PyPrice {
        PyPrice(self.spec.stop)
    }
    #[getter]
    fn take_profit(&self) -> PyPrice {
        PyPrice(self.spec.take_profit)
    }
    #[getter]
    fn stop_type(&self) -> &'static str {
        match self.spec.stop_kind {
            StopKind::SlM => "SL-M",
            StopKind::Sl { .. } => "SL",
        }
    }
    #[getter]
    fn scale_out(&self) -> bool {
        self.spec.scale_out.is_some()
    }
    #[getter]
    fn entry_timeout_ns(&self) -> i64 {
        self.spec.entry_timeout_ns
    }
    #[getter]
    fn time_stop_ns(&self) -> Option<i64> {
        self.spec.time_stop_ns
    }
    /// A triggered stop not filled this long after is escalated (watchdog).
    #[getter]
    fn stop_fill_timeout_ns(&self) -> i64 {
        self.spec.stop_fill_timeout_ns
    }
    #[getter]
    fn square_off_minute_ist(&self) -> u16 {
        self.spec.square_off_minute_ist
    }
    /// Limit price of a take-profit leg: "TP", or "TP1"/"TP2" with scale-out.
    fn target_for(&self, tag_name: &str) -> PyResult<PyPrice> {
        Ok(PyPrice(self.spec.target_for(tag(tag_name)?)))
    }
    /// The validated spec as JSON (for persistence next to the plan).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.spec)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }
    fn __repr__(&self) -> String {
        format!(
            "BracketSpec({} {} {} {} @ {} stop {} tp {} plan={})",
            self.entry_type(),
            self.spec.side,
            self.spec.qty,
            self.instrument.0.tradingsymbol,
            self.spec.entry_price,
            self.spec.stop,
            self.spec.take_profit,
            self.spec.plan_id
        )
    }
}

/// One command to execute. `kind` says which fields are set:
/// PLACE_ORDER / EXIT_AT_MARKET (order fields), MODIFY (client_order_id, tag,
/// seq, qty = new total quantity, price, trigger), CANCEL (client_order_id,
/// tag), ALERT (severity, alert_code, message).
#[pyclass(name = "OcoCommand", module = "aitrapp._core", frozen, get_all)]
#[derive(Clone)]
pub struct PyOcoCommand {
    kind: &'static str,
    client_order_id: Option<String>,
    tag: Option<String>,
    role: Option<&'static str>,
    side: Option<&'static str>,
    qty: Option<u64>,
    order_type: Option<&'static str>,
    price: Option<PyPrice>,
    trigger: Option<PyPrice>,
    seq: Option<u32>,
    exit_reason: Option<&'static str>,
    severity: Option<&'static str>,
    alert_code: Option<&'static str>,
    message: Option<String>,
}

impl PyOcoCommand {
    fn new(c: &Command) -> Self {
        let mut out = PyOcoCommand {
            kind: c.kind(),
            client_order_id: None,
            tag: None,
            role: None,
            side: None,
            qty: None,
            order_type: None,
            price: None,
            trigger: None,
            seq: None,
            exit_reason: None,
            severity: None,
            alert_code: None,
            message: None,
        };
        match c {
            Command::PlaceOrder(o) | Command::ExitAtMarket(o) => {
                out.client_order_id = Some(o.client_order_id.clone());
                out.tag = Some(o.tag.to_string());
                out.role = Some(o.role.as_str());
                out.side = Some(o.side.as_str());
                out.qty = Some(o.qty);
                out.order_type = Some(o.order_type.as_str());
                out.price = price_opt(o.price);
                out.trigger = price_opt(o.trigger);
                out.exit_reason = o.reason.map(|r| r.as_str());
            }
            Command::Modify(m) => {
                out.client_order_id = Some(m.client_order_id.clone());
                out.tag = Some(m.tag.to_string());
                out.seq = Some(m.seq);
                out.qty = Some(m.qty);
                out.price = price_opt(m.price);
                out.trigger = price_opt(m.trigger);
                out.order_type = m.order_type.map(|t| t.as_str());
            }
            Command::Cancel {
                client_order_id,
                tag,
            } => {
                out.client_order_id = Some(client_order_id.clone());
                out.tag = Some(tag.to_string());
            }
            Command::Alert(a) => {
                out.severity = Some(a.severity.as_str());
                out.alert_code = Some(a.code.as_str());
                out.message = Some(a.reason.clone());
            }
        }
        out
    }
}

#[pymethods]
impl PyOcoCommand {
    fn __repr__(&self) -> String {
        match self.kind {
            "ALERT" => format!(
                "OcoCommand(ALERT {} {}: {})",
                self.severity.unwrap_or(""),
                self.alert_code.unwrap_or(""),
                self.message.as_deref().unwrap_or("")
            ),
            kind => {
                let mut out = format!(
                    "OcoCommand({kind} {}",
                    self.client_order_id.as_deref().unwrap_or("")
                );
                let parts = [
                    self.side.map(str::to_string),
                    self.order_type.map(str::to_string),
                    self.qty.map(|q| format!("qty={q}")),
                    self.price.map(|p| format!("price={}", p.0)),
                    self.trigger.map(|p| format!("trigger={}", p.0)),
                    self.seq.map(|s| format!("seq={s}")),
                    self.exit_reason.map(|r| format!("reason={r}")),
                ];
                for p in parts.into_iter().flatten() {
                    out.push(' ');
                    out.push_str(&p);
                }
                out.push(')');
                out
            }
        }
    }
}

/// A fill the bracket just learnt of: `qty` new units worth `notional_paise`.
#[pyclass(name = "OcoFill", module = "aitrapp._core", frozen, get_all)]
#[derive(Clone)]
pub struct PyOcoFill {
    client_order_id: String,
    tag: String,
    role: &'static str,
    side: &'static str,
    qty: u64,
    notional_paise: i64,
    cum_filled: u64,
    avg_price: PyPrice,
    exit_reason: Option<&'static str>,
}

impl PyOcoFill {
    fn new(f: &FillReport) -> Self {
        PyOcoFill {
            client_order_id: f.client_order_id.clone(),
            tag: f.tag.to_string(),
            role: f.role.as_str(),
            side: f.side.as_str(),
            qty: f.qty,
            notional_paise: f.notional_paise,
            cum_filled: f.cum_filled,
            avg_price: PyPrice(f.avg_price),
            exit_reason: f.reason.map(|r| r.as_str()),
        }
    }
}

#[pymethods]
impl PyOcoFill {
    fn __repr__(&self) -> String {
        format!(
            "OcoFill({} {} {} notional={} cum={} reason={:?})",
            self.client_order_id,
            self.side,
            self.qty,
            self.notional_paise,
            self.cum_filled,
            self.exit_reason
        )
    }
}

/// The outcome of one event: execute `commands` in order.
#[pyclass(name = "OcoTransition", module = "aitrapp._core", frozen, get_all)]
pub struct PyOcoTransition {
    from_state: &'static str,
    to_state: &'static str,
    event: &'static str,
    event_detail: String,
    now_ns: i64,
    changed: bool,
    commands: Vec<PyOcoCommand>,
    fills: Vec<PyOcoFill>,
}

impl PyOcoTransition {
    fn new(t: &Transition, e: &Event, now_ns: i64) -> Self {
        PyOcoTransition {
            from_state: t.from.as_str(),
            to_state: t.to.as_str(),
            event: e.kind(),
            event_detail: e.to_string(),
            now_ns,
            changed: t.changed,
            commands: t.commands.iter().map(PyOcoCommand::new).collect(),
            fills: t.fills.iter().map(PyOcoFill::new).collect(),
        }
    }
}

#[pymethods]
impl PyOcoTransition {
    fn __repr__(&self) -> String {
        format!(
            "OcoTransition({} -> {} on {} commands={} fills={})",
            self.from_state,
            self.to_state,
            self.event_detail,
            self.commands.len(),
            self.fills.len()
        )
    }
}

/// One order of a bracket as the machine knows it.
#[pyclass(name = "OcoOrder", module = "aitrapp._core", frozen, get_all)]
pub struct PyOcoOrder {
    client_order_id: String,
    tag: String,
    role: &'static str,
    side: &'static str,
    order_type: &'static str,
    status: &'static str,
    /// Confirmed total quantity.
    qty: u64,
    /// Total quantity last asked for (differs while a modification is in flight).
    wanted_qty: u64,
    filled: u64,
    avg_price: PyPrice,
    price: Option<PyPrice>,
    trigger: Option<PyPrice>,
    cancel_sent: bool,
    /// Exchange time the machine first asked to cancel it.
    cancel_sent_ns: Option<i64>,
    /// Stops: time the bracket learnt the trigger was hit.
    triggered_ns: Option<i64>,
    /// Stops: the watchdog no longer counts on it to exit its part.
    abandoned: bool,
    modifications: u32,
    exit_reason: Option<&'static str>,
    is_working: bool,
}

impl PyOcoOrder {
    fn new(l: &Leg) -> Self {
        PyOcoOrder {
            client_order_id: l.client_order_id.clone(),
            tag: l.tag.to_string(),
            role: l.role.as_str(),
            side: l.side.as_str(),
            order_type: l.order_type.as_str(),
            status: l.status.as_str(),
            qty: l.qty,
            wanted_qty: l.wanted_qty(),
            filled: l.filled,
            avg_price: PyPrice(l.avg_price),
            price: price_opt(l.price),
            trigger: price_opt(l.trigger),
            cancel_sent: l.cancel_sent,
            cancel_sent_ns: l.cancel_sent_ns,
            triggered_ns: l.triggered_ns,
            abandoned: l.abandoned,
            modifications: l.modifications,
            exit_reason: l.reason.map(|r| r.as_str()),
            is_working: l.is_live(),
        }
    }
}

#[pymethods]
impl PyOcoOrder {
    fn __repr__(&self) -> String {
        format!(
            "OcoOrder({} {} {} {}/{} {})",
            self.client_order_id, self.side, self.order_type, self.filled, self.qty, self.status
        )
    }
}

/// A child order of a bracket adopted after a restart, as the broker reports it.
#[pyclass(name = "AdoptedOrder", module = "aitrapp._core", frozen)]
#[derive(Clone)]
pub struct PyAdoptedOrder {
    c: AdoptedChild,
}

impl PyAdoptedOrder {
    pub(crate) fn core(&self) -> &AdoptedChild {
        &self.c
    }
}

#[pymethods]
impl PyAdoptedOrder {
    /// `tag_name`: STOP, TP, TP1, TP2 (or EXIT / EXITn); `qty` is the total
    /// order quantity, `filled` / `avg_price` cumulative; `working` while the
    /// broker still has it OPEN / TRIGGER PENDING.
    #[new]
    #[pyo3(signature = (
        tag_name, qty, filled = 0, avg_price = None, *, working = true,
        client_order_id = None, price = None, trigger = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        tag_name: &str,
        qty: u64,
        filled: u64,
        avg_price: Option<&Bound<'_, PyAny>>,
        working: bool,
        client_order_id: Option<String>,
        price: Option<&Bound<'_, PyAny>>,
        trigger: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let opt = |v: Option<&Bound<'_, PyAny>>| v.map(price_from_py).transpose();
        Ok(PyAdoptedOrder {
            c: AdoptedChild {
                tag: tag(tag_name)?,
                client_order_id,
                qty,
                filled,
                avg_price: opt(avg_price)?.unwrap_or(aitrapp_core::Price::ZERO),
                price: opt(price)?,
                trigger: opt(trigger)?,
                working,
            },
        })
    }

    #[getter]
    fn tag(&self) -> String {
        self.c.tag.to_string()
    }

    #[getter]
    fn qty(&self) -> u64 {
        self.c.qty
    }

    #[getter]
    fn filled(&self) -> u64 {
        self.c.filled
    }

    #[getter]
    fn working(&self) -> bool {
        self.c.working
    }

    #[getter]
    fn client_order_id(&self) -> Option<String> {
        self.c.client_order_id.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "AdoptedOrder({}, qty={}, filled={}, working={})",
            self.c.tag, self.c.qty, self.c.filled, self.c.working
        )
    }
}

/// The bracket state machine. Feed it events with `now_ns` (UTC ns); execute
/// the returned commands in order and feed back what the broker answers.
#[pyclass(name = "OcoBracket", module = "aitrapp._core")]
pub struct PyOcoBracket {
    b: Bracket,
    spec: PyBracketSpec,
}

impl PyOcoBracket {
    fn run(&mut self, now_ns: i64, e: Event) -> CoreResult<PyOcoTransition> {
        let t = self.b.handle(now_ns, &e)?;
        Ok(PyOcoTransition::new(&t, &e, now_ns))
    }
}

#[pymethods]
impl PyOcoBracket {
    /// Validates `spec` and returns the bracket and its first commands
    /// (placing the ENTRY).
    #[staticmethod]
    fn open(
        spec: PyRef<'_, PyBracketSpec>,
        now_ns: i64,
    ) -> PyResult<(PyOcoBracket, Vec<PyOcoCommand>)> {
        let (b, cmds) = Bracket::open(spec.spec.clone(), now_ns).map_err(CoreErr::from)?;
        let cmds = cmds.iter().map(PyOcoCommand::new).collect();
        Ok((
            PyOcoBracket {
                b,
                spec: spec.clone(),
            },
            cmds,
        ))
    }

    /// Rebuilds a bracket of an earlier process (after a restart): the entry
    /// filled `entry_filled` at `entry_avg`, `children` as the broker reports
    /// them. Returns the bracket and the commands that complete it (e.g.
    /// placing a missing stop).
    #[staticmethod]
    fn adopt(
        spec: PyRef<'_, PyBracketSpec>,
        now_ns: i64,
        entry_filled: u64,
        entry_avg: &Bound<'_, PyAny>,
        children: Vec<PyRef<'_, PyAdoptedOrder>>,
    ) -> PyResult<(PyOcoBracket, Vec<PyOcoCommand>)> {
        let children: Vec<AdoptedChild> = children.iter().map(|c| c.c.clone()).collect();
        let (b, cmds) = Bracket::adopt(
            spec.spec.clone(),
            now_ns,
            entry_filled,
            price_from_py(entry_avg)?,
            &children,
        )
        .map_err(CoreErr::from)?;
        let cmds = cmds.iter().map(PyOcoCommand::new).collect();
        Ok((
            PyOcoBracket {
                b,
                spec: spec.clone(),
            },
            cmds,
        ))
    }

    /// A broker order snapshot for order `tag` (ENTRY, STOP, TP, TP1, TP2,
    /// EXIT, EXITn): Kite status (PENDING, OPEN, TRIGGER PENDING, COMPLETE,
    /// CANCELLED, REJECTED, EXPIRED), cumulative `filled` and `avg_price`.
    #[pyo3(signature = (tag_name, status, filled, avg_price, *, now_ns, reason = None))]
    fn on_order(
        &mut self,
        tag_name: &str,
        status: &str,
        filled: u64,
        avg_price: &Bound<'_, PyAny>,
        now_ns: i64,
        reason: Option<&str>,
    ) -> PyResult<PyOcoTransition> {
        let status: OrderStatus = status.parse().map_err(CoreErr::from)?;
        let fill = Fill::new(filled, price_from_py(avg_price)?);
        let e = Event::from_order_status(tag(tag_name)?, status, fill, reason);
        Ok(self.run(now_ns, e)?)
    }

    /// The venue reports that the stop `tag` triggered (TRIGGER PENDING ->
    /// OPEN); `on_order(tag, "OPEN", 0, ...)` for a STOP means the same.
    #[pyo3(signature = (tag_name, *, now_ns))]
    fn on_triggered(&mut self, tag_name: &str, now_ns: i64) -> PyResult<PyOcoTransition> {
        let e = Event::ChildTriggered {
            tag: tag(tag_name)?,
        };
        Ok(self.run(now_ns, e)?)
    }

    /// Our cancel of `tag` was refused because the order had already filled.
    #[pyo3(signature = (tag_name, *, now_ns))]
    fn on_cancel_rejected_filled(
        &mut self,
        tag_name: &str,
        now_ns: i64,
    ) -> PyResult<PyOcoTransition> {
        let e = Event::CancelRejectedFilled {
            tag: tag(tag_name)?,
        };
        Ok(self.run(now_ns, e)?)
    }

    #[pyo3(signature = (tag_name, seq, *, now_ns))]
    fn on_modify_ack(
        &mut self,
        tag_name: &str,
        seq: u32,
        now_ns: i64,
    ) -> PyResult<PyOcoTransition> {
        let e = Event::ModifyAck {
            tag: tag(tag_name)?,
            seq,
        };
        Ok(self.run(now_ns, e)?)
    }

    #[pyo3(signature = (tag_name, seq, reason, *, now_ns))]
    fn on_modify_rejected(
        &mut self,
        tag_name: &str,
        seq: u32,
        reason: &str,
        now_ns: i64,
    ) -> PyResult<PyOcoTransition> {
        let e = Event::ModifyRejected {
            tag: tag(tag_name)?,
            seq,
            reason: reason.to_string(),
        };
        Ok(self.run(now_ns, e)?)
    }

    /// The kill switch. ``convert_stop``: a working SL-M stop becomes the
    /// market exit by one modify (targets cancelled once it is answered), as
    /// the kernel's flatten does; otherwise everything is cancelled and the
    /// open quantity exits at market (a stop's part once its cancel is
    /// confirmed).
    #[pyo3(signature = (*, now_ns, convert_stop = false))]
    fn flatten(&mut self, now_ns: i64, convert_stop: bool) -> PyResult<PyOcoTransition> {
        Ok(self.run(now_ns, Event::Flatten { convert_stop })?)
    }

    /// Timers: entry timeout, time stop, end-of-day square-off, exit retries.
    fn advance_time(&mut self, now_ns: i64) -> PyResult<PyOcoTransition> {
        Ok(self.run(now_ns, Event::TimeAdvance)?)
    }

    /// Last price (and ATR, for trailing) of the instrument.
    #[pyo3(signature = (ltp, *, now_ns, atr = None))]
    fn on_price(
        &mut self,
        ltp: &Bound<'_, PyAny>,
        now_ns: i64,
        atr: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyOcoTransition> {
        let atr = atr.map(price_from_py).transpose()?;
        let e = Event::PriceUpdate {
            ltp: price_from_py(ltp)?,
            atr,
        };
        Ok(self.run(now_ns, e)?)
    }

    #[getter]
    fn spec(&self) -> PyBracketSpec {
        self.spec.clone()
    }
    #[getter]
    fn plan_id(&self) -> &str {
        self.b.plan_id()
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.b.state().as_str()
    }
    #[getter]
    fn is_terminal(&self) -> bool {
        self.b.is_terminal()
    }
    #[getter]
    fn entry_filled(&self) -> u64 {
        self.b.entry_filled()
    }
    #[getter]
    fn entry_avg_price(&self) -> PyPrice {
        PyPrice(self.b.entry_avg_price())
    }
    /// Quantity filled in the exit direction (stop, targets, market exits).
    #[getter]
    fn exited_qty(&self) -> u64 {
        self.b.exited_qty()
    }
    #[getter]
    fn corrected_qty(&self) -> u64 {
        self.b.corrected_qty()
    }
    /// Open position in the entry direction (negative after an overfill).
    #[getter]
    fn net_qty(&self) -> i64 {
        self.b.net_qty()
    }
    #[getter]
    fn stop_target(&self) -> PyPrice {
        PyPrice(self.b.stop_target())
    }
    #[getter]
    fn closing_reason(&self) -> Option<&'static str> {
        self.b.closing_reason().map(|r| r.as_str())
    }
    /// Gross realized PnL in paise once flat (None while open or never filled).
    #[getter]
    fn realized_pnl_paise(&self) -> Option<i64> {
        self.b.realized_pnl_paise()
    }
    #[getter]
    fn exit_blocked(&self) -> bool {
        self.b.exit_blocked()
    }
    #[getter]
    fn created_ns(&self) -> i64 {
        self.b.created_ns()
    }
    #[getter]
    fn square_off_at_ns(&self) -> i64 {
        self.b.square_off_at_ns()
    }
    /// The earliest exchange time at which `advance_time` could change the
    /// bracket (timers, the triggered-stop watchdog); None once terminal.
    #[getter]
    fn next_deadline_ns(&self) -> Option<i64> {
        self.b.next_deadline_ns()
    }
    /// The last price the bracket was told of (`on_price`).
    #[getter]
    fn last_price(&self) -> Option<PyPrice> {
        price_opt(self.b.last_price())
    }
    /// Triggered-stop watchdog escalations so far (0, 1 or 2).
    #[getter]
    fn watchdog_escalations(&self) -> u32 {
        self.b.watchdog_escalations()
    }
    /// Exchange time the machine first asked to cancel order `tag_name`.
    fn cancel_sent_at(&self, tag_name: &str) -> PyResult<Option<i64>> {
        Ok(self.b.cancel_sent_at(tag(tag_name)?))
    }
    /// Whether a fill of `tag_name` at `fill_ns` came before our cancel
    /// (sent at `cancel_sent_at`) could have reached the venue `latency_ns`
    /// later; true if no cancel was sent. Classifies a double exit as a race.
    fn fill_raced_cancel(&self, tag_name: &str, fill_ns: i64, latency_ns: i64) -> PyResult<bool> {
        Ok(self
            .b
            .fill_raced_cancel(tag(tag_name)?, fill_ns, latency_ns))
    }
    /// Every order placed, entry first.
    fn orders(&self) -> Vec<PyOcoOrder> {
        self.b.legs().iter().map(PyOcoOrder::new).collect()
    }
    /// Orders the broker may still execute.
    fn working_orders(&self) -> Vec<PyOcoOrder> {
        self.b.working_legs().map(PyOcoOrder::new).collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "OcoBracket({} {} filled={} net={})",
            self.b.plan_id(),
            self.b.state(),
            self.b.entry_filled(),
            self.b.net_qty()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBracketSpec>()?;
    m.add_class::<PyOcoBracket>()?;
    m.add_class::<PyAdoptedOrder>()?;
    m.add_class::<PyOcoCommand>()?;
    m.add_class::<PyOcoFill>()?;
    m.add_class::<PyOcoTransition>()?;
    m.add_class::<PyOcoOrder>()?;
    Ok(())
}
