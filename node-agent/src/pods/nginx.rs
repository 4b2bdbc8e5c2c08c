//! The configuration of the nginx image: Debian's nginx set up like the official image (main config including
//! `/etc/nginx/conf.d/*.conf`, a `default.conf` serving the "Welcome to nginx!" page from
//! `/usr/share/nginx/html`, logs to the container's stdout/stderr), listening on the container ports, plus
//! HTTPS on 443 with `/etc/nginx/ssl/nginx.{crt,key}` when the pod mounts a certificate there (the seed's
//! `bprashanth/nginxhttps`). Everything else nginx writes (pid, temp files) stays in the pod's own root.

/// In-pod path of the main configuration.
pub const MAIN_CONF: &str = "/etc/nginx/nginx.conf";
/// In-pod path of the default server.
pub const DEFAULT_CONF: &str = "/etc/nginx/conf.d/default.conf";
/// Where the certificate Secret is mounted in the seed.
pub const SSL_DIR: &str = "/etc/nginx/ssl";

/// The main configuration.
pub fn main_conf() -> String {
    "user www-data;\n\
worker_processes 1;\n\
pid /run/nginx.pid;\n\
error_log /dev/stderr notice;\n\
\n\
events {\n    worker_connections 1024;\n}\n\
\n\
http {\n\
    include /etc/nginx/mime.types;\n\
    default_type application/octet-stream;\n\
    log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n\
                    '$status $body_bytes_sent \"$http_referer\" '\n\
                    '\"$http_user_agent\" \"$http_x_forwarded_for\"';\n\
    access_log /dev/stdout main;\n\
    sendfile on;\n\
    keepalive_timeout 65;\n\
    include /etc/nginx/conf.d/*.conf;\n\
}\n"
    .to_string()
}

/// The default server(s): plain HTTP on `ports` (80 when none), and with `https` 443 with the mounted
/// certificate (443 is then never served as plain HTTP).
pub fn default_conf(ports: &[i32], https: bool) -> String {
    let mut plain: Vec<i32> = ports.iter().copied().filter(|p| !(https && *p == 443)).collect();
    plain.sort();
    plain.dedup();
    if plain.is_empty() && !https {
        plain.push(80);
    }
    if https && plain.is_empty() {
        plain.push(80);
    }
    let location =
        "    location / {\n        root /usr/share/nginx/html;\n        index index.html index.htm;\n    }\n";
    let mut out = String::new();
    out.push_str("server {\n");
    for p in &plain {
        out.push_str(&format!("    listen {p};\n"));
    }
    out.push_str("    server_name localhost;\n");
    out.push_str(location);
    out.push_str("}\n");
    if https {
        out.push_str("\nserver {\n    listen 443 ssl;\n    server_name localhost;\n");
        out.push_str(&format!(
            "    ssl_certificate {SSL_DIR}/nginx.crt;\n    ssl_certificate_key {SSL_DIR}/nginx.key;\n"
        ));
        out.push_str(location);
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_default_server() {
        assert_eq!(
            default_conf(&[], false),
            "server {\n    listen 80;\n    server_name localhost;\n    location / {\n        root /usr/share/nginx/html;\n        index index.html index.htm;\n    }\n}\n"
        );
    }

    #[test]
    fn container_ports_and_https() {
        let conf = default_conf(&[8080, 80], false);
        assert!(conf.contains("listen 80;\n    listen 8080;\n"), "{conf}");
        let conf = default_conf(&[443, 80], true);
        assert!(conf.contains("listen 80;\n    server_name"), "{conf}");
        assert!(conf.contains("listen 443 ssl;") && conf.contains("/etc/nginx/ssl/nginx.key"), "{conf}");
        assert!(!conf.contains("listen 443;"), "{conf}");
        assert!(main_conf().contains("include /etc/nginx/conf.d/*.conf;"));
    }
}
