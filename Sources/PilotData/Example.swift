import PilotCore

/// One exchange of a conversation after the first: a human turn and the gpt answer to it.
public struct Exchange: Equatable, Hashable, Sendable {
    public var human: String
    public var gpt: String
    public init(human: String, gpt: String) { self.human = human; self.gpt = gpt }
}

/// One instruction-tuning example: an image and a conversation about it.
///
/// `instruction` is the first human turn *without* LLaVA's `<image>` tag (the visual tokens have
/// their own place in the sequence, see `SequenceLayout`); `answer` is the first gpt turn;
/// `followUps` are the exchanges after it (multi-turn LLaVA records: every gpt turn is a training
/// target, the human turns are context). `references` are what the answer of exchange `evalTurn`
/// is scored against (5 for caption, the answer alone for most tasks).
public struct Example: Equatable, Sendable {
    public var id: String
    public var task: FedTask
    /// The image file or generated image this example uses (`<id>.png` on export); "" for a
    /// text-only record (its image is a blank one of the pad colour).
    public var imageID: String
    public var image: RGBImage
    public var instruction: String
    public var answer: String
    public var references: [String]
    /// The generator's question family (for example "vqa/count"); "imported" for imported data.
    /// Used by `pilot data stats` and by the Dirichlet split.
    public var category: String
    /// Exchanges after the first (empty for single-turn examples and for all generated data).
    public var followUps: [Exchange]
    /// The exchange (0 = the first) whose answer `references` score and whose prompt evaluation
    /// feeds: 0 unless a test split was made with `--eval-turn last|all`.
    public var evalTurn: Int

    public init(id: String, task: FedTask, imageID: String? = nil, image: RGBImage, instruction: String,
                answer: String, references: [String]? = nil, category: String,
                followUps: [Exchange] = [], evalTurn: Int = 0) {
        self.id = id
        self.task = task
        self.imageID = imageID ?? id
        self.image = image
        self.instruction = instruction
        self.answer = answer
        self.references = references ?? [answer]
        self.category = category
        self.followUps = followUps
        self.evalTurn = evalTurn
    }

    /// Every exchange, the first included.
    public var exchanges: [Exchange] { [Exchange(human: instruction, gpt: answer)] + followUps }

    /// Number of turns (human and gpt) of the conversation.
    public var turnCount: Int { 2 * (1 + followUps.count) }

    /// True for a record without an image.
    public var isTextOnly: Bool { imageID.isEmpty }
}
