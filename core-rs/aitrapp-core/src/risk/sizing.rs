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

/// heat <= max_pct of capital, exactly.
pub fn heat_within(heat_paise: i128, capital: Price, max_pct_e6: i64) -> bool {
    heat_paise * HUNDRED_PCT <= i128::from(max_pct_e6) * i128::from(capital.paise())
}

/// Heat as a percent of capital, for display.
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
    }
}
