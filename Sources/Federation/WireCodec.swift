import Tensors
import Vocabulary

/// Limits of the wire format that both ends enforce.
public enum WireLimits {
    /// Bytes of the fixed frame header.
    public static let headerSize = 32
    /// "MSTR", the first four bytes of every frame.
    public static let magic: [UInt8] = [0x4D, 0x53, 0x54, 0x52]
    /// The protocol version this build writes and reads.
    public static let version: UInt16 = 1
    /// Most axes a tensor may have.
    public static let maximumDimensions = 8
    /// Longest tier name, in UTF-8 bytes.
    public static let tierNameBytes = 255
    /// Longest shutdown reason or error message, in UTF-8 bytes.
    public static let textBytes = 4096
    /// Longest model description (JSON of the architecture) in a `registered` reply.
    public static let modelDescriptionBytes = 60_000
    /// Longest scenario text in a `workerAssignment`, in UTF-8 bytes.
    public static let scenarioBytes = 60_000
}

/// The fixed header of a frame (layout in `WIRE.md`).
public struct WireHeader: Sendable, Equatable {
    public var version: UInt16
    public var type: MessageType
    public var flags: UInt8
    public var round: UInt32
    public var sender: UInt32
    /// Bytes after the header.
    public var payloadLength: UInt64
    /// CRC32C of the payload bytes.
    public var payloadChecksum: UInt32

    /// Header plus payload.
    public var frameSize: UInt64 { UInt64(WireLimits.headerSize) + payloadLength }
}

/// A decoded frame: the header fields and the message.
public struct Envelope: Sendable, Equatable {
    public var version: UInt16
    /// The federated round the message belongs to (0 outside rounds, as in registration).
    public var round: UInt32
    /// The sender's client id (0 for the coordinator and for unregistered clients).
    public var sender: UInt32
    public var message: Message

    public init(
        version: UInt16 = WireLimits.version, round: UInt32, sender: UInt32, message: Message
    ) {
        self.version = version
        self.round = round
        self.sender = sender
        self.message = message
    }

    public var type: MessageType { message.type }
}

/// Maps Maestro messages to versioned binary frames and back (layout in `WIRE.md`).
///
/// Encoding sizes the frame first (`encodedSize(of:)`) and writes it in one pass, tensors by
/// bulk copy. Decoding is total: any input, however damaged or hostile, yields an
/// ``Envelope`` or a ``WireError``; it never traps and allocates only for lengths it has
/// checked against the bytes actually present.
public enum WireCodec {
    // MARK: Encoding

    /// Bytes `encode(message, …)` produces.
    public static func encodedSize(of message: Message) -> Int {
        WireLimits.headerSize + payloadSize(of: message)
    }

    /// The frame for `message`, sent in `round` by `sender`.
    ///
    /// Text fields longer than their limit are clipped at a UTF-8 scalar boundary. Tensors
    /// with more than ``WireLimits/maximumDimensions`` axes or extents above `UInt32.max`
    /// are programmer errors and trap.
    public static func encode(_ message: Message, round: UInt32, sender: UInt32) -> [UInt8] {
        let size = encodedSize(of: message)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = encode(
                message, round: round, sender: sender, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Writes the frame for `message` at the start of `buffer`, which must hold at least
    /// `encodedSize(of: message)` bytes, and returns the bytes written.
    @discardableResult
    public static func encode(
        _ message: Message, round: UInt32, sender: UInt32,
        into buffer: UnsafeMutableRawBufferPointer
    ) -> Int {
        let payloadLength = payloadSize(of: message)
        let size = WireLimits.headerSize + payloadLength
        precondition(buffer.count >= size, "buffer of \(buffer.count) bytes, frame needs \(size)")
        var writer = WireWriter(buffer, offset: WireLimits.headerSize)
        writePayload(message, into: &writer)
        precondition(writer.offset == size, "wrote \(writer.offset) bytes, sized \(size)")

        let payload = UnsafeRawBufferPointer(
            rebasing: buffer[WireLimits.headerSize..<size])
        var header = WireWriter(buffer, offset: 0)
        for byte in WireLimits.magic { header.write(byte) }
        header.write(WireLimits.version)
        header.write(message.type.rawValue)
        header.write(UInt8(0))
        header.write(round)
        header.write(sender)
        header.write(UInt64(payloadLength))
        header.write(CRC32C.checksum(payload))
        header.write(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<28])))
        return size
    }

    static func payloadSize(of message: Message) -> Int {
        switch message {
        case .register(let body):
            return WireSize.text(body.tierName, maximum: WireLimits.tierNameBytes) + 4 + 4 + 8 + 4
        case .registered(let body):
            return 4 + 8
                + WireSize.text(body.modelDescription, maximum: WireLimits.modelDescriptionBytes)
        case .train(let body):
            return 2 + 2 + 4 + 4 + 8 + 1 + 4 + 4 + 4 + 1 + (body.distillation == nil ? 0 : 8)
                + 4 + 4 * body.samplerFractions.count
                + 4 + 4 * body.budgets.count
                + WireSize.factorsAndShared(body.factors, body.shared)
        case .update(let body):
            return 4 + 4 + 4 + WireSize.factorsAndShared(body.factors, body.shared)
        case .evaluate(let body):
            var size = 4
            for vector in body.budgets { size += 4 + 4 * vector.count }
            return size + WireSize.factorsAndShared(body.factors, body.shared)
        case .evaluation(let body):
            return 4 + 12 * body.results.count
        case .shutdown(let body):
            return WireSize.text(body.reason, maximum: WireLimits.textBytes)
        case .error(let body):
            return 2 + WireSize.text(body.message, maximum: WireLimits.textBytes)
        case .heartbeat:
            return 0
        case .workerHello(let body):
            return 4 + 4 + 8 + WireSize.text(body.host, maximum: WireLimits.tierNameBytes)
                + WireSize.text(body.credential, maximum: WireLimits.tierNameBytes)
        case .workerAssignment(let body):
            var size = 4 + 4 + 8 + WireSize.text(body.scenario, maximum: WireLimits.scenarioBytes)
            size += 4
            for rows in body.rows { size += 4 + 4 * rows.count }
            return size
        case .linkProbe(let body):
            return 4 + 4 + Int(body.paddingBytes)
        case .linkProbeReply(let body):
            return 4 + Int(body.paddingBytes)
        case .workerRows(let body):
            return 4 + 4 + 4 * body.rows.count
        }
    }

    private static func writePayload(_ message: Message, into writer: inout WireWriter) {
        switch message {
        case .register(let body):
            writer.write(text: body.tierName, maximum: WireLimits.tierNameBytes)
            writer.write(body.capability)
            writer.write(body.sampleCount)
            writer.write(body.instanceNonce)
            writer.write(body.requestedClientID ?? UInt32.max)
        case .registered(let body):
            writer.write(body.clientID)
            writer.write(body.runID)
            writer.write(text: body.modelDescription, maximum: WireLimits.modelDescriptionBytes)
        case .train(let body):
            writer.write(body.localEpochs)
            writer.write(body.batchSize)
            writer.write(body.learningRate)
            writer.write(body.groupLasso)
            writer.write(body.seed)
            writer.write(body.widthDropout ? TrainingTask.widthDropoutCode : body.sampler.wireCode)
            writer.write(body.momentum)
            writer.write(body.weightDecay)
            writer.write(body.fullBudgetProbability)
            writer.write(
                UInt8(body.selfDistillation ? 1 : 0) | UInt8(body.freezeConvolutions ? 2 : 0)
                    | UInt8(body.distillation == nil ? 0 : 4))
            if let distillation = body.distillation {
                writer.write(distillation.weight)
                writer.write(distillation.temperature)
            }
            writer.write(count: body.samplerFractions.count)
            for fraction in body.samplerFractions { writer.write(fraction) }
            writer.write(count: body.budgets.count)
            for budget in body.budgets { writer.write(budget) }
            writer.write(body.factors, body.shared)
        case .update(let body):
            writer.write(body.sampleCount)
            writer.write(body.trainingLoss)
            writer.write(body.computeSeconds)
            writer.write(body.factors, body.shared)
        case .evaluate(let body):
            writer.write(count: body.budgets.count)
            for vector in body.budgets {
                writer.write(count: vector.count)
                for budget in vector { writer.write(budget) }
            }
            writer.write(body.factors, body.shared)
        case .evaluation(let body):
            writer.write(count: body.results.count)
            for result in body.results {
                writer.write(result.sampleCount)
                writer.write(result.correct)
                writer.write(result.lossSum)
            }
        case .shutdown(let body):
            writer.write(text: body.reason, maximum: WireLimits.textBytes)
        case .error(let body):
            writer.write(body.code.rawValue)
            writer.write(text: body.message, maximum: WireLimits.textBytes)
        case .heartbeat:
            break
        case .workerHello(let body):
            writer.write(body.slot ?? UInt32.max)
            writer.write(body.slots ?? 0)
            writer.write(body.instanceNonce)
            writer.write(text: body.host, maximum: WireLimits.tierNameBytes)
            writer.write(text: body.credential, maximum: WireLimits.tierNameBytes)
        case .workerAssignment(let body):
            writer.write(body.slot)
            writer.write(body.slots)
            writer.write(body.runID)
            writer.write(text: body.scenario, maximum: WireLimits.scenarioBytes)
            writer.write(count: body.rows.count)
            for rows in body.rows {
                writer.write(count: rows.count)
                for row in rows { writer.write(row) }
            }
        case .linkProbe(let body):
            writer.write(body.replyFrameBytes)
            writer.write(body.paddingBytes)
            writer.writeZeros(Int(body.paddingBytes))
        case .linkProbeReply(let body):
            writer.write(body.paddingBytes)
            writer.writeZeros(Int(body.paddingBytes))
        case .workerRows(let body):
            writer.write(body.client)
            writer.write(count: body.rows.count)
            for row in body.rows { writer.write(row) }
        }
    }

    // MARK: Decoding

    /// Reads and checks the header at the start of `bytes` (magic, version, header CRC,
    /// flags, type, announced size against `maximumSize`), without looking at the payload.
    public static func decodeHeader(
        _ bytes: UnsafeRawBufferPointer, maximumSize: Int
    )
        throws(WireError) -> WireHeader
    {
        guard bytes.count >= WireLimits.headerSize else {
            throw .tooShort(count: bytes.count, headerSize: WireLimits.headerSize)
        }
        var reader = WireReader(UnsafeRawBufferPointer(rebasing: bytes[0..<WireLimits.headerSize]))
        let magic = Array(bytes[0..<4])
        guard magic == WireLimits.magic else { throw .badMagic(magic) }
        _ = try reader.read(UInt32.self, "magic")
        let version = try reader.read(UInt16.self, "version")
        guard version == WireLimits.version else {
            throw .unsupportedVersion(version, supported: WireLimits.version)
        }
        let typeCode = try reader.read(UInt8.self, "type")
        let flags = try reader.read(UInt8.self, "flags")
        let round = try reader.read(UInt32.self, "round")
        let sender = try reader.read(UInt32.self, "sender")
        let payloadLength = try reader.read(UInt64.self, "payload length")
        let payloadChecksum = try reader.read(UInt32.self, "payload CRC32C")
        let headerChecksum = try reader.read(UInt32.self, "header CRC32C")
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28]))
        guard computed == headerChecksum else {
            throw .headerChecksumMismatch(stored: headerChecksum, computed: computed)
        }
        guard flags == 0 else { throw .reservedFlags(flags) }
        guard let type = MessageType(rawValue: typeCode) else {
            throw .unknownMessageType(typeCode)
        }
        let maximumPayload = UInt64(max(0, maximumSize - WireLimits.headerSize))
        guard payloadLength <= maximumPayload else {
            let size = payloadLength.addingReportingOverflow(UInt64(WireLimits.headerSize))
            throw .messageTooLarge(
                size: size.overflow ? .max : size.partialValue, maximum: maximumSize)
        }
        return WireHeader(
            version: version, type: type, flags: flags, round: round, sender: sender,
            payloadLength: payloadLength, payloadChecksum: payloadChecksum)
    }

    /// Decodes one frame, which must be exactly the bytes of one message, refusing frames
    /// larger than `maximumSize` bytes.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, maximumSize: Int
    )
        throws(WireError) -> Envelope
    {
        if bytes.count > maximumSize {
            throw .messageTooLarge(size: UInt64(bytes.count), maximum: maximumSize)
        }
        let header = try decodeHeader(bytes, maximumSize: maximumSize)
        let frameSize = header.frameSize
        if UInt64(bytes.count) < frameSize {
            throw .truncated(expectedSize: frameSize, actualSize: bytes.count)
        }
        if UInt64(bytes.count) > frameSize {
            throw .trailingBytes(expectedSize: frameSize, actualSize: bytes.count)
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[WireLimits.headerSize...])
        let computed = CRC32C.checksum(payload)
        guard computed == header.payloadChecksum else {
            throw .payloadChecksumMismatch(stored: header.payloadChecksum, computed: computed)
        }
        var reader = WireReader(payload)
        let message = try readPayload(header.type, from: &reader)
        if reader.remaining != 0 {
            throw .trailingPayloadBytes(type: header.type, count: reader.remaining)
        }
        return Envelope(
            version: header.version, round: header.round, sender: header.sender, message: message)
    }

    /// Decodes one frame held in any byte collection (see ``decode(_:maximumSize:)-(UnsafeRawBufferPointer,_)``).
    public static func decode(
        _ bytes: some Collection<UInt8>, maximumSize: Int
    )
        throws(WireError) -> Envelope
    {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(WireError) -> Envelope in
                try decode(UnsafeRawBufferPointer(buffer), maximumSize: maximumSize)
            }
        }
        if let result { return try result.get() }
        if bytes.count > maximumSize {
            throw .messageTooLarge(size: UInt64(bytes.count), maximum: maximumSize)
        }
        let copy = Array(bytes)
        let copied = copy.withUnsafeBytes { buffer in
            Result { () throws(WireError) -> Envelope in
                try decode(buffer, maximumSize: maximumSize)
            }
        }
        return try copied.get()
    }

    private static func readPayload(
        _ type: MessageType, from reader: inout WireReader
    )
        throws(WireError) -> Message
    {
        switch type {
        case .register:
            let tierName = try reader.readText(
                maximum: WireLimits.tierNameBytes, "register.tierName")
            return .register(
                Registration(
                    tierName: tierName,
                    capability: try reader.readFloat("register.capability"),
                    sampleCount: try reader.read(UInt32.self, "register.sampleCount"),
                    instanceNonce: try reader.read(UInt64.self, "register.instanceNonce"),
                    requestedClientID: try reader.readOptionalID("register.requestedClientID")))
        case .registered:
            return .registered(
                RegistrationAccepted(
                    clientID: try reader.read(UInt32.self, "registered.clientID"),
                    runID: try reader.read(UInt64.self, "registered.runID"),
                    modelDescription: try reader.readText(
                        maximum: WireLimits.modelDescriptionBytes, "registered.modelDescription")))
        case .train:
            let localEpochs = try reader.read(UInt16.self, "train.localEpochs")
            let batchSize = try reader.read(UInt16.self, "train.batchSize")
            let learningRate = try reader.readFloat("train.learningRate")
            let groupLasso = try reader.readFloat("train.groupLasso")
            let seed = try reader.read(UInt64.self, "train.seed")
            let samplerCode = try reader.read(UInt8.self, "train.sampler")
            let widthDropout = samplerCode == TrainingTask.widthDropoutCode
            guard let sampler = widthDropout ? .unsampled : RankSampler.Kind(wireCode: samplerCode)
            else {
                throw .invalidValue(field: "train.sampler", value: UInt64(samplerCode))
            }
            let momentum = try reader.readFloat("train.momentum")
            let weightDecay = try reader.readFloat("train.weightDecay")
            let fullBudgetProbability = try reader.readFloat("train.fullBudgetProbability")
            let options = try reader.read(UInt8.self, "train.options")
            guard options <= 7 else {
                throw .invalidValue(field: "train.options", value: UInt64(options))
            }
            var distillation: TrainingTask.Distillation?
            if options & 4 != 0 {
                distillation = TrainingTask.Distillation(
                    weight: try reader.readFloat("train.distillationWeight"),
                    temperature: try reader.readFloat("train.distillationTemperature"))
            }
            let fractions = try reader.readBudgets("train.samplerFractions").map(
                Float.init(bitPattern:))
            let budgets = try reader.readBudgets("train.budgets")
            let factors = try reader.readFactors("train.factors")
            let shared = try reader.readTensors("train.shared")
            return .train(
                TrainingTask(
                    budgets: budgets, factors: factors, shared: shared, localEpochs: localEpochs,
                    batchSize: batchSize, learningRate: learningRate, sampler: sampler,
                    groupLasso: groupLasso, seed: seed, momentum: momentum,
                    weightDecay: weightDecay,
                    samplerFractions: fractions, fullBudgetProbability: fullBudgetProbability,
                    selfDistillation: options & 1 != 0, freezeConvolutions: options & 2 != 0,
                    widthDropout: widthDropout, distillation: distillation))
        case .update:
            let sampleCount = try reader.read(UInt32.self, "update.sampleCount")
            let trainingLoss = try reader.readFloat("update.trainingLoss")
            let computeSeconds = try reader.readFloat("update.computeSeconds")
            let factors = try reader.readFactors("update.factors")
            let shared = try reader.readTensors("update.shared")
            return .update(
                TrainingUpdate(
                    factors: factors, shared: shared, sampleCount: sampleCount,
                    trainingLoss: trainingLoss, computeSeconds: computeSeconds))
        case .evaluate:
            let count = try reader.readCount(minimumElementSize: 4, "evaluate.budgets")
            var budgets = [[UInt32]]()
            budgets.reserveCapacity(count)
            for index in 0..<count {
                budgets.append(try reader.readBudgets("evaluate.budgets[\(index)]"))
            }
            let factors = try reader.readFactors("evaluate.factors")
            let shared = try reader.readTensors("evaluate.shared")
            return .evaluate(EvaluationTask(budgets: budgets, factors: factors, shared: shared))
        case .evaluation:
            let count = try reader.readCount(minimumElementSize: 12, "evaluation.results")
            var results = [BudgetEvaluation]()
            results.reserveCapacity(count)
            for index in 0..<count {
                results.append(
                    BudgetEvaluation(
                        sampleCount: try reader.read(UInt32.self, "evaluation.results[\(index)]"),
                        correct: try reader.read(UInt32.self, "evaluation.results[\(index)]"),
                        lossSum: try reader.readFloat("evaluation.results[\(index)]")))
            }
            return .evaluation(EvaluationReport(results: results))
        case .shutdown:
            return .shutdown(
                Shutdown(
                    reason: try reader.readText(maximum: WireLimits.textBytes, "shutdown.reason")))
        case .error:
            let code = try reader.read(UInt16.self, "error.code")
            let message = try reader.readText(maximum: WireLimits.textBytes, "error.message")
            return .error(ErrorReport(code: ErrorReport.Code(rawValue: code), message: message))
        case .heartbeat:
            return .heartbeat
        case .workerHello:
            let slot = try reader.readOptionalID("workerHello.slot")
            let slots = try reader.read(UInt32.self, "workerHello.slots")
            return .workerHello(
                WorkerHello(
                    slot: slot, slots: slots == 0 ? nil : slots,
                    instanceNonce: try reader.read(UInt64.self, "workerHello.instanceNonce"),
                    host: try reader.readText(
                        maximum: WireLimits.tierNameBytes, "workerHello.host"),
                    credential: try reader.readText(
                        maximum: WireLimits.tierNameBytes, "workerHello.credential")))
        case .workerAssignment:
            let slot = try reader.read(UInt32.self, "workerAssignment.slot")
            let slots = try reader.read(UInt32.self, "workerAssignment.slots")
            guard slots >= 1, slot < slots else {
                throw .invalidValue(field: "workerAssignment.slot", value: UInt64(slot))
            }
            let runID = try reader.read(UInt64.self, "workerAssignment.runID")
            let scenario = try reader.readText(
                maximum: WireLimits.scenarioBytes, "workerAssignment.scenario")
            let count = try reader.readCount(minimumElementSize: 4, "workerAssignment.rows")
            var rows = [[UInt32]]()
            rows.reserveCapacity(count)
            for _ in 0..<count { rows.append(try reader.readBudgets("workerAssignment.rows")) }
            return .workerAssignment(
                WorkerAssignment(
                    slot: slot, slots: slots, runID: runID, scenario: scenario, rows: rows))
        case .linkProbe:
            let reply = try reader.read(UInt32.self, "linkProbe.replyFrameBytes")
            let padding = try reader.read(UInt32.self, "linkProbe.paddingBytes")
            try reader.skip(Int(padding), "linkProbe.padding")
            return .linkProbe(LinkProbe(replyFrameBytes: reply, paddingBytes: padding))
        case .linkProbeReply:
            let padding = try reader.read(UInt32.self, "linkProbeReply.paddingBytes")
            try reader.skip(Int(padding), "linkProbeReply.padding")
            return .linkProbeReply(LinkProbeReply(paddingBytes: padding))
        case .workerRows:
            let client = try reader.read(UInt32.self, "workerRows.client")
            return .workerRows(
                WorkerRows(client: client, rows: try reader.readBudgets("workerRows.rows")))
        }
    }
}
