// Ember: PyTorch's `torch.nn` way of building networks, in Swift.
// This umbrella module re-exports the public targets; `import Ember` is all a user needs.
@_exported import EmberAutograd
@_exported import EmberData
@_exported import EmberDistributed
@_exported import EmberFunctional
@_exported import EmberIO
@_exported import EmberNN
@_exported import EmberOptim
@_exported import EmberStorage
@_exported import EmberTensor
@_exported import EmberTraining
