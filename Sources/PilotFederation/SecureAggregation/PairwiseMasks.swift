import Crypto
import Foundation
import PilotCore

/// The pairwise masks of secure aggregation (Bonawitz et al., CCS 2017, without the dropout
/// recovery). Every participant makes a fresh Curve25519 key pair each round; the public keys go
/// through the server. Clients a < b of a group agree on a secret (X25519), derive a 256-bit seed
/// from it with HKDF-SHA256 (salt: the protocol, round and group; info: the pair "a,b"), and expand
/// it with ChaCha20 (the keystream: ChaChaPoly of zeros, 64 KiB blocks, the block index as nonce)
/// into one UInt32 per coordinate. Client a adds the stream, client b subtracts it, so the masks
/// cancel exactly in the sum mod 2³² and each masked update alone is uniformly distributed.
public enum PairwiseMasks {
    public typealias PrivateKey = Curve25519.KeyAgreement.PrivateKey

    /// A fresh random key pair (from the system's CSPRNG: it never enters a run's outputs).
    public static func keyPair() -> (privateKey: PrivateKey, publicKey: [UInt8]) {
        let k = PrivateKey()
        return (k, Array(k.publicKey.rawRepresentation))
    }

    /// The pair's 256-bit seed: HKDF-SHA256 of the X25519 secret, bound to the round, the group and
    /// the pair of client ids (lower first), so no two pairs, groups or rounds share a stream.
    public static func seed(_ mine: PrivateKey, peer: [UInt8], round: Int, group: Int, pair: (Int, Int)) throws -> SymmetricKey {
        let peerKey: Curve25519.KeyAgreement.PublicKey
        do { peerKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: peer) } catch {
            throw PilotError.message("secure aggregation: a relayed public key of \(peer.count) bytes is not a Curve25519 key (\(error))")
        }
        let secret = try mine.sharedSecretFromKeyAgreement(with: peerKey)
        let (a, b) = (min(pair.0, pair.1), max(pair.0, pair.1))
        return secret.hkdfDerivedSymmetricKey(using: Crypto.SHA256.self, salt: Data("pilot-secagg/v1 round \(round) group \(group)".utf8),
                                              sharedInfo: Data("clients \(a),\(b)".utf8), outputByteCount: 32)
    }

    /// Values per ChaCha20 block call (64 KiB of keystream).
    static let blockValues = 1 << 14

    /// `count` UInt32s of the ChaCha20 keystream under `key` (little-endian words), block i under nonce i.
    public static func stream(_ key: SymmetricKey, count: Int) throws -> [UInt32] {
        var out = [UInt32]()
        out.reserveCapacity(count)
        var block: UInt64 = 0
        while out.count < count {
            let n = min(blockValues, count - out.count)
            var nonce = [UInt8](repeating: 0, count: 12)
            withUnsafeBytes(of: block.littleEndian) { for (i, b) in $0.enumerated() { nonce[i] = b } }
            let box = try ChaChaPoly.seal(Data(count: 4 * n), using: key, nonce: try ChaChaPoly.Nonce(data: nonce))
            box.ciphertext.withUnsafeBytes { raw in
                for i in 0..<n { out.append(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
            block += 1
        }
        return out
    }

    /// Adds client `me`'s masks to its encoded values in place: +stream for every peer with a higher
    /// id, −stream for every peer with a lower one (peers: the other members of its group).
    public static func mask(_ values: inout [UInt32], me: Int, key: PrivateKey, peers: [(client: Int, publicKey: [UInt8])],
                            round: Int, group: Int) throws {
        for peer in peers where peer.client != me {
            let s = try stream(try seed(key, peer: peer.publicKey, round: round, group: group, pair: (me, peer.client)), count: values.count)
            if me < peer.client { for i in values.indices { values[i] = values[i] &+ s[i] } }
            else { for i in values.indices { values[i] = values[i] &- s[i] } }
        }
    }
}
