import PilotCore
import PilotFederation
import PilotJob
import PilotTensor
import Testing

/// The server's part of a round, in-process: validation, DP noise and the strategy's aggregate, on
/// tiny hand-made updates (prepare / execute / assert).
@Suite("ServerStep: validate, noise, aggregate")
struct ServerStepTests {
    static let roster = Roster(clientTasks: [0, 0, 0], clientSamples: [3, 5, 2], numTasks: 1)
    static let vectors: [[Float]] = [[1, 2, 3, 4], [0.5, -1, 2, 0], [-2, 0.25, 1, 8]]

    static func updates(_ vectors: [[Float]], samples: [Int] = [3, 5, 2]) -> [ClientUpdate] {
        vectors.enumerated().map { k, v in
            ClientUpdate(client: k, examples: samples[k], tensors: try! NamedTensors(names: ["w"], counts: [v.count], values: v),
                         metrics: ["loss_total": 1])
        }
    }

    static func step(dp: DPSettings? = nil, robust: RobustSettings = .init()) -> ServerStep {
        ServerStep(strategy: FedAvgStrategy(learningRate: 1e-3), roster: roster, robust: robust, dp: dp, seed: 7)
    }

    @Test("clean updates: the result is the strategy's own aggregate, bit for bit, and nothing is rejected")
    func clean() throws {
        let out = try Self.step()(round: 1, updates: Self.updates(Self.vectors), serverState: [:])
        let direct = try FedAvgStrategy(learningRate: 1e-3).aggregate(round: 1, updates: Self.updates(Self.vectors), serverState: [:], roster: Self.roster)
        #expect(out.rejected.isEmpty)
        #expect(out.shared?.values.map(\.bitPattern) == direct.shared?.values.map(\.bitPattern))
    }

    @Test("a NaN update is rejected by name and the rest is aggregated without it")
    func rejectsNonFinite() throws {
        var v = Self.vectors
        v[1][2] = .nan
        let out = try Self.step()(round: 2, updates: Self.updates(v), serverState: [:])
        #expect(out.rejected.map(\.client) == [1])
        #expect(out.rejected.first?.reason.contains("non-finite") == true)
        let without = try Aggregate.weightedMean([v[0], v[2]], weights: [3, 2])
        #expect(out.shared?.values.map(\.bitPattern) == without.map(\.bitPattern))
    }

    @Test("every update rejected: throws, naming the round, every client and what stays committed")
    func allRejected() throws {
        let v = Self.vectors.map { $0.map { _ in Float.nan } }
        do {
            _ = try Self.step()(round: 3, updates: Self.updates(v), serverState: [:])
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("round 3") && text.contains("round 2 stays the latest checkpoint"))
            for k in 0..<3 { #expect(text.contains("client \(k)")) }
        }
    }

    @Test("run.min_clients: fewer accepted updates than the minimum fail the round, naming the key; at the minimum it aggregates")
    func minimumUpdates() throws {
        var v = Self.vectors
        v[0][0] = .infinity
        let step = ServerStep(strategy: FedAvgStrategy(learningRate: 1e-3), roster: Self.roster, robust: .init(), dp: nil, seed: 7, minimumUpdates: 3)
        do {
            _ = try step(round: 2, updates: Self.updates(v), serverState: [:])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("2 update(s) remain, fewer than run.min_clients = 3") && "\(error)".contains("client 0"), "\(error)")
        }
        #expect(try step(round: 2, updates: Self.updates(Self.vectors), serverState: [:]).rejected.isEmpty)
    }

    @Test("DP noise: seeded by (seed, round, client), so the same round gives the same bits and another round other bits")
    func dpNoise() throws {
        let dp = DPSettings(clip: 1, noiseMultiplier: 0.5, delta: 1e-5)
        let a = try Self.step(dp: dp)(round: 1, updates: Self.updates(Self.vectors), serverState: [:]).shared!.values
        let b = try Self.step(dp: dp)(round: 1, updates: Self.updates(Self.vectors), serverState: [:]).shared!.values
        let c = try Self.step(dp: dp)(round: 2, updates: Self.updates(Self.vectors), serverState: [:]).shared!.values
        let plain = try Self.step()(round: 1, updates: Self.updates(Self.vectors), serverState: [:]).shared!.values
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a != c && a != plain)
        // the noise is what ClientPrivacy adds to each accepted update before the n_k-weighted mean
        let noised = Self.vectors.enumerated().map { ClientPrivacy.noised($1, std: 0.5, seed: 7, round: 1, client: $0) }
        let expected = try Aggregate.weightedMean(noised, weights: [3, 5, 2])
        #expect(a.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
