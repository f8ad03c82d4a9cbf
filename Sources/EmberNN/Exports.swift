@_exported import EmberAutograd
