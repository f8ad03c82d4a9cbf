@_exported import EmberStorage
