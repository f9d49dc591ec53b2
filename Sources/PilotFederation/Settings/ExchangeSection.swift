import PilotCore

/// `[exchange]`: how updates cross the network (docs/compression.md).
public struct ExchangeSection: ConfigSection {
    public static let name = "exchange"
    public var compress: UpdateCodec?
    public var compressDown: UpdateCodec?
    public var topkFraction: Double?

    public static let keys: [ConfigKey] = [
        .init(name: "exchange.compress", kind: .string(UpdateCodec.allCases.map(\.rawValue)), defaultValue: nil,
              help: "client → server: each update's change against what the client last received is sent as fp16, bf16, int8 (blocks of 64, one Float32 absmax scale each) or topk (exchange.topk_fraction of the values, with error feedback); the server decodes it. Not with dp.clip. Unset: none, the Float32 values (docs/compression.md)", optional: true),
        .init(name: "exchange.compress_down", kind: .string(["none", "fp16", "bf16", "int8"]), defaultValue: nil,
              help: "server → clients: the shared and personal results sent as fp16, bf16 or int8 values (every client then holds what it decoded). Unset: none", optional: true),
        .init(name: "exchange.topk_fraction", kind: .double(0...1), defaultValue: nil,
              help: "exchange.compress = \"topk\": the share of an update's values sent, in (0, 1] (⌈fraction·n⌉, ties to the lower index); what is not sent is added to the client's next change (error feedback). Unset: 0.1", optional: true),
    ]
}

extension RunSettings {
    /// The coders' settings; nil when nothing is compressed (the exchange is as before).
    var compression: (up: UpdateCodec, down: UpdateCodec, fraction: Double)? {
        let up = exchange.compress ?? .none, down = exchange.compressDown ?? .none
        return up == .none && down == .none ? nil : (up, down, exchange.topkFraction ?? 0.1)
    }

    /// Refuses `[exchange]` settings that cannot apply (with the placement, before MPI starts).
    func checkCompression() throws {
        let up = exchange.compress ?? .none
        if let f = exchange.topkFraction {
            guard f > 0 && f <= 1 else {
                throw PilotError.invalidArgument("exchange.topk_fraction = \(f): it must be in (0, 1], the share of an update's values that top-k sends (0.1 sends a tenth)")
            }
            guard up == .topk else {
                throw PilotError.invalidArgument("exchange.topk_fraction is set but exchange.compress is \(up.rawValue), not \"topk\": set exchange.compress = \"topk\", or remove exchange.topk_fraction")
            }
        }
        guard compression != nil else { return }
        if [.local, .centralized].contains(run.algorithm) {
            throw PilotError.invalidArgument("exchange.compress / exchange.compress_down: run.algorithm = \(run.algorithm.rawValue) sends no update to a server, so there is nothing to compress; remove the [exchange] keys")
        }
        if up != .none, let c = dp.clip {
            throw PilotError.invalidArgument("exchange.compress = \(up.rawValue) with dp.clip = \(c): DP's guarantee is on the clipped update as the client computed it, and a compressed update is another one (int8 or fp16 rounding can take it past the clip bound, and top-k's error feedback carries what one round clipped and did not send into the next, so no round's sensitivity stays C); remove exchange.compress, or dp.clip. exchange.compress_down composes with DP (it only changes what the server sends back)")
        }
        if model.loraRanks != nil {
            throw PilotError.invalidArgument("exchange.compress / exchange.compress_down with model.lora_ranks: the server pads each client's factors to the largest rank and each client keeps its leading components, so the two sides' references would differ in shape; compression is not supported with mixed ranks yet. Remove one of them")
        }
    }
}
