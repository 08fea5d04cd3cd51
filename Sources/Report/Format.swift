import Foundation
import RunRecords

/// Bytes with a decimal unit: "71.20 MB".
public func formatBytes(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value >= 1e9 { return String(format: "%.2f GB", value / 1e9) }
    if value >= 1e6 { return String(format: "%.2f MB", value / 1e6) }
    if value >= 1e3 { return String(format: "%.1f kB", value / 1e3) }
    return "\(bytes) B"
}

/// Seconds as h:mm:ss.
public func formatDuration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    return String(format: "%d:%02d:%02d", total / 3600, (total / 60) % 60, total % 60)
}

/// Seconds as "12.3 s" below 100 s, as h:mm:ss above.
public func formatTime(_ seconds: Double) -> String {
    seconds < 100 ? String(format: "%.1f s", seconds) : formatDuration(seconds)
}

/// Left- (or right-) aligned in `width` characters.
public func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return right ? padding + text : text + padding
}

/// An accuracy in percent: "85.20 %" style without the space ("85.20%").
func percent(_ value: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f%%", 100 * value)
}

/// Whose data ever reached the model: "24/40 (61.3%)", the tier's clients with an
/// aggregated update out of the tier's clients in the scenario, and their share of the
/// samples its registered clients hold; "-" for runs recorded before it was kept.
public func dataReached(_ tier: RunSummary.TierSummary) -> String {
    guard let clients = tier.contributingClients, let samples = tier.samples,
        let contributed = tier.contributedSamples
    else { return "-" }
    let share = samples > 0 ? " (" + percent(Double(contributed) / Double(samples)) + ")" : ""
    return "\(clients)/\(tier.clients)" + share
}

/// Text safe inside XML element content and attribute values.
func escapeXML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}
