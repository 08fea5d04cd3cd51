// Small wrappers for Linux calls Swift cannot import directly (variadic prctl).
#pragma once

/// Asks the kernel to send `signal` to this process when its parent dies (Linux
/// PR_SET_PDEATHSIG). Returns 0 on success, -1 where unsupported.
int maestro_set_parent_death_signal(int signal);

/// Keeps allocations up to 256 MiB on the heap, where freed blocks are reused, instead of
/// fresh mmap'd pages that fault on every first touch (glibc M_MMAP_THRESHOLD); no-op elsewhere.
void maestro_keep_large_allocations_on_heap(void);

/// Maps allocations of `threshold` bytes and more on their own and returns them to the system
/// when freed, and trims the heap above `threshold` too (glibc M_MMAP_THRESHOLD and
/// M_TRIM_THRESHOLD); no-op elsewhere. For a coordinator, whose large blocks are frames.
void maestro_return_large_allocations(unsigned long threshold);

/// Names the calling thread (its first 15 bytes: what `top -H` and `ps -L` show); no-op
/// where unsupported.
void maestro_set_thread_name(const char *name);
