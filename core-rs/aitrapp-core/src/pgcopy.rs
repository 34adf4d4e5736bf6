//! PostgreSQL binary COPY payloads built from columns.
//!
//! The trading kernel's event batches are columnar; the writer moves their
//! rows into the journal tables with `COPY ... FROM STDIN (FORMAT binary)`.
//! Building that payload here (no Python object per value) and computing
//! the values the database would otherwise compute row by row (deterministic
//! ids, exchange times as `timestamptz`, paise as exact rupees) lets the rows
//! go straight into their tables.
//!
//! Every conversion is the twin of a SQL expression of `aitrapp.db.bulk`,
//! with the same result to the bit:
//! - [`Kind::Md5Uuid`]: `md5(scope || ':' || kind || ':' || key)::uuid`;
//! - [`Kind::Ts`]: integer nanoseconds -> microseconds exactly as
//!   `trunc(d) * 1e6 + round((d - trunc(d)) * 1e6)` with `d = ns::float8 / 1e9`
//!   (IEEE doubles, `round` is `rint`: half to even);
//! - [`Kind::Rupees`]: integer paise `p` -> `p * 0.01` (numeric, scale 2).

use md5::{Digest, Md5};
use std::fmt::Write as _;
use thiserror::Error;

/// The binary COPY signature, flags and header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// numeric's base and sign flag on the wire.
const NBASE: u64 = 10_000;
const NUMERIC_NEG: u16 = 0x4000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CopyError {
    #[error("column {column}: {len} values for {rows} rows")]
    Length {
        column: usize,
        len: usize,
        rows: usize,
    },
    #[error("column {column} row {row}: {message}")]
    Value {
        column: usize,
        row: usize,
        message: String,
    },
    #[error("column {column}: {kind} needs {wanted} values")]
    Shape {
        column: usize,
        kind: &'static str,
        wanted: &'static str,
    },
    #[error("a row has {0} columns, binary COPY allows at most 32767")]
    TooManyColumns(usize),
}

/// The values of one column: one per row, or one for every row.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Int(Vec<i64>),
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
    ConstInt(i64),
    ConstText(Option<String>),
    /// No rows (fits any kind).
    Empty,
}

impl Values {
    fn len(&self) -> Option<usize> {
        match self {
            Values::Int(v) => Some(v.len()),
            Values::Text(v) => Some(v.len()),
            Values::Bool(v) => Some(v.len()),
            Values::Empty => Some(0),
            Values::ConstInt(_) | Values::ConstText(_) => None,
        }
    }
}

/// What the column is on the wire (and how its values are turned into it).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// bigint.
    Int8,
    /// integer (a value out of its range is an error naming the row).
    Int4,
    Bool,
    /// text (None: NULL).
    Text,
    /// jsonb from JSON text (the server parses it).
    Jsonb,
    /// uuid from its text form.
    Uuid,
    /// `md5(<scope> ":" <kind> ":" <key>)::uuid`; the values are the keys
    /// (integers or text), `scopes` the scope of each row or of all.
    Md5Uuid {
        scopes: Values,
        kind: String,
    },
    /// timestamptz from integer nanoseconds since the Unix epoch.
    Ts,
    /// numeric rupees from integer paise; `zero_is_null`: 0 means absent.
    Rupees {
        zero_is_null: bool,
    },
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Int8 => "int8",
            Kind::Int4 => "int4",
            Kind::Bool => "bool",
            Kind::Text => "text",
            Kind::Jsonb => "jsonb",
            Kind::Uuid => "uuid",
            Kind::Md5Uuid { .. } => "md5",
            Kind::Ts => "ts",
            Kind::Rupees { .. } => "rupees",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub kind: Kind,
    pub values: Values,
}

/// One binary COPY payload (header, `rows` tuples, trailer) of `columns`.
pub fn encode(columns: &[Column], rows: usize) -> Result<Vec<u8>, CopyError> {
    let fields =
        i16::try_from(columns.len()).map_err(|_| CopyError::TooManyColumns(columns.len()))?;
    for (i, c) in columns.iter().enumerate() {
        check_shape(i, c, rows)?;
    }
    let mut out = Vec::with_capacity(HEADER.len() + rows * (2 + columns.len() * 16) + 2);
    out.extend_from_slice(HEADER);
    let mut key = String::new();
    for row in 0..rows {
        out.extend_from_slice(&fields.to_be_bytes());
        for (i, c) in columns.iter().enumerate() {
            field(&mut out, &mut key, c, row).map_err(|message| CopyError::Value {
                column: i,
                row,
                message,
            })?;
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

fn check_shape(i: usize, c: &Column, rows: usize) -> Result<(), CopyError> {
    let shape = |wanted| CopyError::Shape {
        column: i,
        kind: c.kind.name(),
        wanted,
    };
    let fits = match (&c.kind, &c.values) {
        (_, Values::Empty) => true,
        (Kind::Int8 | Kind::Int4 | Kind::Ts | Kind::Rupees { .. }, v) => {
            matches!(v, Values::Int(_) | Values::ConstInt(_))
        }
        (Kind::Bool, v) => matches!(v, Values::Bool(_)),
        (Kind::Text | Kind::Jsonb | Kind::Uuid, v) => {
            matches!(v, Values::Text(_) | Values::ConstText(_))
        }
        (Kind::Md5Uuid { scopes, .. }, v) => {
            if !matches!(scopes, Values::Text(_) | Values::ConstText(Some(_))) {
                return Err(shape("text scopes"));
            }
            if let Some(len) = scopes.len().filter(|&n| n != rows) {
                return Err(CopyError::Length {
                    column: i,
                    len,
                    rows,
                });
            }
            !matches!(v, Values::Bool(_))
        }
    };
    if !fits {
        return Err(shape(match c.kind {
            Kind::Bool => "bool",
            Kind::Text | Kind::Jsonb | Kind::Uuid => "text",
            Kind::Md5Uuid { .. } => "integer or text",
            _ => "integer",
        }));
    }
    match c.values.len() {
        Some(len) if len != rows => Err(CopyError::Length {
            column: i,
            len,
            rows,
        }),
        _ => Ok(()),
    }
}

fn int_at(v: &Values, row: usize) -> i64 {
    match v {
        Values::Int(xs) => xs[row],
        Values::ConstInt(x) => *x,
        _ => unreachable!("shape checked"),
    }
}

fn text_at(v: &Values, row: usize) -> Option<&str> {
    match v {
        Values::Text(xs) => xs[row].as_deref(),
        Values::ConstText(x) => x.as_deref(),
        _ => unreachable!("shape checked"),
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), String> {
    let len = i32::try_from(bytes.len()).map_err(|_| "value longer than 2 GiB".to_string())?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

fn field(out: &mut Vec<u8>, key: &mut String, c: &Column, row: usize) -> Result<(), String> {
    match &c.kind {
        Kind::Int8 => put(out, &int_at(&c.values, row).to_be_bytes()),
        Kind::Int4 => {
            let v = int_at(&c.values, row);
            let v = i32::try_from(v).map_err(|_| format!("{v} is out of range for integer"))?;
            put(out, &v.to_be_bytes())
        }
        Kind::Bool => match &c.values {
            Values::Bool(xs) => put(out, &[u8::from(xs[row])]),
            _ => unreachable!("shape checked"),
        },
        Kind::Ts => put(out, &pg_timestamp_us(int_at(&c.values, row)).to_be_bytes()),
        Kind::Rupees { zero_is_null } => {
            let paise = int_at(&c.values, row);
            if *zero_is_null && paise == 0 {
                null(out);
                Ok(())
            } else {
                put(out, &numeric_scaled(paise, 2))
            }
        }
        Kind::Text | Kind::Jsonb | Kind::Uuid => {
            let Some(s) = text_at(&c.values, row) else {
                null(out);
                return Ok(());
            };
            match c.kind {
                Kind::Text => put(out, s.as_bytes()),
                Kind::Jsonb => {
                    let len = i32::try_from(s.len() + 1)
                        .map_err(|_| "value longer than 2 GiB".to_string())?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.push(1); // jsonb's binary format version
                    out.extend_from_slice(s.as_bytes());
                    Ok(())
                }
                _ => put(
                    out,
                    &parse_uuid(s).ok_or_else(|| format!("{s:?} is not a uuid"))?,
                ),
            }
        }
        Kind::Md5Uuid { scopes, kind } => {
            let scope = text_at(scopes, row).ok_or("the id's scope is NULL")?;
            key.clear();
            key.push_str(scope);
            key.push(':');
            key.push_str(kind);
            key.push(':');
            match &c.values {
                Values::Int(_) | Values::ConstInt(_) => {
                    let _ = write!(key, "{}", int_at(&c.values, row));
                }
                v => key.push_str(text_at(v, row).ok_or("the id's key is NULL")?),
            }
            put(out, &md5_uuid(key))
        }
    }
}

/// The 16 bytes of `md5(text)::uuid`.
pub fn md5_uuid(text: &str) -> [u8; 16] {
    Md5::digest(text.as_bytes()).into()
}

/// A uuid's 16 bytes from its text form (hyphens anywhere, either case).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0usize;
    let mut hi: Option<u8> = None;
    for ch in s.bytes() {
        if ch == b'-' {
            continue;
        }
        let d = (ch as char).to_digit(16)?;
        let d = u8::try_from(d).ok()?;
        match hi.take() {
            None => hi = Some(d),
            Some(h) => {
                *out.get_mut(n)? = (h << 4) | d;
                n += 1;
            }
        }
    }
    (n == 16 && hi.is_none()).then_some(out)
}

/// Integer nanoseconds since the Unix epoch -> PostgreSQL timestamptz
/// (microseconds since 2000-01-01), as the SQL of `aitrapp.db.bulk._ts`.
pub fn pg_timestamp_us(ns: i64) -> i64 {
    #[allow(clippy::cast_precision_loss)] // the SQL converts with ::float8 too
    let d = ns as f64 / 1e9;
    let whole = d.trunc();
    let usec = whole * 1e6 + ((d - whole) * 1e6).round_ties_even();
    // An integral double well inside i64 for any time a tick can carry.
    #[allow(clippy::cast_possible_truncation)]
    let usec = usec as i64;
    usec - PG_EPOCH_US
}

/// numeric's binary form of `value * 10^-scale` (scale <= 4), with dscale `scale`.
pub fn numeric_scaled(value: i64, scale: u16) -> Vec<u8> {
    debug_assert!(scale <= 4);
    let neg = value < 0;
    let a = value.unsigned_abs();
    let unit = 10u64.pow(u32::from(scale));
    let (mut int, frac) = (a / unit, a % unit);
    // Base-10000 digits of the integer part, least significant first.
    let mut digits: Vec<u16> = Vec::new();
    while int > 0 {
        digits.push(u16::try_from(int % NBASE).unwrap_or(0));
        int /= NBASE;
    }
    digits.reverse();
    let mut weight = i16::try_from(digits.len()).unwrap_or(i16::MAX) - 1;
    if frac > 0 {
        // The fraction fills the first base-10000 digit after the point.
        digits.push(u16::try_from(frac * 10u64.pow(4 - u32::from(scale))).unwrap_or(0));
    }
    // Normalised as the server stores it: no leading or trailing zero digits.
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let lead = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..lead);
    weight -= i16::try_from(lead).unwrap_or(0);
    if digits.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&i16::try_from(digits.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign = if neg && !digits.is_empty() {
        NUMERIC_NEG
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(b: &[u8]) -> Vec<i16> {
        b.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_digits_with_their_scale() {
        // 2500.05 = [2500, 0500] weight 0
        assert_eq!(
            words(&numeric_scaled(250_005, 2)),
            vec![2, 0, 0, 2, 2500, 500]
        );
        // 0.05 = [0500] weight -1
        assert_eq!(words(&numeric_scaled(5, 2)), vec![1, -1, 0, 2, 500]);
        // -12345.67 = [1, 2345, 6700] weight 1
        assert_eq!(
            words(&numeric_scaled(-1_234_567, 2)),
            vec![3, 1, 0x4000, 2, 1, 2345, 6700]
        );
        // 10000.00 = [1] weight 1 (trailing zero digits dropped)
        assert_eq!(words(&numeric_scaled(1_000_000, 2)), vec![1, 1, 0, 2, 1]);
        assert_eq!(words(&numeric_scaled(0, 2)), vec![0, 0, 0, 2]);
        assert_eq!(
            words(&numeric_scaled(i64::MIN, 2)).len(),
            4 + 6,
            "the most negative value has its digits"
        );
    }

    #[test]
    fn timestamps_round_half_to_even_like_the_sql() {
        // 2026-01-06 03:45:00 UTC to the nanosecond.
        let ns = 1_767_671_100_000_000_000i64;
        assert_eq!(pg_timestamp_us(ns), 1_767_671_100_000_000 - PG_EPOCH_US);
        assert_eq!(pg_timestamp_us(0), -PG_EPOCH_US);
        let before = pg_timestamp_us(ns + 1_499);
        assert_eq!(before, pg_timestamp_us(ns) + 1);
    }

    #[test]
    fn md5_ids_and_uuids() {
        // md5('') = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(
            md5_uuid(""),
            parse_uuid("d41d8cd9-8f00-b204-e980-0998ecf8427e").expect("uuid")
        );
        assert_eq!(
            parse_uuid("D41D8CD98F00B204E9800998ECF8427E"),
            Some(md5_uuid(""))
        );
        assert_eq!(parse_uuid("d41d8cd98f00b204e9800998ecf8427"), None);
        assert_eq!(parse_uuid("g41d8cd98f00b204e9800998ecf8427e"), None);
    }

    #[test]
    fn a_payload_has_header_rows_and_trailer() {
        let cols = [
            Column {
                kind: Kind::Int8,
                values: Values::Int(vec![7, 8]),
            },
            Column {
                kind: Kind::Text,
                values: Values::Text(vec![Some("a".into()), None]),
            },
            Column {
                kind: Kind::Md5Uuid {
                    scopes: Values::ConstText(Some("s".into())),
                    kind: "k".into(),
                },
                values: Values::ConstInt(1),
            },
        ];
        let out = encode(&cols, 2).expect("encodes");
        assert_eq!(&out[..HEADER.len()], HEADER);
        let body = &out[HEADER.len()..];
        // row 1: 3 fields; int8 7; text "a"; uuid
        assert_eq!(&body[..2], &3i16.to_be_bytes());
        assert_eq!(&body[2..6], &8i32.to_be_bytes());
        assert_eq!(&body[6..14], &7i64.to_be_bytes());
        assert_eq!(&body[14..18], &1i32.to_be_bytes());
        assert_eq!(body[18], b'a');
        assert_eq!(&body[19..23], &16i32.to_be_bytes());
        assert_eq!(&body[23..39], &md5_uuid("s:k:1"));
        // row 2's text is NULL
        assert_eq!(&body[39 + 14..39 + 18], &(-1i32).to_be_bytes());
        assert_eq!(&out[out.len() - 2..], &(-1i16).to_be_bytes());
    }

    #[test]
    fn bad_shapes_and_values_name_the_column_and_row() {
        let short = [Column {
            kind: Kind::Int8,
            values: Values::Int(vec![1]),
        }];
        assert_eq!(
            encode(&short, 2),
            Err(CopyError::Length {
                column: 0,
                len: 1,
                rows: 2
            })
        );
        let wide = [Column {
            kind: Kind::Int4,
            values: Values::Int(vec![1, 1 << 40]),
        }];
        assert!(matches!(
            encode(&wide, 2),
            Err(CopyError::Value {
                column: 0,
                row: 1,
                ..
            })
        ));
        let mistyped = [Column {
            kind: Kind::Ts,
            values: Values::Text(vec![None]),
        }];
        assert!(matches!(encode(&mistyped, 1), Err(CopyError::Shape { .. })));
        let bad_uuid = [Column {
            kind: Kind::Uuid,
            values: Values::ConstText(Some("nope".into())),
        }];
        assert!(matches!(
            encode(&bad_uuid, 1),
            Err(CopyError::Value { row: 0, .. })
        ));
    }
}
