//! Tests of label selector parsing, printing, matching and validation.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn err(s: &str) -> String {
    match parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_every_operator_and_sorts_by_key() {
    let sel = parse("x>3,app=nginx,tier in (web, api),!canary,env!=prod,y<10,z==a,w notin (b,a),k").unwrap();
    assert_eq!(sel.to_string(), "app=nginx,!canary,env!=prod,k,tier in (api,web),w notin (a,b),x>3,y<10,z==a");
    let ops: Vec<Operator> = sel.requirements().iter().map(Requirement::operator).collect();
    assert_eq!(
        ops,
        [
            Operator::Equals,
            Operator::DoesNotExist,
            Operator::NotEquals,
            Operator::Exists,
            Operator::In,
            Operator::NotIn,
            Operator::GreaterThan,
            Operator::LessThan,
            Operator::DoubleEquals
        ]
    );
    assert_eq!(sel.requirements()[4].values(), ["api", "web"]);
}

#[test]
fn accepted_and_refused_strings() {
    let good = [
        ("\rx", "x"),
        ("a.example.com/key-with-dash in (so,what)", "a.example.com/key-with-dash in (so,what)"),
        ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("x notin ( )", "x notin ()"),
        ("x= ,z= ", "x=,z="),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ("x>1,z<5", "x>1,z<5"),
    ];
    for (input, canonical) in good {
        assert_eq!(parse(input).map(|s| s.to_string()), Ok(canonical.to_string()), "{input:?}");
    }
    let bad = [
        "x=a||y=b",
        "x==a==b",
        "!x=a",
        "x<a",
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
        "x=a,",
        "a!b",
    ];
    for input in bad {
        assert!(parse(input).is_err(), "{input:?} should be refused");
    }
}

#[test]
fn empty_and_blank_select_everything() {
    for s in ["", "  ", "\t\n"] {
        let sel = parse(s).unwrap();
        assert!(sel.is_everything(), "{s:?}");
        assert!(sel.matches(&labels(&[("a", "b")])));
        assert!(sel.matches(&BTreeMap::new()));
    }
    assert!(!parse("a").unwrap().is_everything());
}

#[test]
fn keywords_are_identifiers_in_value_positions() {
    let sel = parse("in=notin,notin in (in, notin)").unwrap();
    assert_eq!(sel.to_string(), "in=notin,notin in (in,notin)");
    assert!(sel.matches(&labels(&[("in", "notin"), ("notin", "in")])));
    assert!(parse("in").unwrap().matches(&labels(&[("in", "")])));
}

#[test]
fn empty_values() {
    // `a=` and `a in ()` select the empty value; `(,x)` has the empty value and x.
    assert!(parse("a=").unwrap().matches(&labels(&[("a", "")])));
    assert!(!parse("a=").unwrap().matches(&labels(&[])));
    assert_eq!(parse("a in ()").unwrap().requirements()[0].values(), [""]);
    assert_eq!(parse("a in (,x)").unwrap().requirements()[0].values(), ["", "x"]);
    assert_eq!(parse("a in (x,)").unwrap().requirements()[0].values(), ["", "x"]);
    assert_eq!(parse("a in (x,,y)").unwrap().requirements()[0].values(), ["", "x", "y"]);
    assert_eq!(parse("a in (b,b)").unwrap().to_string(), "a in (b)");
}

#[test]
fn matching_follows_kubernetes() {
    let l = labels(&[("app", "web"), ("n", "5"), ("bad", "x")]);
    let m = |s: &str| parse(s).unwrap().matches(&l);
    assert!(m("app=web") && m("app==web") && m("app in (web,db)") && m("app"));
    assert!(!m("app=db") && !m("app notin (web)") && !m("!app") && !m("app!=web"));
    // Missing labels satisfy the negative operators only.
    assert!(m("zone!=a") && m("zone notin (a)") && m("!zone"));
    assert!(!m("zone=a") && !m("zone in (a)") && !m("zone") && !m("zone>1") && !m("zone<1"));
    // Comparisons parse the label as an integer.
    assert!(m("n>4") && m("n<6") && !m("n>5") && !m("n<5") && m("n>0"));
    // As in Kubernetes, the value must also be a valid label value, so negative bounds are refused.
    assert!(parse("n>-1").is_err());
    assert!(!m("bad>1") && !m("bad<1"));
    assert!(m("app=web,n>1,!zone") && !m("app=web,n>9"));
}

#[test]
fn syntax_errors_read_like_kubernetes() {
    assert_eq!(err("a b"), "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
    assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
    assert_eq!(err(",a"), "found ',', expected: !, identifier, or 'end of string'");
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("a in b"), "unable to parse requirement: found 'b' expected: '('");
    assert_eq!(err("a in (b"), "unable to parse requirement: found '', expected: ',' or ')'");
    assert_eq!(err("a in (b c)"), "unable to parse requirement: found 'c', expected: ',' or ')'");
    assert_eq!(err("a in (=)"), "unable to parse requirement: found '=', expected: ',', ')' or identifier");
    assert_eq!(err("a in (b,="), "unable to parse requirement: found '=', expected: ',', or identifier");
    assert_eq!(err("a=!"), "unable to parse requirement: found '!', expected: identifier");
    assert_eq!(parse("a==").unwrap().to_string(), "a==");
    assert_eq!(err("a=)"), "unable to parse requirement: found ')', expected: identifier");
    assert_eq!(err("!"), "unable to parse requirement: found '', expected: identifier");
    assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(err("!=a"), "found '!=', expected: !, identifier, or 'end of string'");
}

#[test]
fn invalid_keys_and_values_read_like_kubernetes() {
    assert_eq!(
        err("-app=x"),
        "unable to parse requirement: <nil>: Invalid value: \"-app\": name part must consist of alphanumeric \
         characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
         'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert!(err("a/b/c").contains(
        "\"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and \
         end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation \
         is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. \
         'example.com/MyName')"
    ));
    assert!(err("Example.com/a").contains("\"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must"));
    assert!(err("/a").contains("prefix part must be non-empty"));
    assert!(err(&format!("{}=a", "k".repeat(64))).contains("name part must be no more than 63 characters"));
    assert_eq!(
        err("app=-x"),
        "unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be an empty string \
         or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
         character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
         '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
    assert!(err(&format!("a={}", "v".repeat(64))).contains("must be no more than 63 characters"));
    assert_eq!(
        err("x>a"),
        "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be \
         an integer"
    );
    // Two errors on one requirement are aggregated in brackets.
    let both = err("x<-a");
    assert!(both.starts_with("unable to parse requirement: [values[0]: Invalid value: \"-a\": for 'Gt'"), "{both}");
    assert!(both.contains(", values[0][x]: Invalid value: \"-a\": a valid label"), "{both}");
    assert!(both.ends_with(")]"), "{both}");
    // Parsing stops at the first invalid key.
    assert!(err("a b c").contains("found 'b'"));
}

#[test]
fn prefixed_keys_and_odd_bytes() {
    let sel = parse("kubernetes.io/metadata.name=kube-system").unwrap();
    assert_eq!(sel.requires_exact_match("kubernetes.io/metadata.name"), Some("kube-system"));
    assert_eq!(sel.requires_exact_match("other"), None);
    // Non-ASCII never panics; it is just an invalid key.
    assert!(parse("é=1").is_err());
    // A NUL byte ends the token it is in, as in Kubernetes' lexer …
    assert_eq!(parse("a=\u{0}b").unwrap().to_string(), "a=b");
    // … and where a token starts it ends the selector.
    assert_eq!(parse("a=b, \u{0}junk").unwrap_err().to_string(), "found '', expected: identifier after ','");
}

#[test]
fn from_set_matches_service_selectors() {
    let sel = Selector::from_set(&labels(&[("app", "web"), ("tier", "fe")]));
    assert_eq!(sel.to_string(), "app=web,tier=fe");
    assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
    assert!(!sel.matches(&labels(&[("app", "web")])));
    assert!(Selector::from_set(&BTreeMap::new()).is_everything());
}

fn expr(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: op.to_string(),
        values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
    }
}

#[test]
fn label_selector_objects() {
    let ls = LabelSelector {
        match_labels: Some(labels(&[("app", "web")])),
        match_expressions: Some(vec![
            expr("tier", "In", Some(&["fe", "be"])),
            expr("canary", "DoesNotExist", None),
            expr("env", "NotIn", Some(&["prod"])),
            expr("zone", "Exists", Some(&[])),
        ]),
    };
    let sel = from_label_selector(&ls).unwrap();
    assert_eq!(sel.to_string(), "app=web,!canary,env notin (prod),tier in (be,fe),zone");
    assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("zone", "a")])));
    assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("zone", "a"), ("canary", "1")])));

    assert!(from_label_selector(&LabelSelector::default()).unwrap().is_everything());
    let empty = LabelSelector { match_labels: Some(BTreeMap::new()), match_expressions: Some(vec![]) };
    assert!(from_label_selector(&empty).unwrap().is_everything());
    let nothing = from_optional_label_selector(None).unwrap();
    assert!(nothing.is_nothing() && !nothing.is_everything() && !nothing.matches(&BTreeMap::new()));
}

#[test]
fn label_selector_validation() {
    let one = |e: LabelSelectorRequirement| {
        from_label_selector(&LabelSelector { match_labels: None, match_expressions: Some(vec![e]) })
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        one(expr("a", "In", None)),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        one(expr("a", "NotIn", Some(&[]))),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        one(expr("a", "Exists", Some(&["x"]))),
        "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
    );
    assert_eq!(one(expr("a", "Gt", Some(&["1"]))), "\"Gt\" is not a valid label selector operator");
    assert!(one(expr("a b", "Exists", None)).starts_with("key: Invalid value: \"a b\": name part must consist"));
    assert!(one(expr("a", "In", Some(&["ok", "no way"]))).starts_with("values[1][a]: Invalid value: \"no way\""));
    let bad_label = LabelSelector { match_labels: Some(labels(&[("a", "-")])), match_expressions: None };
    assert!(from_label_selector(&bad_label).unwrap_err().to_string().starts_with("values[0][a]: Invalid value: \"-\""));
    assert!(Requirement::new("a", Operator::Equals, vec![]).is_err());
    assert!(Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]).is_err());
    assert!(Requirement::new("a", Operator::LessThan, vec!["7".into()]).is_ok());
    assert!(Requirement::new("a", Operator::LessThan, vec!["-7".into()]).is_err());
}

// ---- properties ----

fn key_strategy() -> impl Strategy<Value = String> {
    let name = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?";
    prop_oneof![
        3 => name.prop_map(String::from),
        1 => ("[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}", name).prop_map(|(p, n)| format!("{p}/{n}")),
        1 => Just("in".to_string()),
        1 => Just("notin".to_string()),
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?".prop_map(String::from),
        Just("in".to_string()),
        Just("notin".to_string()),
    ]
}

fn int_strategy() -> impl Strategy<Value = String> {
    (0i64..20).prop_map(|n| n.to_string())
}

fn requirement_strategy() -> impl Strategy<Value = Requirement> {
    let values = || proptest::collection::btree_set(value_strategy(), 1..4).prop_map(|s| s.into_iter().collect());
    let one = || value_strategy().prop_map(|v| vec![v]);
    (
        key_strategy(),
        prop_oneof![
            one().prop_map(|v| (Operator::Equals, v)),
            one().prop_map(|v| (Operator::DoubleEquals, v)),
            one().prop_map(|v| (Operator::NotEquals, v)),
            values().prop_map(|v| (Operator::In, v)),
            values().prop_map(|v| (Operator::NotIn, v)),
            Just((Operator::Exists, vec![])),
            Just((Operator::DoesNotExist, vec![])),
            int_strategy().prop_map(|v| (Operator::GreaterThan, vec![v])),
            int_strategy().prop_map(|v| (Operator::LessThan, vec![v])),
        ],
    )
        .prop_map(|(key, (operator, values))| Requirement { key, operator, values })
}

fn labels_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        key_strategy(),
        prop_oneof![value_strategy(), (-20i64..20).prop_map(|n| n.to_string())],
        0..6,
    )
}

/// An independent reading of the operators' meaning, to check `matches` against.
fn reference_matches(reqs: &[Requirement], l: &BTreeMap<String, String>) -> bool {
    reqs.iter().all(|r| {
        let v = l.get(r.key()).map(String::as_str);
        let int = |s: &str| s.parse::<i64>().ok();
        match r.operator() {
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::Equals | Operator::DoubleEquals => v == Some(r.values()[0].as_str()),
            Operator::NotEquals => v != Some(r.values()[0].as_str()),
            Operator::In => r.values().iter().any(|x| v == Some(x.as_str())),
            Operator::NotIn => r.values().iter().all(|x| v != Some(x.as_str())),
            Operator::GreaterThan => matches!((v.and_then(int), int(&r.values()[0])), (Some(a), Some(b)) if a > b),
            Operator::LessThan => matches!((v.and_then(int), int(&r.values()[0])), (Some(a), Some(b)) if a < b),
        }
    })
}

proptest! {
    #[test]
    fn display_parse_round_trip(reqs in proptest::collection::vec(requirement_strategy(), 0..6)) {
        let sel = Selector::from_requirements(reqs);
        let text = sel.to_string();
        let reparsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(&reparsed, &sel, "{}", text);
        prop_assert_eq!(reparsed.to_string(), text);
    }

    #[test]
    fn matches_agrees_with_reference(
        reqs in proptest::collection::vec(requirement_strategy(), 0..5),
        l in labels_strategy(),
    ) {
        let sel = Selector::from_requirements(reqs.clone());
        prop_assert_eq!(sel.matches(&l), reference_matches(&reqs, &l));
        let reparsed = parse(&sel.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(reparsed.matches(&l), sel.matches(&l));
    }

    #[test]
    fn whitespace_between_tokens_is_ignored(reqs in proptest::collection::vec(requirement_strategy(), 1..4)) {
        let sel = Selector::from_requirements(reqs);
        let spaced = sel.to_string().replace(',', " , ").replace('(', " ( ").replace(')', " ) ");
        prop_assert_eq!(parse(&spaced).map_err(|e| TestCaseError::fail(e.to_string()))?, sel);
    }

    #[test]
    fn parse_never_panics(s in "[a-z=!(),<> \t\u{0}é/.-]{0,24}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = parse(&s);
    }
}
