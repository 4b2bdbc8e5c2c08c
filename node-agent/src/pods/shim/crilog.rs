//! Container log files in the CRI logging format kubelet reads: one line per record,
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>`; `P` marks a partial record (a line longer than the
//! buffer), `F` the end of a line.

use std::io::Write;

/// Lines longer than this are split into partial records.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits one stream's output into records.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

/// A record: text, and whether it ends a line.
pub type Record = (Vec<u8>, bool);

impl LineSplitter {
    /// Feeds output; returns the records that are complete.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                out.push((std::mem::take(&mut self.pending), true));
            } else {
                self.pending.push(b);
                if self.pending.len() >= MAX_LINE {
                    out.push((std::mem::take(&mut self.pending), false));
                }
            }
        }
        out
    }

    /// What is left at the end of the stream, as a final record.
    pub fn finish(&mut self) -> Option<Record> {
        if self.pending.is_empty() {
            None
        } else {
            Some((std::mem::take(&mut self.pending), true))
        }
    }
}

/// One record as a log line.
pub fn format_record(timestamp: &str, stream: &str, record: &Record) -> Vec<u8> {
    let mut line = Vec::with_capacity(record.0.len() + 48);
    line.extend_from_slice(timestamp.as_bytes());
    line.push(b' ');
    line.extend_from_slice(stream.as_bytes());
    line.extend_from_slice(if record.1 { b" F " } else { b" P " });
    line.extend_from_slice(&record.0);
    line.push(b'\n');
    line
}

/// The current time as CRI writes it (RFC 3339 with nanoseconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string()
}

/// Appends records to `file`.
pub fn write_records(file: &mut std::fs::File, stream: &str, records: &[Record]) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let ts = now();
    let mut buf = Vec::new();
    for r in records {
        buf.extend(format_record(&ts, stream, r));
    }
    file.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_partials() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"a\nbc"), vec![(b"a".to_vec(), true)]);
        assert_eq!(s.feed(b"d\n\n"), vec![(b"bcd".to_vec(), true), (b"".to_vec(), true)]);
        assert_eq!(s.feed(b"tail"), vec![]);
        assert_eq!(s.finish(), Some((b"tail".to_vec(), true)));
        let long = vec![b'x'; MAX_LINE + 3];
        let recs = s.feed(&long);
        assert_eq!(recs.len(), 1);
        assert!(!recs[0].1);
        assert_eq!(s.finish().unwrap().0.len(), 3);
    }

    #[test]
    fn formats_cri_lines() {
        let line = format_record("2016-10-06T00:17:09.669794202Z", "stdout", &(b"log content 1".to_vec(), true));
        assert_eq!(line, b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n");
        let partial = format_record("2016-10-06T00:17:10.113242941Z", "stderr", &(b"part".to_vec(), false));
        assert_eq!(partial, b"2016-10-06T00:17:10.113242941Z stderr P part\n");
        let ts = now();
        assert!(ts.ends_with('Z') && ts.contains('.'), "{ts}");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
    }
}
