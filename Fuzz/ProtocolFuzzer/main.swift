import Runtime

/// libFuzzer entry point: the bytes are a sequence of events from many fake peers and the
/// clock, driving the coordinator's state machine (`ProtocolFuzzing`); a broken invariant
/// stops the fuzzer with the input that broke it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if ProtocolFuzzing.run(input).violation != nil {
        // Again with the last events traced, for reading the failure.
        let traced = ProtocolFuzzing.run(input, tracing: true).violation
        fatalError("protocol invariant broken: \(traced.map(\.description) ?? "")")
    }
    return 0
}
