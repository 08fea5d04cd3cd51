import Fleet

/// Who may be selected, as the run has learned it: clients known gone, clients cooling down
/// after missed deadlines, and clients whose data reached the model. Kept in the checkpoint,
/// so a resumed run selects as the uninterrupted one would (encoded whole into the header's
/// flat JSON object; a key absent from an older checkpoint reads as none).
struct ClientStanding: Codable, Sendable, Equatable {
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

    init(
        unresponsive: Set<UInt32> = [], cooldownUntil: [UInt32: Int] = [:],
        timeoutStreaks: [UInt32: Int] = [:], contributors: Set<UInt32> = []
    ) {
        self.unresponsive = unresponsive
        self.cooldownUntil = cooldownUntil
        self.timeoutStreaks = timeoutStreaks
        self.contributors = contributors
    }

    private enum CodingKeys: String, CodingKey {
        case unresponsive, cooldownUntil, timeoutStreaks, contributors
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        unresponsive = Set(
            try container.decodeIfPresent([UInt32].self, forKey: .unresponsive) ?? [])
        cooldownUntil =
            try container.decodeIfPresent([UInt32: Int].self, forKey: .cooldownUntil) ?? [:]
        timeoutStreaks =
            try container.decodeIfPresent([UInt32: Int].self, forKey: .timeoutStreaks) ?? [:]
        contributors = Set(
            try container.decodeIfPresent([UInt32].self, forKey: .contributors) ?? [])
    }

    /// Sets as sorted lists; time-out streaks only when there are any.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(unresponsive.sorted(), forKey: .unresponsive)
        try container.encode(cooldownUntil, forKey: .cooldownUntil)
        if !timeoutStreaks.isEmpty {
            try container.encode(timeoutStreaks, forKey: .timeoutStreaks)
        }
        try container.encode(contributors.sorted(), forKey: .contributors)
    }

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
