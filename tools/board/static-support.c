/* What a fully static maestro needs beyond Debian's static libraries (tools/package-client).
 *
 * 1. dladdr. glibc's static dladdr() knows no objects and fails; the Swift runtime then
 *    falls back to readlink("/proc/self/exe") to find "the runtime's path" at start-up and
 *    aborts ("Unable to obtain Swift runtime path") where /proc is absent: an empty root, a
 *    minimal initramfs, a sandbox. In a static executable every address belongs to the
 *    executable itself, so this dladdr answers with it: its name (argv[0]) and base address,
 *    without symbol names. The runtime only uses the path to look for optional files beside
 *    itself (swift-backtrace, a prespecialisation library), which a board does not have.
 *
 * 2. The command line. On Linux the Swift runtime reads CommandLine.arguments from
 *    /proc/self/cmdline, which an empty root does not have: the client would see no
 *    arguments at all. This constructor hands the runtime the argv that glibc passes to
 *    every ELF constructor, through the runtime's own override entry point.
 *
 * 3. GSSAPI stand-ins.
 * Debian's libzmq.a is built with GSSAPI (Kerberos) support, but Debian ships no static
 * libgssapi_krb5. Maestro uses CURVE or plaintext, never GSSAPI: these thirteen symbols only
 * satisfy the linker. Every call fails with GSS_S_FAILURE, so a peer that tries the GSSAPI
 * mechanism is refused in its handshake; nothing in Maestro ever reaches them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern char __executable_start;

__attribute__((swiftcall)) extern void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc);

__attribute__((constructor)) static void capture_command_line(int argc, char **argv, char **envp) {
    (void)envp;
    if (argv) _swift_stdlib_overrideUnsafeArgvArgc(argv, argc);
}

int dladdr(const void *address, Dl_info *info) {
    (void)address;
    info->dli_fname = program_invocation_name;
    info->dli_fbase = &__executable_start;
    info->dli_sname = NULL;
    info->dli_saddr = NULL;
    return 1;
}

typedef uint32_t OM_uint32;
typedef struct { OM_uint32 length; void *elements; } gss_OID_desc;

#define GSS_S_FAILURE (13u << 16)

static gss_OID_desc no_name_type = {0, NULL};
gss_OID_desc *GSS_C_NT_HOSTBASED_SERVICE = &no_name_type;
gss_OID_desc *GSS_C_NT_USER_NAME = &no_name_type;

static OM_uint32 refuse(OM_uint32 *minor) {
    if (minor) *minor = 0;
    return GSS_S_FAILURE;
}

#define STUB(name) \
    OM_uint32 name(OM_uint32 *minor, ...) { return refuse(minor); }

STUB(gss_accept_sec_context)
STUB(gss_acquire_cred)
STUB(gss_delete_sec_context)
STUB(gss_display_name)
STUB(gss_import_name)
STUB(gss_init_sec_context)
STUB(gss_release_buffer)
STUB(gss_release_cred)
STUB(gss_release_name)
STUB(gss_unwrap)
STUB(gss_wrap)
