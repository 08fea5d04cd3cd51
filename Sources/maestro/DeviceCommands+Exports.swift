// `client`, its connection options and `CommandError` live in DeviceCommands, which the board's
// executable shares; every command file of `maestro` sees them through this one import.
@_exported import DeviceCommands
