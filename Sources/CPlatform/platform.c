#include "CPlatform.h"

#include <string.h>

#if defined(__linux__)
#include <sys/prctl.h>

int maestro_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }
#else
int maestro_set_parent_death_signal(int signal) {
    (void)signal;
    return -1;
}
#endif

#if defined(__GLIBC__)
#include <malloc.h>

void maestro_keep_large_allocations_on_heap(void) {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void maestro_return_large_allocations(unsigned long threshold) {
    mallopt(M_MMAP_THRESHOLD, (int)threshold);
    mallopt(M_TRIM_THRESHOLD, (int)threshold);
}
#else
void maestro_keep_large_allocations_on_heap(void) {}
void maestro_return_large_allocations(unsigned long threshold) { (void)threshold; }
#endif

#if defined(__linux__)
void maestro_set_thread_name(const char *name) {
    char shown[16];
    strncpy(shown, name, sizeof shown - 1);
    shown[sizeof shown - 1] = 0;
    prctl(PR_SET_NAME, shown, 0, 0, 0);
}
#else
void maestro_set_thread_name(const char *name) { (void)name; }
#endif
