//! Fixed-fractional sizing and heat, in integer paise against integer
//! percent-millionths (see [`crate::config::PCT_SCALE`]): no float decides
//! whether a plan fits its budget.

use crate::config::PCT_SCALE;
use crate::price::Price;

const HUNDRED_PCT: i128 = 100 * PCT_SCALE as i128;

/// floor(capital x pct / 100) in paise, for pct given in millionths of a percent.
pub fn risk_budget_paise(capital: Price, pct_e6: i64) -> i64 {
    let v = i128::from(capital.paise()) * i128::from(pct_e6) / HUNDRED_PCT;
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Units that fit the budget, rounded down to whole lots (0 if not one lot).
pub fn size_qty(budget_paise: i64, risk_per_unit_paise: i64, lot_size: u32) -> u64 {
    if budget_paise <= 0 || risk_per_unit_paise <= 0 || lot_size == 0 {
        return 0;
    }
    let units = u64::try_from(budget_paise / risk_per_unit_paise).unwrap_or(0);
    let lot = u64::from(lot_size);
    units / lot * lot
}

/// Units whose notional (`unit_price_paise` each) fits `max_notional_paise`,
/// rounded down to whole lots (0 if not one lot).
pub fn notional_cap_qty(max_notional_paise: i64, unit_price_paise: i64, lot_size: u32) -> u64 {
    // Same arithmetic as risk sizing: floor(limit / per-unit) in whole lots.
    size_qty(max_notional_paise, unit_price_paise, lot_size)
}

/// Stop distance in basis points of the entry is below `min_bps_e6`
/// (millionths of a bp), exactly: `distance x 10^4 x 10^6 < min x entry`.
/// Never true when `min_bps_e6` is 0.
pub fn stop_too_tight(distance_paise: i64, entry_paise: i64, min_bps_e6: i64) -> bool {
    i128::from(distance_paise) * 10_000 * i128::from(PCT_SCALE)
        < i128::from(min_bps_e6) * i128::from(entry_paise)
}

/// The rule that sets the nearest allowed stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopFloor {
    /// `risk.min_stop_distance_bps` of the entry.
    MinDistance,
    /// Modelled slippage of both legs: 2 x `risk.slippage_bps` of the entry.
    Slippage,
    /// `risk.min_stop_spread_multiple` x the current spread.
    Spread,
}

impl StopFloor {
    /// The config key behind the rule.
    pub const fn key(self) -> &'static str {
        match self {
            StopFloor::MinDistance => "min_stop_distance_bps",
            StopFloor::Slippage => "slippage_bps",
            StopFloor::Spread => "min_stop_spread_multiple",
        }
    }

    /// Whether a stop `distance_paise` from `entry_paise` is nearer than the
    /// largest of the three rules, exactly (integers, no floats). Each rule
    /// at 0 is off; no spread, no spread rule.
    pub fn too_tight(
        distance_paise: i64,
        entry_paise: i64,
        spread_paise: Option<i64>,
        min_bps_e6: i64,
        slippage_bps_e6: i64,
        spread_multiple_e6: i64,
    ) -> bool {
        let bps_floor = min_bps_e6.max(slippage_bps_e6.saturating_mul(2));
        let spread = i128::from(spread_paise.unwrap_or(0).max(0));
        stop_too_tight(distance_paise, entry_paise, bps_floor)
            || i128::from(distance_paise) * i128::from(PCT_SCALE)
                < i128::from(spread_multiple_e6) * spread
    }

    /// The floor in paise (for display) and the rule that sets it; ties go
    /// to the first of min distance, slippage, spread.
    #[allow(clippy::cast_precision_loss)]
    pub fn of(
        entry_paise: i64,
        spread_paise: Option<i64>,
        min_bps_e6: i64,
        slippage_bps_e6: i64,
        spread_multiple_e6: i64,
    ) -> (f64, StopFloor) {
        let bps = |e6: i64| entry_paise as f64 * e6 as f64 / (10_000.0 * PCT_SCALE as f64);
        let spread =
            spread_paise.unwrap_or(0).max(0) as f64 * spread_multiple_e6 as f64 / PCT_SCALE as f64;
        [
            (bps(min_bps_e6), StopFloor::MinDistance),
            (bps(slippage_bps_e6.saturating_mul(2)), StopFloor::Slippage),
            (spread, StopFloor::Spread),
        ]
        .into_iter()
        .fold((0.0, StopFloor::MinDistance), |best, c| {
            if c.0 > best.0 {
                c
            } else {
                best
            }
        })
    }
}

/// Stop distance in basis points of the entry, for display.
#[allow(clippy::cast_precision_loss)]
pub fn distance_bps(distance_paise: i64, entry_paise: i64) -> f64 {
    if entry_paise <= 0 {
        return f64::INFINITY;
    }
    distance_paise as f64 * 10_000.0 / entry_paise as f64
}

/// amount <= max_pct of capital, exactly.
pub fn within_pct(amount_paise: i128, capital: Price, max_pct_e6: i64) -> bool {
    amount_paise * HUNDRED_PCT <= i128::from(max_pct_e6) * i128::from(capital.paise())
}

/// heat <= max_pct of capital, exactly.
pub fn heat_within(heat_paise: i128, capital: Price, max_pct_e6: i64) -> bool {
    within_pct(heat_paise, capital, max_pct_e6)
}

/// Any paise amount (heat, exposure) as a percent of capital, for display.
#[allow(clippy::cast_precision_loss)]
pub fn heat_pct(heat_paise: i128, capital: Price) -> f64 {
    if capital.paise() <= 0 {
        return f64::INFINITY;
    }
    heat_paise as f64 * 100.0 / capital.paise() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    // 10 lakh, 0.5% -> 5,000 rupees
    #[case(100_000_000, 500_000, 500_000)]
    #[case(100_000_000, 1, 1)]
    #[case(333, 500_000, 1)] // 3.33 rupees x 0.5% = 1.665 paise -> 1
    fn budget_is_floored(#[case] capital: i64, #[case] pct_e6: i64, #[case] want: i64) {
        assert_eq!(risk_budget_paise(Price::from_paise(capital), pct_e6), want);
    }

    #[rstest]
    #[case(500_000, 2_000, 1, 250)] // 5,000 rupees / 20 rupees per unit
    #[case(500_000, 2_000, 65, 195)] // 250 units -> 3 lots of 65
    #[case(500_000, 2_000, 300, 0)] // not one lot: never round up
    #[case(500_000, 0, 1, 0)]
    #[case(0, 10, 1, 0)]
    fn qty_rounds_down_to_lots(
        #[case] budget: i64,
        #[case] rpu: i64,
        #[case] lot: u32,
        #[case] want: u64,
    ) {
        assert_eq!(size_qty(budget, rpu, lot), want);
    }

    #[rstest]
    // 10 lakh at 100% on a 100.10 stock: 9,990 units (9,990.01 fit).
    #[case(100_000_000, 10_010, 1, 9_990)]
    #[case(100_000_000, 10_000, 1, 10_000)] // exactly 100%: allowed
    #[case(100_000_000, 2_002_000, 65, 0)] // one NIFTY lot is 13 lakh: none fit
    #[case(500_000_000, 2_002_000, 65, 195)] // 5x: 249 units -> 3 lots
    fn notional_cap_rounds_down_to_lots(
        #[case] max_notional: i64,
        #[case] price: i64,
        #[case] lot: u32,
        #[case] want: u64,
    ) {
        assert_eq!(notional_cap_qty(max_notional, price, lot), want);
    }

    #[rstest]
    #[case(50, 250_000, 2_000_000, false)] // 0.50 on 2,500 is exactly 2 bps: allowed
    #[case(50, 250_000, 2_000_001, true)]
    #[case(50, 250_000, 10_000_000, true)] // EmaCross on a 2,500 stock vs 10 bps
    #[case(500, 250_000, 20_000_000, false)] // exactly 20 bps: allowed
    #[case(499, 250_000, 20_000_000, true)]
    #[case(1, 250_000, 0, false)] // 0 = off
    fn stop_distance_in_exact_basis_points(
        #[case] distance: i64,
        #[case] entry: i64,
        #[case] min_bps_e6: i64,
        #[case] tight: bool,
    ) {
        assert_eq!(stop_too_tight(distance, entry, min_bps_e6), tight);
    }

    #[rstest]
    // Entry 2,500.00 (250,000 paise); defaults 20 bps, 2 x 5 bps, 3 spreads.
    #[case(500, None, false)] // exactly 20 bps
    #[case(499, None, true)]
    #[case(499, Some(100), true)]
    #[case(600, Some(200), false)] // exactly 3 spreads of 2.00
    #[case(599, Some(200), true)]
    fn stop_floor_is_the_largest_rule(
        #[case] distance: i64,
        #[case] spread: Option<i64>,
        #[case] tight: bool,
    ) {
        let too = StopFloor::too_tight(distance, 250_000, spread, 20_000_000, 5_000_000, 3_000_000);
        assert_eq!(too, tight);
    }

    #[test]
    fn the_floor_names_its_rule() {
        let of = |min, slip, spread| StopFloor::of(250_000, Some(200), min, slip, spread);
        assert_eq!(
            of(20_000_000, 5_000_000, 0),
            (500.0, StopFloor::MinDistance)
        );
        assert_eq!(of(5_000_000, 5_000_000, 0), (250.0, StopFloor::Slippage));
        assert_eq!(
            of(20_000_000, 5_000_000, 3_000_000),
            (600.0, StopFloor::Spread)
        );
        assert_eq!(of(0, 0, 0), (0.0, StopFloor::MinDistance));
        // Slippage alone: 10 bps of the entry even with the floor off.
        assert!(StopFloor::too_tight(249, 250_000, None, 0, 5_000_000, 0));
        assert!(!StopFloor::too_tight(250, 250_000, None, 0, 5_000_000, 0));
        assert!(
            !StopFloor::too_tight(1, 250_000, Some(1_000), 0, 0, 0),
            "all off"
        );
        assert_eq!(StopFloor::Spread.key(), "min_stop_spread_multiple");
    }

    #[test]
    fn heat_cap_is_inclusive_and_exact() {
        let cap = Price::from_paise(100_000_000);
        assert!(heat_within(2_000_000, cap, 2_000_000)); // exactly 2%
        assert!(!heat_within(2_000_001, cap, 2_000_000));
        assert!((heat_pct(2_000_000, cap) - 2.0).abs() < 1e-12);
    }

    proptest::proptest! {
        #[test]
        fn sized_risk_never_exceeds_the_budget(
            capital in 1i64..10_000_000_000_000,
            pct_e6 in 1i64..100_000_000,
            rpu in 1i64..10_000_000,
            lot in 1u32..5_000,
        ) {
            let cap = Price::from_paise(capital);
            let budget = risk_budget_paise(cap, pct_e6);
            let qty = size_qty(budget, rpu, lot);
            let risk = i128::from(qty) * i128::from(rpu);
            proptest::prop_assert!(risk <= i128::from(budget));
            // The budget itself never exceeds pct of capital.
            proptest::prop_assert!(i128::from(budget) * HUNDRED_PCT <= i128::from(capital) * i128::from(pct_e6));
            proptest::prop_assert_eq!(qty % u64::from(lot), 0);
            // Maximal: one more lot would break the budget.
            let more = (i128::from(qty) + i128::from(lot)) * i128::from(rpu);
            proptest::prop_assert!(more > i128::from(budget));
        }

        #[test]
        fn notional_cap_holds_and_is_maximal(
            capital in 1i64..10_000_000_000_000,
            pct_e6 in 1i64..100_000_000_000,
            price in 1i64..100_000_000,
            lot in 1u32..5_000,
        ) {
            let cap = Price::from_paise(capital);
            let limit = risk_budget_paise(cap, pct_e6);
            let qty = notional_cap_qty(limit, price, lot);
            let notional = i128::from(qty) * i128::from(price);
            // notional <= pct% of capital, exactly, in whole lots ...
            proptest::prop_assert!(notional * HUNDRED_PCT <= i128::from(capital) * i128::from(pct_e6));
            proptest::prop_assert_eq!(qty % u64::from(lot), 0);
            // ... and one more lot would exceed it.
            let more = notional + i128::from(lot) * i128::from(price);
            proptest::prop_assert!(more * HUNDRED_PCT > i128::from(capital) * i128::from(pct_e6));
        }
    }
}
