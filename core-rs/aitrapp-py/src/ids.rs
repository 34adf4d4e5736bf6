//! Client-id functions for Python.

use crate::errors::{CoreErr, CoreResult};
use crate::price::price_from_py;
use aitrapp_core::ids::{self, OrderTag, PlanKey};
use aitrapp_core::Side;
use pyo3::prelude::*;

/// Deterministic plan id; prices as `Price`, rupee `str` or rupee number.
#[pyfunction]
#[pyo3(signature = (symbol, side, entry, stop, tp, qty, strategy, config_sha, signal_ts))]
#[allow(clippy::too_many_arguments)]
fn plan_client_id(
    symbol: &str,
    side: &str,
    entry: &Bound<'_, PyAny>,
    stop: &Bound<'_, PyAny>,
    tp: &Bound<'_, PyAny>,
    qty: u64,
    strategy: &str,
    config_sha: &str,
    signal_ts: i64,
) -> PyResult<String> {
    let key = PlanKey {
        symbol,
        side: side.parse::<Side>().map_err(CoreErr::from)?,
        entry: price_from_py(entry)?,
        stop: price_from_py(stop)?,
        tp: price_from_py(tp)?,
        qty,
        strategy,
        config_sha,
        signal_ts,
    };
    Ok(ids::plan_client_id(&key).map_err(CoreErr::from)?)
}

fn tag(tag: &str) -> CoreResult<OrderTag> {
    Ok(tag.parse::<OrderTag>()?)
}

/// `"{plan_id}:{tag}"`, tag one of ENTRY, STOP, TP, TPn, EXIT, EXITn.
#[pyfunction]
fn order_client_id(tag_name: &str, plan_id: &str) -> PyResult<String> {
    Ok(ids::order_client_id(tag(tag_name)?, plan_id).map_err(CoreErr::from)?)
}

/// Kite tag (<= 20 alphanumeric chars), distinct for the orders of one plan.
#[pyfunction]
fn broker_tag(order_client_id: &str) -> PyResult<String> {
    Ok(ids::broker_tag(order_client_id).map_err(CoreErr::from)?)
}

/// `(plan_id, tag)` of an order client id.
#[pyfunction]
fn parse_order_client_id(order_client_id: &str) -> PyResult<(String, String)> {
    let (plan, tag) = ids::parse_order_client_id(order_client_id).map_err(CoreErr::from)?;
    Ok((plan.to_string(), tag.to_string()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plan_client_id, m)?)?;
    m.add_function(wrap_pyfunction!(order_client_id, m)?)?;
    m.add_function(wrap_pyfunction!(broker_tag, m)?)?;
    m.add_function(wrap_pyfunction!(parse_order_client_id, m)?)?;
    Ok(())
}
