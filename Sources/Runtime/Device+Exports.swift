// The device's side of the protocol (client session, local training, the client process) is
// its own module so that the board client links it without the coordinator; Runtime re-exports
// it, so code that runs fleets sees one module.
@_exported import Device
