import PilotCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The metric of a task (docs/design.md §5).
public enum MetricKind: String, CaseIterable, Sendable {
    case ciderD = "cider_d"
    case exactMatch = "exact_match"
    case accAtIoU50 = "acc_iou50"
    case choiceAccuracy = "choice_accuracy"
    /// The VQA challenge's accuracy: official answer normalisation, min(#matching humans / 3, 1)
    /// averaged over the leave-one-out subsets of the references (10 in VQA v2).
    case vqaAccuracy = "vqa_accuracy"
    /// Average Normalised Levenshtein Similarity (ST-VQA, DocVQA), threshold τ = 0.5.
    case anls = "anls"

    public static func parse(_ s: String) throws -> MetricKind {
        guard let m = MetricKind(rawValue: s.lowercased()) else {
            throw PilotError.invalidArgument("unknown metric '\(s)'; expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return m
    }
}

/// A corpus score with the score of every item (same order as the inputs).
public struct MetricResult: Equatable, Sendable {
    public var kind: MetricKind
    /// Mean of `perItem` (for CIDEr-D, exactly pycocoevalcap's corpus score).
    public var score: Double
    public var perItem: [Double]
}

/// The paper's metrics as pure functions of predictions and references.
public enum Metrics {
    /// Scores `predictions[i]` against `references[i]` with the metric of `task`.
    public static func score(task: FedTask, predictions: [String], references: [[String]]) throws -> MetricResult {
        try score(metric: task.metric, predictions: predictions, references: references)
    }

    /// Scores `predictions[i]` against `references[i]` with `metric`.
    public static func score(metric: MetricKind, predictions: [String], references: [[String]]) throws -> MetricResult {
        guard predictions.count == references.count else {
            throw PilotError.invalidArgument("metrics: \(predictions.count) predictions but \(references.count) reference lists")
        }
        let per: [Double]
        switch metric {
        case .ciderD:
            return try ciderD(predictions: predictions, references: references)
        case .exactMatch:
            per = zip(predictions, references).map { exactMatch($0, references: $1) }
        case .accAtIoU50:
            per = zip(predictions, references).map { p, refs in refs.contains { r in
                guard let a = parseBox(p), let b = parseBox(r) else { return false }
                return iou(a, b) >= 0.5
            } ? 1 : 0 }
        case .choiceAccuracy:
            per = zip(predictions, references).map { choiceAccuracy($0, references: $1) }
        case .vqaAccuracy:
            per = zip(predictions, references).map { vqaAccuracy($0, references: $1) }
        case .anls:
            per = zip(predictions, references).map { anls($0, references: $1) }
        }
        return MetricResult(kind: metric, score: per.isEmpty ? 0 : per.reduce(0, +) / Double(per.count), perItem: per)
    }

    // MARK: exact match with VQA-style normalisation

    static let numberWords = ["none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                              "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"]
    static let articles: Set<String> = ["a", "an", "the"]

    /// The VQA evaluation's answer normalisation: lowercase; punctuation removed (a period
    /// only when it is not a decimal point); number words to digits (`two` → `2`); articles
    /// `a an the` dropped; whitespace collapsed.
    public static func normalizeAnswer(_ text: String) -> String {
        let chars = Array(text.lowercased())
        var cleaned = ""
        for (i, c) in chars.enumerated() {
            if c.isLetter || c.isNumber || c.isWhitespace { cleaned.append(c); continue }
            if c == ".", i > 0, i + 1 < chars.count, chars[i - 1].isNumber, chars[i + 1].isNumber { cleaned.append(c); continue }
            // Apostrophes join ("don't" → "dont"), other punctuation separates.
            cleaned.append(c == "'" ? "" : " ")
        }
        let words = cleaned.split(whereSeparator: { $0.isWhitespace }).map(String.init)
            .map { numberWords[$0] ?? $0 }
            .filter { !articles.contains($0) }
        return words.joined(separator: " ")
    }

    /// 1 when the normalised prediction equals any normalised reference, else 0.
    public static func exactMatch(_ prediction: String, references: [String]) -> Double {
        let p = normalizeAnswer(prediction)
        return references.contains { normalizeAnswer($0) == p } ? 1 : 0
    }

    // MARK: multiple choice

    /// The letter a prediction chooses: its first word stripped of `( ) [ ] . : ,`, when that
    /// is a single letter ("b", "(b)", "B.", "b) float", "answer: b"); nil otherwise.
    public static func choiceLetter(_ text: String) -> String? {
        var words = text.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
        let strip: Set<Character> = ["(", ")", "[", "]", ".", ":", ",", ";", "\"", "'"]
        func clean(_ w: String) -> String { String(w.filter { !strip.contains($0) }) }
        if let f = words.first, ["answer", "answer:"].contains(f) { words.removeFirst() }
        if let f = words.first, clean(f) == "is" { words.removeFirst() }
        guard let first = words.first else { return nil }
        let c = clean(first)
        return c.count == 1 && c.first!.isLetter ? c : nil
    }

    /// 1 when the prediction chooses a reference's letter. A reference that is not a letter (task
    /// version 2 answers with the option's text, "hot" or "2") is matched as `exactMatch` does.
    public static func choiceAccuracy(_ prediction: String, references: [String]) -> Double {
        let p = choiceLetter(prediction)
        return references.contains { r in
            if let letter = choiceLetter(r) { return p == letter }
            return exactMatch(prediction, references: [r]) == 1
        } ? 1 : 0
    }

    // MARK: boxes

    public struct Box: Equatable, Sendable {
        public var x1, y1, x2, y2: Double
        public init(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) { self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2 }
        public var area: Double { max(0, x2 - x1) * max(0, y2 - y1) }
    }

    /// Reads `[x1,y1,x2,y2]`. Tolerant of spaces, a missing bracket and extra text around the
    /// box; the text inside the first `[...]` (or the whole text when there is none) must
    /// hold exactly four finite numbers. Anything else is nil: a miss, never a crash.
    public static func parseBox(_ text: String) -> Box? {
        var body = Substring(text)
        if let open = text.firstIndex(of: "[") {
            let rest = text[text.index(after: open)...]
            body = rest.firstIndex(of: "]").map { rest[..<$0] } ?? rest
        }
        var numbers: [Double] = []
        let chars = Array(body)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            let startsNumber = c.isASCII && (c.isNumber || ((c == "-" || c == ".") && i + 1 < chars.count && chars[i + 1].isASCII && chars[i + 1].isNumber))
            if startsNumber {
                var j = i + 1
                var dot = c == "."
                while j < chars.count, chars[j].isASCII, chars[j].isNumber || (chars[j] == "." && !dot) {
                    if chars[j] == "." { dot = true }
                    j += 1
                }
                guard let v = Double(String(chars[i..<j])), v.isFinite else { return nil }
                numbers.append(v)
                i = j
            } else { i += 1 }
        }
        guard numbers.count == 4 else { return nil }
        return Box(numbers[0], numbers[1], numbers[2], numbers[3])
    }

    /// Intersection over union; 0 for empty or inverted boxes.
    public static func iou(_ a: Box, _ b: Box) -> Double {
        let iw = min(a.x2, b.x2) - max(a.x1, b.x1), ih = min(a.y2, b.y2) - max(a.y1, b.y1)
        let inter = max(0, iw) * max(0, ih)
        let union = a.area + b.area - inter
        return union > 0 ? inter / union : 0
    }

    // MARK: CIDEr-D

    /// CIDEr-D exactly as pycocoevalcap 1.2's `Cider` computes it on lowercased whitespace
    /// tokens, quirks included:
    /// - document frequencies come from the references of the items being scored, and
    ///   `ref_len = log(number of items)`, so a one-item corpus scores 0;
    /// - each n-gram order (1…n) has its own tf-idf vector; the numerator is clipped,
    ///   `min(hyp, ref) · ref`, divided by the product of the norms when both are non-zero;
    /// - the Gaussian length penalty `exp(−δ²/(2σ²))` uses the number of *bigrams* as the
    ///   length (pycocoevalcap's `if n == 1` on a 0-based order);
    /// - the mean over orders, divided by the number of references, times 10.
    /// An empty prediction scores 0.
    public static func ciderD(predictions: [String], references: [[String]], n: Int = 4, sigma: Double = 6.0) throws -> MetricResult {
        guard predictions.count == references.count else {
            throw PilotError.invalidArgument("CIDEr-D: \(predictions.count) predictions but \(references.count) reference lists")
        }
        for (i, r) in references.enumerated() where r.isEmpty {
            throw PilotError.invalidArgument("CIDEr-D: item \(i) has no references; every item needs at least one")
        }
        // Per order k (0-based): n-gram text → count, and the n-grams in order of first appearance. Every
        // sum below runs in that order, as pycocoevalcap's (insertion-ordered) dicts do, never in Swift's
        // per-process hash order, so the score has the same bits in every process.
        struct Counts { var count: [[String: Int]]; var order: [[String]] }
        func cook(_ s: String) -> Counts {
            let words = s.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
            var counts = Counts(count: Array(repeating: [:], count: n), order: Array(repeating: [], count: n))
            for k in 1...n where words.count >= k {
                for i in 0...(words.count - k) {
                    let g = words[i..<(i + k)].joined(separator: " ")
                    if counts.count[k - 1][g] == nil { counts.order[k - 1].append(g) }
                    counts.count[k - 1][g, default: 0] += 1
                }
            }
            return counts
        }
        let hyps = predictions.map(cook)
        let refs = references.map { $0.map(cook) }
        // Document frequency: the number of items whose references contain the n-gram.
        var df: [[String: Double]] = Array(repeating: [:], count: n)
        for itemRefs in refs {
            for k in 0..<n {
                var set = Set<String>()
                for r in itemRefs { for g in r.order[k] { set.insert(g) } }
                for g in set { df[k][g, default: 0] += 1 }
            }
        }
        let refLen = log(Double(refs.count))
        func vec(_ c: Counts) -> (v: [[String: Double]], norm: [Double], length: Double) {
            var v: [[String: Double]] = Array(repeating: [:], count: n)
            var norm = [Double](repeating: 0, count: n)
            var length = 0.0
            for k in 0..<n {
                for g in c.order[k] {
                    let tf = c.count[k][g]!
                    let d = log(max(1.0, df[k][g] ?? 0))
                    let x = Double(tf) * (refLen - d)
                    v[k][g] = x
                    norm[k] += x * x
                    if k == 1 { length += Double(tf) }
                }
            }
            return (v, norm.map { $0.squareRoot() }, length)
        }
        var per: [Double] = []
        per.reserveCapacity(hyps.count)
        for (h, rs) in zip(hyps, refs) {
            let (vh, nh, lh) = vec(h)
            var acc = [Double](repeating: 0, count: n)
            for r in rs {
                let (vr, nr, lr) = vec(r)
                let delta = lh - lr
                for k in 0..<n {
                    var val = 0.0
                    for g in h.order[k] { let x = vh[k][g]!, y = vr[k][g] ?? 0; val += min(x, y) * y }
                    if nh[k] != 0 && nr[k] != 0 { val /= nh[k] * nr[k] }
                    val *= pow(M_E, -(delta * delta) / (2 * sigma * sigma))   // pycocoevalcap: np.e ** (…), C pow
                    acc[k] += val
                }
            }
            var s = 0.0
            for k in 0..<n { s += acc[k] }
            per.append(s / Double(n) / Double(rs.count) * 10.0)
        }
        let corpus = per.isEmpty ? 0 : numpySum(per) / Double(per.count)
        return MetricResult(kind: .ciderD, score: corpus, perItem: per)
    }

    /// `np.add.reduce` of a contiguous float64 array, in its order: the identity 0 plus NumPy's pairwise
    /// sum (8 accumulators per block of at most 128 values, halves above that). pycocoevalcap takes the
    /// corpus CIDEr-D as `np.mean` of the per-image scores; summing the same way gives the same bits.
    static func numpySum(_ a: [Double]) -> Double {
        a.withUnsafeBufferPointer { p in p.isEmpty ? 0 : 0.0 + pairwise(p.baseAddress!, p.count) }
    }

    private static func pairwise(_ a: UnsafePointer<Double>, _ n: Int) -> Double {
        if n < 8 {
            var res = -0.0
            for i in 0..<n { res += a[i] }
            return res
        }
        if n <= 128 {
            var r = (0..<8).map { a[$0] }
            var i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += a[i + j] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[i]; i += 1 }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwise(a, n2) + pairwise(a + n2, n - n2)
    }
}
