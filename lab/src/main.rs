//! `knet-lab`: up, down, status, exec, kubeconfig, demo.

fn main() {
    eprintln!("knet-lab is not built yet");
    std::process::exit(1);
}
