import Foundation

/// Starts `maestro client` and `maestro worker` processes and makes sure none outlives the
/// fleet.
///
/// Children inherit the environment (with the BLAS kernel chosen at start-up) plus one BLAS
/// thread each, append their output to one log file, and get SIGTERM if this process dies
/// (`--exit-with-parent`). Each child hosts some fleet clients (a client process one, a worker
/// its share); when it exits, those are reported lost. Reaping is one `waitpid(-1, WNOHANG)`
/// per call plus one per child that exited, whatever the number of children. `stopAll`
/// terminates and reaps whatever is still running.
///
/// Used from the fleet's thread and polled by the coordinator between frames; every access to
/// the child table holds `lock`, which makes it safe to share (`@unchecked Sendable`).
public final class ProcessLauncher: @unchecked Sendable {
    private let lock = NSLock()
    private var children: [pid_t: StrideTo<Int>] = [:]
    private var exited: [UInt32] = []
    private let executable: String
    private let logDescriptor: Int32

    public init(logPath: String) throws(LaunchError) {
        executable = SourceTree.executable
        logDescriptor = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard logDescriptor >= 0 else {
            throw .failed(
                "\(logPath): cannot open the clients' log (\(String(cString: strerror(errno))))")
        }
    }

    deinit { close(logDescriptor) }

    /// Spawns `maestro ARGUMENTS`, a process that hosts the fleet clients `clients`.
    public func launch(
        hosting clients: StrideTo<Int>, arguments: [String],
        environment extra: [String: String] = [:]
    ) throws(LaunchError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, logDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, logDescriptor, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment.merge(extra) { $1 }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard status == 0 else {
            throw .failed(
                "cannot start a \(arguments.first ?? "") process (\(executable)): \(String(cString: strerror(status)))"
            )
        }
        lock.withLock { children[pid] = clients }
    }

    /// Fleet indices of clients whose process exited since the last call.
    public func exitedClients() -> [UInt32] {
        reap()
        return lock.withLock {
            defer { exited.removeAll() }
            return exited
        }
    }

    /// Reaps children that exited; returns how many are still running.
    @discardableResult
    public func reap() -> Int {
        lock.withLock {
            while !children.isEmpty {
                var status: Int32 = 0
                let pid = waitpid(-1, &status, WNOHANG)
                guard pid > 0 else { break }
                if let clients = children.removeValue(forKey: pid) {
                    exited += clients.map(UInt32.init)
                }
            }
            return children.count
        }
    }

    /// Waits up to `timeout` for every child to exit by itself.
    public func waitForExit(timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        while reap() > 0 && ContinuousClock.now < deadline {
            usleep(20_000)
        }
    }

    /// SIGTERM to every child, SIGKILL to those still there after two seconds, and reap all.
    public func stopAll() {
        guard reap() > 0 else { return }
        for pid in lock.withLock({ Array(children.keys) }) { kill(pid, SIGTERM) }
        waitForExit(timeout: .seconds(2))
        let remaining = lock.withLock { Array(children.keys) }
        for pid in remaining { kill(pid, SIGKILL) }
        for pid in remaining {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        lock.withLock { children.removeAll() }
    }
}
