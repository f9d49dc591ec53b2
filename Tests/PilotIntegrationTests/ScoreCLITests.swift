import Foundation
import PilotTestSupport
import Testing

/// `pilot score` on the 300-caption fixture: the same bits in every process (CIDEr-D's sums run in the
/// n-grams' order of appearance, not in Swift's per-process hash order) and pycocoevalcap's corpus score.
@Suite("pilot score")
struct ScoreCLITests {
    @Test("CIDEr-D has the same bits in four processes, and pycocoevalcap's")
    func ciderIsTheSameInEveryProcess() throws {
        let dir = TemporaryDirectory("score-cli"); defer { dir.cleanup() }
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/cider/random300.json"))) as! [String: Any]
        try JSONSerialization.data(withJSONObject: fixture["refs"]!).write(to: URL(fileURLWithPath: dir.file("refs.json")))
        try JSONSerialization.data(withJSONObject: fixture["preds"]!).write(to: URL(fileURLWithPath: dir.file("preds.json")))
        var outputs: [String] = []
        for _ in 0..<4 {
            let r = try runProcess(pilotBinary, ["score", "--task", "caption", "--refs", dir.file("refs.json"), "--preds", dir.file("preds.json")])
            try #require(r.status == 0, "\(r.stderr)")
            outputs.append(r.stdout)
        }
        #expect(Set(outputs).count == 1, "the processes disagree")
        let parsed = try JSONSerialization.jsonObject(with: Data(outputs[0].utf8)) as? [String: Any]
        #expect(parsed?["score"] as? Double == fixture["cider_d"] as? Double, "\(parsed?["score"] ?? "none") vs pycocoevalcap \(fixture["cider_d"]!)")
    }
}
