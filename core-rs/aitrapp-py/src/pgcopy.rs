//! `encode_copy`: a PostgreSQL binary COPY payload from Python columns.

use aitrapp_core::pgcopy::{self, Column, Kind, Values};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyList, PyString, PyTuple};

/// A list (one value per row) or one value for every row. A list is bools,
/// integers or text (str or None) as its first value is.
fn values(obj: &Bound<'_, PyAny>, col: usize) -> PyResult<Values> {
    if let Ok(list) = obj.cast::<PyList>() {
        let Some(first) = list.iter().next() else {
            return Ok(Values::Empty);
        };
        if first.is_instance_of::<PyBool>() {
            return Ok(Values::Bool(list.extract::<Vec<bool>>()?));
        }
        if first.is_instance_of::<PyInt>() {
            return list
                .iter()
                .enumerate()
                .map(|(row, v)| v.extract::<i64>().map_err(|_| int_error(&v, col, row)))
                .collect::<PyResult<Vec<_>>>()
                .map(Values::Int);
        }
        return list
            .iter()
            .enumerate()
            .map(|(row, v)| text(&v, col, row))
            .collect::<PyResult<Vec<_>>>()
            .map(Values::Text);
    }
    if obj.is_instance_of::<PyString>() || obj.is_none() {
        return Ok(Values::ConstText(text(obj, col, 0)?));
    }
    obj.extract::<i64>()
        .map(Values::ConstInt)
        .map_err(|_| int_error(obj, col, 0))
}

fn int_error(v: &Bound<'_, PyAny>, col: usize, row: usize) -> PyErr {
    let at = format!("encode_copy: column {col} row {row}");
    if v.is_instance_of::<PyInt>() {
        return PyOverflowError::new_err(format!("{at}: {v} does not fit in bigint"));
    }
    let got = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    PyTypeError::new_err(format!("{at}: an integer, got {got}"))
}

fn text(v: &Bound<'_, PyAny>, col: usize, row: usize) -> PyResult<Option<String>> {
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Some(s.to_str()?.to_owned()));
    }
    Err(PyTypeError::new_err(format!(
        "encode_copy: column {col} row {row}: str or None, got {}",
        v.get_type().name()?
    )))
}

fn column(spec: &Bound<'_, PyTuple>, col: usize) -> PyResult<Column> {
    let kind_name: String = spec.get_item(0)?.extract()?;
    let kind = match (kind_name.as_str(), spec.len()) {
        ("int8", 2) => Kind::Int8,
        ("int4", 2) => Kind::Int4,
        ("bool", 2) => Kind::Bool,
        ("text", 2) => Kind::Text,
        ("jsonb", 2) => Kind::Jsonb,
        ("uuid", 2) => Kind::Uuid,
        ("ts", 2) => Kind::Ts,
        ("rupees", 2) => Kind::Rupees {
            zero_is_null: false,
        },
        ("rupees0", 2) => Kind::Rupees { zero_is_null: true },
        ("md5", 4) => Kind::Md5Uuid {
            scopes: values(&spec.get_item(2)?, col)?,
            kind: spec.get_item(3)?.extract()?,
        },
        _ => {
            return Err(PyValueError::new_err(format!(
                "encode_copy: column {col}: unknown spec ({kind_name:?}, ... {} items); known: \
                 (int8|int4|bool|text|jsonb|uuid|ts|rupees|rupees0, values) or \
                 ('md5', keys, scopes, kind)",
                spec.len()
            )))
        }
    };
    Ok(Column {
        kind,
        values: values(&spec.get_item(1)?, col)?,
    })
}

/// A binary COPY payload of `rows` rows from column specs:
/// `(kind, values)` with kind one of int8, int4, bool, text, jsonb, uuid,
/// ts (integer ns -> timestamptz), rupees / rupees0 (integer paise -> numeric,
/// rupees0: 0 is NULL); or `("md5", keys, scopes, kind)` for
/// `md5(scope || ':' || kind || ':' || key)::uuid`. Values are a list (one
/// per row) or one value for every row.
#[pyfunction]
fn encode_copy<'py>(
    py: Python<'py>,
    columns: Vec<Bound<'py, PyTuple>>,
    rows: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let cols = columns
        .iter()
        .enumerate()
        .map(|(i, spec)| column(spec, i))
        .collect::<PyResult<Vec<_>>>()?;
    let out = py
        .detach(|| pgcopy::encode(&cols, rows))
        .map_err(|e| PyValueError::new_err(format!("encode_copy: {e}")))?;
    Ok(PyBytes::new(py, &out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_copy, m)?)?;
    Ok(())
}
