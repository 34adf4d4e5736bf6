//! The paper venue for Python: `SimVenue` and the `VenueUpdate` it returns.
//! Conversion only (feed rupees to paise, enums to text); the rules are
//! `aitrapp_core::venue`.

use crate::engine::column;
use crate::errors::CoreResult;
use crate::instrument::PyInstrument;
use aitrapp_core::venue::{
    validation, ClientRequest, Protection, Quote, SimVenue, SimVenueConfig, VenueModify,
    VenueUpdate,
};
use aitrapp_core::Price;
use pyo3::prelude::*;

/// One order update, Kite-shaped; prices in paise (None when absent).
#[pyclass(name = "VenueUpdate", module = "aitrapp._core", frozen, get_all)]
pub struct PyVenueUpdate {
    ts_ns: i64,
    order_id: u64,
    client_order_id: String,
    /// Kite's status: OPEN PENDING, OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED.
    status: &'static str,
    filled_qty: u64,
    avg_price_paise: i64,
    filled_value_paise: i64,
    last_fill_qty: u64,
    last_fill_price_paise: i64,
    triggered: bool,
    modified: bool,
    qty: u64,
    price_paise: Option<i64>,
    trigger_paise: Option<i64>,
    order_type: &'static str,
    protection_price_paise: Option<i64>,
    message: Option<String>,
}

impl From<&VenueUpdate> for PyVenueUpdate {
    fn from(u: &VenueUpdate) -> Self {
        PyVenueUpdate {
            ts_ns: u.ts_ns,
            order_id: u.order_id,
            client_order_id: u.client_order_id.clone(),
            status: u.status.as_str(),
            filled_qty: u.filled_qty,
            avg_price_paise: u.avg_price.paise(),
            filled_value_paise: u.filled_value,
            last_fill_qty: u.last_fill_qty,
            last_fill_price_paise: u.last_fill_price.paise(),
            triggered: u.triggered,
            modified: u.modified,
            qty: u.qty,
            price_paise: u.price.map(Price::paise),
            trigger_paise: u.trigger.map(Price::paise),
            order_type: u.order_type.as_str(),
            protection_price_paise: u.protection_price.map(Price::paise),
            message: u.message.clone(),
        }
    }
}

/// A feed price (rupees) in paise; None unless finite and positive.
fn feed_paise(rupees: f64) -> Option<Price> {
    (rupees > 0.0)
        .then(|| Price::from_rupees_f64(rupees).ok())
        .flatten()
        .filter(|p| p.paise() > 0)
}

/// `-1` asks for Kite's automatic band; None and 0 mean none (rejected for
/// MARKET / SL-M); anything else is a percentage, checked by the venue.
fn protection(mp: Option<f64>) -> Protection {
    match mp {
        None => Protection::None,
        Some(-1.0) => Protection::Auto,
        Some(p) => Protection::Pct(p),
    }
}

fn updates(out: &[VenueUpdate]) -> Vec<PyVenueUpdate> {
    out.iter().map(PyVenueUpdate::from).collect()
}

/// Kite's order behaviour simulated against the ticks; built once from the
/// JSON of a validated `aitrapp.brokers.paper_config.PaperConfig`.
#[pyclass(name = "SimVenue", module = "aitrapp._core")]
pub struct PySimVenue {
    venue: SimVenue,
    /// Reused output buffer: a tick that changes nothing allocates nothing here.
    out: Vec<VenueUpdate>,
}

impl PySimVenue {
    fn take(&mut self) -> Vec<PyVenueUpdate> {
        let ups = updates(&self.out);
        self.out.clear();
        ups
    }
}

#[pymethods]
impl PySimVenue {
    #[new]
    fn new(config_json: &str, instruments: Vec<PyRef<'_, PyInstrument>>) -> CoreResult<Self> {
        let config = SimVenueConfig::from_json(config_json)?;
        let insts: Vec<_> = instruments.iter().map(|i| i.0.clone()).collect();
        Ok(PySimVenue {
            venue: SimVenue::new(config, &insts)?,
            out: Vec::new(),
        })
    }

    /// A client request at `now_ns` (rate limit counted on `rate_clock_ns`):
    /// its order id and the updates it caused (a REJECTED one, or none).
    #[pyo3(signature = (
        now_ns, rate_clock_ns, *, client_order_id, tag, exchange, tradingsymbol, token,
        side, order_type, product, validity, qty, price_paise, trigger_paise, market_protection
    ))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        now_ns: i64,
        rate_clock_ns: i64,
        client_order_id: String,
        tag: String,
        exchange: String,
        tradingsymbol: String,
        token: i64,
        side: String,
        order_type: String,
        product: String,
        validity: String,
        qty: i64,
        price_paise: Option<i64>,
        trigger_paise: Option<i64>,
        market_protection: Option<f64>,
    ) -> (u64, Vec<PyVenueUpdate>) {
        let req = ClientRequest {
            client_order_id,
            tag,
            exchange,
            tradingsymbol,
            token,
            side,
            order_type,
            product,
            validity,
            qty,
            price: price_paise,
            trigger: trigger_paise,
            protection: protection(market_protection),
        };
        let id = self
            .venue
            .submit_request(now_ns, rate_clock_ns, req, &mut self.out);
        (id, self.take())
    }

    /// Raises `VenueError` (with Kite's message) when Kite would refuse it at once.
    /// A negative quantity is refused like zero.
    #[pyo3(signature = (now_ns, order_id, *, qty=None, price_paise=None, trigger_paise=None, order_type=None))]
    fn modify(
        &mut self,
        now_ns: i64,
        order_id: u64,
        qty: Option<i64>,
        price_paise: Option<i64>,
        trigger_paise: Option<i64>,
        order_type: Option<&str>,
    ) -> CoreResult<()> {
        let order_type = order_type
            .map(validation::parse_order_type)
            .transpose()
            .map_err(aitrapp_core::venue::VenueError::Refused)?;
        let m = VenueModify {
            qty: qty.map(|q| u64::try_from(q).unwrap_or(0)),
            price: price_paise.map(Price::from_paise),
            trigger: trigger_paise.map(Price::from_paise),
            order_type,
        };
        Ok(self.venue.modify(now_ns, order_id, m)?)
    }

    fn cancel(&mut self, now_ns: i64, order_id: u64) -> CoreResult<()> {
        Ok(self.venue.cancel(now_ns, order_id)?)
    }

    fn settle(&mut self) -> Vec<PyVenueUpdate> {
        self.venue.settle(&mut self.out);
        self.take()
    }

    fn advance_to(&mut self, ts_ns: i64) -> Vec<PyVenueUpdate> {
        self.venue.advance_to(ts_ns, &mut self.out);
        self.take()
    }

    fn feed_ended(&mut self, ts_ns: i64) -> Vec<PyVenueUpdate> {
        self.venue.feed_ended(ts_ns, &mut self.out);
        self.take()
    }

    fn expire_open_orders(&mut self, ts_ns: i64) -> Vec<PyVenueUpdate> {
        self.venue.expire_open_orders(ts_ns, &mut self.out);
        self.take()
    }

    /// One tick, prices in rupees as the feed gives them (NaN / None / <= 0:
    /// no price; a tick without a last price is dropped and counted).
    #[pyo3(signature = (token, ts_ns, last_price, last_qty=0, volume=0, bid=None, ask=None))]
    #[allow(clippy::too_many_arguments)]
    fn on_quote(
        &mut self,
        token: u32,
        ts_ns: i64,
        last_price: f64,
        last_qty: i64,
        volume: i64,
        bid: Option<f64>,
        ask: Option<f64>,
    ) -> Vec<PyVenueUpdate> {
        let q = Quote {
            token,
            ts_ns,
            last: feed_paise(last_price).unwrap_or(Price::ZERO),
            bid: bid.and_then(feed_paise),
            ask: ask.and_then(feed_paise),
            volume: u64::try_from(volume).unwrap_or(0),
            last_qty: u64::try_from(last_qty).unwrap_or(0),
        };
        self.venue.on_quote(&q, &mut self.out);
        self.take()
    }

    /// Columnar ticks in row order: the same as `on_quote` per row.
    #[allow(clippy::too_many_arguments)]
    fn on_quotes(
        &mut self,
        py: Python<'_>,
        tokens: &Bound<'_, PyAny>,
        ts_ns: &Bound<'_, PyAny>,
        last_price: &Bound<'_, PyAny>,
        last_qty: &Bound<'_, PyAny>,
        volume: &Bound<'_, PyAny>,
        bid: &Bound<'_, PyAny>,
        ask: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<PyVenueUpdate>> {
        let token: Vec<i64> = column(py, tokens, "tokens", "int64")?;
        let ts: Vec<i64> = column(py, ts_ns, "ts_ns", "int64")?;
        let last: Vec<f64> = column(py, last_price, "last_price", "float64")?;
        let qty: Vec<i64> = column(py, last_qty, "last_qty", "int64")?;
        let vol: Vec<i64> = column(py, volume, "volume", "int64")?;
        let bid: Vec<f64> = column(py, bid, "bid", "float64")?;
        let ask: Vec<f64> = column(py, ask, "ask", "float64")?;
        let n = ts.len();
        if [
            token.len(),
            last.len(),
            qty.len(),
            vol.len(),
            bid.len(),
            ask.len(),
        ]
        .iter()
        .any(|&k| k != n)
        {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "on_quotes: every column must have the same length",
            ));
        }
        for i in 0..n {
            let q = Quote {
                token: u32::try_from(token[i]).unwrap_or(u32::MAX),
                ts_ns: ts[i],
                last: feed_paise(last[i]).unwrap_or(Price::ZERO),
                bid: feed_paise(bid[i]),
                ask: feed_paise(ask[i]),
                volume: u64::try_from(vol[i]).unwrap_or(0),
                last_qty: u64::try_from(qty[i]).unwrap_or(0),
            };
            self.venue.on_quote(&q, &mut self.out);
        }
        Ok(self.take())
    }

    fn next_due_ns(&self) -> Option<i64> {
        self.venue.next_due_ns()
    }

    fn last_price_paise(&self, token: u32) -> Option<i64> {
        self.venue.last_price(token).map(Price::paise)
    }

    fn order(&self, order_id: u64) -> Option<PyVenueUpdate> {
        self.venue.order(order_id).map(PyVenueUpdate::from)
    }

    #[getter]
    fn working_count(&self) -> usize {
        self.venue.working_count()
    }

    #[getter]
    fn clock_ns(&self) -> i64 {
        self.venue.clock_ns()
    }

    #[getter]
    fn bad_quotes(&self) -> u64 {
        self.venue.bad_quotes()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVenueUpdate>()?;
    m.add_class::<PySimVenue>()?;
    Ok(())
}
