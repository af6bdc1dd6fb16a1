//! What the reader's terminal is: its width in columns.

use std::os::fd::{AsRawFd, BorrowedFd};

/// The width of the terminal on `fd`, if it is one.
pub fn columns(fd: BorrowedFd) -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which points at a
    // winsize we own for the whole call; on a non-terminal it fails with ENOTTY.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(size.ws_col as usize)
}
