//! Deterministic client order ids.
//!
//! The same plan always hashes to the same id, so a retried plan is caught by
//! the unique `client_order_id` constraint instead of becoming a second order.
//! `signal_ts` (exchange time of the tick that produced the signal) is in the
//! hash so that a later re-entry at identical prices is a *new* plan, not a
//! false duplicate.

use crate::price::Price;
use crate::side::Side;
use sha1::{Digest, Sha1};
use std::fmt;
use std::str::FromStr;

/// Length of a plan id in hex characters.
pub const PLAN_ID_LEN: usize = 24;
/// Kite rejects (does not truncate) tags longer than this.
pub const BROKER_TAG_MAX: usize = 20;
/// Plan-id prefix kept in a broker tag: 64 bits, so distinct plans collide
/// with probability ~2^-64 per pair, while the suffix keeps siblings apart.
const TAG_PLAN_PREFIX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} must not contain '|' or be empty: {value:?}")]
    BadField { field: &'static str, value: String },
    #[error("qty must be positive")]
    ZeroQty,
    #[error(
        "unknown order tag {0:?}: expected ENTRY, STOP, STOP1..STOP99, TP, TP1..TP99, TARGET1..TARGET99, EXIT or EXIT1..EXIT99"
    )]
    BadTag(String),
    #[error("malformed order client id {0:?}: expected <24 hex plan id>:<TAG>")]
    BadClientId(String),
}

/// Everything that identifies one trade plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanKey<'a> {
    pub symbol: &'a str,
    pub side: Side,
    pub entry: Price,
    pub stop: Price,
    pub tp: Price,
    pub qty: u64,
    pub strategy: &'a str,
    pub config_sha: &'a str,
    /// Exchange timestamp (UTC nanoseconds) of the tick that produced the signal.
    pub signal_ts: i64,
}

fn check_field(field: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() || value.contains('|') {
        return Err(IdError::BadField {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// First 24 lowercase hex chars of SHA-1 over
/// `symbol|side|entry|stop|tp|qty|strategy|config_sha|signal_ts`.
pub fn plan_client_id(key: &PlanKey<'_>) -> Result<String, IdError> {
    check_field("symbol", key.symbol)?;
    check_field("strategy", key.strategy)?;
    check_field("config_sha", key.config_sha)?;
    if key.qty == 0 {
        return Err(IdError::ZeroQty);
    }
    let preimage = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}",
        key.symbol,
        key.side,
        key.entry,
        key.stop,
        key.tp,
        key.qty,
        key.strategy,
        key.config_sha,
        key.signal_ts
    );
    let digest = Sha1::digest(preimage.as_bytes());
    let mut out = String::with_capacity(PLAN_ID_LEN);
    for b in digest.iter().take(PLAN_ID_LEN / 2) {
        use fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// The role of one order within a bracket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderTag {
    Entry,
    Stop,
    /// Replacement stop n (1-based): a bracket adopted after a restart whose
    /// stop was lost while no process watched gets a new stop under a new
    /// id, so neither the journal nor the broker's tag look-up can take the
    /// dead order for it. Numbered like EXITn, deterministic per plan.
    StopN(u8),
    /// Single take-profit.
    Tp,
    /// Scale-out take-profit leg n (1-based).
    TpN(u8),
    /// Replacement target n (1-based): the final target (TP, or TP2 when
    /// scaling out) of a bracket adopted after a restart, lost while no
    /// process watched, placed again under a new id (the TPn spelling is
    /// taken by the scale-out legs). Deterministic per plan, like STOPn.
    TargetN(u8),
    /// Market exit (flatten, time stop, corrective).
    Exit,
    /// Further market exits of the same bracket, numbered.
    ExitN(u8),
}

impl OrderTag {
    /// Short code used inside the broker tag; distinct per tag.
    fn code(self) -> String {
        match self {
            OrderTag::Entry => "EN".into(),
            OrderTag::Stop => "SL".into(),
            OrderTag::StopN(n) => format!("SL{n}"),
            OrderTag::Tp => "TP".into(),
            OrderTag::TpN(n) => format!("TP{n}"),
            OrderTag::TargetN(n) => format!("TG{n}"),
            OrderTag::Exit => "EX".into(),
            OrderTag::ExitN(n) => format!("EX{n}"),
        }
    }
}

impl OrderTag {
    /// The stop or one of its replacements.
    pub fn is_stop(self) -> bool {
        matches!(self, OrderTag::Stop | OrderTag::StopN(_))
    }

    /// 0 for STOP, n for STOPn; None for any other tag.
    pub fn stop_generation(self) -> Option<u8> {
        match self {
            OrderTag::Stop => Some(0),
            OrderTag::StopN(n) => Some(n),
            _ => None,
        }
    }

    /// The stop of generation `n` (0: STOP); None past STOP99.
    pub fn stop_of_generation(n: u8) -> Option<OrderTag> {
        match n {
            0 => Some(OrderTag::Stop),
            1..=99 => Some(OrderTag::StopN(n)),
            _ => None,
        }
    }

    /// 0 for the planned final target (TP; TP2 when `scale_out`), n for
    /// TARGETn; None for any other tag (TP1 is a scale-out step, not the
    /// final target).
    pub fn target_generation(self, scale_out: bool) -> Option<u8> {
        match (self, scale_out) {
            (OrderTag::Tp, false) | (OrderTag::TpN(2), true) => Some(0),
            (OrderTag::TargetN(n), _) => Some(n),
            _ => None,
        }
    }

    /// The final target of generation `n` (0: TP, or TP2 when `scale_out`);
    /// None past TARGET99.
    pub fn target_of_generation(n: u8, scale_out: bool) -> Option<OrderTag> {
        match n {
            0 if scale_out => Some(OrderTag::TpN(2)),
            0 => Some(OrderTag::Tp),
            1..=99 => Some(OrderTag::TargetN(n)),
            _ => None,
        }
    }
}

impl fmt::Display for OrderTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderTag::Entry => f.write_str("ENTRY"),
            OrderTag::Stop => f.write_str("STOP"),
            OrderTag::StopN(n) => write!(f, "STOP{n}"),
            OrderTag::Tp => f.write_str("TP"),
            OrderTag::TpN(n) => write!(f, "TP{n}"),
            OrderTag::TargetN(n) => write!(f, "TARGET{n}"),
            OrderTag::Exit => f.write_str("EXIT"),
            OrderTag::ExitN(n) => write!(f, "EXIT{n}"),
        }
    }
}

fn numbered(rest: &str) -> Option<u8> {
    // "1".."99", no leading zero, so each tag has exactly one spelling.
    if rest.is_empty() || rest.len() > 2 || rest.starts_with('0') {
        return None;
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

impl FromStr for OrderTag {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdError::BadTag(s.to_string());
        Ok(match s {
            "ENTRY" => OrderTag::Entry,
            "STOP" => OrderTag::Stop,
            "TP" => OrderTag::Tp,
            "EXIT" => OrderTag::Exit,
            _ => {
                if let Some(rest) = s.strip_prefix("STOP") {
                    OrderTag::StopN(numbered(rest).ok_or_else(bad)?)
                } else if let Some(rest) = s.strip_prefix("TARGET") {
                    OrderTag::TargetN(numbered(rest).ok_or_else(bad)?)
                } else if let Some(rest) = s.strip_prefix("TP") {
                    OrderTag::TpN(numbered(rest).ok_or_else(bad)?)
                } else if let Some(rest) = s.strip_prefix("EXIT") {
                    OrderTag::ExitN(numbered(rest).ok_or_else(bad)?)
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

fn is_plan_id(s: &str) -> bool {
    s.len() == PLAN_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `"{plan_id}:{tag}"`.
pub fn order_client_id(tag: OrderTag, plan_id: &str) -> Result<String, IdError> {
    if !is_plan_id(plan_id) {
        return Err(IdError::BadClientId(plan_id.to_string()));
    }
    Ok(format!("{plan_id}:{tag}"))
}

/// Splits an order client id into plan id and tag.
pub fn parse_order_client_id(client_id: &str) -> Result<(&str, OrderTag), IdError> {
    let bad = || IdError::BadClientId(client_id.to_string());
    let (plan, tag) = client_id.split_once(':').ok_or_else(bad)?;
    if !is_plan_id(plan) {
        return Err(bad());
    }
    Ok((plan, tag.parse().map_err(|_| bad())?))
}

/// The Kite `tag` for an order: 16 hex chars of the plan id plus a role code
/// (EN, SL, SLn, TP, TPn, TGn, EX, EXn), alphanumeric and at most 20 characters.
/// Cutting the 24-char plan id to 20 would give siblings identical tags.
pub fn broker_tag(order_client_id: &str) -> Result<String, IdError> {
    let (plan, tag) = parse_order_client_id(order_client_id)?;
    let out = format!("{}{}", &plan[..TAG_PLAN_PREFIX], tag.code());
    debug_assert!(out.len() <= BROKER_TAG_MAX);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(signal_ts: i64) -> PlanKey<'static> {
        PlanKey {
            symbol: "RELIANCE",
            side: Side::Buy,
            entry: Price::from_paise(250_005),
            stop: Price::from_paise(248_000),
            tp: Price::from_paise(253_615),
            qty: 24,
            strategy: "ORB",
            config_sha: "cfg0123456789ab",
            signal_ts,
        }
    }

    #[test]
    fn matches_a_hand_computed_sha1() {
        // sha1("RELIANCE|BUY|2500.05|2480.00|2536.15|24|ORB|cfg0123456789ab|1767240000000000000")
        let id = plan_client_id(&key(1_767_240_000_000_000_000)).unwrap();
        assert_eq!(id.len(), 24);
        let pre = "RELIANCE|BUY|2500.05|2480.00|2536.15|24|ORB|cfg0123456789ab|1767240000000000000";
        let full = Sha1::digest(pre.as_bytes());
        let hex: String = full.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(id, hex[..24]);
    }

    #[test]
    fn retry_is_same_id_reentry_is_new() {
        let first = plan_client_id(&key(1_000)).unwrap();
        let retry = plan_client_id(&key(1_000)).unwrap();
        let reentry = plan_client_id(&key(61_000_000_000)).unwrap();
        assert_eq!(first, retry);
        assert_ne!(first, reentry);
    }

    #[test]
    fn separators_in_fields_are_refused() {
        let mut k = key(1);
        k.strategy = "ORB|x";
        assert!(plan_client_id(&k).is_err());
        let mut k = key(1);
        k.qty = 0;
        assert_eq!(plan_client_id(&k), Err(IdError::ZeroQty));
    }

    #[test]
    fn sibling_tags_are_distinct_and_short() {
        let plan = plan_client_id(&key(5)).unwrap();
        let mut tags = std::collections::HashSet::new();
        for t in [
            "ENTRY", "STOP", "STOP1", "STOP2", "STOP99", "TP", "TP1", "TP2", "TP99", "TARGET1",
            "TARGET2", "TARGET99", "EXIT", "EXIT1", "EXIT99",
        ] {
            let cid = order_client_id(t.parse().unwrap(), &plan).unwrap();
            assert_eq!(cid, format!("{plan}:{t}"));
            let tag = broker_tag(&cid).unwrap();
            assert!(tag.len() <= BROKER_TAG_MAX, "{tag}");
            assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric()), "{tag}");
            assert!(tags.insert(tag), "duplicate tag for {t}");
        }
    }

    #[test]
    fn tags_have_one_spelling() {
        for bad in [
            "TP0",
            "TP01",
            "TP100",
            "EXIT0",
            "tp",
            "STOPX",
            "",
            "TP-1",
            "STOP0",
            "STOP01",
            "STOP100",
            "TARGET",
            "TARGET0",
            "TARGET01",
            "TARGET100",
            "TARGETX",
        ] {
            assert!(bad.parse::<OrderTag>().is_err(), "{bad}");
        }
        for good in [
            "ENTRY", "STOP", "STOP3", "TP", "TP7", "TARGET4", "EXIT", "EXIT12",
        ] {
            assert_eq!(good.parse::<OrderTag>().unwrap().to_string(), good);
        }
    }

    #[test]
    fn stop_generations_count_up_from_the_stop() {
        assert_eq!(OrderTag::stop_of_generation(0), Some(OrderTag::Stop));
        assert_eq!(OrderTag::stop_of_generation(7), Some(OrderTag::StopN(7)));
        assert_eq!(OrderTag::stop_of_generation(100), None);
        for t in [OrderTag::Stop, OrderTag::StopN(1), OrderTag::StopN(99)] {
            assert!(t.is_stop());
            let n = t.stop_generation().unwrap();
            assert_eq!(OrderTag::stop_of_generation(n), Some(t));
        }
        for t in [
            OrderTag::Entry,
            OrderTag::Tp,
            OrderTag::TpN(1),
            OrderTag::ExitN(1),
        ] {
            assert!(!t.is_stop() && t.stop_generation().is_none(), "{t}");
        }
    }

    #[test]
    fn target_generations_count_up_from_the_final_target() {
        for so in [false, true] {
            let planned = if so { OrderTag::TpN(2) } else { OrderTag::Tp };
            assert_eq!(OrderTag::target_of_generation(0, so), Some(planned));
            assert_eq!(planned.target_generation(so), Some(0));
            assert_eq!(
                OrderTag::target_of_generation(5, so),
                Some(OrderTag::TargetN(5))
            );
            assert_eq!(OrderTag::target_of_generation(100, so), None);
            assert_eq!(OrderTag::TargetN(99).target_generation(so), Some(99));
            for t in [OrderTag::TpN(1), OrderTag::Stop, OrderTag::Exit] {
                assert_eq!(t.target_generation(so), None, "{t}");
            }
        }
        // TP is no final target of a scaled-out bracket, nor TP2 of a single one.
        assert_eq!(OrderTag::Tp.target_generation(true), None);
        assert_eq!(OrderTag::TpN(2).target_generation(false), None);
    }

    #[test]
    fn malformed_client_ids_are_refused() {
        for bad in [
            "",
            "abc:ENTRY",
            "0123456789abcdef01234567",
            "0123456789ABCDEF01234567:STOP",
        ] {
            assert!(broker_tag(bad).is_err(), "{bad}");
        }
    }
}
