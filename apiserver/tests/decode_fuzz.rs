//! Property tests of the request decoding paths: arbitrary bodies, patches and
//! query strings sent to the registry never panic and never produce a 5xx — bad
//! input always gets a 4xx `Status`.

use knet_apiserver::alloc::{AllocConfig, Allocator};
use knet_apiserver::registry::strategy::Part;
use knet_apiserver::registry::{ListOptions, PatchType, Registry, WriteOptions};
use knet_apiserver::resources::RESOURCES;
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use proptest::prelude::*;
use serde_json::{json, Value};

mod common;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9_./:-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_string()),
                    Just("spec".to_string()),
                    Just("status".to_string()),
                    Just("name".to_string()),
                    Just("ports".to_string()),
                    Just("labels".to_string()),
                    Just("selector".to_string()),
                    Just("containers".to_string()),
                    Just("type".to_string()),
                    Just("clusterIP".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like objects, with a plausible name so they get deep into admission.
fn arb_object() -> impl Strategy<Value = Value> {
    (arb_json(), arb_json(), "[a-z][a-z0-9-]{0,8}").prop_map(
        |(spec, extra, name)| json!({"metadata": {"name": name, "labels": {"app": "x"}}, "spec": spec, "extra": extra}),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn registry(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Registry {
    rt.block_on(async {
        let store = SledStore::open(dir, SledOptions::default()).expect("store");
        let reg = Registry::new(store, Allocator::new(AllocConfig::default()));
        common::bootstrap(&reg).await;
        reg
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_creates_and_patches_never_fail_the_server(
        objs in prop::collection::vec((0..RESOURCES.len(), arb_object(), arb_json()), 1..6)
    ) {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(&rt, dir.path());
        rt.block_on(async {
            for (i, obj, patch) in objs {
                let res = &RESOURCES[i];
                let ns = if res.namespaced { Some("default") } else { None };
                let name = obj["metadata"]["name"].as_str().unwrap_or("x").to_string();
                match reg.create(res, ns, obj, &WriteOptions::default()).await {
                    Ok(_) => {}
                    Err(e) => prop_assert!(e.code().is_client_error(), "create {}: {} {e}", res.plural, e.code()),
                }
                for pt in [PatchType::Merge, PatchType::StrategicMerge, PatchType::Json] {
                    if let Err(e) = reg.patch(res, ns, &name, Part::Main, pt, &patch, &WriteOptions::default()).await {
                        prop_assert!(e.code().is_client_error(), "patch {:?} {}: {} {e}", pt, res.plural, e.code());
                    }
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_list_options_never_fail_the_server(
        q in prop::collection::vec(
            (prop_oneof![Just("labelSelector"), Just("fieldSelector"), Just("limit"), Just("continue"),
                         Just("resourceVersion"), Just("resourceVersionMatch"), Just("timeoutSeconds")],
             ".{0,24}"),
            0..4)
    ) {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(&rt, dir.path());
        let pairs: Vec<(String, String)> = q.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        rt.block_on(async {
            if let Ok(opts) = ListOptions::from_query(&pairs) {
                for res in RESOURCES {
                    if let Err(e) = reg.list(res, None, &opts).await {
                        prop_assert!(e.code().is_client_error() || e.code() == 503, "{}: {} {e}", res.plural, e.code());
                    }
                }
            }
            Ok(())
        })?;
    }
}
