import Fleet

/// Who may be selected, as the run has learned it: clients known gone, clients cooling down
/// after missed deadlines, and clients whose data reached the model. Kept in the checkpoint,
/// so a resumed run selects as the uninterrupted one would.
struct ClientStanding: Equatable {
    /// Clients known to be gone (a fleet's dead processes, a peer that vanished): not
    /// selected again until they register again (a restarted client does).
    var unresponsive: Set<UInt32> = []
    /// Clients that missed a round's deadline: not selected before this round unless they
    /// send something first (a partition heals, a slow device catches up).
    var cooldownUntil: [UInt32: Int] = [:]
    /// Time-outs in a row of each client since its last accepted update: they lengthen its
    /// next cooldown (`Cooldowns`).
    var timeoutStreaks: [UInt32: Int] = [:]
    /// Clients whose update has been aggregated at least once: whose data reached the model.
    var contributors: Set<UInt32> = []

    /// Whether a client may not be selected in `round`: known gone, cooling down, or its
    /// connection known closed (another connection may have taken its routing identity
    /// over, so nothing goes there until it registers again).
    func isExcluded(_ id: UInt32, round: Int, clients: ClientTable) -> Bool {
        unresponsive.contains(id) || (cooldownUntil[id] ?? 0) > round
            || clients[id]?.connected == false
    }

    /// `id` missed the deadline of `round`: excluded while `cooldownUntil > round`, the next
    /// 3, 6, 12 … rounds as its time-outs in a row grow.
    mutating func timedOut(_ id: UInt32, round: Int) {
        let streak = timeoutStreaks[id, default: 0] + 1
        timeoutStreaks[id] = streak
        cooldownUntil[id] = round + Cooldowns.rounds(afterTimeouts: streak) + 1
    }

    /// `id`'s update was accepted: the streak of time-outs is over, and so is any cooldown.
    mutating func worked(_ id: UInt32) {
        timeoutStreaks[id] = nil
        cooldownUntil[id] = nil
    }
}
