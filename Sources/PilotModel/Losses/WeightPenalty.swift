import PilotTensor

/// A term on the trainable weights that a federated method adds to a client's loss (FedProx's
/// proximal term): the model adds its value to the loss and its gradient to the gradients of every
/// training step, and knows nothing else about the method.
public protocol WeightPenalty {
    /// The term's value at the trainable buffer `weights`.
    func forward(weights: Tensor) -> Double
    /// grads += ∂term/∂weights.
    func backward(weights: Tensor, grads: Tensor)
}

extension ProximalTerm: WeightPenalty {}
