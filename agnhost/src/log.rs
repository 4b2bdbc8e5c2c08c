//! Log lines as agnhost writes them (Go's `log` package: `YYYY/MM/DD HH:MM:SS message` on stderr).

/// Writes one log line to stderr with Go's default `log` prefix (local time).
pub fn line(message: impl std::fmt::Display) {
    let now = jiff::Zoned::now();
    eprintln!("{} {message}", now.strftime("%Y/%m/%d %H:%M:%S"));
}

/// Logs `message` and exits with status 1, like Go's `log.Fatalf`.
pub fn fatal(message: impl std::fmt::Display) -> ! {
    line(message);
    std::process::exit(1)
}

/// The machine's (the pod's UTS namespace's) host name, like Go's `os.Hostname()`.
pub fn hostname() -> String {
    match nix::unistd::gethostname() {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(e) => fatal(format!("Error occurred: failed to get hostname:{e}")),
    }
}
