//! Fill rules of the paper venue, as pure functions on integer paise.
//!
//! One function per decision, so each rule is stated (and tested) once:
//!
//! - the *touch* an order trades against is the best ask for a buy and the
//!   best bid for a sell; without a sane two-sided quote (a side absent, zero
//!   or crossed) the last price stands in for it;
//! - a MARKET order (and a triggered SL-M) fills at the touch plus slippage,
//!   never beyond its market-protection price; when the touch itself is
//!   beyond that price it does not fill and rests as a limit at it, as Kite's
//!   market protection does;
//! - a LIMIT order (and a triggered SL) fills when the touch is at or through
//!   the limit, at the touch (the limit or better: a market that gapped
//!   through the limit fills at the gap price); an order already resting also
//!   fills at the limit when trades print through it while the touch is not;
//! - with a participation model one fill takes at most a share of the tick's
//!   traded quantity, in whole lots.
//!
//! Products are computed in `i128`: a price times a million overflows `i64`
//! beyond 92 crore rupees.

/// Parts per million: 1 bp = 100 ppm, 1 % = 10,000 ppm.
pub const PPM: i64 = 1_000_000;

#[allow(clippy::cast_possible_truncation)] // bounded by config validation (<= 100 %, <= 1000 bp)
fn ppm_of(x: f64) -> i64 {
    // Ties to even, as Python's round(): the config crossed from Python.
    x.round_ties_even() as i64
}

/// A percentage in parts per million.
pub fn pct_to_ppm(pct: f64) -> i64 {
    ppm_of(pct * 10_000.0)
}

/// Basis points in parts per million.
pub fn bps_to_ppm(bps: f64) -> i64 {
    ppm_of(bps * 100.0)
}

fn floor_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

#[allow(clippy::cast_possible_truncation)] // results lie between two in-range prices
fn narrow(x: i128) -> i64 {
    x as i64
}

/// The prices a buy and a sell meet: (ask, bid) on the tick grid, each
/// rounded against its order; the last price for both when the quote is
/// one-sided, absent, zero or crossed.
pub fn touches(last: i64, bid: Option<i64>, ask: Option<i64>, tick: i64) -> (i64, i64) {
    match (bid, ask) {
        (Some(b), Some(a)) if 0 < b && b <= a => {
            let t = i128::from(tick);
            (
                narrow(ceil_div(i128::from(a), t) * t),
                narrow(floor_div(i128::from(b), t) * t),
            )
        }
        _ => (last, last),
    }
}

/// `touch` moved `slip_ppm` against the order, to the nearest tick (a tie
/// rounds against the order); a sell never goes below one tick.
pub fn slipped(is_buy: bool, touch: i64, slip_ppm: i64, tick: i64) -> i64 {
    let (touch, ppm, t) = (i128::from(touch), i128::from(PPM), i128::from(tick));
    let den = ppm * t;
    if is_buy {
        let num = touch * (ppm + i128::from(slip_ppm));
        return narrow(floor_div(2 * num + den, 2 * den) * t);
    }
    let num = touch * (ppm - i128::from(slip_ppm));
    narrow((floor_div(2 * num + den - 1, 2 * den) * t).max(t))
}

/// The market-protection limit: `reference` +/- the band, on the grid, inside
/// the band (a buy rounds down, a sell up), at least one tick.
pub fn protection_price(is_buy: bool, reference: i64, band_ppm: i64, tick: i64) -> i64 {
    let (r, ppm, t) = (i128::from(reference), i128::from(PPM), i128::from(tick));
    let band = i128::from(band_ppm);
    let out = if is_buy {
        floor_div(floor_div(r * (ppm + band), ppm), t) * t
    } else {
        ceil_div(ceil_div(r * (ppm - band), ppm), t) * t
    };
    narrow(out.max(t))
}

/// Fill price of a MARKET order, or None when the touch is beyond its protection `cap`.
pub fn market_fill_price(
    is_buy: bool,
    touch: i64,
    cap: i64,
    slip_ppm: i64,
    tick: i64,
) -> Option<i64> {
    if is_buy {
        (touch <= cap).then(|| slipped(true, touch, slip_ppm, tick).min(cap))
    } else {
        (touch >= cap).then(|| slipped(false, touch, slip_ppm, tick).max(cap))
    }
}

/// Fill price of a LIMIT order at `limit`, or None when it does not fill.
///
/// `resting` is false on the order's first look at the market (arrival,
/// trigger or modification): only the touch counts then, since the trades
/// that printed before the order arrived were not against it.
pub fn limit_fill_price(
    is_buy: bool,
    limit: i64,
    touch: i64,
    last: i64,
    resting: bool,
) -> Option<i64> {
    if is_buy {
        if touch <= limit {
            return Some(touch);
        }
        return (resting && last < limit).then_some(limit);
    }
    if touch >= limit {
        return Some(touch);
    }
    (resting && last > limit).then_some(limit)
}

/// Quantity traded since the instrument's previous tick: the change in the
/// cumulative volume, or the tick's last quantity when volume is unknown
/// (zero, first tick, or going down in bad data).
pub fn traded_quantity(volume: u64, prev_volume: Option<u64>, last_qty: u64) -> u64 {
    match prev_volume {
        Some(prev) if volume > 0 && prev > 0 && volume >= prev => volume - prev,
        _ => last_qty,
    }
}

/// At most `share_ppm` of `traded`, in whole lots, and no more than `remaining`.
pub fn participation_quantity(remaining: u64, traded: u64, share_ppm: i64, lot: u64) -> u64 {
    let share = u128::try_from(share_ppm).unwrap_or(0);
    let allowed = u128::from(traded) * share / u128::from(PPM.unsigned_abs());
    let allowed = u64::try_from(allowed).unwrap_or(u64::MAX);
    remaining.min(allowed / lot * lot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    const FIVE_BP: i64 = 500;

    #[rstest]
    #[case(true, 250_005, 5, 250_130)] // 2500.05 + 5 bp = 2501.300025 -> 2501.30
    #[case(false, 250_000, 5, 249_875)] // 2500.00 - 5 bp = 2498.75
    #[case(true, 10_000, 5, 10_005)] // 100.00 + 0.05 exactly one tick
    #[case(true, 1_000, 5, 1_000)] // 10.00 + 0.005: under half a tick, no extra tick
    #[case(true, 10_010, 5, 10_015)] // 100.10 + 0.05005 -> 100.15
    #[case(false, 5, 5, 5)] // never below one tick
    #[case(false, 1_001, 1, 1_000)] // 10.01 - 0.0050... -> 10.00 (1-paisa grid)
    fn slippage_rounds_to_the_nearest_tick_against_the_order(
        #[case] is_buy: bool,
        #[case] touch: i64,
        #[case] tick: i64,
        #[case] want: i64,
    ) {
        assert_eq!(slipped(is_buy, touch, FIVE_BP, tick), want);
    }

    #[test]
    fn slippage_tie_goes_against_the_order() {
        // 100 bp on 2.50 is exactly 0.025: half a 0.05 tick
        assert_eq!(slipped(true, 250, 10_000, 5), 255);
        assert_eq!(slipped(false, 250, 10_000, 5), 245);
    }

    #[test]
    fn bps_and_pct_to_ppm() {
        assert_eq!(bps_to_ppm(5.0), FIVE_BP);
        assert_eq!(pct_to_ppm(2.0), 20_000);
        assert_eq!(pct_to_ppm(0.5), 5_000);
    }

    #[rstest]
    #[case(true, 10_000, 2.0, 5, 10_200)]
    #[case(false, 10_000, 2.0, 5, 9_800)]
    #[case(true, 9_999, 1.0, 5, 10_095)] // 100.9899 -> down to 100.95: inside the band
    #[case(false, 9_999, 1.0, 5, 9_900)] // 98.9901 -> up to 99.00: inside the band
    #[case(false, 5, 10.0, 5, 5)] // never below one tick
    #[case(true, 2_400_000, 0.5, 10, 2_412_000)]
    fn protection_price_table(
        #[case] is_buy: bool,
        #[case] reference: i64,
        #[case] pct: f64,
        #[case] tick: i64,
        #[case] want: i64,
    ) {
        assert_eq!(
            protection_price(is_buy, reference, pct_to_ppm(pct), tick),
            want
        );
    }

    #[rstest]
    #[case(true, 10_000, 10_200, Some(10_005))]
    #[case(true, 10_200, 10_200, Some(10_200))] // slippage capped
    #[case(true, 10_205, 10_200, None)] // ask beyond the band
    #[case(false, 9_800, 9_800, Some(9_800))]
    #[case(false, 9_795, 9_800, None)]
    fn market_fill_price_respects_the_band(
        #[case] is_buy: bool,
        #[case] touch: i64,
        #[case] cap: i64,
        #[case] want: Option<i64>,
    ) {
        assert_eq!(market_fill_price(is_buy, touch, cap, FIVE_BP, 5), want);
    }

    #[rstest]
    #[case(true, 9_950, 9_960, 9_940, false, None)] // arrival: prints before it do not count
    #[case(true, 9_950, 9_960, 9_940, true, Some(9_950))] // resting: a print through -> at the limit
    #[case(true, 9_950, 9_955, 9_950, true, None)] // a print at the limit is not through
    #[case(true, 9_950, 9_950, 9_950, false, Some(9_950))] // the ask at the limit
    #[case(true, 9_950, 9_805, 9_800, true, Some(9_805))] // gap: at the better touch
    #[case(false, 10_050, 10_040, 10_060, true, Some(10_050))]
    #[case(false, 10_050, 10_095, 10_100, false, Some(10_095))]
    #[case(false, 10_050, 10_045, 10_050, true, None)]
    fn limit_fill_price_table(
        #[case] is_buy: bool,
        #[case] limit: i64,
        #[case] touch: i64,
        #[case] last: i64,
        #[case] resting: bool,
        #[case] want: Option<i64>,
    ) {
        assert_eq!(limit_fill_price(is_buy, limit, touch, last, resting), want);
    }

    #[rstest]
    #[case(Some(9_995), Some(10_005), (10_005, 9_995))]
    #[case(Some(9_996), Some(10_004), (10_005, 9_995))] // off-grid: against the order
    #[case(None, Some(10_005), (10_000, 10_000))] // one-sided
    #[case(Some(10_010), Some(10_005), (10_000, 10_000))] // crossed
    #[case(Some(0), Some(10_005), (10_000, 10_000))] // a zero bid is no bid
    fn touches_need_a_sane_two_sided_quote(
        #[case] bid: Option<i64>,
        #[case] ask: Option<i64>,
        #[case] want: (i64, i64),
    ) {
        assert_eq!(touches(10_000, bid, ask, 5), want);
    }

    #[rstest]
    #[case(1_500, Some(1_000), 7, 500)]
    #[case(1_000, Some(1_000), 7, 0)] // a quote-only tick
    #[case(1_500, None, 7, 7)] // first tick: the last quantity
    #[case(0, Some(0), 7, 7)] // no volume in the feed
    #[case(900, Some(1_000), 7, 7)] // volume went down (bad data)
    fn traded_quantity_prefers_the_volume_change(
        #[case] volume: u64,
        #[case] prev: Option<u64>,
        #[case] last_qty: u64,
        #[case] want: u64,
    ) {
        assert_eq!(traded_quantity(volume, prev, last_qty), want);
    }

    proptest! {
        #[test]
        fn participation_is_bounded_and_in_lots(
            remaining in 1u64..10_000,
            traded in 0u64..1_000_000,
            pct in 0.01f64..100.0,
            lot in prop::sample::select(vec![1u64, 15, 25, 65, 75]),
        ) {
            let share = pct_to_ppm(pct);
            let q = participation_quantity(remaining, traded, share, lot);
            prop_assert!(q <= remaining);
            prop_assert!(u128::from(q) * 1_000_000 <= u128::from(traded) * share as u128);
            prop_assert!(q == remaining || q % lot == 0);
        }

        #[test]
        fn fills_stay_on_the_grid_and_inside_protection(
            touch_ticks in 1i64..2_000_000,
            cap_off in -50i64..50,
            tick in prop::sample::select(vec![1i64, 5, 10]),
            slip_bp in 0.0f64..1000.0,
            is_buy: bool,
        ) {
            let touch = touch_ticks * tick;
            let cap = (touch + cap_off * tick).max(tick);
            let slip = bps_to_ppm(slip_bp);
            let s = slipped(is_buy, touch, slip, tick);
            prop_assert_eq!(s % tick, 0);
            let ok = if is_buy { s >= touch } else { s <= touch && s >= tick };
            prop_assert!(ok, "slipped {} from {}", s, touch);
            if let Some(px) = market_fill_price(is_buy, touch, cap, slip, tick) {
                let ok = if is_buy { px <= cap && px >= touch } else { px >= cap && px <= touch };
                prop_assert!(ok, "fill {} touch {} cap {}", px, touch, cap);
            }
        }
    }
}
