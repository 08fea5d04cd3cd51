import Datasets
import Foundation
import RunRecords

/// Plain (uncompressed) copies of a data set's training files, shared by the client
/// processes of a simulated fleet so that each reads them instead of inflating the gzip'd
/// originals (100 clients × 0.4 s of inflate is most of a fleet's start-up otherwise).
///
/// The cache lives in the system's temporary folder, one folder per source folder, and is
/// refreshed when a source file's size or modification time changes. Writes are atomic.
public enum DataCache {
    /// A folder holding plain copies of the Fashion-MNIST training files of `directory`, or
    /// `directory` itself when its files are already plain.
    public static func plainTrainingFiles(of directory: String) throws(DatasetError) -> String {
        let paths = FashionMNIST.paths(split: .train, directory: directory)
        guard paths.images.hasSuffix(".gz") || paths.labels.hasSuffix(".gz") else {
            return directory
        }
        let key = String(UInt64(truncatingIfNeeded: directory.hashValueStable), radix: 16)
        let cache = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "maestro-data-cache/\(key)")
        do {
            try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        } catch {
            return directory  // no cache: clients read the originals
        }
        for source in [paths.images, paths.labels] {
            let name = URL(fileURLWithPath: source).lastPathComponent.replacingOccurrences(
                of: ".gz", with: "")
            let target = cache.appendingPathComponent(name).path
            let stamp = target + ".source"
            let attributes = try? FileManager.default.attributesOfItem(atPath: source)
            let signature =
                "\(source) \(attributes?[.size] ?? 0) \(attributes?[.modificationDate] ?? "")"
            if (try? String(contentsOfFile: stamp, encoding: .utf8)) == signature,
                FileManager.default.fileExists(atPath: target)
            {
                continue
            }
            let file = try IDXFile.read(path: source)
            do {
                try RunRecorder.writeAtomically(file.plainBytes, to: target)
            } catch {
                return directory
            }
            try? RunRecorder.writeAtomically(Array(signature.utf8), to: stamp)
        }
        return cache.path
    }
}

extension String {
    /// FNV-1a of the UTF-8 bytes: stable across processes (unlike `hashValue`).
    var hashValueStable: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return hash
    }
}
