//! `agnhost pause`: prints `Paused` and waits for a signal. As upstream, SIGINT exits with 1 and SIGTERM with 2.

use nix::sys::signal::{SigSet, Signal};

pub fn run() -> ! {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Blocked signals stay pending until sigwait takes them, so none is lost between the two calls.
    if let Err(e) = set.thread_block() {
        crate::log::fatal(format!("blocking signals: {e}"));
    }
    // Only now: a caller that signals as soon as it reads this line must not kill us with the default action.
    println!("Paused");
    loop {
        match set.wait() {
            Ok(Signal::SIGINT) => std::process::exit(1),
            Ok(Signal::SIGTERM) => std::process::exit(2),
            Ok(_) => continue,
            Err(e) => crate::log::fatal(format!("waiting for a signal: {e}")),
        }
    }
}
