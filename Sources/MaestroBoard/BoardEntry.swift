import ArgumentParser
import CPlatform
import DeviceCommands
import Tensors

/// The board's `maestro`: the `client` command alone, linked without scenarios (YAML), reports
/// or the coordinator, so that the static executable needs no more of Foundation than
/// FoundationEssentials (docs/devices.md). The full `maestro` has the same `client`.
@main
struct BoardEntry {
    /// Synchronous, as the full `maestro`'s entry is: an `async` main would start libdispatch's
    /// pool, whose monitor needs `/proc`, which a board's empty root does not have.
    static func main() {
        unblockStopSignals()
        BLASKernel.setThreadCount(1)
        maestro_keep_large_allocations_on_heap()
        BoardMaestro.main()
    }
}

struct BoardMaestro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maestro",
        abstract: "Maestro's board client: one federated client of a coordinator's fleet.",
        discussion: """
            The board's build of maestro has the device's command only; scenarios, fleets, \
            coordinators and reports are the full maestro's. `client --data DIR` trains on \
            this device's own MNIST-format files.
            """,
        version: "0.1.0",
        subcommands: [ClientCommand<NoScenarioPartitions>.self]
    )
}
