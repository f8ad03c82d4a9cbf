@_exported import EmberTensor
