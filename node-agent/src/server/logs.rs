//! `containerLogs`: a container's log as the kubelet serves it from CRI log files
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <text>` per line; `P` is a partial line continued by the next record).
//! Options as `PodLogOptions`: `follow`, `previous`, `timestamps`, `sinceSeconds`, `sinceTime`, `tailLines`,
//! `limitBytes`. Parsing and rendering are pure; [`stream`] reads the files and follows a running container.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::route::param;
use super::runtime::{ContainerRef, LogFiles, StreamingRuntime};

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often a followed container is asked whether it still runs.
const FOLLOW_STATUS: Duration = Duration::from_millis(500);

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    /// Only records at or after this time (from `sinceSeconds` or `sinceTime`).
    pub since: Option<Timestamp>,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
}

fn bool_param(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("true" | "1" | "True"))
}

impl LogOptions {
    /// Reads the options from the query, `now` anchoring `sinceSeconds`.
    pub fn from_query(q: &[(String, String)], now: Timestamp) -> Result<LogOptions, String> {
        let int = |key: &str| -> Result<Option<i64>, String> {
            param(q, key)
                .map(|v| v.parse::<i64>().map_err(|_| format!("invalid {key} {v:?}: not an integer")))
                .transpose()
        };
        let mut since = None;
        if let Some(secs) = int("sinceSeconds")? {
            if secs < 1 {
                return Err("sinceSeconds: Invalid value: must be greater than 0".into());
            }
            since = Some(now - jiff::SignedDuration::from_secs(secs));
        }
        if let Some(t) = param(q, "sinceTime") {
            let t: Timestamp = t.parse().map_err(|e| format!("invalid sinceTime {t:?}: {e}"))?;
            since = Some(t);
        }
        let tail_lines = int("tailLines")?.map(|n| n.max(0) as u64);
        let limit_bytes = match int("limitBytes")? {
            Some(n) if n < 1 => return Err("limitBytes: Invalid value: must be greater than 0".into()),
            n => n.map(|n| n as u64),
        };
        Ok(LogOptions {
            follow: bool_param(q, "follow"),
            previous: bool_param(q, "previous"),
            timestamps: bool_param(q, "timestamps"),
            since,
            tail_lines,
            limit_bytes,
        })
    }
}

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Timestamp,
    pub stream: &'a str,
    /// A `P` record: the line continues in the next record.
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one line of a CRI log file (without its newline).
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse::<Timestamp>().ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tags = parts.next()?;
    let text = parts.next().unwrap_or(&[]);
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    Some(Record { time, stream, partial, text })
}

/// Turns records into what the client reads, keeping state across calls (for following).
#[derive(Debug, Clone)]
pub struct Renderer {
    opts: LogOptions,
    /// The last record written was partial: the next one continues its line (no timestamp prefix).
    continued: bool,
    written: u64,
}

impl Renderer {
    pub fn new(opts: LogOptions) -> Self {
        Renderer { opts, continued: false, written: 0 }
    }

    /// Whether `limitBytes` is used up.
    pub fn done(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    /// Appends one record's output to `out`.
    pub fn render(&mut self, rec: &Record<'_>, out: &mut Vec<u8>) {
        if self.done() || self.opts.since.is_some_and(|s| rec.time < s) {
            return;
        }
        let mut line = Vec::with_capacity(rec.text.len() + 40);
        if self.opts.timestamps && !self.continued {
            line.extend_from_slice(rec.time.to_string().as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(rec.text);
        if !rec.partial {
            line.push(b'\n');
        }
        self.continued = rec.partial;
        if let Some(limit) = self.opts.limit_bytes {
            let room = (limit - self.written) as usize;
            line.truncate(room);
        }
        self.written += line.len() as u64;
        out.extend_from_slice(&line);
    }

    /// Renders a whole file's content (applying `tailLines`).
    pub fn render_file(&mut self, content: &[u8]) -> Vec<u8> {
        let lines: Vec<&[u8]> = content.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        let start = match self.opts.tail_lines {
            Some(n) => lines.len().saturating_sub(n as usize),
            None => 0,
        };
        let mut out = Vec::new();
        for line in &lines[start..] {
            if let Some(rec) = parse_record(line) {
                self.render(&rec, &mut out);
            }
        }
        out
    }
}

/// Streams a container's log into `tx` until it is read (and, following, until the container stops or the
/// reader goes away).
pub async fn stream(
    runtime: Arc<dyn StreamingRuntime>,
    container: ContainerRef,
    files: LogFiles,
    opts: LogOptions,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let path: PathBuf = match (opts.previous, &files.previous) {
        (true, Some(p)) => p.clone(),
        (true, None) => return,
        (false, _) => files.current.clone(),
    };
    let follow = opts.follow && !opts.previous && files.running;
    let mut renderer = Renderer::new(opts);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow => {
            // The runtime may not have written anything yet: wait for the file.
            loop {
                tokio::time::sleep(FOLLOW_POLL).await;
                if tx.is_closed() {
                    return;
                }
                if let Ok(f) = tokio::fs::File::open(&path).await {
                    break f;
                }
            }
        }
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    let mut content = Vec::new();
    if let Err(e) = file.read_to_end(&mut content).await {
        let _ = tx.send(Err(e)).await;
        return;
    }
    // Only whole lines are rendered; a line still being written waits for its newline.
    let complete = content.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let out = renderer.render_file(&content[..complete]);
    let mut pending: Vec<u8> = content[complete..].to_vec();
    let mut offset = content.len() as u64;
    if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
        return;
    }
    if !follow {
        return;
    }
    let mut last_status = tokio::time::Instant::now();
    let mut running = true;
    loop {
        if renderer.done() || tx.is_closed() {
            return;
        }
        let mut chunk = Vec::new();
        if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
            let _ = file.read_to_end(&mut chunk).await;
        }
        offset += chunk.len() as u64;
        if !chunk.is_empty() {
            pending.extend_from_slice(&chunk);
            let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let mut out = Vec::new();
            for line in pending[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(rec) = parse_record(line) {
                    renderer.render(&rec, &mut out);
                }
            }
            pending.drain(..complete);
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            continue;
        }
        if !running {
            return;
        }
        if last_status.elapsed() >= FOLLOW_STATUS {
            last_status = tokio::time::Instant::now();
            running = match runtime.log_files(&container).await {
                Ok(now) => now.running && now.current == path,
                Err(_) => false,
            };
            // One more read after the container stopped picks up its last lines.
            continue;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::route::query_pairs;

    const LOG: &str = "2024-05-01T10:00:00.000000001Z stdout F one\n\
                       2024-05-01T10:00:01Z stderr F two\n\
                       2024-05-01T10:00:02.5Z stdout P thr\n\
                       2024-05-01T10:00:02.6Z stdout F ee\n\
                       2024-05-01T10:00:03Z stdout F \n";

    fn render(q: &str) -> String {
        let now: Timestamp = "2024-05-01T10:00:04Z".parse().unwrap();
        let opts = LogOptions::from_query(&query_pairs(Some(q)), now).unwrap();
        String::from_utf8(Renderer::new(opts).render_file(LOG.as_bytes())).unwrap()
    }

    #[test]
    fn parses_cri_records() {
        let r = parse_record(b"2024-05-01T10:00:02.5Z stdout P thr").unwrap();
        assert_eq!((r.stream, r.partial, r.text), ("stdout", true, &b"thr"[..]));
        assert_eq!(parse_record(b"2024-05-01T10:00:03Z stdout F").unwrap().text, b"");
        assert!(parse_record(b"garbage").is_none());
    }

    #[test]
    fn renders_with_every_option() {
        assert_eq!(render(""), "one\ntwo\nthree\n\n");
        assert_eq!(render("tailLines=2"), "ee\n\n");
        assert_eq!(render("timestamps=true&tailLines=3"), "2024-05-01T10:00:02.5Z three\n2024-05-01T10:00:03Z \n");
        assert!(render("timestamps=true").starts_with("2024-05-01T10:00:00.000000001Z one\n"));
        assert_eq!(render("sinceSeconds=2"), "three\n\n");
        assert_eq!(render("sinceTime=2024-05-01T10:00:01Z"), "two\nthree\n\n");
        assert_eq!(render("limitBytes=6"), "one\ntw");
        assert_eq!(render("tailLines=0"), "");
    }

    #[test]
    fn rejects_bad_options() {
        let now = Timestamp::UNIX_EPOCH;
        assert!(LogOptions::from_query(&query_pairs(Some("limitBytes=0")), now).is_err());
        assert!(LogOptions::from_query(&query_pairs(Some("sinceSeconds=0")), now).is_err());
        assert!(LogOptions::from_query(&query_pairs(Some("tailLines=x")), now).is_err());
        let o = LogOptions::from_query(&query_pairs(Some("follow=true&previous=true")), now).unwrap();
        assert!(o.follow && o.previous && !o.timestamps);
    }
}
