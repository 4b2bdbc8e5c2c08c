//! Reads a host `resolv.conf` into the result's DNS settings (host-local's `resolvConf` option).

use crate::result::Dns;

/// Parses resolv.conf text: `nameserver`, `domain`, `search` and `options` lines; comments are skipped.
pub fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.next().map(str::to_string)),
            Some("domain") => dns.domain = words.next().unwrap_or_default().to_string(),
            Some("search") => dns.search = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_directive() {
        let d = parse("# generated\nnameserver 10.96.0.10\nnameserver fd00::a # v6\nsearch a.svc b.svc\ndomain x\noptions ndots:5 edns0\n");
        assert_eq!(d.nameservers, ["10.96.0.10", "fd00::a"]);
        assert_eq!(d.search, ["a.svc", "b.svc"]);
        assert_eq!(d.domain, "x");
        assert_eq!(d.options, ["ndots:5", "edns0"]);
    }
}
