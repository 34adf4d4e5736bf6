//! What the engine knows about its open brackets and today's results. It is
//! told about fills and closes by the execution layer; heat, daily PnL,
//! cooldowns and counts are derived from exactly that.

use super::daily::{ChargeRates, DailyPnl};
use crate::price::Price;
use crate::side::Side;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortfolioError {
    #[error("unknown plan id {0:?}: not an open bracket of this engine")]
    UnknownPlan(String),
    #[error("plan {plan_id}: {key} {problem}")]
    BadFeedback {
        plan_id: String,
        key: &'static str,
        problem: String,
    },
    #[error("plan {0} has a filled entry; close it with on_bracket_closed, not on_plan_cancelled")]
    HasFills(String),
    #[error("trading state must be ACTIVE, PAUSED or HALTED, got {0:?}")]
    BadState(String),
    /// A restore after a restart that would not describe a possible book.
    #[error("cannot restore {what}: {key} {problem}")]
    BadRestore {
        what: String,
        key: &'static str,
        problem: String,
    },
}

/// Only ACTIVE opens positions; PAUSED and HALTED still manage exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradingState {
    Active,
    Paused,
    Halted,
}

impl TradingState {
    pub const fn as_str(self) -> &'static str {
        match self {
            TradingState::Active => "ACTIVE",
            TradingState::Paused => "PAUSED",
            TradingState::Halted => "HALTED",
        }
    }
}

impl fmt::Display for TradingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TradingState {
    type Err = PortfolioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(TradingState::Active),
            "PAUSED" => Ok(TradingState::Paused),
            "HALTED" => Ok(TradingState::Halted),
            other => Err(PortfolioError::BadState(other.to_string())),
        }
    }
}

/// A plan issued by the engine, from the decision until it is closed or
/// cancelled.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenBracket {
    pub plan_id: String,
    pub token: u32,
    /// Index of the instrument inside the engine.
    pub slot: usize,
    pub side: Side,
    pub entry: Price,
    pub stop: Price,
    pub tp: Price,
    pub planned_qty: u64,
    /// Cumulative entry fills.
    pub filled_qty: u64,
    /// Average entry fill price in paise.
    pub avg_fill_paise: Option<f64>,
    pub exited_qty: u64,
    /// PnL of exits so far, before the bracket is closed.
    pub partial_realized_paise: i64,
    pub strategy: &'static str,
    pub signal_ts: i64,
}

impl OpenBracket {
    /// Units currently held.
    pub fn position(&self) -> u64 {
        self.filled_qty.saturating_sub(self.exited_qty)
    }

    /// Units that can still lose money at the stop: the whole plan while its
    /// entry may still fill, less what has been exited.
    pub fn qty_at_risk(&self) -> u64 {
        self.planned_qty
            .max(self.filled_qty)
            .saturating_sub(self.exited_qty)
    }

    /// Distance to the stop per unit, from the actual fill once there is one
    /// (rounded up to the paisa: heat is never understated).
    pub fn risk_per_unit_paise(&self) -> i64 {
        match self.avg_fill_paise {
            #[allow(clippy::cast_possible_truncation)]
            // fill prices are validated finite and bounded
            Some(avg) => (avg - self.stop.paise() as f64).abs().ceil() as i64,
            None => self.entry.abs_diff(self.stop).paise(),
        }
    }

    pub fn heat_paise(&self) -> i128 {
        i128::from(self.risk_per_unit_paise()) * i128::from(self.qty_at_risk())
    }

    /// Price of one unit for exposure: the actual average fill once there is
    /// one (rounded up to the paisa: exposure is never understated), else
    /// the planned entry.
    pub fn unit_notional_paise(&self) -> i64 {
        match self.avg_fill_paise {
            #[allow(clippy::cast_possible_truncation)]
            // fill prices are validated finite and bounded
            Some(avg) => avg.ceil() as i64,
            None => self.entry.paise(),
        }
    }

    /// Notional of the units held or still to be filled (the same units as
    /// [`OpenBracket::qty_at_risk`]).
    pub fn exposure_paise(&self) -> i128 {
        i128::from(self.unit_notional_paise()) * i128::from(self.qty_at_risk())
    }

    /// Estimated charges of the legs executed so far: the entry fills and
    /// the exits (valued at the average entry).
    pub fn incurred_charges_paise(&self, rates: &ChargeRates) -> i64 {
        let avg = self.avg_fill_paise.unwrap_or(0.0);
        #[allow(clippy::cast_precision_loss)] // quantities far below 2^53
        let legs = rates.leg(self.side, avg * self.filled_qty as f64)
            + rates.leg(self.side.opposite(), avg * self.exited_qty as f64);
        legs
    }

    /// Estimated charges of closing the held units at `last` (the average
    /// entry when there is no last price).
    pub fn close_charges_paise(&self, last: Option<Price>, rates: &ChargeRates) -> i64 {
        let Some(avg) = self.avg_fill_paise else {
            return 0;
        };
        #[allow(clippy::cast_precision_loss)]
        let px = last.map_or(avg, |p| p.paise() as f64);
        #[allow(clippy::cast_precision_loss)]
        let notional = px * self.position() as f64;
        rates.leg(self.side.opposite(), notional)
    }

    /// Mark-to-market of the held units at `last`.
    pub fn unrealized_paise(&self, last: Option<Price>) -> f64 {
        match (self.avg_fill_paise, last) {
            (Some(avg), Some(px)) => {
                self.side.sign() as f64 * (px.paise() as f64 - avg) * self.position() as f64
            }
            _ => 0.0,
        }
    }
}

/// Today's trading and the open brackets.
#[derive(Debug, Clone)]
pub struct Portfolio {
    brackets: Vec<OpenBracket>,
    /// IST day the daily figures belong to.
    day: Option<i64>,
    closed_realized_paise: i64,
    /// Charges of today's closed brackets (reported, else estimated).
    closed_charges_paise: i64,
    trades_today: u32,
    /// Per instrument slot: no entry before this UTC ns.
    cooldown_until: Vec<Option<i64>>,
    daily_loss_halted: bool,
}

const MAX_FILL_PAISE: f64 = 1e15;

fn fill_price_paise(plan_id: &str, key: &'static str, rupees: f64) -> Result<f64, PortfolioError> {
    if !(rupees.is_finite() && rupees > 0.0 && rupees * 100.0 < MAX_FILL_PAISE) {
        return Err(PortfolioError::BadFeedback {
            plan_id: plan_id.to_string(),
            key,
            problem: format!("must be a positive finite rupee price, got {rupees}"),
        });
    }
    Ok(rupees * 100.0)
}

impl Portfolio {
    pub fn new(slots: usize) -> Portfolio {
        Portfolio {
            brackets: Vec::new(),
            day: None,
            closed_realized_paise: 0,
            closed_charges_paise: 0,
            trades_today: 0,
            cooldown_until: vec![None; slots],
            daily_loss_halted: false,
        }
    }

    pub fn day(&self) -> Option<i64> {
        self.day
    }

    /// Moves the daily figures to IST day `day` if it is later than the
    /// current one. Returns true if a new day began.
    pub fn roll_day(&mut self, day: i64) -> bool {
        if self.day.is_some_and(|d| d >= day) {
            return false;
        }
        self.day = Some(day);
        self.closed_realized_paise = 0;
        self.closed_charges_paise = 0;
        self.trades_today = 0;
        self.daily_loss_halted = false;
        self.cooldown_until.iter_mut().for_each(|c| *c = None);
        for b in &mut self.brackets {
            b.partial_realized_paise = 0;
        }
        true
    }

    pub fn brackets(&self) -> &[OpenBracket] {
        &self.brackets
    }

    pub fn open_count(&self) -> usize {
        self.brackets.len()
    }

    pub fn trades_today(&self) -> u32 {
        self.trades_today
    }

    pub fn open_on_slot(&self, slot: usize) -> Option<&OpenBracket> {
        self.brackets.iter().find(|b| b.slot == slot)
    }

    pub fn cooldown_until(&self, slot: usize) -> Option<i64> {
        self.cooldown_until.get(slot).copied().flatten()
    }

    pub fn heat_paise(&self) -> i128 {
        self.brackets.iter().map(OpenBracket::heat_paise).sum()
    }

    /// Gross exposure: summed notional of every open bracket, long and
    /// short alike (they do not net: each needs its own margin).
    pub fn gross_exposure_paise(&self) -> i128 {
        self.brackets.iter().map(OpenBracket::exposure_paise).sum()
    }

    pub fn realized_today_paise(&self) -> i64 {
        self.closed_realized_paise
            + self
                .brackets
                .iter()
                .map(|b| b.partial_realized_paise)
                .sum::<i64>()
    }

    /// Mark-to-market of all held units, given each slot's last price.
    #[allow(clippy::cast_possible_truncation)] // bounded by prices x quantities
    pub fn unrealized_paise(&self, last_price: &impl Fn(usize) -> Option<Price>) -> i64 {
        self.brackets
            .iter()
            .map(|b| b.unrealized_paise(last_price(b.slot)))
            .sum::<f64>()
            .round() as i64
    }

    /// Today's PnL as the daily-loss stop counts it; charges not reported
    /// are estimated at `rates`.
    pub fn daily_pnl(
        &self,
        last_price: impl Fn(usize) -> Option<Price>,
        rates: &ChargeRates,
    ) -> DailyPnl {
        let mut charges = self.closed_charges_paise;
        let mut close = 0i64;
        for b in &self.brackets {
            charges = charges.saturating_add(b.incurred_charges_paise(rates));
            close = close.saturating_add(b.close_charges_paise(last_price(b.slot), rates));
        }
        DailyPnl {
            realized_paise: self.realized_today_paise(),
            charges_paise: charges,
            unrealized_paise: self.unrealized_paise(&last_price),
            close_charges_paise: close,
        }
    }

    pub fn daily_loss_halted(&self) -> bool {
        self.daily_loss_halted
    }

    pub fn halt_for_daily_loss(&mut self) {
        self.daily_loss_halted = true;
    }

    /// Records a plan issued by the gate.
    pub fn open(&mut self, bracket: OpenBracket) {
        self.trades_today += 1;
        self.brackets.push(bracket);
    }

    fn find_mut(&mut self, plan_id: &str) -> Result<&mut OpenBracket, PortfolioError> {
        self.brackets
            .iter_mut()
            .find(|b| b.plan_id == plan_id)
            .ok_or_else(|| PortfolioError::UnknownPlan(plan_id.to_string()))
    }

    fn take(&mut self, plan_id: &str) -> Result<OpenBracket, PortfolioError> {
        let i = self
            .brackets
            .iter()
            .position(|b| b.plan_id == plan_id)
            .ok_or_else(|| PortfolioError::UnknownPlan(plan_id.to_string()))?;
        Ok(self.brackets.swap_remove(i))
    }

    /// After a restart: today's figures as an earlier process left them.
    /// `day` must be the day the portfolio is on; an unset day is set to it
    /// (a later tick of the same day then changes nothing). Replaces, not
    /// adds, so a repeated restore cannot double the count or the PnL.
    pub fn restore_day(
        &mut self,
        day: i64,
        realized_paise: i64,
        charges_paise: i64,
        trades_today: u32,
    ) -> Result<(), PortfolioError> {
        if charges_paise < 0 {
            return Err(PortfolioError::BadRestore {
                what: "the day".into(),
                key: "charges_paise",
                problem: format!("must not be negative, got {charges_paise}"),
            });
        }
        if let Some(d) = self.day.filter(|d| *d != day) {
            return Err(PortfolioError::BadRestore {
                what: "the day".into(),
                key: "ist_day",
                problem: format!("is {day} but the engine is already on day {d}"),
            });
        }
        self.roll_day(day);
        self.closed_realized_paise = realized_paise;
        self.closed_charges_paise = charges_paise;
        self.trades_today = trades_today;
        Ok(())
    }

    /// After a restart: an open bracket of an earlier process. It holds heat,
    /// exposure and its instrument like a plan issued now, but does not count
    /// as a trade (that count comes with [`Portfolio::restore_day`]).
    pub fn restore_bracket(&mut self, b: OpenBracket) -> Result<(), PortfolioError> {
        let bad = |key: &'static str, problem: String| PortfolioError::BadRestore {
            what: format!("plan {:?}", b.plan_id),
            key,
            problem,
        };
        if b.plan_id.is_empty() {
            return Err(bad("plan_id", "must not be empty".into()));
        }
        if self.brackets.iter().any(|o| o.plan_id == b.plan_id) {
            return Err(bad("plan_id", "is already an open bracket".into()));
        }
        if let Some(o) = self.open_on_slot(b.slot) {
            return Err(bad(
                "instrument_token",
                format!("{} already has the open bracket {}", b.token, o.plan_id),
            ));
        }
        let (e, s, t) = (b.entry, b.stop, b.tp);
        if s.paise() <= 0 || t.paise() <= 0 || e.paise() <= 0 {
            return Err(bad("entry/stop/tp", "must all be positive".into()));
        }
        let ordered = match b.side {
            Side::Buy => s < e && e < t,
            Side::Sell => t < e && e < s,
        };
        if !ordered {
            return Err(bad(
                "stop/tp",
                format!("on the wrong side of the entry for {}", b.side.as_str()),
            ));
        }
        if b.planned_qty == 0 {
            return Err(bad("planned_qty", "must be positive".into()));
        }
        if b.filled_qty > b.planned_qty {
            return Err(bad(
                "filled_qty",
                format!("{} exceeds planned_qty {}", b.filled_qty, b.planned_qty),
            ));
        }
        if (b.filled_qty > 0) != b.avg_fill_paise.is_some() {
            return Err(bad(
                "avg_fill",
                "is required exactly when filled_qty is positive".into(),
            ));
        }
        if b.exited_qty > b.filled_qty {
            return Err(bad("exited_qty", "exceeds filled_qty".into()));
        }
        self.brackets.push(b);
        Ok(())
    }

    /// After a restart: an instrument's cooldown from a bracket closed at
    /// `ts_ns` on `day`, as [`Portfolio::on_bracket_closed`] would have set it.
    /// A close on another day than the portfolio's has no cooldown left.
    pub fn restore_cooldown(&mut self, slot: usize, ts_ns: i64, day: i64, cooldown_ns: i64) {
        if self.day != Some(day) {
            return;
        }
        if let Some(c) = self.cooldown_until.get_mut(slot) {
            let until = ts_ns.saturating_add(cooldown_ns);
            *c = Some(c.map_or(until, |prev| prev.max(until)));
        }
    }

    /// Cumulative entry fill (as brokers report it). A stale or repeated
    /// update with a smaller or equal quantity changes nothing.
    pub fn on_entry_filled(
        &mut self,
        plan_id: &str,
        filled_qty: u64,
        avg_price_rupees: f64,
    ) -> Result<(), PortfolioError> {
        let avg = fill_price_paise(plan_id, "avg_price", avg_price_rupees)?;
        let b = self.find_mut(plan_id)?;
        if filled_qty > b.filled_qty {
            b.filled_qty = filled_qty;
            b.avg_fill_paise = Some(avg);
        }
        Ok(())
    }

    /// One exit fill of `qty` units (incremental, not cumulative).
    pub fn on_exit_filled(
        &mut self,
        plan_id: &str,
        qty: u64,
        price_rupees: f64,
    ) -> Result<(), PortfolioError> {
        let px = fill_price_paise(plan_id, "price", price_rupees)?;
        let b = self.find_mut(plan_id)?;
        let bad = |problem: String| PortfolioError::BadFeedback {
            plan_id: plan_id.to_string(),
            key: "qty",
            problem,
        };
        if qty == 0 {
            return Err(bad("must be positive".into()));
        }
        if qty > b.position() {
            return Err(bad(format!(
                "{qty} exceeds the held position {} (filled {}, exited {})",
                b.position(),
                b.filled_qty,
                b.exited_qty
            )));
        }
        let avg = b.avg_fill_paise.unwrap_or(px);
        #[allow(clippy::cast_possible_truncation)] // bounded by prices x quantities
        let pnl = (b.side.sign() as f64 * (px - avg) * qty as f64).round() as i64;
        b.exited_qty += qty;
        b.partial_realized_paise += pnl;
        Ok(())
    }

    /// The bracket is over. `realized_paise` is its final gross PnL; it
    /// replaces the PnL accumulated from its exit fills. `charges_paise` are
    /// its charges when known; `None` estimates both legs at `rates` (see
    /// [`Portfolio::estimated_close`]). `day` is the
    /// IST day of the close: a late report for an earlier day does not
    /// count toward today.
    #[allow(clippy::too_many_arguments)]
    pub fn on_bracket_closed(
        &mut self,
        plan_id: &str,
        realized_paise: i64,
        charges_paise: Option<i64>,
        rates: &ChargeRates,
        ts_ns: i64,
        day: i64,
        cooldown_ns: i64,
    ) -> Result<OpenBracket, PortfolioError> {
        if let Some(c) = charges_paise.filter(|c| *c < 0) {
            return Err(PortfolioError::BadFeedback {
                plan_id: plan_id.to_string(),
                key: "charges",
                problem: format!("must not be negative, got {c} paise"),
            });
        }
        let b = self.take(plan_id)?;
        if self.day.map_or(true, |d| d == day) {
            self.closed_realized_paise += realized_paise;
            let charges = charges_paise
                .unwrap_or_else(|| Portfolio::estimated_close(&b, realized_paise, rates));
            self.closed_charges_paise = self.closed_charges_paise.saturating_add(charges);
        }
        if let Some(c) = self.cooldown_until.get_mut(b.slot) {
            let until = ts_ns.saturating_add(cooldown_ns);
            *c = Some(c.map_or(until, |prev| prev.max(until)));
        }
        Ok(b)
    }

    /// Charges of a closed bracket nobody reported: an entry leg at the
    /// average fill and an exit leg at the exit value its gross PnL implies.
    pub fn estimated_close(b: &OpenBracket, realized_paise: i64, rates: &ChargeRates) -> i64 {
        let Some(avg) = b.avg_fill_paise else {
            return 0;
        };
        #[allow(clippy::cast_precision_loss)] // quantities and PnL far below 2^53
        let (entry, exit) = {
            let entry = avg * b.filled_qty as f64;
            (entry, entry + b.side.sign() as f64 * realized_paise as f64)
        };
        rates.leg(b.side, entry) + rates.leg(b.side.opposite(), exit.max(0.0))
    }

    /// The entry never filled: the plan's heat and its instrument are free.
    pub fn on_plan_cancelled(&mut self, plan_id: &str) -> Result<OpenBracket, PortfolioError> {
        let b = self.find_mut(plan_id)?;
        if b.filled_qty > 0 {
            return Err(PortfolioError::HasFills(plan_id.to_string()));
        }
        self.take(plan_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bracket(id: &str, slot: usize) -> OpenBracket {
        OpenBracket {
            plan_id: id.into(),
            token: 1,
            slot,
            side: Side::Buy,
            entry: Price::from_paise(10_000),
            stop: Price::from_paise(9_800),
            tp: Price::from_paise(10_400),
            planned_qty: 100,
            filled_qty: 0,
            avg_fill_paise: None,
            exited_qty: 0,
            partial_realized_paise: 0,
            strategy: "ORB",
            signal_ts: 0,
        }
    }

    #[test]
    fn heat_follows_fills_and_exits() {
        let mut p = Portfolio::new(2);
        p.roll_day(10);
        p.open(bracket("a", 0));
        assert_eq!(p.heat_paise(), 200 * 100);
        assert_eq!(p.gross_exposure_paise(), 10_000 * 100);
        p.on_entry_filled("a", 60, 100.10).unwrap();
        // Entry still working for 40 more: the whole plan is at risk, from the fill.
        assert_eq!(p.heat_paise(), 210 * 100);
        assert_eq!(p.gross_exposure_paise(), 10_010 * 100);
        p.on_entry_filled("a", 40, 99.0).unwrap(); // stale cumulative update: ignored
        assert_eq!(p.brackets()[0].filled_qty, 60);
        p.on_exit_filled("a", 20, 101.10).unwrap();
        assert_eq!(p.heat_paise(), 210 * 80);
        assert_eq!(p.gross_exposure_paise(), 10_010 * 80);
        assert_eq!(p.realized_today_paise(), 100 * 20);
        assert_eq!(
            p.unrealized_paise(&|_| Some(Price::from_paise(10_110))),
            100 * 40
        );
        assert!(p.on_exit_filled("a", 41, 101.0).is_err(), "more than held");
        assert!(matches!(
            p.on_plan_cancelled("a"),
            Err(PortfolioError::HasFills(_))
        ));
        let closed = p
            .on_bracket_closed("a", 3_500, None, &ChargeRates::default(), 5, 10, 300)
            .unwrap();
        assert_eq!(closed.exited_qty, 20);
        assert_eq!((p.heat_paise(), p.realized_today_paise()), (0, 3_500));
        assert_eq!(p.gross_exposure_paise(), 0);
        assert_eq!(p.cooldown_until(0), Some(305));
        assert_eq!(p.trades_today(), 1);
        assert!(matches!(
            p.on_bracket_closed("a", 0, None, &ChargeRates::default(), 0, 10, 0),
            Err(PortfolioError::UnknownPlan(_))
        ));
    }

    #[test]
    fn cancelled_plans_free_heat_and_new_days_reset() {
        let mut p = Portfolio::new(2);
        p.roll_day(10);
        p.open(bracket("a", 0));
        p.open(bracket("b", 1));
        p.on_plan_cancelled("a").unwrap();
        assert_eq!(p.open_count(), 1);
        assert!(p.open_on_slot(0).is_none() && p.open_on_slot(1).is_some());
        p.on_entry_filled("b", 100, 100.0).unwrap();
        p.on_bracket_closed("b", -1_000, Some(2_000), &ChargeRates::default(), 1, 9, 10)
            .unwrap(); // late report for day 9
        assert_eq!(p.realized_today_paise(), 0);
        p.halt_for_daily_loss();
        assert!(!p.roll_day(9));
        assert!(p.roll_day(11));
        assert!(!p.daily_loss_halted());
        assert_eq!((p.trades_today(), p.cooldown_until(1)), (0, None));
        assert!(p.on_entry_filled("zz", 1, 1.0).is_err());
        p.open(bracket("c", 0));
        assert!(p.on_entry_filled("c", 1, f64::NAN).is_err());
    }

    #[test]
    fn daily_pnl_counts_charges_reported_and_estimated() {
        // 6.4 bps a buy, 3.2 a sell; the brackets are long.
        const BPS: &ChargeRates = &ChargeRates {
            buy_bps_e6: 6_400_000,
            sell_bps_e6: 3_200_000,
        };
        let mut p = Portfolio::new(2);
        p.roll_day(10);
        p.open(bracket("a", 0));
        p.open(bracket("b", 1));
        // Nothing filled: nothing charged, nothing to close.
        assert_eq!(p.daily_pnl(|_| None, BPS), DailyPnl::default());
        p.on_entry_filled("a", 100, 100.0).unwrap();
        p.on_exit_filled("a", 50, 99.0).unwrap();
        let last = |_| Some(Price::from_paise(9_800));
        let d = p.daily_pnl(last, BPS);
        // Bought 10,000 rupees: 6.40; sold 5,000 (at the entry price): 1.60;
        // to sell 50 x 98.00 = 4,900 rupees: 1.568 -> 1.57.
        assert_eq!(
            d,
            DailyPnl {
                realized_paise: -5_000,
                charges_paise: 640 + 160,
                unrealized_paise: -10_000,
                close_charges_paise: 157,
            }
        );
        assert_eq!(d.net_paise(), -5_000 - 800 - 10_000 - 157);
        // Closed with its charges reported: they replace every estimate.
        p.on_bracket_closed("a", -15_000, Some(4_321), BPS, 1, 10, 0)
            .unwrap();
        let d = p.daily_pnl(last, BPS);
        assert_eq!((d.realized_paise, d.charges_paise), (-15_000, 4_321));
        assert_eq!(d.close_charges_paise, 0);
        // Closed without: both legs estimated, the exit at the value its PnL implies.
        p.on_entry_filled("b", 100, 100.0).unwrap();
        p.on_bracket_closed("b", -20_000, None, BPS, 1, 10, 0)
            .unwrap();
        // Bought 10,000 rupees: 6.40; sold 9,800 rupees: 3.136 -> 3.14.
        assert_eq!(p.daily_pnl(last, BPS).charges_paise, 4_321 + 640 + 314);
        p.open(bracket("c", 0));
        assert!(p
            .on_bracket_closed("c", 0, Some(-1), BPS, 1, 10, 0)
            .is_err());
        assert_eq!(p.open_count(), 1, "a refused close changes nothing");
        p.roll_day(11);
        assert_eq!(p.daily_pnl(last, BPS).charges_paise, 0);
    }

    #[test]
    fn trading_state_spelling() {
        for s in ["ACTIVE", "PAUSED", "HALTED"] {
            assert_eq!(s.parse::<TradingState>().unwrap().as_str(), s);
        }
        assert!("active".parse::<TradingState>().is_err());
    }
}
