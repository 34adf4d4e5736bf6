//! What the account has made or lost today, as the daily-loss stop counts
//! it: realized PnL net of charges, plus the open positions marked at their
//! last price, less the estimated charges of closing them.

use super::sizing::risk_budget_paise;
use crate::config::{RiskLimits, PCT_SCALE};
use crate::side::Side;

/// Estimated charges of one leg by its side, millionths of a basis point
/// of the leg's notional (`risk.charges_buy_bps`, `risk.charges_sell_bps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChargeRates {
    pub buy_bps_e6: i64,
    pub sell_bps_e6: i64,
}

impl ChargeRates {
    /// Estimated charges of a `side` leg of `notional_paise`.
    pub fn leg(&self, side: Side, notional_paise: f64) -> i64 {
        let bps = match side {
            Side::Buy => self.buy_bps_e6,
            Side::Sell => self.sell_bps_e6,
        };
        leg_charges_paise(notional_paise, bps)
    }
}

/// Today's PnL in paise, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DailyPnl {
    /// Gross PnL of today's exits: closed brackets and partial exits.
    pub realized_paise: i64,
    /// Charges of the legs executed today: as reported for closed
    /// brackets, estimated for the rest (see [`leg_charges_paise`]).
    pub charges_paise: i64,
    /// Open positions marked at the last price.
    pub unrealized_paise: i64,
    /// Estimated charges of closing the open positions at the last price.
    pub close_charges_paise: i64,
}

impl DailyPnl {
    /// What the account would hold against this morning if it closed now.
    pub fn net_paise(&self) -> i64 {
        self.realized_paise
            .saturating_sub(self.charges_paise)
            .saturating_add(self.unrealized_paise)
            .saturating_sub(self.close_charges_paise)
    }

    /// The net loss reaches `risk.daily_loss_stop_pct` of capital, exactly.
    pub fn breaches(&self, limits: &RiskLimits) -> bool {
        i128::from(self.net_paise()) * i128::from(100 * PCT_SCALE)
            <= -(i128::from(limits.daily_loss_e6) * i128::from(limits.capital.paise()))
    }

    /// The daily-loss limit as a (negative) amount of paise.
    pub fn limit_paise(limits: &RiskLimits) -> i64 {
        -risk_budget_paise(limits.capital, limits.daily_loss_e6)
    }
}

/// Estimated charges of one leg of `notional_paise`, at `bps_e6` millionths
/// of a basis point, rounded up to the paisa (an estimate errs toward the loss).
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
pub fn leg_charges_paise(notional_paise: f64, bps_e6: i64) -> i64 {
    if !(notional_paise.is_finite() && notional_paise > 0.0) || bps_e6 <= 0 {
        return 0;
    }
    // bounded: notional < 1e15 paise and the rate <= 1,000 bps
    (notional_paise * bps_e6 as f64 / (10_000.0 * PCT_SCALE as f64)).ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;

    #[test]
    fn charges_round_up_and_the_stop_is_exact() {
        // 10 lakh of notional at 6.4 bps: 640 rupees.
        assert_eq!(leg_charges_paise(100_000_000.0, 6_400_000), 64_000);
        assert_eq!(leg_charges_paise(1.0, 6_400_000), 1);
        assert_eq!(leg_charges_paise(f64::NAN, 6_400_000), 0);
        assert_eq!(leg_charges_paise(1e6, 0), 0);
        let rates = EngineConfig::default().risk_limits().unwrap().charges;
        // 10 lakh: a buy at 1.2 bps is 120 rupees, a sell at 3.4 bps 340.
        assert_eq!(rates.leg(Side::Buy, 100_000_000.0), 12_000);
        assert_eq!(rates.leg(Side::Sell, 100_000_000.0), 34_000);
        let limits = EngineConfig::default().risk_limits().unwrap();
        assert_eq!(DailyPnl::limit_paise(&limits), -2_500_000);
        let at = DailyPnl {
            realized_paise: -2_400_000,
            charges_paise: 60_000,
            unrealized_paise: 0,
            close_charges_paise: 40_000,
        };
        assert_eq!(at.net_paise(), -2_500_000);
        assert!(at.breaches(&limits));
        let short = DailyPnl {
            close_charges_paise: 39_999,
            ..at
        };
        assert!(!short.breaches(&limits));
    }
}
