//! Shared builders for the SimVenue tests (no tests of its own).
//! Prices in the helpers are rupees (as the Python paper tests write them);
//! the venue sees paise.
#![allow(dead_code, clippy::unwrap_used)]

use aitrapp_core::oco::OrderType;
use aitrapp_core::venue::{
    ClientRequest, Protection, Quote, SimVenue, SimVenueConfig, Validity, VenueOrder, VenueStatus,
    VenueUpdate,
};
use aitrapp_core::{Instrument, Price, Segment, Side};

pub const SEC: i64 = 1_000_000_000;
pub const MS: i64 = 1_000_000;
/// 2026-05-04 09:15:00 IST, a Monday.
pub const T0: i64 = 1_777_866_300 * SEC;

pub const EQ: u32 = 1; // RELIANCE-like cash equity, tick 0.05, lot 1
pub const FUT: u32 = 2; // NIFTY future, tick 0.10, lot 65, freeze 1800
pub const OPT: u32 = 3; // NIFTY option, tick 0.05, lot 65
pub const IDX: u32 = 4; // NIFTY 50 index: ticks, no orders
pub const PENNY: u32 = 5; // a cheap stock, tick 0.01

pub const START: u64 = 100_000_000_000_001;

pub fn instruments() -> Vec<Instrument> {
    let mk = |token, exchange: &str, symbol: &str, segment, tick, lot, freeze| Instrument {
        exchange: exchange.into(),
        tradingsymbol: symbol.into(),
        instrument_token: token,
        segment,
        tick_size: Price::from_paise(tick),
        lot_size: lot,
        freeze_qty: freeze,
    };
    vec![
        mk(EQ, "NSE", "RELIANCE", Segment::Eq, 5, 1, 100_000),
        mk(FUT, "NFO", "NIFTY26MAYFUT", Segment::Fut, 10, 65, 1800),
        mk(OPT, "NFO", "NIFTY26MAY24000CE", Segment::Opt, 5, 65, 1800),
        mk(IDX, "NSE", "NIFTY 50", Segment::Idx, 5, 1, 1),
        mk(PENNY, "NSE", "IDEA", Segment::Eq, 1, 1, 100_000),
    ]
}

pub fn rs(rupees: f64) -> Price {
    Price::from_rupees_f64(rupees).unwrap()
}

pub fn cfg() -> SimVenueConfig {
    SimVenueConfig {
        ack_latency_ns: 50 * MS,
        ..SimVenueConfig::default()
    }
}

/// A venue driven the way the Python broker drives it: requests at the
/// latest time seen, settled at once.
pub struct H {
    pub v: SimVenue,
    pub n: u64,
}

impl H {
    pub fn new(cfg: SimVenueConfig) -> H {
        H {
            v: SimVenue::new(cfg, &instruments()).unwrap(),
            n: 0,
        }
    }

    pub fn std() -> H {
        H::new(cfg())
    }

    pub fn now(&self) -> i64 {
        self.v.clock_ns()
    }

    /// One tick (last, bid, ask in rupees; 0 for "none"); the updates it caused.
    pub fn tick(&mut self, ts: i64, last: f64, bid: f64, ask: f64) -> Vec<VenueUpdate> {
        self.tick_full(EQ, ts, last, bid, ask, 0, 0)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tick_full(
        &mut self,
        token: u32,
        ts: i64,
        last: f64,
        bid: f64,
        ask: f64,
        volume: u64,
        last_qty: u64,
    ) -> Vec<VenueUpdate> {
        let side = |x: f64| (x > 0.0).then(|| rs(x));
        let q = Quote {
            token,
            ts_ns: ts,
            last: rs(last),
            bid: side(bid),
            ask: side(ask),
            volume,
            last_qty,
        };
        let mut out = Vec::new();
        self.v.on_quote(&q, &mut out);
        out
    }

    pub fn advance(&mut self, ts: i64) -> Vec<VenueUpdate> {
        let mut out = Vec::new();
        self.v.advance_to(ts, &mut out);
        out
    }

    pub fn end(&mut self) -> Vec<VenueUpdate> {
        let mut out = Vec::new();
        self.v.feed_ended(self.now(), &mut out);
        out
    }

    /// Places at the venue's clock and settles (what the broker API does).
    pub fn place(&mut self, o: VenueOrder) -> (u64, Vec<VenueUpdate>) {
        let mut out = Vec::new();
        let id = self.v.submit(self.now(), o, &mut out);
        self.v.settle(&mut out);
        (id, out)
    }

    pub fn place_id(&mut self, o: VenueOrder) -> u64 {
        let (id, out) = self.place(o);
        assert!(
            out.iter().all(|u| u.status != VenueStatus::Rejected),
            "{out:?}"
        );
        id
    }

    pub fn request(&mut self, r: ClientRequest) -> (u64, Vec<VenueUpdate>) {
        let mut out = Vec::new();
        let now = self.now();
        let id = self.v.submit_request(now, now, r, &mut out);
        (id, out)
    }

    pub fn order(&mut self, side: Side, qty: u64, t: OrderType) -> OrderBuilder {
        self.n += 1;
        OrderBuilder(VenueOrder {
            client_order_id: format!("{:024x}:ENTRY", self.n),
            tag: format!("tag{}", self.n),
            token: EQ,
            side,
            qty,
            order_type: t,
            price: None,
            trigger: None,
            validity: Validity::Day,
            protection: Protection::None,
        })
    }
}

pub struct OrderBuilder(pub VenueOrder);

impl OrderBuilder {
    pub fn price(mut self, paise: i64) -> Self {
        self.0.price = Some(Price::from_paise(paise));
        self
    }
    pub fn trigger(mut self, paise: i64) -> Self {
        self.0.trigger = Some(Price::from_paise(paise));
        self
    }
    pub fn mp(mut self, pct: f64) -> Self {
        self.0.protection = if pct == -1.0 {
            Protection::Auto
        } else {
            Protection::Pct(pct)
        };
        self
    }
    pub fn token(mut self, token: u32) -> Self {
        self.0.token = token;
        self
    }
    pub fn ioc(mut self) -> Self {
        self.0.validity = Validity::Ioc;
        self
    }
    pub fn tag(mut self, tag: &str) -> Self {
        self.0.tag = tag.into();
        self
    }
    pub fn build(self) -> VenueOrder {
        self.0
    }
}

pub const BUY: Side = Side::Buy;
pub const SELL: Side = Side::Sell;
pub const MKT: OrderType = OrderType::Market;
pub const LMT: OrderType = OrderType::Limit;
pub const SL: OrderType = OrderType::Sl;
pub const SLM: OrderType = OrderType::SlM;

/// (status, filled, average paise, last fill qty, last fill paise).
pub fn brief(u: &VenueUpdate) -> (&'static str, u64, i64, u64, i64) {
    (
        u.status.as_str(),
        u.filled_qty,
        u.avg_price.paise(),
        u.last_fill_qty,
        u.last_fill_price.paise(),
    )
}

pub fn statuses(ups: &[VenueUpdate]) -> Vec<&'static str> {
    ups.iter().map(|u| u.status.as_str()).collect()
}

pub fn stamps(ups: &[VenueUpdate]) -> Vec<i64> {
    ups.iter().map(|u| u.ts_ns).collect()
}

/// A client request as the broker API sends it (enums spelt out).
pub fn client(tag: &str, side: &str, qty: i64, t: &str, price: Option<i64>) -> ClientRequest {
    ClientRequest {
        client_order_id: format!("{tag}:ENTRY"),
        tag: tag.into(),
        exchange: "NSE".into(),
        tradingsymbol: "RELIANCE".into(),
        token: i64::from(EQ),
        side: side.into(),
        order_type: t.into(),
        product: "MIS".into(),
        validity: "DAY".into(),
        qty,
        price,
        trigger: None,
        protection: Protection::None,
    }
}
