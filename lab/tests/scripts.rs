//! The per-host bring-up scripts are shellcheck-clean and each one is embedded in knet-lab.

use std::path::Path;
use std::process::Command;

#[test]
fn host_scripts_are_shellcheck_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hosts");
    let scripts: Vec<String> =
        knet_lab::scripts::SCRIPTS.iter().map(|(name, _)| dir.join(name).display().to_string()).collect();
    for (name, text) in knet_lab::scripts::SCRIPTS {
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *text, "{name} embedded differs");
    }
    if Command::new("shellcheck").arg("--version").output().is_err() {
        eprintln!("skipping the shellcheck run: shellcheck is not installed (apt-get install shellcheck)");
        return;
    }
    let out = Command::new("shellcheck").arg("-x").args(&scripts).output().unwrap();
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}
