//! What the allocator keeps (issue #21; figures in docs/benchmarks.md, "Memory under
//! load", the choice in docs/decisions.md, "Memory the allocator keeps").
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per
//! CPU, and keeps what is freed in them for later: after the benchmark workloads the
//! server had 15 arenas and 55 of its 79 MiB of RSS were arena memory, mostly free.
//! [`configure`] at start caps the arenas (and the blocking pool's threads) and fixes
//! the size from which a block gets pages of its own ([`MMAP_THRESHOLD`]) and how much
//! free memory a heap keeps at its top ([`TRIM_THRESHOLD`]), and
//! [`release_free`] (`malloc_trim`) hands free pages back to the system, called by the
//! server's memory timer (`server::memory_timer`).
//!
//! This is the one module with `unsafe` code: two FFI calls into glibc and one change
//! of the environment before any thread starts, each in a function of its own. On other
//! C libraries (musl) the glibc calls are left out.

#![allow(unsafe_code)]

/// Most malloc arenas: threads share them beyond this. glibc's default is eight per CPU.
pub const ARENAS: i32 = 2;

/// Allocations of this many bytes or more get pages of their own (mmap), given back
/// when freed. glibc starts at 128 KiB but raises the bar to the size of each such block
/// freed, up to 32 MiB: after the first password check (argon2's 19 MiB), every later
/// block under that size came from the arenas, where what a burst freed stayed until the
/// next trim (up to 20 MiB more at the end of the benchmark sequence, docs/benchmarks.md
/// "Large blocks of their own"). Setting it fixes the bar. The large blocks of a busy
/// server (zstd's work areas and output, decompressed packs, argon2's memory, big
/// messages) then cost fresh pages each: the price of a server that is back to its
/// working size when a burst ends rather than a trim later (docs/decisions.md, "A fixed
/// mmap threshold"). An operator who prefers otherwise sets `MALLOC_MMAP_THRESHOLD_`
/// (glibc's own variable), which is then left alone.
pub const MMAP_THRESHOLD: i32 = 512 * 1024;

/// How much free memory at the top of a heap glibc keeps rather than give back at once.
/// Setting [`MMAP_THRESHOLD`] also stops glibc adjusting this one, which then stays at
/// 128 KiB: a heap's top was given back and faulted in again all the time (the IMAP mix:
/// 270,000 page faults in 10 s against 12,000-14,000 at 2 or 4 MiB, and 8% fewer
/// commands a second). The memory timer's `malloc_trim` gives back what stays,
/// whatever this says.
pub const TRIM_THRESHOLD: i32 = 2 << 20;

/// Most threads in smol's blocking pool, which otherwise grows to 500 under load. Store
/// reads, password hashing and plugin calls run there, and each thread keeps a zstd
/// decompression context with the dictionary (about 150 KiB) and a stack: 50 IMAP
/// clients kept 50 threads and 7.7 MB of such contexts. Two CPUs' worth of reads do not
/// need more.
pub const BLOCKING_THREADS: usize = 16;

/// Caps glibc's malloc arenas at [`ARENAS`], fixes its mmap and trim thresholds at
/// [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`], and caps the blocking pool at
/// [`BLOCKING_THREADS`] (unless `BLOCKING_MAX_THREADS` is set already). Call first in
/// `serve`, before the process has started any other thread: a thread keeps the arena it
/// was given, and the pool reads its limit once.
pub fn configure() {
    cap_blocking_pool();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut settings = vec![(libc::M_ARENA_MAX, ARENAS, "M_ARENA_MAX")];
        // An operator's own thresholds (glibc reads them from the environment) are kept.
        for (param, value, name, env) in [
            (
                libc::M_MMAP_THRESHOLD,
                MMAP_THRESHOLD,
                "M_MMAP_THRESHOLD",
                "MALLOC_MMAP_THRESHOLD_",
            ),
            (
                libc::M_TRIM_THRESHOLD,
                TRIM_THRESHOLD,
                "M_TRIM_THRESHOLD",
                "MALLOC_TRIM_THRESHOLD_",
            ),
        ] {
            if std::env::var_os(env).is_none() {
                settings.push((param, value, name));
            }
        }
        for (param, value, name) in settings {
            // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; it takes
            // two integers, touches no memory of ours, and is thread-safe (it takes the
            // main arena's lock). Both are documented parameters; a refused value (return
            // 0) leaves the default in place, which is only a lost optimisation.
            if unsafe { libc::mallopt(param, value) } == 0 {
                log::warn!("memory: glibc refused {name} {value}");
            }
        }
    }
}

/// Sets `BLOCKING_MAX_THREADS`, which the `blocking` crate reads when it first runs a
/// job; an operator's own value is kept.
fn cap_blocking_pool() {
    if std::env::var_os("BLOCKING_MAX_THREADS").is_none() {
        // SAFETY: changing the environment is unsound only while another thread may
        // read or change it. `configure` is called first in `serve`, on the main thread,
        // before the server starts any thread (store writer, executors, signals, plugin
        // engine), and nothing before it in the process starts threads.
        unsafe { std::env::set_var("BLOCKING_MAX_THREADS", BLOCKING_THREADS.to_string()) };
    }
}

/// Gives the free memory glibc's malloc keeps in its arenas back to the system
/// (`malloc_trim(0)`: every whole free page, in every arena, not only at the top of a
/// heap). Returns whether any memory was released. Costs a walk over each arena's free
/// lists under its lock; meant for quiet moments.
pub fn release_free() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a padding size and touches only the allocator's own
        // state, under the arenas' locks; it is safe to call from any thread at any time
        // (glibc documents it as MT-Safe).
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The process's resident memory (`VmRSS` of /proc/self/status), where the system tells.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Asks the kernel to reclaim the resident pages of the program's own file: its code and
/// read-only data, clean pages that come back from the file when next used. RSS counts
/// every page of code run since start (14 MiB of the binary after the benchmark
/// workloads, docs/benchmarks.md "Memory under load"), and a quiet server needs none of
/// them until the next connection, which reads back what it runs. `MADV_PAGEOUT`
/// (Linux 5.4) only advises: a page another process maps stays, and on an older kernel
/// nothing happens. Returns the bytes of the mappings advised.
pub fn release_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let (Ok(exe), Ok(maps)) = (
            std::env::current_exe(),
            std::fs::read_to_string("/proc/self/maps"),
        ) else {
            return 0;
        };
        let mut advised = 0;
        for (start, end) in own_file_mappings(&maps, &exe.to_string_lossy()) {
            let Some(len) = end.checked_sub(start) else {
                continue;
            };
            // SAFETY: the range is one whole mapping of this process, read from
            // /proc/self/maps; MADV_PAGEOUT changes no contents (a reclaimed file page is
            // read back from the file, an anonymous copy goes to swap or stays), so no
            // reference into the range sees different bytes. The mapping cannot be
            // unmapped meanwhile: the program's own file stays mapped for its lifetime.
            let ok = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
            if ok == 0 {
                advised += len;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The read-only mappings of `exe` in a `/proc/self/maps` text, as (start, end)
/// addresses: code and constants, never the writable data.
#[cfg(target_os = "linux")]
fn own_file_mappings<'a>(maps: &'a str, exe: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    maps.lines().filter_map(move |line| {
        // start-end perms offset dev inode path (padded; it may contain spaces)
        let mut fields = line.splitn(6, ' ');
        let range = fields.next()?;
        let perms = fields.next()?;
        let path = fields.nth(3)?.trim_start();
        if path != exe || perms.contains('w') {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        ))
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_the_read_only_mappings_of_the_program_are_picked() {
        let maps = "\
55a075c15000-55a076275000 r--p 00000000 fe:00 5423603    /opt/nb/nestbox
55a076275000-55a077851000 r-xp 0065f000 fe:00 5423603    /opt/nb/nestbox
55a0778f1000-55a077900000 rw-p 01cda000 fe:00 5423603    /opt/nb/nestbox
55a09c193000-55a09d367000 rw-p 00000000 00:00 0          [heap]
7f743aea3000-7f743aff9000 r-xp 00026000 fe:00 326279     /usr/lib/libc.so.6
7f7434000000-7f743638f000 rw-p 00000000 00:00 0
";
        let got: Vec<_> = own_file_mappings(maps, "/opt/nb/nestbox").collect();
        assert_eq!(
            got,
            vec![
                (0x55a0_75c1_5000, 0x55a0_7627_5000),
                (0x55a0_7627_5000, 0x55a0_7785_1000)
            ]
        );
        assert_eq!(own_file_mappings(maps, "/opt/nb").count(), 0);
        let spaced = "7f7434000000-7f743638f000 r-xp 00000000 fe:00 5     /opt/my mail/nestbox\n";
        assert_eq!(own_file_mappings(spaced, "/opt/my mail/nestbox").count(), 1);
    }

    #[test]
    fn resident_memory_is_read() {
        let rss = resident_bytes().unwrap();
        assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
    }

    #[test]
    fn releasing_the_code_keeps_the_program_running() {
        // The test binary's own mappings are found and advised; the test goes on running
        // from pages read back.
        assert!(release_code() > 0);
    }
}
