//! The provided-buffer ring: buffers lent to the kernel, which takes one for each
//! recv completion that carries bytes (an idle connection holds none), and given
//! back once those bytes are consumed.
//!
//! The ring is memory shared with the kernel: an array of `io_uring_buf` entries
//! whose first entry's last field is the ring's tail. We write entries past the
//! tail, then publish them with one release store of the tail; the kernel reads
//! entries up to it and keeps its head to itself.

use crate::sys::{Call, Sys};
use io_uring::IoUring;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// The buffer group the loop's recvs draw from.
pub const GROUP: u16 = 0;

/// Bytes all buffers of one loop take together; the count is a power of two
/// between 16 and 4096 (the kernel's largest is 32768).
const RING_BYTES: usize = 16 << 20;

/// `struct io_uring_buf`: where a buffer is, its length, its id. In the first
/// entry, the last 16 bits are the ring's tail (`struct io_uring_buf_ring`).
#[repr(C)]
#[derive(Default)]
struct Entry {
    addr: u64,
    len: u32,
    bid: u16,
    tail: AtomicU16,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16);

const PAGE: usize = 4096;
const PER_PAGE: usize = PAGE / std::mem::size_of::<Entry>();

/// Registration wants the ring page-aligned: a Vec of these is.
#[repr(C, align(4096))]
struct Page([Entry; PER_PAGE]);

pub struct Buffers {
    /// The ring the kernel reads.
    pages: Vec<Page>,
    /// The buffers, `size` bytes each; `base` is their address, as the kernel got it.
    memory: Box<[u8]>,
    base: u64,
    size: usize,
    count: usize,
    /// Our tail: entries before it are the kernel's once published.
    tail: u16,
}

impl Buffers {
    /// Buffers of `size` bytes, all in the ring (not yet published). Their memory is
    /// zeroed by the allocator's fresh pages: untouched, it takes no resident memory.
    pub fn new(size: usize) -> Buffers {
        let count = 1usize << (RING_BYTES / size).clamp(16, 4096).ilog2();
        let pages = (0..count.div_ceil(PER_PAGE))
            .map(|_| Page(std::array::from_fn(|_| Entry::default())))
            .collect();
        let mut memory = vec![0u8; count * size].into_boxed_slice();
        let base = memory.as_mut_ptr() as u64;
        let mut buffers = Buffers {
            pages,
            memory,
            base,
            size,
            count,
            tail: 0,
        };
        for bid in 0..count {
            buffers.give_back(bid as u16);
        }
        buffers
    }

    /// No buffers at all: what stands in for leaked ones (see `Ring::drop`).
    pub fn none() -> Buffers {
        Buffers {
            pages: Vec::new(),
            memory: Box::new([]),
            base: 0,
            size: 0,
            count: 0,
            tail: 0,
        }
    }

    /// Registers the ring as buffer group [`GROUP`] of `ring`.
    pub fn register(&self, sys: &Sys, ring: &IoUring) -> io::Result<()> {
        let addr = self.pages.as_ptr() as u64;
        let entries = self.count as u16;
        sys.counted(Call::IoUringRegister, || {
            // SAFETY: `pages` is page-aligned memory holding `count` entries, owned by
            // the same loop as `ring`. It stays where it is (a Vec's heap memory does
            // not move) until the loop is dropped, and the loop drops it only after
            // every operation that could draw from it has completed (`Ring::quiesce`),
            // or else leaks it; the ring itself is declared first and dropped first.
            unsafe {
                ring.submitter()
                    .register_buf_ring_with_flags(addr, entries, GROUP, 0)
            }
        })
    }

    /// The bytes a recv completion put in buffer `bid`.
    pub fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        &self.memory[bid as usize * self.size..][..len]
    }

    /// Puts buffer `bid` back at the tail; the kernel sees it once published.
    pub fn give_back(&mut self, bid: u16) {
        let i = self.tail as usize & (self.count - 1);
        let (addr, len) = (
            self.base + (bid as usize * self.size) as u64,
            self.size as u32,
        );
        let entry = &mut self.pages[i / PER_PAGE].0[i % PER_PAGE];
        entry.addr = addr;
        entry.len = len;
        entry.bid = bid;
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every buffer given back visible to the kernel: the release store orders
    /// the entries' writes before the tail that covers them. Once per loop turn,
    /// before the enter that may use them.
    pub fn publish(&self) {
        if let Some(first) = self.pages.first() {
            first.0[0].tail.store(self.tail, Ordering::Release);
        }
    }
}
