//! Kite-like order validation of the paper venue.
//!
//! Each check returns `Ok` or the `status_message` of a REJECTED order,
//! worded like Kite's own messages, so PAPER rejects look like LIVE rejects.
//! A check that needs the last traded price skips it while no tick has been
//! seen. New orders are checked in Kite's order and the first failure wins:
//! tag, enum spellings, instrument, product, quantity, prices, protection.

use super::types::Protection;
use crate::instrument::{Instrument, Segment};
use crate::oco::OrderType;
use crate::side::Side;

/// Kite rejects (does not truncate) longer tags.
pub const MAX_TAG_LEN: usize = 20;

/// Kite products; the venue checks that a segment allows the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    Mis,
    Nrml,
    Cnc,
}

impl Product {
    pub const fn as_str(self) -> &'static str {
        match self {
            Product::Mis => "MIS",
            Product::Nrml => "NRML",
            Product::Cnc => "CNC",
        }
    }

    const fn allowed(segment: Segment) -> &'static [Product] {
        match segment {
            Segment::Eq => &[Product::Mis, Product::Cnc],
            Segment::Fut | Segment::Opt => &[Product::Mis, Product::Nrml],
            Segment::Idx => &[],
        }
    }
}

/// Order types priced by a limit, and those waiting on a trigger.
pub const fn is_priced(t: OrderType) -> bool {
    matches!(t, OrderType::Limit | OrderType::Sl)
}

pub const fn is_stop(t: OrderType) -> bool {
    matches!(t, OrderType::Sl | OrderType::SlM)
}

/// MARKET and SL-M need market protection on Kite's API.
pub const fn is_protected(t: OrderType) -> bool {
    matches!(t, OrderType::Market | OrderType::SlM)
}

fn expected(name: &str, value: &str, allowed: &str) -> String {
    format!("Invalid `{name}` {value:?}: expected one of {allowed}.")
}

pub fn parse_side(s: &str) -> Result<Side, String> {
    s.parse()
        .map_err(|_| format!("Invalid `transaction_type` {s:?}: expected BUY or SELL."))
}

pub fn parse_order_type(s: &str) -> Result<OrderType, String> {
    match s {
        "MARKET" => Ok(OrderType::Market),
        "LIMIT" => Ok(OrderType::Limit),
        "SL" => Ok(OrderType::Sl),
        "SL-M" => Ok(OrderType::SlM),
        _ => Err(expected("order_type", s, "MARKET, LIMIT, SL, SL-M")),
    }
}

pub fn parse_product(s: &str) -> Result<Product, String> {
    match s {
        "MIS" => Ok(Product::Mis),
        "NRML" => Ok(Product::Nrml),
        "CNC" => Ok(Product::Cnc),
        _ => Err(expected("product", s, "MIS, NRML, CNC")),
    }
}

pub fn parse_validity(s: &str) -> Result<super::types::Validity, String> {
    use super::types::Validity;
    match s {
        "DAY" => Ok(Validity::Day),
        "IOC" => Ok(Validity::Ioc),
        _ => Err(expected("validity", s, "DAY, IOC")),
    }
}

/// Paise as Kite prints rupees: two decimals.
pub fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let a = paise.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(format!(
            "Invalid `tag`: at most {MAX_TAG_LEN} characters are allowed, got {tag:?}."
        ));
    }
    Ok(())
}

/// Kite's answer for an instrument token it does not list.
pub fn unknown_instrument(token: i64, named: Option<(&str, &str)>) -> String {
    let name = named.map_or(String::new(), |(x, s)| format!(" ({x}:{s})"));
    format!(
        "Invalid `tradingsymbol` or `exchange`: instrument_token {token}{name} is not a known instrument."
    )
}

/// The instrument exists, is tradable and (when the request names it) is
/// the `exchange:tradingsymbol` the request says.
pub fn check_instrument(
    token: u32,
    named: Option<(&str, &str)>,
    inst: Option<&Instrument>,
) -> Result<(), String> {
    let Some(inst) = inst else {
        return Err(unknown_instrument(i64::from(token), named));
    };
    if let Some((exchange, symbol)) = named {
        if (exchange, symbol) != (inst.exchange.as_str(), inst.tradingsymbol.as_str()) {
            return Err(format!(
                "Invalid `tradingsymbol`: instrument_token {token} is {}:{}, not {exchange}:{symbol}.",
                inst.exchange, inst.tradingsymbol
            ));
        }
    }
    if inst.segment == Segment::Idx {
        return Err(format!(
            "{} is an index and cannot be traded.",
            inst.tradingsymbol
        ));
    }
    Ok(())
}

pub fn check_product(product: Product, inst: &Instrument) -> Result<(), String> {
    let allowed = Product::allowed(inst.segment);
    if allowed.contains(&product) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
    Err(format!(
        "Product {} is not allowed for {} ({}): use {}.",
        product.as_str(),
        inst.tradingsymbol,
        inst.segment.as_str(),
        names.join(" or ")
    ))
}

pub fn check_quantity(qty: i64, inst: &Instrument) -> Result<(), String> {
    if qty <= 0 {
        return Err(format!(
            "Invalid `quantity` {qty}: it must be a positive whole number of units."
        ));
    }
    if qty % i64::from(inst.lot_size) != 0 {
        return Err(format!(
            "Quantity should be a multiple of the lot size ({}) for {}.",
            inst.lot_size, inst.tradingsymbol
        ));
    }
    if qty > i64::from(inst.freeze_qty) {
        return Err(format!(
            "Quantity {qty} is above the freeze quantity ({}) for {}. Reduce the quantity or use autoslice.",
            inst.freeze_qty, inst.tradingsymbol
        ));
    }
    Ok(())
}

fn positive(name: &str, value: i64) -> Result<(), String> {
    if value <= 0 {
        return Err(format!(
            "Invalid `{name}` {value}: it must be a positive price (integer paise)."
        ));
    }
    Ok(())
}

fn on_grid(what: &str, value: i64, tick: i64) -> Result<(), String> {
    if value % tick != 0 {
        return Err(format!(
            "Tick size for this script is {}. Kindly enter {what} in the multiple of tick size for this script ({}).",
            rupees(tick),
            rupees(value)
        ));
    }
    Ok(())
}

/// Presence, tick grid, stop-limit consistency and the trigger's side of the
/// last traded price: a buy stop's trigger must be above it, a sell stop's
/// below (checked at placement, and on a modification of an untriggered stop).
pub fn check_prices(
    order_type: OrderType,
    side: Side,
    price: Option<i64>,
    trigger: Option<i64>,
    inst: &Instrument,
    ltp: Option<i64>,
    check_trigger_side: bool,
) -> Result<(), String> {
    let tick = inst.tick_size.paise();
    let is_buy = side == Side::Buy;
    let mut limit = None;
    if is_priced(order_type) {
        let Some(p) = price else {
            return Err(format!(
                "Invalid `price`: {} orders need a price.",
                order_type.as_str()
            ));
        };
        positive("price", p)?;
        on_grid("price", p, tick)?;
        limit = Some(p);
    }
    if !is_stop(order_type) {
        return Ok(());
    }
    let Some(t) = trigger else {
        return Err(format!(
            "Invalid `trigger_price`: {} orders need a trigger price.",
            order_type.as_str()
        ));
    };
    positive("trigger_price", t)?;
    on_grid("trigger price", t, tick)?;
    if let Some(p) = limit {
        if is_buy && t > p {
            return Err(
                "Trigger price for stoploss buy orders cannot be above the limit price.".into(),
            );
        }
        if !is_buy && t < p {
            return Err(
                "Trigger price for stoploss sell orders cannot be below the limit price.".into(),
            );
        }
    }
    match ltp {
        Some(l) if check_trigger_side && is_buy && t <= l => Err(format!(
            "Trigger price for stoploss buy orders should be higher than the last traded price ({}).",
            rupees(l)
        )),
        Some(l) if check_trigger_side && !is_buy && t >= l => Err(format!(
            "Trigger price for stoploss sell orders should be lower than the last traded price ({}).",
            rupees(l)
        )),
        _ => Ok(()),
    }
}

/// MARKET and SL-M need a positive band (percent, at most 100) or Kite's
/// automatic one.
pub fn check_protection(order_type: OrderType, protection: Protection) -> Result<(), String> {
    if !is_protected(order_type) {
        return Ok(());
    }
    match protection {
        Protection::None => Err(no_protection()),
        Protection::Pct(0.0) => Err(no_protection()),
        Protection::Pct(p) if !(p > 0.0 && p <= 100.0) => Err(format!(
            "Invalid `market_protection` {p}: use -1 (automatic) or a percentage above 0 and at most 100."
        )),
        Protection::Auto | Protection::Pct(_) => Ok(()),
    }
}

fn no_protection() -> String {
    "Market orders without market protection are not allowed via API. \
     Set `market_protection` (a percentage, or -1 for automatic) or use a limit order."
        .into()
}

/// A new order as the checks see it: the typed order, plus what only a
/// client request carries (the enum spellings it failed to parse, the
/// symbol it named, its product, its quantity before typing).
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    pub tag: &'a str,
    pub token: u32,
    pub side: Side,
    pub qty: i64,
    pub order_type: OrderType,
    pub price: Option<i64>,
    pub trigger: Option<i64>,
    pub protection: Protection,
    pub product: Product,
    /// The first enum spelling that did not parse (its Kite message).
    pub bad_enum: Option<&'a str>,
    /// `(exchange, tradingsymbol)` as the request named them.
    pub named: Option<(&'a str, &'a str)>,
}

/// Every check a new order passes, in Kite's order; the first failure wins.
pub fn check_new_order(
    o: &NewOrder<'_>,
    inst: Option<&Instrument>,
    ltp: Option<i64>,
) -> Result<(), String> {
    check_tag(o.tag)?;
    if let Some(msg) = o.bad_enum {
        return Err(msg.to_string());
    }
    check_instrument(o.token, o.named, inst)?;
    let Some(inst) = inst else {
        return Ok(()); // unreachable: check_instrument refused it
    };
    check_product(o.product, inst)?;
    check_quantity(o.qty, inst)?;
    let price = if is_priced(o.order_type) {
        o.price
    } else {
        None
    };
    let trigger = if is_stop(o.order_type) {
        o.trigger
    } else {
        None
    };
    check_prices(o.order_type, o.side, price, trigger, inst, ltp, true)?;
    check_protection(o.order_type, o.protection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::price::Price;
    use rstest::rstest;

    fn inst(segment: Segment, tick: i64, lot: u32, freeze: u32) -> Instrument {
        Instrument {
            exchange: "NSE".into(),
            tradingsymbol: "SYM".into(),
            instrument_token: 1,
            segment,
            tick_size: Price::from_paise(tick),
            lot_size: lot,
            freeze_qty: freeze,
        }
    }

    #[test]
    fn rupees_prints_two_decimals() {
        assert_eq!(rupees(10_003), "100.03");
        assert_eq!(rupees(5), "0.05");
        assert_eq!(rupees(-250), "-2.50");
    }

    #[test]
    fn enum_spellings() {
        assert_eq!(parse_order_type("SL-M"), Ok(OrderType::SlM));
        assert!(parse_order_type("ICEBERG")
            .expect_err("bad")
            .contains("Invalid `order_type`"));
        assert!(parse_side("HOLD")
            .expect_err("bad")
            .contains("Invalid `transaction_type`"));
        assert!(parse_validity("TTL")
            .expect_err("bad")
            .contains("Invalid `validity`"));
        assert!(parse_product("BO")
            .expect_err("bad")
            .contains("Invalid `product`"));
    }

    #[rstest]
    #[case(Segment::Eq, Product::Nrml, "Product NRML is not allowed")]
    #[case(Segment::Fut, Product::Cnc, "Product CNC")]
    #[case(Segment::Opt, Product::Cnc, "use MIS or NRML")]
    fn product_by_segment(#[case] seg: Segment, #[case] p: Product, #[case] msg: &str) {
        let err = check_product(p, &inst(seg, 5, 1, 100)).expect_err("refused");
        assert!(err.contains(msg), "{err}");
        assert!(check_product(Product::Mis, &inst(seg, 5, 1, 100)).is_ok());
    }

    #[rstest]
    #[case(0, "Invalid `quantity` 0")]
    #[case(-65, "Invalid `quantity` -65")]
    #[case(100, "multiple of the lot size (65)")]
    #[case(1820, "freeze quantity (1800)")]
    fn quantity_rules(#[case] qty: i64, #[case] msg: &str) {
        let err = check_quantity(qty, &inst(Segment::Fut, 10, 65, 1800)).expect_err("refused");
        assert!(err.contains(msg), "{err}");
        assert!(check_quantity(130, &inst(Segment::Fut, 10, 65, 1800)).is_ok());
    }

    // The LTP is 100.00 (10,000 paise); tick 0.05.
    #[rstest]
    #[case(
        OrderType::Limit,
        Side::Buy,
        Some(10_003),
        None,
        "Tick size for this script is 0.05"
    )]
    #[case(
        OrderType::SlM,
        Side::Sell,
        None,
        Some(9_901),
        "trigger price in the multiple of tick size"
    )]
    #[case(
        OrderType::SlM,
        Side::Buy,
        None,
        Some(9_990),
        "higher than the last traded price (100.00)"
    )]
    #[case(
        OrderType::SlM,
        Side::Buy,
        None,
        Some(10_000),
        "higher than the last traded price"
    )]
    #[case(
        OrderType::Sl,
        Side::Sell,
        Some(10_000),
        Some(10_010),
        "lower than the last traded price"
    )]
    #[case(OrderType::Limit, Side::Buy, None, None, "LIMIT orders need a price")]
    #[case(OrderType::Sl, Side::Buy, Some(10_100), None, "need a trigger price")]
    #[case(
        OrderType::Sl,
        Side::Buy,
        Some(10_100),
        Some(10_110),
        "cannot be above the limit price"
    )]
    #[case(
        OrderType::Sl,
        Side::Sell,
        Some(9_900),
        Some(9_890),
        "cannot be below the limit price"
    )]
    #[case(OrderType::Limit, Side::Buy, Some(-100), None, "positive price")]
    #[case(OrderType::SlM, Side::Sell, None, Some(0), "Invalid `trigger_price` 0")]
    fn price_rules(
        #[case] t: OrderType,
        #[case] side: Side,
        #[case] price: Option<i64>,
        #[case] trigger: Option<i64>,
        #[case] msg: &str,
    ) {
        let i = inst(Segment::Eq, 5, 1, 100_000);
        let err = check_prices(t, side, price, trigger, &i, Some(10_000), true).expect_err(msg);
        assert!(err.contains(msg), "{err}");
    }

    #[test]
    fn trigger_side_is_checked_only_with_a_known_price_and_when_asked() {
        let i = inst(Segment::Eq, 5, 1, 100_000);
        let buy_below =
            |ltp, check| check_prices(OrderType::SlM, Side::Buy, None, Some(9_990), &i, ltp, check);
        assert!(buy_below(Some(10_000), true).is_err());
        assert!(buy_below(None, true).is_ok());
        assert!(buy_below(Some(10_000), false).is_ok());
        let ok = check_prices(
            OrderType::Sl,
            Side::Sell,
            Some(9_980),
            Some(9_990),
            &i,
            Some(10_000),
            true,
        );
        assert!(ok.is_ok());
    }

    #[rstest]
    #[case(OrderType::Market, Protection::None, Some("without market protection"))]
    #[case(OrderType::SlM, Protection::None, Some("without market protection"))]
    #[case(
        OrderType::Market,
        Protection::Pct(0.0),
        Some("without market protection")
    )]
    #[case(
        OrderType::Market,
        Protection::Pct(150.0),
        Some("Invalid `market_protection`")
    )]
    #[case(OrderType::Market, Protection::Pct(-2.0), Some("Invalid `market_protection`"))]
    #[case(
        OrderType::Market,
        Protection::Pct(f64::NAN),
        Some("Invalid `market_protection`")
    )]
    #[case(OrderType::Market, Protection::Pct(100.0), None)]
    #[case(OrderType::SlM, Protection::Auto, None)]
    #[case(OrderType::Limit, Protection::None, None)]
    fn protection_rules(#[case] t: OrderType, #[case] p: Protection, #[case] msg: Option<&str>) {
        match (check_protection(t, p), msg) {
            (Ok(()), None) => {}
            (Err(e), Some(m)) => assert!(e.contains(m), "{e}"),
            (got, want) => panic!("{got:?} but wanted {want:?}"),
        }
    }

    #[test]
    fn instrument_rules() {
        let eq = inst(Segment::Eq, 5, 1, 100);
        let idx = inst(Segment::Idx, 5, 1, 1);
        let unknown = check_instrument(999, Some(("NSE", "X")), None).expect_err("unknown");
        assert!(unknown.contains("not a known instrument"), "{unknown}");
        let wrong = check_instrument(1, Some(("NSE", "TCS")), Some(&eq)).expect_err("symbol");
        assert!(wrong.contains("Invalid `tradingsymbol`"), "{wrong}");
        let index = check_instrument(1, None, Some(&idx)).expect_err("index");
        assert!(
            index.contains("is an index and cannot be traded"),
            "{index}"
        );
        assert!(check_instrument(1, Some(("NSE", "SYM")), Some(&eq)).is_ok());
    }

    #[test]
    fn tag_of_twenty_one_characters_is_refused() {
        assert!(check_tag(&"X".repeat(20)).is_ok());
        let err = check_tag(&"X".repeat(21)).expect_err("long");
        assert!(err.contains("Invalid `tag`"), "{err}");
    }
}
