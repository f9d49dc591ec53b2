/// Generates the examples of the five tasks. Every text is lowercase with single spaces and
/// punctuation attached as `Tokenizer.detokenize` writes it, so `decode(encode(text)) == text`.
///
/// Each task has several instruction templates (the model must read the instruction to
/// know what to answer) and several question families (`Example.category`).
public struct TaskGenerator: Sendable {
    public let imageSize: Int
    /// Which definition of the tasks (`TaskVersion`): 1 as first released, 2 calibrated for the
    /// reference model (docs/calibration.md §6).
    public let version: TaskVersion
    let drawer: SceneDrawer

    public init(imageSize: Int = 32, version: TaskVersion = .v1) {
        precondition(imageSize >= 16, "images smaller than 16×16 cannot hold the scenes")
        self.imageSize = imageSize
        self.version = version
        drawer = SceneDrawer(size: imageSize)
    }

    /// Side of one cell of the 4 × 4 grid that version 2 snaps grounding boxes to: the reference
    /// model's patch (8 pixels of a 32-pixel image).
    var cell: Int { imageSize / 4 }

    /// Every word the generator can write. The tokenizer always includes these (after the
    /// closed set), so that the vocabulary does not depend on which rare words happen to be
    /// drawn into a small pretraining split. `GeneratorTests` checks that no generated text
    /// has an unknown piece.
    public static var lexicon: [String] {
        let templateWords = """
            a above and answer are background below bottom bounding box caption code color context count cover \
            describe describes do does fact find for give how image in iron is large left like locate made magnet \
            many middle no number object objects of on one or part picture pull pulls read right say see shape \
            shapes short show single sink float small text that the there things this three title top two water \
            what where which will with word write written yes dark at melt glow spin you have size
            """
        var words = templateWords.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\\" }).map(String.init)
        words += ShapeKind.allCases.flatMap { [$0.rawValue, $0.plural] }
        words += ShapeColor.allCases.map(\.rawValue) + ShapeSize.allCases.map(\.rawValue)
        words += ocrWords + propertySets.flatMap { $0 } + letters
        var seen = Set<String>()
        return words.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    public func example(_ task: FedTask, id: String, _ rng: inout PilotRNG) -> Example {
        switch task {
        case .caption: return caption(id: id, &rng)
        case .vqa: return vqa(id: id, &rng)
        case .grounding: return grounding(id: id, &rng)
        case .ocr: return ocr(id: id, &rng)
        case .science: return science(id: id, &rng)
        default: preconditionFailure("the generator makes the five built-in tasks only, not '\(task.rawValue)'")
        }
    }

    // MARK: caption

    static let captionPrompts = [
        "describe the image.", "write a short caption.", "what is in the picture?",
        "describe the shapes you see.", "give a caption for this image.",
    ]

    func caption(id: String, _ rng: inout PilotRNG) -> Example {
        let n = [1, 2, 2, 3][rng.int(4)]
        let scene = drawer.scene(count: n, &rng)
        // Shapes left to right, so that listings read in image order.
        let s = scene.shapes.sorted { ($0.centerX, $0.centerY) < ($1.centerX, $1.centerY) }
        func full(_ a: SceneShape) -> String { "\(a.size.rawValue) \(a.color.rawValue) \(a.kind.rawValue)" }
        func short(_ a: SceneShape) -> String { "\(a.color.rawValue) \(a.kind.rawValue)" }
        var pool: [String]
        switch s.count {
        case 1:
            let a = s[0], r = a.region(imageSize: imageSize)
            pool = [
                "a \(full(a))", "a \(short(a)) \(place(r))", "a single \(short(a))", "there is a \(full(a))",
                "a \(a.size.rawValue) \(a.kind.rawValue) that is \(a.color.rawValue)", "one \(full(a)) \(place(r))",
                "a \(full(a)) on a dark background",
            ]
        case 2:
            let a = s[0], b = s[1], rel = a.relation(to: b), inv = inverseRelation(rel)
            pool = [
                "a \(full(a)) \(rel) a \(full(b))", "a \(full(b)) \(inv) a \(full(a))",
                "a \(short(a)) and a \(short(b))", "a \(short(b)) and a \(short(a))",
                "two shapes a \(short(a)) \(rel) a \(short(b))", "there is a \(short(a)) \(rel) a \(full(b))",
                "a \(short(b)) \(inv) a \(short(a))",
            ]
        default:
            let a = s[0], b = s[1], c = s[2], rel = a.relation(to: b)
            pool = [
                "a \(short(a)) a \(short(b)) and a \(short(c))",
                "three shapes a \(short(a)) a \(short(b)) and a \(short(c))",
                "a \(short(a)) \(rel) a \(full(b)) and a \(short(c))",
                "a \(short(c)) a \(short(a)) and a \(short(b))",
                "three shapes with a \(full(b)) \(place(b.region(imageSize: imageSize)))",
                "a \(short(b)) and a \(short(c)) and a \(short(a))",
            ]
        }
        rng.shuffle(&pool)
        let refs = Array(pool.prefix(5))
        return Example(id: id, task: .caption, image: scene.image, instruction: rng.pick(Self.captionPrompts),
                       answer: refs[0], references: refs, category: "caption/\(s.count)-shapes")
    }

    /// "on the left", "at the top", "in the middle".
    func place(_ region: String) -> String {
        switch region {
        case "left", "right": return "on the \(region)"
        case "top", "bottom": return "at the \(region)"
        default: return "in the middle"
        }
    }

    // MARK: vqa

    static let vqaFamilies = ["color", "shape", "size", "count", "count-color", "exist", "relation", "position"]

    func vqa(id: String, _ rng: inout PilotRNG) -> Example {
        let family = rng.pick(Self.vqaFamilies)
        while true {
            let n = rng.int(in: 1...4)
            let scene = drawer.scene(count: n, &rng)
            let shapes = scene.shapes
            let t = rng.pick(shapes)
            let avoid: Set<Attribute> = family == "color" ? [.color] : family == "size" ? [.size] : []
            guard let ref = referringExpression(t, in: shapes, avoid: avoid, &rng) else { continue }
            var q = "", a = ""
            switch family {
            case "color":
                q = rng.pick(["what color is \(ref)?", "what is the color of \(ref)?", "which color does \(ref) have?"])
                a = t.color.rawValue
            case "shape":
                guard shapes.filter({ $0.color == t.color }).count == 1 else { continue }
                q = rng.pick(["what shape is the \(t.color.rawValue) object?", "which shape is \(t.color.rawValue)?",
                              "what is the \(t.color.rawValue) shape?"])
                a = t.kind.rawValue
            case "size":
                q = rng.pick(["is \(ref) small or large?", "what size is \(ref)?", "is \(ref) large or small?"])
                a = t.size.rawValue
            case "count":
                q = rng.pick(["how many shapes are there?", "how many objects are in the image?", "count the shapes."])
                a = String(shapes.count)
            case "count-color":
                // Ask about a colour that is present two times in three, so that 0 is not the usual answer.
                let c = rng.bool(0.67) ? t.color : rng.pick(ShapeColor.allCases)
                q = rng.pick(["how many \(c.rawValue) shapes are there?", "how many shapes are \(c.rawValue)?"])
                a = String(shapes.filter { $0.color == c }.count)
            case "exist":
                let present = rng.bool()
                var c = t.color, k = t.kind
                if !present {
                    var tries = 0
                    repeat { c = rng.pick(ShapeColor.allCases); k = rng.pick(ShapeKind.allCases); tries += 1 }
                    while shapes.contains(where: { $0.color == c && $0.kind == k }) && tries < 100
                }
                q = rng.pick(["is there a \(c.rawValue) \(k.rawValue)?", "does the image show a \(c.rawValue) \(k.rawValue)?"])
                a = shapes.contains(where: { $0.color == c && $0.kind == k }) ? "yes" : "no"
            case "relation":
                guard shapes.count >= 2 else { continue }
                let others = shapes.filter { $0 != t }
                let o = rng.pick(others)
                guard abs(t.centerX - o.centerX) >= 3 || abs(t.centerY - o.centerY) >= 3 else { continue }
                let truth = t.relation(to: o)
                let asked = rng.bool() ? truth : rng.pick(["left of", "right of", "above", "below"].filter { $0 != truth })
                let oref = referringExpression(o, in: shapes, &rng)!
                q = "is \(ref) \(asked) \(oref)?"
                a = asked == truth ? "yes" : "no"
            default: // position
                let r = t.region(imageSize: imageSize)
                q = rng.pick(["where is \(ref)?", "in which part of the image is \(ref)?"])
                a = r
            }
            return Example(id: id, task: .vqa, image: scene.image, instruction: q, answer: a, category: "vqa/\(family)")
        }
    }

    /// A short description that names exactly one shape of the scene ("the red circle",
    /// "the circle", "the large circle", "the yellow shape").
    /// `avoid` leaves out expressions that would give the answer away ("what color is the red
    /// shape?"): `.color` and/or `.size`. Nil when no expression is left.
    func referringExpression(_ t: SceneShape, in shapes: [SceneShape], avoid: Set<Attribute> = [], _ rng: inout PilotRNG) -> String? {
        var options: [String] = []
        if !avoid.contains(.color) { options.append("the \(t.color.rawValue) \(t.kind.rawValue)") }
        if shapes.filter({ $0.kind == t.kind }).count == 1 { options.append("the \(t.kind.rawValue)") }
        if !avoid.contains(.color) && shapes.filter({ $0.color == t.color }).count == 1 { options.append("the \(t.color.rawValue) shape") }
        if !avoid.contains(.size) && shapes.filter({ $0.kind == t.kind && $0.size == t.size }).count == 1 && shapes.filter({ $0.kind == t.kind }).count > 1 {
            options.append("the \(t.size.rawValue) \(t.kind.rawValue)")
        }
        return options.isEmpty ? nil : rng.pick(options)
    }

    enum Attribute { case color, size }

    // MARK: grounding

    static let groundingPrompts = [
        "where is REF? answer with a box.", "find REF.", "give the bounding box of REF.", "locate REF.",
        "box REF.",
    ]

    func grounding(id: String, _ rng: inout PilotRNG) -> Example {
        let n = rng.int(in: 1...3)
        let scene = drawer.scene(count: n, &rng)
        let t = rng.pick(scene.shapes)
        let ref = referringExpression(t, in: scene.shapes, &rng)!
        let q = rng.pick(Self.groundingPrompts).replacingOccurrences(of: "REF", with: ref)
        var x1 = t.x, y1 = t.y, x2 = t.x + t.w, y2 = t.y + t.h
        if version == .v2 {
            // Snap outwards to the 4 × 4 grid: the box names the cells that hold the object.
            x1 = x1 / cell * cell; y1 = y1 / cell * cell
            x2 = min(imageSize, (x2 + cell - 1) / cell * cell); y2 = min(imageSize, (y2 + cell - 1) / cell * cell)
        }
        let box = formatBox(x1: Double(x1) / Double(imageSize), y1: Double(y1) / Double(imageSize),
                            x2: Double(x2) / Double(imageSize), y2: Double(y2) / Double(imageSize))
        return Example(id: id, task: .grounding, image: scene.image, instruction: q, answer: box,
                       category: "grounding/\(t.kind.rawValue)")
    }

    // MARK: ocr

    /// Words drawn for OCR (3–5 letters so that they fit a 32-pixel line of the 5×7 font).
    public static let ocrWords = [
        "cat", "dog", "sun", "moon", "star", "tree", "fish", "bird", "rain", "snow", "fire", "gold", "king",
        "road", "ship", "lake", "wolf", "bear", "rose", "leaf", "book", "door", "milk", "salt", "sand", "rock",
        "wind", "cake", "frog", "duck", "lion", "hat", "box", "cup", "key", "map", "pen", "egg", "owl", "fox",
        "pig", "cow", "bell", "corn", "kite", "drum", "nest", "ring", "apple", "river", "stone", "cloud",
        "tiger", "bread", "horse", "light", "train", "plant",
    ]

    func ocr(id: String, _ rng: inout PilotRNG) -> Example {
        let scale = max(1, imageSize / 32)
        var img = drawer.background(&rng)
        let textColor = rng.pick(ShapeColor.allCases)
        let word = rng.pick(Self.ocrWords)
        let code = String(rng.int(in: 10...99))
        let layout = rng.int(3)
        var q = "", a = "", family = ""
        let lineH = (BitmapFont.glyphHeight + 2) * scale
        func jitterX(_ text: String) -> Int {
            let slack = imageSize - BitmapFont.width(of: text, scale: scale)
            return slack <= 0 ? 0 : rng.int(in: 0...slack)
        }
        var panel = RGB(0, 0, 0)
        if rng.bool(0.5) {
            // A darker panel behind the text ("a cover"), so the background varies more.
            panel = RGB(clamp8(rng.int(in: 0...40)), clamp8(rng.int(in: 0...40)), clamp8(rng.int(in: 0...40)))
            let py = rng.int(in: 0...(imageSize / 4))
            img.fillRect(x: 0, y: py, w: imageSize, h: imageSize / 2 + lineH / 2, panel)
        }
        func ink(_ c: ShapeColor) -> RGB {
            let j = rng.int(in: -20...20)
            return RGB(clamp8(Int(c.rgb.r) + j), clamp8(Int(c.rgb.g) + j), clamp8(Int(c.rgb.b) + j))
        }
        switch layout {
        case 0: // a title and a code on two lines
            let y0 = rng.int(in: 1...max(1, imageSize / 2 - lineH - 1))
            BitmapFont.draw(word.uppercased(), into: &img, x: jitterX(word), y: y0, color: ink(textColor), scale: scale)
            BitmapFont.draw(code, into: &img, x: jitterX(code), y: y0 + lineH + rng.int(in: 1...(4 * scale)), color: ink(textColor), scale: scale)
            switch rng.int(3) {
            case 0: q = rng.pick(["what is the title?", "what is the title of this cover?"]); a = word; family = "title"
            case 1: q = rng.pick(["what is the code?", "what number is written below the title?"]); a = code; family = "code"
            default: q = rng.pick(["what color is the text?", "what color is the title?"]); a = textColor.rawValue; family = "text-color"
            }
        case 1: // a single word
            let y0 = rng.int(in: 1...(imageSize - BitmapFont.glyphHeight * scale - 1))
            BitmapFont.draw(word.uppercased(), into: &img, x: jitterX(word), y: y0, color: ink(textColor), scale: scale)
            q = rng.pick(["what word is written?", "what does the text say?", "read the word in the image."])
            a = word; family = "word"
        default: // a code with a shape beside it: read the code, not the shape
            let y0 = rng.int(in: 1...max(1, imageSize / 2 - lineH))
            BitmapFont.draw(code, into: &img, x: jitterX(code), y: y0, color: ink(textColor), scale: scale)
            let k = rng.pick(ShapeKind.allCases), c = rng.pick(ShapeColor.allCases)
            let s = 7 * scale
            let sx = rng.int(in: 1...(imageSize - s - 1)), sy = rng.int(in: (y0 + lineH)...(imageSize - s - 1))
            drawer.draw(SceneShape(kind: k, color: c, size: .small, x: sx, y: sy, w: s, h: s), into: &img, &rng)
            if rng.bool() {
                q = rng.pick(["what is the code above the \(k.rawValue)?", "which number is written?"]); a = code; family = "code"
            } else {
                q = "what shape is below the code?"; a = k.rawValue; family = "shape"
            }
        }
        _ = panel
        return Example(id: id, task: .ocr, image: img, instruction: q, answer: a, category: "ocr/\(family)")
    }

    // MARK: science

    public static let propertySets: [[String]] = [
        ["hot", "cold", "warm"], ["heavy", "light", "hollow"], ["soft", "hard", "sticky"], ["wet", "dry", "damp"],
        ["fast", "slow", "still"], ["sweet", "sour", "salty"], ["loud", "quiet", "silent"],
    ]
    static let letters = ["a", "b", "c", "d"]

    func choices(_ options: [String]) -> String {
        options.enumerated().map { "\(Self.letters[$0.offset]). \($0.element)" }.joined(separator: " ")
    }

    func science(id: String, _ rng: inout PilotRNG) -> Example {
        let family = rng.int(4)
        var scene: Scene
        var context = "", question = "", options: [String] = [], correct = "", name = ""
        switch family {
        // v1 draws every fact afresh per example (red things are hot here, cold there), so only the
        // context can tell. v2 keeps one fixed world, as real science facts are: the context states
        // the facts, and they never contradict another example's (docs/calibration.md §6).
        case 0: // colour → property: needs the fact and the colour in the image
            var props: [String], colors: [ShapeColor], order = [0, 1, 2]
            if version == .v1 {
                props = rng.shuffled(rng.pick(Self.propertySets))
                colors = Array(rng.shuffled(ShapeColor.allCases).prefix(3))
            } else {
                // v2: one fixed world. Colour c has property (c + set) mod 3 of the set, always.
                let set = rng.int(Self.propertySets.count)
                props = Self.propertySets[set]
                colors = (0..<3).map { p in rng.pick(ShapeColor.allCases.indices.filter { ($0 + set) % 3 == p }.map { ShapeColor.allCases[$0] }) }
                order = rng.shuffled(order)
            }
            scene = drawer.scene(count: 1, &rng)
            let target = rng.int(3)
            scene = recolor(scene, to: colors[target], &rng)
            let k = scene.shapes[0].kind
            context = order.map { "\(colors[$0].rawValue) things are \(props[$0])." }.joined(separator: " ")
            question = rng.pick(["which word describes the \(k.rawValue)?", "what is the \(k.rawValue) like?"])
            options = rng.shuffled(props); correct = props[target]; name = "color-fact"
        case 1: // size → behaviour
            let swap = version == .v1 ? rng.bool() : false  // v2: large shapes always sink
            let bigDoes = swap ? "float" : "sink", smallDoes = swap ? "sink" : "float"
            scene = drawer.scene(count: 1, &rng)
            let s = scene.shapes[0]
            context = rng.bool() ? "large shapes \(bigDoes). small shapes \(smallDoes)." : "small shapes \(smallDoes). large shapes \(bigDoes)."
            question = rng.pick(["what will the \(s.kind.rawValue) do in water?", "what does the \(s.kind.rawValue) do in water?"])
            options = rng.shuffled(["sink", "float", rng.pick(["melt", "glow", "spin"])])
            correct = s.size == .large ? bigDoes : smallDoes; name = "size-fact"
        case 2: // kind → material, then count
            let n = rng.int(in: 2...3)
            scene = drawer.scene(count: n, &rng)
            let k = rng.bool(0.75) ? rng.pick(scene.shapes).kind : rng.pick(ShapeKind.allCases)
            let count = scene.shapes.filter { $0.kind == k }.count
            context = "\(k.plural) are made of iron. a magnet pulls iron."
            question = "how many shapes does the magnet pull?"
            var opts = [String(count)]
            for v in rng.shuffled([0, 1, 2, 3]) where v != count && opts.count < 3 { opts.append(String(v)) }
            options = rng.shuffled(opts); correct = String(count); name = "count-fact"
        default: // position → property: left, middle or right third of the image
            // v2: one fixed world, the left third has the set's first property, and so on.
            let props = version == .v1 ? rng.shuffled(rng.pick(Self.propertySets)) : rng.pick(Self.propertySets)
            scene = drawer.scene(count: 1, &rng)
            let s = scene.shapes[0]
            let third = min(2, Int(s.centerX * 3 / Double(imageSize)))
            let places = ["on the left", "in the middle", "on the right"]
            context = rng.shuffled(Array(0..<3)).map { "things \(places[$0]) are \(props[$0])." }.joined(separator: " ")
            question = rng.pick(["which word describes the \(s.color.rawValue) \(s.kind.rawValue)?", "what is the \(s.kind.rawValue) like?"])
            options = rng.shuffled(props); correct = props[third]; name = "position-fact"
        }
        let letter = Self.letters[options.firstIndex(of: correct)!]
        let prefix = rng.bool() ? "context: " : ""
        let q = "\(prefix)\(context) \(question) \(choices(options))"
        // Version 2 answers with the option itself, not its letter (one step of indirection less).
        return Example(id: id, task: .science, image: scene.image, instruction: q, answer: version == .v2 ? correct : letter,
                       category: "science/\(name)")
    }

    /// Redraws a one-shape scene with the shape in colour `c` (keeps the position and size).
    func recolor(_ scene: Scene, to c: ShapeColor, _ rng: inout PilotRNG) -> Scene {
        var s = scene.shapes[0]
        s.color = c
        var img = drawer.background(&rng)
        drawer.draw(s, into: &img, &rng)
        return Scene(width: scene.width, height: scene.height, shapes: [s], image: img)
    }
}

/// Formats a normalised box as `[x1,y1,x2,y2]` with exactly two decimals and no spaces.
/// Integer arithmetic after rounding keeps the text identical on every platform.
public func formatBox(x1: Double, y1: Double, x2: Double, y2: Double) -> String {
    func f(_ v: Double) -> String {
        let c = Int((max(0, min(1, v)) * 100).rounded())
        let frac = c % 100
        return "\(c / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
    return "[\(f(x1)),\(f(y1)),\(f(x2)),\(f(y2))]"
}

import Foundation
