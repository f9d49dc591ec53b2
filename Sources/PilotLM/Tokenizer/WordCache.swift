import Foundation

/// Ids of words already merged, shared by all copies of a tokenizer (text repeats its words, and the merge
/// loop is the expensive part). Bounded: it is emptied when full. Guarded by a lock, so encode may be
/// called from several threads.
final class WordCache: @unchecked Sendable {
    private var table: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    func get(_ word: [UInt8]) -> [Int32]? {
        lock.lock(); defer { lock.unlock() }
        return table[word]
    }

    func put(_ word: [UInt8], _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if table.count >= capacity { table.removeAll(keepingCapacity: true) }
        table[word] = ids
    }
}
