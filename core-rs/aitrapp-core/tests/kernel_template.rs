//! The bracket template is checked against the spec's own bounds when the
//! kernel is built: a template accepted then never refuses plans one at a
//! time later (every decision would end in BRACKET_REFUSED, nothing traded).

mod common;

use aitrapp_core::kernel::BracketTemplate;
use aitrapp_core::oco::{BracketSpec, EntryKind};
use aitrapp_core::{Price, Side};
use common::instrument;

fn refused(json: &str, key: &str) {
    let err = BracketTemplate::from_json(json)
        .expect_err(json)
        .to_string();
    assert!(err.contains(key), "{json}: {err}");
}

#[test]
fn values_the_spec_would_refuse_are_refused_at_construction() {
    refused(r#"{"stop_fill_timeout_s": 7200}"#, "stop_fill_timeout_s");
    refused(r#"{"stop_fill_timeout_s": 3600.5}"#, "stop_fill_timeout_s");
    refused(r#"{"stop_fill_timeout_s": 0}"#, "stop_fill_timeout_s");
    refused(r#"{"max_modifications": 0}"#, "max_modifications");
    refused(
        r#"{"stop_type": "SL", "stop_limit_buffer_ticks": 0}"#,
        "stop_limit_buffer_ticks",
    );
}

#[test]
fn what_the_template_accepts_every_plan_accepts() {
    let inst = instrument(101);
    for json in [
        r#"{"stop_fill_timeout_s": 3600}"#,
        r#"{"stop_fill_timeout_s": 0.5}"#,
        r#"{"max_modifications": 1}"#,
        r#"{"stop_type": "SL", "stop_limit_buffer_ticks": 1}"#,
        r#"{"scale_out": true, "trail_atr_mult": 1.5, "time_stop_s": 1200}"#,
    ] {
        let template = BracketTemplate::from_json(json).expect(json);
        for (side, stop, tp) in [
            (Side::Buy, 248_000, 254_000),
            (Side::Sell, 252_000, 246_000),
        ] {
            let mut spec = BracketSpec::for_instrument(
                "0123456789abcdef01234567",
                &inst,
                side,
                10,
                EntryKind::Limit,
                Price::from_paise(250_000),
                Price::from_paise(stop),
                Price::from_paise(tp),
            )
            .expect("spec");
            template
                .apply(&mut spec)
                .unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }
}
