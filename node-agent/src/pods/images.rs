//! The image catalog: images are not pulled, an image name maps to a program on the node (BRIEF.md, "Pods
//! without a container runtime"), with the entrypoint, default command and environment of the real image so
//! `command`/`args` keep their Docker meaning.

/// In-pod directory holding busybox applet links (put first on PATH for busybox images).
pub const BUSYBOX_DIR: &str = "/.knet/busybox";
/// Where agnhost is inside the container, as in the real image.
pub const AGNHOST_PATH: &str = "/agnhost";
/// The PATH of the official images.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What an image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// knet's agnhost at `/agnhost`.
    Agnhost,
    /// The pause image (agnhost's `pause`).
    Pause,
    /// Debian's nginx with a per-pod config; `https`: the image serves 443 with /etc/nginx/ssl (as
    /// `bprashanth/nginxhttps`).
    Nginx { https: bool },
    /// busybox applets first on PATH; `curl`: `radial/busyboxplus:curl`.
    Busybox { curl: bool },
    /// Not in the catalog: runs only with a `command`.
    Unknown,
}

/// An image's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub kind: ImageKind,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// `docker.io/library/nginx:1.25` → (`nginx`, `1.25`); registry and `library/` dropped, digest ignored.
pub fn repository(image: &str) -> (String, String) {
    let image = image.split('@').next().unwrap_or(image);
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (image, "latest"),
    };
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost") {
        let registry = parts.remove(0);
        if registry == "docker.io" || registry == "index.docker.io" || registry == "registry-1.docker.io" {
            if parts.first() == Some(&"library") && parts.len() > 1 {
                parts.remove(0);
            }
            return (parts.join("/"), tag.to_string());
        }
        return (format!("{registry}/{}", parts.join("/")), tag.to_string());
    }
    if parts.first() == Some(&"library") && parts.len() > 1 {
        parts.remove(0);
    }
    (parts.join("/"), tag.to_string())
}

/// The fully qualified reference a container runtime reports (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalized(image: &str) -> String {
    let (repo, tag) = repository(image);
    let first = repo.split('/').next().unwrap_or_default();
    let qualified = if repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{qualified}:{tag}")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The catalog entry of `image`.
pub fn lookup(image: &str) -> Image {
    let (repo, tag) = repository(image);
    let kind = match repo.as_str() {
        "agnhost"
        | "registry.k8s.io/e2e-test-images/agnhost"
        | "k8s.gcr.io/e2e-test-images/agnhost"
        | "gcr.io/k8s-staging-e2e-test-images/agnhost"
        | "gcr.io/kubernetes-e2e-test-images/agnhost" => ImageKind::Agnhost,
        "registry.k8s.io/pause" | "k8s.gcr.io/pause" | "pause" => ImageKind::Pause,
        "nginx" => ImageKind::Nginx { https: false },
        "bprashanth/nginxhttps" => ImageKind::Nginx { https: true },
        "busybox" => ImageKind::Busybox { curl: false },
        "radial/busyboxplus" => ImageKind::Busybox { curl: tag == "curl" },
        _ => ImageKind::Unknown,
    };
    let path = |p: &str| vec![("PATH".to_string(), p.to_string())];
    match kind {
        ImageKind::Agnhost => {
            Image { kind, entrypoint: strings(&[AGNHOST_PATH]), cmd: strings(&["pause"]), env: path(DEFAULT_PATH) }
        }
        ImageKind::Pause => {
            Image { kind, entrypoint: strings(&[AGNHOST_PATH, "pause"]), cmd: vec![], env: path(DEFAULT_PATH) }
        }
        ImageKind::Nginx { .. } => {
            Image { kind, entrypoint: vec![], cmd: strings(&["nginx", "-g", "daemon off;"]), env: path(DEFAULT_PATH) }
        }
        ImageKind::Busybox { .. } => Image {
            kind,
            entrypoint: vec![],
            // The image's /bin/sh is busybox's; here `sh` on the busybox-first PATH is.
            cmd: strings(&["sh"]),
            env: path(&format!("{BUSYBOX_DIR}:{DEFAULT_PATH}")),
        },
        ImageKind::Unknown => Image { kind, entrypoint: vec![], cmd: vec![], env: path(DEFAULT_PATH) },
    }
}

/// Why a container cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "image {image:?} is not in knet's image catalog (agnhost, nginx, busybox, radial/busyboxplus) and container \
         {container:?} has no command: set `command` to the absolute path of a program on the node"
    )]
    NotInCatalog { image: String, container: String },
    #[error("container {0:?} has no command to run")]
    NoCommand(String),
}

/// The process's argv, with Docker's rules: `command` replaces the entrypoint (and drops the image's cmd),
/// `args` replace the image's cmd.
pub fn argv(image: &str, container: &str, command: &[String], args: &[String]) -> Result<Vec<String>, ImageError> {
    let img = lookup(image);
    if img.kind == ImageKind::Unknown && command.is_empty() {
        return Err(ImageError::NotInCatalog { image: image.to_string(), container: container.to_string() });
    }
    let argv: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else if !args.is_empty() {
        img.entrypoint.iter().chain(args).cloned().collect()
    } else {
        img.entrypoint.iter().chain(&img.cmd).cloned().collect()
    };
    if argv.is_empty() {
        return Err(ImageError::NoCommand(container.to_string()));
    }
    Ok(argv)
}

/// The applets `busybox --list` names, as links to `busybox` in `dir` (what busybox images put first on PATH).
/// Rebuilt when missing; the links point at the node's busybox, which every pod sees through its lower layer.
pub fn prepare_busybox(dir: &std::path::Path, busybox: &std::path::Path) -> std::io::Result<usize> {
    if dir.join("sh").exists() {
        return Ok(0);
    }
    let out = std::process::Command::new(busybox).arg("--list").output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!("{} --list failed", busybox.display())));
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let mut n = 0;
    for name in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        if name.is_empty() || name.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink(busybox, tmp.join(name))?;
        n += 1;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir)?;
    Ok(n)
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        strings(items)
    }

    #[test]
    fn repositories_and_normalized_names() {
        assert_eq!(repository("nginx"), ("nginx".into(), "latest".into()));
        assert_eq!(repository("docker.io/library/nginx:1.25"), ("nginx".into(), "1.25".into()));
        assert_eq!(
            repository("registry.k8s.io/e2e-test-images/agnhost:2.39").0,
            "registry.k8s.io/e2e-test-images/agnhost"
        );
        assert_eq!(repository("localhost:5000/app:v1"), ("localhost:5000/app".into(), "v1".into()));
        assert_eq!(normalized("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalized("radial/busyboxplus:curl"), "docker.io/radial/busyboxplus:curl");
        assert_eq!(normalized("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
    }

    #[test]
    fn catalog() {
        assert_eq!(lookup("registry.k8s.io/e2e-test-images/agnhost:2.39").kind, ImageKind::Agnhost);
        assert_eq!(lookup("nginx:1.14.2").kind, ImageKind::Nginx { https: false });
        assert_eq!(lookup("bprashanth/nginxhttps:1.0").kind, ImageKind::Nginx { https: true });
        assert_eq!(lookup("busybox:1.28").kind, ImageKind::Busybox { curl: false });
        assert_eq!(lookup("radial/busyboxplus:curl").kind, ImageKind::Busybox { curl: true });
        assert_eq!(lookup("ubuntu").kind, ImageKind::Unknown);
        assert!(lookup("busybox").env[0].1.starts_with("/.knet/busybox:"));
    }

    #[test]
    fn command_and_args_follow_docker_rules() {
        let agn = "registry.k8s.io/e2e-test-images/agnhost:2.39";
        assert_eq!(argv(agn, "c", &[], &[]).unwrap(), s(&["/agnhost", "pause"]));
        assert_eq!(
            argv(agn, "c", &[], &s(&["netexec", "--http-port=8080"])).unwrap(),
            s(&["/agnhost", "netexec", "--http-port=8080"])
        );
        assert_eq!(argv("busybox", "c", &s(&["sleep"]), &s(&["3600"])).unwrap(), s(&["sleep", "3600"]));
        assert_eq!(argv("busybox", "c", &[], &s(&["echo", "hi"])).unwrap(), s(&["echo", "hi"]));
        assert_eq!(argv("nginx", "c", &[], &[]).unwrap(), s(&["nginx", "-g", "daemon off;"]));
        assert_eq!(argv("ubuntu", "c", &s(&["/bin/sleep", "5"]), &[]).unwrap(), s(&["/bin/sleep", "5"]));
        let err = argv("example/app:v1", "app", &[], &s(&["x"])).unwrap_err().to_string();
        assert!(err.contains("\"example/app:v1\" is not in knet's image catalog") && err.contains("\"app\""), "{err}");
    }
}
