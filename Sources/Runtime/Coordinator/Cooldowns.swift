/// How long a client that missed a round's deadline sits out: 3 rounds after its first
/// time-out, twice as long after each further time-out in a row (3, 6, 12, 24), at most
/// `maximumRounds`.
///
/// Only useful work ends a cooldown early or resets the streak: an accepted UPDATE resets
/// both; a REGISTER from a new process (another nonce) ends the cooldown but keeps the streak,
/// so a peer that re-registers and then times out again waits longer each time. Heartbeats,
/// error reports, evaluations, link probes and a REGISTER repeated by the same process prove
/// only that the peer can send, not that it trains: they change nothing, so a client that
/// never trains costs the round timeout once per cooldown, not every other round.
enum Cooldowns {
    /// Rounds sat out after the first time-out.
    static let firstRounds = 3
    /// The longest cooldown, whatever the streak.
    static let maximumRounds = 24

    /// The cooldown after the `streak`-th time-out in a row (`streak ≥ 1`).
    static func rounds(afterTimeouts streak: Int) -> Int {
        precondition(streak >= 1, "a cooldown follows at least one time-out, got \(streak)")
        // 3 · 2^(streak−1), without overflow for any streak.
        let doublings = min(streak - 1, 8)
        return min(firstRounds << doublings, maximumRounds)
    }
}
