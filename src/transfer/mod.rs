//! The zero-copy article's experiment: send a file over a loopback TCP connection to
//! a sink that verifies it, by read()+write() through a user buffer, by sendfile(2),
//! by splice(2) through a pipe, from an mmap(2)ed file, or with O_DIRECT reads.
//! Per method: the sender's system calls by kind (user/kernel mode switches: two per
//! call), its context switches and CPU time, throughput, and the article's
//! prediction beside the measurement.
//!
//! Layer: above `metrics` and `sys` (beside `server` and `load`); measures, never
//! formats.

mod sink;

use crate::names::named_enum;
use crate::rng::XorShift;
use crate::sys::{Call, Registry, Sys};
use crate::words::plural;
use anyhow::{Context, Result, bail};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::socket::{getsockopt, sockopt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::Instant;

named_enum! {
    /// How a file is sent.
    pub enum Method {
        /// read() into a user buffer, write() it to the socket: two calls, two CPU copies per chunk
        ReadWrite => "read-write",
        /// sendfile(): page cache to socket inside the kernel
        Sendfile => "sendfile",
        /// splice() file -> pipe -> socket
        Splice => "splice",
        /// mmap() the file, write() from the mapping
        Mmap => "mmap",
        /// O_DIRECT reads into an aligned buffer (no page cache, the device's DMA fills it), then write(): one CPU copy per chunk
        Direct => "direct",
    }
}

#[derive(Clone, Debug)]
pub struct TransferConfig {
    pub methods: Vec<Method>,
    /// Send this file instead of a generated one.
    pub file: Option<PathBuf>,
    pub file_size: usize,
    pub chunk: usize,
    /// Drop the file's pages from the page cache before each method (posix_fadvise
    /// DONTNEED, which needs no privileges and drops clean pages only: a generated
    /// file is fsynced when written).
    pub cold: bool,
}

impl TransferConfig {
    /// The article's example: a 320 MiB file in 32 KiB chunks, warm; no method yet
    /// (each caller names its own).
    pub const DEFAULT: TransferConfig = TransferConfig {
        methods: Vec::new(),
        file: None,
        file_size: 320 << 20,
        chunk: 32 << 10,
        cold: false,
    };
}

/// What one method measured.
#[derive(Clone, Debug, Serialize)]
pub struct TransferResult {
    pub method: Method,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    /// The transfer loop's system calls, by kind (our count).
    pub calls: BTreeMap<String, u64>,
    pub calls_total: u64,
    /// What the article predicts for the same file and chunk.
    pub predicted_calls: u64,
    pub prediction: String,
    pub user_s: f64,
    pub sys_s: f64,
    pub voluntary_cs: u64,
    pub involuntary_cs: u64,
    /// "warm" or "cold (...)": whether the file was in the page cache.
    pub cache: String,
}

/// Reported figures of one method's transfer (experiments summarise these).
pub const FIGURES: &[crate::metrics::Figure<TransferResult>] = &[
    crate::metrics::Figure {
        key: "mb_per_s",
        label: "throughput (MB/s)",
        decimals: 0,
        value: |r| Some(r.mb_per_s),
    },
    crate::metrics::Figure {
        key: "syscalls",
        label: "system calls (measured)",
        decimals: 0,
        value: |r| Some(r.calls_total as f64),
    },
    crate::metrics::Figure {
        key: "predicted_syscalls",
        label: "system calls (the article predicts)",
        decimals: 0,
        value: |r| Some(r.predicted_calls as f64),
    },
    crate::metrics::Figure {
        key: "mode_switches",
        label: "user/kernel mode switches (2 per call)",
        decimals: 0,
        value: |r| Some(2.0 * r.calls_total as f64),
    },
    crate::metrics::Figure {
        key: "cpu_ms",
        label: "sender CPU user+sys (ms)",
        decimals: 1,
        value: |r| Some((r.user_s + r.sys_s) * 1e3),
    },
    crate::metrics::Figure {
        key: "sys_ms",
        label: "  of which in the kernel (ms)",
        decimals: 1,
        value: |r| Some(r.sys_s * 1e3),
    },
    crate::metrics::Figure {
        key: "voluntary_cs",
        label: "voluntary context switches",
        decimals: 0,
        value: |r| Some(r.voluntary_cs as f64),
    },
    crate::metrics::Figure {
        key: "involuntary_cs",
        label: "involuntary context switches",
        decimals: 0,
        value: |r| Some(r.involuntary_cs as f64),
    },
];

/// O_DIRECT wants the buffer, the length and the offset aligned to the file
/// system's block; 4096 is a multiple of the usual ones.
const DIRECT_ALIGN: usize = 4096;

/// The file every method sends, and what the sink must receive.
struct Source {
    path: PathBuf,
    size: u64,
    checksum: u64,
    /// A generated file, removed when the source is dropped (None for --file).
    _generated: Option<TempFile>,
}

/// A generated file, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(cfg: &TransferConfig) -> Result<Vec<TransferResult>> {
    if cfg.chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if cfg.methods.contains(&Method::Direct) && !cfg.chunk.is_multiple_of(DIRECT_ALIGN) {
        bail!("--chunk must be a multiple of {DIRECT_ALIGN} bytes with O_DIRECT");
    }
    let source = match &cfg.file {
        Some(path) => Source::existing(path)?,
        None => Source::generated(cfg.file_size as u64)?,
    };
    cfg.methods.iter().map(|&m| one(m, &source, cfg)).collect()
}

impl Source {
    /// The user's --file, as it is now.
    fn existing(path: &Path) -> Result<Source> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        Ok(Source {
            path: path.to_path_buf(),
            size,
            checksum: sink::checksum_file(path)?,
            _generated: None,
        })
    }

    /// A file of `size` pseudo-random bytes in the temporary directory.
    fn generated(size: u64) -> Result<Source> {
        let path = std::env::temp_dir().join(format!("iobench-transfer-{}", std::process::id()));
        check_space(&path, size)?;
        let temp = TempFile(path.clone());
        let checksum = generate(&path, size)?;
        Ok(Source {
            path,
            size,
            checksum,
            _generated: Some(temp),
        })
    }
}

fn check_space(path: &Path, size: u64) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let st = nix::sys::statvfs::statvfs(dir).context("statvfs")?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if size + (64 << 20) > free {
        bail!(
            "a {} MB file does not fit in {} ({} MB free): use a smaller --file-size",
            size >> 20,
            dir.display(),
            free >> 20
        );
    }
    Ok(())
}

/// Writes `size` pseudo-random bytes; returns their checksum.
fn generate(path: &Path, size: u64) -> Result<u64> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut sum = sink::Checksum::default();
    let mut block = vec![0u8; 1 << 20];
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut left = size;
    while left > 0 {
        block.fill_with(|| rng.next_byte());
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        sum.update(&block[..n]);
        left -= n as u64;
    }
    f.sync_all().context("fsync")?;
    Ok(sum.finish())
}

/// Sends the file once by `method` to a fresh sink, and measures the sender.
fn one(method: Method, source: &Source, cfg: &TransferConfig) -> Result<TransferResult> {
    let file = open(method, &source.path)?;
    let cache = settle_cache(method, &file, cfg)?;
    let (addr, sink) = sink::start()?;
    let sock = TcpStream::connect(addr).context("connecting to the sink")?;
    let sndbuf = getsockopt(&sock, sockopt::SndBuf).unwrap_or(0) as u64;
    let sys = Sys::new(Registry::new().register("sender"));
    let before = Usage::of_this_thread()?;
    let started = Instant::now();
    let sent = send(
        method,
        &sys,
        file.as_fd(),
        sock.as_fd(),
        source.size,
        cfg.chunk,
    )?;
    drop(sock);
    let got = sink.join().expect("sink thread panicked")?;
    let seconds = started.elapsed().as_secs_f64();
    let used = Usage::of_this_thread()?.since(&before);
    check_delivery(method, source, sent, &got)?;
    let counts = sys.counters().snapshot();
    let (predicted_calls, prediction) = predict(method, source.size, cfg.chunk, sndbuf);
    Ok(TransferResult {
        method,
        bytes: source.size,
        seconds,
        mb_per_s: source.size as f64 / seconds / 1e6,
        calls: Call::ALL
            .iter()
            .filter(|&&c| counts.call(c) > 0)
            .map(|&c| (c.name().to_string(), counts.call(c)))
            .collect(),
        calls_total: counts.total_calls(),
        predicted_calls,
        prediction,
        user_s: used.user_s,
        sys_s: used.sys_s,
        voluntary_cs: used.voluntary,
        involuntary_cs: used.involuntary,
        cache,
    })
}

/// Opens the file as `method` reads it (O_DIRECT for direct reads).
fn open(method: Method, path: &Path) -> Result<File> {
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    if method == Method::Direct {
        open.custom_flags(libc::O_DIRECT);
    }
    open.open(path)
        .map_err(|e| match (method, e.raw_os_error()) {
            (Method::Direct, Some(libc::EINVAL)) => anyhow::anyhow!(
                "{}: this file system does not support O_DIRECT: put --file on a disk file system",
                path.display()
            ),
            _ => anyhow::Error::new(e).context(format!("opening {}", path.display())),
        })
}

/// Empties the page cache of the file when asked to; says how the file will be read.
fn settle_cache(method: Method, file: &File, cfg: &TransferConfig) -> Result<String> {
    if cfg.cold {
        nix::fcntl::posix_fadvise(
            file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .context("posix_fadvise(DONTNEED)")?;
        return Ok("cold (posix_fadvise DONTNEED)".to_string());
    }
    Ok(match method {
        Method::Direct => "none (O_DIRECT)",
        _ => "warm (the file was just written or read)",
    }
    .to_string())
}

/// Fails unless the sink got every byte of the file, intact.
fn check_delivery(method: Method, source: &Source, sent: u64, got: &sink::Received) -> Result<()> {
    if got.bytes == source.size && sent == source.size && got.checksum == source.checksum {
        return Ok(());
    }
    bail!(
        "{}: the sink received {} of {} bytes (checksum {})",
        method.name(),
        got.bytes,
        source.size,
        if got.checksum == source.checksum {
            "matches"
        } else {
            "differs"
        }
    )
}

/// What the article predicts for `method`: system calls, and how they come about.
fn predict(method: Method, size: u64, chunk: usize, sndbuf: u64) -> (u64, String) {
    let chunks = size.div_ceil(chunk as u64);
    match method {
        Method::ReadWrite => (
            2 * chunks,
            format!(
                "{} + {}, 2 CPU copies per chunk",
                plural(chunks, "read"),
                plural(chunks, "write")
            ),
        ),
        // O_DIRECT reads bypass the page cache: the device's DMA fills the user
        // buffer, and only the write copies (user buffer to socket).
        Method::Direct => (
            2 * chunks,
            format!(
                "{} (DMA into our buffer) + {}, 1 CPU copy per chunk",
                plural(chunks, "read"),
                plural(chunks, "write")
            ),
        ),
        Method::Sendfile => {
            let per = size.div_ceil(sndbuf.max(1));
            (
                per,
                format!("one call per socket buffer ({} KiB): {per}", sndbuf / 1024),
            )
        }
        Method::Splice => (
            2 * chunks,
            format!("{chunks} x (file->pipe + pipe->socket), no CPU copy"),
        ),
        Method::Mmap => (
            chunks + 2,
            format!(
                "mmap + {} + munmap, 1 CPU copy per chunk",
                plural(chunks, "write")
            ),
        ),
    }
}

/// This thread's CPU time and context switches (getrusage RUSAGE_THREAD).
struct Usage {
    user_s: f64,
    sys_s: f64,
    voluntary: u64,
    involuntary: u64,
}

impl Usage {
    fn of_this_thread() -> Result<Usage> {
        use nix::sys::resource::{UsageWho, getrusage};
        let ru = getrusage(UsageWho::RUSAGE_THREAD).context("getrusage(RUSAGE_THREAD)")?;
        let s = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        Ok(Usage {
            user_s: s(ru.user_time()),
            sys_s: s(ru.system_time()),
            voluntary: ru.voluntary_context_switches() as u64,
            involuntary: ru.involuntary_context_switches() as u64,
        })
    }

    /// What was used between `before` and this reading.
    fn since(&self, before: &Usage) -> Usage {
        Usage {
            user_s: self.user_s - before.user_s,
            sys_s: self.sys_s - before.sys_s,
            voluntary: self.voluntary - before.voluntary,
            involuntary: self.involuntary - before.involuntary,
        }
    }
}

/// The transfer loop of `method`; returns the bytes sent.
fn send(
    method: Method,
    sys: &Sys,
    file: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
    size: u64,
    chunk: usize,
) -> Result<u64> {
    match method {
        Method::ReadWrite | Method::Direct => send_read_write(sys, file, sock, chunk),
        Method::Sendfile => send_sendfile(sys, file, sock, size),
        Method::Splice => send_splice(sys, file, sock, chunk),
        Method::Mmap => send_mmap(sys, file, sock, size, chunk),
    }
}

/// read() a chunk into a user buffer, write() it to the socket. The buffer is
/// aligned for O_DIRECT whichever way the file was opened.
fn send_read_write(
    sys: &Sys,
    file: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
    chunk: usize,
) -> Result<u64> {
    let mut space = vec![0u8; chunk + DIRECT_ALIGN];
    let start = space.as_ptr().align_offset(DIRECT_ALIGN);
    let buf = &mut space[start..start + chunk];
    let mut sent = 0u64;
    loop {
        let n = sys.read(file, buf).context("read")?;
        if n == 0 {
            return Ok(sent);
        }
        sys.write_all(sock, &buf[..n])
            .context("write to the sink")?;
        sent += n as u64;
    }
}

/// sendfile(): page cache to socket inside the kernel, as much as the socket takes.
fn send_sendfile(sys: &Sys, file: BorrowedFd<'_>, sock: BorrowedFd<'_>, size: u64) -> Result<u64> {
    let mut sent = 0u64;
    while sent < size {
        let n = sys
            .counted(Call::Sendfile, || {
                Ok(nix::sys::sendfile::sendfile(
                    sock,
                    file,
                    None,
                    (size - sent) as usize,
                )?)
            })
            .context("sendfile")?;
        if n == 0 {
            break;
        }
        sent += n as u64;
    }
    Ok(sent)
}

/// splice() a chunk from the file into a pipe, then from the pipe to the socket.
fn send_splice(sys: &Sys, file: BorrowedFd<'_>, sock: BorrowedFd<'_>, chunk: usize) -> Result<u64> {
    use nix::fcntl::{SpliceFFlags, splice};
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    let mut sent = 0u64;
    loop {
        let n = sys
            .counted(Call::Splice, || {
                Ok(splice(file, None, &tx, None, chunk, flags)?)
            })
            .context("splice file -> pipe")?;
        if n == 0 {
            return Ok(sent);
        }
        let mut moved = 0;
        while moved < n {
            moved += sys
                .counted(Call::Splice, || {
                    Ok(splice(&rx, None, sock, None, n - moved, flags)?)
                })
                .context("splice pipe -> socket")?;
        }
        sent += n as u64;
    }
}

/// mmap() the whole file, write() the mapping to the socket a chunk at a time.
fn send_mmap(
    sys: &Sys,
    file: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
    size: u64,
    chunk: usize,
) -> Result<u64> {
    let Some(len) = NonZeroUsize::new(size as usize) else {
        return Ok(0);
    };
    let map = Mapping::new(sys, file, len).context("mmap")?;
    let mut sent = 0u64;
    for piece in map.bytes().chunks(chunk) {
        sys.write_all(sock, piece).context("write to the sink")?;
        sent += piece.len() as u64;
    }
    Ok(sent)
}

/// A private read-only mapping of a file, unmapped (counted) when dropped, so also
/// when a write fails half-way.
struct Mapping<'a> {
    sys: &'a Sys,
    addr: NonNull<c_void>,
    len: NonZeroUsize,
}

impl<'a> Mapping<'a> {
    fn new(sys: &'a Sys, file: BorrowedFd<'_>, len: NonZeroUsize) -> io::Result<Mapping<'a>> {
        let addr = sys.counted(Call::Mmap, || {
            // SAFETY: no fixed address, so the kernel picks free space and nothing of
            // ours is replaced; what a file mapping risks is its use, in `bytes`.
            Ok(unsafe {
                mmap(
                    None,
                    len,
                    ProtFlags::PROT_READ,
                    MapFlags::MAP_PRIVATE,
                    file,
                    0,
                )?
            })
        })?;
        Ok(Mapping { sys, addr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes, mapped until `self` is dropped; the slice
        // borrows `self`. What we cannot promise is that the file stays as it was:
        // a --file is the user's, and another process may write or truncate it
        // while it is mapped. Written bytes change under the slice, but only the
        // kernel reads them (write(2)), never our code, and the sink's checksum
        // then fails the run; a truncation makes access past the new end raise
        // SIGBUS, which kills iobench. Linux has no lock that stops a truncation,
        // so we accept that for the method whose subject is mapping a file (the
        // generated file has a per-process name that nothing else writes).
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr().cast::<u8>(), self.len.get()) }
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        // munmap of a whole mapping we made fails only for a bad address or length:
        // there is nothing to report.
        let _ = self.sys.counted(Call::Munmap, || {
            // SAFETY: the mapping is ours, and no slice from `bytes` outlives `self`.
            unsafe { munmap(self.addr, self.len.get())? };
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener};

    /// A write that fails half-way through the mapping still unmaps it.
    #[test]
    fn a_send_that_fails_half_way_still_unmaps_the_file() {
        let path = std::env::temp_dir().join(format!("iobench-mmap-test-{}", std::process::id()));
        let _temp = TempFile(path.clone());
        std::fs::write(&path, vec![7u8; 64 * 1024]).unwrap();
        let file = File::open(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // Our side can no longer write: the first write says EPIPE.
        sock.shutdown(Shutdown::Write).unwrap();
        let sys = Sys::new(Registry::new().register("test"));
        let err = send_mmap(&sys, file.as_fd(), sock.as_fd(), 64 * 1024, 4096).unwrap_err();
        assert!(format!("{err:#}").contains("write to the sink"), "{err:#}");
        let counts = sys.counters().snapshot();
        assert_eq!(counts.call(Call::Mmap), 1);
        assert_eq!(counts.call(Call::Munmap), 1);
    }
}
