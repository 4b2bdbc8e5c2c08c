//! `knet-cni`: the CNI plugin executable (driven by `CNI_*` environment variables and the config on stdin).

fn main() {
    eprintln!("knet-cni is not built yet");
    std::process::exit(1);
}
