//! What the allocator keeps (issue #21; figures in docs/benchmarks.md, "Memory under
//! load", the choice in docs/decisions.md, "Memory the allocator keeps").
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per
//! CPU, and keeps what is freed in them for later: after the benchmark workloads the
//! server had 15 arenas and 55 of its 79 MiB of RSS were arena memory, mostly free.
//! [`configure`] at start caps the arenas (and the blocking pool's threads), and
//! [`release_free`] (`malloc_trim`) hands free pages back to the system, called by the
//! server's memory timer (`server::memory_timer`).
//!
//! This is the one module with `unsafe` code: two FFI calls into glibc and one change
//! of the environment before any thread starts, each in a function of its own. On other
//! C libraries (musl) the glibc calls are left out.

#![allow(unsafe_code)]

/// Most malloc arenas: threads share them beyond this. glibc's default is eight per CPU.
pub const ARENAS: i32 = 2;

/// Most threads in smol's blocking pool, which otherwise grows to 500 under load. Store
/// reads, password hashing and plugin calls run there, and each thread keeps a zstd
/// decompression context with the dictionary (about 150 KiB) and a stack: 50 IMAP
/// clients kept 50 threads and 7.7 MB of such contexts. Two CPUs' worth of reads do not
/// need more.
pub const BLOCKING_THREADS: usize = 16;

/// Caps glibc's malloc arenas at [`ARENAS`] and the blocking pool at
/// [`BLOCKING_THREADS`] (unless `BLOCKING_MAX_THREADS` is set already). Call first in
/// `serve`, before the process has started any other thread: a thread keeps the arena it
/// was given, and the pool reads its limit once.
pub fn configure() {
    cap_blocking_pool();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; it takes two
        // integers, touches no memory of ours, and is thread-safe (it takes the main
        // arena's lock). M_ARENA_MAX is a documented parameter; a refused value (return
        // 0) leaves the default in place, which is only a lost optimisation.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        if ok == 0 {
            log::warn!("memory: glibc refused M_ARENA_MAX {ARENAS}");
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
