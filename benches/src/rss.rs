//! Process memory readings from `/proc/self/statm`.

/// Resident set size of this process in bytes, or 0 where `/proc` is unavailable.
pub fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

extern "C" {
    /// glibc: returns free heap memory to the operating system.
    fn malloc_trim(pad: usize) -> i32;
}

/// Resident set size after asking the allocator to give back freed memory, so that transient
/// buffers (request batches already dropped) do not count as live memory.
pub fn trimmed_rss_bytes() -> u64 {
    // SAFETY: malloc_trim only releases unused memory held by the allocator; it has no
    // preconditions.
    unsafe {
        malloc_trim(0);
    }
    rss_bytes()
}
