/// What a client says about its connection to the coordinator, so that a wrong address and a
/// coordinator that does not answer read differently.
public enum ConnectionText {
    /// Nothing accepts connections at `endpoint` (connection refused, or unreachable).
    public static func refused(_ endpoint: String) -> String {
        "cannot connect to \(endpoint): connection refused (nothing listens there; is the "
            + "coordinator running, and are the host and port right?); still trying"
    }

    /// The client gives up after `seconds` without a frame: says which of the two it was.
    public static func gaveUp(
        _ endpoint: String, seconds: Int, connected: Bool, failedConnects: Int, registered: Bool
    ) -> String {
        if !connected && failedConnects > 0 {
            return "nothing accepts connections at \(endpoint) (connection refused for \(seconds)"
                + " s): is the coordinator running, and are the host and port right? giving up"
        }
        if connected && !registered {
            return "connected to \(endpoint), but no answer to REGISTER for \(seconds) s (is it a"
                + " Maestro coordinator, with this client's keys?); giving up"
        }
        return "nothing from \(endpoint) for \(seconds) s; giving up"
    }
}
