extension Scenario {
    /// The most clients a fleet may have (client IDs travel as 32-bit numbers; a million
    /// keeps every product of counts the code forms far from overflow).
    public static let maximumClients = 1_000_000
    /// The most rounds a scenario may run (rounds travel as 32-bit numbers; checkpoints refuse
    /// a round beyond it too).
    public static let maximumRounds = 1_000_000
    /// The longest tier or scenario name, in UTF-8 bytes: what a REGISTER frame carries for a
    /// tier name (`WireLimits.tierNameBytes`), and the longest file name.
    public static let maximumNameBytes = 255
    /// The longest scenario as run (``yaml()``), in UTF-8 bytes: what a `workerAssignment`
    /// frame carries (`WireLimits.scenarioBytes`); a longer one would reach workers cut.
    public static let maximumYAMLBytes = 60_000
    /// The largest factor, learning rate or probability sent to clients as a 32-bit float.
    static let maximumFloat = Double(Float.greatestFiniteMagnitude)
}
