//! Golden client-id vectors shared with pytest (`testdata/client_ids.json`).

use aitrapp_core::{broker_tag, order_client_id, plan_client_id, PlanKey, Price};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/client_ids.json"
    );
    let text = std::fs::read_to_string(path).expect("golden file readable");
    let doc: Value = serde_json::from_str(&text).expect("golden file is JSON");
    doc["cases"].as_array().expect("cases array").clone()
}

#[test]
fn plan_ids_match_golden_vectors() {
    let cases = cases();
    assert!(cases.len() >= 10);
    for c in cases {
        let s = |k: &str| c[k].as_str().unwrap().to_string();
        let p = |k: &str| Price::from_paise(c[k].as_i64().unwrap());
        let (symbol, strategy, cfg) = (s("symbol"), s("strategy"), s("config_sha"));
        let key = PlanKey {
            symbol: &symbol,
            side: s("side").parse().unwrap(),
            entry: p("entry_paise"),
            stop: p("stop_paise"),
            tp: p("tp_paise"),
            qty: c["qty"].as_u64().unwrap(),
            strategy: &strategy,
            config_sha: &cfg,
            signal_ts: c["signal_ts"].as_i64().unwrap(),
        };
        let plan = plan_client_id(&key).unwrap();
        assert_eq!(plan, s("plan_id"), "preimage {}", s("preimage"));
        for (tag, want) in c["order_ids"].as_object().unwrap() {
            let cid = order_client_id(tag.parse().unwrap(), &plan).unwrap();
            assert_eq!(&cid, want.as_str().unwrap());
            let bt = broker_tag(&cid).unwrap();
            assert_eq!(bt, c["broker_tags"][tag].as_str().unwrap());
            assert!(bt.len() <= 20);
        }
    }
}
