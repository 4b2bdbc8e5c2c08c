//! The kubelet API's paths (kubelet's `server.go` names): which request goes where, and the query parameters of
//! the streaming endpoints. Pure functions, no I/O.

use super::runtime::ContainerRef;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    /// `GET /containerLogs/{namespace}/{pod}/{container}`.
    Logs(ContainerRef),
    /// `/exec/{namespace}/{pod}[/{uid}]/{container}`.
    Exec(ContainerRef),
    /// `/attach/{namespace}/{pod}[/{uid}]/{container}`.
    Attach(ContainerRef),
    /// `/portForward/{namespace}/{pod}[/{uid}]`.
    PortForward {
        namespace: String,
        pod: String,
        uid: Option<String>,
    },
    NotFound,
}

fn container(ns: &str, pod: &str, uid: Option<&str>, c: &str) -> ContainerRef {
    ContainerRef {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        uid: uid.map(str::to_string),
        container: c.to_string(),
    }
}

/// Routes a request path (methods are checked by the handlers).
pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').trim_end_matches('/').split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Route::NotFound;
    }
    match segs.as_slice() {
        ["healthz"] => Route::Healthz,
        ["containerLogs", ns, pod, c] => Route::Logs(container(ns, pod, None, c)),
        ["exec", ns, pod, c] => Route::Exec(container(ns, pod, None, c)),
        ["exec", ns, pod, uid, c] => Route::Exec(container(ns, pod, Some(uid), c)),
        ["attach", ns, pod, c] => Route::Attach(container(ns, pod, None, c)),
        ["attach", ns, pod, uid, c] => Route::Attach(container(ns, pod, Some(uid), c)),
        ["portForward", ns, pod] => Route::PortForward { namespace: ns.to_string(), pod: pod.to_string(), uid: None },
        ["portForward", ns, pod, uid] => {
            Route::PortForward { namespace: ns.to_string(), pod: pod.to_string(), uid: Some(uid.to_string()) }
        }
        _ => Route::NotFound,
    }
}

/// Decoded `key=value` pairs of a query string, in order (repeated keys kept; `+` is a space, a malformed `%`
/// sequence stays as it is).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else { return Vec::new() };
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The first value of `key`.
pub fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A boolean stream flag as the kubelet reads it (`input=1`; `true` is accepted too).
pub fn flag(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("1" | "true" | "True"))
}

/// What an exec or attach asks for (kubelet's `remotecommand.Options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// The command (exec only).
    pub command: Vec<String>,
}

impl StreamOptions {
    /// Reads `input`, `output`, `error`, `tty` and `command`; a terminal has no separate stderr, and at least one
    /// stream must be asked for (kubelet's message).
    pub fn from_query(q: &[(String, String)]) -> Result<StreamOptions, String> {
        let tty = flag(q, "tty");
        let opts = StreamOptions {
            stdin: flag(q, "input"),
            stdout: flag(q, "output"),
            stderr: flag(q, "error") && !tty,
            tty,
            command: q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect(),
        };
        if !opts.stdin && !opts.stdout && !flag(q, "error") {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_kubelet_paths() {
        assert_eq!(route("/healthz"), Route::Healthz);
        assert_eq!(route("/containerLogs/ns/p/c"), Route::Logs(container("ns", "p", None, "c")));
        assert_eq!(route("/exec/ns/p/c"), Route::Exec(container("ns", "p", None, "c")));
        assert_eq!(route("/exec/ns/p/u-1/c"), Route::Exec(container("ns", "p", Some("u-1"), "c")));
        assert_eq!(route("/attach/ns/p/c/"), Route::Attach(container("ns", "p", None, "c")));
        assert_eq!(
            route("/portForward/ns/p"),
            Route::PortForward { namespace: "ns".into(), pod: "p".into(), uid: None }
        );
        assert_eq!(route("/exec/ns//c"), Route::NotFound);
        assert_eq!(route("/pods"), Route::NotFound);
    }

    #[test]
    fn stream_options_as_the_kubelet_reads_them() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+a%20b&input=1&output=1&error=1&tty=1"));
        let o = StreamOptions::from_query(&q).unwrap();
        assert_eq!(o.command, vec!["sh", "-c", "echo a b"]);
        assert!(o.stdin && o.stdout && o.tty && !o.stderr);
        assert_eq!(
            StreamOptions::from_query(&query_pairs(Some("command=ls"))).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert_eq!(query_pairs(Some("a=%zz%4&&b")), vec![("a".into(), "%zz%4".into()), ("b".into(), String::new())]);
    }
}
