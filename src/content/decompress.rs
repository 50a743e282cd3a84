//! A layer's bytes as the tar archive they hold: gzip (every member), zstd (every frame,
//! skippable frames such as zstd:chunked's skipped) or uncompressed, told by the first bytes as
//! containerd does, whatever the media type says. Pure-Rust decoders (flate2 with miniz_oxide,
//! ruzstd), streaming: nothing is held beyond a decoder's window.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

const GZIP: [u8; 2] = [0x1f, 0x8b];
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The largest zstd window accepted (zstd's own levels 1–19 use at most 8 MiB): a hostile
/// frame cannot make a check allocate more.
const MAX_ZSTD_WINDOW: u64 = 64 * 1024 * 1024;

/// The archive in `reader`, decompressed as its first bytes say.
pub(crate) fn open<'a>(mut reader: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 4];
    let mut have = 0;
    while have < magic.len() {
        match reader.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let joined = Cursor::new(magic[..have].to_vec()).chain(reader);
    Ok(if magic[..have].starts_with(&GZIP) {
        Box::new(flate2::read::MultiGzDecoder::new(joined))
    } else if magic[..have] == ZSTD {
        Box::new(Zstd::new(BufReader::with_capacity(64 * 1024, joined)))
    } else {
        Box::new(joined)
    })
}

/// Every zstd frame of a stream, one after the other.
struct Zstd<R> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> Zstd<R> {
    fn new(source: R) -> Self {
        let mut decoder = FrameDecoder::new();
        decoder.set_max_window_size(MAX_ZSTD_WINDOW);
        Zstd {
            source,
            decoder,
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.decoder.init(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        io::copy(
                            &mut (&mut self.source).take(u64::from(length)),
                            &mut io::sink(),
                        )?;
                    }
                    Err(e) => return Err(zstd_error(&e)),
                }
                continue;
            }
            if self.decoder.can_collect() > 0 {
                return self.decoder.read(buf);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
                continue;
            }
            self.decoder
                .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                .map_err(|e| zstd_error(&e))?;
        }
    }
}

/// A zstd decoder's error in words: ruzstd's own text nests the debug form of its causes
/// (`BlockContentReadError(Error { kind: UnexpectedEof, … })`), so only its first clause is
/// kept, and a stream that ends inside a frame is called truncated, as gzip's is.
fn zstd_error(e: &(dyn std::error::Error + 'static)) -> io::Error {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::UnexpectedEof {
                return io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "zstd: the layer ends inside a frame (truncated)",
                );
            }
        }
        cause = c.source();
    }
    let text = e.to_string();
    let first = text.split([':', '(']).next().unwrap_or_default().trim();
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("zstd: not a valid stream ({})", first.to_lowercase()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn read_all(bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        open(Box::new(Cursor::new(bytes)))?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn data() -> Vec<u8> {
        (0..300_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn gzip_members_and_zstd_frames_are_read_through() {
        let data = data();
        let gzip = |part: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            gz.finish().unwrap()
        };
        let mut two = gzip(&data[..1000]);
        two.extend(gzip(&data[1000..]));
        assert_eq!(read_all(two).unwrap(), data);

        let zstd = |part: &[u8]| {
            ruzstd::encoding::compress_to_vec(part, ruzstd::encoding::CompressionLevel::Fastest)
        };
        let mut frames = zstd(&data[..5000]);
        // A skippable frame between them, as zstd:chunked writes its table of contents.
        frames.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        frames.extend(zstd(&data[5000..]));
        assert_eq!(read_all(frames).unwrap(), data);

        assert_eq!(read_all(data.clone()).unwrap(), data);
        assert_eq!(read_all(vec![0x1f]).unwrap(), vec![0x1f]);
    }

    #[test]
    fn broken_compression_is_an_error_not_garbage() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data()).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        assert!(read_all(bytes).is_err());
        let mut zstd = ZSTD.to_vec();
        zstd.extend([0xff; 16]);
        let garbage = read_all(zstd).unwrap_err().to_string();
        assert!(
            garbage.starts_with("zstd: not a valid stream ("),
            "{garbage}"
        );
        assert!(!garbage.contains("Error {"), "{garbage}");
        let mut truncated = ruzstd::encoding::compress_to_vec(
            &data()[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            read_all(truncated).unwrap_err().to_string(),
            "zstd: the layer ends inside a frame (truncated)"
        );
    }
}
