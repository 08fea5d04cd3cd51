import Foundation
import Tensors

/// Picks the OpenBLAS kernel before any BLAS call (docs/spec.md#platform-notes).
///
/// Debian's OpenBLAS 0.3.21 picks the generic `Prescott` kernel on some AVX-512 CPUs (~5×
/// slower). OpenBLAS reads `OPENBLAS_CORETYPE` only when the library loads, so the choice
/// is made by re-executing this process with the variable set; children inherit it.
/// A value already in the environment is respected. The chosen kernel must pass a
/// plain-loop sgemm check in the new process, else it is dropped (with a warning) and the
/// library's own choice stands.
enum KernelSelection {
    static let coreTypeVariable = "OPENBLAS_CORETYPE"
    static let verifyVariable = "MAESTRO_BLAS_VERIFY"
    static let rejectedVariable = "MAESTRO_BLAS_REJECTED"

    /// Kernels from slowest to fastest for single-precision GEMM on x86-64.
    static let ladder = [
        "Prescott", "Core2", "Penryn", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX",
        "Cooperlake", "SapphireRapids",
    ]

    /// Re-executes the process with a better kernel when one is available, or verifies the
    /// kernel after such a re-execution. Returns only when the process keeps running.
    static func ensureBestKernel() {
        let environment = ProcessInfo.processInfo.environment
        if environment[verifyVariable] != nil {
            unsetenv(verifyVariable)
            let chosen = environment[coreTypeVariable] ?? "?"
            if BLASKernel.sgemmMatchesReference() { return }
            FileHandle.standardError.write(
                Data(
                    "maestro: OpenBLAS kernel \(chosen) failed the sgemm check; using the library default\n"
                        .utf8))
            unsetenv(coreTypeVariable)
            setenv(rejectedVariable, chosen, 1)
            reexecute()
            return
        }
        if environment[coreTypeVariable] != nil { return }
        guard let best = bestCoreType(), environment[rejectedVariable] != best else { return }
        let current = BLASKernel.coreName
        let currentRank =
            ladder.firstIndex { $0.caseInsensitiveCompare(current) == .orderedSame } ?? 0
        guard let bestRank = ladder.firstIndex(of: best), bestRank > currentRank else { return }
        setenv(coreTypeVariable, best, 1)
        setenv(verifyVariable, "1", 1)
        reexecute()
    }

    /// The fastest correct OpenBLAS core type for this CPU's features (Linux /proc/cpuinfo).
    static func bestCoreType() -> String? {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
        #else
        return nil
        #endif
    }

    private static func reexecute() {
        let arguments = CommandLine.unsafeArgv
        execv("/proc/self/exe", arguments)
        // execv returns only on failure: keep running with the current kernel.
        FileHandle.standardError.write(
            Data(
                "maestro: could not re-execute to select the BLAS kernel (\(String(cString: strerror(errno))))\n"
                    .utf8))
    }
}
