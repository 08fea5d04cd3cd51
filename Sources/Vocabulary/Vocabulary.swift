/// The version of the shared vocabulary's definitions.
///
/// Raised whenever a definition here changes meaning (a rounding rule, a name's spelling), so
/// that records written under one definition can say which one they used.
public enum VocabularyVersion {
    public static let current = 1
}
