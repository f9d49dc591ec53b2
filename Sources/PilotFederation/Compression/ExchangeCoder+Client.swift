import PilotTensor

extension ExchangeCoder {
    /// Client side, after the exchange: records what client `client` received (the same bits rank 0
    /// records in `serverDownlink`), keeps its new top-k residual only if its update was accepted,
    /// and notes the bytes it received on the wire.
    func clientReceived(_ client: Int, sent: Bool, refused: Bool, exchange: RoundExchange.Result) throws {
        let accepted = sent && !refused
        settle(client: client, accepted: accepted)
        if accepted {
            let personal = exchange.personal[client]
            try received(client: client, shared: exchange.shared, personal: personal)
            receivedBytes[client] = (exchange.shared.map { down.byteCount($0.values.count) } ?? 0) + (personal.map { down.byteCount($0.values.count) } ?? 0)
        } else if exchange.shared != nil {
            try received(client: client, shared: exchange.shared, personal: nil)
        }
    }

    /// A client's record with the bytes on the wire, and the Float32 sizes as `*_uncompressed`.
    func recordBytes(_ client: Int, into record: inout ClientRoundRecord) {
        if let raw = record.bytesSent {
            record.bytesSentUncompressed = raw
            record.bytesSent = sentBytes[client].map(Double.init) ?? raw
        }
        if let raw = record.bytesReceived {
            record.bytesReceivedUncompressed = raw
            record.bytesReceived = receivedBytes[client].map(Double.init) ?? raw
        }
        receivedBytes[client] = nil
    }
}
