//! The zero-copy article's experiment: send a file over a loopback TCP connection to
//! a sink that verifies it, by read()+write() through a user buffer, by sendfile(2),
//! by splice(2) through a pipe, from an mmap(2)ed file, or with O_DIRECT reads.
//! Per method: the sender's system calls by kind (user/kernel mode switches: two per
//! call), its context switches and CPU time, throughput, and the article's
//! prediction beside the measurement.

mod sink;

use crate::names::named_enum;
use crate::rng::XorShift;
use crate::sys::{Call, Registry, Sys};
use anyhow::{Context, Result, bail};
use nix::sys::socket::{getsockopt, sockopt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
        /// O_DIRECT reads into an aligned buffer (no page cache), then write()
        Direct => "direct",
    }
}

#[derive(Clone, Debug)]
pub struct TransferConfig {
    pub methods: Vec<Method>,
    /// Send this file instead of a generated one.
    pub file: Option<PathBuf>,
    pub file_size: u64,
    pub chunk: usize,
    /// Drop the file's pages from the page cache before each method (fsync, then
    /// posix_fadvise DONTNEED: allowed without privileges for our own file).
    pub cold: bool,
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
    let (path, size, checksum, _temp) = match &cfg.file {
        Some(p) => {
            let size = std::fs::metadata(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .len();
            (p.clone(), size, sink::checksum_file(p)?, None)
        }
        None => {
            let path =
                std::env::temp_dir().join(format!("iobench-transfer-{}", std::process::id()));
            check_space(&path, cfg.file_size)?;
            let temp = TempFile(path.clone());
            let sum = generate(&path, cfg.file_size)?;
            (path, cfg.file_size, sum, Some(temp))
        }
    };
    cfg.methods
        .iter()
        .map(|&m| one(m, &path, size, checksum, cfg))
        .collect()
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
        f.write_all(&block[..n])?;
        sum.update(&block[..n]);
        left -= n as u64;
    }
    f.sync_all().context("fsync")?;
    Ok(sum.finish())
}

fn one(
    method: Method,
    path: &Path,
    size: u64,
    checksum: u64,
    cfg: &TransferConfig,
) -> Result<TransferResult> {
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    if method == Method::Direct {
        open.custom_flags(libc::O_DIRECT);
    }
    let file = open
        .open(path)
        .map_err(|e| match (method, e.raw_os_error()) {
            (Method::Direct, Some(libc::EINVAL)) => anyhow::anyhow!(
                "{}: this file system does not support O_DIRECT: put --file on a disk file system",
                path.display()
            ),
            _ => anyhow::Error::new(e).context(format!("opening {}", path.display())),
        })?;
    let cache = if cfg.cold {
        nix::fcntl::posix_fadvise(
            &file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .context("posix_fadvise(DONTNEED)")?;
        "cold (posix_fadvise DONTNEED)".to_string()
    } else if method == Method::Direct {
        "none (O_DIRECT)".to_string()
    } else {
        "warm (the file was just written or read)".to_string()
    };
    let (addr, sink) = sink::start()?;
    let sock = TcpStream::connect(addr).context("connecting to the sink")?;
    let sndbuf = getsockopt(&sock, sockopt::SndBuf).unwrap_or(0) as u64;
    let registry = Registry::new();
    let sys = Sys::new(registry.register("sender"));
    let before = thread_usage()?;
    let started = Instant::now();
    let sent = send(method, &sys, file.as_fd(), sock.as_fd(), size, cfg.chunk)?;
    drop(sock);
    let got = sink.join().expect("sink thread panicked")?;
    let seconds = started.elapsed().as_secs_f64();
    let after = thread_usage()?;
    if got.bytes != size || sent != size || got.checksum != checksum {
        bail!(
            "{}: the sink received {} of {size} bytes (checksum {})",
            method.name(),
            got.bytes,
            if got.checksum == checksum {
                "matches"
            } else {
                "differs"
            }
        );
    }
    let counts = sys.counters().snapshot();
    let calls: BTreeMap<String, u64> = Call::ALL
        .iter()
        .filter(|c| counts.call(**c) > 0)
        .map(|c| (c.name().to_string(), counts.call(*c)))
        .collect();
    let chunks = size.div_ceil(cfg.chunk as u64);
    let (predicted_calls, prediction) = match method {
        Method::ReadWrite | Method::Direct => (
            2 * chunks,
            format!("{chunks} reads + {chunks} writes, 2 CPU copies per chunk"),
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
            format!("mmap + {chunks} writes + munmap, 1 CPU copy per chunk"),
        ),
    };
    Ok(TransferResult {
        method,
        bytes: size,
        seconds,
        mb_per_s: size as f64 / seconds / 1e6,
        calls_total: counts.total_calls(),
        calls,
        predicted_calls,
        prediction,
        user_s: after.0 - before.0,
        sys_s: after.1 - before.1,
        voluntary_cs: after.2 - before.2,
        involuntary_cs: after.3 - before.3,
        cache,
    })
}

/// This thread's (user s, sys s, voluntary, involuntary) context switches.
fn thread_usage() -> Result<(f64, f64, u64, u64)> {
    use nix::sys::resource::{UsageWho, getrusage};
    let ru = getrusage(UsageWho::RUSAGE_THREAD).context("getrusage(RUSAGE_THREAD)")?;
    let s = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Ok((
        s(ru.user_time()),
        s(ru.system_time()),
        ru.voluntary_context_switches() as u64,
        ru.involuntary_context_switches() as u64,
    ))
}

/// The transfer loop of each method; returns the bytes sent.
fn send(
    method: Method,
    sys: &Sys,
    file: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
    size: u64,
    chunk: usize,
) -> Result<u64> {
    let mut sent = 0u64;
    match method {
        Method::ReadWrite | Method::Direct => {
            // O_DIRECT wants the buffer, the length and the offset aligned to the block.
            let align = 4096;
            if method == Method::Direct && !chunk.is_multiple_of(align) {
                bail!("--chunk must be a multiple of {align} bytes with O_DIRECT");
            }
            let mut space = vec![0u8; chunk + align];
            let start = space.as_ptr().align_offset(align);
            let buf = &mut space[start..start + chunk];
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
        Method::Sendfile => {
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
        }
        Method::Splice => {
            use nix::fcntl::{SpliceFFlags, splice};
            let (rx, tx) = nix::unistd::pipe().context("pipe")?;
            let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
            loop {
                let n = sys
                    .counted(Call::Splice, || {
                        Ok(splice(file, None, &tx, None, chunk, flags)?)
                    })
                    .context("splice file -> pipe")?;
                if n == 0 {
                    break;
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
        Method::Mmap => {
            use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
            if size == 0 {
                return Ok(0);
            }
            let len = std::num::NonZeroUsize::new(size as usize).expect("size > 0");
            let map = sys
                .counted(Call::Mmap, || {
                    // SAFETY: a private read-only mapping of our own file, which nobody
                    // changes while it is mapped; it is unmapped below.
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
                })
                .context("mmap")?;
            // SAFETY: the mapping is `size` readable bytes and lives until munmap below.
            let data =
                unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<u8>(), size as usize) };
            for piece in data.chunks(chunk) {
                sys.write_all(sock, piece).context("write to the sink")?;
                sent += piece.len() as u64;
            }
            sys.counted(Call::Munmap, || {
                // SAFETY: `data` is not used past this point.
                unsafe { munmap(map, size as usize)? };
                Ok(())
            })
            .context("munmap")?;
        }
    }
    Ok(sent)
}
