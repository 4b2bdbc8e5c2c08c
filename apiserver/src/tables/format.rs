//! Cell formatting shared by the printers, with kube-apiserver's exact output: human
//! durations (`5m`, `3h12m`, `2d4h`), label sets, label selectors and "+ N more..." lists.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, Time};

/// A human approximation of a duration given in nanoseconds, 2–3 significant figures,
/// as `kubectl get` shows ages: `45s`, `3m20s`, `12m`, `5h30m`, `20h`, `3d4h`, `45d`, `2y10d`.
pub fn human_duration(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    const MIN: i128 = 60 * SEC;
    const HOUR: i128 = 60 * MIN;
    // Up to two seconds into the future is clock skew: "now".
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MIN;
    if minutes < 10 {
        let s = (nanos / SEC) % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = (nanos / MIN) % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Time elapsed since `t`, or `<unknown>` for an unset time.
pub fn since(t: Option<&Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.as_nanosecond() - t.as_nanosecond()),
        None => "<unknown>".into(),
    }
}

/// [`since`] for a `metav1.Time`.
pub fn since_time(t: Option<&Time>, now: Timestamp) -> String {
    since(t.map(|t| &t.0), now)
}

/// [`since`] for a `metav1.MicroTime`.
pub fn since_micro(t: Option<&MicroTime>, now: Timestamp) -> String {
    since(t.map(|t| &t.0), now)
}

/// `a=1,b=2` (keys sorted), or `<none>`: `labels.FormatLabels`.
pub fn labels(map: Option<&BTreeMap<String, String>>) -> String {
    let s = label_set(map);
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

/// `a=1,b=2` (keys sorted), empty for no labels: `labels.Set.String`.
pub fn label_set(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A selector that does not parse as one (`LabelSelectorAsSelector` fails).
#[derive(Debug, PartialEq, Eq)]
pub struct BadSelector;

/// The string form of a `LabelSelector` (`metav1.LabelSelectorAsSelector(s).String()`):
/// requirements sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. A nil or
/// empty selector prints as the empty string.
pub fn selector_string(sel: Option<&LabelSelector>) -> Result<String, BadSelector> {
    let Some(sel) = sel else { return Ok(String::new()) };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let mut values: Vec<String> = e.values.clone().unwrap_or_default();
        values.sort();
        let text = match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => return Err(BadSelector),
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(BadSelector),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return Err(BadSelector),
        };
        if e.key.is_empty() {
            return Err(BadSelector);
        }
        reqs.push((e.key.clone(), text));
    }
    // Stable by key: requirements on one key keep their order.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(","))
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when empty, `<error>` when bad.
pub fn format_selector(sel: Option<&LabelSelector>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(BadSelector) => "<error>".into(),
    }
}

/// Container names and images, comma-separated, as `-o wide` shows them.
pub fn containers(list: Option<&Vec<Container>>) -> (String, String) {
    let list = list.map(Vec::as_slice).unwrap_or_default();
    let names = list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",");
    let images = list.iter().map(|c| c.image.as_deref().unwrap_or_default()).collect::<Vec<_>>().join(",");
    (names, images)
}

/// `a,b,c + 2 more...` for lists cut at three, `<unset>` for none.
pub fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

/// `ip:port`, bracketing IPv6 addresses (`net.JoinHostPort`).
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn durations_read_like_kubectl() {
        let cases: &[(i128, &str)] = &[
            (-3 * S, "<invalid>"),
            (-S, "0s"),
            (0, "0s"),
            (59 * S, "59s"),
            (119 * S, "119s"),
            (120 * S, "2m"),
            (200 * S, "3m20s"),
            (600 * S, "10m"),
            (179 * 60 * S, "179m"),
            (180 * 60 * S, "3h"),
            ((3 * 3600 + 12 * 60) * S, "3h12m"),
            (8 * 3600 * S, "8h"),
            (47 * 3600 * S, "47h"),
            (48 * 3600 * S, "2d"),
            (52 * 3600 * S, "2d4h"),
            (8 * 24 * 3600 * S, "8d"),
            (729 * 24 * 3600 * S, "729d"),
            (730 * 24 * 3600 * S, "2y"),
            (740 * 24 * 3600 * S, "2y10d"),
            (9 * 365 * 24 * 3600 * S, "9y"),
        ];
        for (nanos, want) in cases {
            assert_eq!(human_duration(*nanos), *want, "{nanos}ns");
        }
    }

    #[test]
    fn unset_time_is_unknown() {
        assert_eq!(since(None, Timestamp::UNIX_EPOCH), "<unknown>");
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() { None } else { Some(values.iter().map(|v| v.to_string()).collect()) },
        }
    }

    #[test]
    fn selectors_print_like_label_selector_as_selector() {
        let sel = LabelSelector {
            match_labels: Some([("run".to_string(), "my-nginx".to_string())].into()),
            match_expressions: Some(vec![
                req("tier", "In", &["web", "api"]),
                req("env", "NotIn", &["prod"]),
                req("canary", "DoesNotExist", &[]),
                req("app", "Exists", &[]),
            ]),
        };
        assert_eq!(
            selector_string(Some(&sel)),
            Ok("app,!canary,env notin (prod),run=my-nginx,tier in (api,web)".into())
        );
        assert_eq!(format_selector(Some(&LabelSelector::default())), "<none>");
        assert_eq!(format_selector(None), "<none>");
        let bad = LabelSelector { match_expressions: Some(vec![req("a", "Near", &["x"])]), ..Default::default() };
        assert_eq!(format_selector(Some(&bad)), "<error>");
        let bad = LabelSelector { match_expressions: Some(vec![req("a", "In", &[])]), ..Default::default() };
        assert_eq!(selector_string(Some(&bad)), Err(BadSelector));
    }

    #[test]
    fn label_sets_sort_keys() {
        let m: BTreeMap<String, String> =
            [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into();
        assert_eq!(labels(Some(&m)), "a=1,b=2");
        assert_eq!(labels(None), "<none>");
        assert_eq!(labels(Some(&BTreeMap::new())), "<none>");
    }

    #[test]
    fn lists_cut_at_three() {
        let l: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list_with_more(&l, true, 5, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&l, false, 3, 3), "a,b,c");
        assert_eq!(list_with_more(&[], false, 0, 3), "<unset>");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
    }

    proptest! {
        #[test]
        fn durations_never_panic_and_are_short(nanos in any::<i64>()) {
            let s = human_duration(i128::from(nanos));
            prop_assert!(!s.is_empty() && s.len() <= 12);
        }

        #[test]
        fn durations_grow_monotonically_in_seconds_band(a in 0i128..120, b in 0i128..120) {
            let (x, y) = (human_duration(a * S), human_duration(b * S));
            prop_assert_eq!(a.cmp(&b), x.trim_end_matches('s').parse::<i128>().unwrap_or(-1).cmp(&y.trim_end_matches('s').parse::<i128>().unwrap_or(-1)));
        }
    }
}
