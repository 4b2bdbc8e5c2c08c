//! `agnhost`: knet's subset of Kubernetes' agnhost test image.

fn main() {
    eprintln!("agnhost is not built yet");
    std::process::exit(1);
}
