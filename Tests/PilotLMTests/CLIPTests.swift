import Foundation
import Testing
import PilotCore
import PilotLM
import PilotTensor
import PilotTestSupport

@Suite("CLIP vision tower vs transformers", .serialized)
struct CLIPTests {
    @Test("penultimate-layer patch features equal transformers' hidden_states[-2][:, 1:] to 1e-4", arguments: CLIPFixture.names)
    func penultimate(name: String) throws {
        let f = try CLIPFixture(name)
        let tower = try CLIPVisionTower.load(directory: f.dir)
        #expect(tower.tokens() == f.patches)
        let ours = try tower.features(pixels: f.pixels, batch: f.batch)
        #expect(ours.count == f.batch * f.patches * f.hidden)
        let d = maxAbsDiff(ours, f.penultimatePatch)
        print("clip \(name) (prefix '\(tower.weights.prefix)', \(tower.config.hiddenAct)): [\(f.batch), \(f.patches), \(f.hidden)] penultimate patch features: max |ours - transformers| = \(d); first \(ours.prefix(3)) vs \(f.penultimatePatch.prefix(3))")
        #expect(d <= 1e-4)
    }

    @Test("other hidden states: the last layer with CLS, and the embeddings after pre_layrnorm", arguments: CLIPFixture.names)
    func otherLayers(name: String) throws {
        let f = try CLIPFixture(name)
        let tower = try CLIPVisionTower.load(directory: f.dir)
        let last = try tower.features(pixels: f.pixels, batch: f.batch, layer: -1, select: .clsPatch)
        let lastByIndex = try tower.features(pixels: f.pixels, batch: f.batch, layer: tower.config.numHiddenLayers, select: .clsPatch)
        let first = try tower.features(pixels: f.pixels, batch: f.batch, layer: 0)
        let d1 = maxAbsDiff(last, f.lastClsPatch), d0 = maxAbsDiff(first, f.firstPatch)
        print("clip \(name): last layer with CLS max diff \(d1); embeddings max diff \(d0)")
        #expect(d1 <= 1e-4 && d0 <= 1e-4)
        #expect(last == lastByIndex)
    }

    @Test("an image's features are the same bits alone or anywhere in a batch; 2 threads give the batch's features")
    func batchAndThreads() throws {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        let f = try CLIPFixture("vit-quickgelu")
        let tower = try CLIPVisionTower.load(directory: f.dir)
        let all = try tower.features(pixels: f.pixels, batch: 2)
        let half = f.pixels.count / 2, out = all.count / 2
        let first = try tower.features(pixels: Array(f.pixels[..<half]), batch: 1)
        let second = try tower.features(pixels: Array(f.pixels[half...]), batch: 1)
        // bit for bit (what the vision-feature cache relies on): each image runs alone through the same buffers
        #expect(first == Array(all[..<out]) && second == Array(all[out...]))
        let shuffled = try tower.features(pixels: Array(f.pixels[half...]) + Array(f.pixels[..<half]) + Array(f.pixels[half...]), batch: 3)
        #expect(shuffled == second + first + second)
        Parallel.configure(threads: 2)
        defer { Parallel.configure(threads: 1) }
        let two = try tower.features(pixels: f.pixels, batch: 2)
        print("clip: batch of 1 vs 2 max diff \(maxAbsDiff(second, Array(all[out...]))), 1 vs 2 threads \(maxAbsDiff(all, two))")
        #expect(maxAbsDiff(all, two) <= 1e-6)
    }

    @Test("bad input and bad checkpoints get an error naming the file and tensor or key")
    func badInput() throws {
        let f = try CLIPFixture("vit-gelu")
        let tower = try CLIPVisionTower.load(directory: f.dir)
        #expect(errorText { _ = try tower.features(pixels: Array(f.pixels.dropLast()), batch: 2) }?.contains("image_size 24") == true)
        #expect(errorText { _ = try tower.features(pixels: f.pixels, batch: 2, layer: -4) }?.contains("-3...2") == true)
        var nan = f.pixels; nan[5] = .nan
        #expect(errorText { _ = try tower.features(pixels: nan, batch: 2) }?.contains("pixel value 5") == true)

        let tmp = TemporaryDirectory("clip-bad")
        defer { tmp.cleanup() }
        let fm = FileManager.default
        func dir(_ name: String, config: (inout [String: Any]) -> Void) throws -> String {
            let d = tmp.file(name)
            try fm.createDirectory(atPath: d, withIntermediateDirectories: false)
            var o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.dir + "/config.json"))) as! [String: Any]
            config(&o)
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: d + "/config.json"))
            try fm.copyItem(atPath: f.dir + "/model.safetensors", toPath: d + "/model.safetensors")
            return d
        }
        let cases: [(String, String, [String])] = [
            ("act", try dir("act") { $0["hidden_act"] = "relu" }, ["hidden_act", "relu"]),
            ("size", try dir("size") { $0["image_size"] = 30 }, ["position_embedding", "[26, 32]"]),
            ("width", try dir("width") { $0["hidden_size"] = 48 }, ["patch_embedding.weight"]),
            ("type", try dir("type") { $0["model_type"] = "siglip_vision_model" }, ["siglip_vision_model"]),
            ("heads", try dir("heads") { $0["num_attention_heads"] = 5 }, ["num_attention_heads"]),
            ("no dir", tmp.file("absent"), ["config.json"]),
        ]
        for (what, d, needles) in cases {
            let e = errorText { _ = try CLIPVisionTower.load(directory: d) }
            print("clip \(what): \(e ?? "no error")")
            for n in needles { #expect(e?.contains(n) == true, "\(what): \(n)") }
        }
        // a missing tensor: an LM checkpoint is not a vision tower
        let e = errorText { _ = try CLIPVisionWeights(config: tower.config, source: try SafetensorsFile(path: LMFixtures.path("tiny-gqa-tied/model.safetensors"))) }
        #expect(e?.contains("embeddings.patch_embedding.weight") == true)
    }

    @Test("CLIP normalisation: OpenAI mean/std, channels first")
    func normalisation() throws {
        let n = CLIPImageNormalization()
        let px: [Float] = [1, 0.5, 0,  0.48145466, 0.4578275, 0.40821073]   // 1×2 RGB
        let out = try n.normalize(hwc: px, height: 1, width: 2)
        #expect(abs(out[0] - (1 - 0.48145466) / 0.26862954) < 1e-6)
        #expect(abs(out[2] - (0.5 - 0.4578275) / 0.26130258) < 1e-6)
        #expect(abs(out[1]) < 1e-6 && abs(out[3]) < 1e-6 && abs(out[5]) < 1e-6)
        #expect(try CLIPImageNormalization(directory: CLIPFixture.path("vit-gelu")) == n)   // no preprocessor_config.json
    }
}
