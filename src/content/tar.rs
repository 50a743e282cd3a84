//! A streaming reader of layer tar archives: entry by entry, each file's first bytes for
//! `machine`, the rest skipped without being kept. ustar (with its `prefix`), GNU long names and
//! link names (`L`, `K`), PAX extended headers (`x`: `path`, `linkpath`, `size`), base-256 sizes,
//! and hard links, which are what image layers use
//! (<https://pubs.opengroup.org/onlinepubs/9799919799/utilities/pax.html>). Pure: it reads any
//! `Read`; it never writes a file.

use std::io::{self, Read};

use super::machine::{self, Head};

const BLOCK: usize = 512;
/// Longest path or link name accepted from a GNU `L`/`K` entry or a PAX record.
const MAX_NAME: u64 = 64 * 1024;
/// Largest PAX extended header read.
const MAX_PAX: u64 = 1024 * 1024;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file and what its first bytes say.
    File(Head),
    Dir,
    Symlink(String),
    /// A hard link to an earlier entry of the same archive (its path).
    Hardlink(String),
    /// A device, FIFO or anything else that cannot be run.
    Other,
}

/// One entry: its path as written (normalised by the caller), mode bits and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) kind: Kind,
}

/// Entries of an archive read from `R`, each file's data read only as far as `machine` needs.
pub(crate) struct Entries<R> {
    reader: R,
    /// Bytes of the previous entry (data and padding) still to skip.
    skip: u64,
    done: bool,
    /// Bytes read from `reader`, which `limit` bounds.
    pub(crate) read: u64,
    limit: u64,
    buffer: Vec<u8>,
}

/// Why an archive could not be read to the end.
#[derive(Debug)]
pub(crate) enum Problem {
    /// More than the limit of bytes once decompressed.
    TooLarge,
    /// Not a tar archive, or a broken one.
    Invalid(String),
    /// Reading failed (the download, the decompression).
    Io(io::Error),
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Self {
        Problem::Io(e)
    }
}

impl<R: Read> Entries<R> {
    /// Reads entries from `reader`, at most `limit` bytes of archive.
    pub(crate) fn new(reader: R, limit: u64) -> Self {
        Entries {
            reader,
            skip: 0,
            done: false,
            read: 0,
            limit,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// The next entry, or `None` at the end of the archive.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, Problem> {
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            if self.done {
                return Ok(None);
            }
            self.skip_pending()?;
            let mut header = [0u8; BLOCK];
            if !self.fill(&mut header)? {
                // An archive cut short of its end-of-archive blocks: what was read stands.
                self.done = true;
                return Ok(None);
            }
            if header.iter().all(|b| *b == 0) {
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&header) {
                return Err(Problem::Invalid(format!(
                    "a header at byte {} has a bad checksum (not a tar archive?)",
                    self.read - BLOCK as u64
                )));
            }
            let size = match pax_size.take() {
                Some(s) => s,
                None => size(&header[124..136])?,
            };
            let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
            let flag = header[156];
            match flag {
                b'L' | b'K' => {
                    let text = self.small(size, MAX_NAME)?;
                    self.skip = padded - size;
                    let text =
                        String::from_utf8_lossy(text.split(|b| *b == 0).next().unwrap_or_default())
                            .into_owned();
                    if flag == b'L' {
                        long_name = Some(text);
                    } else {
                        long_link = Some(text);
                    }
                    continue;
                }
                b'x' => {
                    let records = self.small(size, MAX_PAX)?;
                    self.skip = padded - size;
                    for (key, value) in pax(&records) {
                        match key.as_str() {
                            "path" => long_name = Some(value),
                            "linkpath" => long_link = Some(value),
                            "size" => {
                                pax_size = Some(value.parse().map_err(|_| {
                                    Problem::Invalid("a PAX size that is not a number".into())
                                })?)
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' => {
                    // Global PAX headers set defaults no image layer relies on.
                    self.skip = padded;
                    continue;
                }
                _ => {}
            }
            let path = long_name.take().unwrap_or_else(|| name(&header));
            let link = long_link.take().unwrap_or_else(|| text(&header[157..257]));
            let mode = octal(&header[100..108]).unwrap_or(0) as u32;
            let kind = match flag {
                b'0' | 0 | b'7' => {
                    let head = self.head(size)?;
                    self.skip = padded - head.1;
                    if path.ends_with('/') {
                        // Old archives mark directories by a trailing slash only.
                        Kind::Dir
                    } else {
                        Kind::File(head.0)
                    }
                }
                b'1' => {
                    self.skip = padded;
                    Kind::Hardlink(link)
                }
                b'2' => {
                    self.skip = padded;
                    Kind::Symlink(link)
                }
                b'5' => {
                    self.skip = padded;
                    Kind::Dir
                }
                _ => {
                    self.skip = padded;
                    Kind::Other
                }
            };
            return Ok(Some(Entry { path, mode, kind }));
        }
    }

    /// Skips what is left of the previous entry.
    fn skip_pending(&mut self) -> Result<(), Problem> {
        while self.skip > 0 {
            let n = self.skip.min(self.buffer.len() as u64) as usize;
            let mut chunk = std::mem::take(&mut self.buffer);
            let got = self.fill(&mut chunk[..n]);
            self.buffer = chunk;
            if !got? {
                self.done = true;
                return Ok(());
            }
            self.skip -= n as u64;
        }
        Ok(())
    }

    /// Fills `buf` completely; false at a clean end of input before any byte of it.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, Problem> {
        if self.read + buf.len() as u64 > self.limit {
            return Err(Problem::TooLarge);
        }
        let mut at = 0;
        while at < buf.len() {
            match self.reader.read(&mut buf[at..]) {
                Ok(0) if at == 0 => return Ok(false),
                Ok(0) => {
                    return Err(Problem::Invalid(
                        "the archive ends in the middle of an entry".into(),
                    ))
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Problem::Io(e)),
            }
        }
        self.read += buf.len() as u64;
        Ok(true)
    }

    /// The data of a small entry (a long name, PAX records), at most `max` bytes.
    fn small(&mut self, size: u64, max: u64) -> Result<Vec<u8>, Problem> {
        if size > max {
            return Err(Problem::Invalid(format!(
                "an extended header of {size} bytes (at most {max} accepted)"
            )));
        }
        let mut data = vec![0u8; size as usize];
        if !self.fill(&mut data)? && size > 0 {
            return Err(Problem::Invalid("the archive ends in a header".into()));
        }
        Ok(data)
    }

    /// Reads the first bytes of a file of `size` bytes and says what they are; returns how many
    /// bytes were read.
    fn head(&mut self, size: u64) -> Result<(Head, u64), Problem> {
        let first = (machine::HEAD_BYTES as u64).min(size) as usize;
        let mut bytes = vec![0u8; first];
        if !self.fill(&mut bytes)? && first > 0 {
            self.done = true;
            return Ok((Head::Other, 0));
        }
        let more = (machine::wanted(&bytes) as u64).min(size) as usize;
        if more > bytes.len() {
            let have = bytes.len();
            bytes.resize(more, 0);
            if !self.fill(&mut bytes[have..])? {
                self.done = true;
                return Ok((Head::Other, 0));
            }
        }
        Ok((machine::classify(&bytes), bytes.len() as u64))
    }
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces (unsigned,
/// or signed as some old writers did).
fn checksum_ok(header: &[u8; BLOCK]) -> bool {
    let Some(said) = octal(&header[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    said == unsigned || said as i64 == signed
}

/// An octal number field (NUL- or space-terminated).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The size field: octal, or GNU base-256 for large files (high bit of the first byte set).
fn size(field: &[u8]) -> Result<u64, Problem> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(*b)))
                .ok_or_else(|| Problem::Invalid("an entry size past 2^64".into()))?;
        }
        return Ok(n);
    }
    octal(field).ok_or_else(|| Problem::Invalid("an entry size that is not octal".into()))
}

/// A NUL-terminated text field.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The entry name, with the ustar `prefix` when the header is POSIX ustar.
fn name(header: &[u8; BLOCK]) -> String {
    let name = text(&header[..100]);
    if &header[257..263] == b"ustar\0" {
        let prefix = text(&header[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// PAX records, `"<length> <key>=<value>\n"` each.
fn pax(records: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::content::machine::tests::elf;
    use crate::content::machine::Elf;

    /// Builds archives with the `tar` crate: an independent writer of what we read.
    pub(crate) struct Builder(tar::Builder<Vec<u8>>);

    impl Builder {
        pub(crate) fn new() -> Self {
            Builder(tar::Builder::new(Vec::new()))
        }

        fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h
        }

        pub(crate) fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
            let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }

        pub(crate) fn dir(mut self, path: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
            self.0.append_data(&mut h, path, &[][..]).unwrap();
            self
        }

        pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Link, 0o755, 0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }

        pub(crate) fn finish(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn all(bytes: &[u8]) -> Result<Vec<Entry>, Problem> {
        let mut entries = Entries::new(bytes, u64::MAX);
        let mut out = Vec::new();
        while let Some(e) = entries.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn reads_files_links_and_directories_with_what_files_are() {
        let long = format!("usr/{}/bin/app", "deep/".repeat(40));
        let archive = Builder::new()
            .dir("usr/local/bin/")
            .file("usr/local/bin/app", 0o755, &elf(true, true, 183))
            .file("usr/local/bin/run.sh", 0o755, b"#!/bin/sh\nexec app\n")
            .symlink("bin", "usr/bin")
            .hardlink("usr/local/bin/app2", "usr/local/bin/app")
            .file(&long, 0o700, &elf(true, true, 62))
            .symlink("usr/lib/libx.so", &"../".repeat(60))
            .finish();
        let entries = all(&archive).unwrap();
        let arm64 = Kind::File(Head::Elf(Elf {
            bits64: true,
            little: true,
            machine: 183,
        }));
        assert_eq!(entries[0].kind, Kind::Dir);
        assert_eq!(entries[1].path, "usr/local/bin/app");
        assert_eq!(entries[1].mode, 0o755);
        assert_eq!(entries[1].kind, arm64);
        assert_eq!(entries[2].kind, Kind::File(Head::Script("/bin/sh".into())));
        assert_eq!(entries[3].kind, Kind::Symlink("usr/bin".into()));
        assert_eq!(entries[4].kind, Kind::Hardlink("usr/local/bin/app".into()));
        // GNU long names and long link names.
        assert_eq!(entries[5].path, long);
        assert_eq!(entries[6].kind, Kind::Symlink("../".repeat(60)));
        assert_eq!(entries.len(), 7);
    }

    #[test]
    fn reads_pax_paths_and_sizes() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("opt/{}/app", "x".repeat(200));
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        let data = elf(false, true, 40);
        h.set_size(data.len() as u64);
        // The tar crate writes a PAX `path` record for names ustar cannot hold.
        b.append_pax_extensions([("path", long.as_bytes())])
            .unwrap();
        b.append_data(&mut h, "short", &data[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let entries = all(&bytes).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, long);
        assert!(matches!(entries[0].kind, Kind::File(Head::Elf(_))));
    }

    #[test]
    fn big_files_are_skipped_not_kept_and_the_limit_holds() {
        let big = vec![7u8; 3 * 1024 * 1024];
        let archive = Builder::new()
            .file("big", 0o644, &big)
            .file("after", 0o755, &elf(true, true, 62))
            .finish();
        let entries = all(&archive).unwrap();
        assert_eq!(entries[1].path, "after");
        let mut limited = Entries::new(&archive[..], 1024 * 1024);
        limited.next_entry().unwrap();
        assert!(matches!(limited.next_entry(), Err(Problem::TooLarge)));
    }

    #[test]
    fn random_bytes_are_not_an_archive() {
        let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(matches!(all(&noise), Err(Problem::Invalid(_))));
        assert!(all(&[]).unwrap().is_empty());
    }
}
