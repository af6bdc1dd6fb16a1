//! A dense array of per-descriptor entries with O(1) lookup by descriptor: the
//! interest table that select and poll keep in user memory (epoll keeps it in the
//! kernel). Removal swaps the last entry into the hole so the array stays dense.

use std::io;
use std::os::fd::RawFd;

pub struct Dense<T> {
    entries: Vec<T>,
    fds: Vec<RawFd>,
    /// position + 1 of each descriptor's entry, 0 when absent
    slot: Vec<u32>,
}

impl<T> Dense<T> {
    pub fn new() -> Self {
        Dense {
            entries: Vec::new(),
            fds: Vec::new(),
            slot: Vec::new(),
        }
    }

    pub fn insert(&mut self, fd: RawFd, entry: T) -> io::Result<()> {
        let i = fd as usize;
        if i >= self.slot.len() {
            self.slot.resize(i + 1, 0);
        }
        if self.slot[i] != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("descriptor {fd} is already registered"),
            ));
        }
        self.entries.push(entry);
        self.fds.push(fd);
        self.slot[i] = self.entries.len() as u32;
        Ok(())
    }

    pub fn get_mut(&mut self, fd: RawFd) -> io::Result<&mut T> {
        match self.slot.get(fd as usize) {
            Some(&pos) if pos != 0 => Ok(&mut self.entries[pos as usize - 1]),
            _ => Err(not_registered(fd)),
        }
    }

    pub fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let pos = match self.slot.get(fd as usize) {
            Some(&pos) if pos != 0 => pos as usize - 1,
            _ => return Err(not_registered(fd)),
        };
        self.entries.swap_remove(pos);
        self.fds.swap_remove(pos);
        self.slot[fd as usize] = 0;
        if let Some(&moved) = self.fds.get(pos) {
            self.slot[moved as usize] = pos as u32 + 1;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries in array order, as handed to poll(2).
    pub fn entries_mut(&mut self) -> &mut [T] {
        &mut self.entries
    }

    pub fn iter(&self) -> impl Iterator<Item = (RawFd, &T)> {
        self.fds.iter().copied().zip(self.entries.iter())
    }
}

fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("descriptor {fd} is not registered"),
    )
}
