import PilotCore

/// The VQA challenge's accuracy and ANLS (OCR-style VQA), for tasks a scenario names itself.
extension Metrics {
    // MARK: VQA accuracy (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py)

    static let vqaPunctuation: [Character] = [";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-",
                                              ">", "<", "@", "`", ",", "?", "!"]
    static let vqaNumbers = ["none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                             "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"]
    /// The evaluation's contraction table: an answer written without its apostrophe gets it back.
    static let vqaContractions: [String: String] = [
        "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
        "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't",
        "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
        "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll",
        "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd",
        "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
        "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
        "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
        "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've",
        "she'dve": "she'd've", "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
        "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
        "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
        "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
        "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
        "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's",
        "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're",
        "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
        "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
        "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've",
        "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's",
        "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
        "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
        "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
        "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
        "youre": "you're", "youve": "you've",
    ]

    /// The evaluation's `processPunctuation`, quirks included: when the text has a punctuation mark
    /// next to a space, or a digit-comma-digit anywhere, every mark is deleted ("1,000" → "1000"),
    /// otherwise it becomes a space; then a period not followed by a digit is deleted (the official
    /// regex's look-behind is broken, so "3.5" keeps its period and "end." loses it; at most 32, as
    /// its `re.sub(…, re.UNICODE)` passes 32 as the count).
    public static func vqaProcessPunctuation(_ text: String) -> String {
        let chars = Array(text)
        var commaBetweenDigits = false
        if chars.count >= 3 {
            for i in 1..<(chars.count - 1) where chars[i] == "," && chars[i - 1].isASCIIDigit && chars[i + 1].isASCIIDigit {
                commaBetweenDigits = true
                break
            }
        }
        var out = text
        for p in vqaPunctuation {
            let delete = text.contains("\(p) ") || text.contains(" \(p)") || commaBetweenDigits
            out = String(out.flatMap { $0 == p ? (delete ? [] : [" "]) : [$0] })
        }
        var result: [Character] = []
        let oc = Array(out)
        var removed = 0
        for (i, c) in oc.enumerated() {
            if c == ".", removed < 32, !(i + 1 < oc.count && oc[i + 1].isASCIIDigit) { removed += 1; continue }
            result.append(c)
        }
        return String(result)
    }

    /// The evaluation's `processDigitArticle`: lowercase, split on whitespace, number words to digits,
    /// articles a/an/the dropped, contractions restored ("dont" → "don't"), joined with single spaces.
    public static func vqaProcessDigitArticle(_ text: String) -> String {
        var words: [String] = []
        for w in text.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init) {
            let m = vqaNumbers[w] ?? w
            if !articles.contains(m) { words.append(m) }
        }
        return words.map { vqaContractions[$0] ?? $0 }.joined(separator: " ")
    }

    /// An answer as the VQA evaluation compares it: newlines and tabs to spaces, trimmed,
    /// `vqaProcessPunctuation`, then `vqaProcessDigitArticle`.
    public static func vqaNormalize(_ text: String) -> String {
        let t = String(text.map { $0 == "\n" || $0 == "\t" ? " " : $0 }).trimmingCharacters(in: .whitespaces)
        return vqaProcessDigitArticle(vqaProcessPunctuation(t))
    }

    /// VQA accuracy of one answer. With n ≥ 2 references (10 human answers in VQA v2), the
    /// official mean over the n leave-one-out subsets of min(#matches in the subset / 3, 1); with
    /// one reference, 1 if it matches. Prediction and references are normalised with `vqaNormalize`
    /// always (the official script skips this when all 10 humans wrote the same string, which gives
    /// the same result for lowercase references; lmms-eval and LLaVA's evaluators normalise always).
    public static func vqaAccuracy(_ prediction: String, references: [String]) -> Double {
        guard !references.isEmpty else { return 0 }
        let p = vqaNormalize(prediction)
        let refs = references.map(vqaNormalize)
        if refs.count == 1 { return refs[0] == p ? 1 : 0 }
        let matches = refs.filter { $0 == p }.count
        var total = 0.0
        for r in refs {
            let others = matches - (r == p ? 1 : 0)
            total += min(1, Double(others) / 3)
        }
        return total / Double(refs.count)
    }

    // MARK: ANLS (Biten et al., ST-VQA, ICCV 2019; the DocVQA evaluation)

    /// Levenshtein distance over Unicode scalars.
    public static func levenshtein(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            cur[0] = i
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[y.count]
    }

    /// ANLS of one answer: the best over the references of 1 − NL when NL < τ, else 0, where
    /// NL = Levenshtein(p, r) / max(|p|, |r|) on lowercased, whitespace-collapsed, trimmed text
    /// (the DocVQA evaluation's preprocessing). Two empty strings score 1.
    public static func anls(_ prediction: String, references: [String], threshold tau: Double = 0.5) -> Double {
        func clean(_ s: String) -> String { s.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ") }
        let p = clean(prediction)
        var best = 0.0
        for r in references.map(clean) {
            let n = max(p.unicodeScalars.count, r.unicodeScalars.count)
            let nl = n == 0 ? 0 : Double(levenshtein(p, r)) / Double(n)
            best = max(best, nl < tau ? 1 - nl : 0)
        }
        return best
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
