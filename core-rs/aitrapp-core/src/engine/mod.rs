//! The tick-to-decision engine: tick intake -> bars and indicators ->
//! strategies -> risk gate -> [`Decision`] or [`RiskBlock`].
//!
//! Pure: no clock reads, no I/O. Time arrives with the ticks (exchange
//! timestamps), with [`Engine::advance_time`] and, live, with the caller's
//! wall clock ([`Engine::set_clock_ns`]); the IST trading date and time of
//! day are derived from them. A new IST date resets daily PnL, trade
//! counts, cooldowns, session VWAP and the opening range.
//!
//! The trading day is set by the clock, by [`Engine::advance_time`] or,
//! failing both, by the first accepted tick; a tick of another day (or
//! outside the day's session) is refused, so only the caller moves the
//! engine to a new day.

mod batch;
mod token_map;

pub use batch::TickColumns;

use crate::bars::{Bar, BarBuilder};
use crate::config::{ConfigError, EngineConfig, RiskLimits, SessionTimes};
use crate::ids::{plan_client_id, PlanKey};
use crate::indicators::{SessionVwap, WilderAtr};
use crate::instrument::{Instrument, InstrumentError, Segment};
use crate::price::Price;
use crate::risk::{
    evaluate, heat_pct, DailyPnl, Detail, GateInput, OpenBracket, Portfolio, PortfolioError,
    RiskBlock, TradingState,
};
use crate::side::Side;
use crate::strategies::{self, MarketView, Signal, Strategy};
use crate::tick::{
    IstTime, RawTick, Tick, TickCounters, TickIntake, TickReject, TickRules, TimeFrame,
};
use token_map::TokenMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Instrument(#[from] InstrumentError),
    #[error(transparent)]
    Portfolio(#[from] PortfolioError),
    /// Batch columns of different lengths, or a bad feedback value.
    #[error("{0}")]
    Input(String),
}

/// A sized trade plan. It holds heat and its instrument from the moment it
/// is issued until the bracket is closed or the plan is cancelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Deterministic client id of the plan (see [`crate::ids::plan_client_id`]).
    pub plan_id: String,
    pub token: u32,
    pub tradingsymbol: String,
    pub exchange: String,
    pub side: Side,
    pub entry: Price,
    pub stop: Price,
    pub tp: Price,
    pub qty: u64,
    pub strategy: &'static str,
    pub reason: String,
    /// Exchange time (UTC ns) of the tick that produced the signal.
    pub signal_ts: i64,
    pub config_sha: String,
    /// |entry - stop| x qty.
    pub risk_paise: i64,
    /// Portfolio heat with this plan, percent of capital.
    pub heat_after_pct: f64,
    /// The risk-sized quantity was cut to `risk.max_position_notional_pct`.
    pub capped_by_notional: bool,
    /// The sized quantity was cut to the freeze limit.
    pub capped_by_freeze: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Decision(Decision),
    Block(RiskBlock),
}

/// Everything the engine knows about the book, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioSnapshot {
    pub state: TradingState,
    /// IST day (days since 1970-01-01) the daily figures belong to.
    pub day: Option<i64>,
    pub open_brackets: Vec<OpenBracket>,
    pub heat_paise: i128,
    pub heat_pct: f64,
    /// Summed notional of the open brackets (see [`OpenBracket::exposure_paise`]).
    pub gross_exposure_paise: i128,
    pub gross_exposure_pct: f64,
    /// Gross realized PnL of today's exits.
    pub realized_paise: i64,
    pub unrealized_paise: i64,
    /// Today's PnL as the daily-loss stop counts it (net of charges).
    pub daily: DailyPnl,
    pub trades_today: u32,
    pub daily_loss_halted: bool,
}

/// An open bracket of an earlier process, for [`Engine::restore_bracket`].
/// Prices in rupees, as the database holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct BracketRestore<'a> {
    pub plan_id: &'a str,
    pub token: u32,
    pub side: Side,
    /// Name of the strategy that issued the plan (one the engine knows).
    pub strategy: &'a str,
    pub entry_rupees: f64,
    pub stop_rupees: f64,
    pub tp_rupees: f64,
    pub planned_qty: u64,
    /// Units filled and still held.
    pub filled_qty: u64,
    /// Average entry fill; required when `filled_qty` is positive.
    pub avg_fill_rupees: Option<f64>,
    /// Exchange time (UTC ns) of the signal, for the read-outs.
    pub signal_ts: i64,
}

/// Names of every strategy the engine can run (plans carry them).
const STRATEGY_NAMES: [&str; 4] = [
    strategies::Orb::NAME,
    strategies::TrendPullback::NAME,
    strategies::VwapReversion::NAME,
    strategies::EmaCross::NAME,
];

/// Bars the engine's per-instrument ATR averages over (Wilder's period).
pub const ATR_PERIOD: u32 = 14;

/// A tick that passed [`Engine::intake`], ready for [`Engine::decide_on`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    slot: usize,
    pub tick: crate::tick::Tick,
}

/// Per-instrument state.
#[derive(Debug)]
struct Slot {
    inst: Instrument,
    intake: TickIntake,
    bars: BarBuilder,
    vwap: SessionVwap,
    /// A strategy reads the VWAP: only then is it worked out per tick (two
    /// i128 products and float conversions the other strategies never read).
    reads_vwap: bool,
    strategies: Vec<Box<dyn Strategy>>,
    last_price: Option<Price>,
    last_bar: Option<Bar>,
    /// ATR of the closed bars (paise), across days: what trailing stops trail by.
    atr: WilderAtr,
    session_day: Option<i64>,
}

impl Slot {
    fn close_bar(&mut self, bar: Bar) {
        for s in &mut self.strategies {
            s.on_bar(&bar);
        }
        self.atr.update(
            bar.high.paise() as f64,
            bar.low.paise() as f64,
            bar.close.paise() as f64,
        );
        self.last_bar = Some(bar);
    }
}

#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    config_sha: String,
    limits: RiskLimits,
    times: SessionTimes,
    rules: TickRules,
    /// The trading day and the caller's clock.
    frame: TimeFrame,
    slots: Vec<Slot>,
    tokens: TokenMap,
    portfolio: Portfolio,
    state: TradingState,
    counters: TickCounters,
    /// Signals of the tick being processed (reused to avoid allocating).
    pending: Vec<Signal>,
}

impl Engine {
    /// Validates the config and the instruments; starts ACTIVE with an empty book.
    pub fn new(config: EngineConfig, instruments: Vec<Instrument>) -> Result<Engine, EngineError> {
        config.validate()?;
        let limits = config.risk_limits()?;
        let times = config.session_times()?;
        let rules = config.tick_rules()?;
        if instruments.is_empty() {
            return Err(EngineError::Input(
                "instruments: at least one instrument is required".into(),
            ));
        }
        let mut tokens = TokenMap::default();
        let mut slots = Vec::with_capacity(instruments.len());
        for (i, inst) in instruments.into_iter().enumerate() {
            inst.validate()?;
            if inst.tradingsymbol.contains('|') {
                return Err(InstrumentError::Invalid {
                    symbol: inst.tradingsymbol.clone(),
                    key: "tradingsymbol",
                    problem: "must not contain '|'".into(),
                }
                .into());
            }
            if tokens.insert(inst.instrument_token, i).is_some() {
                return Err(EngineError::Input(format!(
                    "instruments: token {} appears more than once",
                    inst.instrument_token
                )));
            }
            // An index has ticks but cannot be traded: no strategies on it.
            let strategies = if inst.segment == Segment::Idx {
                Vec::new()
            } else {
                strategies::build(&config)?
            };
            let band = config.price_band(inst.segment)?;
            let reads_vwap = strategies
                .iter()
                .any(|s| s.name() == strategies::VwapReversion::NAME);
            slots.push(Slot {
                intake: TickIntake::with_band(inst.instrument_token, inst.tick_size, band),
                bars: BarBuilder::new(times.bar_ns, times.market_open_ns),
                vwap: SessionVwap::new(),
                reads_vwap,
                strategies,
                last_price: None,
                last_bar: None,
                atr: WilderAtr::new(ATR_PERIOD),
                session_day: None,
                inst,
            });
        }
        Ok(Engine {
            config_sha: config.config_sha(),
            config,
            limits,
            times,
            rules,
            frame: TimeFrame::default(),
            portfolio: Portfolio::new(slots.len()),
            slots,
            tokens,
            state: TradingState::Active,
            counters: TickCounters::default(),
            pending: Vec::new(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn config_sha(&self) -> &str {
        &self.config_sha
    }

    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.slots.iter().map(|s| &s.inst)
    }

    fn slot_of(&self, token: i64) -> Option<usize> {
        let t = u32::try_from(token).ok()?;
        self.tokens.get(&t).copied()
    }

    /// Processes one tick; outcomes (usually none) are appended to `out`. A
    /// rejected tick is counted by reason and changes nothing else.
    pub fn on_tick(&mut self, raw: &RawTick, out: &mut Vec<Outcome>) -> Result<(), TickReject> {
        let result = self.process(raw, out);
        if let Err(why) = result {
            self.counters.reject(why);
        }
        result
    }

    /// Replays columns of ticks; `sink(index, outcome)` receives every
    /// outcome with the index of the tick that produced it. Gives the same
    /// outcomes as calling [`Engine::on_tick`] for each row.
    pub fn on_batch(
        &mut self,
        ticks: &TickColumns<'_>,
        mut sink: impl FnMut(usize, Outcome),
    ) -> Result<(), EngineError> {
        let n = ticks.check()?;
        let mut buf = Vec::new();
        for i in 0..n {
            // A rejected tick is counted inside on_tick; a batch goes on.
            let _ = self.on_tick(&ticks.row(i), &mut buf);
            for o in buf.drain(..) {
                sink(i, o);
            }
        }
        Ok(())
    }

    fn process(&mut self, raw: &RawTick, out: &mut Vec<Outcome>) -> Result<(), TickReject> {
        let accepted = self.intake(raw)?;
        self.decide_on(&accepted, out);
        Ok(())
    }

    /// First half of a tick: validation, bars, VWAP and the last price. A
    /// rejected tick changes nothing (the caller counts it through
    /// [`Engine::count_reject`]). The kernel matches the venue between the two
    /// halves, so the strategies decide on a book that already holds the fills
    /// this very tick caused.
    pub fn intake(&mut self, raw: &RawTick) -> Result<Accepted, TickReject> {
        let accepted = self.check(raw)?;
        self.apply(&accepted);
        Ok(accepted)
    }

    /// Validates a tick (the guards' own bookkeeping only): nothing the
    /// strategies, the risk gate or a bracket reads has changed yet, so the
    /// kernel can fire the timers due before the tick first.
    pub fn check(&mut self, raw: &RawTick) -> Result<Accepted, TickReject> {
        let ix = self
            .slot_of(raw.token)
            .ok_or(TickReject::UnknownInstrument)?;
        let Engine {
            slots,
            counters,
            rules,
            frame,
            ..
        } = self;
        let accepted = slots[ix].intake.accept_at(raw, rules, *frame)?;
        counters.accepted += 1;
        counters.off_tick_rounded += u64::from(accepted.rounded);
        counters.band_reanchored += u64::from(accepted.reanchored);
        Ok(Accepted {
            slot: ix,
            tick: accepted.tick,
        })
    }

    /// A checked tick becomes the market: the day, the bars, the VWAP and the
    /// last price move to it.
    pub fn apply(&mut self, accepted: &Accepted) {
        let Engine {
            slots,
            portfolio,
            times,
            frame,
            ..
        } = self;
        let slot = &mut slots[accepted.slot];
        let tick = accepted.tick;
        let day = tick.ist.day;
        frame.day.get_or_insert(day);
        portfolio.roll_day(day);
        if slot.session_day != Some(day) {
            slot.session_day = Some(day);
            slot.vwap.reset();
            for s in &mut slot.strategies {
                s.on_session_start();
            }
        }
        if let Some(bar) = slot
            .bars
            .on_tick(tick.ts_ns, tick.ist, tick.last, tick.volume_delta)
        {
            slot.close_bar(bar);
        }
        if tick.ist.tod_ns >= times.market_open_ns {
            slot.vwap.update(tick.last.paise(), tick.volume_delta);
        }
        slot.last_price = Some(tick.last);
    }

    /// Counts a tick [`Engine::intake`] refused.
    pub fn count_reject(&mut self, why: TickReject) {
        self.counters.reject(why);
    }

    /// Second half of a tick: strategies and the risk gate.
    pub fn decide_on(&mut self, accepted: &Accepted, out: &mut Vec<Outcome>) {
        let ix = accepted.slot;
        let tick = &accepted.tick;
        let Engine { slots, pending, .. } = self;
        let slot = &mut slots[ix];
        if slot.strategies.is_empty() {
            return;
        }
        let (vwap_paise, vwap_sd_paise) = if slot.reads_vwap {
            (slot.vwap.value(), slot.vwap.stdev())
        } else {
            (None, None)
        };
        let view = MarketView {
            tick,
            tick_size: slot.inst.tick_size,
            vwap_paise,
            vwap_sd_paise,
        };
        for s in &mut slot.strategies {
            if let Some(sig) = s.on_tick(&view) {
                pending.push(sig);
            }
        }
        if !pending.is_empty() {
            let signals = std::mem::take(&mut self.pending);
            for sig in &signals {
                out.push(self.decide(ix, sig, tick));
            }
            self.pending = signals;
            self.pending.clear();
        }
    }

    /// Runs the gate on one signal and, if it passes, issues the plan.
    fn decide(&mut self, ix: usize, sig: &Signal, tick: &Tick) -> Outcome {
        let Engine {
            slots,
            portfolio,
            limits,
            times,
            state,
            config_sha,
            ..
        } = self;
        let inst = &slots[ix].inst;
        let input = GateInput {
            signal: sig,
            instrument: inst,
            slot: ix,
            state: *state,
            ist: tick.ist,
            spread: match (tick.bid, tick.ask) {
                (Some(b), Some(a)) => a.checked_sub(b),
                _ => None,
            },
        };
        let rates = limits.charges;
        let approved = match evaluate(limits, times, portfolio, &input, |p| {
            p.daily_pnl(|s| slots.get(s).and_then(|x| x.last_price), &rates)
        }) {
            Ok(a) => a,
            Err(block) => return Outcome::Block(block),
        };
        let key = PlanKey {
            symbol: &inst.tradingsymbol,
            side: sig.side,
            entry: sig.entry,
            stop: sig.stop,
            tp: sig.tp,
            qty: approved.qty,
            strategy: sig.strategy,
            config_sha,
            signal_ts: sig.signal_ts,
        };
        let plan_id = match plan_client_id(&key) {
            Ok(id) => id,
            // Unreachable with validated instruments; never trade on it.
            Err(e) => {
                return Outcome::Block(RiskBlock {
                    reason: crate::risk::BlockReason::InvalidSignal,
                    strategy: sig.strategy,
                    token: sig.token,
                    side: sig.side,
                    entry: sig.entry,
                    stop: sig.stop,
                    tp: sig.tp,
                    signal_ts: sig.signal_ts,
                    details: vec![("error", Detail::Text(e.to_string()))],
                })
            }
        };
        portfolio.open(OpenBracket {
            plan_id: plan_id.clone(),
            token: sig.token,
            slot: ix,
            side: sig.side,
            entry: sig.entry,
            stop: sig.stop,
            tp: sig.tp,
            planned_qty: approved.qty,
            filled_qty: 0,
            avg_fill_paise: None,
            exited_qty: 0,
            partial_realized_paise: 0,
            strategy: sig.strategy,
            signal_ts: sig.signal_ts,
        });
        Outcome::Decision(Decision {
            plan_id,
            token: sig.token,
            tradingsymbol: inst.tradingsymbol.clone(),
            exchange: inst.exchange.clone(),
            side: sig.side,
            entry: sig.entry,
            stop: sig.stop,
            tp: sig.tp,
            qty: approved.qty,
            strategy: sig.strategy,
            reason: sig.reason.clone(),
            signal_ts: sig.signal_ts,
            config_sha: config_sha.clone(),
            risk_paise: approved.risk_paise,
            heat_after_pct: heat_pct(approved.heat_after_paise, limits.capital),
            capped_by_notional: approved.capped_by_notional,
            capped_by_freeze: approved.capped_by_freeze,
        })
    }

    /// Closes every bar whose bucket has ended by `ts_ns` (UTC) and moves the
    /// daily figures, and the trading day, to its IST date. Produces no
    /// signals: entries are priced off ticks. A replay of several days calls
    /// it at each new day, before that day's ticks.
    pub fn advance_time(&mut self, ts_ns: i64) {
        self.roll_trading_day(IstTime::from_utc_ns(ts_ns).day);
        for slot in &mut self.slots {
            if let Some(bar) = slot.bars.advance(ts_ns) {
                slot.close_bar(bar);
            }
        }
    }

    /// Live: the caller's wall clock (UTC ns). From now on a tick stamped
    /// further than `ticks.max_clock_skew_seconds` from it is refused, and
    /// its IST date is the trading day. Call it as the clock advances (at
    /// least every few seconds); the core reads no clock of its own.
    pub fn set_clock_ns(&mut self, now_ns: i64) {
        self.frame.clock_ns = Some(now_ns);
        self.roll_trading_day(IstTime::from_utc_ns(now_ns).day);
    }

    pub fn clock_ns(&self) -> Option<i64> {
        self.frame.clock_ns
    }

    /// The IST day being traded, once known.
    pub fn trading_day(&self) -> Option<i64> {
        self.frame.day
    }

    fn roll_trading_day(&mut self, day: i64) {
        if self.frame.day.map_or(true, |d| d < day) {
            self.frame.day = Some(day);
        }
        self.portfolio.roll_day(day);
    }

    /// The previous close of an instrument anchors its price band for the
    /// trading day (or, before any, for the first day); `band_pct`
    /// replaces the segment's band for this instrument (e.g. the 2, 5 or
    /// 10% band of one NSE security; 0 = none).
    pub fn set_previous_close(
        &mut self,
        token: u32,
        close_rupees: f64,
        band_pct: Option<f64>,
    ) -> Result<(), EngineError> {
        let ix = self.slot_of(i64::from(token)).ok_or_else(|| {
            EngineError::Input(format!(
                "instrument_token {token} is not traded by this engine"
            ))
        })?;
        let bad = |key: &str, problem: String| EngineError::Input(format!("{key}: {problem}"));
        if !(close_rupees.is_finite() && close_rupees > 0.0) {
            return Err(bad(
                "previous_close",
                format!("must be a positive finite rupee price, got {close_rupees}"),
            ));
        }
        let close = Price::from_rupees_f64(close_rupees)
            .map_err(|e| bad("previous_close", e.to_string()))?;
        let pct = band_pct
            .map(|p| {
                if p.is_finite() && (0.0..=crate::config::MAX_BAND_PCT).contains(&p) {
                    #[allow(clippy::cast_possible_truncation)] // bounded just above
                    Ok((p * crate::config::PCT_SCALE as f64).round() as i64)
                } else {
                    Err(bad(
                        "band_pct",
                        format!("must be in [0, {}], got {p}", crate::config::MAX_BAND_PCT),
                    ))
                }
            })
            .transpose()?;
        let day = self.frame.day;
        let band = self.slots[ix].intake.band_mut();
        if let Some(p) = pct {
            band.set_pct_e6(p);
        }
        band.set_previous_close(close, day);
        Ok(())
    }

    pub fn set_trading_state(&mut self, state: TradingState) {
        self.state = state;
    }

    pub fn trading_state(&self) -> TradingState {
        self.state
    }

    /// Cumulative entry fill of a plan.
    pub fn on_entry_filled(
        &mut self,
        plan_id: &str,
        filled_qty: u64,
        avg_price_rupees: f64,
    ) -> Result<(), EngineError> {
        self.portfolio
            .on_entry_filled(plan_id, filled_qty, avg_price_rupees)?;
        self.latch_daily_loss();
        Ok(())
    }

    /// One exit fill of `qty` units (incremental).
    pub fn on_exit_filled(
        &mut self,
        plan_id: &str,
        qty: u64,
        price_rupees: f64,
    ) -> Result<(), EngineError> {
        self.portfolio.on_exit_filled(plan_id, qty, price_rupees)?;
        self.latch_daily_loss();
        Ok(())
    }

    /// The bracket is flat and done; `realized_pnl_rupees` is its final
    /// gross PnL and `charges_rupees` what its orders cost (brokerage, STT,
    /// fees, GST, stamp duty). Without charges both legs are estimated at
    /// `risk.charges_buy_bps` / `risk.charges_sell_bps`. The daily-loss stop
    /// counts the net.
    /// Starts the instrument's cooldown at `ts_ns`.
    pub fn on_bracket_closed(
        &mut self,
        plan_id: &str,
        realized_pnl_rupees: f64,
        charges_rupees: Option<f64>,
        ts_ns: i64,
    ) -> Result<(), EngineError> {
        let paise = |key: &'static str, rupees: f64| {
            if !rupees.is_finite() || rupees.abs() > 1e13 {
                return Err(PortfolioError::BadFeedback {
                    plan_id: plan_id.to_string(),
                    key,
                    problem: format!("must be a finite rupee amount, got {rupees}"),
                });
            }
            #[allow(clippy::cast_possible_truncation)] // bounded just above
            Ok((rupees * 100.0).round() as i64)
        };
        let realized = paise("realized_pnl_rupees", realized_pnl_rupees)?;
        let charges = charges_rupees
            .map(|c| paise("charges_rupees", c))
            .transpose()?;
        let day = IstTime::from_utc_ns(ts_ns).day;
        self.portfolio.roll_day(day);
        self.portfolio.on_bracket_closed(
            plan_id,
            realized,
            charges,
            &self.limits.charges,
            ts_ns,
            day,
            self.limits.cooldown_ns,
        )?;
        self.latch_daily_loss();
        Ok(())
    }

    /// The entry never filled (cancelled or rejected): frees heat and the
    /// instrument, without a cooldown.
    pub fn on_plan_cancelled(&mut self, plan_id: &str, ts_ns: i64) -> Result<(), EngineError> {
        self.portfolio.roll_day(IstTime::from_utc_ns(ts_ns).day);
        self.portfolio.on_plan_cancelled(plan_id)?;
        Ok(())
    }

    /// After a restart: today's realized PnL (gross, as
    /// [`Engine::on_bracket_closed`] receives it), the charges of those
    /// trades and the count of plans issued for IST day `ist_day`, which
    /// becomes the engine's (and the trading) day if it has none yet.
    /// Refuses another day than the engine's. A net loss beyond the daily
    /// limit latches the daily-loss halt, as it would have live.
    pub fn restore_day(
        &mut self,
        ist_day: i64,
        realized_paise: i64,
        charges_paise: i64,
        trades_today: u32,
    ) -> Result<(), EngineError> {
        self.portfolio
            .restore_day(ist_day, realized_paise, charges_paise, trades_today)?;
        self.frame.day.get_or_insert(ist_day);
        self.latch_daily_loss();
        Ok(())
    }

    /// After a restart: an open bracket as if it had been decided (and
    /// filled) by this engine: it counts toward heat, gross exposure, open
    /// positions and holds its instrument until closed or cancelled.
    pub fn restore_bracket(&mut self, r: &BracketRestore<'_>) -> Result<(), EngineError> {
        let bad = |key: &'static str, problem: String| PortfolioError::BadRestore {
            what: format!("plan {:?}", r.plan_id),
            key,
            problem,
        };
        let slot = self.slot_of(i64::from(r.token)).ok_or_else(|| {
            bad(
                "instrument_token",
                format!("{} is not traded by this engine", r.token),
            )
        })?;
        let strategy = STRATEGY_NAMES
            .into_iter()
            .find(|n| *n == r.strategy)
            .ok_or_else(|| {
                bad(
                    "strategy",
                    format!("{:?} is not a strategy of this engine", r.strategy),
                )
            })?;
        let price = |key: &'static str, rupees: f64| {
            if !(rupees.is_finite() && rupees > 0.0) {
                return Err(bad(
                    key,
                    format!("must be a positive finite rupee price, got {rupees}"),
                ));
            }
            Price::from_rupees_f64(rupees).map_err(|e| bad(key, e.to_string()))
        };
        // Kept as a float like a live fill, so heat is computed the same way.
        let avg_fill_paise = match r.avg_fill_rupees {
            Some(a) => price("avg_fill", a).map(|_| Some(a * 100.0))?,
            None => None,
        };
        self.portfolio.restore_bracket(OpenBracket {
            plan_id: r.plan_id.to_string(),
            token: r.token,
            slot,
            side: r.side,
            entry: price("entry", r.entry_rupees)?,
            stop: price("stop", r.stop_rupees)?,
            tp: price("tp", r.tp_rupees)?,
            planned_qty: r.planned_qty,
            filled_qty: r.filled_qty,
            avg_fill_paise,
            exited_qty: 0,
            partial_realized_paise: 0,
            strategy,
            signal_ts: r.signal_ts,
        })?;
        Ok(())
    }

    /// After a restart: the cooldown a bracket on `token` closed at `ts_ns`
    /// (UTC) left, as [`Engine::on_bracket_closed`] would have started it.
    /// A close on another IST day than the engine's leaves none.
    pub fn restore_cooldown(&mut self, token: u32, ts_ns: i64) -> Result<(), EngineError> {
        let slot = self
            .slot_of(i64::from(token))
            .ok_or_else(|| PortfolioError::BadRestore {
                what: "a cooldown".into(),
                key: "instrument_token",
                problem: format!("{token} is not traded by this engine"),
            })?;
        let day = IstTime::from_utc_ns(ts_ns).day;
        self.portfolio
            .restore_cooldown(slot, ts_ns, day, self.limits.cooldown_ns);
        Ok(())
    }

    /// Today's PnL as the daily-loss stop counts it.
    pub fn daily_pnl(&self) -> DailyPnl {
        self.portfolio.daily_pnl(
            |s| self.slots.get(s).and_then(|x| x.last_price),
            &self.limits.charges,
        )
    }

    fn latch_daily_loss(&mut self) {
        if self.daily_pnl().breaches(&self.limits) {
            self.portfolio.halt_for_daily_loss();
        }
    }

    pub fn tick_counters(&self) -> &TickCounters {
        &self.counters
    }

    pub fn portfolio(&self) -> PortfolioSnapshot {
        let heat = self.portfolio.heat_paise();
        let gross = self.portfolio.gross_exposure_paise();
        let daily = self.daily_pnl();
        PortfolioSnapshot {
            state: self.state,
            day: self.portfolio.day(),
            open_brackets: self.portfolio.brackets().to_vec(),
            heat_paise: heat,
            heat_pct: heat_pct(heat, self.limits.capital),
            gross_exposure_paise: gross,
            gross_exposure_pct: heat_pct(gross, self.limits.capital),
            realized_paise: daily.realized_paise,
            unrealized_paise: daily.unrealized_paise,
            daily,
            trades_today: self.portfolio.trades_today(),
            daily_loss_halted: self.portfolio.daily_loss_halted(),
        }
    }

    pub fn last_price(&self, token: i64) -> Option<Price> {
        self.slots[self.slot_of(token)?].last_price
    }

    /// The most recently closed bar of an instrument.
    pub fn last_bar(&self, token: i64) -> Option<Bar> {
        self.slots[self.slot_of(token)?].last_bar
    }

    /// The bar still being built.
    pub fn current_bar(&self, token: i64) -> Option<Bar> {
        self.slots[self.slot_of(token)?].bars.current().copied()
    }

    /// Wilder ATR over the last [`ATR_PERIOD`] closed bars, rounded to the
    /// paisa; None until that many bars have closed (or for an unknown token).
    pub fn atr(&self, token: i64) -> Option<Price> {
        let v = self.slots[self.slot_of(token)?].atr.value()?;
        #[allow(clippy::cast_possible_truncation)] // a price range, far inside i64
        Some(Price::from_paise(v.round() as i64))
    }

    /// Session VWAP in paise.
    pub fn vwap_paise(&self, token: i64) -> Option<f64> {
        self.slots[self.slot_of(token)?].vwap.value()
    }
}

#[cfg(test)]
mod restore_tests {
    //! A restarted engine, restored from what the first one left, blocks as
    //! the first one would have.
    use super::*;
    use crate::tick::NS_PER_SEC;

    /// 2026-01-01 09:15:00 IST.
    const OPEN: i64 = 1_767_239_100_000_000_000;
    /// Falls then rises: one upward cross of EMA2 over EMA4.
    const PATH: [f64; 8] = [100.0, 99.9, 99.8, 99.7, 99.6, 99.8, 100.1, 100.4];

    fn day() -> i64 {
        IstTime::from_utc_ns(OPEN).day
    }

    fn inst(token: u32) -> Instrument {
        Instrument {
            exchange: "NSE".into(),
            tradingsymbol: format!("SYM{token}"),
            instrument_token: token,
            segment: Segment::Eq,
            tick_size: Price::from_paise(5),
            lot_size: 1,
            freeze_qty: 100_000,
        }
    }

    fn config() -> EngineConfig {
        let mut cfg = EngineConfig::default();
        cfg.strategies.orb.enabled = false;
        cfg.strategies.trend_pullback.enabled = false;
        cfg.strategies.vwap_reversion.enabled = false;
        cfg.strategies.ema_cross.enabled = true;
        cfg.strategies.ema_cross.fast_period = 2;
        cfg.strategies.ema_cross.slow_period = 4;
        cfg.risk.max_position_notional_pct = 100.0;
        cfg
    }

    fn engine(cfg: EngineConfig) -> Engine {
        Engine::new(cfg, vec![inst(1), inst(2), inst(3)]).unwrap()
    }

    /// "DECISION" or the block reason of each outcome of the path on `token`.
    fn feed(e: &mut Engine, token: i64, start_sec: i64) -> (Vec<&'static str>, Vec<Outcome>) {
        let mut out = Vec::new();
        for (i, px) in PATH.iter().enumerate() {
            let s = start_sec + i64::try_from(i).unwrap();
            let raw = RawTick {
                token,
                ts_ns: OPEN + s * NS_PER_SEC,
                last_price: *px,
                last_qty: 1,
                volume: s,
                bid: None,
                ask: None,
                oi: None,
            };
            e.on_tick(&raw, &mut out).unwrap();
        }
        let kinds = out
            .iter()
            .map(|o| match o {
                Outcome::Decision(_) => "DECISION",
                Outcome::Block(b) => b.reason.as_str(),
            })
            .collect();
        (kinds, out)
    }

    fn held<'a>(plan_id: &'a str, token: u32, stop: f64, qty: u64) -> BracketRestore<'a> {
        BracketRestore {
            plan_id,
            token,
            side: Side::Buy,
            strategy: "EmaCross",
            entry_rupees: 100.0,
            stop_rupees: stop,
            tp_rupees: 110.0,
            planned_qty: qty,
            filled_qty: qty,
            avg_fill_rupees: Some(100.0),
            signal_ts: OPEN,
        }
    }

    /// The first process trades token 1 and is filled; a second one restores
    /// from its snapshot and reads and blocks the same.
    #[test]
    fn a_restored_engine_matches_the_one_before_the_restart() {
        let mut first = engine(config());
        let (k, out) = feed(&mut first, 1, 600);
        assert_eq!(k, ["DECISION"]);
        let Outcome::Decision(d) = &out[0] else {
            panic!()
        };
        first.on_entry_filled(&d.plan_id, d.qty, 100.12).unwrap();
        let before = first.portfolio();
        let b = &before.open_brackets[0];

        let mut second = engine(config());
        assert_eq!(second.portfolio().day, None);
        second
            .restore_day(day(), before.realized_paise, 0, before.trades_today)
            .unwrap();
        second
            .restore_bracket(&BracketRestore {
                plan_id: &b.plan_id,
                token: b.token,
                side: b.side,
                strategy: b.strategy,
                entry_rupees: b.entry.to_rupees_f64(),
                stop_rupees: b.stop.to_rupees_f64(),
                tp_rupees: b.tp.to_rupees_f64(),
                planned_qty: b.planned_qty,
                filled_qty: b.filled_qty,
                avg_fill_rupees: Some(100.12),
                signal_ts: b.signal_ts,
            })
            .unwrap();
        let after = second.portfolio();
        assert_eq!(after.day, Some(day()));
        assert_eq!(after.open_brackets, before.open_brackets);
        assert_eq!(
            (
                after.heat_paise,
                after.gross_exposure_paise,
                after.trades_today
            ),
            (before.heat_paise, before.gross_exposure_paise, 1)
        );
        assert_eq!(feed(&mut second, 1, 700).0, ["INSTRUMENT_BUSY"]);
        assert_eq!(feed(&mut second, 2, 700).0, ["DECISION"]);
        assert_eq!(second.portfolio().trades_today, 2);

        // Closing the restored plan works like closing a live one.
        for e in [&mut first, &mut second] {
            e.on_bracket_closed(&d.plan_id, -1_234.5, Some(20.0), OPEN + 710 * NS_PER_SEC)
                .unwrap();
        }
        let closed = second.portfolio();
        assert_eq!(closed.realized_paise, -123_450);
        assert_eq!(closed.open_brackets.len(), 1, "token 2's plan stays");
        assert_eq!(feed(&mut second, 1, 800).0, ["COOLDOWN", "COOLDOWN"]);
        assert!(second
            .on_bracket_closed(&d.plan_id, 0.0, None, OPEN)
            .is_err());
    }

    #[test]
    fn restored_brackets_count_toward_positions_and_heat() {
        let mut cfg = config();
        cfg.risk.max_open_positions = 1;
        let mut e = engine(cfg);
        e.restore_day(day(), 0, 0, 1).unwrap();
        e.restore_bracket(&held("p2", 2, 99.0, 10)).unwrap();
        assert_eq!(feed(&mut e, 1, 600).0, ["MAX_OPEN_POSITIONS"]);

        // 1.8% of 10 lakh at risk already; the next 0.5% plan breaks 2%.
        let mut e = engine(config());
        e.restore_day(day(), 0, 0, 1).unwrap();
        e.restore_bracket(&held("p2", 2, 90.0, 1_800)).unwrap();
        let snap = e.portfolio();
        assert_eq!(snap.heat_paise, 1_800_000);
        assert_eq!(snap.gross_exposure_paise, 18_000_000);
        assert_eq!(feed(&mut e, 1, 600).0, ["PORTFOLIO_HEAT"]);
        // Cancelling it (had it not filled) would free the heat; it has fills.
        assert!(e.on_plan_cancelled("p2", OPEN).is_err());
    }

    #[test]
    fn restored_day_figures_block_like_the_live_ones() {
        // 2.5% of 10 lakh lost already: halted for the day.
        let mut e = engine(config());
        e.restore_day(day(), -2_500_000, 0, 3).unwrap();
        assert!(e.portfolio().daily_loss_halted);
        assert_eq!(feed(&mut e, 1, 600).0, ["DAILY_LOSS"]);

        let mut e = engine(config());
        e.restore_day(day(), -2_499_900, 0, 3).unwrap();
        assert!(!e.portfolio().daily_loss_halted);
        // The same day with its charges is a net loss past the stop.
        let mut e = engine(config());
        e.restore_day(day(), -2_499_900, 100, 3).unwrap();
        assert!(e.portfolio().daily_loss_halted);
        assert!(e.restore_day(day(), 0, -1, 3).is_err(), "negative charges");
        let mut e = engine(config());
        e.restore_day(day(), -2_499_900, 0, 3).unwrap();
        assert!(!e.portfolio().daily_loss_halted);
        assert_eq!(feed(&mut e, 1, 600).0, ["DECISION"]);

        let mut e = engine(config());
        e.restore_day(day(), 0, 0, 20).unwrap();
        assert_eq!(feed(&mut e, 1, 600).0, ["MAX_TRADES"]);

        // A bracket closed 100 s before the path still cools token 1 down.
        let mut e = engine(config());
        e.restore_day(day(), 0, 0, 1).unwrap();
        e.restore_cooldown(1, OPEN + 500 * NS_PER_SEC).unwrap();
        e.restore_cooldown(2, OPEN - 86_400 * NS_PER_SEC).unwrap(); // yesterday: none
        assert_eq!(feed(&mut e, 1, 600).0, ["COOLDOWN"]);
        assert_eq!(feed(&mut e, 2, 600).0, ["DECISION"]);
        assert!(e.restore_cooldown(9, OPEN).is_err());

        // A later day of ticks starts clean, once the day has moved on.
        let next = 86_400;
        e.advance_time(OPEN + next * NS_PER_SEC);
        assert_eq!(
            feed(&mut e, 1, next + 600).0,
            ["DECISION", "INSTRUMENT_BUSY"]
        );
        assert_eq!(e.portfolio().trades_today, 1);
    }

    #[test]
    fn bad_restores_are_refused_and_change_nothing() {
        let mut e = engine(config());
        e.restore_day(day(), 0, 0, 0).unwrap();
        assert!(e.restore_day(day() + 1, 0, 0, 0).is_err(), "another day");
        e.restore_bracket(&held("p1", 1, 99.0, 10)).unwrap();
        let msg = |r: Result<(), EngineError>| r.unwrap_err().to_string();
        assert!(msg(e.restore_bracket(&held("p1", 2, 99.0, 10))).contains("already"));
        assert!(msg(e.restore_bracket(&held("p9", 1, 99.0, 10))).contains("instrument_token"));
        assert!(msg(e.restore_bracket(&held("p9", 7, 99.0, 10))).contains("instrument_token"));
        assert!(msg(e.restore_bracket(&held("", 2, 99.0, 10))).contains("plan_id"));
        assert!(msg(e.restore_bracket(&held("p9", 2, 101.0, 10))).contains("stop/tp"));
        assert!(msg(e.restore_bracket(&held("p9", 2, f64::NAN, 10))).contains("stop"));
        assert!(msg(e.restore_bracket(&held("p9", 2, 99.0, 0))).contains("planned_qty"));
        let mut r = held("p9", 2, 99.0, 10);
        r.strategy = "Nope";
        assert!(msg(e.restore_bracket(&r)).contains("strategy"));
        r.strategy = "EmaCross";
        r.filled_qty = 11;
        assert!(msg(e.restore_bracket(&r)).contains("filled_qty"));
        r.filled_qty = 10;
        r.avg_fill_rupees = None;
        assert!(msg(e.restore_bracket(&r)).contains("avg_fill"));
        r.avg_fill_rupees = Some(-1.0);
        assert!(msg(e.restore_bracket(&r)).contains("avg_fill"));
        assert!(matches!(
            e.restore_bracket(&r),
            Err(EngineError::Portfolio(PortfolioError::BadRestore { .. }))
        ));
        // A working entry (nothing filled yet) is fine, without a fill price.
        r.filled_qty = 0;
        r.avg_fill_rupees = None;
        e.restore_bracket(&r).unwrap();
        assert_eq!(e.portfolio().open_brackets.len(), 2);
        e.on_plan_cancelled("p9", OPEN).unwrap();
        assert_eq!(e.portfolio().open_brackets.len(), 1);
    }
}
