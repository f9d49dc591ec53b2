import PilotCore

/// Counts, answer distributions and trivial baselines of one task, for `pilot data stats`.
/// Baselines are scored on the test examples with the task's own metric:
/// - majority: always answer the most frequent training answer;
/// - random: a seeded random choice among the question's options (science: the letter, or the
///   option's text where the answers are texts, task version 2) or among the training answers
///   (other tasks);
/// - text-only: the most frequent training answer for the same instruction text (falls back
///   to the majority answer); shows how far the instruction alone goes without the image.
public struct TaskStats: Sendable {
    public var task: FedTask
    public var trainCount: Int
    public var testCount: Int
    public var distinctAnswers: Int
    /// Most frequent training answers with their share of the training set.
    public var topAnswers: [(answer: String, share: Double)]
    public var categories: [(category: String, count: Int)]
    public var majorityAnswer: String
    public var majorityBaseline: Double
    public var randomBaseline: Double
    public var textOnlyBaseline: Double
    public var meanInstructionTokens: Double
    public var meanAnswerTokens: Double
    public var maxSequenceTokens: Int
    public var unknownTokens: Int

    public static func compute(task: FedTask, train: [Example], test: [Example], tokenizer: Tokenizer, seed: UInt64 = 0) throws -> TaskStats {
        guard !train.isEmpty, !test.isEmpty else {
            throw PilotError.invalidArgument("stats for \(task.rawValue): need training and test examples (got \(train.count) and \(test.count))")
        }
        var counts: [String: Int] = [:]
        for e in train { counts[e.answer, default: 0] += 1 }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let majority = ranked[0].key
        var cats: [String: Int] = [:]
        for e in train { cats[e.category, default: 0] += 1 }
        let refs = test.map(\.references)

        let majorityScore = try Metrics.score(task: task, predictions: Array(repeating: majority, count: test.count), references: refs).score
        var rng = PilotRNG.stream(seed: seed, "stats/\(task.rawValue)")
        let trainAnswers = train.map(\.answer)
        let randomPreds = test.map { e -> String in
            if task == .science {
                let letters = ["a", "b", "c", "d", "e"].filter { e.instruction.contains(" \($0). ") }
                guard !letters.isEmpty else { return "a" }
                let letter = rng.pick(letters)
                // Task version 2 answers with the option's text: pick the text after the letter.
                if Metrics.choiceLetter(e.answer) != nil { return letter }
                let after = e.instruction.range(of: " \(letter). ")!.upperBound
                return e.instruction[after...].split(separator: " ").first.map(String.init) ?? letter
            }
            return rng.pick(trainAnswers)
        }
        let randomScore = try Metrics.score(task: task, predictions: randomPreds, references: refs).score
        var byInstruction: [String: [String: Int]] = [:]
        for e in train { byInstruction[e.instruction, default: [:]][e.answer, default: 0] += 1 }
        let textPreds = test.map { e -> String in
            guard let c = byInstruction[e.instruction] else { return majority }
            return c.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }[0].key
        }
        let textScore = try Metrics.score(task: task, predictions: textPreds, references: refs).score

        var insTokens = 0, ansTokens = 0, maxTokens = 0, unknown = 0
        for e in train + test {
            let i = tokenizer.encode(e.instruction, unknownCount: &unknown).count
            let a = tokenizer.encode(e.answer, unknownCount: &unknown).count
            insTokens += i; ansTokens += a; maxTokens = max(maxTokens, i + a + 3)
        }
        let n = Double(train.count + test.count)
        return TaskStats(task: task, trainCount: train.count, testCount: test.count, distinctAnswers: counts.count,
                         topAnswers: ranked.prefix(8).map { ($0.key, Double($0.value) / Double(train.count)) },
                         categories: cats.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                         majorityAnswer: majority, majorityBaseline: majorityScore, randomBaseline: randomScore,
                         textOnlyBaseline: textScore, meanInstructionTokens: Double(insTokens) / n,
                         meanAnswerTokens: Double(ansTokens) / n, maxSequenceTokens: maxTokens, unknownTokens: unknown)
    }

    /// A human-readable block.
    public var text: String {
        func pct(_ v: Double) -> String { fixed(100 * v, 1) + "%" }
        let metric = task.metric
        func score(_ v: Double) -> String { metric == .ciderD ? fixed(v, 3) : pct(v) }
        var lines = ["[\(task.rawValue)] metric \(metric.rawValue)  train \(trainCount)  test \(testCount)  distinct answers \(distinctAnswers)"]
        lines.append("  top answers: " + topAnswers.map { "\($0.answer.debugDescription) \(pct($0.share))" }.joined(separator: ", "))
        lines.append("  families: " + categories.map { "\($0.category) \($0.count)" }.joined(separator: ", "))
        lines.append("  baselines on test: majority \(score(majorityBaseline)) (answer \(majorityAnswer.debugDescription)), random \(score(randomBaseline)), text-only \(score(textOnlyBaseline))")
        lines.append("  tokens: instruction mean \(fixed(meanInstructionTokens, 1)), answer mean \(fixed(meanAnswerTokens, 1)), longest sequence \(maxSequenceTokens) (incl. BOS/SEP/EOS), unknown \(unknownTokens)")
        return lines.joined(separator: "\n")
    }
}

/// Fixed-point formatting without Foundation's locale-dependent formatters.
public func fixed(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "\(v)" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let scaled = (abs(v) * p).rounded()
    let whole = Int(scaled / p), frac = Int(scaled - Double(whole) * p)
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return (v < 0 && scaled != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
}
