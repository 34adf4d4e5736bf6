//! The live path takes its events tick by tick into a reused log
//! (`take_log_into`): what it hands out is exactly what a replay of the same
//! ticks logs, and nothing of an earlier tick leaks into a later one.
//! Seeded synthetic data.

mod common;

use aitrapp_core::kernel::{BracketTemplate, EventLog, Kernel};
use aitrapp_core::venue::{SimVenue, SimVenueConfig};
use aitrapp_core::Engine;
use common::{ema_config, gappy_day, instrument, MINUTE, OPEN};

fn kernel() -> Kernel<SimVenue> {
    let insts: Vec<_> = [301, 302].iter().map(|&t| instrument(t)).collect();
    let venue = SimVenue::new(SimVenueConfig::default(), &insts).expect("venue");
    let engine = Engine::new(ema_config(), insts).expect("engine");
    let template = BracketTemplate::from_json(r#"{"entry_type": "MARKET"}"#).expect("template");
    Kernel::new(engine, venue, template).expect("kernel")
}

#[test]
fn a_reused_log_hands_out_each_tick_once() {
    let cols = gappy_day(&[301, 302], 200, 0.1, 5);
    let last = *cols.ts_ns.last().expect("ticks");

    let mut replay = kernel();
    replay.run(&cols.view(0, cols.len())).expect("columns");
    replay.finish(last, OPEN + 380 * MINUTE);
    let expected = replay.take_log();
    assert!(
        !expected.trades.plan_id.is_empty(),
        "{:?}",
        expected.counts()
    );

    let mut live = kernel();
    let (mut spare, mut got) = (EventLog::default(), EventLog::default());
    let mut handed_out = 0;
    for i in 0..cols.len() {
        let _ = live.on_tick(&cols.view(i, i + 1).row(0));
        live.take_log_into(&mut spare);
        handed_out += usize::from(!spare.is_empty());
        got.append(spare.clone());
    }
    live.finish(last, OPEN + 380 * MINUTE);
    live.take_log_into(&mut spare);
    got.append(spare.clone());
    assert!(handed_out > 10);
    // Every column of every table, fills' cumulative quantity included.
    assert_eq!(got.fills.filled_qty.len(), got.fills.ts_ns.len());
    assert_eq!(got, expected);
    // A quiet tick after the close hands out nothing old.
    live.take_log_into(&mut spare);
    assert!(spare.is_empty());
}
