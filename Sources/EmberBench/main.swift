import Ember
print("ember-bench: not yet implemented")
