import PilotCore

/// One instruction-tuning example: an image, the human turn and the model's answer.
///
/// `instruction` is the human turn *without* LLaVA's `<image>` tag (the visual tokens have
/// their own place in the sequence, see `SequenceLayout`); `answer` is the gpt turn the
/// model is trained on; `references` are the answers it is scored against (5 for caption,
/// the answer alone for the other tasks).
public struct Example: Equatable, Sendable {
    public var id: String
    public var task: FedTask
    /// The image file or generated image this example uses (`<id>.png` on export).
    public var imageID: String
    public var image: RGBImage
    public var instruction: String
    public var answer: String
    public var references: [String]
    /// The generator's question family (for example "vqa/count"); "imported" for imported data.
    /// Used by `pilot data stats` and by the Dirichlet split.
    public var category: String

    public init(id: String, task: FedTask, imageID: String? = nil, image: RGBImage, instruction: String,
                answer: String, references: [String]? = nil, category: String) {
        self.id = id
        self.task = task
        self.imageID = imageID ?? id
        self.image = image
        self.instruction = instruction
        self.answer = answer
        self.references = references ?? [answer]
        self.category = category
    }
}
