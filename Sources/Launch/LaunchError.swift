/// Why a run could not start or did not finish, phrased for the user: each case names the
/// file, flag or folder at fault.
public enum LaunchError: Error, CustomStringConvertible, Equatable {
    /// A problem that stops the command, as one line.
    case failed(String)
    /// Stopped on request (Ctrl-C, SIGTERM) after `round` of `rounds` completed rounds;
    /// `resumeCommand` continues the run where it stopped.
    case stopped(round: Int, rounds: Int, resumeCommand: String)

    public var description: String {
        switch self {
        case .failed(let line): line
        case .stopped(let round, let rounds, let command):
            "stopped after round \(round) of \(rounds); continue with: \(command)"
        }
    }
}

extension LaunchError {
    /// Wraps an error of a lower layer, whose description already names the culprit.
    init(_ error: any Error) {
        self = (error as? LaunchError) ?? .failed("\(error)")
    }
}
