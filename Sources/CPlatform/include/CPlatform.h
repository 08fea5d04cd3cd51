// Small wrappers for Linux calls Swift cannot import directly (variadic prctl).
#pragma once

/// Asks the kernel to send `signal` to this process when its parent dies (Linux
/// PR_SET_PDEATHSIG). Returns 0 on success, -1 where unsupported.
int maestro_set_parent_death_signal(int signal);
