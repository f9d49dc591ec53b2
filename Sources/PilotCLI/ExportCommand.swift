import ArgumentParser
import Foundation
import PilotCore
import PilotFederation

/// `pilot export`: a trained model out of a run, for other tools.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a client's model from a run for other tools.",
        subcommands: [ExportPEFTCommand.self])
}

/// `pilot export peft`: one client's LoRA as a Hugging Face PEFT adapter, with its connector and vision encoder.
struct ExportPEFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peft",
        abstract: "Write a client's LoRA as a PEFT adapter (plus connector and vision encoder) from a run on an imported LM.",
        discussion: """
        The directory holds adapter_config.json and adapter_model.safetensors, which \
        peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(LM), DIR) loads onto the \
        Hugging Face base model, and connector.safetensors, vision.safetensors, multimodal_config.json \
        and a README. The client's model is the one the run evaluated: the base checkpoint plus the \
        client's state after the round's aggregation. The directory is written under a temporary name \
        and renamed at the end, so it is never half-written.

        Example: pilot export peft --run runs/vu-smollm2-pilot --client 0 --out exports/vu-pilot-client-0
                 pilot generate --model models/smollm2-135m-instruct --adapter exports/vu-pilot-client-0 --prompt "…"
        """)

    @Option(name: .customLong("run"), help: "Run directory of `pilot train`.")
    var runDirectory: String
    @Option(help: "Client index (0-based, as in metrics.h5).")
    var client: Int
    @Option(help: "Round whose checkpoint to export (default: the newest complete one).")
    var round: Int?
    @Option(help: "Output directory (must not exist unless --force).")
    var out: String
    @Flag(help: "Replace an existing output directory.")
    var force = false

    func validate() throws {
        guard client >= 0 else { throw ValidationError("--client must be 0 or more (got \(client))") }
        if let round, round < 1 { throw ValidationError("--round must be 1 or more (got \(round))") }
    }

    func run() throws {
        let s = try ClientExport.peft(run: runDirectory, round: round, client: client, out: out, force: force)
        Console.out("wrote \(out): LoRA r = \(s.rank) on \(s.targets.joined(separator: ", ")) (\(s.loraTensors) tensors) for \(s.baseModel), "
            + "\(s.variant.rawValue) connector (\(s.connectorTensors) tensors), \(s.visionTensors > 0 ? "vision encoder (\(s.visionTensors) tensors)" : "no vision tensors (the CLIP tower is named in the README)"); round \(s.round), client \(client)")
    }
}
