import ArgumentParser
import Foundation
import PilotCore
import PilotData

/// `pilot data decode`: decode image files the way the importer does and time it (the decoding
/// benchmark of scripts/bench/bench_image_decode.sh). Hidden: a measuring tool, not a workflow step.
struct DataDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode JPEG/PNG files as the importer does; print mode, size and time per decode.",
        shouldDisplay: false)

    @Argument(help: "Image files.")
    var files: [String]

    @Option(help: "Decodes per file; the fastest is reported.")
    var repeats: Int = 1

    @Option(help: "Write the (first) decoded image as PNG here, to look at it.")
    var out: String?

    func run() throws {
        for f in files {
            var best = Double.infinity
            var last: DecodedImage? = nil
            for _ in 0..<max(1, repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                last = try ImageDecoder.read(path: f)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let d = last!
            let mp = Double(d.image.width * d.image.height) / 1e6
            Console.out(String(format: "%@: %@ %dx%d, %.1f ms (best of %d), %.1f MP/s", f, d.mode, d.image.width, d.image.height,
                               best * 1000, max(1, repeats), mp / best))
            if let out, f == files.first { try PNG.write(d.image, to: out) }
        }
    }
}
